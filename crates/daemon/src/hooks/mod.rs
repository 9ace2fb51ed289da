//! Hooks: the daemon's integrations. `[[hooks]]` in config.toml names programs to run and URLs
//! to POST to when a session is created or ends, a command finishes, a task is done or fails;
//! each is an [`ExternalIntegration`] registered on the session manager, beside the exec
//! [`history`] that `ai-session report` reads.
//!
//! The session manager tells the integrations of sessions and commands itself; this module is
//! also an observer of the service's events, for what only the daemon sees: a task done or
//! failed (`task.done`, `task.fail`). Nothing here blocks the operation that fired the event:
//! each integration has its own bounded queue and task (see `ai_session_core::integration`);
//! a slow hook drops events, a failing one is counted, and both show in `daemon status` and the
//! daemon's log.

mod command;
mod event;
mod history;
mod webhook;

use std::sync::Arc;

use ai_session_core::integration::{
    CommandFinished, ExternalIntegration, IntegrationError, IntegrationEvent, SessionEnd,
};
use ai_session_core::{SessionInfo, SessionManager};
use ai_session_protocol::config::{HookConfig, HookTarget};
use ai_session_protocol::integration::{HistoryEntry, HookStatus};
use ai_session_protocol::registry::{self as reg, Method};
use serde_json::Value;

use crate::service::{Event, Observer, Reaction};

/// Where a hook's event goes: a program or a URL.
#[async_trait::async_trait]
trait Deliver: Send + Sync {
    /// Sends `envelope` (see [`event::envelope`]), an event of kind `kind`.
    async fn deliver(&self, kind: &str, envelope: Value) -> Result<(), IntegrationError>;
}

/// A configured hook: the events it listens to and where they go.
struct Hook<D> {
    name: String,
    on: Vec<String>,
    sink: D,
}

impl<D: Deliver> Hook<D> {
    async fn send(&self, kind: &str, data: Value) -> Result<(), IntegrationError> {
        self.sink.deliver(kind, event::envelope(kind, data)).await
    }
}

#[async_trait::async_trait]
impl<D: Deliver> ExternalIntegration for Hook<D> {
    fn name(&self) -> &str {
        &self.name
    }

    fn wants(&self, kind: &str) -> bool {
        self.on.iter().any(|e| e == kind)
    }

    async fn on_session_created(&self, info: &SessionInfo) -> Result<(), IntegrationError> {
        self.send("session-created", event::session_created(info))
            .await
    }

    async fn on_session_terminated(&self, end: &SessionEnd) -> Result<(), IntegrationError> {
        self.send("session-terminated", event::session_terminated(end))
            .await
    }

    async fn on_command_finished(&self, c: &CommandFinished) -> Result<(), IntegrationError> {
        self.send("command-finished", event::command_finished(c))
            .await
    }

    async fn on_other(&self, kind: &str, data: &Value) -> Result<(), IntegrationError> {
        self.send(kind, data.clone()).await
    }
}

/// The daemon's integrations.
pub(crate) struct Hooks {
    manager: SessionManager,
    history: Arc<history::History>,
}

impl Hooks {
    pub(crate) fn new(manager: SessionManager) -> Self {
        Hooks {
            manager,
            history: Arc::default(),
        }
    }

    /// Registers the exec history and every configured hook on the session manager. An error
    /// names the hook that cannot start.
    pub(crate) async fn start(
        &self,
        hooks: &[HookConfig],
        coord: &ai_session_coord::Coordinator,
    ) -> Result<(), String> {
        let register = |i: Arc<dyn ExternalIntegration>| async move {
            let name = i.name().to_owned();
            self.manager
                .register_integration(i)
                .await
                .map_err(|e| format!("hook '{name}': {e}; give each hook its own `name`"))
        };
        register(self.history.clone()).await?;
        for hook in hooks {
            let integration: Arc<dyn ExternalIntegration> = match &hook.target {
                HookTarget::Command(argv) => Arc::new(Hook {
                    name: hook.name.clone(),
                    on: hook.on.clone(),
                    sink: command::CommandHook::new(hook, argv.clone()),
                }),
                HookTarget::Url {
                    url,
                    secret,
                    retries,
                    backoff_ms,
                } => Arc::new(Hook {
                    name: hook.name.clone(),
                    on: hook.on.clone(),
                    sink: webhook::WebHook::new(
                        hook,
                        url,
                        secret.clone(),
                        *retries,
                        *backoff_ms,
                        coord.clone(),
                    )?,
                }),
            };
            register(integration).await?;
            tracing::info!(hook = %hook.name, on = ?hook.on, "hook registered");
        }
        Ok(())
    }

    /// Every integration's health, for `daemon status`.
    pub(crate) fn status(&self) -> Vec<HookStatus> {
        self.manager
            .integrations()
            .stats()
            .into_iter()
            .map(|s| HookStatus {
                name: s.name,
                delivered: s.delivered,
                failed: s.failed,
                dropped: s.dropped,
                queued: s.queued,
                last_error: s.last_error,
            })
            .collect()
    }

    /// The finished commands of `session` kept for reports, every one answered so far included.
    pub(crate) async fn history(&self, session: &str) -> Option<Vec<HistoryEntry>> {
        self.manager.integrations().flush(history::NAME).await;
        self.history.entries(session)
    }
}

impl Observer for Hooks {
    fn observe(&self, event: &Event<'_>) -> Reaction {
        if let Event::Handled {
            method,
            result: Ok(answer),
            ..
        } = event
        {
            let kind = match *method {
                reg::TaskDone::NAME => "task-done",
                reg::TaskFail::NAME => "task-failed",
                _ => return Reaction::default(),
            };
            let integrations = self.manager.integrations();
            if !integrations.is_empty() {
                let data = answer
                    .get("task")
                    .cloned()
                    .unwrap_or_else(|| answer.clone());
                integrations.fire(IntegrationEvent::Other {
                    kind: kind.to_owned(),
                    data,
                });
            }
        }
        Reaction::default()
    }
}
