//! The store's error type: every variant that concerns a file names it, so a daemon log line
//! or a CLI message says which file to look at.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A read, write, rename or fsync failed (permissions, a file in the way, I/O error).
    /// Returned by every call that touches the disk; the previous good state is untouched.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file system is full. Nothing was replaced: the previous good file is still there.
    /// Free space and retry.
    #[error("disk full while writing {}", path.display())]
    DiskFull { path: PathBuf },
    /// The file ends early (a partial copy or a crash in the middle of a non-atomic copy).
    #[error("{} is truncated: {detail}", path.display())]
    Truncated { path: PathBuf, detail: String },
    /// The file's bytes do not match their checksum, its header is not ours, or its content
    /// does not parse. Restore it from a snapshot or an export.
    #[error("{} is corrupted: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },
    /// The file was written by a newer ai-session whose layout this build does not know.
    /// Upgrade ai-session; this build leaves the file alone.
    #[error("{} has schema version {found}; this ai-session reads up to {supported}: upgrade it", path.display())]
    NewerVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// The passphrase does not open this store or file (its key-check failed).
    #[error("wrong passphrase for {}", path.display())]
    WrongPassphrase { path: PathBuf },
    /// The store (or the file) is encrypted and no passphrase was given. Set
    /// `AI_SESSION_PASSPHRASE`. An encrypted store never receives plaintext writes.
    #[error("{} is encrypted: set AI_SESSION_PASSPHRASE", path.display())]
    PassphraseRequired { path: PathBuf },
    /// No session or snapshot with that id (or id prefix).
    #[error("no {what} matches '{id}'")]
    NotFound { what: &'static str, id: String },
    /// A record with this id exists already (ids given by the caller are never reused).
    #[error("a {what} with id '{id}' exists already")]
    Exists { what: &'static str, id: String },
    /// The id prefix matches more than one snapshot; give more characters.
    #[error("'{prefix}' matches several snapshots: {}", matches.join(", "))]
    Ambiguous {
        prefix: String,
        matches: Vec<String>,
    },
    /// An id that cannot be a file name (only `[0-9a-z._-]`, 1..=64 characters, no leading dot),
    /// or a session name outside the daemon's pattern. Returned for ids typed by a user and for
    /// ids read from an export or a store file (a `../x` snapshot id is refused here, before any
    /// path is built from it). Shown with escapes, so a NUL or a newline is visible.
    #[error("invalid {what} {id:?}: {rule}")]
    InvalidId {
        what: &'static str,
        id: String,
        rule: &'static str,
    },
    /// Decoding an item would produce more than the store's limit (`Options::max_unpacked`), or
    /// an import as a whole would: a hostile or damaged file declaring, or expanding to, more
    /// than that. Nothing was written. Raise the limit only for data you trust.
    #[error("{}: {detail}", path.display())]
    TooLarge { path: PathBuf, detail: String },
    /// A path inside the store is not what the store makes: a symbolic link, or something other
    /// than a directory where a directory belongs. The store neither reads nor writes through
    /// it, so nothing outside the store is touched; remove the link.
    #[error("refusing {}: {detail}", path.display())]
    Unsafe { path: PathBuf, detail: String },
    /// The SQLite index failed. The index is derived from the files and `Store::reindex`
    /// rebuilds it.
    #[error("index {}: {source}", path.display())]
    Index {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// Compression, decompression or encryption failed on data we produced ourselves.
    #[error("{}: {detail}", path.display())]
    Codec { path: PathBuf, detail: String },
}

impl Error {
    /// Wraps an I/O error with the file it concerns, singling out a full disk.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::StorageFull {
            return Error::DiskFull { path };
        }
        Error::Io { op, path, source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn truncated(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Truncated {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// Is this the fault of the bytes given (an export, a damaged store file) rather than of the
    /// machine? Front ends report these as bad input, never as an internal error.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::Truncated { .. }
                | Error::Corrupt { .. }
                | Error::NewerVersion { .. }
                | Error::InvalidId { .. }
                | Error::Ambiguous { .. }
                | Error::TooLarge { .. }
                | Error::Unsafe { .. }
        )
    }

    pub(crate) fn too_large(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::TooLarge {
            path: path.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn unsafe_path(path: impl Into<PathBuf>, detail: impl Into<String>) -> Self {
        Error::Unsafe {
            path: path.into(),
            detail: detail.into(),
        }
    }

    /// The file this error concerns, when there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Error::Io { path, .. }
            | Error::DiskFull { path }
            | Error::Truncated { path, .. }
            | Error::Corrupt { path, .. }
            | Error::NewerVersion { path, .. }
            | Error::WrongPassphrase { path }
            | Error::PassphraseRequired { path }
            | Error::Index { path, .. }
            | Error::Codec { path, .. }
            | Error::TooLarge { path, .. }
            | Error::Unsafe { path, .. } => Some(path),
            Error::NotFound { .. }
            | Error::Exists { .. }
            | Error::Ambiguous { .. }
            | Error::InvalidId { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn enospc_is_disk_full_naming_the_file() {
        let e = Error::io(
            "write",
            "/s/state.json",
            std::io::Error::from_raw_os_error(28),
        );
        assert!(matches!(e, Error::DiskFull { .. }));
        assert_eq!(e.to_string(), "disk full while writing /s/state.json");
    }
}
