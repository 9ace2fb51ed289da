//! Snapshots: a session's whole record at one moment, kept after the session is gone.
//!
//! `snapshots/{session}/{snapshot}.json` holds the metadata and the session state (plain JSON,
//! or a sealed blob in an encrypted store); `{snapshot}.blob` is a bundle of the session's file
//! images at that moment, written first, so the `.json` is the commit point:
//!
//! ```text
//! header  "AISN" | schema u16 LE | 0 | 0
//! frames  tag 2: history.log image (its good prefix), 3: scrollback, 4: context.bin
//!         tag u32::MAX: end, body = number of frames before it (u32 LE)
//! ```
//!
//! The images are the files as the store writes them (compressed, sealed when encrypted), so
//! taking a snapshot copies bytes without decoding the scrollback or the history.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chunk::{self, ChunkRef, ExportChunks};
use crate::crypt::Cipher;
use crate::error::{Error, Result};
use crate::file;
use crate::frame;
use crate::history;
use crate::record::{
    ExecRecord, Scrollback, SessionId, SessionState, SessionStatus, check_id, check_label,
    check_name, now_ms, valid_id,
};
use crate::seal::{self, Kind, Packer, SCHEMA_VERSION, Unpacker};
use crate::store::{Store, decode_json, encode_json, new_id};

const BUNDLE_MAGIC: &[u8; 4] = b"AISN";
pub(crate) const TAG_HISTORY: u32 = 2;
pub(crate) const TAG_SCROLLBACK: u32 = 3;
pub(crate) const TAG_CONTEXT: u32 = 4;
pub(crate) const TAG_END: u32 = u32::MAX;

/// Where a snapshot's two files come from: the store itself (a `.blob` may be a manifest of
/// this store's chunks) or an export (a `.blob` may be a manifest of the chunks the export
/// carries, in the chunk-once format, and of nothing else).
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    Store,
    Export(Option<&'a ExportChunks<'a>>),
}

/// What `snapshot ls` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub schema: u32,
    pub id: String,
    pub session: SessionId,
    pub session_name: String,
    #[serde(default)]
    pub label: Option<String>,
    pub created_ms: u64,
    /// Execs in the snapshot's history.
    pub execs: u64,
    /// Always 0 in metadata written by snapshots taken from a live session (counting would
    /// mean decoding the scrollback); set for imported ones.
    pub scrollback_lines: u64,
    /// Size on disk of the snapshot: its manifest and the chunks it references (shared
    /// with other snapshots), or its bundle for a snapshot of the older, self-contained format.
    pub bytes: u64,
}

/// A snapshot loaded back: everything needed to start the session again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    /// The session's state when the snapshot was taken.
    pub state: SessionState,
    pub history: Vec<ExecRecord>,
    pub scrollback: Option<Scrollback>,
    pub context: Option<Vec<u8>>,
}

impl Snapshot {
    /// The directory to restart in: the last exec's, else the recorded one.
    pub fn cwd(&self) -> &str {
        self.history
            .last()
            .map_or(self.state.cwd.as_str(), |e| e.cwd.as_str())
    }
}

/// A session started again from a snapshot: its new state (status `Restored`) and the
/// snapshot's content to replay (scrollback into the emulator, the last command if asked).
#[derive(Debug, Clone)]
pub struct Restored {
    pub state: SessionState,
    pub snapshot: Snapshot,
}

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    #[serde(flatten)]
    meta: SnapshotMeta,
    state: SessionState,
}

impl Store {
    fn snapshot_dir(&self, session: &SessionId) -> PathBuf {
        self.root.join("snapshots").join(session.as_str())
    }

    /// `snapshot_dir`, checked to be a real directory below the root (created with `create`).
    pub(crate) fn snapshot_dir_checked(
        &self,
        session: &SessionId,
        create: bool,
    ) -> Result<PathBuf> {
        let dir = self.snapshot_dir(session);
        file::dir_beneath(&self.root, &dir, create)?;
        Ok(dir)
    }

    /// Takes a snapshot of the session as last checkpointed: its state, history, scrollback
    /// and context. Checkpoint the screen (`save_scrollback`) first for an up-to-date one.
    /// The store's retention (`Options::snapshot_keep`, `snapshot_max_bytes`) is applied
    /// afterwards; it never removes the snapshot just taken.
    pub fn snapshot(&self, session: &SessionId, label: Option<&str>) -> Result<SnapshotMeta> {
        if let Some(label) = label {
            check_label(label)?;
        }
        let state = self.load_state(session)?;
        let dir = self.session_dir_checked(session, false)?;
        let hist_path = dir.join("history.log");
        let records = history::read(&hist_path, self.cipher.as_ref(), self.max_unpacked)?.records;
        let mut sections = vec![(TAG_HISTORY, history::json_lines(&records, &hist_path)?)];
        for (tag, name, kind) in [
            (TAG_SCROLLBACK, "scrollback", Kind::Scrollback),
            (TAG_CONTEXT, "context.bin", Kind::Context),
        ] {
            if let Some(raw) = self.load_blob(&dir.join(name), kind)? {
                sections.push((tag, raw));
            }
        }
        let meta = SnapshotMeta {
            schema: SCHEMA_VERSION,
            id: new_id(&self.root)?.to_string(),
            session: session.clone(),
            session_name: state.config.name.clone(),
            label: label.map(str::to_owned),
            created_ms: now_ms(),
            execs: records.len() as u64,
            scrollback_lines: 0,
            bytes: 0,
        };
        let written = self.write_snapshot(meta, &state, &sections);
        let meta = self.noted("snapshot", Some(session), written)?;
        if self.retention.keep.is_some() || self.retention.max_bytes.is_some() {
            // The snapshot is taken: a retention that fails (a damaged manifest elsewhere) is
            // counted in `write_failures`, not this snapshot's failure.
            if let Err(e) = self.prune_snapshots(None, self.retention, Some(&meta.id)) {
                self.record_failure("snapshot retention", Some(session), &e);
            }
        }
        Ok(meta)
    }

    /// Writes the sections' chunks (those not stored yet), the manifest, then the metadata
    /// (the commit point), then indexes it.
    fn write_snapshot(
        &self,
        mut meta: SnapshotMeta,
        state: &SessionState,
        sections: &[(u32, Vec<u8>)],
    ) -> Result<SnapshotMeta> {
        // The id becomes two file names: never build them from an unchecked one.
        check_id("snapshot id", &meta.id)?;
        let dir = self.snapshot_dir_checked(&meta.session, true)?;
        // No collection may run between the chunks' writes and the manifest's commit.
        let _chunks = self.chunk_lock();
        let chunker = self.chunker();
        let mut packer = Packer::new(self.level);
        let mut written = 0;
        let mut listed = Vec::with_capacity(sections.len());
        for (tag, data) in sections {
            let refs = self.put_chunks(&chunker, data, &mut packer, &mut written)?;
            listed.push((*tag, data.len() as u64, refs));
        }
        self.sync_chunks()?;
        let blob_path = dir.join(format!("{}.blob", meta.id));
        let manifest = seal::encode_blob(
            &mut packer,
            Kind::SnapshotManifest,
            &encode_manifest(&listed),
            self.cipher.as_ref(),
            &blob_path,
        )?;
        meta.bytes = manifest.len() as u64 + self.referenced_bytes(&listed);
        file::write_atomic(&blob_path, &manifest, self.durable)?;
        let json_path = dir.join(format!("{}.json", meta.id));
        let doc = SnapshotFile {
            meta: meta.clone(),
            state: state.clone(),
        };
        let bytes = encode_json(
            &doc,
            Kind::SnapshotMeta,
            self.cipher.as_ref(),
            self.level,
            &json_path,
        )?;
        if let Err(e) = file::write_atomic(&json_path, &bytes, self.durable) {
            // Without its `.json` the manifest is no snapshot: do not leave it behind (its
            // chunks go at the next collection).
            std::fs::remove_file(&blob_path).ok();
            return Err(e);
        }
        self.index().add_snapshot(&meta)?;
        Ok(meta)
    }

    /// Size on disk of the distinct chunks a manifest references.
    fn referenced_bytes(&self, listed: &[(u32, u64, Vec<ChunkRef>)]) -> u64 {
        let dir = self.chunks_dir();
        let mut seen = std::collections::HashSet::new();
        listed
            .iter()
            .flat_map(|(_, _, refs)| refs)
            .filter(|r| seen.insert(r.id))
            .map(|r| {
                std::fs::symlink_metadata(dir.join(chunk::hex_id(&r.id))).map_or(0, |m| m.len())
            })
            .sum()
    }

    /// Writes a snapshot given as data (import), in this store's mode.
    pub(crate) fn write_snapshot_data(&self, snap: &Snapshot) -> Result<SnapshotMeta> {
        let path = self.snapshot_dir(&snap.meta.session);
        let mut sections = vec![(TAG_HISTORY, history::json_lines(&snap.history, &path)?)];
        if let Some(s) = &snap.scrollback {
            sections.push((TAG_SCROLLBACK, s.encode()));
        }
        if let Some(c) = &snap.context {
            sections.push((TAG_CONTEXT, c.clone()));
        }
        self.write_snapshot(snap.meta.clone(), &snap.state, &sections)
    }

    /// Snapshots, oldest first: all of them, or one session's.
    pub fn list_snapshots(&self, session: Option<&SessionId>) -> Result<Vec<SnapshotMeta>> {
        self.index().snapshots(session)
    }

    /// Resolves a snapshot id or a unique prefix of one.
    pub fn resolve_snapshot(&self, id_or_prefix: &str) -> Result<(String, SessionId)> {
        check_id("snapshot id", id_or_prefix)?;
        let mut found = self.index().snapshot_ids(id_or_prefix)?;
        if let Some(pos) = found.iter().position(|(id, _)| id == id_or_prefix) {
            return Ok(found.swap_remove(pos));
        }
        match found.len() {
            0 => Err(Error::NotFound {
                what: "snapshot",
                id: id_or_prefix.to_owned(),
            }),
            1 => Ok(found.swap_remove(0)),
            _ => Err(Error::Ambiguous {
                prefix: id_or_prefix.to_owned(),
                matches: found.into_iter().map(|(id, _)| id).collect(),
            }),
        }
    }

    /// Loads a snapshot by id or unique id prefix.
    pub fn load_snapshot(&self, id_or_prefix: &str) -> Result<Snapshot> {
        let (id, session) = self.resolve_snapshot(id_or_prefix)?;
        check_id("snapshot id", &id)?;
        let dir = self.snapshot_dir_checked(&session, false)?;
        let json_path = dir.join(format!("{id}.json"));
        let json =
            file::read_bounded(&json_path, self.max_unpacked)?.ok_or_else(|| Error::NotFound {
                what: "snapshot",
                id: id.clone(),
            })?;
        let blob_path = dir.join(format!("{id}.blob"));
        let bundle =
            file::read_bounded(&blob_path, self.max_unpacked)?.ok_or_else(|| Error::NotFound {
                what: "snapshot",
                id: id.clone(),
            })?;
        let snap = self.decode_snapshot(
            (&json, &json_path),
            (&bundle, &blob_path),
            self.cipher.as_ref(),
            &mut self.unpacker(),
            Source::Store,
        )?;
        if snap.meta.id != id {
            return Err(Error::corrupt(
                &json_path,
                format!("holds snapshot '{}'", snap.meta.id),
            ));
        }
        Ok(snap)
    }

    /// Decodes a snapshot's two files (each its bytes and the path naming it in errors);
    /// `unpacker` bounds what they decode to. The snapshot's id is checked against the id
    /// pattern before anything can build a path from it.
    pub(crate) fn decode_snapshot(
        &self,
        (json, json_path): (&[u8], &Path),
        (bundle, blob_path): (&[u8], &Path),
        cipher: Option<&Cipher>,
        unpacker: &mut Unpacker,
        source: Source,
    ) -> Result<Snapshot> {
        let doc: SnapshotFile = decode_json(json, Kind::SnapshotMeta, cipher, json_path, unpacker)?;
        check_id("snapshot id", &doc.meta.id)?;
        let mut snap = Snapshot {
            meta: doc.meta,
            state: doc.state,
            history: Vec::new(),
            scrollback: None,
            context: None,
        };
        if seal::is_blob(bundle) {
            match source {
                Source::Store => {
                    self.decode_chunked(&mut snap, bundle, blob_path, unpacker, None)?
                }
                Source::Export(Some(chunks)) => {
                    self.decode_chunked(&mut snap, bundle, blob_path, unpacker, Some(chunks))?;
                }
                Source::Export(None) => {
                    return Err(Error::corrupt(
                        blob_path,
                        "a snapshot in an export must carry its data, but this one references chunks of another store",
                    ));
                }
            }
            return Ok(snap);
        }
        for (tag, image) in decode_bundle(bundle, blob_path)? {
            match tag {
                TAG_HISTORY => {
                    snap.history = history::decode(image, blob_path, cipher, unpacker)?.records;
                }
                TAG_SCROLLBACK => {
                    let raw =
                        seal::decode_blob(unpacker, Kind::Scrollback, image, cipher, blob_path)?;
                    snap.scrollback = Some(Scrollback::decode(&raw, blob_path)?);
                }
                TAG_CONTEXT => {
                    snap.context = Some(seal::decode_blob(
                        unpacker,
                        Kind::Context,
                        image,
                        cipher,
                        blob_path,
                    )?);
                }
                other => {
                    return Err(Error::corrupt(
                        blob_path,
                        format!("unknown section {other}"),
                    ));
                }
            }
        }
        Ok(snap)
    }

    /// Fills `snap` from a manifest and the chunks it references: this store's, or with
    /// `exported` those an export carries (sealed under the exporting store's key).
    fn decode_chunked(
        &self,
        snap: &mut Snapshot,
        manifest: &[u8],
        path: &Path,
        unpacker: &mut Unpacker,
        exported: Option<&ExportChunks<'_>>,
    ) -> Result<()> {
        let cipher = match exported {
            Some(chunks) => chunks.cipher,
            None => self.cipher.as_ref(),
        };
        let raw = seal::decode_blob(unpacker, Kind::SnapshotManifest, manifest, cipher, path)?;
        for (tag, total, refs) in decode_manifest(&raw, path)? {
            if total > self.max_unpacked {
                return Err(Error::too_large(
                    path,
                    format!(
                        "a section declares {total} bytes, more than the limit of {}",
                        self.max_unpacked
                    ),
                ));
            }
            let data = match exported {
                Some(chunks) => chunks.get(&refs, total, path, unpacker)?,
                None => self.get_chunks(&refs, total, path, unpacker)?,
            };
            match tag {
                TAG_HISTORY => snap.history = history::parse_records(&data, path)?,
                TAG_SCROLLBACK => snap.scrollback = Some(Scrollback::decode(&data, path)?),
                TAG_CONTEXT => snap.context = Some(data),
                other => {
                    return Err(Error::corrupt(path, format!("unknown section {other}")));
                }
            }
        }
        Ok(())
    }

    /// Deletes a snapshot (metadata first, so a crash leaves no half-listed snapshot), then
    /// the chunks no other snapshot references.
    pub fn delete_snapshot(&self, id_or_prefix: &str) -> Result<()> {
        let (id, session) = self.resolve_snapshot(id_or_prefix)?;
        self.remove_snapshot_files(&id, &session)?;
        let _chunks = self.chunk_lock();
        // The snapshot is gone; chunks left by a collection that fails (a damaged manifest
        // elsewhere) are counted and collected by the next one.
        if let Err(e) = self.collect_chunks() {
            self.record_failure("collect chunks", Some(&session), &e);
        }
        Ok(())
    }

    /// Removes a snapshot's `.json` then `.blob`, and its index row.
    pub(crate) fn remove_snapshot_files(&self, id: &str, session: &SessionId) -> Result<()> {
        check_id("snapshot id", id)?;
        let dir = self.snapshot_dir_checked(session, false)?;
        for name in [format!("{id}.json"), format!("{id}.blob")] {
            let path = dir.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
        }
        self.index().remove_snapshot(id)
    }

    /// Records a new session from a snapshot (status `Restored`, a fresh id, named `new_name`
    /// or as the original). The daemon then starts its program with the returned config.
    pub fn restore(&self, id_or_prefix: &str, new_name: Option<&str>) -> Result<Restored> {
        let snapshot = self.load_snapshot(id_or_prefix)?;
        let mut state = snapshot.state.clone();
        state.schema = SCHEMA_VERSION;
        state.id = new_id(&self.root)?;
        if let Some(name) = new_name {
            check_name(name)?;
            state.config.name = name.to_owned();
        }
        state.cwd = snapshot.cwd().to_owned();
        state.status = SessionStatus::Restored;
        state.exit_code = None;
        state.updated_ms = now_ms();
        state.restored_from = Some(snapshot.meta.id.clone());
        self.write_session_data(&state, &snapshot)?;
        Ok(Restored { state, snapshot })
    }

    /// Writes a whole session (history, scrollback, context, then the state, which commits
    /// it) from data: restore and import.
    pub(crate) fn write_session_data(&self, state: &SessionState, data: &Snapshot) -> Result<()> {
        let dir = self.session_dir_checked(&state.id, true)?;
        let cipher = self.cipher.as_ref();
        let hist_path = dir.join("history.log");
        history::rewrite(&hist_path, &data.history, cipher, self.level)?;
        let mut packer = Packer::new(self.level);
        if let Some(s) = &data.scrollback {
            let path = dir.join("scrollback");
            let bytes =
                seal::encode_blob(&mut packer, Kind::Scrollback, &s.encode(), cipher, &path)?;
            file::write_atomic(&path, &bytes, self.durable)?;
        }
        if let Some(c) = &data.context {
            let path = dir.join("context.bin");
            let bytes = seal::encode_blob(&mut packer, Kind::Context, c, cipher, &path)?;
            file::write_atomic(&path, &bytes, self.durable)?;
        }
        self.save_state(state)?;
        self.index().add_execs(&state.id, &data.history)
    }

    /// Every snapshot's metadata found on disk (for `reindex`); damaged ones are skipped.
    pub(crate) fn scan_snapshots(&self) -> Result<Vec<SnapshotMeta>> {
        let root = self.root.join("snapshots");
        let mut out = Vec::new();
        for session in file::list_names(&root)? {
            let dir = root.join(&session);
            // Only the store's own directories: a link here would have the sweep delete files
            // elsewhere.
            if !file::is_real_dir(&dir) {
                continue;
            }
            file::sweep_tmp(&dir)?;
            for name in file::list_names(&dir)? {
                let Some(stem) = name.strip_suffix(".json").filter(|s| valid_id(s)) else {
                    continue;
                };
                let path = dir.join(&name);
                let Ok(Some(bytes)) = file::read_bounded(&path, self.max_unpacked) else {
                    continue;
                };
                let doc: Result<SnapshotFile> = decode_json(
                    &bytes,
                    Kind::SnapshotMeta,
                    self.cipher.as_ref(),
                    &path,
                    &mut self.unpacker(),
                );
                if let Ok(doc) = doc {
                    if doc.meta.id == stem && dir.join(format!("{stem}.blob")).exists() {
                        out.push(doc.meta);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The sections of a bundle; a bundle without its end frame is truncated.
pub(crate) fn decode_bundle<'a>(bytes: &'a [u8], path: &Path) -> Result<Vec<(u32, &'a [u8])>> {
    if bytes.len() < 8 {
        return Err(Error::truncated(path, "shorter than the bundle header"));
    }
    if &bytes[..4] != BUNDLE_MAGIC {
        return Err(Error::corrupt(
            path,
            "not an ai-session snapshot (bad magic)",
        ));
    }
    let schema = u32::from(u16::from_le_bytes([bytes[4], bytes[5]]));
    if schema > SCHEMA_VERSION {
        return Err(Error::NewerVersion {
            path: path.to_owned(),
            found: schema,
            supported: SCHEMA_VERSION,
        });
    }
    let scan = frame::scan(&bytes[8..], 8, path)?;
    let mut out = Vec::new();
    for f in scan.frames {
        if f.tag == TAG_END {
            if scan.torn > 0 {
                return Err(Error::corrupt(path, "bytes after the end"));
            }
            return Ok(out);
        }
        out.push((f.tag, f.body));
    }
    Err(Error::truncated(path, "no end frame"))
}

/// A manifest's plaintext: `count u32`, then per section `tag u32 | length u64 | chunks u32`
/// and that many `id[32] | length u32` (all little endian).
fn encode_manifest(sections: &[(u32, u64, Vec<ChunkRef>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    for (tag, total, refs) in sections {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&total.to_le_bytes());
        out.extend_from_slice(&(refs.len() as u32).to_le_bytes());
        for r in refs {
            out.extend_from_slice(&r.id);
            out.extend_from_slice(&r.len.to_le_bytes());
        }
    }
    out
}

type Section = (u32, u64, Vec<ChunkRef>);

pub(crate) fn decode_manifest(raw: &[u8], path: &Path) -> Result<Vec<Section>> {
    let mut rest = raw;
    let mut take = |n: usize| -> Result<&[u8]> {
        let (head, tail) = rest
            .split_at_checked(n)
            .ok_or_else(|| Error::truncated(path, "the snapshot manifest ends early"))?;
        rest = tail;
        Ok(head)
    };
    let u32_at = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let count = u32_at(take(4)?);
    if count > 16 {
        return Err(Error::corrupt(
            path,
            format!("{count} sections in a snapshot manifest"),
        ));
    }
    let mut out = Vec::new();
    for _ in 0..count {
        let tag = u32_at(take(4)?);
        let mut total = [0u8; 8];
        total.copy_from_slice(take(8)?);
        let n = u32_at(take(4)?) as usize;
        let mut refs = Vec::with_capacity(n.min(raw.len() / 36 + 1));
        for _ in 0..n {
            let mut id = [0u8; chunk::ID_LEN];
            id.copy_from_slice(take(chunk::ID_LEN)?);
            let len = u32_at(take(4)?);
            refs.push(ChunkRef { id, len });
        }
        out.push((tag, u64::from_le_bytes(total), refs));
    }
    if !rest.is_empty() {
        return Err(Error::corrupt(path, "bytes after the snapshot manifest"));
    }
    Ok(out)
}
