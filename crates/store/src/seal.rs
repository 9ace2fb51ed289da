//! How bytes are stored: compressed with zstd (or stored as is when that is smaller), then
//! sealed with the store's key when the store is encrypted. Used by whole files ("blobs":
//! state, scrollback, context, snapshots), by history frames and by export sections.
//!
//! A packed body, before encryption, is `method u8 | raw_len u32 LE | data`. Encrypted, it is
//! `nonce[24] | ciphertext | tag[16]` of that, with the owner's header as associated data.
//!
//! A blob file is a 20-byte header and a packed body:
//!
//! ```text
//! 0   magic  "AISB"
//! 4   schema u16 LE   layout version that wrote the file (1)
//! 6   kind   u8       what the file holds (state, scrollback, context, snapshot, ...)
//! 7   flags  u8       bit 0: encrypted
//! 8   len    u64 LE   body length
//! 16  crc32  u32 LE   CRC-32 of the body as stored
//! 20  body
//! ```
//!
//! The CRC tells corruption from a wrong key: a body whose CRC matches but which does not
//! authenticate was sealed under another key.

use std::path::Path;

use crate::crypt::Cipher;
use crate::error::{Error, Result};

/// The layout version this build writes and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

const METHOD_STORED: u8 = 0;
const METHOD_ZSTD: u8 = 1;
const METHOD_ZSTD_DICT: u8 = 2;
/// Larger declared sizes are corruption, not data: nothing we write comes near.
const MAX_RAW_LEN: u32 = 1 << 31;

const BLOB_MAGIC: &[u8; 4] = b"AISB";
pub(crate) const BLOB_HEADER_LEN: usize = 20;
pub(crate) const FLAG_ENCRYPTED: u8 = 1;

/// What a blob file holds; stored in its header and checked on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    State = 1,
    Scrollback = 2,
    Context = 3,
    SnapshotMeta = 4,
    /// A snapshot chunk (`chunks/{id}`).
    Chunk = 5,
    /// A snapshot's manifest (`{snap}.blob` of a chunked snapshot): its sections' chunk lists.
    SnapshotManifest = 6,
    /// The variables a session's shell exported at its last prompt (`sessions/{id}/environment`).
    Environment = 7,
}

/// A raw-content zstd dictionary of what history records look like. Small JSON records
/// compressed one by one gain little without it; with it, the field names and common
/// values cost a few bits. Part of layout version 1: never change it (a new dictionary
/// needs a new method byte). Public for tools that read history frames themselves.
pub const RECORD_DICT: &[u8] = br#"{"command":"","exit_code":0,"cwd":"/home/","started_ms":17,"ended_ms":17,"output_start":0,"output_end":0}{"command":"cargo build --release","exit_code":1,"cwd":"/tmp/","started_ms":17,"ended_ms":17,"output_start":1,"output_end":1}{"command":"git status","exit_code":0,"cwd":"/work/","started_ms":17,"ended_ms":17,"output_start":2,"output_end":2}{"command":"ls -la","exit_code":null,"cwd":"/root/","started_ms":17,"ended_ms":17,"output_start":3,"output_end":3}make test npm run python3 cd echo cat grep"#;

/// Compression state kept across calls (zstd contexts are worth reusing: creating one costs
/// more than compressing a small record).
pub(crate) struct Packer {
    level: i32,
    plain: Option<zstd::bulk::Compressor<'static>>,
    dict: Option<zstd::bulk::Compressor<'static>>,
}

impl Packer {
    pub fn new(level: i32) -> Self {
        Self {
            level,
            plain: None,
            dict: None,
        }
    }

    /// Packs `raw`; `small_records` selects the record dictionary.
    pub fn pack(
        &mut self,
        raw: &[u8],
        small_records: bool,
        cipher: Option<&Cipher>,
        aad: &[u8],
        path: &Path,
    ) -> Result<Vec<u8>> {
        let raw_len = u32::try_from(raw.len())
            .ok()
            .filter(|n| *n < MAX_RAW_LEN)
            .ok_or_else(|| codec(path, "item too large (2 GiB or more)"))?;
        let (method, compressed) = self.compress(raw, small_records, path)?;
        let mut body = Vec::with_capacity(5 + compressed.as_ref().map_or(raw.len(), Vec::len));
        body.push(method);
        body.extend_from_slice(&raw_len.to_le_bytes());
        body.extend_from_slice(compressed.as_deref().unwrap_or(raw));
        match cipher {
            Some(c) => c.seal(&body, aad, path),
            None => Ok(body),
        }
    }

    fn compress(&mut self, raw: &[u8], dict: bool, path: &Path) -> Result<(u8, Option<Vec<u8>>)> {
        if raw.len() < 24 {
            return Ok((METHOD_STORED, None));
        }
        let level = self.level;
        let (slot, method) = if dict {
            (&mut self.dict, METHOD_ZSTD_DICT)
        } else {
            (&mut self.plain, METHOD_ZSTD)
        };
        if slot.is_none() {
            let c = if dict {
                zstd::bulk::Compressor::with_dictionary(level, RECORD_DICT)
            } else {
                zstd::bulk::Compressor::new(level)
            };
            *slot = Some(c.map_err(|e| codec(path, format!("zstd: {e}")))?);
        }
        let Some(comp) = slot.as_mut() else {
            return Ok((METHOD_STORED, None));
        };
        let out = comp
            .compress(raw)
            .map_err(|e| codec(path, format!("zstd: {e}")))?;
        if out.len() >= raw.len() {
            return Ok((METHOD_STORED, None));
        }
        Ok((method, Some(out)))
    }
}

/// The default of `Options::max_unpacked`: the most bytes one item may decode to, and one
/// import as a whole. Far above anything the store writes (a 10,000-line scrollback is under
/// 1 MiB), far below what would hurt a daemon.
pub const DEFAULT_MAX_UNPACKED: u64 = 256 * 1024 * 1024;

/// Output buffers start at most this large and grow with what the data really decodes to:
/// a declared size is a claim, never an allocation.
const FIRST_ALLOC: usize = 1024 * 1024;

/// Decompression state kept across calls, and the bound on what it may produce: each item
/// at most `limit` bytes, all items together at most `budget` (an import's whole content).
pub(crate) struct Unpacker {
    plain: Option<zstd::zstd_safe::DCtx<'static>>,
    dict: Option<zstd::zstd_safe::DCtx<'static>>,
    limit: u64,
    /// What is left of the budget.
    budget: u64,
    total: u64,
}

impl Unpacker {
    /// Each item at most `limit` bytes, with no bound on the total (a store's own files).
    pub fn new(limit: u64) -> Self {
        Self::with_budget(limit, u64::MAX)
    }

    /// Each item at most `limit` bytes, all of them together at most `budget`.
    pub fn with_budget(limit: u64, budget: u64) -> Self {
        Self {
            plain: None,
            dict: None,
            limit,
            budget,
            total: budget,
        }
    }

    /// Reverses `Packer::pack`. `encrypted` comes from the owner's header.
    pub fn unpack(
        &mut self,
        body: &[u8],
        encrypted: bool,
        cipher: Option<&Cipher>,
        aad: &[u8],
        path: &Path,
    ) -> Result<Vec<u8>> {
        let opened;
        let body = if encrypted {
            let cipher = cipher.ok_or_else(|| Error::PassphraseRequired {
                path: path.to_owned(),
            })?;
            opened = cipher.open(body, aad).ok_or_else(|| {
                Error::corrupt(
                    path,
                    "authentication failed (damaged, or sealed under another key)",
                )
            })?;
            &opened[..]
        } else {
            body
        };
        let (head, data) = body
            .split_at_checked(5)
            .ok_or_else(|| Error::corrupt(path, "packed body too short"))?;
        let method = head[0];
        let raw_len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        if raw_len >= MAX_RAW_LEN {
            return Err(Error::corrupt(path, "declared size out of range"));
        }
        self.admit(u64::from(raw_len), path)?;
        let raw_len = raw_len as usize;
        let out = match method {
            METHOD_STORED => data.to_vec(),
            METHOD_ZSTD | METHOD_ZSTD_DICT => self.decompress(data, method, raw_len, path)?,
            m => {
                return Err(Error::corrupt(
                    path,
                    format!("unknown compression method {m}"),
                ));
            }
        };
        if out.len() != raw_len {
            return Err(Error::corrupt(
                path,
                "decompressed size differs from the header",
            ));
        }
        self.budget -= raw_len as u64;
        Ok(out)
    }

    /// Refuses an item whose declared size is over the per-item limit or what is left of the
    /// budget, before anything is decompressed.
    fn admit(&self, declared: u64, path: &Path) -> Result<()> {
        if declared > self.limit {
            return Err(Error::too_large(
                path,
                format!(
                    "an item declares {declared} bytes once decompressed, more than the limit of {} bytes",
                    self.limit
                ),
            ));
        }
        if declared > self.budget {
            return Err(Error::too_large(
                path,
                format!(
                    "its items together decompress to more than the limit of {} bytes",
                    self.total
                ),
            ));
        }
        Ok(())
    }

    /// Streams `data` through zstd into a buffer that grows with the real output and stops one
    /// byte past `raw_len` (already admitted): a frame that expands beyond its declared size is
    /// cut off there and reported, whatever it would have expanded to.
    fn decompress(
        &mut self,
        data: &[u8],
        method: u8,
        raw_len: usize,
        path: &Path,
    ) -> Result<Vec<u8>> {
        use std::io::Read;
        let slot = if method == METHOD_ZSTD_DICT {
            &mut self.dict
        } else {
            &mut self.plain
        };
        if slot.is_none() {
            let mut ctx = zstd::zstd_safe::DCtx::try_create()
                .ok_or_else(|| codec(path, "zstd: cannot allocate a decompression context"))?;
            if method == METHOD_ZSTD_DICT {
                ctx.load_dictionary(RECORD_DICT)
                    .map_err(|code| codec(path, format!("zstd dictionary: error {code}")))?;
            }
            *slot = Some(ctx);
        }
        let Some(ctx) = slot.as_mut() else {
            return Err(codec(path, "zstd context missing"));
        };
        let mut out = Vec::with_capacity(raw_len.min(FIRST_ALLOC));
        // `with_context` resets the session and keeps the dictionary, so one context serves
        // every frame of a file.
        zstd::stream::read::Decoder::with_context(data, ctx)
            .single_frame()
            .take(raw_len as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::corrupt(path, format!("zstd: {e}")))?;
        if out.len() > raw_len {
            return Err(Error::corrupt(
                path,
                format!("decompresses to more than the {raw_len} bytes its header declares"),
            ));
        }
        Ok(out)
    }
}

fn codec(path: &Path, detail: impl Into<String>) -> Error {
    Error::Codec {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

fn blob_header(kind: Kind, encrypted: bool) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(BLOB_MAGIC);
    h[4..6].copy_from_slice(&(SCHEMA_VERSION as u16).to_le_bytes());
    h[6] = kind as u8;
    h[7] = if encrypted { FLAG_ENCRYPTED } else { 0 };
    h
}

/// Encodes a whole blob file.
pub(crate) fn encode_blob(
    packer: &mut Packer,
    kind: Kind,
    raw: &[u8],
    cipher: Option<&Cipher>,
    path: &Path,
) -> Result<Vec<u8>> {
    let head = blob_header(kind, cipher.is_some());
    let body = packer.pack(raw, false, cipher, &head, path)?;
    let mut out = Vec::with_capacity(BLOB_HEADER_LEN + body.len());
    out.extend_from_slice(&head);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Is this the start of a blob file (as opposed to, say, plain JSON)?
pub(crate) fn is_blob(bytes: &[u8]) -> bool {
    bytes.starts_with(BLOB_MAGIC)
}

/// Decodes a whole blob file, checking magic, version, kind, length and checksum.
pub(crate) fn decode_blob(
    unpacker: &mut Unpacker,
    kind: Kind,
    bytes: &[u8],
    cipher: Option<&Cipher>,
    path: &Path,
) -> Result<Vec<u8>> {
    if bytes.len() < BLOB_HEADER_LEN {
        if !bytes.is_empty() && !BLOB_MAGIC.starts_with(&bytes[..bytes.len().min(4)]) {
            return Err(Error::corrupt(path, "not an ai-session file (bad magic)"));
        }
        return Err(Error::truncated(
            path,
            format!(
                "{} bytes, shorter than the {BLOB_HEADER_LEN}-byte header",
                bytes.len()
            ),
        ));
    }
    if !is_blob(bytes) {
        return Err(Error::corrupt(path, "not an ai-session file (bad magic)"));
    }
    let schema = u32::from(u16::from_le_bytes([bytes[4], bytes[5]]));
    if schema > SCHEMA_VERSION {
        return Err(Error::NewerVersion {
            path: path.to_owned(),
            found: schema,
            supported: SCHEMA_VERSION,
        });
    }
    if bytes[6] != kind as u8 {
        return Err(Error::corrupt(
            path,
            format!(
                "holds item kind {} where kind {} was expected",
                bytes[6], kind as u8
            ),
        ));
    }
    let encrypted = bytes[7] & FLAG_ENCRYPTED != 0;
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&bytes[8..16]);
    let len = u64::from_le_bytes(len8);
    let crc = u32::from_le_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let body = &bytes[BLOB_HEADER_LEN..];
    if (body.len() as u64) < len {
        return Err(Error::truncated(
            path,
            format!("body has {} of {len} bytes", body.len()),
        ));
    }
    if body.len() as u64 > len {
        return Err(Error::corrupt(path, "trailing bytes after the body"));
    }
    if crc32fast::hash(body) != crc {
        return Err(Error::corrupt(path, "checksum mismatch"));
    }
    unpacker.unpack(body, encrypted, cipher, &bytes[..8], path)
}
