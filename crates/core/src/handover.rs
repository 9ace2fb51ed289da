//! Handing live sessions from one daemon process to another (`daemon upgrade`): what a session
//! is made of once its actor has stopped (the PTY master, the child's pidfd, and a serialisable
//! [`Carried`] state: identity, log offsets, screen, command tracker), and the registry through
//! which an adopted child's exit status arrives ([`Reaped`]).
//!
//! The old daemon detaches every session ([`crate::SessionManager::detach_all`]), sends the
//! descriptors over a Unix socket with `SCM_RIGHTS` and the states as JSON; the new daemon
//! rebuilds each actor from them ([`crate::SessionManager::adopt`]). The shell and its programs
//! never notice: nobody closed their terminal, nobody signalled them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::fd::OwnedFd;
use serde::{Deserialize, Serialize};

use ai_session_protocol::methods::{LastCommand, Size};

/// A detached session: its descriptors and its state.
pub struct Handover {
    pub state: Carried,
    /// The PTY master: whoever holds it owns the terminal.
    pub master: OwnedFd,
    /// The session leader's pidfd; `None` once the program has exited and been reaped.
    pub pidfd: Option<OwnedFd>,
}

/// Everything of a session that is not a descriptor, as the new daemon needs it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Carried {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) pid: i32,
    pub(crate) shell_pid: i32,
    pub(crate) argv: Vec<String>,
    pub(crate) cwd: String,
    pub(crate) dir: PathBuf,
    pub(crate) created_ms: u64,
    pub(crate) restored: bool,
    pub(crate) mark_file: Option<PathBuf>,
    pub(crate) size: Size,
    pub(crate) baseline: crate::pty::Baseline,
    pub(crate) log: crate::log::LogState,
    /// Bytes that redraw the screen, scrollback included, in a fresh emulator.
    #[serde(with = "b64")]
    pub(crate) screen: Vec<u8>,
    pub(crate) tracker: crate::tracker::TrackerState,
    /// Input not yet taken by the terminal.
    #[serde(with = "b64")]
    pub(crate) input: Vec<u8>,
    pub(crate) hung_up: bool,
    /// The program exited (its code) and the session waits for the PTY to drain.
    pub(crate) exit_pending: Option<i32>,
    pub(crate) stop_reason: Option<String>,
    pub(crate) degraded: Option<String>,
    pub(crate) last_command: Option<LastCommand>,
    /// How long the running command had run (its C mark) when the session was handed over.
    pub(crate) command_ms: Option<u64>,
    /// The session leader's status, when the reaper reported it before the session read it.
    pub(crate) reported: Option<i32>,
}

impl Carried {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The session leader: the process the reaper of the old daemon must wait for.
    pub fn pid(&self) -> i32 {
        self.pid
    }
}

/// How long an adopted process's status may take to arrive once its pidfd said it ended.
const REPORT_WAIT: Duration = Duration::from_secs(5);

/// Exit statuses of adopted processes, reported by their parent (the previous daemon, turned
/// reaper) and taken by the session waiting for them. Cheap to clone.
#[derive(Clone, Default)]
pub struct Reaped(Arc<ReapedInner>);

#[derive(Default)]
struct ReapedInner {
    statuses: Mutex<HashMap<i32, i32>>,
    arrived: tokio::sync::Notify,
}

impl Reaped {
    /// Records the `wait(2)` status word of `pid`.
    pub fn report(&self, pid: i32, raw: i32) {
        self.lock().insert(pid, raw);
        self.0.arrived.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i32, i32>> {
        self.0.statuses.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn take(&self, pid: i32) -> Option<i32> {
        self.lock().remove(&pid)
    }

    /// The status of `pid`, waiting (a bounded time) for the reaper's report.
    pub(crate) async fn status_of(&self, pid: i32) -> std::io::Result<i32> {
        let wait = async {
            loop {
                let arrived = self.0.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                if let Some(raw) = self.take(pid) {
                    return raw;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(REPORT_WAIT, wait).await.map_err(|_| {
            std::io::Error::other(format!(
                "process {pid} ended but the previous daemon's reaper did not report its status"
            ))
        })
    }
}

/// Raw bytes as base64 in the JSON state.
mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}
