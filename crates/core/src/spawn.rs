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
    let path = cstring(path.as_os_str().as_bytes())?;
    let cwd = cstring(cwd.as_os_str().as_bytes())?;
    let args = argv
        .iter()
        .map(|a| cstring(a.as_bytes()))
        .collect::<std::io::Result<Vec<_>>>()?;
    let vars = env
        .iter()
        .map(|(k, v)| cstring(format!("{k}={v}").as_bytes()))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut arg_ptrs: Vec<*mut c_char> = args.iter().map(|a| a.as_ptr().cast_mut()).collect();
    arg_ptrs.push(std::ptr::null_mut());
    let mut env_ptrs: Vec<*mut c_char> = vars.iter().map(|v| v.as_ptr().cast_mut()).collect();
    env_ptrs.push(std::ptr::null_mut());

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
