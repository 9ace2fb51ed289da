//! Observer events: agents joining and leaving, task state changes, session state changes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::agent::AgentInfo;
use crate::ids::{AgentId, TaskId};
use crate::task::TaskState;

/// The topic on which every [`Event`] is published.
pub const SYSTEM_TOPIC: &str = "$system";

/// The topic on which finished tasks' results are published (as [`Event::TaskStateChanged`] with
/// state `done` and a `result`).
pub const RESULTS_TOPIC: &str = "$results";

/// Why an agent left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It called `unregister`.
    Unregistered,
    /// Its connection dropped (the daemon called `disconnect`).
    Disconnected,
    /// It missed the heartbeat deadline.
    HeartbeatLost,
}

/// Something that happened in the coordinator, as published on [`SYSTEM_TOPIC`].
///
/// JSON shape: internally tagged by `event`, for example
/// `{"event":"task_state_changed","task":4,"state":"running","agent":2,"attempt":1}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    AgentJoined {
        agent: AgentInfo,
    },
    AgentLeft {
        agent: AgentId,
        name: String,
        reason: LeaveReason,
        /// Tasks it held that went back to the queue.
        requeued: Vec<TaskId>,
    },
    TaskStateChanged {
        task: TaskId,
        state: TaskState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<AgentId>,
        /// Failed attempts so far.
        attempts: u32,
        /// Why it failed, was re-queued or dead-lettered.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The result, when `state` is `done`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<Value>,
    },
    SessionStateChanged {
        session: String,
        state: String,
        #[serde(default, skip_serializing_if = "Value::is_null")]
        detail: Value,
    },
}
