//! Resource limits through rlimits, and telling why a session stopped.
//!
//! Which mechanism carries each limit (decided in [`crate::Sandbox::prepare`]):
//!
//! | limit | preferred | fallback |
//! |---|---|---|
//! | `cpu_seconds` | RLIMIT_CPU (soft = limit: SIGXCPU; hard = limit + 1: SIGKILL) | - |
//! | `memory_bytes` | cgroup `memory.max` / v1 `memory.limit_in_bytes` (OOM kill) | RLIMIT_DATA (allocations fail with ENOMEM; unlike RLIMIT_AS it ignores address-space reservations made by JITs and Go) |
//! | `processes` | cgroup `pids.max` (fork fails with EAGAIN) | RLIMIT_NPROC, set after entering the user namespace so it counts the session's processes only; never enforced for a root daemon whose uid 0 is mapped into the session (the kernel exempts it) |
//! | `open_files` | RLIMIT_NOFILE | - |
//! | `file_size_bytes` | RLIMIT_FSIZE (SIGXFSZ) | - |

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use rustix::process::{Resource, Rlimit};

use crate::error::{ChildError, ChildStep};
use crate::policy::Limits;

/// The rlimits to set in the child, decided in the parent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RlimitPlan {
    /// RLIMIT_CPU soft limit in seconds.
    pub cpu_seconds: Option<u64>,
    /// RLIMIT_DATA in bytes (only when no cgroup carries the memory limit).
    pub data_bytes: Option<u64>,
    /// RLIMIT_NPROC (only when no cgroup carries the process limit).
    pub processes: Option<u64>,
    /// RLIMIT_NOFILE.
    pub open_files: Option<u64>,
    /// RLIMIT_FSIZE in bytes.
    pub file_size_bytes: Option<u64>,
}

impl RlimitPlan {
    /// Plans the rlimits for `limits`, leaving out what cgroups already enforce.
    pub fn new(limits: &Limits, cgroup_memory: bool, cgroup_pids: bool) -> Self {
        RlimitPlan {
            cpu_seconds: limits.cpu_seconds,
            data_bytes: limits.memory_bytes.filter(|_| !cgroup_memory),
            processes: limits.processes.filter(|_| !cgroup_pids),
            open_files: limits.open_files,
            file_size_bytes: limits.file_size_bytes,
        }
    }

    /// Sets every limit except RLIMIT_NPROC (which must wait for the user namespace).
    ///
    /// # Safety
    /// Async-signal-safe: only `setrlimit` calls; meant for the child before exec.
    pub unsafe fn apply_early(&self) -> Result<(), ChildError> {
        if let Some(secs) = self.cpu_seconds {
            set(Resource::Cpu, secs, secs.saturating_add(1))?;
        }
        if let Some(bytes) = self.data_bytes {
            set(Resource::Data, bytes, bytes)?;
        }
        if let Some(n) = self.open_files {
            set(Resource::Nofile, n, n)?;
        }
        if let Some(bytes) = self.file_size_bytes {
            set(Resource::Fsize, bytes, bytes)?;
        }
        Ok(())
    }

    /// Sets RLIMIT_NPROC. Called after entering the user namespace, where the kernel
    /// counts processes per (namespace, uid), i.e. this session's processes only.
    ///
    /// # Safety
    /// Async-signal-safe: one `setrlimit` call.
    pub unsafe fn apply_nproc(&self) -> Result<(), ChildError> {
        match self.processes {
            Some(n) => set(Resource::Nproc, n, n),
            None => Ok(()),
        }
    }
}

fn set(resource: Resource, soft: u64, hard: u64) -> Result<(), ChildError> {
    // Never raise an inherited hard limit: that would fail with EPERM, and the inherited
    // value is already stricter.
    let current = rustix::process::getrlimit(resource);
    let cap = |v: u64| match current.maximum {
        Some(max) => v.min(max),
        None => v,
    };
    let limit = Rlimit {
        current: Some(cap(soft)),
        maximum: Some(cap(hard)),
    };
    rustix::process::setrlimit(resource, limit)
        .map_err(|e| ChildError::from_rustix(ChildStep::Rlimit, e))
}

/// Limit events counted by the session's cgroup since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitEvents {
    /// Processes killed by the OOM killer because of the memory limit.
    pub oom_kills: u64,
    /// Forks refused because the process limit was reached.
    pub pids_max_hits: u64,
}

/// Why a session's main process stopped, for the daemon to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// Normal exit with this code.
    Exited(i32),
    /// SIGXCPU: the CPU-time limit was reached. (A process that ignores SIGXCPU gets
    /// SIGKILL one second later, which is reported as `Signaled(9)`.)
    CpuTimeLimit {
        /// The configured limit.
        seconds: u64,
    },
    /// SIGXFSZ: a write went past the file-size limit.
    FileSizeLimit {
        /// The configured limit.
        bytes: u64,
    },
    /// Killed by the OOM killer inside the session's memory cgroup.
    MemoryLimit {
        /// The configured limit.
        bytes: u64,
    },
    /// Aborted or crashed while RLIMIT_DATA was set: most likely an allocation failed at
    /// the memory limit (the kernel does not say so directly).
    MemoryAllocationFailed {
        /// The signal that ended it.
        signal: i32,
        /// The configured limit.
        bytes: u64,
    },
    /// Killed by another signal.
    Signaled(i32),
}

impl StopReason {
    /// Classifies a wait status with the session's limits and cgroup counters.
    ///
    /// `memory_in_cgroup` tells whether the memory limit was carried by a cgroup (OOM
    /// kill) or by RLIMIT_DATA (failed allocation).
    pub fn classify(
        status: ExitStatus,
        limits: &Limits,
        events: LimitEvents,
        memory_in_cgroup: bool,
    ) -> StopReason {
        if let Some(code) = status.code() {
            return StopReason::Exited(code);
        }
        let signal = status.signal().unwrap_or(0);
        match (
            signal,
            limits.cpu_seconds,
            limits.file_size_bytes,
            limits.memory_bytes,
        ) {
            (libc::SIGXCPU, Some(seconds), _, _) => StopReason::CpuTimeLimit { seconds },
            (libc::SIGXFSZ, _, Some(bytes), _) => StopReason::FileSizeLimit { bytes },
            (libc::SIGKILL, _, _, Some(bytes)) if memory_in_cgroup && events.oom_kills > 0 => {
                StopReason::MemoryLimit { bytes }
            }
            (libc::SIGABRT | libc::SIGSEGV | libc::SIGBUS, _, _, Some(bytes))
                if !memory_in_cgroup =>
            {
                StopReason::MemoryAllocationFailed { signal, bytes }
            }
            _ => StopReason::Signaled(signal),
        }
    }

    /// A sentence for `ai-session ls` and the audit log.
    pub fn describe(&self) -> String {
        match self {
            StopReason::Exited(code) => format!("exited with status {code}"),
            StopReason::CpuTimeLimit { seconds } => {
                format!("stopped: CPU time limit of {seconds} s reached (SIGXCPU)")
            }
            StopReason::FileSizeLimit { bytes } => {
                format!("stopped: file size limit of {bytes} bytes exceeded (SIGXFSZ)")
            }
            StopReason::MemoryLimit { bytes } => {
                format!("stopped: memory limit of {bytes} bytes reached (killed by the OOM killer)")
            }
            StopReason::MemoryAllocationFailed { signal, bytes } => format!(
                "stopped by signal {signal}: probably a failed allocation at the memory limit of {bytes} bytes"
            ),
            StopReason::Signaled(sig) => format!("killed by signal {sig}"),
        }
    }

    /// True when a resource limit stopped the session.
    pub fn is_limit(&self) -> bool {
        !matches!(self, StopReason::Exited(_) | StopReason::Signaled(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn killed(sig: i32) -> ExitStatus {
        ExitStatus::from_raw(sig)
    }

    #[test]
    fn classifies_signals() {
        let limits = Limits {
            cpu_seconds: Some(5),
            memory_bytes: Some(1 << 20),
            file_size_bytes: Some(10),
            ..Limits::default()
        };
        let none = LimitEvents::default();
        let oom = LimitEvents {
            oom_kills: 1,
            pids_max_hits: 0,
        };
        assert_eq!(
            StopReason::classify(killed(libc::SIGXCPU), &limits, none, true),
            StopReason::CpuTimeLimit { seconds: 5 }
        );
        assert_eq!(
            StopReason::classify(killed(libc::SIGXFSZ), &limits, none, true),
            StopReason::FileSizeLimit { bytes: 10 }
        );
        assert_eq!(
            StopReason::classify(killed(libc::SIGKILL), &limits, oom, true),
            StopReason::MemoryLimit { bytes: 1 << 20 }
        );
        assert_eq!(
            StopReason::classify(killed(libc::SIGKILL), &limits, none, true),
            StopReason::Signaled(libc::SIGKILL)
        );
        assert_eq!(
            StopReason::classify(ExitStatus::from_raw(3 << 8), &limits, none, true),
            StopReason::Exited(3)
        );
        assert!(StopReason::classify(killed(libc::SIGABRT), &limits, none, false).is_limit());
    }
}
