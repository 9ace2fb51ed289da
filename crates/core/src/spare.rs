//! Session directories made ahead of time, so `new` creates no file.
//!
//! A session's directory holds its mark file (the secret its hooks read) and its output log
//! (`log/`, a first empty segment): four new inodes. Making them costs little on most file
//! systems, but on ext4 without a journal (the machines this project is measured on) every new
//! inode is searched for past the ones deleted in the last seconds, and a `new` measured there
//! spent more time creating those four than spawning its shell (`docs/benchmarks.md`, issue 17,
//! "`new` without a file"). So a few directories wait ready under `sessions/`, each named
//! `.spare-<random>` (no session name starts with a dot), with their secret already written; a
//! `new` renames one into place (a rename allocates nothing) and the blocking pool makes the
//! next one. When none is ready, or anything about the one taken is not as it was made, the
//! session's directory is made as before.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Directories kept ready: a burst of `new`s faster than the blocking pool makes them takes
/// the ordinary path for the rest.
const READY: usize = 2;

/// The prefix of a spare directory's name under `sessions/`.
const PREFIX: &str = ".spare-";

/// One directory ready to become a session's.
struct Spare {
    dir: PathBuf,
    secret: String,
}

/// The spare directories of one manager's `sessions/` directory.
pub(crate) struct Spares {
    root: PathBuf,
    ready: Mutex<Vec<Spare>>,
    /// A refill is queued or running.
    filling: AtomicBool,
}

impl Spares {
    /// The spares of `root` (the `sessions/` directory). Spares a previous daemon left are
    /// removed: their secrets lived in its memory.
    pub(crate) fn new(root: &Path) -> Self {
        if let Ok(entries) = std::fs::read_dir(root) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(PREFIX) {
                    std::fs::remove_dir_all(entry.path()).ok();
                }
            }
        }
        Self {
            root: root.to_owned(),
            ready: Mutex::new(Vec::new()),
            filling: AtomicBool::new(false),
        }
    }

    /// Makes a ready directory the session directory `dir` (which must not exist, or be
    /// empty) and returns the secret in its mark file; `None` when none is ready or the rename
    /// fails (the caller makes the directory itself).
    pub(crate) fn take(&self, dir: &Path) -> Option<String> {
        let spare = self.ready.lock().unwrap_or_else(|p| p.into_inner()).pop()?;
        match std::fs::rename(&spare.dir, dir) {
            Ok(()) => Some(spare.secret),
            Err(e) => {
                tracing::debug!("spare {} not used: {e}", spare.dir.display());
                std::fs::remove_dir_all(&spare.dir).ok();
                None
            }
        }
    }

    /// Makes spares until [`READY`] wait, on the blocking pool, unless a refill is already
    /// under way. Outside a runtime, nothing.
    pub(crate) fn refill(self: &std::sync::Arc<Self>) {
        if self.count() >= READY || self.filling.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.filling.store(false, Ordering::Release);
            return;
        };
        let spares = self.clone();
        runtime.spawn_blocking(move || {
            while spares.count() < READY {
                match spares.make() {
                    Ok(spare) => spares
                        .ready
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(spare),
                    Err(e) => {
                        // A full disk or a removed directory: `new` makes its own.
                        tracing::debug!("cannot make a spare session directory: {e}");
                        break;
                    }
                }
            }
            spares.filling.store(false, Ordering::Release);
        });
    }

    fn count(&self) -> usize {
        self.ready.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Removes the spares waiting (the daemon stops).
    pub(crate) fn clear(&self) {
        for spare in self
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            std::fs::remove_dir_all(&spare.dir).ok();
        }
    }

    /// One spare: the directory, its mark file with a fresh secret, its log's first segment.
    fn make(&self) -> std::io::Result<Spare> {
        let dir = self.root.join(format!("{PREFIX}{}", crate::random_hex(8)));
        std::fs::create_dir(&dir)?;
        let made = (|| {
            let secret = crate::random_hex(16);
            crate::shell::write_mark_file(&dir.join("mark"), &secret)?;
            std::fs::create_dir(dir.join("log"))?;
            crate::log::open_segment(&dir.join("log"), 0)?;
            Ok(secret)
        })();
        match made {
            Ok(secret) => Ok(Spare { dir, secret }),
            Err(e) => {
                std::fs::remove_dir_all(&dir).ok();
                Err(e)
            }
        }
    }
}
