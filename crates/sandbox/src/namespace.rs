//! Linux namespaces for a session: user, mount (private `/tmp`), network, ipc.
//!
//! Everything that may allocate (formatting the uid/gid maps) happens in [`NsPlan::new`]
//! in the parent; [`NsPlan::enter_user`] and [`NsPlan::enter_rest`] only issue syscalls and
//! are safe to call between `fork` and `exec`.
//!
//! The pid namespace is deliberately not entered here: `unshare(CLONE_NEWPID)` only moves
//! the *children* of the caller into the new namespace, and the first of them becomes its
//! init; when that first command exits, every later `fork` in the shell fails with ENOMEM.
//! A correct pid namespace needs an init process between the daemon and the shell (a
//! `clone(CLONE_NEWPID)` in a small wrapper that forwards signals and reaps orphans). Until
//! the daemon ships such a wrapper, [`crate::Prepared::active`] reports the pid namespace
//! as not applied, with this reason.

use std::ffi::CStr;

use rustix::fd::AsFd;
use rustix::fs::{Mode, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::thread::UnshareFlags;

use crate::error::{ChildError, ChildStep};

/// A uid or gid map line ("inside outside 1\n") formatted in the parent.
#[derive(Debug, Clone, Copy)]
struct MapLine {
    buf: [u8; 32],
    len: usize,
}

impl MapLine {
    /// Maps `id` inside the namespace to the same `id` outside: the shell keeps its uid.
    fn identity(id: u32) -> MapLine {
        let text = format!("{id} {id} 1\n");
        let mut buf = [0u8; 32];
        let len = text.len().min(buf.len());
        buf[..len].copy_from_slice(&text.as_bytes()[..len]);
        MapLine { buf, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Which namespaces to enter and what to set up inside them.
#[derive(Debug, Clone)]
pub struct NsPlan {
    user: bool,
    mount: bool,
    net: bool,
    ipc: bool,
    private_tmp: bool,
    loopback_up: bool,
    uid_map: MapLine,
    gid_map: MapLine,
}

impl NsPlan {
    /// Plans the namespaces; `user` should be true whenever the host allows it (it is what
    /// lets an unprivileged daemon create the others, and it strips a root daemon's host
    /// capabilities from the session).
    pub fn new(user: bool, mount: bool, net: bool, private_tmp: bool, loopback_up: bool) -> Self {
        NsPlan {
            user,
            mount: mount || private_tmp,
            net,
            ipc: user || mount || net,
            private_tmp,
            loopback_up: net && loopback_up,
            uid_map: MapLine::identity(rustix::process::geteuid().as_raw()),
            gid_map: MapLine::identity(rustix::process::getegid().as_raw()),
        }
    }

    /// True when the plan enters no namespace at all.
    pub fn is_empty(&self) -> bool {
        !(self.user || self.mount || self.net)
    }

    /// Enters a new user namespace and maps our own uid/gid into it.
    ///
    /// # Safety
    /// Only async-signal-safe syscalls; meant for the child between fork and exec.
    pub unsafe fn enter_user(&self) -> Result<(), ChildError> {
        if !self.user {
            return Ok(());
        }
        let fail = |e| ChildError::from_rustix(ChildStep::UserNamespace, e);
        // SAFETY: the child is single-threaded after fork; unsharing the user namespace
        // changes only this process's credentials.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER) }.map_err(fail)?;
        // "deny" must be written before gid_map by a process without CAP_SETGID in the
        // parent namespace (which is what we are now).
        write_file(c"/proc/self/setgroups", b"deny").map_err(fail)?;
        write_file(c"/proc/self/uid_map", self.uid_map.bytes()).map_err(fail)?;
        write_file(c"/proc/self/gid_map", self.gid_map.bytes()).map_err(fail)?;
        Ok(())
    }

    /// Enters the mount/net/ipc namespaces and sets them up (private `/tmp`, `lo` up).
    ///
    /// # Safety
    /// Only async-signal-safe syscalls; meant for the child between fork and exec, after
    /// [`NsPlan::enter_user`].
    pub unsafe fn enter_rest(&self) -> Result<(), ChildError> {
        let mut flags = UnshareFlags::empty();
        if self.mount {
            flags |= UnshareFlags::NEWNS;
        }
        if self.net {
            flags |= UnshareFlags::NEWNET;
        }
        if self.ipc {
            flags |= UnshareFlags::NEWIPC;
        }
        if !flags.is_empty() {
            // SAFETY: single-threaded child; only this process's namespaces change.
            unsafe { rustix::thread::unshare_unsafe(flags) }
                .map_err(|e| ChildError::from_rustix(ChildStep::Unshare, e))?;
        }
        if self.mount {
            let fail = |e| ChildError::from_rustix(ChildStep::Mount, e);
            // Without this, our tmpfs would propagate back to the host's shared mounts.
            rustix::mount::mount_change(
                c"/",
                MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
            )
            .map_err(fail)?;
            if self.private_tmp {
                rustix::mount::mount(
                    c"tmpfs",
                    c"/tmp",
                    c"tmpfs",
                    MountFlags::NOSUID | MountFlags::NODEV,
                    Some(c"mode=1777"),
                )
                .map_err(fail)?;
            }
        }
        if self.loopback_up {
            // SAFETY: plain socket/ioctl/close syscalls on a stack buffer.
            unsafe { loopback_up() }?;
        }
        Ok(())
    }
}

/// Opens `path` write-only and writes `bytes` with one `write` (proc files want that).
fn write_file(path: &CStr, bytes: &[u8]) -> Result<(), rustix::io::Errno> {
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    let n = rustix::io::write(fd.as_fd(), bytes)?;
    if n != bytes.len() {
        return Err(rustix::io::Errno::IO);
    }
    Ok(())
}

/// Sets IFF_UP on `lo` in the (new) network namespace, which starts with it down.
///
/// # Safety
/// Async-signal-safe: socket, two ioctls and close, on a stack `ifreq`.
unsafe fn loopback_up() -> Result<(), ChildError> {
    let fail = || ChildError::new(ChildStep::Loopback, errno());
    // SAFETY: socket(2) with constant arguments.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(fail());
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: SIOCGIFFLAGS reads into the ifreq we own.
    let mut rc = unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) };
    if rc == 0 {
        // SAFETY: the flags member is the active one after SIOCGIFFLAGS.
        unsafe {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        }
        // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
        rc = unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) };
    }
    let err = if rc == 0 { None } else { Some(fail()) };
    // SAFETY: closing the socket we opened above.
    unsafe { libc::close(sock) };
    err.map_or(Ok(()), Err)
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
