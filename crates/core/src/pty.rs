//! The pseudo-terminal: opening a master/slave pair, spawning a program on the slave as the
//! leader of a new session, resizing, and asking the kernel who holds the foreground.
//!
//! The master is non-blocking and registered with the tokio reactor, so a session costs one small
//! task instead of a reader thread.

use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{
    InputModes, LocalModes, OptionalActions, OutputModes, Pid, SpecialCodeIndex, Termios, Winsize,
};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use tokio::io::unix::AsyncFd;

use ai_session_protocol::methods::Size;

/// The master side of a PTY, driven by the tokio reactor.
pub struct Master {
    fd: AsyncFd<OwnedFd>,
    /// The slave's device number, to recognise a process's descriptor for this terminal.
    slave_rdev: u64,
    /// The slave's modes before the program started: the sane line discipline that
    /// [`Master::restore_line_discipline`] puts back.
    baseline: Termios,
}

/// What to run on the slave side.
pub struct SpawnSpec<'a> {
    pub argv: &'a [String],
    pub cwd: &'a Path,
    pub env: &'a BTreeMap<String, String>,
    pub size: Size,
    /// Applied in the child before exec; `None` runs the program unconfined.
    pub sandbox: Option<&'a ai_session_sandbox::Prepared>,
}

/// A child process, reaped through a pidfd driven by the tokio reactor.
pub struct Process {
    pid: i32,
    shell_pid: i32,
    pidfd: AsyncFd<OwnedFd>,
    /// Set for a process adopted from another daemon (`daemon upgrade`): it is not this
    /// daemon's child, so its status comes from the reaper that is its parent.
    reaped: Option<crate::handover::Reaped>,
}

impl Process {
    /// The process the daemon started: the session leader, whose session id and process
    /// group the daemon signals.
    pub fn id(&self) -> i32 {
        self.pid
    }

    /// The program itself: the same as [`Process::id`] unless a private pid namespace put a
    /// keeper and an init between the daemon and the program.
    pub fn shell_id(&self) -> i32 {
        self.shell_pid
    }

    /// Waits for the process to end and reaps it. An adopted process (not this daemon's
    /// child: `waitid` answers ECHILD) is reaped by its parent, the previous daemon's reaper,
    /// which reports its status.
    pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        use rustix::process::{WaitId, WaitIdOptions, waitid};
        use std::os::unix::process::ExitStatusExt;
        loop {
            let mut guard = self.pidfd.readable().await?;
            let id = WaitId::PidFd(self.pidfd.get_ref().as_fd());
            let waited = waitid(id, WaitIdOptions::EXITED | WaitIdOptions::NOHANG);
            if let (Err(Errno::CHILD), Some(reaped)) = (&waited, &self.reaped) {
                // The pidfd is readable: the process has ended, and its parent reports how.
                let raw = reaped.status_of(self.pid).await?;
                return Ok(std::process::ExitStatus::from_raw(raw));
            }
            match waited? {
                Some(status) => {
                    // Rebuild the wait(2) status word: code << 8, or the signal number.
                    let raw = match (status.exit_status(), status.terminating_signal()) {
                        (Some(code), _) => (code & 0xff) << 8,
                        (None, Some(signal)) => signal & 0x7f,
                        (None, None) => 0xff << 8,
                    };
                    return Ok(std::process::ExitStatus::from_raw(raw));
                }
                None => guard.clear_ready(),
            }
        }
    }
}

/// Opens a PTY pair and starts `spec.argv[0]` on the slave as a session leader with the slave as
/// its controlling terminal.
///
/// The child is started with `posix_spawn`, which glibc implements with `clone(CLONE_VM |
/// CLONE_VFORK)`: unlike `fork`, it copies no page tables, so starting a session costs the same
/// whether the daemon holds ten sessions or ten thousand. `POSIX_SPAWN_SETSID` makes the child a
/// session leader, and its first file action opens the slave without `O_NOCTTY`, which makes the
/// slave its controlling terminal.
pub fn spawn(spec: &SpawnSpec<'_>) -> std::io::Result<(Master, Process)> {
    let program = spec
        .argv
        .first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty program"))?;
    let path = resolve_program(program, spec.env.get("PATH").map(String::as_str))?;
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    set_size(&master, spec.size)?;
    // On Linux the termios calls on a master act on its slave (`tty_mode_ioctl` follows the
    // link), so these are the modes the program starts with.
    let baseline = rustix::termios::tcgetattr(&master)?;
    let name = ptsname(&master, Vec::new())?;
    let slave_path = PathBuf::from(OsString::from_vec(name.as_bytes().to_vec()));
    // The daemon holds the slave open until the child has it, so the master never reads EIO
    // in between. O_NOCTTY: a daemon that is a session leader without a terminal would
    // otherwise acquire this slave as its own controlling terminal.
    let slave: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
        .open(&slave_path)?
        .into();
    let slave_rdev = rustix::fs::fstat(&slave)?.st_rdev;
    let pid = match spec.sandbox {
        None => crate::spawn::posix_spawn(&path, spec.argv, spec.env, spec.cwd, &name)?,
        Some(sandbox) => {
            crate::spawn::fork_spawn(&path, spec.argv, spec.env, spec.cwd, &name, sandbox)?
        }
    };
    drop(slave);
    let shell_pid = match spec.sandbox {
        Some(sandbox) if sandbox.has_pid_namespace() => program_in_namespace(pid).unwrap_or(pid),
        _ => pid,
    };
    let pidfd = rustix::process::pidfd_open(
        Pid::from_raw(pid).ok_or_else(|| std::io::Error::other("posix_spawn returned pid 0"))?,
        rustix::process::PidfdFlags::NONBLOCK,
    )?;
    rustix::fs::fcntl_setfl(
        &master,
        rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::RDWR,
    )?;
    // SAFETY: both descriptors are OwnedFds moved into their AsyncFds, so each stays open and
    // refers to the same object for the AsyncFd's whole life, and as_raw_fd never changes.
    let fd = unsafe { AsyncFd::register(master) }.map_err(std::io::Error::from)?;
    let pidfd = unsafe { AsyncFd::register(pidfd) }.map_err(std::io::Error::from)?;
    Ok((
        Master {
            fd,
            slave_rdev,
            baseline,
        },
        Process {
            pid,
            shell_pid,
            pidfd,
            reaped: None,
        },
    ))
}

/// The program under a keeper: the keeper's child is the namespace's init, whose first child
/// is the program (pid 2 inside). Both exist once the spawn has returned, since the error
/// pipe closes only when the program execs.
fn program_in_namespace(keeper: i32) -> Option<i32> {
    let first_child = |pid: i32| -> Option<i32> {
        let list = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        list.split_whitespace().next()?.parse().ok()
    };
    first_child(first_child(keeper)?)
}

/// The executable for `program`: itself when it names a path, else the first match in the
/// session's own `PATH` (not the daemon's).
fn resolve_program(program: &str, path_var: Option<&str>) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let dirs = path_var.unwrap_or("/usr/local/bin:/usr/bin:/bin");
    for dir in dirs.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("'{program}' is not in PATH ({dirs})"),
    ))
}

fn set_size(fd: impl AsFd, size: Size) -> std::io::Result<()> {
    let ws = Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(fd, ws)?;
    Ok(())
}

/// The result of one non-blocking read.
pub enum ReadOutcome {
    Data(usize),
    /// Nothing to read now; wait for readiness again.
    WouldBlock,
    /// The slave side is closed: every process that had the terminal open is gone.
    HungUp,
}

impl Master {
    /// Waits until the master may be readable.
    pub async fn readable(&self) -> std::io::Result<()> {
        let mut guard = self.fd.readable().await?;
        guard.clear_ready();
        Ok(())
    }

    /// Waits until the master may accept input.
    pub async fn writable(&self) -> std::io::Result<()> {
        let mut guard = self.fd.writable().await?;
        guard.clear_ready();
        Ok(())
    }

    /// Reads what is available without blocking.
    pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<ReadOutcome> {
        match rustix::io::read(self.fd.get_ref(), buf) {
            Ok(0) => Ok(ReadOutcome::HungUp),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(ReadOutcome::WouldBlock),
            // Linux reports EIO on the master once the last slave descriptor is closed.
            Err(Errno::IO) => Ok(ReadOutcome::HungUp),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes what the terminal accepts now; returns the count (0 when its input queue is full).
    pub fn try_write(&self, data: &[u8]) -> std::io::Result<usize> {
        match rustix::io::write(self.fd.get_ref(), data) {
            Ok(n) => Ok(n),
            Err(Errno::AGAIN) | Err(Errno::INTR) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// The terminal's current modes (those of the slave: see [`spawn`]).
    pub fn termios(&self) -> Option<Termios> {
        rustix::termios::tcgetattr(self.fd.get_ref()).ok()
    }

    /// The slave's device number.
    pub fn slave_rdev(&self) -> u64 {
        self.slave_rdev
    }

    /// Puts back the line discipline a shell reading lines needs (canonical input, echo,
    /// signals, CR to NL, output post-processing) when a program left the terminal without
    /// it, as `stty raw -echo` or a crashed full-screen program does. Other settings (special
    /// characters, flow control) stay as the user set them. Returns whether anything changed.
    pub fn restore_line_discipline(&self) -> std::io::Result<bool> {
        let fd = self.fd.get_ref();
        let mut now = rustix::termios::tcgetattr(fd)?;
        let base = &self.baseline;
        let input = InputModes::ICRNL | InputModes::INLCR | InputModes::IGNCR;
        let output = OutputModes::OPOST | OutputModes::ONLCR;
        let local = LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG | LocalModes::IEXTEN;
        let sane = now.input_modes & input == base.input_modes & input
            && now.output_modes & output == base.output_modes & output
            && now.local_modes & local == base.local_modes & local;
        if sane {
            return Ok(false);
        }
        now.input_modes = (now.input_modes - input) | (base.input_modes & input);
        now.output_modes = (now.output_modes - output) | (base.output_modes & output);
        now.local_modes = (now.local_modes - local) | (base.local_modes & local);
        rustix::termios::tcsetattr(fd, OptionalActions::Now, &now)?;
        Ok(true)
    }

    /// The terminal's interrupt (`^C`) and line-kill (`^U`) characters.
    pub fn intr_and_kill(&self) -> (u8, u8) {
        let t = self.termios().unwrap_or_else(|| self.baseline.clone());
        let code = |i: SpecialCodeIndex, default: u8| match t.special_codes[i] {
            // _POSIX_VDISABLE: fall back to the usual character, which line editors bind
            // whatever the terminal says.
            0 => default,
            c => c,
        };
        (
            code(SpecialCodeIndex::VINTR, 0x03),
            code(SpecialCodeIndex::VKILL, 0x15),
        )
    }

    pub fn resize(&self, size: Size) -> std::io::Result<()> {
        set_size(self.fd.get_ref(), size)
    }

    /// The process group that holds the terminal's foreground. On Linux, TIOCGPGRP on the
    /// master answers for the slave.
    pub fn foreground_pgrp(&self) -> Option<i32> {
        rustix::termios::tcgetpgrp(self.fd.get_ref())
            .ok()
            .map(Pid::as_raw_nonzero)
            .map(|p| p.get())
    }
}

impl Process {
    /// A status the reaper reported for this adopted process and nobody took yet.
    pub(crate) fn take_reported(&self) -> Option<i32> {
        self.reaped.as_ref().and_then(|r| r.take(self.pid))
    }

    /// Gives up the process for a handover: its pidfd (the new daemon waits on it).
    pub(crate) fn into_pidfd(self) -> OwnedFd {
        self.pidfd.into_inner()
    }

    /// A process another daemon started, from its pidfd; `reaped` hears its status.
    pub(crate) fn adopt(
        pid: i32,
        shell_pid: i32,
        pidfd: OwnedFd,
        reaped: crate::handover::Reaped,
    ) -> std::io::Result<Self> {
        rustix::fs::fcntl_setfl(&pidfd, rustix::fs::OFlags::NONBLOCK)?;
        // SAFETY: as in `spawn`: the OwnedFd moves into the AsyncFd, which owns it from here.
        let pidfd = unsafe { AsyncFd::register(pidfd) }.map_err(std::io::Error::from)?;
        Ok(Self {
            pid,
            shell_pid,
            pidfd,
            reaped: Some(reaped),
        })
    }
}

/// The line discipline bits [`Master::restore_line_discipline`] compares, carried across a
/// handover as plain numbers (input, output and local modes).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct Baseline {
    input: u64,
    output: u64,
    local: u64,
    /// The slave's device number.
    rdev: u64,
}

impl Master {
    /// Gives up the master for a handover: its descriptor and what the new owner needs.
    pub(crate) fn into_parts(self) -> (OwnedFd, Baseline) {
        let base = Baseline {
            input: self.baseline.input_modes.bits() as u64,
            output: self.baseline.output_modes.bits() as u64,
            local: self.baseline.local_modes.bits() as u64,
            rdev: self.slave_rdev,
        };
        (self.fd.into_inner(), base)
    }

    /// A master another daemon opened, from its descriptor.
    pub(crate) fn adopt(fd: OwnedFd, base: Baseline) -> std::io::Result<Self> {
        let mut baseline = rustix::termios::tcgetattr(&fd)?;
        baseline.input_modes = InputModes::from_bits_retain(base.input as _);
        baseline.output_modes = OutputModes::from_bits_retain(base.output as _);
        baseline.local_modes = LocalModes::from_bits_retain(base.local as _);
        rustix::fs::fcntl_setfl(&fd, rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::RDWR)?;
        // SAFETY: as in `spawn`.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from)?;
        Ok(Self {
            fd,
            slave_rdev: base.rdev,
            baseline,
        })
    }
}

/// The short name of a process, from `/proc/PID/comm`.
pub fn process_name(pid: i32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end().to_owned())
}

/// The processes of each of `sids` (session ids), from one scan of `/proc`: the shell, its jobs
/// (which job control moves into process groups of their own) and anything they started that
/// kept the session.
pub fn session_members(
    sids: &std::collections::HashSet<i32>,
) -> std::collections::HashMap<i32, Vec<i32>> {
    let mut members: std::collections::HashMap<i32, Vec<i32>> = std::collections::HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return members;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(sid) = session_of(pid).filter(|sid| sids.contains(sid)) {
            members.entry(sid).or_default().push(pid);
        }
    }
    members
}

/// Sends `signal` to each pid, ignoring those that are already gone.
pub fn signal_all(pids: &[i32], signal: rustix::process::Signal) {
    for pid in pids.iter().filter_map(|p| Pid::from_raw(*p)) {
        // ESRCH (already exited) is the expected race here.
        rustix::process::kill_process(pid, signal).ok();
    }
}

/// Sends `signal` to the process group `pgrp`.
pub fn signal_group(pgrp: i32, signal: rustix::process::Signal) {
    if let Some(pid) = Pid::from_raw(pgrp) {
        // ESRCH: the group is already gone.
        rustix::process::kill_process_group(pid, signal).ok();
    }
}

/// Sends `signal` to every process of session `sid`.
pub fn signal_session(sid: i32, signal: rustix::process::Signal) {
    let members = session_members(&std::iter::once(sid).collect());
    if let Some(pids) = members.get(&sid) {
        signal_all(pids, signal);
    }
}

/// The session id of a process, from field 6 of `/proc/PID/stat` (after the parenthesised
/// command name, which may itself contain spaces and parentheses).
fn session_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(3)?.parse().ok()
}
