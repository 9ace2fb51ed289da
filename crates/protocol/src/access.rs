//! Access methods (`access.*`): capabilities, API tokens and sandbox policies bound to
//! principals. Only the owner calls them (`access:admin`).

use serde::{Deserialize, Serialize};

/// `access.grant` and `access.revoke`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GrantParams {
    /// `agent:ID` or `token:ID`.
    pub principal: String,
    /// `resource:action[:target]`, each part a word or `*` (`session:exec:build`).
    pub capability: String,
}

/// `access.token`: a new API token with exactly these capabilities.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenParams {
    #[serde(default)]
    pub label: String,
    pub capabilities: Vec<String>,
    /// A sandbox policy (profile name or TOML) every session of the token runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TokenResult {
    pub id: String,
    /// `token:ID`, for `access grant|revoke|policy`.
    pub principal: String,
    /// Shown once: only a digest is kept.
    pub token: String,
    pub capabilities: Vec<String>,
}

/// `access.policy`: bind a principal to a sandbox policy, or unbind it (no `policy`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PolicyParams {
    pub principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// `access.revoke_token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RevokeTokenParams {
    pub id: String,
}

/// One principal in `access.list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PrincipalInfo {
    pub principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub capabilities: Vec<String>,
    /// The bound sandbox policy's profile name, or `custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AccessListResult {
    /// What every agent may do before anything is granted.
    pub agent_defaults: Vec<String>,
    pub principals: Vec<PrincipalInfo>,
}
