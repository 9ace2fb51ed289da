//! `ai-session daemon upgrade`, and the two hidden roles a binary plays in one: the new daemon
//! (`daemon run --adopt FD`) and the old one's reaper (`daemon reap`).

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::ExitCode;

use ai_session_client::{Error as ClientError, Selector};
use ai_session_protocol::methods::{StatusResult, UpgradeParams, UpgradeResult};
use ai_session_protocol::registry::{self as reg, Method};

use crate::commands::{connect, print_json};
use crate::error::CliError;

#[derive(clap::Args)]
pub struct UpgradeArgs {
    /// The new binary. Default: the daemon's own path, as the file there is now (install the
    /// new build over the old one, then upgrade).
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

/// Asks the running daemon to hand its sessions to a new one and reports the result.
pub async fn run(sel: &Selector, a: UpgradeArgs) -> Result<ExitCode, CliError> {
    let binary = match a.binary {
        Some(path) => Some(
            std::path::absolute(&path)
                .map_err(|e| CliError::Local(format!("--binary {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let client = connect(sel, false).await?;
    let old_pid = client
        .call::<_, StatusResult>(reg::DaemonStatus::NAME, serde_json::json!({}))
        .await?
        .pid;
    let params = UpgradeParams {
        binary: binary.map(|b| b.display().to_string()),
    };
    let result = match client
        .call::<_, UpgradeResult>(reg::DaemonUpgrade::NAME, &params)
        .await
    {
        Ok(r) => r,
        // The old daemon let go before its answer left: ask the new one.
        Err(ClientError::Closed) => confirm(sel, old_pid).await?,
        Err(e) => return Err(e.into()),
    };
    if a.json {
        print_json(&result)?;
    } else {
        outln!(
            "upgraded: daemon pid {} -> {} ({}), {} session(s) handed over, requests paused {} ms",
            result.old_pid,
            result.new_pid,
            result.binary,
            result.sessions.len(),
            result.pause_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The result of an upgrade whose answer was lost, from the daemon now serving.
async fn confirm(sel: &Selector, old_pid: u32) -> Result<UpgradeResult, CliError> {
    let client = connect(sel, false).await?;
    let status: StatusResult = client
        .call(reg::DaemonStatus::NAME, serde_json::json!({}))
        .await?;
    if status.pid == old_pid {
        return Err(CliError::Local(
            "the daemon closed the connection without answering and was not replaced; see daemon.log"
                .into(),
        ));
    }
    let list: ai_session_protocol::methods::ListResult = client
        .call(reg::SessionList::NAME, serde_json::json!({}))
        .await?;
    Ok(UpgradeResult {
        old_pid,
        new_pid: status.pid,
        binary: String::new(),
        sessions: list.sessions.into_iter().map(|s| s.name).collect(),
        pause_ms: 0,
    })
}

/// The descriptor `daemon run --adopt FD` names, checked to be an open socket.
pub fn handover_fd(fd: i32) -> Result<OwnedFd, String> {
    // SAFETY: only the descriptor's type is read; a closed or wrong number fails here.
    let borrowed = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
    let stat = rustix::fs::fstat(borrowed)
        .map_err(|e| format!("--adopt {fd}: not an open descriptor ({e})"))?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
        return Err(format!("--adopt {fd}: not a socket"));
    }
    // SAFETY: the descriptor is open, a socket, and named for this process to take over
    // (it was left open across exec for exactly that); nothing else in it owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `daemon reap`: the old daemon's process after a handover (see the daemon's `upgrade`).
pub fn reap(report_fd: i32, pids: &[i32]) -> ExitCode {
    match handover_fd(report_fd) {
        Ok(fd) => {
            ai_session_daemon::reap(fd, pids);
            ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
