//! The tools beyond sessions: a session's context, snapshots, and coordination between agents
//! (registration, the message bus, tasks). Each is one daemon method (`docs/protocol.md`).

use crate::args::Parameters;
use ai_session_protocol::coord::{
    AgentListResult, AgentToken, ClaimParams, ClaimResult, DeliveryResult, DoneParams, FailParams,
    PublishParams, RegisterParams, RegisterResult, SubmitParams, SubmitResult, TaskListParams,
    TaskListResult, TaskResult,
};
use ai_session_protocol::persist::{
    RestoreParams, RestoreResult, SnapshotInfo, SnapshotListParams, SnapshotListResult,
    SnapshotParams,
};
use ai_session_protocol::registry::{self as reg, Method};
use rmcp::model::CallToolResult;
use rmcp::{ErrorData as McpError, Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{AiSessionMcp, millis, success, to_value};

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ContextGetArgs {
    /// The session's name.
    #[serde(alias = "target")]
    pub session: String,
    /// Token budget for the returned context (default 4000).
    #[serde(default)]
    pub budget: Option<u64>,
    /// Favour what belongs to this task id (see context_add's `task`).
    #[serde(default)]
    pub task: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// What the user asked.
    User,
    /// What the agent said or decided.
    Assistant,
    /// A fact worth keeping (a finding, a decision, a path).
    Note,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ContextAddArgs {
    /// The session's name.
    #[serde(alias = "target")]
    pub session: String,
    /// Who says it: "user", "assistant" or "note".
    pub role: Role,
    /// The text to remember.
    pub text: String,
    /// Attach it to this task id (created on first use).
    #[serde(default)]
    pub task: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SnapshotCreateArgs {
    /// The session's name.
    #[serde(alias = "target")]
    pub session: String,
    /// A note to find the snapshot by later, e.g. "before migration".
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SnapshotListArgs {
    /// Only this session's snapshots (every session's when absent).
    #[serde(default)]
    pub session: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SnapshotRestoreArgs {
    /// A snapshot id from snapshot_list or snapshot_create (a unique prefix is enough).
    pub snapshot: String,
    /// The new session's name (default: the snapshot's session name, which must be free).
    #[serde(default)]
    pub name: Option<String>,
    /// Run the snapshot's last command again once the shell is up; its result is returned.
    #[serde(default)]
    pub rerun_last: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AgentRegisterArgs {
    /// The agent's name, unique among registered agents, e.g. "builder".
    pub name: String,
    /// What the agent can do, e.g. ["rust", "review"]: tasks whose `needs` it covers are
    /// assigned to it.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The session the agent works in, if any.
    #[serde(default)]
    pub session: Option<String>,
    /// Tasks it may hold at once (default 1).
    #[serde(default)]
    pub max_tasks: Option<usize>,
    /// Stay registered after this MCP server exits, until the heartbeat deadline passes without
    /// a call made with the token. By default the agent leaves when this MCP server exits and its
    /// tasks go back to the queue.
    #[serde(default)]
    pub keep: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct BusPublishArgs {
    /// The topic, e.g. "builds" (topics starting with "$" are reserved).
    pub topic: String,
    /// The message: any JSON value, e.g. {"status": "green", "commit": "abc123"}.
    pub payload: Value,
    /// Sign the message as your agent: the token from agent_register.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskSubmitArgs {
    /// What to do, for the agent that takes it.
    pub description: String,
    /// Capabilities the task needs; only agents having all of them get it.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Higher runs first (default 0).
    #[serde(default)]
    pub priority: Option<i32>,
    /// Task ids that must be done before this one starts.
    #[serde(default)]
    pub after: Vec<u64>,
    /// Fail the task (and retry it) when it runs longer than this many milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The old name of `timeout_ms`, in seconds: still accepted, not offered.
    #[serde(default)]
    #[schemars(skip)]
    pub timeout_secs: Option<f64>,
    /// How often a failed or timed-out task is retried.
    #[serde(default)]
    pub max_retries: Option<u32>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskClaimArgs {
    /// Your agent's token, from agent_register.
    pub token: String,
    /// Wait up to this many milliseconds for a task (default: answer at once).
    #[serde(default)]
    pub wait_ms: Option<u64>,
    /// The old name of `wait_ms`, in seconds: still accepted, not offered.
    #[serde(default)]
    #[schemars(skip)]
    pub wait_secs: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskCompleteArgs {
    /// Your agent's token, from agent_register.
    pub token: String,
    /// The task's id, from task_claim.
    pub id: u64,
    /// The result: any JSON value, e.g. {"summary": "tests pass", "commit": "abc123"}.
    #[serde(default)]
    pub result: Option<Value>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskFailArgs {
    /// Your agent's token, from agent_register.
    pub token: String,
    /// The task's id, from task_claim.
    pub id: u64,
    /// Why it failed, for whoever reads the task next.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Assigned,
    Running,
    Done,
    Failed,
    DeadLettered,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TaskListArgs {
    /// Only tasks in this state.
    #[serde(default)]
    pub state: Option<TaskState>,
}

fn token(token: String) -> AgentToken {
    AgentToken { token, agent: None }
}

#[tool_router(router = extra_router, vis = "pub(crate)")]
impl AiSessionMcp {
    #[tool(description = reg::ContextGet::SPEC.mcp_description())]
    async fn context_get(
        &self,
        Parameters(a): Parameters<ContextGetArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = json!({ "target": a.session, "budget": a.budget, "task": a.task });
        Ok(
            match self.call::<_, Value>(reg::ContextGet::NAME, params).await {
                Ok(v) => success(v),
                Err(e) => e,
            },
        )
    }

    #[tool(description = reg::ContextAdd::SPEC.mcp_description())]
    async fn context_add(
        &self,
        Parameters(a): Parameters<ContextAddArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = json!({ "target": a.session, "role": a.role, "text": a.text, "task": a.task });
        Ok(
            match self.call::<_, Value>(reg::ContextAdd::NAME, params).await {
                Ok(v) => success(v),
                Err(e) => e,
            },
        )
    }

    #[tool(description = reg::SnapshotCreate::SPEC.mcp_description())]
    async fn snapshot_create(
        &self,
        Parameters(a): Parameters<SnapshotCreateArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = SnapshotParams {
            target: a.session,
            label: a.label,
        };
        Ok(self
            .answer::<SnapshotInfo>(reg::SnapshotCreate::NAME, params)
            .await)
    }

    #[tool(description = reg::SnapshotList::SPEC.mcp_description())]
    async fn snapshot_list(
        &self,
        Parameters(a): Parameters<SnapshotListArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = SnapshotListParams { target: a.session };
        Ok(self
            .answer::<SnapshotListResult>(reg::SnapshotList::NAME, params)
            .await)
    }

    #[tool(description = reg::SnapshotRestore::SPEC.mcp_description())]
    async fn snapshot_restore(
        &self,
        Parameters(a): Parameters<SnapshotRestoreArgs>,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let params = RestoreParams {
            snapshot: a.snapshot,
            name: a.name,
            rerun_last: a.rerun_last,
        };
        Ok(
            match self
                .call::<_, RestoreResult>(reg::SnapshotRestore::NAME, params)
                .await
            {
                Ok(v) => {
                    self.sessions_changed(&peer).await;
                    success(to_value(&v))
                }
                Err(e) => e,
            },
        )
    }

    #[tool(description = reg::AgentRegister::SPEC.mcp_description())]
    async fn agent_register(
        &self,
        Parameters(a): Parameters<AgentRegisterArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = RegisterParams {
            name: a.name,
            capabilities: a.capabilities,
            session: a.session,
            max_tasks: a.max_tasks,
            keep: a.keep,
        };
        Ok(self
            .answer::<RegisterResult>(reg::AgentRegister::NAME, params)
            .await)
    }

    #[tool(description = reg::AgentList::SPEC.mcp_description())]
    async fn agent_list(&self) -> Result<CallToolResult, McpError> {
        Ok(self
            .answer::<AgentListResult>(reg::AgentList::NAME, json!({}))
            .await)
    }

    #[tool(description = reg::BusPublish::SPEC.mcp_description())]
    async fn bus_publish(
        &self,
        Parameters(a): Parameters<BusPublishArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = PublishParams {
            topic: a.topic,
            message: Some(a.payload),
            messages: None,
            token: a.token,
        };
        Ok(self
            .answer::<DeliveryResult>(reg::BusPublish::NAME, params)
            .await)
    }

    #[tool(description = reg::TaskSubmit::SPEC.mcp_description())]
    async fn task_submit(
        &self,
        Parameters(a): Parameters<TaskSubmitArgs>,
    ) -> Result<CallToolResult, McpError> {
        let timeout_ms = match millis(
            ("timeout_ms", a.timeout_ms),
            ("timeout_secs", a.timeout_secs),
        ) {
            Ok(t) => t,
            Err(e) => return Ok(e),
        };
        let params = SubmitParams {
            description: a.description,
            needs: a.needs,
            priority: a.priority,
            after: a.after,
            timeout_ms,
            max_retries: a.max_retries,
        };
        Ok(self
            .answer::<SubmitResult>(reg::TaskSubmit::NAME, params)
            .await)
    }

    #[tool(description = reg::TaskClaim::SPEC.mcp_description())]
    async fn task_claim(
        &self,
        Parameters(a): Parameters<TaskClaimArgs>,
    ) -> Result<CallToolResult, McpError> {
        let wait_ms = match millis(("wait_ms", a.wait_ms), ("wait_secs", a.wait_secs)) {
            Ok(t) => t,
            Err(e) => return Ok(e),
        };
        let params = ClaimParams {
            auth: token(a.token),
            wait_ms,
        };
        Ok(self
            .answer::<ClaimResult>(reg::TaskClaim::NAME, params)
            .await)
    }

    #[tool(description = reg::TaskDone::SPEC.mcp_description())]
    async fn task_complete(
        &self,
        Parameters(a): Parameters<TaskCompleteArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = DoneParams {
            auth: token(a.token),
            id: a.id,
            result: a.result.unwrap_or(Value::Null),
        };
        Ok(self.answer::<TaskResult>(reg::TaskDone::NAME, params).await)
    }

    #[tool(description = reg::TaskFail::SPEC.mcp_description())]
    async fn task_fail(
        &self,
        Parameters(a): Parameters<TaskFailArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = FailParams {
            auth: token(a.token),
            id: a.id,
            reason: a.reason,
        };
        Ok(self.answer::<TaskResult>(reg::TaskFail::NAME, params).await)
    }

    #[tool(description = reg::TaskList::SPEC.mcp_description())]
    async fn task_list(
        &self,
        Parameters(a): Parameters<TaskListArgs>,
    ) -> Result<CallToolResult, McpError> {
        let state = a
            .state
            .and_then(|s| to_value(&s).as_str().map(str::to_owned));
        let params = TaskListParams { state };
        Ok(self
            .answer::<TaskListResult>(reg::TaskList::NAME, params)
            .await)
    }
}
