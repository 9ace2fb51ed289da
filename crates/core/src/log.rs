//! The append-only output log of a session, addressed by absolute byte offsets.
//!
//! Every byte the program writes is appended here before anything else looks at it, so readers
//! that remember an offset never miss or repeat output. The log lives in segment files named by
//! their first offset; when the total passes the bound, the oldest segment is deleted and the
//! log's start moves forward, which readers see as `dropped` bytes. Only the newest segment is
//! kept open, so a session costs one descriptor however long its log is.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Default bound on a session's log on disk.
pub const DEFAULT_LOG_BYTES: u64 = 64 * 1024 * 1024;

struct Segment {
    base: u64,
    len: u64,
}

pub struct OutputLog {
    dir: PathBuf,
    segments: VecDeque<Segment>,
    /// The newest segment, open for appending; closed while the session sleeps.
    current: Option<File>,
    end: u64,
    segment_bytes: u64,
    max_segments: usize,
}

/// Bytes read from the log.
pub struct Chunk {
    /// Offset of `data[0]`; later than the requested offset when older bytes were dropped.
    pub start: u64,
    pub data: Vec<u8>,
}

impl OutputLog {
    /// Creates an empty log in `dir` (removing segments a previous session left there), bounded
    /// to about `max_bytes`.
    pub fn create(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        for entry in std::fs::read_dir(dir)?.flatten() {
            if entry.path().extension().is_some_and(|e| e == "seg") {
                std::fs::remove_file(entry.path())?;
            }
        }
        let max_segments = 4;
        let segment_bytes = (max_bytes / max_segments as u64).max(4096);
        let current = Some(open_segment(dir, 0)?);
        Ok(Self {
            dir: dir.to_owned(),
            segments: VecDeque::from([Segment { base: 0, len: 0 }]),
            current,
            end: 0,
            segment_bytes,
            max_segments,
        })
    }

    /// The offset of the oldest byte still stored.
    pub fn start(&self) -> u64 {
        self.segments.front().map_or(self.end, |s| s.base)
    }

    /// The offset one past the newest byte.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends `data`; returns the offset of its first byte.
    pub fn append(&mut self, data: &[u8]) -> std::io::Result<u64> {
        let at = self.end;
        let mut rest = data;
        while !rest.is_empty() {
            let room = {
                let seg = self.segments.back().map_or(0, |s| s.len);
                self.segment_bytes.saturating_sub(seg)
            };
            if room == 0 {
                self.rotate()?;
                continue;
            }
            let n = rest.len().min(room as usize);
            self.current_file()?.write_all(&rest[..n])?;
            if let Some(seg) = self.segments.back_mut() {
                seg.len += n as u64;
            }
            self.end += n as u64;
            rest = &rest[n..];
        }
        Ok(at)
    }

    /// The newest segment's file, reopened if it was released.
    fn current_file(&mut self) -> std::io::Result<&mut File> {
        if self.current.is_none() {
            let base = self.segments.back().map_or(self.end, |s| s.base);
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .open(segment_path(&self.dir, base))?;
            self.current = Some(file);
        }
        self.current
            .as_mut()
            .ok_or_else(|| std::io::Error::other("log segment not open"))
    }

    /// Closes the newest segment's descriptor until the next append (an idle session then
    /// holds no file open for its log).
    pub fn release(&mut self) {
        self.current = None;
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.current = Some(open_segment(&self.dir, self.end)?);
        self.segments.push_back(Segment {
            base: self.end,
            len: 0,
        });
        while self.segments.len() > self.max_segments {
            if let Some(old) = self.segments.pop_front() {
                std::fs::remove_file(segment_path(&self.dir, old.base))?;
            }
        }
        Ok(())
    }

    /// Reads up to `max` bytes starting at `from` (or at the log start, if `from` was dropped).
    pub fn read(&self, from: u64, max: usize) -> std::io::Result<Chunk> {
        let start = from.clamp(self.start(), self.end);
        let want = (self.end - start).min(max as u64) as usize;
        let mut data = vec![0u8; want];
        let mut filled = 0;
        for seg in &self.segments {
            if filled == want {
                break;
            }
            let pos = start + filled as u64;
            if pos >= seg.base + seg.len || pos < seg.base {
                continue;
            }
            let within = pos - seg.base;
            let n = ((seg.len - within) as usize).min(want - filled);
            let target = &mut data[filled..filled + n];
            if let (Some(current), true) = (&self.current, seg.base + seg.len == self.end) {
                current.read_exact_at(target, within)?;
            } else {
                File::open(segment_path(&self.dir, seg.base))?.read_exact_at(target, within)?;
            }
            filled += n;
        }
        data.truncate(filled);
        Ok(Chunk { start, data })
    }

    /// Deletes the log's files.
    pub fn remove(mut self) -> std::io::Result<()> {
        self.current = None;
        std::fs::remove_dir_all(&self.dir)
    }
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}.seg"))
}

fn open_segment(dir: &Path, base: u64) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(segment_path(dir, base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_absolute_and_reads_exact() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = OutputLog::create(dir.path(), 1 << 20).unwrap();
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
        let mut log = OutputLog::create(dir.path(), 4 * 4096).unwrap();
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
}
