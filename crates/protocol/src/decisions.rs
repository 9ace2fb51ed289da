//! Decisions agents record (`decision.*`, `ai-session decide`, MCP `decision_record`): what
//! was chosen, why, how sure the agent was, and how it turned out; and the figures over them
//! (success rates by agent and by kind, calibration of the stated confidence).

use serde::{Deserialize, Serialize};

/// `decision.record` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DecisionParams {
    /// What was decided ("run the failing test alone").
    pub decision: String,
    /// Why.
    #[serde(default)]
    pub rationale: String,
    /// How sure, from 0 to 1.
    pub confidence: f64,
    /// The options not taken.
    #[serde(default)]
    pub alternatives: Vec<String>,
    /// The coordinator task it belongs to (`task-3` or `3`): the execs of the agent running
    /// the task, in any session, decide its outcome while the task runs.
    #[serde(default)]
    pub task: Option<String>,
    /// The session whose next execs decide its outcome.
    #[serde(default)]
    pub target: Option<String>,
    /// What sort of decision it is, for success rates by kind: a short label of lowercase
    /// letters, digits, `-` and `_` ("fix", "test-strategy", "dependency").
    #[serde(default)]
    pub kind: Option<String>,
}

/// How a decision turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Unknown,
    Success,
    Failure,
}

/// `decision.outcome` params: set the outcome by hand.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OutcomeParams {
    pub id: u64,
    /// `success` or `failure`.
    pub outcome: Outcome,
    #[serde(default)]
    pub note: Option<String>,
}

/// `decision.show` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DecisionId {
    pub id: u64,
}

/// One decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DecisionInfo {
    pub id: u64,
    pub decision: String,
    pub rationale: String,
    pub confidence: f64,
    pub alternatives: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Unix time in milliseconds.
    pub created_ms: u64,
    pub outcome: Outcome,
    /// The outcome was set by hand (`decision.outcome`); otherwise it follows the last linked
    /// exec.
    pub explicit: bool,
    /// Execs linked to it, and how many failed.
    pub execs: u64,
    pub failed_execs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `decision.list` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DecisionListParams {
    #[serde(default)]
    pub agent: Option<String>,
    /// Only decisions about this session.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    /// The newest this many (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `decision.list` result, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DecisionList {
    pub decisions: Vec<DecisionInfo>,
}

/// `decision.stats` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DecisionStatsParams {
    /// Only this agent's decisions.
    #[serde(default)]
    pub agent: Option<String>,
}

/// One agent's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AgentDecisions {
    /// The agent's name; `(owner)` for decisions recorded without one.
    pub agent: String,
    #[serde(flatten)]
    pub tally: Tally,
}

/// The record of one kind of decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct KindDecisions {
    /// The kind; `(none)` for decisions recorded without one.
    pub kind: String,
    #[serde(flatten)]
    pub tally: Tally,
}

/// How a group of decisions turned out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Tally {
    pub decisions: u64,
    pub success: u64,
    pub failure: u64,
    pub unknown: u64,
    /// `success / (success + failure)`; absent while none is decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    pub mean_confidence: f64,
}

/// One reliability bin: decisions whose stated confidence fell in `[lower, upper)`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    /// Decided decisions (success or failure) in the bin.
    pub count: u64,
    pub mean_confidence: f64,
    /// The fraction that succeeded; a well-calibrated agent's is close to `mean_confidence`.
    pub success_rate: f64,
}

/// `decision.stats` result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DecisionStats {
    pub decisions: u64,
    /// Decisions with an outcome (success or failure): those the calibration scores.
    pub decided: u64,
    pub by_agent: Vec<AgentDecisions>,
    pub by_kind: Vec<KindDecisions>,
    /// Ten bins of width 0.1; empty ones left out.
    pub bins: Vec<ReliabilityBin>,
    /// Mean of `(confidence - outcome)^2` over decided decisions (0 is perfect, 0.25 is always
    /// saying 0.5); absent while none is decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brier: Option<f64>,
}
