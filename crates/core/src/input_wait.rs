//! Whether a process is waiting for someone to type: blocked in a system call that reads the
//! session's terminal (a `read -p`, `input()`, a password prompt, a REPL, a pager).
//!
//! The kernel says which system call a sleeping process is in, and its arguments, in
//! `/proc/PID/syscall` (readable by the process's owner when ptrace would be allowed: the daemon
//! started the session, so it is an ancestor). A `read` names its descriptor, which is checked
//! against the session's terminal. A `select` over one descriptor can only be watching fd 0.
//! For other waits (`poll`, `epoll`, a `select` over several descriptors) the descriptors are in
//! the process's memory, which the daemon does not read: such a process counts as waiting for
//! input only when it also switched the terminal out of canonical mode, which is what programs
//! that read keys do (REPLs with a line editor, pagers, full-screen programs); a server polling
//! its sockets leaves the terminal alone.

use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// `/dev/tty`: a process's name for its controlling terminal (major 5, minor 0).
const DEV_TTY: u64 = 5 << 8;

/// What the terminal's modes say, for the cases the system call alone cannot settle.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Modes {
    /// Canonical input is off: a program reads keys one by one.
    pub raw: bool,
    /// Echo is off: a program reads something it does not want shown (a password).
    pub no_echo: bool,
}

/// Processes of a group looked at, at most: a pipeline or a script and what it runs.
const MAX_LOOKED: usize = 32;

/// True when a process of the foreground group is blocked reading the terminal whose slave is
/// `tty`: `leader` (the group's first process, which leads it when alive), then its children
/// and their descendants in the same group (a script's `read`, a pipeline's `less`). A leader
/// that already exited (`seq 500 | less` once `seq` is done) is replaced by the children of
/// `shell` in its group.
pub(crate) fn group_reading_terminal(leader: i32, shell: i32, tty: u64, modes: Modes) -> bool {
    let Some(group) = group_of(leader).or_else(|| (leader != shell).then_some(leader)) else {
        return false;
    };
    let mut todo: std::collections::VecDeque<i32> = if alive(leader) {
        [leader].into()
    } else {
        children(shell)
            .into_iter()
            .filter(|c| group_of(*c) == Some(group))
            .collect()
    };
    let mut looked = 0;
    while let Some(pid) = todo.pop_front() {
        if looked == MAX_LOOKED {
            break;
        }
        looked += 1;
        if reading_terminal(pid, tty, modes) {
            tracing::debug!(pid, group, ?modes, "blocked reading the terminal");
            return true;
        }
        todo.extend(
            children(pid)
                .into_iter()
                .filter(|c| group_of(*c) == Some(group)),
        );
    }
    false
}

/// True when process `pid` is blocked reading the terminal whose slave is `tty`.
fn reading_terminal(pid: i32, tty: u64, modes: Modes) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/syscall")) {
        Ok(text) => match parse(&text) {
            Some((nr, args)) => in_terminal_read(pid, tty, modes, nr, args),
            None => false, // running, or stopped outside a system call
        },
        // A process the daemon may not trace (a setuid `sudo`, `passwd`): it can only be
        // judged by how it set the terminal up, and asleep.
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            (modes.raw || modes.no_echo) && sleeping(pid)
        }
        Err(_) => false,
    }
}

/// The system call number and its first two arguments, from `/proc/PID/syscall`
/// (`"0 0x3 0x55d1... ..."`; `"running"` or `"-1 ..."` when not in a system call).
fn parse(text: &str) -> Option<(i64, [u64; 2])> {
    let mut fields = text.split_whitespace();
    let nr: i64 = fields.next()?.parse().ok()?;
    if nr < 0 {
        return None;
    }
    let mut hex = || u64::from_str_radix(fields.next()?.trim_start_matches("0x"), 16).ok();
    Some((nr, [hex()?, hex()?]))
}

fn in_terminal_read(pid: i32, tty: u64, modes: Modes, nr: i64, args: [u64; 2]) -> bool {
    let fd_is_tty = |fd: u64| is_terminal(pid, fd, tty);
    if READS.contains(&nr) {
        return fd_is_tty(args[0]);
    }
    if SELECTS.contains(&nr) {
        // The first argument is one more than the highest descriptor watched.
        return if args[0] == 1 {
            fd_is_tty(0)
        } else {
            modes.raw && fd_is_tty(0)
        };
    }
    if POLLS.contains(&nr) {
        return modes.raw && fd_is_tty(0);
    }
    false
}

/// Whether descriptor `fd` of `pid` is the session's terminal (or `/dev/tty`, which for a
/// process in the terminal's foreground is the same terminal).
fn is_terminal(pid: i32, fd: u64, tty: u64) -> bool {
    match std::fs::metadata(format!("/proc/{pid}/fd/{fd}")) {
        Ok(meta) => {
            meta.file_type().is_char_device() && (meta.rdev() == tty || meta.rdev() == DEV_TTY)
        }
        Err(_) => false,
    }
}

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces and
/// parentheses): state, parent, process group, ... Any user may read them.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().take(3).map(str::to_owned).collect())
}

/// State `S`: interruptible sleep.
fn sleeping(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "S"))
}

/// Exists and is not a zombie.
fn alive(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z"))
}

fn group_of(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}

/// The children of `pid`'s main thread, from `/proc/PID/task/PID/children`.
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|list| {
            list.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

const READS: &[i64] = &[libc::SYS_read, libc::SYS_readv, libc::SYS_pread64];

#[cfg(target_arch = "x86_64")]
const SELECTS: &[i64] = &[libc::SYS_select, libc::SYS_pselect6];
#[cfg(not(target_arch = "x86_64"))]
const SELECTS: &[i64] = &[libc::SYS_pselect6];

#[cfg(target_arch = "x86_64")]
const POLLS: &[i64] = &[
    libc::SYS_poll,
    libc::SYS_ppoll,
    libc::SYS_epoll_wait,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
];
#[cfg(not(target_arch = "x86_64"))]
const POLLS: &[i64] = &[
    libc::SYS_ppoll,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_syscall() {
        assert_eq!(
            parse("0 0x3 0x55d1 0x1 0x0 0x0 0x0 0x7ffd 0x7f12\n"),
            Some((0, [3, 0x55d1]))
        );
        assert_eq!(parse("running\n"), None);
        assert_eq!(parse("-1 0x7ffd 0x7f12\n"), None);
    }

    fn cat_reading(stdin: std::process::Stdio) -> std::process::Child {
        std::process::Command::new("cat")
            .stdin(stdin)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Polls `cond` until it holds or five seconds pass.
    fn eventually(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn a_read_of_the_terminal_is_seen_and_a_read_of_a_pipe_is_not() {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = std::fs::File::options()
            .read(true)
            .write(true)
            .open(name.to_str().unwrap())
            .unwrap();
        let tty = rustix::fs::fstat(&slave).unwrap().st_rdev;
        let cooked = Modes {
            raw: false,
            no_echo: false,
        };
        let mut on_tty = cat_reading(slave.into());
        let pid = on_tty.id() as i32;
        assert!(eventually(|| group_reading_terminal(pid, 1, tty, cooked)));
        let (reader, _writer) = std::io::pipe().unwrap();
        let mut on_pipe = cat_reading(reader.into());
        let pid = on_pipe.id() as i32;
        // Blocked in the same read, on a pipe: never the terminal.
        assert!(eventually(|| {
            std::fs::read_to_string(format!("/proc/{pid}/syscall"))
                .is_ok_and(|s| s.starts_with(&format!("{} ", libc::SYS_read)))
        }));
        assert!(!group_reading_terminal(pid, 1, tty, cooked));
        for child in [&mut on_tty, &mut on_pipe] {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}
