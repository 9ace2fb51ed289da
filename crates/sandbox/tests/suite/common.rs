//! Shared helpers: temp dirs outside every allowed root, policies, spawning with deadlines.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use ai_session_sandbox::{Capabilities, NetworkMode, Policy, Prepared, Sandbox, probe};

pub fn caps() -> &'static Capabilities {
    static CAPS: OnceLock<Capabilities> = OnceLock::new();
    CAPS.get_or_init(probe)
}

/// A fresh directory that no built-in rule covers (next to the test binary's target dir,
/// never under /tmp, /usr, /etc or the home toolchains).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let exe = std::env::current_exe().unwrap();
        let target = exe.ancestors().nth(3).unwrap().to_path_buf();
        let dir = target.join("sbx-tests").join(format!(
            "{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// The default profile with the test binary's directory readable and executable, so the
/// attacker can be re-executed inside the sandbox.
pub fn policy(network: NetworkMode) -> Policy {
    let mut p = Policy::profile("default").unwrap();
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().display().to_string();
    p.fs.read.push(dir.clone());
    p.fs.execute.push(dir);
    p.network = network;
    p
}

pub fn prepare(policy: &Policy, workspace: &Path) -> Arc<Prepared> {
    Arc::new(Sandbox::prepare(policy, caps(), workspace).unwrap())
}

pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

pub fn sandboxed(prepared: &Arc<Prepared>, mut cmd: Command) -> Command {
    let p = Arc::clone(prepared);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: apply_in_child is async-signal-safe and runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || p.apply_in_child().map_err(std::io::Error::from));
    }
    cmd
}

/// Runs `cmd` to completion, killing it at the deadline (a hung escape is a failure).
pub fn run(mut cmd: Command, deadline: Duration) -> Outcome {
    let child = cmd.spawn().expect("spawn sandboxed child");
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(deadline).is_err() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    let out = child.wait_with_output().unwrap();
    tx.send(()).ok();
    let timed_out = watchdog.join().unwrap();
    assert!(!timed_out, "child exceeded its deadline of {deadline:?}");
    Outcome {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn sh(prepared: &Arc<Prepared>, workspace: &Path, script: &str) -> Outcome {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script).current_dir(workspace);
    run(sandboxed(prepared, cmd), Duration::from_secs(30))
}

/// Re-executes this test binary as the attacker inside the sandbox.
pub fn attack(prepared: &Arc<Prepared>, workspace: &Path, attack: &str, arg: &str) -> Outcome {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "suite::attacker::attacker_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("SANDBOX_ATTACK", attack)
    .env("SANDBOX_ARG", arg)
    .current_dir(workspace);
    run(sandboxed(prepared, cmd), Duration::from_secs(60))
}

/// The errno an attack reported, `None` if it succeeded.
pub fn refused(out: &Outcome) -> Option<i32> {
    if out.stdout.lines().any(|l| l == "RESULT OK") {
        return None;
    }
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT ERR "))
        .unwrap_or_else(|| {
            panic!(
                "attacker printed no result: {} / {}",
                out.stdout, out.stderr
            )
        });
    Some(line.trim().parse().unwrap())
}

pub fn has_missing(prepared: &Prepared, needle: &str) -> bool {
    prepared.missing().iter().any(|m| m.contains(needle))
}
