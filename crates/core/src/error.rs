//! Errors of the session library, each mapped to a stable protocol error kind with a hint.

use ai_session_protocol::{ErrorKind, RpcError};

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
    /// The protocol form: stable kind, message, and what to do.
    pub fn to_rpc(&self) -> RpcError {
        let msg = self.to_string();
        match self {
            Self::NotFound { existing, .. } => {
                let hint = if existing.is_empty() {
                    "no sessions exist; create one with `ai-session new -s NAME`".to_owned()
                } else {
                    format!("existing sessions: {}", existing.join(", "))
                };
                RpcError::new(ErrorKind::SessionNotFound, msg).with_hint(hint).with_sessions(existing.clone())
            }
            Self::Exists(_) => RpcError::new(ErrorKind::SessionExists, msg)
                .with_hint("pick another name with -s, or `ai-session kill -t NAME` first"),
            Self::QueueFull { name, .. } => RpcError::new(ErrorKind::Overloaded, msg)
                .with_reason("exec_queue_full")
                .with_hint(format!(
                    "wait for the queued execs to finish (`ai-session wait -t {name} --prompt`) and send it again, or run it in another session"
                )),
            Self::Busy { name, .. } => RpcError::new(ErrorKind::SessionBusy, msg).with_hint(format!(
                "wait for it (`ai-session wait -t {name} --prompt`), interrupt it (`ai-session send -t {name} C-c`), or use another session"
            )),
            Self::Exited { name, .. } => RpcError::new(ErrorKind::SessionExited, msg).with_hint(format!(
                "read its output with `ai-session read -t {name}`, then `ai-session kill -t {name}`"
            )),
            Self::Timeout { .. } => RpcError::new(ErrorKind::Timeout, msg)
                .with_hint("raise --timeout, or check the screen with `ai-session capture`"),
            Self::InvalidParams(_) => RpcError::new(ErrorKind::InvalidParams, msg),
            Self::Spawn { .. } => RpcError::new(ErrorKind::SpawnFailed, msg)
                .with_hint("check the program path, --shell and the -c directory"),
            Self::Unsupported(_) => RpcError::new(ErrorKind::Unsupported, msg),
            Self::TooLarge { hint, .. } => RpcError::new(ErrorKind::TooLarge, msg).with_hint(hint.clone()),
            Self::Killed(_) => RpcError::new(ErrorKind::SessionNotFound, msg),
            Self::HandedOver(name) => RpcError::new(ErrorKind::ShuttingDown, msg).with_hint(format!(
                "the command keeps running: `ai-session wait -t {name} --prompt`, then `ai-session read -t {name}`"
            )),
            Self::Io(_) => RpcError::new(ErrorKind::Internal, msg),
        }
    }
}
