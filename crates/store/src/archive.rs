//! Export and import: one self-contained file with a session's whole record (state, history,
//! scrollback, context and its snapshots), to move it to another state directory.
//!
//! ```text
//! header  "AISX" | format u16 LE | flags u8 (bit 0: encrypted) | 0
//! frames  (see `frame`)
//!   tag 0   key check (encrypted exports only): salt, KDF costs and verifier, so the
//!           importer derives the key from its passphrase and a wrong one is refused
//!   tag 1   manifest: packed JSON (zstd, sealed when encrypted)
//!   tag 2   state.json image        tag 3   history.log image
//!   tag 4   scrollback image        tag 5   context.bin image
//!   tag 6   a snapshot's .json image, followed by its data: tag 7, a self-contained
//!           bundle (format 1, and snapshots of the older store format), or tag 9, its
//!           manifest of chunks (format 2)
//!   tag 8   a chunk (format 2): its id (32 bytes), then its file as the store keeps it;
//!           each chunk once, before the first manifest that references it
//!   tag u32::MAX  end: number of frames before it (u32 LE)
//! ```
//!
//! Format 1 wrote every snapshot out in full; format 2 (chunk-once) writes each chunk once
//! however many snapshots share it, so an export grows with the new data, not with the number
//! of snapshots. Both are imported.
//!
//! Images are the files as the store keeps them: compressed, and sealed under the exporting
//! store's key when it is encrypted. Import decodes everything first (so a damaged or
//! truncated file changes nothing), then writes it in the importing store's own mode. A
//! snapshot's chunks are looked up among those the export carries, and nowhere else; each is
//! decoded and its id recomputed from its content (SHA-256, or the exporting store's keyed
//! HMAC), so a chunk altered, swapped or missing refuses the whole import.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::chunk::{self, ExportChunks};
use crate::crypt::KeyCheck;
use crate::error::{Error, Result};
use crate::file;
use crate::frame;
use crate::history;
use crate::record::{
    Scrollback, SessionId, SessionState, check_id, check_label, check_name, now_ms,
};
use crate::seal::{self, FLAG_ENCRYPTED, Kind, Packer, SCHEMA_VERSION, Unpacker};
use crate::snapshot::{Snapshot, SnapshotMeta, Source, decode_manifest};
use crate::store::{Store, decode_json, new_id};

const MAGIC: &[u8; 4] = b"AISX";
/// Every snapshot written out in full (what exports were before chunk-once).
const FORMAT_IMAGES: u16 = 1;
/// Each chunk written once per export, snapshots as manifests of them.
const FORMAT_CHUNKED: u16 = 2;
const TAG_KEYCHECK: u32 = 0;
const TAG_MANIFEST: u32 = 1;
const TAG_STATE: u32 = 2;
const TAG_HISTORY: u32 = 3;
const TAG_SCROLLBACK: u32 = 4;
const TAG_CONTEXT: u32 = 5;
const TAG_SNAP_META: u32 = 6;
const TAG_SNAP_BUNDLE: u32 = 7;
const TAG_CHUNK: u32 = 8;
const TAG_SNAP_CHUNKS: u32 = 9;
const TAG_END: u32 = u32::MAX;

/// Frames written one at a time to a stream, counted.
struct FrameWriter<'a> {
    out: &'a mut dyn Write,
    dest: &'a Path,
    frames: u32,
    bytes: u64,
}

impl<'a> FrameWriter<'a> {
    fn new(out: &'a mut dyn Write, dest: &'a Path) -> Self {
        Self {
            out,
            dest,
            frames: 0,
            bytes: 0,
        }
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io("write", self.dest, e))?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    /// One frame: its header, then the body as it is (not copied).
    fn put(&mut self, tag: u32, body: &[u8]) -> Result<()> {
        self.raw(&frame::header(tag, body))?;
        self.raw(body)?;
        self.frames += 1;
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    schema: u32,
    exported_ms: u64,
    session: SessionId,
    name: String,
    snapshots: u64,
}

/// The marker of an import in progress, in its session's directory.
pub(crate) const IMPORT_MARKER: &str = ".import";

/// What the marker lists: the snapshots the import is to write, to remove them if it is cut
/// short.
#[derive(Serialize, Deserialize)]
pub(crate) struct ImportMarker {
    pub snapshots: Vec<String>,
}

/// An export decoded and checked, not written yet (`Store::decode_import`).
pub struct PendingImport {
    decoded: Complete,
}

impl PendingImport {
    /// The session's state as exported (its name, status, config).
    pub fn state(&self) -> &SessionState {
        &self.decoded.state
    }
}

impl std::fmt::Debug for PendingImport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingImport")
            .field("session", &self.decoded.state.id)
            .field("snapshots", &self.decoded.snapshots.len())
            .finish()
    }
}

/// What `import` brought in.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The session as recorded in this store (a new id if its own was taken).
    pub state: SessionState,
    pub snapshots: Vec<SnapshotMeta>,
}

impl Store {
    /// Encodes one session's whole record as an export file, in memory (`export_to` streams
    /// it instead).
    pub fn export(&self, id: &SessionId) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.export_to(id, &mut out, Path::new("<export>"))?;
        Ok(out)
    }

    /// Writes one session's whole record as an export (the chunk-once format) to `out`, a
    /// frame at a time: what is held in memory is one file image or one chunk, never the
    /// export. `dest` names `out` in errors. Returns the bytes written.
    pub fn export_to(&self, id: &SessionId, out: &mut dyn Write, dest: &Path) -> Result<u64> {
        let state = self.load_state(id)?;
        // Checked directories and no-follow reads: a link planted in the store cannot put
        // another file's bytes into an export.
        let dir = self.session_dir_checked(id, false)?;
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(MAGIC);
        header[4..6].copy_from_slice(&FORMAT_CHUNKED.to_le_bytes());
        header[6] = if self.cipher.is_some() {
            FLAG_ENCRYPTED
        } else {
            0
        };
        let mut w = FrameWriter::new(out, dest);
        w.raw(&header)?;
        if self.cipher.is_some() {
            let path = self.root.join("metadata").join("keycheck.json");
            w.put(TAG_KEYCHECK, &file::read(&path)?)?;
        }
        // No collection may remove a chunk between the listing and the copy.
        let _chunks = self.chunk_lock();
        let snapshots = self.list_snapshots(Some(id))?;
        let manifest = Manifest {
            schema: SCHEMA_VERSION,
            exported_ms: now_ms(),
            session: id.clone(),
            name: state.config.name.clone(),
            snapshots: snapshots.len() as u64,
        };
        let json =
            serde_json::to_vec(&manifest).map_err(|e| Error::corrupt(&dir, e.to_string()))?;
        let body =
            Packer::new(self.level).pack(&json, false, self.cipher.as_ref(), &header, &dir)?;
        w.put(TAG_MANIFEST, &body)?;
        w.put(TAG_STATE, &file::read(&dir.join("state.json"))?)?;
        let hist_path = dir.join("history.log");
        if let Some(bytes) = file::read_optional(&hist_path)? {
            let (good, _) = history::good_prefix(&bytes, &hist_path)?;
            w.put(TAG_HISTORY, &bytes[..good])?;
        }
        for (tag, name) in [(TAG_SCROLLBACK, "scrollback"), (TAG_CONTEXT, "context.bin")] {
            if let Some(bytes) = file::read_optional(&dir.join(name))? {
                w.put(tag, &bytes)?;
            }
        }
        let snap_dir = self.snapshot_dir_checked(id, false)?;
        let mut sent = HashSet::new();
        for meta in &snapshots {
            self.export_snapshot(&snap_dir, meta, &mut sent, &mut w)?;
        }
        let count = w.frames;
        w.put(TAG_END, &count.to_le_bytes())?;
        w.out.flush().map_err(|e| Error::io("write", dest, e))?;
        Ok(w.bytes)
    }

    /// One snapshot: the chunks its manifest references that no earlier snapshot sent (their
    /// files copied as stored), its metadata, then its manifest as stored. A snapshot of the
    /// older self-contained format goes as its bundle.
    fn export_snapshot(
        &self,
        snap_dir: &Path,
        meta: &SnapshotMeta,
        sent: &mut HashSet<chunk::ChunkId>,
        w: &mut FrameWriter<'_>,
    ) -> Result<()> {
        check_id("snapshot id", &meta.id)?;
        let json = file::read(&snap_dir.join(format!("{}.json", meta.id)))?;
        let blob_path = snap_dir.join(format!("{}.blob", meta.id));
        let blob = file::read(&blob_path)?;
        if !seal::is_blob(&blob) {
            w.put(TAG_SNAP_META, &json)?;
            return w.put(TAG_SNAP_BUNDLE, &blob);
        }
        let raw = seal::decode_blob(
            &mut self.unpacker(),
            Kind::SnapshotManifest,
            &blob,
            self.cipher.as_ref(),
            &blob_path,
        )?;
        for (_, _, refs) in decode_manifest(&raw, &blob_path)? {
            for r in refs {
                if sent.insert(r.id) {
                    let mut body = r.id.to_vec();
                    body.extend_from_slice(&self.chunk_file(&r.id, &blob_path)?);
                    w.put(TAG_CHUNK, &body)?;
                }
            }
        }
        w.put(TAG_SNAP_META, &json)?;
        w.put(TAG_SNAP_CHUNKS, &blob)
    }

    /// Writes an export to `path` atomically.
    pub fn export_to_file(&self, id: &SessionId, path: &Path) -> Result<()> {
        let bytes = self.export(id)?;
        file::write_atomic(path, &bytes, true)
    }

    /// Imports an export file. `source` names it in errors (a path, or `<stdin>`). The session
    /// keeps its id unless this store has one by that id; it keeps its status (`Live`
    /// sessions are resurrected by the next daemon start like any other).
    ///
    /// Everything is decoded and checked before anything is written: ids and names against
    /// their patterns (they become paths), decompressed sizes against `Options::max_unpacked`
    /// (each item and the import as a whole). A refused import leaves nothing behind.
    pub fn import(&self, bytes: &[u8], source: &Path) -> Result<Imported> {
        let pending = self.decode_import(bytes, source)?;
        self.commit_import(pending, None, None)
    }

    /// The first half of an import: decodes and checks the whole file, writing nothing. The
    /// caller can look at the session (its name, to refuse one already in use) before
    /// `commit_import` writes it.
    pub fn decode_import(&self, bytes: &[u8], source: &Path) -> Result<PendingImport> {
        let decoded = self.decode_export(bytes, source)?;
        Ok(PendingImport { decoded })
    }

    /// Writes a decoded import, under `name` and with `status` when given, so the record
    /// committed is already the final one (a kill later never leaves it under the export's
    /// name or status). A marker (`.import` in the session's directory, listing the snapshots
    /// to come) is written first and removed last: `Store::open` rolls back an import the
    /// marker shows was cut short. On a write error everything written is removed.
    pub fn commit_import(
        &self,
        pending: PendingImport,
        name: Option<&str>,
        status: Option<crate::record::SessionStatus>,
    ) -> Result<Imported> {
        let decoded = pending.decoded;
        let mut state = decoded.state;
        if let Some(name) = name {
            check_name(name)?;
            state.config.name = name.to_owned();
        }
        if let Some(status) = status {
            state.status = status;
            state.exit_code = None;
        }
        // Anything at that name, even a dangling link, makes the id taken.
        if file::present(&self.session_dir(&state.id)) {
            state.id = new_id(&self.root)?;
        }
        state.schema = SCHEMA_VERSION;
        let mut snaps = decoded.snapshots;
        for snap in &mut snaps {
            snap.meta.session = state.id.clone();
            if self.resolve_snapshot(&snap.meta.id).is_ok() {
                snap.meta.id = new_id(&self.root)?.to_string();
            }
        }
        let marker = ImportMarker {
            snapshots: snaps.iter().map(|s| s.meta.id.clone()).collect(),
        };
        let data = Snapshot {
            meta: empty_meta(&state),
            state: state.clone(),
            history: decoded.history,
            scrollback: decoded.scrollback,
            context: decoded.context,
        };
        let mut snapshots = Vec::new();
        let written = self
            .write_marker(&state.id, &marker)
            .and_then(|()| self.write_session_data(&state, &data))
            .and_then(|()| self.write_imported_snapshots(snaps, &mut snapshots))
            .and_then(|()| self.remove_marker(&state.id));
        if let Err(e) = written {
            // Leave nothing behind: the session record and the snapshots written so far (only
            // those: a deleted session's own snapshots may share its id's directory).
            for meta in &snapshots {
                self.delete_snapshot(&meta.id).ok();
            }
            self.delete_session(&state.id).ok();
            return Err(e);
        }
        Ok(Imported { state, snapshots })
    }

    fn write_marker(&self, id: &SessionId, marker: &ImportMarker) -> Result<()> {
        let dir = self.session_dir_checked(id, true)?;
        let path = dir.join(IMPORT_MARKER);
        let bytes = serde_json::to_vec(marker).map_err(|e| Error::corrupt(&path, e.to_string()))?;
        file::write_atomic(&path, &bytes, self.durable)
    }

    fn remove_marker(&self, id: &SessionId) -> Result<()> {
        let dir = self.session_dir(id);
        let path = dir.join(IMPORT_MARKER);
        std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        if self.durable {
            file::sync_dir(&dir)?;
        }
        Ok(())
    }

    fn write_imported_snapshots(
        &self,
        decoded: Vec<Snapshot>,
        written: &mut Vec<SnapshotMeta>,
    ) -> Result<()> {
        for mut snap in decoded {
            snap.meta.scrollback_lines =
                snap.scrollback.as_ref().map_or(0, |s| s.lines.len() as u64);
            written.push(self.write_snapshot_data(&snap)?);
        }
        Ok(())
    }

    fn decode_export(&self, bytes: &[u8], source: &Path) -> Result<Complete> {
        if bytes.len() < 8 {
            return Err(Error::truncated(source, "shorter than the export header"));
        }
        if &bytes[..4] != MAGIC {
            return Err(Error::corrupt(
                source,
                "not an ai-session export (bad magic)",
            ));
        }
        let format = u16::from_le_bytes([bytes[4], bytes[5]]);
        if format > FORMAT_CHUNKED {
            return Err(Error::NewerVersion {
                path: source.to_owned(),
                found: u32::from(format),
                supported: u32::from(FORMAT_CHUNKED),
            });
        }
        if format < FORMAT_IMAGES {
            return Err(Error::corrupt(source, "export format 0 does not exist"));
        }
        let encrypted = bytes[6] & FLAG_ENCRYPTED != 0;
        let scan = frame::scan(&bytes[8..], 8, source)?;
        let frames = scan.frames;
        match frames.last() {
            Some(f) if f.tag == TAG_END && scan.torn == 0 => {
                if f.body != (frames.len() as u32 - 1).to_le_bytes() {
                    return Err(Error::corrupt(
                        source,
                        "the end frame counts other frames than the file holds (frames dropped or added)",
                    ));
                }
            }
            _ => return Err(Error::truncated(source, "no end frame")),
        }
        let mut iter = frames.iter().peekable();
        let cipher = match iter.peek() {
            Some(f) if f.tag == TAG_KEYCHECK => {
                let check: KeyCheck = serde_json::from_slice(f.body)
                    .map_err(|e| Error::corrupt(source, format!("bad key check: {e}")))?;
                iter.next();
                let pass = self
                    .passphrase
                    .as_ref()
                    .ok_or_else(|| Error::PassphraseRequired {
                        path: source.to_owned(),
                    })?;
                Some(check.unlock(pass.as_bytes(), source, source)?)
            }
            _ if encrypted => {
                return Err(Error::corrupt(source, "encrypted export without key check"));
            }
            _ => None,
        };
        let cipher = cipher.as_ref();
        let chunks = ExportChunks {
            blobs: chunk_frames(&frames, format, source)?,
            cipher,
        };
        let mut d = Decoded::default();
        // One budget for the whole file: many items each under the limit cannot add up to
        // more than it either.
        let mut unpacker = Unpacker::with_budget(self.max_unpacked, self.max_unpacked);
        let mut pending_meta: Option<&[u8]> = None;
        let mut manifest = None;
        for f in iter {
            match f.tag {
                TAG_MANIFEST => {
                    let raw = unpacker.unpack(f.body, encrypted, cipher, &bytes[..8], source)?;
                    manifest = Some(
                        serde_json::from_slice::<Manifest>(&raw)
                            .map_err(|e| Error::corrupt(source, format!("bad manifest: {e}")))?,
                    );
                }
                TAG_STATE => d.state_json = Some(f.body),
                TAG_HISTORY => {
                    d.history = history::decode(f.body, source, cipher, &mut unpacker)?.records;
                }
                TAG_SCROLLBACK => {
                    let raw =
                        seal::decode_blob(&mut unpacker, Kind::Scrollback, f.body, cipher, source)?;
                    d.scrollback = Some(Scrollback::decode(&raw, source)?);
                }
                TAG_CONTEXT => {
                    d.context = Some(seal::decode_blob(
                        &mut unpacker,
                        Kind::Context,
                        f.body,
                        cipher,
                        source,
                    )?);
                }
                TAG_SNAP_META => pending_meta = Some(f.body),
                TAG_CHUNK if format == FORMAT_CHUNKED => {}
                TAG_SNAP_BUNDLE | TAG_SNAP_CHUNKS => {
                    let meta = pending_meta
                        .take()
                        .ok_or_else(|| Error::corrupt(source, "snapshot without metadata"))?;
                    let from = match f.tag {
                        TAG_SNAP_CHUNKS if format == FORMAT_CHUNKED => {
                            Source::Export(Some(&chunks))
                        }
                        TAG_SNAP_CHUNKS => {
                            return Err(Error::corrupt(
                                source,
                                "a chunk manifest in a format 1 export",
                            ));
                        }
                        _ => Source::Export(None),
                    };
                    let snap = self.decode_snapshot(
                        (meta, source),
                        (f.body, source),
                        cipher,
                        &mut unpacker,
                        from,
                    )?;
                    check_imported_snapshot(&snap)?;
                    d.snapshots.push(snap);
                }
                TAG_END => break,
                other => return Err(Error::corrupt(source, format!("unknown section {other}"))),
            }
        }
        let manifest = manifest.ok_or_else(|| Error::corrupt(source, "no manifest"))?;
        if manifest.snapshots != d.snapshots.len() as u64 {
            return Err(Error::corrupt(
                source,
                "snapshot count differs from the manifest",
            ));
        }
        let state_json = d
            .state_json
            .ok_or_else(|| Error::corrupt(source, "no session state"))?;
        let state: SessionState =
            decode_json(state_json, Kind::State, cipher, source, &mut unpacker)?;
        check_name(&manifest.name)?;
        check_name(&state.config.name)?;
        Decoded {
            state: Some(state),
            ..d
        }
        .finish(source)
    }
}

/// The chunks a chunk-once export carries, by id (none in format 1). A chunk is taken once:
/// two frames under one id are refused.
fn chunk_frames<'a>(
    frames: &[frame::Frame<'a>],
    format: u16,
    source: &Path,
) -> Result<HashMap<chunk::ChunkId, &'a [u8]>> {
    let mut blobs = HashMap::new();
    if format < FORMAT_CHUNKED {
        return Ok(blobs);
    }
    for f in frames.iter().filter(|f| f.tag == TAG_CHUNK) {
        let (id, blob) = f
            .body
            .split_at_checked(chunk::ID_LEN)
            .ok_or_else(|| Error::corrupt(source, "a chunk frame shorter than its id"))?;
        let mut key = [0u8; chunk::ID_LEN];
        key.copy_from_slice(id);
        if blobs.insert(key, blob).is_some() {
            return Err(Error::corrupt(
                source,
                format!("chunk {} is in the export twice", chunk::hex_id(&key)),
            ));
        }
    }
    Ok(blobs)
}

#[derive(Default)]
struct Decoded<'a> {
    state_json: Option<&'a [u8]>,
    state: Option<SessionState>,
    history: Vec<crate::record::ExecRecord>,
    scrollback: Option<Scrollback>,
    context: Option<Vec<u8>>,
    snapshots: Vec<Snapshot>,
}

struct Complete {
    state: SessionState,
    history: Vec<crate::record::ExecRecord>,
    scrollback: Option<Scrollback>,
    context: Option<Vec<u8>>,
    snapshots: Vec<Snapshot>,
}

impl Decoded<'_> {
    fn finish(self, source: &Path) -> Result<Complete> {
        Ok(Complete {
            state: self
                .state
                .ok_or_else(|| Error::corrupt(source, "no session state"))?,
            history: self.history,
            scrollback: self.scrollback,
            context: self.context,
            snapshots: self.snapshots,
        })
    }
}

/// The parts of an imported snapshot that become paths or are shown: its id (already checked
/// by `decode_snapshot`), its session's name and its label.
fn check_imported_snapshot(snap: &Snapshot) -> Result<()> {
    check_id("snapshot id", &snap.meta.id)?;
    check_name(&snap.meta.session_name)?;
    check_name(&snap.state.config.name)?;
    if let Some(label) = &snap.meta.label {
        check_label(label)?;
    }
    Ok(())
}

fn empty_meta(state: &SessionState) -> SnapshotMeta {
    SnapshotMeta {
        schema: SCHEMA_VERSION,
        id: String::new(),
        session: state.id.clone(),
        session_name: state.config.name.clone(),
        label: None,
        created_ms: 0,
        execs: 0,
        scrollback_lines: 0,
        bytes: 0,
    }
}
