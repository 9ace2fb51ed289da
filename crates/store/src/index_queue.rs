//! Exec rows waiting for the index: an exec's answer waits for its history record (the record
//! of truth), not for SQLite. Rows queue here and go in as one transaction when anything reads
//! or changes the index, at each `sync()` (every 2 s in the daemon), or when the queue is full.
//!
//! While rows wait, a marker file (`metadata/index.pending`) exists: a process killed before
//! they went in leaves it behind, and the next `open` rebuilds the index from the histories.
//! The marker outlives the rows by [`LINGER`]: writing it means creating a file and syncing its
//! directory, and an agent's next exec comes seconds after the last one, after the 2-second
//! sync drained the queue. So only the first exec of a burst pays for it on its answer's path,
//! and a process killed within a minute of an exec rebuilds the index at the next open.
//! Shutdown and handover remove it at once (`Store::sync_final`), and so does dropping the
//! store (a process that ends on purpose).

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::file;
use crate::index::Index;
use crate::record::{ExecRecord, SessionId};

/// Rows queued at most before they are written without waiting for a reader or a sync.
pub(crate) const MAX_QUEUED: usize = 256;

/// The marker's name under `metadata/`.
pub(crate) const MARKER: &str = "index.pending";

/// How long the marker stays after the last row queued, once every row is in.
pub(crate) const LINGER: Duration = Duration::from_secs(60);

/// Rows not yet in the index.
#[derive(Debug)]
pub(crate) struct Queue {
    rows: Vec<(SessionId, ExecRecord)>,
    marker: PathBuf,
    /// The marker is on disk.
    marked: bool,
    /// Rows were lost to a failed write: the marker stays, so the next `open` rebuilds.
    failed: bool,
    /// When this process last queued a row.
    last_push: Option<Instant>,
}

impl Queue {
    /// The queue of the store whose `metadata/` directory is `metadata`. A marker left behind
    /// stays until the first write into the index, which comes after `open`'s rebuild.
    pub(crate) fn new(metadata: &Path) -> Self {
        let marker = metadata.join(MARKER);
        Self {
            rows: Vec::new(),
            marked: file::present(&marker),
            marker,
            failed: false,
            last_push: None,
        }
    }

    /// True when a killed process left rows out of the index.
    pub(crate) fn left_behind(metadata: &Path) -> bool {
        file::present(&metadata.join(MARKER))
    }

    /// Queues `records` of session `id`; returns whether the queue is full. An error (the
    /// marker could not be written) leaves the rows queued all the same.
    pub(crate) fn push(&mut self, id: &SessionId, records: &[ExecRecord]) -> Result<bool> {
        self.rows
            .extend(records.iter().map(|r| (id.clone(), r.clone())));
        self.last_push = Some(Instant::now());
        if !self.marked {
            // Never through a link planted in its place (`remove_file` removes a link itself).
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .custom_flags(file::NOFOLLOW)
                .open(&self.marker)
                .map_err(|e| file::open_error("write", &self.marker, e))?;
            // The marker's entry must survive a power loss the rows do not: its directory is
            // synced once per marker, not per row.
            if let Some(dir) = self.marker.parent() {
                file::sync_dir(dir)?;
            }
            self.marked = true;
        }
        Ok(self.rows.len() >= MAX_QUEUED)
    }

    /// Writes the queued rows into `index` in one transaction; then the marker goes if no
    /// row came for [`LINGER`] (see [`Queue::settle`]).
    pub(crate) fn drain_into(&mut self, index: &mut Index) -> Result<()> {
        if !self.rows.is_empty() {
            let rows = std::mem::take(&mut self.rows);
            if let Err(e) = index.add_rows(&rows) {
                self.failed = true;
                return Err(e);
            }
        }
        self.settle(Instant::now(), LINGER)
    }

    /// [`Queue::drain_into`] for the last time in this process: the marker goes at once.
    pub(crate) fn close(&mut self, index: &mut Index) -> Result<()> {
        self.drain_into(index)?;
        self.settle(Instant::now(), Duration::ZERO)
    }

    /// Removes the marker when every row is in and none came in the `linger` before `now`
    /// (a marker a killed process left goes at the first drain: its rows were rebuilt).
    pub(crate) fn settle(&mut self, now: Instant, linger: Duration) -> Result<()> {
        let recent = self
            .last_push
            .is_some_and(|at| now.saturating_duration_since(at) < linger);
        if !self.marked || self.failed || !self.rows.is_empty() || recent {
            return Ok(());
        }
        match std::fs::remove_file(&self.marker) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &self.marker, e)),
        }
        self.marked = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_marker_stays_a_linger_after_the_last_row() {
        let tmp = tempfile::tempdir().unwrap();
        let mut queue = Queue::new(tmp.path());
        let id = SessionId::new("a".repeat(32)).unwrap();
        let at = Instant::now();
        queue.push(&id, &[]).unwrap();
        let marker = tmp.path().join(MARKER);
        assert!(marker.exists());
        queue.settle(at, LINGER).unwrap();
        assert!(marker.exists(), "a row came just now");
        queue.settle(at + LINGER / 2, LINGER).unwrap();
        assert!(marker.exists(), "half a linger later");
        queue.settle(at + LINGER * 2, LINGER).unwrap();
        assert!(!marker.exists(), "a linger without rows");
        // The next row writes it again.
        queue.push(&id, &[]).unwrap();
        assert!(marker.exists());
        queue.settle(Instant::now(), Duration::ZERO).unwrap();
        assert!(!marker.exists(), "no linger at shutdown");
    }
}
