//! A session's public handle and the messages it sends to the session's actor.
//!
//! One task (the actor, in `actor.rs`) owns the PTY master, the emulator, the log and the
//! command-tracking state; a [`SessionHandle`] is a cheap clone holding the sender of its
//! command queue. Replies come back on oneshot channels, output fans out on a broadcast channel.

use bytes::Bytes;
use regex::Regex;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{Error, Result};
use ai_session_protocol::methods::{
    CaptureParams, CaptureResult, ExecParams, ExecResult, ExecStatus, ReadParams, ReadResult,
    SendResult, SessionInfo, Size, SubscribeResult, WaitFor, WaitResult,
};

/// Something that happened in a session, for subscribers.
#[derive(Debug, Clone)]
pub enum SessionEvent {
    /// Output bytes, starting at `offset` in the session's log.
    Output { offset: u64, data: Bytes },
    /// The program exited or the session was killed; no more events follow.
    Closed { exit_code: Option<i32> },
    /// The shell started a command (OSC 133 C mark): its output starts at `offset`. Sent after
    /// the output chunk holding the mark.
    CommandStarted { offset: u64 },
    /// The command finished (OSC 133 D mark): its output ended at `offset`. Sent after the
    /// output chunk holding the mark, so a subscriber has seen all of the command's output.
    CommandFinished { offset: u64, exit_code: Option<i32> },
    /// The session's state changed (`starting`, `idle`, `busy`, `exited`), as announced on
    /// [`crate::SessionManager::state_events`].
    State {
        state: ai_session_protocol::methods::SessionState,
        exit_code: Option<i32>,
    },
}

/// A session changed state (sent on [`crate::SessionManager::state_events`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StateChange {
    pub session: String,
    /// `starting`, `idle`, `busy`, `exited` or `killed`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why a sandboxed program stopped, when a resource limit stopped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

/// A parsed wait condition.
#[derive(Debug, Clone)]
pub enum WaitCondition {
    Regex(Regex),
    Idle(std::time::Duration),
    Prompt,
}

impl WaitCondition {
    pub fn parse(cond: &WaitFor) -> Result<Self> {
        Ok(match cond {
            WaitFor::Regex { pattern } => {
                let re = regex::RegexBuilder::new(pattern)
                    .multi_line(true)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| Error::InvalidParams(format!("invalid regex '{pattern}': {e}")))?;
                Self::Regex(re)
            }
            WaitFor::Idle { ms } => Self::Idle(std::time::Duration::from_millis(*ms)),
            WaitFor::Prompt => Self::Prompt,
        })
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T>>;

pub(crate) enum Cmd {
    Exec(ExecParams, Reply<ExecResult>),
    Write(Vec<u8>, Reply<SendResult>),
    Keys {
        keys: Vec<String>,
        literal: bool,
        paste: bool,
        reply: Reply<SendResult>,
    },
    Read(ReadParams, Reply<ReadResult>),
    Capture(CaptureParams, Reply<CaptureResult>),
    Wait {
        cond: WaitCondition,
        timeout_ms: Option<u64>,
        since: Option<u64>,
        reply: Reply<WaitResult>,
    },
    Resize(Size, Reply<()>),
    Info(oneshot::Sender<SessionInfo>),
    Subscribe(Reply<(SubscribeResult, broadcast::Receiver<SessionEvent>)>),
    Kill {
        scan: bool,
        done: oneshot::Sender<()>,
    },
    /// Stop without touching the program and give up the session (`daemon upgrade`).
    Detach(oneshot::Sender<Result<crate::handover::Handover>>),
}

/// A handle to a running session. Cloning it is cheap; the session lives until killed.
#[derive(Clone)]
pub struct SessionHandle {
    name: std::sync::Arc<str>,
    id: std::sync::Arc<str>,
    tx: mpsc::Sender<Cmd>,
    /// Told of each command that finishes.
    integrations: crate::integration::Integrations,
}

impl SessionHandle {
    pub(crate) fn new(
        name: &str,
        id: &str,
        tx: mpsc::Sender<Cmd>,
        integrations: crate::integration::Integrations,
    ) -> Self {
        Self {
            name: name.into(),
            id: id.into(),
            tx,
            integrations,
        }
    }

    /// The session's immutable id (`SessionInfo.id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// True once the session's actor has stopped (after a kill).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T> {
        self.call_then(make, || {}).await
    }

    /// [`Self::call`]; `queued` runs once the command is in the actor's mailbox, before it is
    /// carried out.
    async fn call_then<T>(
        &self,
        make: impl FnOnce(Reply<T>) -> Cmd,
        queued: impl FnOnce(),
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let sent = self.tx.send(make(tx)).await;
        queued();
        sent.map_err(|_| Error::Killed(self.name.to_string()))?;
        rx.await.map_err(|_| Error::Killed(self.name.to_string()))?
    }

    /// Runs a command in the session's shell and waits for it to finish (or time out).
    /// The result carries the parsed output and its compact view once the command finished.
    pub async fn exec(&self, params: ExecParams) -> Result<ExecResult> {
        self.exec_then(params, || {}).await
    }

    /// [`Self::exec`]; `queued` runs once the exec is in the session's mailbox (so whatever is
    /// sent to the session afterwards comes after it), long before it is answered.
    pub async fn exec_then(&self, params: ExecParams, queued: impl FnOnce()) -> Result<ExecResult> {
        if let Some(b64) = &params.stdin_b64 {
            crate::exec::decode_stdin(b64)?;
        }
        let started_ms = crate::actor::now_ms();
        let command = params.command.clone();
        let budget = params.view_budget;
        let mut result = self.call_then(|r| Cmd::Exec(params, r), queued).await?;
        let session = self.name.to_string();
        let mut result = if result.output.len() <= 64 * 1024 {
            // Small outputs parse in microseconds: not worth a trip to the blocking pool.
            crate::exec::annotate(&mut result, &session, &command, budget);
            result
        } else {
            let command = command.clone();
            tokio::task::spawn_blocking(move || {
                crate::exec::annotate(&mut result, &session, &command, budget);
                result
            })
            .await
            .map_err(|e| Error::Io(std::io::Error::other(format!("output parsing failed: {e}"))))?
        };
        if result.status == ExecStatus::Exited && !self.integrations.is_empty() {
            self.tell_integrations(command, started_ms, &mut result);
        }
        Ok(result)
    }

    /// Queues the finished command for the integrations, its output left out when it is long:
    /// every queued event holds its copy, and a slow integration may hold a thousand of them.
    fn tell_integrations(&self, command: String, started_ms: u64, result: &mut ExecResult) {
        use crate::integration::{CommandFinished, IntegrationEvent, MAX_EVENT_OUTPUT};
        let long = result.output.len() > MAX_EVENT_OUTPUT;
        let output = if long {
            std::mem::take(&mut result.output)
        } else {
            String::new()
        };
        let mut event = result.clone();
        if long {
            result.output = output;
        }
        event.screen = None;
        self.integrations
            .fire(IntegrationEvent::CommandFinished(Box::new(
                CommandFinished {
                    session: self.name.to_string(),
                    command,
                    started_ms,
                    result: event,
                },
            )));
    }

    /// Types keys (tmux key names or text) into the session.
    pub async fn send_keys(
        &self,
        keys: Vec<String>,
        literal: bool,
        paste: bool,
    ) -> Result<SendResult> {
        self.send_keys_then(keys, literal, paste, || {}).await
    }

    /// [`Self::send_keys`]; `queued` runs once the keys are in the session's mailbox.
    pub async fn send_keys_then(
        &self,
        keys: Vec<String>,
        literal: bool,
        paste: bool,
        queued: impl FnOnce(),
    ) -> Result<SendResult> {
        let keys = |reply| Cmd::Keys {
            keys,
            literal,
            paste,
            reply,
        };
        self.call_then(keys, queued).await
    }

    /// Writes raw bytes to the program's terminal input.
    pub async fn write(&self, data: Vec<u8>) -> Result<SendResult> {
        self.write_then(data, || {}).await
    }

    /// [`Self::write`]; `queued` runs once the bytes are in the session's mailbox.
    pub async fn write_then(&self, data: Vec<u8>, queued: impl FnOnce()) -> Result<SendResult> {
        self.call_then(|r| Cmd::Write(data, r), queued).await
    }

    pub async fn read(&self, params: ReadParams) -> Result<ReadResult> {
        self.call(|r| Cmd::Read(params, r)).await
    }

    pub async fn capture(&self, params: CaptureParams) -> Result<CaptureResult> {
        self.call(|r| Cmd::Capture(params, r)).await
    }

    pub async fn wait(
        &self,
        cond: WaitCondition,
        timeout_ms: Option<u64>,
        since: Option<u64>,
    ) -> Result<WaitResult> {
        self.call(|reply| Cmd::Wait {
            cond,
            timeout_ms,
            since,
            reply,
        })
        .await
    }

    pub async fn resize(&self, size: Size) -> Result<()> {
        self.call(|r| Cmd::Resize(size, r)).await
    }

    pub async fn info(&self) -> Result<SessionInfo> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Info(tx))
            .await
            .map_err(|_| Error::Killed(self.name.to_string()))?;
        rx.await.map_err(|_| Error::Killed(self.name.to_string()))
    }

    /// The current screen plus a stream of everything that follows.
    pub async fn subscribe(&self) -> Result<(SubscribeResult, broadcast::Receiver<SessionEvent>)> {
        self.call(Cmd::Subscribe).await
    }

    /// Kills the session's processes, reaps them, deletes its log and stops its actor.
    pub async fn kill(&self) {
        self.kill_with(true).await;
    }

    /// Stops the session's actor without touching its program and returns what the session is
    /// made of, for another daemon to adopt.
    pub(crate) async fn detach(&self) -> Result<crate::handover::Handover> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Detach(tx))
            .await
            .map_err(|_| Error::Killed(self.name.to_string()))?;
        rx.await.map_err(|_| Error::Killed(self.name.to_string()))?
    }

    pub(crate) async fn kill_with(&self, scan: bool) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Kill { scan, done: tx }).await.is_ok() {
            // An error here means the actor already stopped: the session is gone either way.
            rx.await.ok();
        }
    }
}
