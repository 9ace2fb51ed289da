//! Where a daemon keeps its socket and its state: `$AI_SESSION_HOME` (default `~/.ai-session`),
//! with one socket and one data directory per daemon label (`-L NAME`) or socket path (`-S`).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The files of one daemon, as the daemon and its clients both compute them.
#[derive(Debug, Clone)]
pub struct Paths {
    pub home: PathBuf,
    pub socket: PathBuf,
    /// The daemon's own state: session logs, shell hooks, its log file.
    pub data: PathBuf,
}

/// The state directory: `$AI_SESSION_HOME`, else `$HOME/.ai-session`.
pub fn home() -> PathBuf {
    if let Some(h) = std::env::var_os("AI_SESSION_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let base = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    base.join(".ai-session")
}

impl Paths {
    /// Paths for the daemon selected by `-L label` or `-S socket` (label `default` otherwise).
    pub fn resolve(label: Option<&str>, socket: Option<&Path>) -> Self {
        let home = home();
        match socket {
            Some(sock) => {
                let data = home.join("servers").join(format!(
                    "sock-{:016x}",
                    fnv1a(sock.to_string_lossy().as_bytes())
                ));
                Self {
                    home,
                    socket: sock.to_owned(),
                    data,
                }
            }
            None => {
                let label = label.unwrap_or("default");
                Self {
                    socket: home.join("run").join(format!("{label}.sock")),
                    data: home.join("servers").join(label),
                    home,
                }
            }
        }
    }

    /// The lock that serialises starting this daemon (`run/<label>.lock`): a client that found no
    /// daemon holds it while it starts one, so concurrent clients start exactly one.
    pub fn start_lock(&self) -> PathBuf {
        self.socket.with_extension("lock")
    }

    /// The daemon's tamper-evident audit log (JSON lines, hash-chained).
    pub fn audit_log(&self) -> PathBuf {
        self.data.join("audit.jsonl")
    }

    /// Creates the directories, private to the user (0700).
    pub fn create_dirs(&self) -> std::io::Result<()> {
        for dir in [
            Some(self.home.as_path()),
            self.socket.parent(),
            Some(self.data.as_path()),
        ]
        .into_iter()
        .flatten()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        if let Some(run) = self.socket.parent() {
            std::fs::set_permissions(run, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
