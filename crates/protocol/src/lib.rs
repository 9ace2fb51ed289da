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

/// Anything the daemon writes on a connection: a [`Response`] when the message has `jsonrpc`
/// and `id` (even `null`), else a [`Notification`] when it has `jsonrpc`, `method` and
/// `params`; anything else does not decode.
///
/// Decoded in one pass: a derived untagged enum would first copy the whole message into
/// serde's buffer and then copy it again into the variant, and an exec's answer can carry
/// megabytes of output in one string.
#[derive(Debug, Clone)]
pub enum ServerMessage {
    Response(Response),
    Notification(Notification),
}

impl<'de> Deserialize<'de> for ServerMessage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A field that is there, even as `null` (`Some(Value::Null)`), or not (`None`).
        fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
            Value::deserialize(d).map(Some)
        }
        #[derive(Deserialize)]
        struct Fields {
            jsonrpc: Option<String>,
            #[serde(default, deserialize_with = "present")]
            id: Option<Value>,
            result: Option<Value>,
            error: Option<RpcError>,
            method: Option<String>,
            #[serde(default, deserialize_with = "present")]
            params: Option<Value>,
        }
        let f = Fields::deserialize(d)?;
        match (f.jsonrpc, f.id, f.method, f.params) {
            (Some(jsonrpc), Some(id), _, _) => Ok(Self::Response(Response {
                jsonrpc,
                id,
                result: f.result,
                error: f.error,
            })),
            (Some(jsonrpc), None, Some(method), Some(params)) => {
                Ok(Self::Notification(Notification {
                    jsonrpc,
                    method,
                    params,
                }))
            }
            _ => Err(serde::de::Error::custom(
                "neither a response (jsonrpc, id) nor a notification (jsonrpc, method, params)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the derived, two-pass decoding gave: the one-pass one must give the same.
    #[derive(Debug, Deserialize)]
    #[serde(untagged)]
    enum TwoPass {
        Response(Response),
        Notification(Notification),
    }

    fn same(line: &str) {
        let one = serde_json::from_str::<ServerMessage>(line);
        let two = serde_json::from_str::<TwoPass>(line);
        match (one, two) {
            (Ok(ServerMessage::Response(a)), Ok(TwoPass::Response(b))) => {
                assert_eq!(
                    (a.jsonrpc, a.id, a.result, a.error),
                    (b.jsonrpc, b.id, b.result, b.error),
                    "{line}"
                );
            }
            (Ok(ServerMessage::Notification(a)), Ok(TwoPass::Notification(b))) => {
                assert_eq!(
                    (a.jsonrpc, a.method, a.params),
                    (b.jsonrpc, b.method, b.params),
                    "{line}"
                );
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{line}: one pass {a:?}, two passes {b:?}"),
        }
    }

    #[test]
    fn one_pass_decodes_every_message_as_the_untagged_enum_did() {
        let big = format!(
            r#"{{"jsonrpc":"2.0","id":7,"result":{{"output":"{}","exit_code":0}}}}"#,
            "QUJD\\n".repeat(50_000)
        );
        for line in [
            r#"{"jsonrpc":"2.0","id":1,"result":{"server":"x","protocol":1,"pid":3}}"#,
            r#"{"jsonrpc":"2.0","id":"a","result":null}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad line"}}"#,
            r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32001,"message":"no","data":{"kind":"session_not_found","sessions":["a"]}}}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":1}}"#,
            r#"{"jsonrpc":"2.0","method":"session.output","params":{"session":"s","data":"hi"}}"#,
            r#"{"jsonrpc":"2.0","method":"session.event","params":null}"#,
            r#"{"jsonrpc":"2.0","method":"session.event"}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"m","params":[],"result":1,"extra":true}"#,
            r#"{"id":5,"result":1}"#,
            r#"{"jsonrpc":"2.0"}"#,
            r#"[1,2]"#,
            r#""text""#,
            r#"{"jsonrpc":"2.0","id":6,"result":1"#,
            &big,
        ] {
            same(line);
        }
    }
}
