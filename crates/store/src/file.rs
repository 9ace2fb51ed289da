//! Whole-file writes that a crash cannot tear: write a temporary file beside the target,
//! fsync it, rename it over the target, fsync the directory. A reader sees the old file or
//! the new one, never a mix, whatever moment the writer is killed.
//!
//! Also the store's path discipline: every directory below the root is checked to be a real
//! directory (never a symbolic link) before anything is written into it or read out of it, and
//! files are opened with `O_NOFOLLOW`, so a link planted in the store cannot send a write (or
//! an export's read) outside it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Suffix of temporary files; `Store::open` removes leftovers of killed writers.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `bytes` atomically. With `durable`, the data and the rename are on
/// disk when this returns (survives power loss); without, they survive a process kill only.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    write_atomic_nodirsync(path, bytes, durable)?;
    if durable {
        sync_dir(parent(path))?;
    }
    Ok(())
}

/// `write_atomic` without the directory fsync: for many files written into one directory,
/// which the caller then fsyncs once (`sync_dir`) before anything refers to them.
pub(crate) fn write_atomic_nodirsync(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // Unique per process and call, so two threads writing the same target never share a
    // temporary file; the last rename wins, and each rename is of a complete file.
    let tmp = dir.join(format!(
        ".{name}.{}.{}{TMP_SUFFIX}",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_tmp(&tmp, bytes, durable)
        .and_then(|()| fs::rename(&tmp, path).map_err(|e| Error::io("rename onto", path, e)));
    if result.is_err() {
        // The temporary file is garbage either way; if removing it fails too, the next
        // `Store::open` sweeps it. The write's own error is the one worth reporting.
        fs::remove_file(&tmp).ok();
        return result;
    }
    Ok(())
}

fn write_tmp(tmp: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| Error::io("create", tmp, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("write", tmp, e))?;
    if durable {
        file.sync_all().map_err(|e| Error::io("fsync", tmp, e))?;
    }
    Ok(())
}

/// Makes a rename or a file creation in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir, e))
}

/// Reads a whole file; `Ok(None)` when it does not exist. A symbolic link is refused.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    read_bounded(path, u64::MAX)
}

/// Reads a whole file that must exist. A symbolic link is refused.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    read_optional(path)?.ok_or_else(|| {
        Error::io(
            "read",
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        )
    })
}

/// Like `read_optional`, refusing (before reading) a file longer than `max` bytes.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let Some(mut file) = open_nofollow(path)? else {
        return Ok(None);
    };
    let len = file
        .metadata()
        .map_err(|e| Error::io("read", path, e))?
        .len();
    if len > max {
        return Err(Error::too_large(
            path,
            format!("{len} bytes on disk, more than the limit of {max}"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(Some(bytes))
}

/// Opens `path` for reading; `None` when it does not exist. A symbolic link as its last
/// component is an `Unsafe` error (`O_NOFOLLOW` makes the kernel refuse it with `ELOOP`), and
/// so is anything but a regular file (`O_NONBLOCK` keeps a planted FIFO from blocking the open).
pub(crate) fn open_nofollow(path: &Path) -> Result<Option<File>> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_error("read", path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io("read", path, e))?;
    if !meta.is_file() {
        return Err(Error::unsafe_path(path, "is not a regular file"));
    }
    Ok(Some(file))
}

/// The `O_NOFOLLOW` flag for files the store opens to write (histories).
pub(crate) const NOFOLLOW: i32 = libc::O_NOFOLLOW;

/// Maps an open error of a file opened with `NOFOLLOW`.
pub(crate) fn open_error(op: &'static str, path: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return link_refused(path);
    }
    Error::io(op, path, e)
}

fn link_refused(path: &Path) -> Error {
    Error::unsafe_path(
        path,
        "it is a symbolic link, and the store never follows links below its root",
    )
}

/// Checks every directory from below `root` down to `dir`: each must be a real directory,
/// never a symbolic link (which could point outside the store). With `create`, missing ones
/// are made (0700) on the way; without, a missing one ends the walk (the read that follows
/// finds nothing). `root` itself may be a link: where the store lives is the user's choice.
///
/// A link swapped in between this check and the write is not caught; the store is 0700 and
/// owned by the daemon's user, so that needs a process already running as that user.
pub(crate) fn dir_beneath(root: &Path, dir: &Path, create: bool) -> Result<()> {
    let rel = dir
        .strip_prefix(root)
        .map_err(|_| Error::unsafe_path(dir, "is not inside the store"))?;
    let mut at = root.to_path_buf();
    for part in rel.components() {
        let Component::Normal(name) = part else {
            return Err(Error::unsafe_path(
                dir,
                "is not a plain path below the store",
            ));
        };
        at.push(name);
        if create {
            match fs::DirBuilder::new().mode(0o700).create(&at) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("create directory", &at, e)),
            }
        }
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => return Err(link_refused(&at)),
            Ok(m) if !m.is_dir() => {
                return Err(Error::io(
                    "create directory",
                    &at,
                    std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(()),
            Err(e) => return Err(Error::io("inspect", &at, e)),
        }
    }
    Ok(())
}

/// Is `path` a directory itself (not a link to one)?
pub(crate) fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Is there an entry (file, directory or link) at `path`? Unlike `Path::exists`, a link
/// counts as there whatever it points to.
pub(crate) fn present(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Creates a directory and its parents, private to the user (0700).
pub(crate) fn create_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::io("create directory", path, e))
}

pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Removes temporary files left by writers killed between create and rename; the paths
/// removed.
pub(crate) fn sweep_tmp(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
            let path: PathBuf = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", &path, e)),
            }
        }
    }
    Ok(removed)
}

/// Lists the names of the entries of `dir`; empty when it does not exist.
pub(crate) fn list_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}
