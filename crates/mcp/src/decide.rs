//! The decision tool: an agent records what it chose before acting (`decision.record`); the
//! execs it then runs set the outcome.

use ai_session_protocol::decisions::{DecisionInfo, DecisionParams};
use ai_session_protocol::registry::{self as reg, Method};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::{ErrorData as McpError, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::AiSessionMcp;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DecisionArgs {
    /// What you decided to do, in a sentence.
    pub decision: String,
    /// Why.
    #[serde(default)]
    pub rationale: String,
    /// How sure you are that it will work, from 0 to 1.
    pub confidence: f64,
    /// The options you did not take.
    #[serde(default)]
    pub alternatives: Vec<String>,
    /// The session whose next commands decide the outcome.
    #[serde(default)]
    pub session: Option<String>,
    /// The task it belongs to: your commands in any session decide the outcome while you run it.
    #[serde(default)]
    pub task: Option<String>,
    /// What sort of decision: a short lowercase label ("fix", "test-strategy"), for success
    /// rates by kind.
    #[serde(default)]
    pub kind: Option<String>,
}

#[tool_router(router = decide_router, vis = "pub(crate)")]
impl AiSessionMcp {
    #[tool(description = reg::DecisionRecord::SPEC.mcp_description())]
    async fn decision_record(
        &self,
        Parameters(a): Parameters<DecisionArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = DecisionParams {
            decision: a.decision,
            rationale: a.rationale,
            confidence: a.confidence,
            alternatives: a.alternatives,
            task: a.task,
            target: a.session,
            kind: a.kind,
        };
        Ok(self
            .answer::<DecisionInfo>(reg::DecisionRecord::NAME, params)
            .await)
    }
}
