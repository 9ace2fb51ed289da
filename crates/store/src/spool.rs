//! Exports spooled to a file in the store (`exports/{session}.{handle}.aisx`), for the daemon
//! to hand out in pieces: an export of any size goes to its client without ever being held in
//! memory whole, and each piece is read back at its offset.
//!
//! A spool is removed when its last piece is read. One its client abandoned is removed by the
//! next export started an hour or more later, or at the next `Store::open` (noted in
//! `recovered`). In an encrypted store the spool is sealed like the export itself.

use std::fs::OpenOptions;
use std::io::{BufWriter, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::file;
use crate::record::SessionId;
use crate::store::Store;

/// Spools older than this are abandoned: the next export removes them.
const ABANDONED: Duration = Duration::from_secs(3600);
/// Random bytes in a handle (hex in its name).
const HANDLE_BYTES: usize = 16;

/// An export written to the store's spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    /// Names it in `spool_read` (with its session's id).
    pub handle: String,
    /// Its size.
    pub bytes: u64,
}

impl Store {
    fn spool_dir(&self) -> PathBuf {
        self.root.join("exports")
    }

    fn spool_path(&self, id: &SessionId, handle: &str) -> Result<PathBuf> {
        if handle.len() != HANDLE_BYTES * 2 || !handle.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::NotFound {
                what: "export",
                id: handle.to_owned(),
            });
        }
        Ok(self.spool_dir().join(format!("{id}.{handle}.aisx")))
    }

    /// Writes the session's export to a new spool file, a frame at a time.
    pub fn spool_export(&self, id: &SessionId) -> Result<Spooled> {
        let dir = self.spool_dir();
        file::dir_beneath(&self.root, &dir, true)?;
        self.sweep_spools(Some(ABANDONED))?;
        let mut r = [0u8; HANDLE_BYTES];
        crate::crypt::random(&mut r, &dir)?;
        let handle = crate::crypt::hex(&r);
        let path = self.spool_path(id, &handle)?;
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(file::NOFOLLOW)
            .open(&path)
            .map_err(|e| file::open_error("create", &path, e))?;
        let mut out = BufWriter::with_capacity(256 * 1024, f);
        match self.export_to(id, &mut out, &path) {
            Ok(bytes) => Ok(Spooled { handle, bytes }),
            Err(e) => {
                drop(out);
                std::fs::remove_file(&path).ok();
                Err(e)
            }
        }
    }

    /// Up to `max` bytes of a spooled export from `offset`, and its size. A read that reaches
    /// the end removes the spool; an offset past the end reads nothing and removes nothing.
    /// `NotFound` for a handle that is not (or no longer) there.
    pub fn spool_read(
        &self,
        id: &SessionId,
        handle: &str,
        offset: u64,
        max: usize,
    ) -> Result<(Vec<u8>, u64)> {
        let path = self.spool_path(id, handle)?;
        file::dir_beneath(&self.root, &self.spool_dir(), false)?;
        let mut f = file::open_nofollow(&path)?.ok_or_else(|| Error::NotFound {
            what: "export",
            id: handle.to_owned(),
        })?;
        let total = f.metadata().map_err(|e| Error::io("read", &path, e))?.len();
        let start = offset.min(total);
        f.seek(SeekFrom::Start(start))
            .map_err(|e| Error::io("read", &path, e))?;
        let want = (total - start).min(max as u64) as usize;
        let mut data = vec![0u8; want];
        f.read_exact(&mut data)
            .map_err(|e| Error::io("read", &path, e))?;
        if offset <= total && start + want as u64 == total {
            std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
        Ok((data, total))
    }

    /// Removes spools older than `age` (all of them with `None`), returning their paths.
    pub(crate) fn sweep_spools(&self, age: Option<Duration>) -> Result<Vec<PathBuf>> {
        let dir = self.spool_dir();
        if !file::is_real_dir(&dir) {
            return Ok(Vec::new());
        }
        let now = SystemTime::now();
        let mut gone = Vec::new();
        for name in file::list_names(&dir)? {
            let path = dir.join(&name);
            let old = std::fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default());
            let due = match (age, old) {
                (None, _) => true,
                (Some(age), Ok(old)) => old >= age,
                (Some(_), Err(_)) => false,
            };
            if due && std::fs::remove_file(&path).is_ok() {
                gone.push(path);
            }
        }
        Ok(gone)
    }
}
