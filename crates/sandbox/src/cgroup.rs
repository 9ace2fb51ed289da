//! Per-session cgroups (v2 preferred, v1 `memory`/`pids` hierarchies as fallback).
//!
//! The parent creates the group and writes its limits; it also opens `cgroup.procs`
//! (close-on-exec) so that the child only has to `write("0")` to move itself in, which
//! is async-signal-safe. Entering happens first in the child, before the user namespace,
//! while the child still has the daemon's credentials for the cgroup files.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{ChildError, ChildStep, Error};
use crate::limits::LimitEvents;
use crate::probe::CgroupSupport;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Which cgroup version carries a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// The unified hierarchy.
    V2,
    /// A legacy per-controller hierarchy.
    V1,
}

/// One created cgroup directory.
#[derive(Debug)]
struct Group {
    dir: PathBuf,
    version: CgroupVersion,
    procs: OwnedFd,
}

/// The session's cgroup(s): one directory per hierarchy used.
#[derive(Debug, Default)]
pub struct SessionCgroup {
    groups: Vec<Group>,
    /// Where the memory limit lives, if in a cgroup.
    pub memory: Option<CgroupVersion>,
    /// Where the process limit lives, if in a cgroup.
    pub pids: Option<CgroupVersion>,
}

fn cg_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Cgroup {
        path: path.display().to_string(),
        source,
    }
}

fn write(path: &Path, value: &str) -> Result<(), Error> {
    fs::write(path, value).map_err(cg_err(path))
}

/// How many leftover groups still holding processes [`SessionCgroup::create`] passes over.
const BUSY_LEFTOVERS: usize = 16;

/// Creates a session's group directory; an empty one of the same name (a killed daemon's
/// leftover) is removed first. A leftover that still holds processes cannot be removed: the
/// `AlreadyExists` error is returned, and the caller takes another name.
fn make_dir(dir: &Path) -> Result<(), Error> {
    match fs::create_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if fs::remove_dir(dir).is_err() {
                return Err(cg_err(dir)(e));
            }
            fs::create_dir(dir).map_err(cg_err(dir))
        }
        done => done.map_err(cg_err(dir)),
    }
}

/// Removes the session groups that daemons no longer running left behind (killed before they
/// could remove them): `ai-session-PID-N` under every base of `support`, for a PID that is
/// not a live process. Only empty groups can be removed; a group of a live daemon is never
/// touched (its PID is alive). Returns how many were removed.
pub fn sweep(support: &CgroupSupport) -> usize {
    let bases = support
        .v2
        .iter()
        .map(|b| b.dir.as_path())
        .chain(support.v1_memory.as_deref())
        .chain(support.v1_pids.as_deref());
    let mut removed = 0;
    for base in bases {
        for entry in fs::read_dir(base).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(leftover_pid) else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                removed += usize::from(fs::remove_dir(entry.path()).is_ok());
            }
        }
    }
    removed
}

/// The daemon's process id in a session group's name (`ai-session-PID-N`).
fn leftover_pid(name: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix("ai-session-")?.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// The start of the name of every session cgroup this process creates (`ai-session-PID-`):
/// the daemon tells a process of one of its sandboxed sessions by it.
pub fn name_prefix() -> String {
    format!("ai-session-{}-", std::process::id())
}

impl SessionCgroup {
    /// Creates the cgroups needed for `memory` and `processes` limits, as far as the host
    /// allows. Limits that no cgroup can carry are left to rlimits by the caller.
    ///
    /// A directory of the same name left by an earlier daemon that had this process id (and
    /// was killed before it removed its groups) is removed when empty; one that still holds
    /// processes is passed over for the next name.
    pub fn create(
        support: &CgroupSupport,
        memory: Option<u64>,
        processes: Option<u64>,
    ) -> Result<SessionCgroup, Error> {
        let mut tries = 0;
        loop {
            let name = format!(
                "{}{}",
                name_prefix(),
                NEXT_ID.fetch_add(1, Ordering::Relaxed)
            );
            match Self::create_named(support, memory, processes, &name) {
                Err(Error::Cgroup { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists
                        && tries < BUSY_LEFTOVERS =>
                {
                    tries += 1;
                }
                done => return done,
            }
        }
    }

    fn create_named(
        support: &CgroupSupport,
        memory: Option<u64>,
        processes: Option<u64>,
        name: &str,
    ) -> Result<SessionCgroup, Error> {
        let mut cg = SessionCgroup::default();
        let v2_mem = memory.is_some() && support.v2_has("memory");
        let v2_pids = processes.is_some() && support.v2_has("pids");
        if let (Some(base), true) = (&support.v2, v2_mem || v2_pids) {
            let dir = base.dir.join(name);
            make_dir(&dir)?;
            if let (true, Some(bytes)) = (v2_mem, memory) {
                write(&dir.join("memory.max"), &bytes.to_string())?;
                let swap = dir.join("memory.swap.max");
                if swap.exists() {
                    write(&swap, "0")?;
                }
                cg.memory = Some(CgroupVersion::V2);
            }
            if let (true, Some(n)) = (v2_pids, processes) {
                write(&dir.join("pids.max"), &n.to_string())?;
                cg.pids = Some(CgroupVersion::V2);
            }
            cg.push(dir, CgroupVersion::V2)?;
        }
        if let (None, Some(bytes), Some(base)) = (cg.memory, memory, &support.v1_memory) {
            let dir = base.join(name);
            make_dir(&dir)?;
            write(&dir.join("memory.limit_in_bytes"), &bytes.to_string())?;
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write(&memsw, &bytes.to_string())?;
            }
            cg.memory = Some(CgroupVersion::V1);
            cg.push(dir, CgroupVersion::V1)?;
        }
        if let (None, Some(n), Some(base)) = (cg.pids, processes, &support.v1_pids) {
            let dir = base.join(name);
            make_dir(&dir)?;
            write(&dir.join("pids.max"), &n.to_string())?;
            cg.pids = Some(CgroupVersion::V1);
            cg.push(dir, CgroupVersion::V1)?;
        }
        Ok(cg)
    }

    fn push(&mut self, dir: PathBuf, version: CgroupVersion) -> Result<(), Error> {
        let path = dir.join("cgroup.procs");
        let procs = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(cg_err(&path))?;
        self.groups.push(Group {
            dir,
            version,
            procs: procs.into(),
        });
        Ok(())
    }

    /// True when no cgroup was created.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The created directories (for diagnostics and for the daemon to kill the group).
    pub fn dirs(&self) -> Vec<&Path> {
        self.groups.iter().map(|g| g.dir.as_path()).collect()
    }

    /// Moves the calling process into every created group.
    ///
    /// # Safety
    /// Async-signal-safe: one `write` per group on fds owned by `self`.
    pub unsafe fn enter(&self) -> Result<(), ChildError> {
        for g in &self.groups {
            // Writing 0 to cgroup.procs moves the writer itself (v1 and v2).
            rustix::io::write(g.procs.as_fd(), b"0")
                .map_err(|e| ChildError::from_rustix(ChildStep::Cgroup, e))?;
        }
        Ok(())
    }

    /// Reads the OOM-kill and pids-max counters.
    pub fn events(&self) -> LimitEvents {
        let mut ev = LimitEvents::default();
        for g in &self.groups {
            match g.version {
                CgroupVersion::V2 => {
                    ev.oom_kills += counter(&g.dir.join("memory.events"), "oom_kill");
                    ev.pids_max_hits += counter(&g.dir.join("pids.events"), "max");
                }
                CgroupVersion::V1 => {
                    ev.oom_kills += counter(&g.dir.join("memory.oom_control"), "oom_kill");
                    ev.pids_max_hits += counter(&g.dir.join("pids.events"), "max");
                }
            }
        }
        ev
    }

    /// Removes the groups. Fails with EBUSY while processes remain in them: the daemon
    /// calls this after reaping the session (and killing stragglers via `cgroup.kill`
    /// or the procs list).
    pub fn remove(&mut self) -> Result<(), Error> {
        while let Some(g) = self.groups.pop() {
            if let Err(source) = fs::remove_dir(&g.dir) {
                let path = g.dir.display().to_string();
                self.groups.push(g);
                return Err(Error::Cgroup { path, source });
            }
        }
        Ok(())
    }
}

impl Drop for SessionCgroup {
    fn drop(&mut self) {
        // Best effort: a group that still has processes stays; `remove` reports that.
        for g in &self.groups {
            if fs::remove_dir(&g.dir).is_err() {
                continue;
            }
        }
    }
}

/// Reads `key N` from a flat-keyed cgroup file; 0 when absent.
fn counter(path: &Path, key: &str) -> u64 {
    let Ok(text) = fs::read_to_string(path) else {
        return 0;
    };
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::leftover_pid;

    #[test]
    fn only_session_group_names_carry_a_daemon_pid() {
        assert_eq!(leftover_pid("ai-session-4242-0"), Some(4242));
        assert_eq!(leftover_pid("ai-session-4242-17"), Some(4242));
        assert_eq!(leftover_pid("ai-session-probe-4242"), None);
        assert_eq!(leftover_pid("ai-session-4242"), None);
        assert_eq!(leftover_pid("user.slice"), None);
    }
}
