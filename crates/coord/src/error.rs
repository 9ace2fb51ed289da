//! The one error type of the crate, with a stable machine-readable code per variant.

use std::time::Duration;

use crate::ids::{AgentId, CorrelationId, TaskId};
use crate::task::TaskState;

/// Everything a coordinator call can refuse. Each variant says who returns it and how a caller reacts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoordError {
    /// Returned by `register` when a live agent already uses the name. Pick another name, or unregister
    /// the old agent first.
    #[error(
        "an active agent is already named {name:?}; choose another name or unregister it first"
    )]
    NameTaken { name: String },

    /// Returned by `register` for an empty name or an empty capability string. Fix the input.
    #[error("invalid agent registration: {0}")]
    InvalidAgent(String),

    /// Returned by `submit` for an empty capability name in `needs`. Fix the input.
    #[error("invalid task: {0}")]
    InvalidTask(String),

    /// Returned by any call naming an agent id that was never registered. Check the id (`agents()`).
    #[error("no agent {0}")]
    UnknownAgent(AgentId),

    /// Returned by any call naming an agent by a name no live agent has. Check `agents()`.
    #[error("no active agent named {0:?}")]
    UnknownAgentName(String),

    /// Returned by authenticated calls when the agent has unregistered, disconnected or missed its
    /// heartbeat deadline. Its token is dead: register again to get a new one.
    #[error("{agent} is gone; register again to get a new token")]
    AgentGone { agent: AgentId },

    /// Returned when a token does not belong to the agent it claims to act as. Nothing was done; the
    /// caller must present the token it received from `register`.
    #[error("token rejected: not allowed to {action} as {agent}")]
    Unauthorized {
        agent: AgentId,
        action: &'static str,
    },

    /// Returned when a valid agent acts on a task it does not hold (claimed by another agent, or no
    /// longer assigned to it after a timeout or re-queue). Drop the task; do not retry the report.
    #[error("{agent} may not {action} {task}: it is held by {}", owner.map_or_else(|| "no agent".to_string(), |o| o.to_string()))]
    NotTaskHolder {
        agent: AgentId,
        task: TaskId,
        action: &'static str,
        owner: Option<AgentId>,
    },

    /// Returned when a reply names a request addressed to another agent. Only the addressee may reply.
    #[error("{agent} may not reply to {correlation}: it was addressed to {addressee}")]
    NotAddressee {
        agent: AgentId,
        correlation: CorrelationId,
        addressee: AgentId,
    },

    /// Returned by task calls naming an id that was never submitted. Check `tasks()`.
    #[error("no task {0}")]
    UnknownTask(TaskId),

    /// Returned by `submit` when `after` names a task id that does not exist. Submit that task first.
    #[error("dependency {dependency} does not exist")]
    UnknownDependency { dependency: TaskId },

    /// Returned by `submit_batch` when `after` names a key no task in the batch carries.
    #[error("dependency key {key:?} is not the key of any task in the batch")]
    UnknownDependencyKey { key: String },

    /// Returned by `submit_batch` when two tasks of the batch carry the same key.
    #[error("key {key:?} is used by more than one task in the batch")]
    DuplicateKey { key: String },

    /// Returned by `submit_batch` when the `after` edges form a cycle; `path` lists the tasks (keys, or
    /// `#index` for tasks without one) around the cycle. Nothing was submitted; break the cycle.
    #[error("dependency cycle: {}", path.join(" -> "))]
    Cycle { path: Vec<String> },

    /// Returned by `submit` when a dependency already ended in failure, so the new task could never run.
    #[error("dependency {dependency} already ended as {state:?}; the task could never run")]
    DependencyFailed {
        dependency: TaskId,
        state: TaskState,
    },

    /// Returned by `done`/`fail` when the task is not in a state that accepts the report (for example
    /// already done). Re-read the task with `task()`.
    #[error("{task} is {state:?}; cannot {action}")]
    InvalidTaskState {
        task: TaskId,
        state: TaskState,
        action: &'static str,
    },

    /// Returned by `request` when no reply arrived in time. The request is forgotten; a late reply is
    /// dead-lettered. Retry or give up.
    #[error("no reply to {correlation} within {after:?}")]
    RequestTimeout {
        correlation: CorrelationId,
        after: Duration,
    },

    /// Returned by `reply` when the request is unknown: it timed out, was already answered, or never existed.
    #[error("no pending request {0}; it timed out or was already answered")]
    UnknownRequest(CorrelationId),

    /// Returned by `send`/`request` when the target agent's inbox could not take the message under the
    /// backpressure policy. The message is in the dead-letter queue.
    #[error("{agent}'s inbox is full; the message was dead-lettered")]
    InboxFull { agent: AgentId },

    /// Returned by `publish` for topics starting with `$`, which only the coordinator publishes on.
    #[error("topic {topic:?} is reserved for the coordinator's own events")]
    ReservedTopic { topic: String },

    /// Returned by `request` when the requester went away before the reply, or the coordinator shut down.
    #[error("the coordinator shut down")]
    Closed,
}

impl CoordError {
    /// A stable code for the wire (JSON-RPC error data); never changes for a variant.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NameTaken { .. } => "name_taken",
            Self::InvalidAgent(_) => "invalid_agent",
            Self::InvalidTask(_) => "invalid_task",
            Self::UnknownAgent(_) => "unknown_agent",
            Self::UnknownAgentName(_) => "unknown_agent_name",
            Self::AgentGone { .. } => "agent_gone",
            Self::Unauthorized { .. } => "unauthorized",
            Self::NotTaskHolder { .. } => "not_task_holder",
            Self::NotAddressee { .. } => "not_addressee",
            Self::UnknownTask(_) => "unknown_task",
            Self::UnknownDependency { .. } => "unknown_dependency",
            Self::UnknownDependencyKey { .. } => "unknown_dependency_key",
            Self::DuplicateKey { .. } => "duplicate_key",
            Self::Cycle { .. } => "dependency_cycle",
            Self::DependencyFailed { .. } => "dependency_failed",
            Self::InvalidTaskState { .. } => "invalid_task_state",
            Self::RequestTimeout { .. } => "request_timeout",
            Self::UnknownRequest(_) => "unknown_request",
            Self::InboxFull { .. } => "inbox_full",
            Self::ReservedTopic { .. } => "reserved_topic",
            Self::Closed => "closed",
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = CoordError> = std::result::Result<T, E>;
