//! Params and results of the methods the web dashboard reads through (`docs/web.md`): the
//! one-time login code (`web.login`), a session's command timeline (`session.history`), the
//! audit log's entries and chain check (`audit.list`, `audit.verify`), a sealed detail opened
//! (`audit.open`), and the recent messages of bus topics (`bus.recent`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The result of `web.login`: a one-time code for the dashboard, bound to the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WebLoginResult {
    /// The HTTP server's base URL, e.g. `http://127.0.0.1:7717`.
    pub url: String,
    /// Open this to log in: `URL/login?code=CODE`. It works once, before `expires_in_ms`.
    pub login_url: String,
    /// How long the code stays valid, in milliseconds.
    pub expires_in_ms: u64,
}

/// Params of `session.history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HistoryParams {
    pub target: String,
    /// The newest N execs (default 20, at most 200).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One exec of a session's history, newest last.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HistoryExec {
    pub command: String,
    /// `None` while it was still running when its answer went out (idle or hard timeout).
    pub exit_code: Option<i32>,
    pub cwd: String,
    pub started_ms: u64,
    pub duration_ms: u64,
    /// The output's offsets in the log: `session.read` with `since = output_start` and
    /// `max_bytes = output_end - output_start` gives it in full.
    pub output_start: u64,
    pub output_end: u64,
    /// The compact view of the output (as `session.exec` answers it: `text`, `raw_tokens`,
    /// `compact_tokens`, ...); absent when the output is no longer in the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact: Option<Value>,
    /// Bytes of the output the bounded log has already dropped.
    #[serde(default)]
    pub dropped: u64,
}

/// The result of `session.history`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HistoryResult {
    pub execs: Vec<HistoryExec>,
    /// Execs in the whole saved history.
    pub total: usize,
}

/// Params of `audit.list`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditListParams {
    /// Only this session, by name.
    #[serde(default)]
    pub session: Option<String>,
    /// Only this principal: `owner`, `http`, `agent:ID`, `token:ID`, `anonymous`, `daemon`.
    #[serde(default)]
    pub principal: Option<String>,
    /// Only entries with at least this risk (0 to 100).
    #[serde(default)]
    pub min_risk: Option<u8>,
    /// The newest N matching entries (default 200, at most 5000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One audit entry, as the log holds it (a detail sealed under a passphrase says so).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditEntry {
    pub seq: u64,
    /// RFC 3339 UTC time with milliseconds.
    pub time: String,
    /// `owner`, `http`, `agent:ID`, `token:ID`, `anonymous` or `daemon`.
    pub principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub action: String,
    pub detail: String,
    pub result: String,
    pub risk: u8,
    /// The detail is sealed under the store passphrase: `detail` says so, and `audit.open`
    /// gives it in clear.
    #[serde(default)]
    pub sealed: bool,
}

/// The result of `audit.list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditListResult {
    /// The matching entries, oldest first.
    pub entries: Vec<AuditEntry>,
    /// Entries that matched, before `limit` kept the newest.
    pub matched: usize,
}

/// The result of `audit.verify`: the keyed chain checked against its signed head.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditVerifyResult {
    pub intact: bool,
    /// What is wrong, when not intact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub entries: usize,
    /// The seq the signed head names.
    pub head_seq: u64,
    /// Files verified: sealed segments and the live log.
    pub files: usize,
    /// Recorded breaks (repairs, a log moved aside).
    pub breaks: Vec<AuditEntry>,
}

/// Params of `audit.open`: the entry whose sealed detail to open.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditOpenParams {
    pub seq: u64,
}

/// The result of `audit.open`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditOpenResult {
    pub seq: u64,
    /// The detail in clear.
    pub detail: String,
    /// Whether it was sealed on disk (an entry written without a passphrase is not).
    pub sealed: bool,
}

/// Params of `bus.recent`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecentParams {
    /// The topic whose messages to give; without it, only the topics.
    #[serde(default)]
    pub topic: Option<String>,
    /// The newest N (default and most: the 50 kept per topic).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A topic with messages kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecentTopic {
    pub topic: String,
    /// Messages kept (the newest, at most 50).
    pub kept: usize,
}

/// The result of `bus.recent`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RecentResult {
    /// Every topic with messages kept, by name.
    pub topics: Vec<RecentTopic>,
    /// The topic's newest messages, oldest first (empty without `topic`).
    pub messages: Vec<crate::coord::MessageInfo>,
}
