//! External integrations: code told of what happens to sessions (created, terminated, a command
//! finished) and asked for its own data about a session, registered on the [`SessionManager`].
//!
//! Each registered integration gets its own bounded queue and task, so a slow one (a webhook
//! retrying a dead receiver, a program that hangs) delays nobody: neither the operation that
//! fired the event, which only tries to queue it, nor the other integrations. A full queue
//! drops the event and counts it; a failing callback is counted with its error. Both show in
//! [`Integrations::stats`] (the daemon's `daemon status`).
//!
//! [`SessionManager`]: crate::SessionManager

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ai_session_protocol::methods::{ExecResult, SessionInfo};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

/// Events waiting for one integration; past this, new events for it are dropped and counted.
pub const QUEUE: usize = 1024;

/// Why an integration could not do something. Its callbacks' errors are counted and logged;
/// [`ExternalIntegration::initialize`]'s refuses the registration.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationError {
    /// The integration's own failure (a receiver that answered 500, a program that exited 1).
    #[error("{0}")]
    Failed(String),
    /// `export_session_data` for a session the integration knows nothing about.
    #[error("no data for session '{0}'")]
    UnknownSession(String),
    /// Another integration is registered under this name: names key stats and exports.
    #[error("an integration named '{0}' is already registered")]
    Duplicate(String),
}

/// A session that ended: its program exited, or it was killed.
#[derive(Debug, Clone, Serialize)]
pub struct SessionEnd {
    pub session: String,
    /// The program's exit code, when it exited by itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// True when `session.kill` (or a shutdown) ended it.
    pub killed: bool,
}

/// Output longer than this is left out of [`CommandFinished::result`] (its log offsets say
/// where to read it).
pub const MAX_EVENT_OUTPUT: usize = 64 * 1024;

/// A command that finished in a session, with its parsed output.
#[derive(Debug, Clone, Serialize)]
pub struct CommandFinished {
    pub session: String,
    pub command: String,
    /// When it was asked for, milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// The exec's result: exit code, parsed output, compact view, log offsets. `output` is
    /// empty when the output was longer than [`MAX_EVENT_OUTPUT`]: read it from the session's
    /// log between `output_start` and `output_end`.
    pub result: ExecResult,
}

/// Something that happened, as queued for each integration.
#[derive(Debug, Clone)]
pub enum IntegrationEvent {
    SessionCreated(Box<SessionInfo>),
    SessionTerminated(SessionEnd),
    CommandFinished(Box<CommandFinished>),
    /// An event the embedding program adds (the daemon's `task-done`, `task-failed`): its
    /// kind and its JSON.
    Other {
        kind: String,
        data: Value,
    },
}

impl IntegrationEvent {
    /// The event's name in hooks: `session-created`, `session-terminated`,
    /// `command-finished`, or an [`IntegrationEvent::Other`]'s kind.
    pub fn kind(&self) -> &str {
        match self {
            IntegrationEvent::SessionCreated(_) => "session-created",
            IntegrationEvent::SessionTerminated(_) => "session-terminated",
            IntegrationEvent::CommandFinished(_) => "command-finished",
            IntegrationEvent::Other { kind, .. } => kind,
        }
    }
}

/// Code told of what happens to sessions. Every callback but `name` has a default that does
/// nothing, so an integration implements only what it needs. Callbacks run on the
/// integration's own task, one event at a time, in the order the events happened.
#[async_trait::async_trait]
pub trait ExternalIntegration: Send + Sync {
    /// Its name, unique among the manager's integrations.
    fn name(&self) -> &str;

    /// Whether it wants events of this kind ([`IntegrationEvent::kind`]); the others are not
    /// queued for it. All by default.
    fn wants(&self, _kind: &str) -> bool {
        true
    }

    /// Called once at registration; an error refuses it.
    async fn initialize(&self) -> Result<(), IntegrationError> {
        Ok(())
    }

    async fn on_session_created(&self, _session: &SessionInfo) -> Result<(), IntegrationError> {
        Ok(())
    }

    async fn on_session_terminated(&self, _end: &SessionEnd) -> Result<(), IntegrationError> {
        Ok(())
    }

    async fn on_command_finished(
        &self,
        _command: &CommandFinished,
    ) -> Result<(), IntegrationError> {
        Ok(())
    }

    /// An event of the embedding program's own ([`IntegrationEvent::Other`]).
    async fn on_other(&self, _kind: &str, _data: &Value) -> Result<(), IntegrationError> {
        Ok(())
    }

    /// What the integration holds about `session`, as JSON.
    async fn export_session_data(&self, session: &str) -> Result<Value, IntegrationError> {
        Err(IntegrationError::UnknownSession(session.to_owned()))
    }
}

/// How one integration is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IntegrationStats {
    pub name: String,
    /// Events its callbacks handled without error.
    pub delivered: u64,
    /// Events its callbacks returned an error for.
    pub failed: u64,
    /// Events dropped because its queue was full (it is slower than events arrive).
    pub dropped: u64,
    /// Events waiting in its queue.
    pub queued: u64,
    /// The last error, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

struct Registered {
    integration: Arc<dyn ExternalIntegration>,
    tx: mpsc::Sender<Item>,
    counters: Arc<Counters>,
}

/// What an integration's queue carries.
enum Item {
    Event(Arc<IntegrationEvent>),
    /// Answered once every item before it has been handled.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The registered integrations. Cheap to clone; clones share the list.
#[derive(Clone, Default)]
pub struct Integrations {
    list: Arc<Mutex<Vec<Registered>>>,
}

impl Integrations {
    fn list(&self) -> MutexGuard<'_, Vec<Registered>> {
        // Every update is one push: a panic elsewhere cannot leave the list half-changed.
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Initializes `integration` and starts its task. Must be called inside a tokio runtime.
    pub async fn register(
        &self,
        integration: Arc<dyn ExternalIntegration>,
    ) -> Result<(), IntegrationError> {
        let name = integration.name().to_owned();
        if self.list().iter().any(|r| r.integration.name() == name) {
            return Err(IntegrationError::Duplicate(name));
        }
        integration.initialize().await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        tokio::spawn(deliver(integration.clone(), rx, counters.clone()));
        let mut list = self.list();
        if list.iter().any(|r| r.integration.name() == name) {
            return Err(IntegrationError::Duplicate(name));
        }
        list.push(Registered {
            integration,
            tx,
            counters,
        });
        Ok(())
    }

    /// True when no integration is registered (firing an event then costs nothing).
    pub fn is_empty(&self) -> bool {
        self.list().is_empty()
    }

    /// Queues `event` for every integration, without waiting: an integration whose queue is
    /// full misses it (counted in `dropped`).
    pub fn fire(&self, event: IntegrationEvent) {
        let list = self.list();
        if list.is_empty() {
            return;
        }
        let event = Arc::new(event);
        for r in list.iter() {
            if !r.integration.wants(event.kind()) {
                continue;
            }
            if r.tx.try_send(Item::Event(event.clone())).is_err() {
                let dropped = r.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        integration = r.integration.name(),
                        "integration too slow: {dropped} events dropped so far"
                    );
                }
            }
        }
    }

    /// Every integration's counters, in registration order.
    pub fn stats(&self) -> Vec<IntegrationStats> {
        self.list()
            .iter()
            .map(|r| IntegrationStats {
                name: r.integration.name().to_owned(),
                delivered: r.counters.delivered.load(Ordering::Relaxed),
                failed: r.counters.failed.load(Ordering::Relaxed),
                dropped: r.counters.dropped.load(Ordering::Relaxed),
                queued: (QUEUE - r.tx.capacity()) as u64,
                last_error: r
                    .counters
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            })
            .collect()
    }

    /// Waits until the integration called `name` has handled every event fired before this
    /// call (at once when there is no such integration).
    pub async fn flush(&self, name: &str) {
        let tx = self
            .list()
            .iter()
            .find(|r| r.integration.name() == name)
            .map(|r| r.tx.clone());
        if let Some(tx) = tx {
            let (done, wait) = tokio::sync::oneshot::channel();
            if tx.send(Item::Flush(done)).await.is_ok() {
                wait.await.ok();
            }
        }
    }

    /// The integration called `name`, if registered.
    pub fn get(&self, name: &str) -> Option<Arc<dyn ExternalIntegration>> {
        self.list()
            .iter()
            .find(|r| r.integration.name() == name)
            .map(|r| r.integration.clone())
    }

    /// What every integration holds about `session`: (name, data) for those that know it.
    pub async fn export_session_data(&self, session: &str) -> Vec<(String, Value)> {
        let all: Vec<Arc<dyn ExternalIntegration>> =
            self.list().iter().map(|r| r.integration.clone()).collect();
        let mut out = Vec::new();
        for i in all {
            if let Ok(data) = i.export_session_data(session).await {
                out.push((i.name().to_owned(), data));
            }
        }
        out
    }
}

/// One integration's task: its events, in order, until the manager goes away.
async fn deliver(
    integration: Arc<dyn ExternalIntegration>,
    mut rx: mpsc::Receiver<Item>,
    counters: Arc<Counters>,
) {
    while let Some(item) = rx.recv().await {
        let event = match item {
            Item::Event(event) => event,
            Item::Flush(done) => {
                done.send(()).ok();
                continue;
            }
        };
        let result = match &*event {
            IntegrationEvent::SessionCreated(info) => integration.on_session_created(info).await,
            IntegrationEvent::SessionTerminated(end) => {
                integration.on_session_terminated(end).await
            }
            IntegrationEvent::CommandFinished(c) => integration.on_command_finished(c).await,
            IntegrationEvent::Other { kind, data } => integration.on_other(kind, data).await,
        };
        match result {
            Ok(()) => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    integration = integration.name(),
                    event = event.kind(),
                    "integration failed: {e}"
                );
                *counters
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
            }
        }
    }
}
