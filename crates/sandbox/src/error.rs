//! Error types: [`Error`] for the parent side, [`ChildError`] for the forked child.

use std::fmt;

use crate::policy::PolicyError;

/// Errors returned by [`crate::Sandbox::prepare`] and the helpers around it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy itself is invalid; show the message to the user.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A mechanism the policy needs is missing and `allow_degrade` is false. The daemon
    /// must refuse to start the session and show `missing` (each item says why).
    #[error("sandbox cannot be enforced on this host and the policy forbids degrading: {}", .missing.join("; "))]
    Unenforceable {
        /// One line per missing protection.
        missing: Vec<String>,
    },
    /// Building the Landlock ruleset failed (for example a path could not be opened).
    #[error("landlock ruleset: {0}")]
    Landlock(String),
    /// Compiling the seccomp program failed (a bug in the rule tables).
    #[error("seccomp program: {0}")]
    Seccomp(String),
    /// Creating or configuring the session's cgroup failed.
    #[error("cgroup {path}: {source}")]
    Cgroup {
        /// The cgroup file or directory involved.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The workspace is not an absolute, existing directory.
    #[error("workspace {0:?} must be an absolute path to an existing directory")]
    Workspace(std::path::PathBuf),
}

/// Which step of [`crate::Prepared::apply_in_child`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildStep {
    /// Writing our pid to the cgroup's `cgroup.procs`.
    Cgroup,
    /// `setrlimit`.
    Rlimit,
    /// `unshare(CLONE_NEWUSER)` or writing the uid/gid maps.
    UserNamespace,
    /// `unshare` of mount/net/ipc namespaces.
    Unshare,
    /// Making `/` private or mounting the private `/tmp`.
    Mount,
    /// Bringing `lo` up in the new network namespace.
    Loopback,
    /// `prctl(PR_SET_NO_NEW_PRIVS)`.
    NoNewPrivs,
    /// `landlock_restrict_self`.
    Landlock,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)`.
    Seccomp,
    /// Creating the pid namespace or forking into it.
    PidNamespace,
    /// Mounting the pid namespace's `/proc`.
    MountProc,
    /// Covering the daemon's state directory and socket.
    HideDaemon,
}

impl ChildStep {
    /// A static message the child writes to its stderr (no allocation).
    pub fn message(self) -> &'static [u8] {
        match self {
            ChildStep::Cgroup => b"ai-session-sandbox: entering the cgroup failed\n",
            ChildStep::Rlimit => b"ai-session-sandbox: setrlimit failed\n",
            ChildStep::UserNamespace => b"ai-session-sandbox: user namespace setup failed\n",
            ChildStep::Unshare => b"ai-session-sandbox: unshare failed\n",
            ChildStep::Mount => b"ai-session-sandbox: private /tmp mount failed\n",
            ChildStep::Loopback => b"ai-session-sandbox: bringing lo up failed\n",
            ChildStep::NoNewPrivs => b"ai-session-sandbox: PR_SET_NO_NEW_PRIVS failed\n",
            ChildStep::Landlock => b"ai-session-sandbox: landlock_restrict_self failed\n",
            ChildStep::Seccomp => b"ai-session-sandbox: seccomp filter install failed\n",
            ChildStep::PidNamespace => b"ai-session-sandbox: pid namespace setup failed\n",
            ChildStep::MountProc => b"ai-session-sandbox: mounting /proc failed\n",
            ChildStep::HideDaemon => {
                b"ai-session-sandbox: hiding the daemon's state directory failed\n"
            }
        }
    }
}

/// A failure inside the forked child: the step and the raw errno. It converts into
/// `std::io::Error` without allocating, so `pre_exec` can return it and `spawn` reports
/// the errno to the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildError {
    /// The step that failed.
    pub step: ChildStep,
    /// The errno the kernel returned.
    pub errno: i32,
}

impl ChildError {
    pub(crate) fn new(step: ChildStep, errno: i32) -> Self {
        ChildError { step, errno }
    }

    pub(crate) fn from_rustix(step: ChildStep, e: rustix::io::Errno) -> Self {
        ChildError {
            step,
            errno: e.raw_os_error(),
        }
    }
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} failed with errno {}", self.step, self.errno)
    }
}

impl std::error::Error for ChildError {}

impl From<ChildError> for std::io::Error {
    fn from(e: ChildError) -> Self {
        std::io::Error::from_raw_os_error(e.errno)
    }
}
