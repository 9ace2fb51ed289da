//! Context methods (`context.*`): a session's (or an agent's, `agent:NAME`) token-aware
//! history.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `context.get`: the best working context within a token budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextGetParams {
    /// A session, or `agent:NAME` for a registered agent's own context.
    pub target: String,
    /// Tokens the view may use (default 4,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    /// Focus on this task and its ancestors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// `context.add`: what the user asked, what the assistant concluded, or a note.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextAddParams {
    pub target: String,
    /// `user`, `assistant` or `note`.
    pub role: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextAddResult {
    /// The new entry's id.
    pub id: u64,
}

/// `context.show`: one entry, in full, by id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextShowParams {
    pub target: String,
    pub id: u64,
}

/// `context.task`: create a task scope (under `parent`), optionally making it the active one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextTaskParams {
    pub target: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default)]
    pub activate: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextTaskResult {
    pub task: String,
    pub active: bool,
}

/// `context.config`: change a context's limits; every field is optional.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextConfigParams {
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_entries: Option<u64>,
}

/// A context's limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextLimits {
    /// The most tokens the live history may hold.
    pub max_tokens: u64,
    /// Fraction of `max_tokens` at which older entries get compressed.
    pub compression_threshold: f64,
    /// Entries kept in full after compression.
    pub window_entries: u64,
    /// The tokenizer of every count (`o200k_base`, `cl100k_base`).
    pub encoding: String,
    pub zstd_level: i32,
    pub max_summary_lines: u64,
    pub max_entry_chars: u64,
}

/// What compression did so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextStatsInfo {
    pub entries_added: u64,
    pub compressions: u64,
    pub entries_archived: u64,
    pub text_bytes_archived: u64,
    /// Nanoseconds spent compressing.
    pub compress_time: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextConfigResult {
    pub config: ContextLimits,
    pub stats: ContextStatsInfo,
}

/// The answer to `context.get`: the view's structure (owner, task lineage, budget, tokens used,
/// workspace, learned patterns, failures, summary lines, entries) and its rendering in `text`.
/// `crates/context`'s `ContextView` is the authoritative shape; `docs/protocol.md` lists its
/// fields.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextViewResult {
    /// Session or agent name.
    pub owner: String,
    /// The budget asked for.
    pub budget: u64,
    /// Tokens of `text` (never above `budget`).
    pub tokens_used: u64,
    /// The view rendered for a model.
    pub text: String,
    /// The remaining structured fields (`task`, `lineage`, `encoding`, `workspace`, `learned`,
    /// `last_failure`, `unresolved`, `summary`, `entries`, `omitted`).
    #[serde(flatten)]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "std::collections::BTreeMap<String, Value>")
    )]
    pub rest: serde_json::Map<String, Value>,
}

/// The answer to `context.show`: one entry in full.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ContextEntryResult {
    /// The entry's id.
    pub seq: u64,
    /// Unix time in milliseconds.
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Tokens of the full form.
    pub tokens: u32,
    /// Tokens of the brief form.
    pub brief_tokens: u32,
    /// The content, tagged by `kind`: `command` (the command run, its exit code, output and
    /// parsed structure) or `message` (`role`, `text`).
    #[cfg_attr(
        feature = "schema",
        schemars(with = "std::collections::BTreeMap<String, Value>")
    )]
    pub body: Value,
}
