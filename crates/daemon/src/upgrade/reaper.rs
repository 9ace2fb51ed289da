//! What the old daemon becomes once it has handed its sessions over: the parent of the
//! programs it started, which reaps each of them and reports its status to the new daemon.
//!
//! A process can only learn a child's exit status by being its parent (a pidfd says that a
//! process ended, not how, unless the kernel is new enough for `PIDFD_INFO_EXIT`), and a
//! process cannot adopt another's children: `PR_SET_CHILD_SUBREAPER` only catches orphans of
//! its own descendants, and the new daemon is the old one's child, not its parent. So the old
//! daemon stays the parent: it `exec`s `ai-session daemon reap`, which keeps its pid (and so its
//! children) and drops everything else of the daemon (sessions, store, tokenizer), waits for
//! its own children among the handed-over programs, writes `PID STATUS\n` on the handover
//! socket for each, and exits when none is left.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::net::UnixStream;

use ai_session_core::handover::Reaped;
use rustix::fd::OwnedFd;
use tokio::sync::oneshot;

/// Runs the reaper (see the module): returns when every one of `pids` that is this process's
/// child has been reaped. A new daemon that went away does not stop it: the programs are still
/// reaped, their statuses just have no one to go to.
pub fn reap(report: OwnedFd, pids: &[i32]) {
    let me = std::process::id() as i32;
    let mut left: HashSet<i32> = pids
        .iter()
        .copied()
        .filter(|p| parent_of(*p) == Some(me))
        .collect();
    let mut report = UnixStream::from(report);
    // The handover's timeouts do not apply to reports.
    report.set_write_timeout(None).ok();
    while !left.is_empty() {
        match rustix::process::wait(rustix::process::WaitOptions::empty()) {
            Ok(Some((pid, status))) => {
                let pid = pid.as_raw_nonzero().get();
                if left.remove(&pid) {
                    let line = format!("{pid} {}\n", status.as_raw());
                    if let Err(e) = report.write_all(line.as_bytes()) {
                        tracing::debug!("reaper: status of {pid} not reported: {e}");
                    }
                }
            }
            Ok(None) => {}
            Err(rustix::io::Errno::INTR) => {}
            // No child left at all.
            Err(_) => return,
        }
    }
}

/// The parent pid of `pid`, from field 4 of `/proc/PID/stat`.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The new daemon's end of a reaper's report socket: statuses read from it go to `reaped`.
pub(crate) struct Link {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Option<UnixStream>>,
}

impl Link {
    pub(crate) fn start(sock: UnixStream, reaped: Reaped) -> std::io::Result<Self> {
        sock.set_nonblocking(true)?;
        let sock = tokio::net::UnixStream::from_std(sock)?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(read_reports(sock, reaped, stopped));
        Ok(Self { stop, task })
    }

    /// Stops reading and gives the socket back (to pass it on to the next daemon); `None`
    /// when the reaper has finished (nothing left to report).
    pub(crate) async fn stop(self) -> Option<UnixStream> {
        self.stop.send(()).ok();
        self.task.await.ok().flatten()
    }
}

async fn read_reports(
    sock: tokio::net::UnixStream,
    reaped: Reaped,
    mut stop: oneshot::Receiver<()>,
) -> Option<UnixStream> {
    let mut pending = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        tokio::select! {
            _ = &mut stop => {
                if !pending.is_empty() {
                    tracing::warn!("a partial reaper report was dropped at the handover");
                }
                let std = sock.into_std().ok()?;
                std.set_nonblocking(false).ok();
                return Some(std);
            }
            ready = sock.readable() => {
                if ready.is_err() {
                    return None;
                }
                match sock.try_read(&mut chunk) {
                    Ok(0) => return None,
                    Ok(n) => {
                        pending.extend_from_slice(&chunk[..n]);
                        deliver(&mut pending, &reaped);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        tracing::warn!("reaper reports unreadable: {e}");
                        return None;
                    }
                }
            }
        }
    }
}

/// Hands every complete `PID STATUS` line of `pending` to `reaped`.
fn deliver(pending: &mut Vec<u8>, reaped: &Reaped) {
    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = pending.drain(..=end).collect();
        let text = String::from_utf8_lossy(&line);
        let mut parts = text.split_whitespace();
        match (
            parts.next().and_then(|p| p.parse::<i32>().ok()),
            parts.next().and_then(|s| s.parse::<i32>().ok()),
        ) {
            (Some(pid), Some(raw)) => reaped.report(pid, raw),
            _ => tracing::warn!("malformed reaper report: {}", text.trim_end()),
        }
    }
}
