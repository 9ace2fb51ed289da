//! Each session's finished commands with their parsed output, for `session.results` (the
//! source of `ai-session report`) and `session.diagnostics`. An integration like the hooks:
//! it is told of every command that finishes, on its own task, and keeps the last
//! [`PER_SESSION`] of each session, for at most [`SESSIONS`] sessions (ended ones go first).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use ai_session_core::SessionInfo;
use ai_session_core::integration::{
    CommandFinished, ExternalIntegration, IntegrationError, SessionEnd,
};
use ai_session_protocol::integration::HistoryEntry;
use serde_json::Value;

/// Commands kept per session.
pub(crate) const PER_SESSION: usize = 200;
/// Sessions whose commands are kept, live or ended.
pub(crate) const SESSIONS: usize = 1024;

/// The integration's name (in `daemon status`).
pub(crate) const NAME: &str = "history";

#[derive(Default)]
struct Execs {
    entries: VecDeque<HistoryEntry>,
    next_seq: u64,
    /// Ended sessions are forgotten first when too many are kept.
    ended_ms: Option<u64>,
}

#[derive(Default)]
pub(crate) struct History {
    sessions: Mutex<BTreeMap<String, Execs>>,
}

impl History {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Execs>> {
        // Each update is a push or a remove: a panic cannot leave a map half-changed.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The commands of `session`, oldest first; `None` when it has none kept.
    pub(crate) fn entries(&self, session: &str) -> Option<Vec<HistoryEntry>> {
        self.lock()
            .get(session)
            .map(|e| e.entries.iter().cloned().collect())
    }

    fn record(&self, c: &CommandFinished) {
        let mut sessions = self.lock();
        if !sessions.contains_key(&c.session) && sessions.len() >= SESSIONS {
            evict(&mut sessions);
        }
        let execs = sessions.entry(c.session.clone()).or_default();
        execs.next_seq += 1;
        if execs.entries.len() >= PER_SESSION {
            execs.entries.pop_front();
        }
        execs.entries.push_back(HistoryEntry {
            seq: execs.next_seq,
            command: c.command.clone(),
            started_ms: c.started_ms,
            duration_ms: c.result.duration_ms,
            exit_code: c.result.exit_code,
            cwd: c.result.cwd.clone(),
            parsed: c.result.parsed.clone(),
        });
    }
}

/// Forgets the session that ended first, else the one with the oldest last command.
fn evict(sessions: &mut BTreeMap<String, Execs>) {
    let victim = sessions
        .iter()
        .min_by_key(|(_, e)| {
            (
                e.ended_ms.is_none(),
                e.ended_ms
                    .or_else(|| e.entries.back().map(|x| x.started_ms))
                    .unwrap_or(0),
            )
        })
        .map(|(name, _)| name.clone());
    if let Some(name) = victim {
        sessions.remove(&name);
    }
}

#[async_trait::async_trait]
impl ExternalIntegration for History {
    fn name(&self) -> &str {
        NAME
    }

    fn wants(&self, kind: &str) -> bool {
        matches!(
            kind,
            "command-finished" | "session-created" | "session-terminated"
        )
    }

    async fn on_session_created(&self, info: &SessionInfo) -> Result<(), IntegrationError> {
        // A new session under an old name starts a new history.
        self.lock().remove(&info.name);
        Ok(())
    }

    async fn on_session_terminated(&self, end: &SessionEnd) -> Result<(), IntegrationError> {
        if let Some(e) = self.lock().get_mut(&end.session) {
            e.ended_ms = Some(super::event::now_ms());
        }
        Ok(())
    }

    async fn on_command_finished(&self, c: &CommandFinished) -> Result<(), IntegrationError> {
        self.record(c);
        Ok(())
    }

    async fn export_session_data(&self, session: &str) -> Result<Value, IntegrationError> {
        let entries = self
            .entries(session)
            .ok_or_else(|| IntegrationError::UnknownSession(session.to_owned()))?;
        serde_json::to_value(entries).map_err(|e| IntegrationError::Failed(e.to_string()))
    }
}
