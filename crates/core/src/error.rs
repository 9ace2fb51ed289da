//! Errors of the session library, each mapped to a stable protocol error kind with a hint.

use ai_session_protocol::hint::Advice;
use ai_session_protocol::{ErrorKind, RpcError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Returned by any call naming a session that does not exist; `existing` helps the caller
    /// pick the right one.
    #[error("no session named '{name}'")]
    NotFound { name: String, existing: Vec<String> },
    /// `create` with a taken name: choose another or kill the old session.
    #[error("a session named '{0}' already exists")]
    Exists(String),
    /// `exec` on a session whose exec queue is full: `queued` execs (the limit) already wait
    /// for the command running now.
    #[error(
        "session '{name}' already has {queued} execs waiting (the most one session queues); this one was not run"
    )]
    QueueFull { name: String, queued: usize },
    /// `exec` while a command is still running in the session.
    #[error("session '{name}' is busy: {detail}")]
    Busy { name: String, detail: String },
    /// The session's program has exited; read, capture and kill still work.
    #[error("session '{name}' has exited{}", code.map(|c| format!(" with code {c}")).unwrap_or_default())]
    Exited { name: String, code: Option<i32> },
    /// A wait whose condition did not hold in time.
    #[error("timed out after {ms} ms waiting for {what}")]
    Timeout { ms: u64, what: String },
    /// A parameter out of range or malformed; the message names it.
    #[error("{0}")]
    InvalidParams(String),
    /// The program could not be started.
    #[error("cannot start '{program}': {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    /// The operation does not apply to this session.
    #[error("{0}")]
    Unsupported(String),
    /// A value exceeds a documented bound (an exec's standard input); the message says which
    /// and the hint what to do instead.
    #[error("{message}")]
    TooLarge { message: String, hint: String },
    /// The session was killed while the request was pending.
    #[error("session '{0}' was killed")]
    Killed(String),
    /// The session a request was checked against is gone and another now has its name: the
    /// request is not carried out on the newcomer (a grant on the old one does not cover it).
    #[error(
        "session '{0}' was replaced (killed, and another session created with its name) after this request was checked; nothing was done to the new one"
    )]
    Replaced(String),
    /// The daemon handed the session to its upgraded binary (`daemon upgrade`) while this
    /// request waited; a command it started keeps running there.
    #[error("session '{0}' was handed over to the upgraded daemon while this request waited")]
    HandedOver(String),
    /// An OS failure inside the daemon.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The protocol form: stable kind, message, and what to do (an [`Advice`] each front end
    /// phrases in its own syntax).
    pub fn to_rpc(&self) -> RpcError {
        let msg = self.to_string();
        match self {
            Self::NotFound { existing, .. } => {
                let err =
                    RpcError::new(ErrorKind::SessionNotFound, msg).with_sessions(existing.clone());
                if existing.is_empty() {
                    err.with_advice(
                        Advice::new("no sessions exist; create one with {0}")
                            .call("session.new", json!({"name": "NAME"})),
                    )
                } else {
                    err.with_hint(format!("existing sessions: {}", existing.join(", ")))
                }
            }
            Self::Exists(name) => RpcError::new(ErrorKind::SessionExists, msg).with_advice(
                Advice::new("pick another name ({0}), or kill the old session first ({1})")
                    .field("session.new", "name")
                    .call("session.kill", json!({ "target": name })),
            ),
            Self::QueueFull { name, .. } => RpcError::new(ErrorKind::Overloaded, msg)
                .with_reason("exec_queue_full")
                .with_advice(
                    Advice::new(
                        "wait for the queued execs to finish ({0}) and send it again, or run it in another session",
                    )
                    .call(
                        "session.wait",
                        json!({"target": name, "condition": {"kind": "prompt"}}),
                    ),
                ),
            Self::Busy { name, .. } => RpcError::new(ErrorKind::SessionBusy, msg).with_advice(
                Advice::new("wait for it ({0}), interrupt it ({1}), or use another session")
                    .call(
                        "session.wait",
                        json!({"target": name, "condition": {"kind": "prompt"}}),
                    )
                    .call("session.send", json!({"target": name, "keys": ["C-c"]})),
            ),
            Self::Exited { name, .. } => RpcError::new(ErrorKind::SessionExited, msg).with_advice(
                Advice::new("read its output ({0}), then kill it ({1})")
                    .call("session.read", json!({ "target": name }))
                    .call("session.kill", json!({ "target": name })),
            ),
            Self::Timeout { .. } => RpcError::new(ErrorKind::Timeout, msg).with_advice(
                Advice::new("raise the wait's timeout ({0}), or look at the screen ({1})")
                    .field("session.wait", "timeout_ms")
                    .call("session.capture", json!({})),
            ),
            Self::InvalidParams(_) => RpcError::new(ErrorKind::InvalidParams, msg),
            Self::Spawn { .. } => RpcError::new(ErrorKind::SpawnFailed, msg).with_advice(
                Advice::new(
                    "check the program path, the shell ({0}) and the working directory ({1})",
                )
                .field("session.new", "shell")
                .field("session.new", "cwd"),
            ),
            Self::Unsupported(_) => RpcError::new(ErrorKind::Unsupported, msg),
            Self::TooLarge { hint, .. } => RpcError::new(ErrorKind::TooLarge, msg).with_hint(hint.clone()),
            Self::Killed(_) => RpcError::new(ErrorKind::SessionNotFound, msg),
            Self::Replaced(_) => RpcError::new(ErrorKind::SessionNotFound, msg)
                .with_hint("send the request again if it is meant for the new session"),
            Self::HandedOver(name) => RpcError::new(ErrorKind::ShuttingDown, msg).with_hint(format!(
                "the command keeps running: `ai-session wait -t {name} --prompt`, then `ai-session read -t {name}`"
            )),
            Self::Io(_) => RpcError::new(ErrorKind::Internal, msg),
        }
    }
}
