//! Where the hooks leave what a shell exports: one file per session, `<prefix>-<name>.env`, written
//! before each prompt's D mark, in a private directory kept in memory when the machine has one
//! (`$XDG_RUNTIME_DIR`, else `/dev/shm`), so the plaintext never reaches a disk and a prompt
//! does not pay for a file system journal. The daemon takes each file into its store.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The environment variable naming the file the hooks write to; they unset it.
pub const ENV_FILE_ENV: &str = "AI_SESSION_ENV_FILE";

/// Where the shells of the daemon whose state is `data` write: the directory, and the prefix
/// that keeps its files apart from other daemons' (other labels, other homes) in it.
#[derive(Debug, Clone)]
pub struct Place {
    dir: PathBuf,
    prefix: String,
}

impl Place {
    /// `ai-session-<uid>` (0700, created if needed) under `$XDG_RUNTIME_DIR` or `/dev/shm`,
    /// the first where it is, or can be made, a directory of this user no one else may enter;
    /// else `data/exported`. Files are prefixed with a hash of `data`, stable across builds,
    /// so a daemon and its upgraded successor agree.
    pub fn for_data(data: &Path) -> Self {
        let prefix = format!("{:016x}", fnv1a(data.as_os_str().as_bytes()));
        let name = format!("ai-session-{}", rustix::process::geteuid().as_raw());
        let runtime = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        for base in runtime.into_iter().chain([PathBuf::from("/dev/shm")]) {
            let dir = base.join(&name);
            if private_dir(&dir).is_ok() {
                return Self { dir, prefix };
            }
        }
        let dir = data.join("exported");
        if let Err(e) = private_dir(&dir) {
            tracing::warn!("{}: {e}; exported variables are not kept", dir.display());
        }
        Self { dir, prefix }
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file the hooks of session `name` write to.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{}-{name}.env", self.prefix))
    }

    /// The file a resurrected shell of session `name` sources.
    pub fn restore_file(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{}-{name}.restore", self.prefix))
    }

    /// Removes this daemon's files that a killed predecessor left: every shell writes its own
    /// again at its next prompt.
    pub fn sweep(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mine = format!("{}-", self.prefix);
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&mine) && (name.ends_with(".env") || name.ends_with(".restore")) {
                std::fs::remove_file(entry.path()).ok();
            }
        }
    }

    /// Removes the files of session `name` (it ended).
    pub fn forget(&self, name: &str) {
        for path in [self.file(name), self.restore_file(name)] {
            std::fs::remove_file(path).ok();
        }
    }
}

/// Makes `dir` (mode 0700) or checks that the one there is a directory of this user that
/// nobody else may enter: `/dev/shm` is shared, and a name taken there first by another user
/// must not be written into.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(dir)?;
    let uid = rustix::process::geteuid().as_raw();
    if meta.is_dir() && meta.uid() == uid && meta.mode() & 0o077 == 0 {
        Ok(())
    } else {
        Err(std::io::Error::other(
            "exists and is not a private directory of this user",
        ))
    }
}

/// FNV-1a: a hash stable across builds, so a daemon and its upgraded successor agree.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_place_is_private_and_the_same_for_the_same_state() {
        let data = tempfile::tempdir().unwrap();
        let a = Place::for_data(data.path());
        assert_eq!(a.file("s"), Place::for_data(data.path()).file("s"));
        let other = Place::for_data(&data.path().join("other"));
        assert_ne!(a.file("s"), other.file("s"));
        let meta = std::fs::metadata(&a.dir).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        std::fs::write(a.file("s"), "x").unwrap();
        std::fs::write(other.file("s"), "x").unwrap();
        a.sweep();
        assert!(!a.file("s").exists());
        assert!(other.file("s").exists());
        other.forget("s");
        assert!(!other.file("s").exists());
    }

    #[test]
    fn a_name_another_user_could_have_taken_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().unwrap();
        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(private_dir(&open).is_err());
        let link = base.path().join("link");
        std::os::unix::fs::symlink(base.path(), &link).unwrap();
        assert!(private_dir(&link).is_err());
    }
}
