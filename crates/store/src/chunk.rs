//! Content-addressed chunks: what snapshots are made of, so two snapshots of a session with a
//! large, mostly unchanged scrollback and history share everything but the parts that changed.
//!
//! A snapshot's sections (history records, scrollback, context, as plaintext) are cut into
//! chunks at content-defined boundaries (a gear rolling hash: a boundary depends only on the
//! bytes just before it, so lines added at the end or dropped at the front move only the chunks
//! that touch them). Each chunk is stored once, as `chunks/{id}`: a blob (kind 5) holding the
//! chunk compressed with zstd and, in an encrypted store, sealed like every other file.
//!
//! The id is SHA-256 of the chunk's plaintext in a plaintext store. In an encrypted store it
//! is HMAC-SHA256 under a key derived from the store key, and the chunker's gear table is
//! derived from that key too: without the key, ids and boundaries say nothing about the
//! plaintext (no one can test whether a chunk holds a guessed text). Reading a chunk recomputes
//! its id from what it decodes to, so a chunk file moved or swapped under another id is
//! refused.
//!
//! Chunks are written (fsynced, renamed, their directory fsynced once) before the manifest
//! that references them, and garbage-collected after snapshots are deleted: a chunk no
//! manifest references is removed. A crash in between leaves unreferenced chunks, which the
//! next collection (at `Store::open`, after a delete or a prune) removes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::crypt::Cipher;
use crate::error::{Error, Result};
use crate::file;
use crate::seal::{self, Kind, Packer, Unpacker};
use crate::store::Store;

/// No boundary before this many bytes of a chunk.
const MIN_CHUNK: usize = 2 * 1024;
/// A boundary where the rolling hash has these bits zero: 16 KiB chunks on average past the
/// minimum. The top bits: with `h << 1` each step, bit k depends only on the last k + 1 bytes,
/// so the low bits would see a 14-byte window and repetitive text would never (or always) cut.
const BOUNDARY_MASK: u64 = ((1 << 13) - 1) << 51;
/// A boundary at the latest here.
const MAX_CHUNK: usize = 64 * 1024;
/// Length of an id in bytes (hex in file names).
pub(crate) const ID_LEN: usize = 32;

pub(crate) type ChunkId = [u8; ID_LEN];

/// One chunk of a section: its id and its plaintext length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkRef {
    pub id: ChunkId,
    pub len: u32,
}

/// Content-defined chunking with a 256-entry gear table (FastCDC's rolling hash without its
/// normalisation).
pub(crate) struct Chunker {
    gear: [u64; 256],
}

impl Chunker {
    /// A table filled from `seed` (splitmix64): the store key's derivative when encrypted, a
    /// fixed seed otherwise.
    pub fn new(seed: [u8; 32]) -> Self {
        let mut state = 0u64;
        for word in seed.chunks_exact(8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            state = splitmix(&mut state.wrapping_add(u64::from_le_bytes(w)));
        }
        let mut gear = [0u64; 256];
        for g in &mut gear {
            *g = splitmix(&mut state);
        }
        Self { gear }
    }

    /// The end offsets of the chunks of `data` (the last one is `data.len()`).
    pub fn cut(&self, data: &[u8]) -> Vec<usize> {
        let mut ends = Vec::with_capacity(data.len() / MIN_CHUNK + 1);
        let mut start = 0;
        while start < data.len() {
            let rest = &data[start..];
            let mut end = rest.len().min(MAX_CHUNK);
            if rest.len() > MIN_CHUNK {
                let mut h: u64 = 0;
                for (i, b) in rest.iter().enumerate().take(end).skip(MIN_CHUNK) {
                    h = (h << 1).wrapping_add(self.gear[usize::from(*b)]);
                    if h & BOUNDARY_MASK == 0 {
                        end = i + 1;
                        break;
                    }
                }
            }
            start += end;
            ends.push(start);
        }
        ends
    }
}

/// One step of splitmix64 (Steele, Lea, Flood): a well-mixed 64-bit value per call.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A chunk's id under `cipher` (the key of the store that made it), SHA-256 without one.
pub(crate) fn id_of(cipher: Option<&Cipher>, plain: &[u8]) -> ChunkId {
    match cipher {
        Some(c) => c.chunk_id(plain),
        None => {
            use sha2::Digest;
            sha2::Sha256::digest(plain).into()
        }
    }
}

/// The chunks an export carries, by id (their blobs, not decoded yet), for the snapshot
/// manifests in it to reference. A manifest can reach nothing else: not the importing store's
/// chunks, not a file.
pub(crate) struct ExportChunks<'a> {
    pub blobs: HashMap<ChunkId, &'a [u8]>,
    /// The exporting store's key (from the export's key check), which made the ids.
    pub cipher: Option<&'a Cipher>,
}

impl ExportChunks<'_> {
    /// A section put together from the export's chunks, each decoded and its id recomputed
    /// from what it decodes to: a chunk changed, swapped or missing is refused.
    pub fn get(
        &self,
        refs: &[ChunkRef],
        total: u64,
        source: &Path,
        unpacker: &mut Unpacker,
    ) -> Result<Vec<u8>> {
        check_total(refs, total, source)?;
        let mut out = Vec::new();
        for r in refs {
            let blob = self.blobs.get(&r.id).ok_or_else(|| {
                Error::corrupt(
                    source,
                    format!(
                        "a snapshot references chunk {}, which the export does not carry",
                        hex_id(&r.id)
                    ),
                )
            })?;
            let plain = seal::decode_blob(unpacker, Kind::Chunk, blob, self.cipher, source)?;
            if plain.len() != r.len as usize || id_of(self.cipher, &plain) != r.id {
                return Err(Error::corrupt(
                    source,
                    format!("chunk {} does not match its id (altered)", hex_id(&r.id)),
                ));
            }
            out.extend_from_slice(&plain);
        }
        Ok(out)
    }
}

/// Refuses a chunk list whose lengths do not add up to its section's declared length.
fn check_total(refs: &[ChunkRef], total: u64, owner: &Path) -> Result<()> {
    let sum: u64 = refs.iter().map(|r| u64::from(r.len)).sum();
    if sum != total {
        return Err(Error::corrupt(
            owner,
            format!("its chunks add up to {sum} bytes, not the {total} it declares"),
        ));
    }
    Ok(())
}

pub(crate) fn hex_id(id: &ChunkId) -> String {
    crate::crypt::hex(id)
}

fn parse_id(name: &str) -> Option<ChunkId> {
    if name.len() != ID_LEN * 2 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    crate::crypt::unhex(name)?.try_into().ok()
}

/// What a chunk collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub chunks: u64,
    pub bytes: u64,
}

impl Store {
    pub(crate) fn chunks_dir(&self) -> PathBuf {
        self.root.join("chunks")
    }

    fn chunk_id(&self, plain: &[u8]) -> ChunkId {
        id_of(self.cipher.as_ref(), plain)
    }

    pub(crate) fn chunker(&self) -> Chunker {
        match &self.cipher {
            Some(c) => Chunker::new(c.derive_bytes(b"ai-session chunk boundaries v1")),
            None => Chunker::new(*b"ai-session chunk boundaries v1\0\0"),
        }
    }

    /// Stores `data` as chunks (those not stored yet), returning its chunk list and adding the
    /// bytes written to `written`. The caller fsyncs the chunk directory once
    /// (`sync_chunks`) before it commits anything that references them.
    pub(crate) fn put_chunks(
        &self,
        chunker: &Chunker,
        data: &[u8],
        packer: &mut Packer,
        written: &mut u64,
    ) -> Result<Vec<ChunkRef>> {
        let dir = self.chunks_dir();
        file::dir_beneath(&self.root, &dir, true)?;
        let mut refs = Vec::new();
        let mut start = 0;
        for end in chunker.cut(data) {
            let plain = &data[start..end];
            start = end;
            let id = self.chunk_id(plain);
            refs.push(ChunkRef {
                id,
                len: plain.len() as u32,
            });
            let path = dir.join(hex_id(&id));
            if file::present(&path) {
                continue;
            }
            let bytes = seal::encode_blob(packer, Kind::Chunk, plain, self.cipher.as_ref(), &path)?;
            file::write_atomic_nodirsync(&path, &bytes, self.durable)?;
            *written += bytes.len() as u64;
        }
        Ok(refs)
    }

    /// Makes the renames of the chunks just written durable.
    pub(crate) fn sync_chunks(&self) -> Result<()> {
        if self.durable {
            file::sync_dir(&self.chunks_dir())?;
        }
        Ok(())
    }

    /// Reads a section back from its chunks; `total` is its declared length. Every chunk's id
    /// is recomputed from its content.
    pub(crate) fn get_chunks(
        &self,
        refs: &[ChunkRef],
        total: u64,
        owner: &Path,
        unpacker: &mut Unpacker,
    ) -> Result<Vec<u8>> {
        check_total(refs, total, owner)?;
        let dir = self.chunks_dir();
        file::dir_beneath(&self.root, &dir, false)?;
        let mut out = Vec::with_capacity(total.min(self.max_unpacked) as usize);
        for r in refs {
            let path = dir.join(hex_id(&r.id));
            let bytes = file::read_bounded(&path, self.max_unpacked)?.ok_or_else(|| {
                Error::corrupt(owner, format!("chunk {} is missing", hex_id(&r.id)))
            })?;
            let plain =
                seal::decode_blob(unpacker, Kind::Chunk, &bytes, self.cipher.as_ref(), &path)?;
            if plain.len() != r.len as usize || self.chunk_id(&plain) != r.id {
                return Err(Error::corrupt(
                    &path,
                    "its content does not match its id (moved or altered)",
                ));
            }
            out.extend_from_slice(&plain);
        }
        Ok(out)
    }

    /// A chunk's file as stored (compressed, sealed when encrypted), for an export to carry;
    /// `owner` is the snapshot that references it.
    pub(crate) fn chunk_file(&self, id: &ChunkId, owner: &Path) -> Result<Vec<u8>> {
        let dir = self.chunks_dir();
        file::dir_beneath(&self.root, &dir, false)?;
        file::read_bounded(&dir.join(hex_id(id)), self.max_unpacked)?
            .ok_or_else(|| Error::corrupt(owner, format!("chunk {} is missing", hex_id(id))))
    }

    /// Removes every chunk no snapshot references (and leftover temporary files of the chunk
    /// directory). A manifest that cannot be read stops the collection: its chunks might be
    /// the ones about to be removed.
    pub(crate) fn collect_chunks(&self) -> Result<Collected> {
        let dir = self.chunks_dir();
        if !file::is_real_dir(&dir) {
            return Ok(Collected::default());
        }
        let live: HashSet<ChunkId> = self.referenced_chunks()?;
        let mut gone = Collected::default();
        for name in file::list_names(&dir)? {
            let Some(id) = parse_id(&name) else {
                continue;
            };
            if live.contains(&id) {
                continue;
            }
            let path = dir.join(&name);
            let len = std::fs::symlink_metadata(&path).map_or(0, |m| m.len());
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    gone.chunks += 1;
                    gone.bytes += len;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
        }
        Ok(gone)
    }

    /// Bytes on disk of the chunk directory.
    pub(crate) fn chunk_bytes(&self) -> Result<u64> {
        dir_bytes(&self.chunks_dir())
    }
}

/// The sizes of the regular files directly in `dir`.
pub(crate) fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for name in file::list_names(dir)? {
        if let Ok(m) = std::fs::symlink_metadata(dir.join(name)) {
            if m.is_file() {
                total += m.len();
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(lines: std::ops::Range<usize>) -> Vec<u8> {
        lines
            .map(|i| format!("line {i}: cargo build output, warning: unused variable `x{i}`\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn boundaries_survive_lines_dropped_in_front_and_added_at_the_end() {
        let c = Chunker::new([7; 32]);
        let a = text(0..10_000);
        let b = text(40..10_040);
        let chunks = |d: &[u8]| {
            let mut s = 0;
            c.cut(d)
                .into_iter()
                .map(|e| {
                    let out = d[s..e].to_vec();
                    s = e;
                    out
                })
                .collect::<Vec<_>>()
        };
        let (ca, cb) = (chunks(&a), chunks(&b));
        assert!(ca.len() > 20, "{} chunks", ca.len());
        assert!(ca.iter().all(|x| x.len() <= MAX_CHUNK));
        let shared = cb.iter().filter(|x| ca.contains(x)).count();
        assert!(shared + 3 >= cb.len(), "{shared} of {} shared", cb.len());
        assert_eq!(ca.concat(), a);
    }

    #[test]
    fn keyed_tables_cut_differently() {
        let a = text(0..2_000);
        assert_ne!(Chunker::new([1; 32]).cut(&a), Chunker::new([2; 32]).cut(&a));
    }
}
