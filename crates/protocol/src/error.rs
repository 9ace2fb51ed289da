//! Protocol errors: a stable kind, a message saying what was wrong, and a hint saying what to do.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::hint::{Advice, Cli, Phrasing};

/// The stable error kinds. The numeric codes are part of the protocol: the JSON-RPC reserved
/// range for framing errors, small positive numbers for ai-session's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line was not valid JSON. Fix the client's encoder.
    ParseError,
    /// Valid JSON but not a JSON-RPC request.
    InvalidRequest,
    /// The method does not exist in this protocol version.
    MethodNotFound,
    /// The parameters do not match the method's schema, or a value is out of range.
    InvalidParams,
    /// A bug or an OS failure inside the daemon; the message says which.
    Internal,
    /// No session has that name; `data.sessions` lists the ones that exist.
    SessionNotFound,
    /// `new` was asked for a name that is taken.
    SessionExists,
    /// The session's shell is running a command; wait for it or interrupt it.
    SessionBusy,
    /// The session's program has exited; only read, capture and kill still work.
    SessionExited,
    /// A wait ran out of time before its condition held.
    Timeout,
    /// The program could not be started (not found, not executable, bad directory).
    SpawnFailed,
    /// The request is valid but cannot be served for this session (e.g. exec without a shell).
    Unsupported,
    /// The client speaks a protocol version the daemon does not.
    VersionMismatch,
    /// The peer is not allowed to do this.
    PermissionDenied,
    /// A request or a value exceeded a documented bound.
    TooLarge,
    /// The daemon is shutting down.
    ShuttingDown,
    /// A coordination object (agent, task, request) does not exist; `data.reason` says which.
    NotFound,
    /// The call conflicts with the current state (a taken agent name, a task already finished,
    /// a full inbox); `data.reason` says which.
    Conflict,
    /// The daemon cannot write its audit log, so it refuses to act: `ai-session daemon status`
    /// says why, `ai-session audit repair` starts a new log segment recording the break.
    AuditUnavailable,
    /// One of the daemon's bounded work queues is full; retry shortly.
    Overloaded,
}

impl ErrorKind {
    /// The numeric JSON-RPC error code for this kind.
    pub fn code(self) -> i64 {
        match self {
            Self::ParseError => -32700,
            Self::InvalidRequest => -32600,
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::Internal => -32603,
            Self::SessionNotFound => 1,
            Self::SessionExists => 2,
            Self::SessionBusy => 3,
            Self::SessionExited => 4,
            Self::Timeout => 5,
            Self::SpawnFailed => 6,
            Self::Unsupported => 7,
            Self::VersionMismatch => 8,
            Self::PermissionDenied => 9,
            Self::TooLarge => 10,
            Self::ShuttingDown => 11,
            Self::NotFound => 12,
            Self::Conflict => 13,
            Self::AuditUnavailable => 14,
            Self::Overloaded => 15,
        }
    }
}

/// Machine-readable details of an error.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorData {
    /// The stable kind, as a string (e.g. `session_not_found`).
    pub kind: Option<ErrorKind>,
    /// What the caller can do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For `session_not_found`: the sessions that do exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<String>>,
    /// A finer machine-readable reason, e.g. the coordinator's error code (`not_task_holder`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The hint before it was phrased: each front end renders `hint` from it in its own syntax
    /// (`docs/protocol.md`, "Hints").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<Box<Advice>>,
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default)]
    pub data: ErrorData,
}

impl RpcError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            code: kind.code(),
            message: message.into(),
            data: ErrorData {
                kind: Some(kind),
                ..ErrorData::default()
            },
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.data.hint = Some(hint.into());
        self
    }

    /// A hint that names operations or parameters: `hint` is phrased for the CLI (the socket's
    /// default), and front ends with another syntax phrase it again with [`RpcError::rephrase`].
    pub fn with_advice(mut self, advice: Advice) -> Self {
        self.data.hint = Some(advice.render(&Cli::default()));
        self.data.advice = Some(Box::new(advice));
        self
    }

    /// Phrases the hint for another front end, and drops the unphrased advice (the caller of
    /// that front end reads `hint`).
    pub fn rephrase(&mut self, phrasing: &dyn Phrasing) {
        if let Some(advice) = self.data.advice.take() {
            self.data.hint = Some(advice.render(phrasing));
        }
    }

    pub fn with_sessions(mut self, sessions: Vec<String>) -> Self {
        self.data.sessions = Some(sessions);
        self
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.data.reason = Some(reason.into());
        self
    }

    pub fn kind(&self) -> Option<ErrorKind> {
        self.data.kind
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.data.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RpcError {}
