//! `history.log`: one frame per `append` (one exec, or a small batch), each frame an
//! independent zstd frame (with the record dictionary), sealed when the store is encrypted.
//! The file is only ever appended to, never rewritten (except once, when a plaintext history
//! is moved into a store that has since been encrypted, or a torn tail is cut off).
//!
//! ```text
//! header  "AISH" | schema u16 LE | flags u8 (bit 0: encrypted) | 0u8
//! frames  see `frame`: tag = number of records; body = packed JSON lines
//! ```
//!
//! Appends are not fsynced: a killed process loses nothing that `write` accepted (it is in
//! the page cache). `sync` (called by `Store::sync` and before a snapshot) makes them durable
//! against power loss.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::crypt::Cipher;
use crate::error::{Error, Result};
use crate::frame;
use crate::record::ExecRecord;
use crate::seal::{FLAG_ENCRYPTED, Packer, SCHEMA_VERSION, Unpacker};

const MAGIC: &[u8; 4] = b"AISH";
pub(crate) const HEADER_LEN: usize = 8;

pub(crate) fn header(encrypted: bool) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4..6].copy_from_slice(&(SCHEMA_VERSION as u16).to_le_bytes());
    h[6] = if encrypted { FLAG_ENCRYPTED } else { 0 };
    h
}

/// An open history file, positioned at its end.
pub(crate) struct HistoryWriter {
    file: File,
    path: PathBuf,
    header: [u8; HEADER_LEN],
    len: u64,
    dirty: bool,
    packer: Packer,
    buf: Vec<u8>,
}

impl HistoryWriter {
    /// Opens (or creates) the file, cutting off a torn tail left by a killed writer. A
    /// symbolic link in its place is refused, never followed. `limit` bounds each frame's
    /// decoded size when an old history has to be read back to be rewritten.
    pub fn open(path: &Path, cipher: Option<&Cipher>, level: i32, limit: u64) -> Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(crate::file::NOFOLLOW)
            .open(path)
            .map_err(|e| crate::file::open_error("open", path, e))?;
        let bytes = crate::file::read(path)?;
        let head = header(cipher.is_some());
        let mut good = bytes.len();
        if bytes.is_empty() {
            file.write_all(&head)
                .map_err(|e| Error::io("write", path, e))?;
            good = HEADER_LEN;
        } else {
            let loaded = parse(&bytes, path)?;
            if loaded.encrypted != cipher.is_some() {
                drop(file);
                // A plaintext history in a store that is now encrypted (or the reverse, which
                // `Store::open` prevents): rewrite it once in the store's mode.
                let records = read(path, cipher, limit)?.records;
                rewrite(path, &records, cipher, level)?;
                return Self::open(path, cipher, level, limit);
            }
            if loaded.good_len < bytes.len() {
                good = loaded.good_len;
                file.set_len(good as u64)
                    .map_err(|e| Error::io("truncate torn tail of", path, e))?;
            }
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            header: head,
            len: good as u64,
            dirty: false,
            packer: Packer::new(level),
            buf: Vec::with_capacity(512),
        })
    }

    /// Appends one frame holding `records`. No fsync (see the module's comment).
    pub fn append(&mut self, records: &[ExecRecord], cipher: Option<&Cipher>) -> Result<()> {
        let mut raw = Vec::with_capacity(256 * records.len());
        for r in records {
            serde_json::to_writer(&mut raw, r).map_err(|e| Error::Codec {
                path: self.path.clone(),
                detail: format!("encode record: {e}"),
            })?;
            raw.push(b'\n');
        }
        let body = self
            .packer
            .pack(&raw, true, cipher, &self.header, &self.path)?;
        self.buf.clear();
        frame::encode(records.len() as u32, &body, &mut self.buf);
        use std::os::unix::fs::FileExt;
        if let Err(e) = self.file.write_all_at(&self.buf, self.len) {
            // A short write (disk full) leaves part of a frame: cut it so the next append
            // does not land after garbage. If even that fails, the scan on load ignores it.
            self.file.set_len(self.len).ok();
            return Err(Error::io("append to", &self.path, e));
        }
        self.len += self.buf.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Makes the appends so far durable.
    pub fn sync(&mut self) -> Result<()> {
        if self.dirty {
            self.file
                .sync_data()
                .map_err(|e| Error::io("fsync", &self.path, e))?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// A history file read back.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub records: Vec<ExecRecord>,
}

struct Parsed<'a> {
    encrypted: bool,
    good_len: usize,
    scan: frame::Scan<'a>,
}

fn parse<'a>(bytes: &'a [u8], path: &Path) -> Result<Parsed<'a>> {
    if bytes.len() < HEADER_LEN {
        // A header is written before any frame; a shorter file is a torn creation.
        if MAGIC.starts_with(&bytes[..bytes.len().min(4)]) {
            return Ok(Parsed {
                encrypted: false,
                good_len: 0,
                scan: frame::Scan {
                    frames: Vec::new(),
                    good_len: 0,
                    torn: bytes.len(),
                },
            });
        }
        return Err(Error::corrupt(
            path,
            "not an ai-session history (bad magic)",
        ));
    }
    if &bytes[..4] != MAGIC {
        return Err(Error::corrupt(
            path,
            "not an ai-session history (bad magic)",
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
    let scan = frame::scan(&bytes[HEADER_LEN..], HEADER_LEN, path)?;
    Ok(Parsed {
        encrypted: bytes[6] & FLAG_ENCRYPTED != 0,
        good_len: HEADER_LEN + scan.good_len,
        scan,
    })
}

/// Reads every record; a missing file is an empty history. Each frame decodes to at most
/// `limit` bytes.
pub(crate) fn read(path: &Path, cipher: Option<&Cipher>, limit: u64) -> Result<Loaded> {
    let Some(bytes) = crate::file::read_optional(path)? else {
        return Ok(Loaded::default());
    };
    decode(&bytes, path, cipher, &mut Unpacker::new(limit))
}

/// Reads only the number of records and the last one (for `load_all_sessions`).
pub(crate) fn read_last(
    path: &Path,
    cipher: Option<&Cipher>,
    limit: u64,
) -> Result<(u64, Option<ExecRecord>, u64)> {
    let Some(bytes) = crate::file::read_optional(path)? else {
        return Ok((0, None, 0));
    };
    let parsed = parse(&bytes, path)?;
    let count = parsed.scan.frames.iter().map(|f| u64::from(f.tag)).sum();
    let mut last = None;
    if let Some(f) = parsed.scan.frames.last() {
        let header = &bytes[..HEADER_LEN];
        let raw = Unpacker::new(limit).unpack(f.body, parsed.encrypted, cipher, header, path)?;
        last = parse_records(&raw, path)?.pop();
    }
    Ok((count, last, parsed.scan.torn as u64))
}

/// Decodes a history image; `unpacker` bounds what its frames decode to.
pub(crate) fn decode(
    bytes: &[u8],
    path: &Path,
    cipher: Option<&Cipher>,
    unpacker: &mut Unpacker,
) -> Result<Loaded> {
    let parsed = parse(bytes, path)?;
    let header = bytes.get(..HEADER_LEN).unwrap_or_default();
    let mut records = Vec::new();
    for f in &parsed.scan.frames {
        let raw = unpacker.unpack(f.body, parsed.encrypted, cipher, header, path)?;
        records.extend(parse_records(&raw, path)?);
    }
    Ok(Loaded { records })
}

pub(crate) fn parse_records(raw: &[u8], path: &Path) -> Result<Vec<ExecRecord>> {
    raw.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l)
                .map_err(|e| Error::corrupt(path, format!("bad history record: {e}")))
        })
        .collect()
}

/// The records as JSON lines: the plaintext a snapshot's history section is chunked from.
pub(crate) fn json_lines(records: &[ExecRecord], path: &Path) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(records.len() * 200);
    for r in records {
        serde_json::to_writer(&mut raw, r).map_err(|e| Error::Codec {
            path: path.to_owned(),
            detail: format!("encode record: {e}"),
        })?;
        raw.push(b'\n');
    }
    Ok(raw)
}

/// Encodes `records` as a complete history file, one frame per batch of up to 64 records.
pub(crate) fn encode_all(
    records: &[ExecRecord],
    cipher: Option<&Cipher>,
    level: i32,
    path: &Path,
) -> Result<Vec<u8>> {
    let head = header(cipher.is_some());
    let mut packer = Packer::new(level);
    let mut out = head.to_vec();
    for batch in records.chunks(64) {
        let mut raw = Vec::new();
        for r in batch {
            serde_json::to_writer(&mut raw, r).map_err(|e| Error::Codec {
                path: path.to_owned(),
                detail: format!("encode record: {e}"),
            })?;
            raw.push(b'\n');
        }
        let body = packer.pack(&raw, true, cipher, &head, path)?;
        frame::encode(batch.len() as u32, &body, &mut out);
    }
    Ok(out)
}

/// Replaces a history file as a whole (migration, import, change of encryption).
pub(crate) fn rewrite(
    path: &Path,
    records: &[ExecRecord],
    cipher: Option<&Cipher>,
    level: i32,
) -> Result<()> {
    let bytes = encode_all(records, cipher, level, path)?;
    crate::file::write_atomic(path, &bytes, true)
}

/// Length of the good prefix of a history file and the number of records in it.
pub(crate) fn good_prefix(bytes: &[u8], path: &Path) -> Result<(usize, u64)> {
    let parsed = parse(bytes, path)?;
    let count = parsed.scan.frames.iter().map(|f| u64::from(f.tag)).sum();
    Ok((parsed.good_len, count))
}
