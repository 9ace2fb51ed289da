//! The daemon's figures (`daemon.stats`, `ai-session stats`) and their Prometheus rendering
//! (`daemon.metrics`, `GET /metrics`): what it runs, what it did since it started, what it
//! costs. `docs/observability.md` lists every figure and metric name.

use serde::{Deserialize, Serialize};

/// The answer to `daemon.stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StatsResult {
    pub uptime_ms: u64,
    /// False when the daemon was started with `AI_SESSION_TELEMETRY=off`: the counters and
    /// histograms below stay at zero; gauges (sessions, tasks, process) are still read.
    pub telemetry: bool,
    /// Sessions by state.
    pub sessions: SessionCounts,
    /// Execs since start, by outcome.
    pub execs: ExecCounts,
    /// Daemon-side time of each `session.exec` request, from decoding to the answer.
    pub exec_duration: DurationSummary,
    /// Time each command ran in its PTY (`ExecResult.duration_ms`).
    pub exec_pty_duration: DurationSummary,
    /// Bytes of output the execs' commands wrote (log offsets, escapes included).
    pub output_bytes: u64,
    /// Tokens of the execs' raw output and of the compact views returned, where a view was made.
    pub tokens: TokenCounts,
    /// Requests by method (methods never called are left out), oldest name first.
    pub requests: Vec<MethodCounts>,
    /// Requests refused for want of a capability.
    pub capability_denials: u64,
    /// HTTP requests refused for a missing or invalid token.
    pub http_unauthorized: u64,
    /// Socket client connections open now.
    pub connections: u64,
    pub bus: BusCounts,
    /// Coordinator tasks by state.
    pub tasks: TaskCounts,
    pub store: StoreCounts,
    pub audit: AuditCounts,
    /// The daemon process itself.
    pub process: ProcessUsage,
    /// CPU and memory of each session's processes.
    pub session_usage: Vec<SessionUsage>,
    /// Tokens of execs run by agents, per agent (at most 1,024 agents are kept apart; later
    /// ones are counted under `(other)`).
    pub agents: Vec<AgentTokens>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionCounts {
    pub starting: u64,
    pub idle: u64,
    pub busy: u64,
    pub exited: u64,
}

/// Execs by how they ended: `exited` with code 0 (`ok`), another code (`nonzero`) or none
/// (`no_exit_code`: the shell ran no command), the statuses of unfinished commands, and
/// requests that failed (`error`: no such session, busy, exited, refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExecCounts {
    pub ok: u64,
    pub nonzero: u64,
    pub no_exit_code: u64,
    pub timeout: u64,
    pub running: u64,
    pub waiting_for_input: u64,
    pub starting: u64,
    pub error: u64,
}

/// A duration histogram, summarised; the quantiles are estimated from its buckets (the
/// upper bound of the bucket the quantile falls in, as Prometheus' `histogram_quantile`
/// interpolates within it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DurationSummary {
    pub count: u64,
    pub sum_ms: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenCounts {
    /// Tokens of the raw output (`compact.raw_tokens`).
    pub raw: u64,
    /// Tokens of the views returned (`compact.compact_tokens`).
    pub returned: u64,
    /// Execs whose result carried a view (the others are not in `raw` and `returned`).
    pub execs_with_view: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MethodCounts {
    pub method: String,
    pub ok: u64,
    /// Refused for want of a capability.
    pub denied: u64,
    /// Any other error.
    pub error: u64,
    /// The daemon-side time of these requests, for the hot paths (`session.exec`,
    /// `session.new`, `context.*`, the store's methods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationSummary>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BusCounts {
    /// Messages accepted by `bus.publish`, `bus.send`, `bus.broadcast`, `bus.request` and
    /// `bus.reply`.
    pub messages: u64,
    /// Topics with at least one subscriber.
    pub topics: u64,
    pub dead_letters_queued: u64,
    pub dead_letters_total: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskCounts {
    pub queued: u64,
    pub assigned: u64,
    pub running: u64,
    pub done: u64,
    pub failed: u64,
    pub dead_lettered: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StoreCounts {
    /// False when the store could not be opened (persistence off).
    pub open: bool,
    /// Writes that failed since start.
    pub write_failures: u64,
    /// Of which the file system was full.
    pub disk_full: u64,
    /// Problems met while loading at start.
    pub load_errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditCounts {
    /// True while every action is being recorded.
    pub ok: bool,
    /// True while writes are refused until `audit repair`.
    pub writes_refused: bool,
    /// The last entry's sequence number.
    pub last_seq: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ProcessUsage {
    pub pid: u32,
    /// Resident memory, from `/proc/self/statm`.
    pub rss_bytes: u64,
    /// Open file descriptors, from `/proc/self/fd`.
    pub open_fds: u64,
    /// The open-file limit (soft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fds: Option<u64>,
    /// User and system CPU time, from `/proc/self/stat`.
    pub cpu_seconds: f64,
    pub threads: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionUsage {
    pub name: String,
    pub pid: i32,
    /// Live processes in the session's kernel session (its shell and what runs under it).
    pub processes: u64,
    /// CPU time of those processes, plus what their finished children used.
    pub cpu_seconds: f64,
    /// Resident memory of those processes.
    pub rss_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AgentTokens {
    pub agent: String,
    pub execs: u64,
    pub raw_tokens: u64,
    pub returned_tokens: u64,
}

/// The answer to `daemon.metrics`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MetricsResult {
    /// Every metric in the Prometheus text exposition format, version 0.0.4.
    pub text: String,
}
