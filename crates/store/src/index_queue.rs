//! Exec rows waiting for the index: an exec's answer waits for its history record (the record
//! of truth), not for SQLite. Rows queue here and go in as one transaction when anything reads
//! or changes the index, at each `sync()` (every 2 s in the daemon), or when the queue is full.
//!
//! While rows wait, a marker file (`metadata/index.pending`) exists: a process killed before
//! they went in leaves it behind, and the next `open` rebuilds the index from the histories.

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::file;
use crate::index::Index;
use crate::record::{ExecRecord, SessionId};

/// Rows queued at most before they are written without waiting for a reader or a sync.
pub(crate) const MAX_QUEUED: usize = 256;

/// The marker's name under `metadata/`.
pub(crate) const MARKER: &str = "index.pending";

/// Rows not yet in the index.
#[derive(Debug)]
pub(crate) struct Queue {
    rows: Vec<(SessionId, ExecRecord)>,
    marker: PathBuf,
    /// The marker is on disk.
    marked: bool,
    /// Rows were lost to a failed write: the marker stays, so the next `open` rebuilds.
    failed: bool,
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

    /// Writes the queued rows into `index` in one transaction, then removes the marker.
    pub(crate) fn drain_into(&mut self, index: &mut Index) -> Result<()> {
        if !self.rows.is_empty() {
            let rows = std::mem::take(&mut self.rows);
            if let Err(e) = index.add_rows(&rows) {
                self.failed = true;
                return Err(e);
            }
        }
        if self.marked && !self.failed {
            match std::fs::remove_file(&self.marker) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &self.marker, e)),
            }
            self.marked = false;
        }
        Ok(())
    }
}
