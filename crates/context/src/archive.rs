//! The archive: every entry that left the live window, in append-only zstd frames.
//!
//! A frame is a 33-byte header followed by one zstd frame holding the entries as JSON lines:
//!
//! ```text
//! magic "AXCF" | version u8 | first_seq u64 | last_seq u64 | count u32 | raw_len u32 | body_len u32 | body
//! ```
//!
//! (integers little-endian). Entries are archived oldest first and contiguous, so entry `seq`
//! is line `seq - first_seq` of the frame whose range holds it. Frames are only ever appended:
//! a persistence layer appends the bytes [`Archive::take_unpersisted`] hands it to a file and
//! hands the whole file back to [`Archive::from_bytes`].
//!
//! Entries gather as JSON lines in an open tail until it holds [`FRAME_TARGET`] bytes, then are
//! sealed into one frame: frames of a useful size compress better and faster than a frame per
//! compression. The open tail is part of the context's state (`state_bytes`), so nothing waits
//! outside both the state and the frames.

use serde::Serialize;

use crate::ContextError;
use crate::entry::Entry;

/// Frame magic.
pub const FRAME_MAGIC: [u8; 4] = *b"AXCF";
/// Frame format version.
pub const FRAME_VERSION: u8 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 33;
/// Raw JSON bytes at which the open tail is sealed into a frame; fetching one entry never
/// decompresses much more than this.
pub const FRAME_TARGET: usize = 256 * 1024;

/// Where one frame sits in the archive's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FrameInfo {
    /// First entry in the frame.
    pub first_seq: u64,
    /// Last entry in the frame.
    pub last_seq: u64,
    /// Entries in the frame.
    pub count: u32,
    /// Uncompressed JSON bytes.
    pub raw_len: u32,
    /// Offset of the frame's header in the archive bytes.
    pub offset: usize,
    /// Header plus body.
    pub len: usize,
}

/// Archived entries.
#[derive(Default)]
pub struct Archive {
    bytes: Vec<u8>,
    frames: Vec<FrameInfo>,
    persisted: usize,
    raw_total: u64,
    /// JSON lines of archived entries not yet sealed into a frame.
    tail: Vec<u8>,
    /// Entries in `tail`, and the first one's seq.
    tail_count: u32,
    tail_first: u64,
    compressor: Option<(i32, zstd::bulk::Compressor<'static>)>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("frames", &self.frames.len())
            .field("bytes", &self.bytes.len())
            .field("persisted", &self.persisted)
            .finish()
    }
}

impl Archive {
    /// Appends `entries` (contiguous, oldest first, following the last archived entry) to the
    /// open tail, sealing it into a frame each time it reaches [`FRAME_TARGET`] bytes.
    pub fn append(&mut self, entries: &[Entry], level: i32) -> Result<(), ContextError> {
        for e in entries {
            let expected = self.last_seq().map_or(e.seq, |l| l + 1);
            if e.seq != expected {
                return Err(ContextError::Corrupt(format!(
                    "archive append out of order: entry {} where {expected} belongs",
                    e.seq
                )));
            }
            if self.tail_count == 0 {
                self.tail_first = e.seq;
            }
            serde_json::to_writer(&mut self.tail, e)?;
            self.tail.push(b'\n');
            self.tail_count += 1;
            if self.tail.len() >= FRAME_TARGET {
                self.seal(level)?;
            }
        }
        Ok(())
    }

    /// Seals the open tail into a frame now (on session close, so the archive file alone holds
    /// everything).
    pub fn seal(&mut self, level: i32) -> Result<(), ContextError> {
        if self.tail_count == 0 {
            return Ok(());
        }
        let raw = std::mem::take(&mut self.tail);
        let (first, count) = (self.tail_first, self.tail_count);
        self.tail_count = 0;
        self.push_frame(first, first + u64::from(count) - 1, count, &raw, level)
    }

    /// Entries archived but not sealed into a frame yet, oldest first.
    pub fn tail_entries(&self) -> Result<Vec<Entry>, ContextError> {
        self.tail
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| Ok(serde_json::from_slice(l)?))
            .collect()
    }

    /// Puts back the open tail after loading the frames (from the context's state).
    pub fn restore_tail(&mut self, entries: &[Entry]) -> Result<(), ContextError> {
        for e in entries {
            let expected = self.last_seq().map_or(e.seq, |l| l + 1);
            if e.seq != expected {
                return Err(ContextError::Corrupt(format!(
                    "archive tail starts at entry {} where {expected} belongs",
                    e.seq
                )));
            }
            if self.tail_count == 0 {
                self.tail_first = e.seq;
            }
            serde_json::to_writer(&mut self.tail, e)?;
            self.tail.push(b'\n');
            self.tail_count += 1;
        }
        Ok(())
    }

    fn push_frame(
        &mut self,
        first_seq: u64,
        last_seq: u64,
        count: u32,
        raw: &[u8],
        level: i32,
    ) -> Result<(), ContextError> {
        let compressor = match &mut self.compressor {
            Some((l, c)) if *l == level => c,
            slot => &mut slot.insert((level, zstd::bulk::Compressor::new(level)?)).1,
        };
        let body = compressor.compress(raw)?;
        let raw_len = u32::try_from(raw.len()).map_err(|_| too_big())?;
        let body_len = u32::try_from(body.len()).map_err(|_| too_big())?;
        let offset = self.bytes.len();
        self.bytes.extend_from_slice(&FRAME_MAGIC);
        self.bytes.push(FRAME_VERSION);
        self.bytes.extend_from_slice(&first_seq.to_le_bytes());
        self.bytes.extend_from_slice(&last_seq.to_le_bytes());
        self.bytes.extend_from_slice(&count.to_le_bytes());
        self.bytes.extend_from_slice(&raw_len.to_le_bytes());
        self.bytes.extend_from_slice(&body_len.to_le_bytes());
        self.bytes.extend_from_slice(&body);
        self.raw_total += raw.len() as u64;
        self.frames.push(FrameInfo {
            first_seq,
            last_seq,
            count,
            raw_len,
            offset,
            len: HEADER_LEN + body.len(),
        });
        Ok(())
    }

    /// Loads an archive from frames concatenated in order (what `take_unpersisted` handed out,
    /// appended to one file). Everything loaded counts as persisted.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ContextError> {
        let mut archive = Archive::default();
        let mut at = 0;
        while at < bytes.len() {
            let info = parse_header(&bytes[at..], at)?;
            if let Some(prev) = archive.frames.last() {
                if info.first_seq != prev.last_seq + 1 {
                    return Err(ContextError::Corrupt(format!(
                        "archive frame at byte {at} starts at entry {} after {}",
                        info.first_seq, prev.last_seq
                    )));
                }
            }
            archive.raw_total += u64::from(info.raw_len);
            archive.frames.push(info);
            at += info.len;
        }
        archive.bytes = bytes.to_vec();
        archive.persisted = bytes.len();
        Ok(archive)
    }

    /// Drops frames holding entries after `last` (they were appended after the state that is
    /// being loaded was saved). A frame straddling `last` is kept whole.
    pub fn truncate_after(&mut self, last: Option<u64>) {
        let keep = match last {
            Some(l) => self.frames.partition_point(|f| f.first_seq <= l),
            None => 0,
        };
        if keep < self.frames.len() {
            let end = self.frames[keep].offset;
            self.frames.truncate(keep);
            self.bytes.truncate(end);
            self.persisted = self.persisted.min(end);
            self.raw_total = self.frames.iter().map(|f| u64::from(f.raw_len)).sum();
        }
    }

    /// The frames not yet handed to persistence, as bytes to append to the archive file; they
    /// count as persisted from now on. Frames stay in memory for lookups.
    pub fn take_unpersisted(&mut self) -> Vec<u8> {
        let new = self.bytes[self.persisted..].to_vec();
        self.persisted = self.bytes.len();
        new
    }

    /// All frames, as bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The frames' headers.
    pub fn frames(&self) -> &[FrameInfo] {
        &self.frames
    }

    /// Entries archived (sealed or in the open tail).
    pub fn len(&self) -> u64 {
        self.frames.iter().map(|f| u64::from(f.count)).sum::<u64>() + u64::from(self.tail_count)
    }

    /// Whether nothing is archived.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Uncompressed JSON bytes of everything archived.
    pub fn raw_bytes(&self) -> u64 {
        self.raw_total + self.tail.len() as u64
    }

    /// The last archived entry's seq.
    pub fn last_seq(&self) -> Option<u64> {
        if self.tail_count > 0 {
            return Some(self.tail_first + u64::from(self.tail_count) - 1);
        }
        self.frames.last().map(|f| f.last_seq)
    }

    /// The last sealed entry's seq.
    pub fn sealed_last_seq(&self) -> Option<u64> {
        self.frames.last().map(|f| f.last_seq)
    }

    /// The archived entry `seq`, decompressing only its frame.
    pub fn get(&self, seq: u64) -> Result<Option<Entry>, ContextError> {
        if self.tail_count > 0 && seq >= self.tail_first {
            let line = self
                .tail
                .split(|b| *b == b'\n')
                .nth((seq - self.tail_first) as usize)
                .filter(|l| !l.is_empty());
            return match line {
                Some(l) => Ok(Some(serde_json::from_slice(l)?)),
                None => Ok(None),
            };
        }
        let i = self.frames.partition_point(|f| f.last_seq < seq);
        let Some(info) = self.frames.get(i).filter(|f| f.first_seq <= seq) else {
            return Ok(None);
        };
        let raw = self.decompress(info)?;
        let line = raw
            .split(|b| *b == b'\n')
            .nth((seq - info.first_seq) as usize)
            .ok_or_else(|| ContextError::Corrupt(format!("entry {seq} missing from its frame")))?;
        let entry: Entry = serde_json::from_slice(line)?;
        if entry.seq != seq {
            return Err(ContextError::Corrupt(format!(
                "frame holds entry {} where {seq} belongs",
                entry.seq
            )));
        }
        Ok(Some(entry))
    }

    /// Every archived entry, oldest first, handed to `f` one frame at a time.
    pub fn for_each(&self, mut f: impl FnMut(Entry)) -> Result<(), ContextError> {
        for info in &self.frames {
            let raw = self.decompress(info)?;
            for line in raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                f(serde_json::from_slice(line)?);
            }
        }
        for line in self.tail.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            f(serde_json::from_slice(line)?);
        }
        Ok(())
    }

    fn decompress(&self, info: &FrameInfo) -> Result<Vec<u8>, ContextError> {
        let body = self
            .bytes
            .get(info.offset + HEADER_LEN..info.offset + info.len)
            .ok_or_else(|| ContextError::Corrupt("frame past the end of the archive".into()))?;
        Ok(zstd::bulk::decompress(body, info.raw_len as usize)?)
    }
}

fn too_big() -> ContextError {
    ContextError::Corrupt("archive frame over 4 GiB".into())
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

fn parse_header(b: &[u8], offset: usize) -> Result<FrameInfo, ContextError> {
    if b.len() < HEADER_LEN {
        return Err(ContextError::Corrupt(format!(
            "archive truncated in a frame header at byte {offset}"
        )));
    }
    if b[..4] != FRAME_MAGIC {
        return Err(ContextError::BadMagic {
            found: b[..4].to_vec(),
        });
    }
    if b[4] > FRAME_VERSION {
        return Err(ContextError::UnsupportedVersion {
            found: b[4],
            supported: FRAME_VERSION,
        });
    }
    let body_len = le_u32(&b[29..]) as usize;
    if b.len() < HEADER_LEN + body_len {
        return Err(ContextError::Corrupt(format!(
            "archive truncated in the frame at byte {offset}"
        )));
    }
    Ok(FrameInfo {
        first_seq: le_u64(&b[5..]),
        last_seq: le_u64(&b[13..]),
        count: le_u32(&b[21..]),
        raw_len: le_u32(&b[25..]),
        offset,
        len: HEADER_LEN + body_len,
    })
}
