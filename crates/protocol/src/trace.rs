//! The caller's trace, carried with a request so that the daemon's span for it joins the
//! caller's own trace (W3C Trace Context): the CLI takes it from `TRACEPARENT`/`TRACESTATE`,
//! the MCP server from a tool call's `_meta`, the HTTP server from the `traceparent` header.
//! On the socket it is the request envelope's optional `trace` field.

use serde::{Deserialize, Serialize};

/// A W3C `traceparent` (and `tracestate`), with the MCP tool call it came from, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    /// `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`; absent for a tool call
    /// that came without one (its span starts a trace of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// The MCP tool that made the call (`session_exec`), when an MCP client did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// The MCP request id of that tool call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl TraceContext {
    /// From `TRACEPARENT` and `TRACESTATE` in the environment (the convention of command-line
    /// tools run inside a traced program); `None` when `TRACEPARENT` is unset or empty.
    pub fn from_env() -> Option<Self> {
        let traceparent = std::env::var("TRACEPARENT")
            .ok()
            .filter(|t| !t.trim().is_empty())?;
        Some(Self {
            traceparent: Some(traceparent.trim().to_owned()),
            tracestate: std::env::var("TRACESTATE")
                .ok()
                .filter(|t| !t.trim().is_empty()),
            ..Self::default()
        })
    }
}
