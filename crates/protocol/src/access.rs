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
    /// As granted: a capability on one session names it by the name it had then.
    pub capabilities: Vec<String>,
    /// The capabilities bound to one session, with the id each is bound to: a later session
    /// with the same name is another session, and they do not reach it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<BoundCapability>,
    /// The bound sandbox policy's profile name, or `custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// A capability on one session (in `access.list`): bound to the session's immutable id when
/// it was granted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BoundCapability {
    /// As shown in `capabilities` (`session:exec:deploy`).
    pub capability: String,
    /// The session's name when it was granted.
    pub session: String,
    /// The session's id (`SessionInfo.id`): the capability reaches this session only.
    pub session_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AccessListResult {
    /// What every agent may do before anything is granted.
    pub agent_defaults: Vec<String>,
    pub principals: Vec<PrincipalInfo>,
}
