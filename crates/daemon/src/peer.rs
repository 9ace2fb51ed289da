//! Who is at the other end of a socket connection. The socket's directory is private to the
//! daemon's user, but a process of that user inside a sandboxed session is not the owner:
//! it must never reach the daemon, even if it finds a path to the socket (the session's
//! mount namespace hides it; this check is the second wall).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use tokio::net::UnixStream;

/// `SO_PEERPIDFD` (Linux 6.5): a pidfd for the process that connected.
const SO_PEERPIDFD: i32 = 77;

/// The namespaces a peer must share with the daemon. Not the mount namespace: a user's own
/// tools may run in one of their own (a systemd unit with PrivateTmp); a sandbox always has its
/// own user namespace where the host allows one, its own pid namespace where it can, and its
/// cgroup otherwise.
const CHECKED_NS: [&str; 2] = ["user", "pid"];

/// The daemon's own namespaces, read once: they never change while it runs.
static OWN_NS: std::sync::LazyLock<[Option<PathBuf>; 2]> = std::sync::LazyLock::new(|| {
    CHECKED_NS.map(|ns| ns_id(PathBuf::from("/proc/self/ns").join(ns)))
});

/// Why a connection is refused, in words for the daemon's log, the audit log and the client.
pub(crate) struct Refusal(pub String);

/// Admits the owner: a process of our uid, in the daemon's own user, mount and pid
/// namespaces, outside every session cgroup. Anything else is refused with the reason.
pub(crate) fn check(stream: &UnixStream, uid: u32) -> Result<(), Refusal> {
    let cred = stream
        .peer_cred()
        .map_err(|e| Refusal(format!("cannot read the peer's credentials: {e}")))?;
    if cred.uid() != uid {
        return Err(Refusal(format!(
            "a process of another user (uid {}) connected",
            cred.uid()
        )));
    }
    // A pid of 0 means the peer lives in a pid namespace we cannot see into.
    let pid = cred
        .pid()
        .filter(|p| *p > 0)
        .ok_or_else(|| Refusal("the connecting process has no pid visible to the daemon".into()))?;
    // Taken first: if the process exits and its pid is reused while we read /proc, the pidfd
    // still names the original process and the liveness check below fails.
    let pidfd = peer_pidfd(stream);
    for (ns, ours) in CHECKED_NS.iter().zip(OWN_NS.iter()) {
        let ours = ours.clone();
        let theirs = ns_id(PathBuf::from(format!("/proc/{pid}/ns/{ns}")));
        match (ours, theirs) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), Some(_)) => {
                return Err(Refusal(format!(
                    "process {pid} is in another {ns} namespace (a sandboxed session or a container): \
                     sessions cannot drive the daemon"
                )));
            }
            _ => {
                return Err(Refusal(format!(
                    "cannot read the namespaces of process {pid} (it exited?)"
                )));
            }
        }
    }
    let marker = format!("/{}", ai_session_sandbox::cgroup::name_prefix());
    if std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|groups| groups.contains(&marker))
    {
        return Err(Refusal(format!(
            "process {pid} belongs to a sandboxed session: sessions cannot drive the daemon"
        )));
    }
    if let Some(fd) = pidfd {
        if !alive(&fd) {
            return Err(Refusal(format!(
                "process {pid} exited before its connection was checked"
            )));
        }
    }
    Ok(())
}

fn ns_id(path: PathBuf) -> Option<PathBuf> {
    std::fs::read_link(path).ok()
}

fn peer_pidfd(stream: &UnixStream) -> Option<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the int we own.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    // SAFETY: on success the kernel handed us a new descriptor that nothing else owns.
    (rc == 0 && fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// True while the process behind `pidfd` has not exited (signal 0 checks without sending).
fn alive(pidfd: &OwnedFd) -> bool {
    // SAFETY: pidfd_send_signal with signal 0 on a descriptor we own.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0
}
