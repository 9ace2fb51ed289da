//! `posix_spawn` with the attributes a terminal session needs, wrapped so the rest of the crate
//! never touches raw pointers.

use std::collections::BTreeMap;
use std::ffi::{CString, c_char};
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cstring(bytes: &[u8]) -> std::io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a NUL byte in an argument or variable",
        )
    })
}

fn check(rc: i32) -> std::io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(rc))
    }
}

/// A program, its arguments, environment and directory as C strings, for exec.
struct Program {
    path: CString,
    cwd: CString,
    args: Vec<CString>,
    vars: Vec<CString>,
}

impl Program {
    fn new(
        path: &Path,
        argv: &[String],
        env: &BTreeMap<String, String>,
        cwd: &Path,
    ) -> std::io::Result<Self> {
        Ok(Program {
            path: cstring(path.as_os_str().as_bytes())?,
            cwd: cstring(cwd.as_os_str().as_bytes())?,
            args: argv
                .iter()
                .map(|a| cstring(a.as_bytes()))
                .collect::<std::io::Result<_>>()?,
            vars: env
                .iter()
                .map(|(k, v)| cstring(format!("{k}={v}").as_bytes()))
                .collect::<std::io::Result<_>>()?,
        })
    }

    /// `argv` pointers, null-terminated; valid while `self` lives.
    fn argv(&self) -> impl Iterator<Item = *const c_char> + '_ {
        self.args
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
    }

    /// `envp` pointers, null-terminated; valid while `self` lives.
    fn envp(&self) -> impl Iterator<Item = *const c_char> + '_ {
        self.vars
            .iter()
            .map(|v| v.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
    }
}

struct FileActions(libc::posix_spawn_file_actions_t);

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `posix_spawn` below before this value exists.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

struct Attr(libc::posix_spawnattr_t);

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised in `posix_spawn` below before this value exists.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

/// Signals reset to their default action in the child: the daemon ignores SIGPIPE (as every
/// Rust program does), and an ignored signal would stay ignored across exec.
const RESET: [i32; 12] = [
    libc::SIGPIPE,
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGCHLD,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

/// Starts `path` with `argv` and exactly `env`, in `cwd`, as the leader of a new session whose
/// stdin, stdout and stderr are the terminal `tty` (which becomes its controlling terminal).
pub(crate) fn posix_spawn(
    path: &Path,
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: &Path,
    tty: &std::ffi::CStr,
) -> std::io::Result<i32> {
    let prog = Program::new(path, argv, env, cwd)?;
    let (path, cwd) = (&prog.path, &prog.cwd);
    let arg_ptrs: Vec<*mut c_char> = prog.argv().map(<*const c_char>::cast_mut).collect();
    let env_ptrs: Vec<*mut c_char> = prog.envp().map(<*const c_char>::cast_mut).collect();

    // SAFETY: every pointer handed to libc points into a CString or Vec that outlives the call;
    // the file-actions and attribute objects are initialised before use and destroyed by their
    // Drop guards; posix_spawn copies what it needs before returning.
    unsafe {
        let mut raw = MaybeUninit::<libc::posix_spawn_file_actions_t>::uninit();
        check(libc::posix_spawn_file_actions_init(raw.as_mut_ptr()))?;
        let mut actions = FileActions(raw.assume_init());
        check(libc::posix_spawn_file_actions_addopen(
            &mut actions.0,
            0,
            tty.as_ptr(),
            libc::O_RDWR,
            0,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(&mut actions.0, 0, 1))?;
        check(libc::posix_spawn_file_actions_adddup2(&mut actions.0, 0, 2))?;
        check(libc::posix_spawn_file_actions_addchdir_np(
            &mut actions.0,
            cwd.as_ptr(),
        ))?;

        let mut raw = MaybeUninit::<libc::posix_spawnattr_t>::uninit();
        check(libc::posix_spawnattr_init(raw.as_mut_ptr()))?;
        let mut attr = Attr(raw.assume_init());
        let flags = i32::from(libc::POSIX_SPAWN_SETSID)
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        check(libc::posix_spawnattr_setflags(
            &mut attr.0,
            flags as libc::c_short,
        ))?;
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        let mut empty = set.assume_init();
        check(libc::posix_spawnattr_setsigmask(&mut attr.0, &empty))?;
        for sig in RESET {
            libc::sigaddset(&mut empty, sig);
        }
        check(libc::posix_spawnattr_setsigdefault(&mut attr.0, &empty))?;

        let mut pid: libc::pid_t = 0;
        check(libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &actions.0,
            &attr.0,
            arg_ptrs.as_ptr(),
            env_ptrs.as_ptr(),
        ))?;
        Ok(pid)
    }
}

/// What the child of [`fork_spawn`] sends back through its error pipe when a step fails: the
/// errno, then a message naming the step.
const REPORT_MAX: usize = 128;

/// Starts `path` like [`posix_spawn`], but through `fork` so the sandbox can be applied in the
/// child before exec (Landlock, seccomp and namespaces need the child's own syscalls). Returns
/// the pid of the process the daemon forked: the program itself, or with a private pid
/// namespace its keeper (see the sandbox crate's namespace module).
///
/// `fork` copies the daemon's page tables, so this path costs more with a large daemon; it is
/// used only for sandboxed sessions.
pub(crate) fn fork_spawn(
    path: &Path,
    argv: &[String],
    env: &BTreeMap<String, String>,
    cwd: &Path,
    tty: &std::ffi::CStr,
    sandbox: &ai_session_sandbox::Prepared,
) -> std::io::Result<i32> {
    let prog = Program::new(path, argv, env, cwd)?;
    let (path, cwd) = (&prog.path, &prog.cwd);
    let arg_ptrs: Vec<*const c_char> = prog.argv().collect();
    let env_ptrs: Vec<*const c_char> = prog.envp().collect();

    let (read_end, write_end) =
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).map_err(std::io::Error::from)?;
    use std::os::fd::AsRawFd;
    let report_fd = write_end.as_raw_fd();
    // SAFETY: after fork the child runs only async-signal-safe code on data prepared above
    // (no allocation, no locks) and ends in execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: we are the forked child; see child_main.
        unsafe { child_main(path, &arg_ptrs, &env_ptrs, cwd, tty, sandbox, report_fd) }
    }
    drop(write_end);
    let mut report = [0u8; REPORT_MAX];
    let mut got = 0;
    loop {
        match rustix::io::read(&read_end, &mut report[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if got == report.len() {
                    break;
                }
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if got == 0 {
        return Ok(pid); // every copy of the pipe closed on exec: the program runs
    }
    // The child failed before exec and exited: reap it, then say which step failed.
    let mut status = 0;
    // SAFETY: waitpid on our own child with a stack status word.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let errno = if got >= 4 {
        i32::from_ne_bytes([report[0], report[1], report[2], report[3]])
    } else {
        libc::EIO
    };
    let step = String::from_utf8_lossy(&report[4.min(got)..got])
        .trim()
        .to_string();
    let os = std::io::Error::from_raw_os_error(errno);
    Err(std::io::Error::new(os.kind(), format!("{step}: {os}")))
}

/// The forked child: becomes a session leader with the terminal as its controlling
/// terminal and as stdin/stdout/stderr, enters `cwd`, resets signals, applies the sandbox
/// and execs. On failure it writes the errno and the step to `report_fd` and exits.
///
/// # Safety
/// Only in the child of `fork`, with every pointer valid (they point into the parent's
/// copies, which the child shares until exec).
unsafe fn child_main(
    path: &CString,
    argv: &[*const c_char],
    envp: &[*const c_char],
    cwd: &CString,
    tty: &std::ffi::CStr,
    sandbox: &ai_session_sandbox::Prepared,
    report_fd: i32,
) -> ! {
    // SAFETY: all calls below are async-signal-safe syscalls on prepared data.
    unsafe {
        let fail = |what: &[u8], errno: i32| -> ! {
            let mut buf = [0u8; REPORT_MAX];
            buf[..4].copy_from_slice(&errno.to_ne_bytes());
            let n = what.len().min(REPORT_MAX - 4);
            buf[4..4 + n].copy_from_slice(&what[..n]);
            libc::write(report_fd, buf.as_ptr().cast(), 4 + n);
            libc::_exit(127)
        };
        let errno = || {
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO)
        };
        if libc::setsid() < 0 {
            fail(b"setsid", errno());
        }
        // Opened without O_NOCTTY by a session leader: the terminal becomes ours.
        let fd = libc::open(tty.as_ptr(), libc::O_RDWR);
        if fd < 0 {
            fail(b"opening the terminal", errno());
        }
        for target in 0..3 {
            if fd != target && libc::dup2(fd, target) < 0 {
                fail(b"dup2 of the terminal", errno());
            }
        }
        if fd > 2 {
            libc::close(fd);
        }
        if libc::chdir(cwd.as_ptr()) < 0 {
            fail(b"entering the working directory", errno());
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        for sig in RESET {
            libc::signal(sig, libc::SIG_DFL);
        }
        if let Err(e) = sandbox.apply_in_child() {
            let msg = e.step.message();
            let msg = msg.strip_suffix(b"\n").unwrap_or(msg);
            fail(msg, e.errno);
        }
        libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(b"exec", errno())
    }
}
