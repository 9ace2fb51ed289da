//! The old daemon's side of `daemon.upgrade`: start the new binary, stop taking requests, hand
//! every session over, and either become the reaper (the new daemon adopted everything) or take
//! everything back and go on serving (it did not).

use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_session_core::handover::Handover;
use ai_session_protocol::methods::{UpgradeParams, UpgradeResult};
use ai_session_protocol::{ErrorKind, RpcError};
use rustix::fd::AsFd;

use super::wire::{Msg, VERSION, Wire};
use super::{Phase, Reap};
use crate::server::Daemon;

/// How long the new binary gets to start and say hello.
const START: Duration = Duration::from_secs(10);
/// How long requests in flight get to finish before the sessions are detached (their execs
/// are then answered `shutting_down`; the commands keep running).
const DRAIN: Duration = Duration::from_secs(5);
/// How long the new daemon gets to adopt every session once they are sent.
const ADOPT: Duration = Duration::from_secs(30);

/// `daemon.upgrade` (see the module).
pub(crate) async fn upgrade(d: &Arc<Daemon>, p: UpgradeParams) -> Result<UpgradeResult, RpcError> {
    let Ok(_one) = d.upgrade.busy.try_lock() else {
        return Err(
            RpcError::new(ErrorKind::Conflict, "an upgrade is already under way").with_hint(
                "wait for it: `ai-session daemon status` shows the new pid once it is done",
            ),
        );
    };
    let binary = binary(p.binary)?;
    let (mine, theirs) = UnixStream::pair().map_err(internal)?;
    let mut child = start(d, &binary, theirs)?;
    let wire = Wire::new(mine);
    let hello = tokio::task::spawn_blocking(move || {
        let mut wire = wire;
        let got = wire.set_timeout(Some(START)).and_then(|()| wire.recv());
        (wire, got)
    })
    .await
    .map_err(internal)?;
    let wire = match hello {
        (wire, Ok((Msg::Hello { version, .. }, _))) if version == VERSION => wire,
        (_, Ok((Msg::Hello { version, .. }, _))) => {
            return Err(failed(
                &mut child,
                &format!(
                    "it speaks handover version {version}, this daemon {VERSION}: stop this daemon and start the new one"
                ),
            ));
        }
        (_, Ok(_)) => return Err(failed(&mut child, "it sent something other than hello")),
        (_, Err(e)) => return Err(failed(&mut child, &e.to_string())),
    };
    let paused = Instant::now();
    d.upgrade.phase.send_replace(Phase::Pausing);
    drain(d).await;
    match hand_over(d, wire, &mut child).await {
        Ok((new_pid, sessions, reap)) => {
            let pause_ms = paused.elapsed().as_millis() as u64;
            tracing::info!(
                new_pid,
                sessions = sessions.len(),
                pause_ms,
                "handed over to {}",
                binary.display()
            );
            *d.upgrade.then.lock().unwrap_or_else(|p| p.into_inner()) = Some(Reap {
                binary: binary.clone(),
                ..reap
            });
            // Requests waiting at the gate are answered `shutting_down`: their clients
            // reconnect, to the new daemon.
            d.cancel.cancel();
            d.upgrade.phase.send_replace(Phase::HandedOver);
            Ok(UpgradeResult {
                old_pid: std::process::id(),
                new_pid,
                binary: binary.display().to_string(),
                sessions,
                pause_ms,
            })
        }
        Err(e) => {
            d.upgrade.phase.send_replace(Phase::Serving);
            tracing::warn!("upgrade failed, serving on: {}", e.message);
            Err(e)
        }
    }
}

/// The binary to start: the one asked for, else the daemon's own path as it is on disk now.
fn binary(asked: Option<String>) -> Result<PathBuf, RpcError> {
    let path = match asked {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::fs::read_link("/proc/self/exe").map_err(internal)?;
            // A binary replaced on disk reads "PATH (deleted)": the new file is at PATH.
            let text = exe.to_string_lossy();
            PathBuf::from(text.strip_suffix(" (deleted)").unwrap_or(&text).to_owned())
        }
    };
    let bad = |why: &str| {
        RpcError::new(
            ErrorKind::InvalidParams,
            format!("cannot upgrade to '{}': {why}", path.display()),
        )
        .with_hint("give the new ai-session binary with --binary, as an absolute path")
    };
    if !path.is_absolute() {
        return Err(bad("not an absolute path"));
    }
    let meta = std::fs::metadata(&path).map_err(|e| bad(&e.to_string()))?;
    use std::os::unix::fs::PermissionsExt;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(bad("not an executable file"));
    }
    Ok(path)
}

/// Starts `binary daemon run --adopt FD` with this daemon's own selector arguments (`-L`/`-S`),
/// its end of the handover socket as FD, stderr kept to say why it failed.
fn start(d: &Daemon, binary: &Path, theirs: UnixStream) -> Result<Child, RpcError> {
    use std::os::fd::AsRawFd;
    let fd = theirs.as_raw_fd();
    let args: Vec<std::ffi::OsString> = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "daemon")
        .collect();
    let mut cmd = Command::new(binary);
    cmd.args(&args)
        .args(["daemon", "run", "--adopt", &fd.to_string()])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: the closure runs in the forked child before exec and only calls fcntl, which
    // is async-signal-safe; it touches no lock or allocation of the parent. `fd` is open in
    // the child: `theirs` lives until after the spawn.
    unsafe {
        cmd.pre_exec(move || {
            let fd = rustix::fd::BorrowedFd::borrow_raw(fd);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty()).map_err(Into::into)
        });
    }
    let child = cmd.spawn().map_err(|e| {
        RpcError::new(
            ErrorKind::SpawnFailed,
            format!("cannot start '{}': {e}", binary.display()),
        )
        .with_hint("check the path and that the file is an ai-session binary for this machine")
    })?;
    tracing::info!(
        pid = child.id(),
        sessions = d.manager.len(),
        "upgrade: new daemon started"
    );
    drop(theirs);
    Ok(child)
}

/// Waits (a bounded time) for the requests in flight, other than the upgrade itself, to finish.
/// New ones wait at the gate meanwhile (see `Upgrade::gate`).
async fn drain(d: &Daemon) {
    let deadline = Instant::now() + DRAIN;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while d.tasks.len() > 1 && Instant::now() < deadline {
        tick.tick().await;
    }
    if d.tasks.len() > 1 {
        tracing::warn!(
            "{} requests still running after {}s: their sessions are handed over under them",
            d.tasks.len() - 1,
            DRAIN.as_secs()
        );
    }
}

/// Checkpoints, lets go of the audit log, detaches every session and sends it all; takes
/// everything back when the new daemon does not confirm.
async fn hand_over(
    d: &Arc<Daemon>,
    wire: Wire,
    child: &mut Child,
) -> Result<(u32, Vec<String>, Reap), RpcError> {
    let handles = d.upgrade.handles().map_err(internal)?;
    d.persist.hand_over(&d.manager, &d.contexts).await;
    let audit = d.access.hand_over_audit();
    let reapers = d.upgrade.stop_reapers().await;
    let sessions = match d.manager.detach_all().await {
        Ok(s) => s,
        Err(e) => {
            d.access.take_back_audit(audit);
            d.upgrade.restart_reapers(reapers, &d.manager);
            child.kill().ok();
            child.wait().ok();
            return Err(e.to_rpc());
        }
    };
    let pids: Vec<i32> = sessions.iter().map(|h| h.state.pid()).collect();
    let sent = tokio::task::spawn_blocking(move || {
        let mut wire = wire;
        let outcome = send_all(&mut wire, &handles, &sessions, &reapers);
        (wire, sessions, reapers, outcome)
    })
    .await
    .map_err(internal)?;
    let (wire, sessions, reapers, outcome) = sent;
    match outcome {
        Ok((pid, names)) => Ok((
            pid,
            names,
            Reap {
                binary: PathBuf::new(),
                report: wire.into_inner(),
                pids,
            },
        )),
        Err(why) => {
            if let Err(e) = d.manager.adopt_all(sessions) {
                tracing::error!("sessions could not be taken back after a failed upgrade: {e}");
            }
            d.upgrade.restart_reapers(reapers, &d.manager);
            d.access.take_back_audit(audit);
            Err(failed(child, &why))
        }
    }
}

/// Sends the listener and lock, every session and every reaper socket, then waits for the
/// verdict: the new daemon's pid and the sessions it adopted, or why it could not.
fn send_all(
    wire: &mut Wire,
    handles: &(rustix::fd::OwnedFd, rustix::fd::OwnedFd),
    sessions: &[Handover],
    reapers: &[UnixStream],
) -> Result<(u32, Vec<String>), String> {
    let io = |e: std::io::Error| e.to_string();
    wire.set_timeout(Some(ADOPT)).map_err(io)?;
    let header = Msg::Header {
        version: VERSION,
        old_pid: std::process::id(),
        sessions: sessions.len(),
        reapers: reapers.len(),
    };
    wire.send(&header, &[handles.0.as_fd(), handles.1.as_fd()])
        .map_err(io)?;
    for h in sessions {
        let mut fds = vec![h.master.as_fd()];
        fds.extend(h.pidfd.as_ref().map(|p| p.as_fd()));
        // Sent as copies: the descriptors and state stay ours until the new daemon confirms.
        wire.send(&Msg::Session(Box::new(h.state.clone())), &fds)
            .map_err(io)?;
    }
    for r in reapers {
        wire.send(&Msg::Reaper, &[r.as_fd()]).map_err(io)?;
    }
    match wire.recv().map_err(io)? {
        (Msg::Adopted { pid, sessions }, _) => Ok((pid, sessions)),
        (Msg::Failed { error }, _) => Err(error),
        _ => Err("the new daemon answered out of turn".into()),
    }
}

/// The new binary failed: stop it if it still runs, and say why with the end of its stderr.
fn failed(child: &mut Child, why: &str) -> RpcError {
    use std::io::Read;
    if matches!(child.try_wait(), Ok(None)) {
        child.kill().ok();
    }
    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.by_ref().take(4096).read_to_string(&mut stderr).ok();
    }
    let stderr = stderr.trim();
    let detail = if stderr.is_empty() {
        String::new()
    } else {
        format!("; it said: {stderr}")
    };
    RpcError::new(
        ErrorKind::SpawnFailed,
        format!("the new daemon did not take over ({why}; {status}){detail}"),
    )
    .with_hint("this daemon keeps serving every session; fix the new binary and run `ai-session daemon upgrade` again")
}

fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(ErrorKind::Internal, format!("upgrade: {e}"))
}
