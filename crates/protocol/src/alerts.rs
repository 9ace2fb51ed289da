//! Anomalies the daemon detected in what agents do (`alerts.list`, `ai-session alerts`): each
//! rule, its threshold (`[alerts]` in the config file) and what it saw. `docs/observability.md`
//! describes every rule.

use serde::{Deserialize, Serialize};

/// One anomaly, as raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AlertInfo {
    /// Increasing from 1 for the daemon's life.
    pub id: u64,
    /// `retry_loop`, `slow_exec`, `error_rate`, `output_flood`, `denial_burst`,
    /// `token_spike`, `input_wait`.
    pub rule: String,
    /// Unix time in milliseconds.
    pub time_ms: u64,
    /// 0..=100: how much the anomaly should worry a person (the audit entry carries it too).
    pub risk: u8,
    /// What was seen, in words, with the threshold it crossed.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The agent (or principal: `owner`, `token:ID`) whose requests raised it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The command concerned, when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The figures the rule compared (`{"failures": 3, "window_secs": 600}`, ...).
    #[serde(default)]
    pub figures: serde_json::Value,
}

/// `alerts.list` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AlertsParams {
    /// Only alerts with a larger id (to follow new ones).
    #[serde(default)]
    pub after: Option<u64>,
    /// Only this rule's.
    #[serde(default)]
    pub rule: Option<String>,
    /// At most this many, the newest (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `alerts.list` result: oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AlertsResult {
    pub alerts: Vec<AlertInfo>,
    /// Alerts raised since the daemon started, kept or not.
    pub total: u64,
}
