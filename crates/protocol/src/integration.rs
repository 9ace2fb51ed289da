//! Wire types of the integration methods: a session's exec history with parsed output
//! (`session.results`, what `ai-session report` builds CI reports from), the diagnostics of an
//! exec in one shape for editors (`session.diagnostics`), and the hooks' health in
//! `daemon.status`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `session.results`: which of a session's finished commands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HistoryParams {
    pub target: String,
    /// Only commands started at or after this time (milliseconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
    /// Only commands started at or before this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// At most this many, the newest (default: all the daemon keeps, 200 per session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// One finished command.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HistoryEntry {
    /// Its number in the session, from 1.
    pub seq: u64,
    pub command: String,
    /// When it was asked for, milliseconds since the Unix epoch.
    pub started_ms: u64,
    pub duration_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The output as the output crate parsed it (`BuildOutput`, `TestResults`, ...), as in
    /// `ExecResult.parsed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parsed: Option<Value>,
}

/// `session.results`'s answer, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HistoryResult {
    pub target: String,
    pub execs: Vec<HistoryEntry>,
}

/// `session.diagnostics`: one exec of a session (the last one by default).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DiagnosticsParams {
    pub target: String,
    /// The exec's `seq` in `session.results`; the newest when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// One compiler, linter or test diagnostic pointing into a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DiagnosticInfo {
    /// The path as the tool printed it.
    pub file: String,
    /// 1-based; absent when the tool gave none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// `error`, `warning` or `note`.
    pub severity: String,
    /// The rule or error code (`E0308`, `TS2322`, `clippy::ptr_arg`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub message: String,
    /// The tool that reported it (`cargo`, `tsc`, `pytest`).
    pub source: String,
}

/// `session.diagnostics`' answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DiagnosticsResult {
    pub target: String,
    pub seq: u64,
    pub command: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub diagnostics: Vec<DiagnosticInfo>,
}

/// A hook's (or another integration's) health, in `daemon.status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HookStatus {
    pub name: String,
    /// Events handled.
    pub delivered: u64,
    /// Events that failed: a program that exited non-zero or timed out, a webhook that
    /// stayed unreachable through its retries (then on the dead-letter list).
    pub failed: u64,
    /// Events dropped because the hook was too slow (its queue of 1,024 was full).
    pub dropped: u64,
    /// Events waiting.
    pub queued: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}
