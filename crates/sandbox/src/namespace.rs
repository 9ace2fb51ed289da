//! Linux namespaces for a session: user, mount (private `/tmp`), network, ipc, pid.
//!
//! Everything that may allocate (formatting the uid/gid maps) happens in [`NsPlan::new`]
//! in the parent; the `enter_*` functions only issue syscalls and are safe to call between
//! `fork` and `exec`.
//!
//! The pid namespace needs more than an `unshare`: `unshare(CLONE_NEWPID)` moves only the
//! *children* of the caller into the new namespace, and the first of them becomes its init,
//! whose exit kills the namespace. So a session with a pid namespace is three processes:
//!
//! 1. the *keeper*, the process the daemon forked (session leader, holder of the terminal):
//!    it unshares the pid namespace, forks, closes every descriptor, blocks every signal
//!    and waits; it ends as its child did (an exit code above 128 from the init becomes
//!    that signal again), so the daemon's view of how the session ended is unchanged;
//! 2. the *init*, pid 1 of the new namespace: it mounts a `/proc` of its namespace (so `ps`
//!    shows the session's own processes only), takes the remaining restrictions, forks the
//!    program, closes every descriptor and reaps: orphans re-parented to it, then the
//!    program, whose status it exits with (a signal as 128 + its number, since init cannot
//!    kill itself with one). When it exits, the kernel kills everything left in the
//!    namespace;
//! 3. the program (the shell), pid 2 inside, which returns from
//!    [`crate::Prepared::apply_in_child`] and is exec'ed by the caller.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fd::{AsFd, AsRawFd};
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
    pid: bool,
    hide: HidePlan,
    /// Options of the private `/tmp` tmpfs (mode and size).
    tmp_opts: CString,
    /// Options of the private `/dev/shm` tmpfs.
    shm_opts: CString,
    /// `/dev/pts` and `/dev/shm` exist on this host (checked in the parent).
    dev_pts: bool,
    dev_shm: bool,
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
            pid: false,
            hide: HidePlan::default(),
            tmp_opts: c"mode=1777".to_owned(),
            shm_opts: c"mode=1777".to_owned(),
            dev_pts: Path::new("/dev/pts").is_dir(),
            dev_shm: Path::new("/dev/shm").is_dir(),
            uid_map: MapLine::identity(rustix::process::geteuid().as_raw()),
            gid_map: MapLine::identity(rustix::process::getegid().as_raw()),
        }
    }

    /// Adds a pid namespace (only with a mount namespace, which its `/proc` needs).
    pub fn with_pid(mut self, pid: bool) -> Self {
        self.pid = pid && self.mount;
        self
    }

    /// Bounds the private `/tmp` and `/dev/shm` to `bytes` each.
    pub fn with_tmp_size(mut self, bytes: u64) -> Self {
        if let Ok(opts) = CString::new(format!("mode=1777,size={bytes}")) {
            self.tmp_opts = opts.clone();
            self.shm_opts = opts;
        }
        self
    }

    /// Hides the daemon's state from the session (takes a mount namespace). Returns false,
    /// changing nothing, when there is nothing to hide.
    pub fn with_hidden(mut self, hidden: &Hidden) -> (Self, bool) {
        let plan = HidePlan::new(hidden);
        if plan.is_empty() {
            return (self, false);
        }
        self.hide = plan;
        self.mount = true;
        self.ipc = true;
        (self, true)
    }

    /// True when `/dev/shm` gets a private tmpfs along with the private devpts.
    pub fn private_shm(&self) -> bool {
        self.private_devices() && self.dev_shm
    }

    /// True when the plan gives the session its own pid namespace.
    pub fn pid(&self) -> bool {
        self.pid
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
                    Some(self.tmp_opts.as_c_str()),
                )
                .map_err(fail)?;
            }
            // SAFETY: forwarded from the caller's contract.
            unsafe { self.mount_private_devices() }?;
            // SAFETY: forwarded from the caller's contract.
            unsafe { self.hide.apply() }?;
        }
        if self.loopback_up {
            // SAFETY: plain socket/ioctl/close syscalls on a stack buffer.
            unsafe { loopback_up() }?;
        }
        Ok(())
    }
}

impl NsPlan {
    /// True when the session gets its own `/dev/pts` and `/dev/shm` (with any mount
    /// namespace).
    pub fn private_devices(&self) -> bool {
        // (Fields only: this runs in the child too.)
        self.mount && self.dev_pts
    }

    /// Gives the session its own terminals and shared memory: a new `devpts` instance on
    /// `/dev/pts` (with `/dev/ptmx` pointing into it) and a bounded tmpfs on `/dev/shm`. The
    /// host's (and other sessions') terminals are then out of sight: nothing can write text
    /// or escape sequences into them, or resize them. The session's own terminal stays open
    /// on its descriptors and as `/dev/tty`.
    ///
    /// # Safety
    /// Only async-signal-safe syscalls; meant for the child in its new mount namespace.
    unsafe fn mount_private_devices(&self) -> Result<(), ChildError> {
        if !self.private_devices() {
            return Ok(());
        }
        let fail = |e| ChildError::from_rustix(ChildStep::Mount, e);
        rustix::mount::mount(
            c"devpts",
            c"/dev/pts",
            c"devpts",
            MountFlags::NOSUID | MountFlags::NOEXEC,
            Some(c"newinstance,ptmxmode=0666,mode=0620"),
        )
        .map_err(fail)?;
        rustix::mount::mount_bind(c"/dev/pts/ptmx", c"/dev/ptmx").map_err(fail)?;
        if self.dev_shm {
            rustix::mount::mount(
                c"tmpfs",
                c"/dev/shm",
                c"tmpfs",
                MountFlags::NOSUID | MountFlags::NODEV,
                Some(self.shm_opts.as_c_str()),
            )
            .map_err(fail)?;
        }
        Ok(())
    }

    /// Enters the pid namespace: unshares it and forks. The caller (the keeper) never
    /// returns: it waits for its child and exits with its status. The child, pid 1 of the
    /// new namespace, returns and must call [`NsPlan::mount_proc`] next. Does nothing
    /// without a pid namespace in the plan.
    ///
    /// # Safety
    /// Only async-signal-safe syscalls; meant for the child between fork and exec, after
    /// [`NsPlan::enter_rest`].
    pub unsafe fn enter_pid(&self) -> Result<(), ChildError> {
        if !self.pid {
            return Ok(());
        }
        // SAFETY: single-threaded child; only the namespace of later children changes.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWPID) }
            .map_err(|e| ChildError::from_rustix(ChildStep::PidNamespace, e))?;
        // SAFETY: fork in a single-threaded process; both sides only make syscalls.
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(ChildError::new(ChildStep::PidNamespace, errno()));
        }
        if child == 0 {
            return Ok(());
        }
        // The keeper: hold nothing open (not the terminal, not the daemon's descriptors),
        // ignore every signal that can be blocked, and mirror the init's exit.
        // SAFETY: plain syscalls on constant arguments.
        unsafe {
            close_from(0);
            block_all_signals();
            let code = wait_for(child);
            if code > 128 && code <= 128 + 64 {
                die_of(code - 128);
            }
            libc::_exit(code);
        }
    }

    /// Mounts a `/proc` that shows the new pid namespace. Call in pid 1 of the namespace.
    ///
    /// # Safety
    /// One `mount` syscall; meant for the child between fork and exec, after
    /// [`NsPlan::enter_pid`].
    pub unsafe fn mount_proc(&self) -> Result<(), ChildError> {
        if !self.pid {
            return Ok(());
        }
        rustix::mount::mount(
            c"proc",
            c"/proc",
            c"proc",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            None,
        )
        .map_err(|e| ChildError::from_rustix(ChildStep::MountProc, e))
    }

    /// Splits pid 1 of the namespace into the init (which never returns: it reaps until the
    /// program exits, then exits with its status) and the program, which returns.
    ///
    /// # Safety
    /// Only async-signal-safe syscalls; meant for the child between fork and exec, as the
    /// last step before exec.
    pub unsafe fn become_init(&self) -> Result<(), ChildError> {
        if !self.pid {
            return Ok(());
        }
        // SAFETY: fork in a single-threaded process.
        let program = unsafe { libc::fork() };
        if program < 0 {
            return Err(ChildError::new(ChildStep::PidNamespace, errno()));
        }
        if program == 0 {
            return Ok(());
        }
        // SAFETY: plain syscalls.
        unsafe {
            close_from(0);
            loop {
                let mut status = 0;
                let pid = libc::waitpid(-1, &mut status, 0);
                if pid == program {
                    libc::_exit(exit_code(status));
                }
                if pid < 0 && errno() != libc::EINTR {
                    libc::_exit(127);
                }
            }
        }
    }
}

/// The most directories a sandbox clones back into a hidden directory (the shell hooks and
/// the session's own directory need two). Fixed so the child needs no allocation.
pub const MAX_KEPT: usize = 4;

/// What of the daemon's own state a sandboxed session must not see, as given by the caller.
///
/// A process in the session could otherwise connect to the daemon's socket (Landlock does
/// not govern `connect` on a pathname socket) and drive it as its owner, or read other
/// sessions' logs, the audit log and the token file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hidden {
    /// Directories covered by an empty, read-only tmpfs (the state directory).
    pub dirs: Vec<PathBuf>,
    /// Directories inside `dirs` the shell needs (its hook scripts, its session directory):
    /// cloned back, read-only, at the same place.
    pub keep: Vec<PathBuf>,
    /// Other files covered by `/dev/null` (a socket given with `-S` outside `dirs`).
    pub files: Vec<PathBuf>,
}

impl Hidden {
    /// True when there is nothing to hide.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty() && self.files.is_empty()
    }
}

/// One kept directory: the directories to create in the tmpfs (parents first, the last one
/// being the mount point itself).
#[derive(Debug, Clone)]
struct Kept {
    path: CString,
    mkdirs: Vec<CString>,
}

/// [`Hidden`] turned into C strings in the parent, for the child.
#[derive(Debug, Clone, Default)]
pub(crate) struct HidePlan {
    dirs: Vec<CString>,
    keep: Vec<Kept>,
    files: Vec<CString>,
}

fn c_path(path: &Path) -> Option<CString> {
    CString::new(path.as_os_str().as_bytes()).ok()
}

impl HidePlan {
    /// Plans `hidden`; paths that do not exist (or hold a NUL) are skipped, a kept directory
    /// outside every hidden one needs nothing.
    pub(crate) fn new(hidden: &Hidden) -> HidePlan {
        let dirs: Vec<&PathBuf> = hidden.dirs.iter().filter(|d| d.is_dir()).collect();
        let mut plan = HidePlan {
            dirs: dirs.iter().filter_map(|d| c_path(d)).collect(),
            ..HidePlan::default()
        };
        for keep in &hidden.keep {
            let Some(root) = dirs.iter().find(|d| keep.starts_with(d) && keep != **d) else {
                continue;
            };
            if !keep.is_dir() || plan.keep.len() == MAX_KEPT {
                continue;
            }
            let mut chain: Vec<CString> = keep
                .ancestors()
                .take_while(|a| a != root)
                .filter_map(c_path)
                .collect();
            chain.reverse();
            if let Some(path) = c_path(keep) {
                plan.keep.push(Kept {
                    path,
                    mkdirs: chain,
                });
            }
        }
        plan.files = hidden
            .files
            .iter()
            .filter(|f| f.exists() && !dirs.iter().any(|d| f.starts_with(d)))
            .filter_map(|f| c_path(f))
            .collect();
        plan
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.dirs.is_empty() && self.files.is_empty()
    }

    /// Covers the hidden directories and files. Call in a private mount namespace.
    ///
    /// The kept directories are cloned (`open_tree`) before their parent is covered, then
    /// moved onto fresh directories in the tmpfs; every piece ends read-only. The session
    /// cannot undo this: its seccomp filter denies the mount calls and Landlock denies
    /// changes to the mount topology.
    ///
    /// # Safety
    /// Only async-signal-safe syscalls on data prepared in the parent; meant for the child
    /// between fork and exec.
    pub(crate) unsafe fn apply(&self) -> Result<(), ChildError> {
        use rustix::mount::{MoveMountFlags, OpenTreeFlags};
        let fail = |e| ChildError::from_rustix(ChildStep::HideDaemon, e);
        let mut trees: [Option<rustix::fd::OwnedFd>; MAX_KEPT] = std::array::from_fn(|_| None);
        for (slot, kept) in trees.iter_mut().zip(&self.keep) {
            let tree = rustix::mount::open_tree(
                rustix::fs::CWD,
                kept.path.as_c_str(),
                OpenTreeFlags::OPEN_TREE_CLONE
                    | OpenTreeFlags::OPEN_TREE_CLOEXEC
                    | OpenTreeFlags::AT_RECURSIVE,
            )
            .map_err(fail)?;
            // SAFETY: mount_setattr on a descriptor we own.
            unsafe { set_read_only(tree.as_raw_fd(), c"", libc::AT_EMPTY_PATH) }?;
            *slot = Some(tree);
        }
        for dir in &self.dirs {
            rustix::mount::mount(
                c"tmpfs",
                dir.as_c_str(),
                c"tmpfs",
                MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
                Some(c"mode=0755,size=64k"),
            )
            .map_err(fail)?;
        }
        for (tree, kept) in trees.iter().zip(&self.keep) {
            let Some(tree) = tree else { continue };
            for dir in &kept.mkdirs {
                match rustix::fs::mkdir(dir.as_c_str(), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => return Err(fail(e)),
                }
            }
            rustix::mount::move_mount(
                tree,
                c"",
                rustix::fs::CWD,
                kept.path.as_c_str(),
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
            )
            .map_err(fail)?;
        }
        for dir in &self.dirs {
            // SAFETY: mount_setattr on a path prepared in the parent.
            unsafe { set_read_only(libc::AT_FDCWD, dir.as_c_str(), 0) }?;
        }
        for file in &self.files {
            rustix::mount::mount_bind(c"/dev/null", file.as_c_str()).map_err(fail)?;
        }
        Ok(())
    }
}

/// Makes a mount (and everything below it) read-only with `mount_setattr(2)`, which, unlike
/// a remount, leaves the flags the parent namespace locked (nosuid, nodev) as they are.
///
/// # Safety
/// One syscall on caller-provided descriptor and path.
unsafe fn set_read_only(dirfd: i32, path: &CStr, flags: i32) -> Result<(), ChildError> {
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    const MOUNT_ATTR_RDONLY: u64 = 1;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: the struct is the kernel's `mount_attr` layout, passed with its size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(ChildError::new(ChildStep::HideDaemon, errno()));
    }
    Ok(())
}

/// Closes every descriptor from `first` up.
///
/// # Safety
/// Callers must own every descriptor in the range (true in a child about to wait only).
unsafe fn close_from(first: u32) {
    // SAFETY: close_range(2) with flags 0 only closes descriptors.
    unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) };
}

/// Blocks every blockable signal (SIGKILL and SIGSTOP still act).
///
/// # Safety
/// Async-signal-safe.
unsafe fn block_all_signals() {
    // SAFETY: sigset_t is plain data filled by sigfillset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Ends the calling process with `signal`, so the daemon sees the program's own end (a CPU
/// or file-size limit, the OOM killer's SIGKILL) and not an exit code. No core dump: the
/// program, not the keeper, crashed. Falls back to exiting with 128 + `signal`.
///
/// # Safety
/// Async-signal-safe.
unsafe fn die_of(signal: i32) -> ! {
    // SAFETY: plain syscalls on constant arguments and stack data.
    unsafe {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), signal);
        libc::_exit(128 + signal)
    }
}

/// Waits for `child` and returns the shell convention for its status.
///
/// # Safety
/// Async-signal-safe.
unsafe fn wait_for(child: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a stack status word.
        let pid = unsafe { libc::waitpid(child, &mut status, 0) };
        if pid == child {
            return exit_code(status);
        }
        if pid < 0 && errno() != libc::EINTR {
            return 127;
        }
    }
}

/// The exit code, or 128 + the signal that ended the process.
fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
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
