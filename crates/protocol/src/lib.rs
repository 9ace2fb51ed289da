//! The versioned wire protocol between the ai-session daemon and its clients.
//!
//! Frames are newline-delimited JSON-RPC 2.0 messages over a Unix stream socket. A client sends
//! [`Request`]s; the daemon answers each with a [`Response`] carrying the same `id`, and pushes
//! [`Notification`]s (no `id`) on connections that subscribed to a session's output. The typed
//! parameter and result structs for every method live in [`methods`]; errors carry a stable
//! [`ErrorKind`] so that every client (CLI, MCP, HTTP) can react to them the same way.
//! [`paths`] says where a daemon's socket and state live, which both sides must agree on.
//! `docs/protocol.md` describes the sequences.

#![forbid(unsafe_code)]

pub mod access;
pub mod alerts;
pub mod cluster;
pub mod config;
pub mod context;
pub mod coord;
pub mod decisions;
pub mod decode;
pub mod error;
pub mod hint;
pub mod integration;
pub mod methods;
pub mod paths;
pub mod persist;
pub mod registry;
pub mod stats;
pub mod trace;
pub mod web;

pub use error::{ErrorData, ErrorKind, RpcError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bumped on every incompatible change to a method's shape. Clients send theirs in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest request line the daemon accepts, in bytes. Longer lines are answered with an
/// [`ErrorKind::TooLarge`] error and the connection is closed (the rest of the line cannot be
/// framed reliably).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// A JSON-RPC 2.0 request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    pub jsonrpc: String,
    pub id: Value,
    pub method: String,
    #[serde(default)]
    pub params: Value,
    /// The caller's trace (W3C Trace Context), which the daemon's span for this request joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<trace::TraceContext>,
}

impl Request {
    pub fn new(id: u64, method: &str, params: impl Serialize) -> Result<Self, serde_json::Error> {
        Ok(Self {
            jsonrpc: "2.0".into(),
            id: Value::from(id),
            method: method.into(),
            params: serde_json::to_value(params)?,
            trace: None,
        })
    }
}

/// A JSON-RPC 2.0 response: exactly one of `result` and `error` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    pub jsonrpc: String,
    pub id: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl Response {
    pub fn ok(id: Value, result: Value) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }

    pub fn err(id: Value, error: RpcError) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }
}

/// A message pushed by the daemon without a request id (output streams, session events).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub jsonrpc: String,
    pub method: String,
    pub params: Value,
}

impl Notification {
    pub fn new(method: &str, params: impl Serialize) -> Result<Self, serde_json::Error> {
        Ok(Self {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params: serde_json::to_value(params)?,
        })
    }
}

/// Anything the daemon writes on a connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ServerMessage {
    Response(Response),
    Notification(Notification),
}
