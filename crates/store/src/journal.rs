//! The journal of new session records: what makes a `new` durable with one `fdatasync`.
//!
//! A new record is appended to `metadata/sessions.journal` (one frame: the session's id and the
//! exact bytes of its `state.json`, sealed when the store is) and the journal is fdatasynced;
//! `state.json` is then written without an fsync. The file and directory fsyncs a durable
//! `state.json` needs (its data, its rename, its new directory: up to 4 ms each on a loaded
//! disk here, against about 0.1 ms for a journal append) are paid later, off the answer's path,
//! by [`Store::settle_journal`] at every [`Store::sync`], which then empties the journal. When
//! the store opens, a journaled record whose `state.json` is missing or does not read is written
//! again from the journal; a record deleted meanwhile is noted in the journal (a `DELETED`
//! frame) and is not.
//!
//! A process kill loses nothing either way (written data survives it); the journal is what a
//! power loss cannot take.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::file;
use crate::record::{SessionId, SessionState};
use crate::seal::Kind;
use crate::store::{Store, decode_json};

/// The journal's file name, in `metadata/`.
pub(crate) const JOURNAL: &str = "sessions.journal";
/// The tag of a new-record frame: the id's length (u32 LE), the id, the `state.json` bytes.
const NEW_RECORD: u32 = 1;
/// The tag of a deletion: the id. A record deleted before the journal was emptied must not
/// be written back by the next open's replay.
const DELETED: u32 = 2;

/// The open journal and the records appended since it was last emptied.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    pending: Vec<SessionId>,
    /// Records appended since open: tells a settle whether others came while it fsynced.
    appended: u64,
}

impl Journal {
    /// Opens (creating) the journal of the store at `root`.
    pub(crate) fn open(root: &Path) -> Result<Self> {
        let path = root.join("metadata").join(JOURNAL);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| Error::io("open", &path, e))?;
        Ok(Self {
            path,
            file,
            pending: Vec::new(),
            appended: 0,
        })
    }

    /// Appends the record of `id` (`state` is its `state.json`'s bytes) and makes it durable.
    pub(crate) fn append(&mut self, id: &SessionId, state: &[u8]) -> Result<()> {
        let mut body = Vec::with_capacity(4 + id.as_str().len() + state.len());
        body.extend_from_slice(&(id.as_str().len() as u32).to_le_bytes());
        body.extend_from_slice(id.as_str().as_bytes());
        body.extend_from_slice(state);
        self.write(NEW_RECORD, &body, true)?;
        self.pending.push(id.clone());
        self.appended += 1;
        Ok(())
    }

    /// Notes that the record of `id` is deleted, when the journal still holds it. No fsync:
    /// the deletion of its directory is not fsynced either.
    pub(crate) fn deleted(&mut self, id: &SessionId) -> Result<()> {
        if let Some(at) = self.pending.iter().position(|p| p == id) {
            self.write(DELETED, id.as_str().as_bytes(), false)?;
            // Nothing of it is left to settle.
            self.pending.remove(at);
        }
        Ok(())
    }

    fn write(&mut self, tag: u32, body: &[u8], sync: bool) -> Result<()> {
        let mut frame = Vec::with_capacity(crate::frame::FRAME_HEADER_LEN + body.len());
        crate::frame::encode(tag, body, &mut frame);
        self.file
            .write_all(&frame)
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) })
            .map_err(|e| Error::io("append to", &self.path, e))
    }

    /// The records in the journal file not deleted since: `(id, state.json bytes)`, a torn
    /// last frame left out.
    fn records(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let bytes = file::read(&self.path)?;
        let scan = crate::frame::scan(&bytes, 0, &self.path)?;
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        for frame in &scan.frames {
            match frame.tag {
                NEW_RECORD => {
                    let (len, rest) = frame.body.split_at_checked(4).ok_or_else(|| self.bad())?;
                    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                    let (id, state) = rest.split_at_checked(len).ok_or_else(|| self.bad())?;
                    let id = String::from_utf8(id.to_vec()).map_err(|_| self.bad())?;
                    out.push((id, state.to_vec()));
                }
                DELETED => out.retain(|(id, _)| id.as_bytes() != frame.body),
                _ => {}
            }
        }
        Ok(out)
    }

    fn bad(&self) -> Error {
        Error::corrupt(&self.path, "a journal record whose id does not read")
    }

    /// Empties the journal, durably.
    fn clear(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| Error::io("empty", &self.path, e))?;
        self.pending.clear();
        Ok(())
    }
}

impl Store {
    /// Writes again, durably, every journaled record whose `state.json` is missing or does not
    /// read (a power loss after the journal's fsync), then empties the journal. Called by
    /// `open` before anything reads the sessions.
    pub(crate) fn replay_journal(&self) -> Result<()> {
        let mut journal = self.journal();
        let records = journal.records()?;
        if records.is_empty() && journal.file.metadata().is_ok_and(|m| m.len() == 0) {
            return Ok(());
        }
        for (id, bytes) in records {
            let Ok(id) = SessionId::new(id) else {
                continue;
            };
            let dir = self.session_dir_checked(&id, true)?;
            let path = dir.join("state.json");
            let current = file::read_optional(&path)?;
            let reads = current.is_some_and(|b| {
                decode_json::<SessionState>(
                    &b,
                    Kind::State,
                    self.cipher.as_ref(),
                    &path,
                    &mut self.unpacker(),
                )
                .is_ok()
            });
            if !reads {
                file::write_atomic(&path, &bytes, true)?;
            }
        }
        file::sync_dir(&self.root.join("sessions"))?;
        journal.clear()
    }

    /// Makes the `state.json` of every record appended since the last call durable (its data,
    /// its directory, the sessions directory: one fsync each), then empties the journal.
    /// The fsyncs run without the journal's lock (a `new` meanwhile does not wait for them);
    /// the journal is emptied only when nothing was appended meanwhile, else the next call
    /// does it.
    pub(crate) fn settle_journal(&self) -> Result<()> {
        let (pending, appended) = {
            let journal = self.journal();
            (journal.pending.clone(), journal.appended)
        };
        if pending.is_empty() {
            return Ok(());
        }
        // A record whose `state.json` is not written (its second half failed, or has not run)
        // keeps the journal: the next open writes it back from there.
        let mut whole = true;
        for id in &pending {
            let dir = self.session_dir(id);
            let path = dir.join("state.json");
            match open_if_present(&path)? {
                Some(f) => {
                    f.sync_all().map_err(|e| Error::io("fsync", path, e))?;
                    file::sync_dir(&dir)?;
                }
                None => whole = false,
            }
        }
        file::sync_dir(&self.root.join("sessions"))?;
        let mut journal = self.journal();
        if whole && journal.appended == appended {
            journal.clear()?;
        }
        Ok(())
    }
}

fn open_if_present(path: &Path) -> Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("open", path, e)),
    }
}
