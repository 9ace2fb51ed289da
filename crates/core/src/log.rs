//! The append-only output log of a session, addressed by absolute byte offsets.
//!
//! Every byte the program writes is appended here before anything else looks at it, so readers
//! that remember an offset never miss or repeat output. The log lives in segment files named by
//! their first offset; when the total passes the bound, the oldest segment is deleted and the
//! log's start moves forward, which readers see as `dropped` bytes. Only the newest segment is
//! kept open, so a session costs one descriptor however long its log is.
//!
//! Offsets count the bytes the program wrote, not the bytes that reached the disk: a write that
//! fails (a full disk) loses its bytes but never shifts later offsets. Each segment's length is
//! exactly what its file holds (a short write is counted, a torn sealed block is cut off), and
//! the bytes that could not be written are a gap between the segment and the next one, which
//! starts at the offset of the next byte written. Readers see a gap as bytes they were not
//! given (`Chunk::start` past the offset asked for); [`OutputLog::lost_in`] counts them. The log
//! is *degraded* ([`OutputLog::degraded`]) from a failed write until a write succeeds again.
//!
//! With a [`LogKey`] (the daemon gives one when the store is encrypted) nothing the program
//! printed, nor what was typed and echoed, reaches the disk in clear. A segment then holds
//! sealed blocks of `SEAL_BLOCK` bytes of output, each at a fixed place:
//!
//! ```text
//! block k of a segment, at file offset k * (SEAL_BLOCK + 40):
//!   nonce[24] | XChaCha20-Poly1305(output bytes) | tag[16]
//!   associated data: log id (16 random bytes) | segment base u64 LE | k u64 LE
//! ```
//!
//! so reading any offset costs one positioned read and one block to open. The last, partial
//! block stays in memory and is written out (sealed) when the log is released; the next append
//! reads it back. A log is never read by a later daemon (each session starts a fresh one), so
//! the key lives only in the daemon's memory: segments a killed daemon leaves behind cannot be
//! opened by anyone.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::problems::{Problems, scan};

/// Default bound on a session's log on disk.
pub const DEFAULT_LOG_BYTES: u64 = 64 * 1024 * 1024;

/// Output bytes per sealed block: 40 bytes of nonce and tag per 16 KiB (0.24%), and a read at
/// any offset opens at most 16 KiB it does not need.
pub const SEAL_BLOCK: usize = 16 * 1024;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Room a sealed block takes in its segment file.
const SLOT: u64 = (SEAL_BLOCK + NONCE_LEN + TAG_LEN) as u64;

/// The key output logs are sealed with. Cheap to clone (all sessions share one).
#[derive(Clone)]
pub struct LogKey(Arc<XChaCha20Poly1305>);

impl LogKey {
    /// A fresh random key, for this process only.
    pub fn random() -> std::io::Result<Self> {
        let mut key = [0u8; 32];
        random(&mut key)?;
        let aead = XChaCha20Poly1305::new_from_slice(&key).map_err(std::io::Error::other);
        key.fill(0);
        Ok(Self(Arc::new(aead?)))
    }
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogKey(..)")
    }
}

struct Segment {
    base: u64,
    len: u64,
}

/// What a sealed log keeps besides its segments.
struct Sealing {
    key: LogKey,
    /// Bound into every block, so a block copied from another log does not open here.
    log_id: [u8; 16],
    /// Output of the newest segment's last, partial block, not yet on disk (unless
    /// `tail_on_disk`). Invariant while loaded: `tail.len() == newest.len % SEAL_BLOCK`.
    tail: Vec<u8>,
    /// The partial block was written out at `release` and `tail` freed; the next append
    /// reads it back.
    tail_on_disk: bool,
}

impl Sealing {
    fn aad(&self, base: u64, block: u64) -> [u8; 32] {
        let mut aad = [0u8; 32];
        aad[..16].copy_from_slice(&self.log_id);
        aad[16..24].copy_from_slice(&base.to_le_bytes());
        aad[24..].copy_from_slice(&block.to_le_bytes());
        aad
    }

    fn seal(&self, base: u64, block: u64, plain: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce)?;
        let aad = self.aad(base, block);
        let sealed = self
            .key
            .0
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .map_err(|_| std::io::Error::other("sealing a log block failed"))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Reads block `block` (`len` output bytes) of the segment at `base` from `file`.
    fn open(&self, file: &File, base: u64, block: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let mut sealed = vec![0u8; len + NONCE_LEN + TAG_LEN];
        file.read_exact_at(&mut sealed, block * SLOT)?;
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| std::io::Error::other("short nonce"))?;
        let aad = self.aad(base, block);
        self.key
            .0
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "log block at offset {} fails authentication (changed on disk)",
                        base + block * SEAL_BLOCK as u64
                    ),
                )
            })
    }
}

/// An unsealed log's bookkeeping, carried to the daemon that adopts its session (`daemon
/// upgrade`): the segments stay where they are, and the offsets go on from `end`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct LogState {
    dir: PathBuf,
    /// (first offset, stored length) of each segment, oldest first.
    segments: Vec<(u64, u64)>,
    end: u64,
    broken: bool,
    last_error: Option<String>,
    segment_bytes: u64,
    max_segments: usize,
}

pub struct OutputLog {
    dir: PathBuf,
    /// Stored bytes, oldest first. Segments do not overlap; a gap between two is output lost.
    segments: VecDeque<Segment>,
    /// The newest segment, open for appending; closed while the session sleeps.
    current: Option<File>,
    /// One past the newest byte the program wrote (stored or lost).
    end: u64,
    /// A write failed and none has succeeded since: bytes after the newest segment are lost,
    /// and the next append starts a new segment.
    broken: bool,
    /// Why the last write that failed did.
    last_error: Option<String>,
    segment_bytes: u64,
    max_segments: usize,
    sealing: Option<Sealing>,
    /// Bytes from this offset on are scanned for lines that name a problem as segments holding
    /// them are dropped (an exec's output longer than the log keeps); see [`Self::watch_from`].
    watch: Option<(u64, Problems)>,
}

/// Output that could not be written to the log: `append`'s error.
#[derive(Debug)]
pub struct Lost {
    /// The offset of the first byte of the data given to `append` (it is the offset of that
    /// data whether it was stored or not).
    pub offset: u64,
    /// The offsets now known lost: from the end of what is stored to the end of the log. A
    /// sealed log may lose bytes of earlier appends too (the block they were waiting in).
    pub range: std::ops::Range<u64>,
    pub error: std::io::Error,
}

/// Bytes read from the log.
pub struct Chunk {
    /// Offset of `data[0]`; later than the requested offset when older bytes were dropped.
    pub start: u64,
    pub data: Vec<u8>,
}

impl OutputLog {
    /// True when the log is sealed at rest (the daemon has a passphrase): nothing the session
    /// prints or is typed may reach the disk in clear.
    pub fn is_sealed(&self) -> bool {
        self.sealing.is_some()
    }

    /// Creates an empty log in `dir` (removing segments a previous session left there), bounded
    /// to about `max_bytes`; sealed under `key` when one is given.
    pub fn create(dir: &Path, max_bytes: u64, key: Option<&LogKey>) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // The first segment is emptied in place below (a directory made ahead of time has it
        // ready: see `spare.rs`); any other is an old log's.
        let first = segment_path(dir, 0);
        for entry in std::fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "seg") && path != first {
                std::fs::remove_file(path)?;
            }
        }
        let max_segments = 4;
        let mut segment_bytes = (max_bytes / max_segments as u64).max(4096);
        let sealing = match key {
            Some(key) => {
                // Whole blocks per segment: a block never straddles two files.
                segment_bytes = segment_bytes.div_ceil(SEAL_BLOCK as u64) * SEAL_BLOCK as u64;
                let mut log_id = [0u8; 16];
                random(&mut log_id)?;
                Some(Sealing {
                    key: key.clone(),
                    log_id,
                    tail: Vec::new(),
                    tail_on_disk: false,
                })
            }
            None => None,
        };
        let current = Some(open_segment(dir, 0)?);
        Ok(Self {
            dir: dir.to_owned(),
            segments: VecDeque::from([Segment { base: 0, len: 0 }]),
            current,
            end: 0,
            broken: false,
            last_error: None,
            segment_bytes,
            max_segments,
            sealing,
            watch: None,
        })
    }

    /// Closes the log for a handover and returns what the adopting daemon resumes it from.
    /// Only an unsealed log can be handed over (a sealed one's key lives only in this
    /// daemon's memory): the caller checks [`OutputLog::is_sealed`] first.
    pub(crate) fn hand_over(mut self) -> LogState {
        // Appends go straight to the file (no buffer): closing it loses nothing.
        self.current = None;
        LogState {
            dir: std::mem::take(&mut self.dir),
            segments: self.segments.iter().map(|s| (s.base, s.len)).collect(),
            end: self.end,
            broken: self.broken,
            last_error: self.last_error.take(),
            segment_bytes: self.segment_bytes,
            max_segments: self.max_segments,
        }
    }

    /// Opens a log handed over by another daemon, appending after its last byte.
    pub(crate) fn resume(state: LogState) -> Self {
        Self {
            dir: state.dir,
            segments: state
                .segments
                .into_iter()
                .map(|(base, len)| Segment { base, len })
                .collect(),
            current: None,
            end: state.end,
            broken: state.broken,
            last_error: state.last_error,
            segment_bytes: state.segment_bytes,
            max_segments: state.max_segments,
            sealing: None,
            watch: None,
        }
    }

    /// The offset of the oldest byte still stored.
    pub fn start(&self) -> u64 {
        self.segments.front().map_or(self.end, |s| s.base)
    }

    /// The offset one past the newest byte.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Why the log is missing output right now: a write failed and none has reached the disk
    /// since.
    pub fn degraded(&self) -> Option<&str> {
        self.last_error.as_deref().filter(|_| self.broken)
    }

    /// Why the last write that failed did, even if writes succeed again since.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Appends `data`; returns the offset of its first byte. The log's end always moves past
    /// `data`: what cannot be written is lost (see [`Lost`]), and the next append tries again
    /// in a new segment.
    pub fn append(&mut self, data: &[u8]) -> Result<u64, Lost> {
        let at = self.end;
        let mut rest = data;
        while !rest.is_empty() {
            match self.write_some(rest) {
                Ok(n) => {
                    if let Some(seg) = self.segments.back_mut() {
                        seg.len += n as u64;
                    }
                    self.end += n as u64;
                    rest = &rest[n..];
                }
                Err(error) => {
                    self.end = at + data.len() as u64;
                    self.broken = true;
                    self.last_error = Some(error.to_string());
                    // The descriptor is reopened (for a new segment) by the next append.
                    self.current = None;
                    let stored = self.segments.back().map_or(at, |s| s.base + s.len);
                    return Err(Lost {
                        offset: at,
                        range: stored..self.end,
                        error,
                    });
                }
            }
        }
        Ok(at)
    }

    /// Writes a first part of `data` (at least one byte) at the end of the newest segment,
    /// starting a new segment first when that one is full or output after it was lost;
    /// returns how many bytes were taken.
    fn write_some(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let newest = self.segments.back();
        let follows = newest.is_some_and(|s| s.base + s.len == self.end);
        let full = newest.is_none_or(|s| s.len >= self.segment_bytes);
        if !follows || full {
            self.start_segment()?;
        }
        let room = self
            .segments
            .back()
            .map_or(0, |s| self.segment_bytes.saturating_sub(s.len));
        let data = &data[..data.len().min(room as usize)];
        if self.sealing.is_some() {
            return self.append_sealed(data);
        }
        let n = write_once(self.current_file()?, data)?;
        self.broken = false;
        Ok(n)
    }

    /// Adds what fits of `data` to the partial block, sealing and writing the block when it
    /// fills; returns how many bytes it took.
    fn append_sealed(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let (base, len) = self
            .segments
            .back()
            .map_or((self.end, 0), |s| (s.base, s.len));
        let block = len / SEAL_BLOCK as u64;
        if self.sealing.as_ref().is_some_and(|s| s.tail_on_disk) {
            let partial = (len % SEAL_BLOCK as u64) as usize;
            self.current_file()?;
            let tail = match (&self.sealing, &self.current) {
                (Some(s), Some(file)) => s.open(file, base, block, partial)?,
                _ => return Err(std::io::Error::other("log segment not open")),
            };
            if let Some(s) = &mut self.sealing {
                s.tail = tail;
                s.tail.reserve_exact(SEAL_BLOCK - partial);
                s.tail_on_disk = false;
            }
        }
        let Some(s) = &mut self.sealing else {
            return Err(std::io::Error::other("log is not sealed"));
        };
        if s.tail.capacity() == 0 {
            s.tail.reserve_exact(SEAL_BLOCK);
        }
        let n = data.len().min(SEAL_BLOCK - s.tail.len());
        s.tail.extend_from_slice(&data[..n]);
        if s.tail.len() == SEAL_BLOCK {
            let sealed = s.seal(base, block, &s.tail);
            s.tail.clear();
            if let Err(e) = sealed.and_then(|sealed| self.write_block(&sealed, block)) {
                // The block's bytes (this append's and those already waiting in it) are lost:
                // the segment ends where the block started, and a torn block is cut off.
                if let Some(seg) = self.segments.back_mut() {
                    seg.len = block * SEAL_BLOCK as u64;
                }
                if let Some(file) = &self.current {
                    if let Err(e) = file.set_len(block * SLOT) {
                        tracing::warn!(dir = %self.dir.display(), "cannot cut a torn log block: {e}");
                    }
                }
                return Err(e);
            }
            // Only a block on disk says the disk takes writes again (a byte kept in the
            // partial block in memory does not).
            self.broken = false;
        }
        Ok(n)
    }

    fn write_block(&mut self, sealed: &[u8], block: u64) -> std::io::Result<()> {
        self.current_file()?.write_all_at(sealed, block * SLOT)
    }

    /// The newest segment's file, reopened if it was released.
    fn current_file(&mut self) -> std::io::Result<&mut File> {
        if self.current.is_none() {
            let base = self.segments.back().map_or(self.end, |s| s.base);
            let mut options = OpenOptions::new();
            options.read(true);
            // Sealed blocks are written at their place (a partial block is rewritten once it
            // fills), which `O_APPEND` would turn into appends.
            if self.sealing.is_some() {
                options.write(true);
            } else {
                options.append(true);
            }
            self.current = Some(options.open(segment_path(&self.dir, base))?);
        }
        self.current
            .as_mut()
            .ok_or_else(|| std::io::Error::other("log segment not open"))
    }

    /// Closes the newest segment's descriptor until the next append (an idle session then
    /// holds no file open for its log). A sealed log first writes out its partial block and
    /// frees it; if that fails, it stays open and in memory, and nothing is lost.
    pub fn release(&mut self) {
        if let Err(e) = self.flush_tail() {
            tracing::warn!(dir = %self.dir.display(), "log kept open: {e}");
            return;
        }
        self.current = None;
    }

    fn flush_tail(&mut self) -> std::io::Result<()> {
        let Some(s) = &self.sealing else {
            return Ok(());
        };
        if s.tail.is_empty() {
            return Ok(());
        }
        let (base, len) = self
            .segments
            .back()
            .map_or((self.end, 0), |s| (s.base, s.len));
        let block = len / SEAL_BLOCK as u64;
        let sealed = s.seal(base, block, &s.tail)?;
        self.current_file()?.write_all_at(&sealed, block * SLOT)?;
        if let Some(s) = &mut self.sealing {
            s.tail = Vec::new();
            s.tail_on_disk = true;
        }
        Ok(())
    }

    /// Starts a new segment at the log's end: the newest is full, or output was lost after it.
    fn start_segment(&mut self) -> std::io::Result<()> {
        // A full segment of a sealed log has no partial block (its size is whole blocks, and
        // a block is written the moment it fills). After lost output, the newest segment's
        // partial block is written out as `release` does; if that fails too, its bytes are
        // lost with the rest and the segment ends at its last whole block.
        if let Err(e) = self.flush_tail() {
            let cut = self.sealing.as_ref().map_or(0, |s| s.tail.len() as u64);
            if let Some(seg) = self.segments.back_mut() {
                seg.len -= cut;
                let whole = seg.len / SEAL_BLOCK as u64 * SLOT;
                if let Some(file) = &self.current {
                    if let Err(e) = file.set_len(whole) {
                        tracing::warn!(dir = %self.dir.display(), "cannot cut a torn log block: {e}");
                    }
                }
            }
            tracing::warn!(dir = %self.dir.display(), "partial log block lost: {e}");
        }
        if let Some(s) = &mut self.sealing {
            s.tail = Vec::new();
            s.tail_on_disk = false;
        }
        // An empty newest segment (a new segment whose first write failed) is replaced, not
        // kept: its name would not be the offset of its first byte.
        if self.segments.back().is_some_and(|s| s.len == 0) {
            if let Some(empty) = self.segments.pop_back() {
                self.current = None;
                remove_segment(&self.dir, empty.base)?;
            }
        }
        self.current = None;
        let file = open_segment(&self.dir, self.end)?;
        self.current = Some(file);
        self.segments.push_back(Segment {
            base: self.end,
            len: 0,
        });
        while self.segments.len() > self.max_segments {
            if let Some((from, mut problems)) = self.watch.take() {
                if let Some(old) = self.segments.front().filter(|s| s.base + s.len > from) {
                    let (a, b) = (old.base.max(from), old.base + old.len);
                    scan(&mut problems, self, a, b);
                }
                self.watch = Some((from, problems));
            }
            if let Some(old) = self.segments.pop_front() {
                remove_segment(&self.dir, old.base)?;
            }
        }
        Ok(())
    }

    /// From now on, the bytes from `from` on that the log drops are first scanned for lines
    /// that name a problem, skipping the first `skip_lines` lines (an exec's echoed command
    /// line): an exec's answer then keeps them however much its command printed. Replaces an
    /// earlier watch.
    pub(crate) fn watch_from(&mut self, from: u64, skip_lines: usize) {
        self.watch = Some((from, Problems::skipping(skip_lines)));
    }

    /// Ends the watch: where it started and what the bytes it scanned held (nothing when the
    /// log dropped none of them).
    pub(crate) fn take_watch(&mut self) -> Option<(u64, Problems)> {
        let (from, mut problems) = self.watch.take()?;
        problems.end();
        Some((from, problems))
    }

    /// Bytes in `range` that the log does not hold because they could not be written (bytes
    /// dropped from the front of the bounded log are not counted).
    pub fn lost_in(&self, range: std::ops::Range<u64>) -> u64 {
        let from = range.start.max(self.start());
        let to = range.end.min(self.end);
        if from >= to {
            return 0;
        }
        let stored: u64 = self
            .segments
            .iter()
            .map(|s| (s.base + s.len).min(to).saturating_sub(s.base.max(from)))
            .sum();
        (to - from) - stored
    }

    /// Reads up to `max` bytes starting at `from` (or at the log start, if `from` was dropped;
    /// or after the gap, if `from` was lost). The bytes returned are contiguous: a read stops
    /// at a gap, and the next one, from its start, returns the bytes after it.
    pub fn read(&self, from: u64, max: usize) -> std::io::Result<Chunk> {
        let from = from.clamp(self.start(), self.end);
        let Some(first) = self
            .segments
            .iter()
            .position(|s| s.len > 0 && s.base + s.len > from)
        else {
            return Ok(Chunk {
                start: self.end,
                data: Vec::new(),
            });
        };
        let start = from.max(self.segments[first].base);
        // The end of the run of segments that follow each other without a gap.
        let mut run_end = self.segments[first].base + self.segments[first].len;
        for seg in self.segments.iter().skip(first + 1) {
            if seg.base != run_end {
                break;
            }
            run_end += seg.len;
        }
        let want = (run_end - start).min(max as u64) as usize;
        if let Some(sealing) = &self.sealing {
            let data = self.read_sealed(sealing, start, want)?;
            return Ok(Chunk { start, data });
        }
        let mut data = Vec::with_capacity(want);
        for seg in &self.segments {
            let filled = data.len();
            if filled == want {
                break;
            }
            let pos = start + filled as u64;
            if pos >= seg.base + seg.len || pos < seg.base {
                continue;
            }
            let within = pos - seg.base;
            let n = ((seg.len - within) as usize).min(want - filled);
            let newest = self.segments.back().map(|s| s.base) == Some(seg.base);
            if let (Some(current), true) = (&self.current, newest) {
                read_exact_at_end(current, &mut data, n, within)?;
            } else {
                let file = File::open(segment_path(&self.dir, seg.base))?;
                read_exact_at_end(&file, &mut data, n, within)?;
            }
        }
        Ok(Chunk { start, data })
    }

    /// The stored bytes of `from..to`, as runs without a gap, oldest first: what a full disk
    /// lost in between is where one run ends and the next starts later.
    pub fn runs(&self, from: u64, to: u64) -> std::io::Result<Vec<Chunk>> {
        let mut out = Vec::new();
        let mut pos = from;
        while pos < to {
            let mut chunk = self.read(pos, (to - pos) as usize)?;
            if chunk.data.is_empty() || chunk.start >= to {
                break;
            }
            chunk.data.truncate((to - chunk.start) as usize);
            pos = chunk.start + chunk.data.len() as u64;
            out.push(chunk);
        }
        Ok(out)
    }

    /// `read` for a sealed log: opens each block the range touches, the partial block from
    /// memory.
    fn read_sealed(&self, s: &Sealing, start: u64, want: usize) -> std::io::Result<Vec<u8>> {
        let end = start + want as u64;
        let mut data = Vec::with_capacity(want);
        let mut pos = start;
        let newest = self.segments.back().map(|seg| seg.base);
        for seg in &self.segments {
            if pos >= end {
                break;
            }
            if pos < seg.base || pos >= seg.base + seg.len {
                continue;
            }
            let is_newest = newest == Some(seg.base);
            let opened;
            let file = match (&self.current, is_newest) {
                (Some(current), true) => current,
                _ => {
                    opened = File::open(segment_path(&self.dir, seg.base))?;
                    &opened
                }
            };
            while pos < end && pos < seg.base + seg.len {
                let within = pos - seg.base;
                let block = within / SEAL_BLOCK as u64;
                let block_start = block * SEAL_BLOCK as u64;
                let block_len = (seg.len - block_start).min(SEAL_BLOCK as u64) as usize;
                let in_memory =
                    is_newest && !s.tail.is_empty() && block_start + block_len as u64 == seg.len;
                let from = (within - block_start) as usize;
                let n = (block_len - from).min((end - pos) as usize);
                if in_memory {
                    data.extend_from_slice(&s.tail[from..from + n]);
                } else {
                    let plain = s.open(file, seg.base, block, block_len)?;
                    data.extend_from_slice(&plain[from..from + n]);
                }
                pos += n as u64;
            }
        }
        Ok(data)
    }

    /// Deletes the log's files.
    pub fn remove(mut self) -> std::io::Result<()> {
        self.current = None;
        std::fs::remove_dir_all(&self.dir)
    }
}

fn random(buf: &mut [u8]) -> std::io::Result<()> {
    getrandom::fill(buf)
        .map_err(|e| std::io::Error::other(format!("no randomness from the OS: {e}")))
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.seg"))
}

/// One `write` (retried when interrupted): the kernel either takes some bytes (counted by the
/// caller) or none (an error), so a segment's length stays its file's length whatever happens.
fn write_once(file: &mut File, data: &[u8]) -> std::io::Result<usize> {
    loop {
        match file.write(data) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    "the log segment took no bytes",
                ));
            }
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn remove_segment(dir: &Path, base: u64) -> std::io::Result<()> {
    match std::fs::remove_file(segment_path(dir, base)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

pub(crate) fn open_segment(dir: &Path, base: u64) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(segment_path(dir, base))
}

/// Reads `n` bytes at `offset` of `file` onto the end of `data`, straight into its spare
/// capacity: an output of megabytes is not zero-filled first only to be overwritten.
fn read_exact_at_end(
    file: &File,
    data: &mut Vec<u8>,
    n: usize,
    offset: u64,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    data.reserve(n);
    let mut done = 0;
    while done < n {
        let at = libc::off_t::try_from(offset + done as u64)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let spare = data.spare_capacity_mut();
        // SAFETY: `spare` has room for at least `n - done` bytes (reserved above, `done` of
        // them used since), and pread writes at most that many into it.
        let read =
            unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), n - done, at) };
        match read {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            r if r < 0 => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            r => {
                let r = r as usize;
                // SAFETY: pread initialised the first `r` bytes of the spare capacity.
                unsafe { data.set_len(data.len() + r) };
                done += r;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_absolute_and_reads_exact() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = OutputLog::create(dir.path(), 1 << 20, None).unwrap();
        assert_eq!(log.append(b"hello ").unwrap(), 0);
        assert_eq!(log.append(b"world").unwrap(), 6);
        let c = log.read(3, 100).unwrap();
        assert_eq!((c.start, c.data.as_slice()), (3, &b"lo world"[..]));
        assert!(log.read(11, 10).unwrap().data.is_empty());
        log.release();
        assert_eq!(log.read(0, 100).unwrap().data, b"hello world");
        assert_eq!(log.append(b"!").unwrap(), 11);
        assert_eq!(log.read(6, 100).unwrap().data, b"world!");
    }

    #[test]
    fn bounded_log_drops_oldest_and_reads_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = OutputLog::create(dir.path(), 4 * 4096, None).unwrap();
        let data: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(1000) {
            log.append(piece).unwrap();
        }
        assert_eq!(log.end(), 40_000);
        assert!(log.start() > 0 && log.start() <= 40_000 - 3 * 4096);
        let c = log.read(0, usize::MAX).unwrap();
        assert_eq!(c.start, log.start());
        assert_eq!(c.data, &data[c.start as usize..]);
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(files <= 4, "{files} segment files");
    }

    /// Output with a marker every few hundred bytes, so any clear fragment on disk shows.
    fn output(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        let mut i = 0u32;
        while out.len() < len {
            out.extend_from_slice(format!("MARKER_{i:06} some text {}\r\n", i % 97).as_bytes());
            i += 1;
        }
        out.truncate(len);
        out
    }

    fn segments_hold(dir: &Path, needle: &[u8]) -> bool {
        std::fs::read_dir(dir).unwrap().any(|e| {
            let bytes = std::fs::read(e.unwrap().path()).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
    }

    #[test]
    fn sealed_log_reads_exact_bytes_at_any_offset_and_writes_nothing_in_clear() {
        let dir = tempfile::tempdir().unwrap();
        let key = LogKey::random().unwrap();
        let mut log = OutputLog::create(dir.path(), 1 << 20, Some(&key)).unwrap();
        let data = output(3 * SEAL_BLOCK + 5000);
        // Pieces of every size around a block, a release (the session falls asleep) between
        // some of them: the partial block goes to disk and comes back.
        let mut at = 0;
        for (i, size) in [1, 4095, 16384, 7, 20000, 3].iter().cycle().enumerate() {
            if at == data.len() {
                break;
            }
            let end = (at + size).min(data.len());
            assert_eq!(log.append(&data[at..end]).unwrap(), at as u64);
            at = end;
            if i % 3 == 2 {
                log.release();
            }
        }
        assert_eq!(log.end(), data.len() as u64);
        for from in [
            0,
            1,
            4095,
            16383,
            16384,
            16385,
            40000,
            data.len() as u64 - 1,
        ] {
            for max in [1, 10, 16384, 50000, usize::MAX] {
                let c = log.read(from, max).unwrap();
                let end = (from as usize).saturating_add(max).min(data.len());
                assert_eq!(c.start, from);
                assert_eq!(c.data, &data[from as usize..end], "from {from} max {max}");
            }
        }
        log.release();
        assert_eq!(log.read(0, usize::MAX).unwrap().data, data);
        assert!(!segments_hold(dir.path(), b"MARKER_"));
        // The same bytes in a log without a key are there in clear (the check can fail).
        let clear_dir = tempfile::tempdir().unwrap();
        let mut clear = OutputLog::create(clear_dir.path(), 1 << 20, None).unwrap();
        clear.append(&data).unwrap();
        assert!(segments_hold(clear_dir.path(), b"MARKER_"));
    }

    #[test]
    fn sealed_log_is_bounded_and_drops_whole_segments() {
        let dir = tempfile::tempdir().unwrap();
        let key = LogKey::random().unwrap();
        let mut log = OutputLog::create(dir.path(), 4 * SEAL_BLOCK as u64, Some(&key)).unwrap();
        let data = output(10 * SEAL_BLOCK + 123);
        for piece in data.chunks(1000) {
            log.append(piece).unwrap();
        }
        assert!(log.start() > 0);
        let c = log.read(0, usize::MAX).unwrap();
        assert_eq!(c.start, log.start());
        assert_eq!(c.data, &data[c.start as usize..]);
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(files <= 4, "{files} segment files");
    }

    #[test]
    fn a_changed_sealed_block_is_an_error_not_other_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let key = LogKey::random().unwrap();
        let mut log = OutputLog::create(dir.path(), 1 << 20, Some(&key)).unwrap();
        log.append(&output(2 * SEAL_BLOCK)).unwrap();
        let seg = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&seg, &bytes).unwrap();
        log.release();
        let err = log.read(10, 10).err().unwrap();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        // The other block still reads.
        assert_eq!(log.read(SEAL_BLOCK as u64, 5).unwrap().data.len(), 5);
    }

    /// A small tmpfs mounted for one test (the tests run as root), unmounted on drop: a real
    /// file system that runs out of space.
    struct SmallFs {
        dir: tempfile::TempDir,
    }

    impl SmallFs {
        fn new(bytes: u64) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let status = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "mounting a tmpfs (needs root) failed");
            Self { dir }
        }

        fn path(&self) -> &Path {
            self.dir.path()
        }

        /// Fills the file system to the last byte.
        fn fill(&self) -> PathBuf {
            let path = self.path().join("filler");
            let mut file = File::create(&path).unwrap();
            let block = vec![b'f'; 4096];
            loop {
                match file.write(&block) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                        break;
                    }
                }
            }
            // A partly written last page may take a few more bytes.
            while file.write(b"f").is_ok_and(|n| n == 1) {}
            path
        }
    }

    impl Drop for SmallFs {
        fn drop(&mut self) {
            std::process::Command::new("umount")
                .arg(self.dir.path())
                .status()
                .ok();
        }
    }

    /// What the segment files hold, in bytes.
    fn on_disk(dir: &Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    }

    /// Appends `data` in pieces; returns the lost ranges reported.
    fn append_all(log: &mut OutputLog, data: &[u8]) -> Vec<std::ops::Range<u64>> {
        let mut lost = Vec::new();
        for piece in data.chunks(3000) {
            let at = log.end();
            match log.append(piece) {
                Ok(offset) => assert_eq!(offset, at),
                Err(l) => {
                    assert_eq!(l.offset, at);
                    assert_eq!(l.range.end, at + piece.len() as u64);
                    assert_eq!(l.error.raw_os_error(), Some(libc::ENOSPC));
                    lost.push(l.range);
                }
            }
            assert_eq!(
                log.end(),
                at + piece.len() as u64,
                "offsets count every byte"
            );
        }
        lost
    }

    /// Every byte the log still holds reads back as the byte written at that offset; returns
    /// how many bytes it holds.
    fn assert_reads_true(log: &OutputLog, data: &[u8]) -> u64 {
        let runs = log.runs(0, log.end()).unwrap();
        let mut held = 0;
        for run in &runs {
            let at = run.start as usize;
            assert_eq!(run.data, &data[at..at + run.data.len()], "run at {at}");
            held += run.data.len() as u64;
        }
        assert_eq!(log.lost_in(0..log.end()), log.end() - held);
        held
    }

    #[test]
    fn a_full_disk_loses_bytes_but_never_shifts_offsets() {
        let fs = SmallFs::new(256 * 1024);
        let dir = fs.path().join("log");
        let mut log = OutputLog::create(&dir, 1 << 20, None).unwrap();
        let data = output(200_000);
        assert!(append_all(&mut log, &data[..10_000]).is_empty());
        let filler = fs.fill();
        let lost = append_all(&mut log, &data[10_000..100_000]);
        assert!(!lost.is_empty(), "the full disk lost nothing");
        assert!(log.degraded().is_some());
        // What the segments hold is exactly what the log counts as stored, and true.
        let held = assert_reads_true(&log, &data);
        assert_eq!(on_disk(&dir), held);
        assert!(held < 100_000);
        // Space returns: the next write succeeds, in a new segment at its own offset.
        std::fs::remove_file(filler).unwrap();
        assert!(append_all(&mut log, &data[100_000..]).is_empty());
        assert!(log.degraded().is_none());
        assert!(log.last_error().is_some_and(|e| e.contains("space")));
        let c = log.read(100_000, 5000).unwrap();
        assert_eq!(
            (c.start, c.data.as_slice()),
            (100_000, &data[100_000..105_000])
        );
        // A read from inside the gap starts after it.
        let gap_start = lost[0].start;
        let c = log.read(gap_start, 10).unwrap();
        assert!(c.start > gap_start);
        assert_eq!(c.data, &data[c.start as usize..c.start as usize + 10]);
        let held = assert_reads_true(&log, &data);
        assert_eq!(on_disk(&dir), held);
        assert_eq!(log.lost_in(0..log.end()), 200_000 - held);
    }

    #[test]
    fn a_full_disk_cuts_a_sealed_log_at_whole_blocks() {
        let fs = SmallFs::new(512 * 1024);
        let dir = fs.path().join("log");
        let key = LogKey::random().unwrap();
        let mut log = OutputLog::create(&dir, 4 << 20, Some(&key)).unwrap();
        let data = output(40 * SEAL_BLOCK);
        assert!(append_all(&mut log, &data[..3 * SEAL_BLOCK + 100]).is_empty());
        let filler = fs.fill();
        let lost = append_all(&mut log, &data[3 * SEAL_BLOCK + 100..20 * SEAL_BLOCK]);
        assert!(!lost.is_empty());
        assert!(log.degraded().is_some());
        assert_reads_true(&log, &data);
        std::fs::remove_file(filler).unwrap();
        assert!(append_all(&mut log, &data[20 * SEAL_BLOCK..]).is_empty());
        assert!(log.degraded().is_none());
        log.release();
        let held = assert_reads_true(&log, &data);
        assert!(held >= 20 * SEAL_BLOCK as u64, "held {held}");
        let c = log.read(20 * SEAL_BLOCK as u64, 100).unwrap();
        assert_eq!(c.data, &data[20 * SEAL_BLOCK..20 * SEAL_BLOCK + 100]);
    }
}
