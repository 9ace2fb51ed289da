//! Progress notifications for tool calls that can run long (`session_exec`, `session_wait`):
//! while the call waits on the daemon, a task reports every second how long it has run, how much
//! output the session printed since the call began and the last line of it. It stops before the
//! tool's result is sent, so no progress notification follows the result.

use ai_session_protocol::registry::{self as reg, Method};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ai_session_protocol::methods::{ListResult, ReadParams, ReadResult};
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RoleServer};
use tokio::task::JoinHandle;

use crate::daemon::Daemon;

/// How often a running call reports.
const PERIOD: Duration = Duration::from_secs(1);
/// Bytes read back from the log's end to find the last line.
const TAIL_BYTES: usize = 1024;
/// The last line is cut to this many characters.
const LINE_CHARS: usize = 120;

/// A running reporter; [`Reporter::finish`] stops it.
pub(crate) struct Reporter {
    task: JoinHandle<()>,
}

impl Reporter {
    /// Starts reporting; call it before the daemon call starts, so that the output counted is
    /// the call's.
    pub(crate) async fn start(
        daemon: Arc<Daemon>,
        peer: Peer<RoleServer>,
        token: ProgressToken,
        session: String,
    ) -> Self {
        let start = Instant::now();
        let baseline = log_end(&daemon, &session).await;
        Self {
            task: tokio::spawn(report(daemon, peer, token, session, start, baseline)),
        }
    }

    /// Stops reporting; a notification already handed to the transport precedes the result.
    pub(crate) async fn finish(mut self) {
        self.task.abort();
        (&mut self.task).await.ok();
    }
}

impl Drop for Reporter {
    /// A cancelled call (its future dropped) stops reporting too.
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn report(
    daemon: Arc<Daemon>,
    peer: Peer<RoleServer>,
    token: ProgressToken,
    session: String,
    start: Instant,
    baseline: Option<u64>,
) {
    let mut ticker = tokio::time::interval_at((start + PERIOD).into(), PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let elapsed = start.elapsed().as_secs_f64();
        let mut message = format!("running for {elapsed:.0} s");
        if let (Some(base), Some(end)) = (baseline, log_end(&daemon, &session).await) {
            let bytes = end.saturating_sub(base);
            message.push_str(&format!(", {} of output", human_bytes(bytes)));
            if bytes > 0
                && let Some(line) = last_line(
                    &daemon,
                    &session,
                    base.max(end.saturating_sub(TAIL_BYTES as u64)),
                )
                .await
            {
                message.push_str("; last line: ");
                message.push_str(&line);
            }
        }
        let progress = (elapsed * 10.0).round() / 10.0;
        let note = ProgressNotificationParam::new(token.clone(), progress).with_message(message);
        if peer.notify_progress(note).await.is_err() {
            return;
        }
    }
}

/// The session's log end, or None when it cannot be had.
async fn log_end(daemon: &Daemon, session: &str) -> Option<u64> {
    let list: ListResult = daemon
        .call(reg::SessionList::NAME, serde_json::json!({}))
        .await
        .ok()?;
    list.sessions
        .into_iter()
        .find(|s| s.name == session)
        .map(|s| s.log_end)
}

async fn last_line(daemon: &Daemon, session: &str, since: u64) -> Option<String> {
    let params = ReadParams {
        target: session.to_owned(),
        since: Some(since),
        max_bytes: Some(TAIL_BYTES),
        raw: false,
        encoding: Default::default(),
    };
    let read: ReadResult = daemon.call(reg::SessionRead::NAME, params).await.ok()?;
    let line = read
        .data
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())?;
    let mut out: String = line.chars().take(LINE_CHARS).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    Some(out)
}

fn human_bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} bytes"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(0), "0 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1_048_576), "3.0 MiB");
    }
}
