//! Tasks as submitted and as shown: description, needs, priority, dependencies, state.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{AgentId, TaskId};

/// Where a task is in its life.
///
/// `queued -> assigned -> running -> done`; a failed attempt goes back to `queued` (after a
/// backoff) while retries remain, then to `dead_lettered`. A task whose dependency can never
/// complete becomes `failed` without running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting for its dependencies, for its retry backoff, or for a capable agent with room.
    Queued,
    /// Given to an agent that has not claimed it yet.
    Assigned,
    /// Claimed by its agent.
    Running,
    Done,
    /// Will never run: a dependency failed or was dead-lettered.
    Failed,
    /// Ran out of retries; a copy is in the dead-letter queue.
    DeadLettered,
}

impl TaskState {
    /// Whether the task will never change state again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::DeadLettered)
    }
}

/// A dependency in a submission: an existing task id, or the key of another task of the same batch.
///
/// JSON: a number is a task id, a string is a key (`"after": [12, "build"]`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Dep {
    Task(TaskId),
    Key(String),
}

impl From<TaskId> for Dep {
    fn from(id: TaskId) -> Self {
        Self::Task(id)
    }
}

impl From<&str> for Dep {
    fn from(key: &str) -> Self {
        Self::Key(key.to_string())
    }
}

/// A task to submit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub description: String,
    /// Capabilities an agent must all have to get this task.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Higher runs first.
    #[serde(default)]
    pub priority: i32,
    /// Tasks that must be done before this one starts.
    #[serde(default)]
    pub after: Vec<Dep>,
    /// A name other tasks of the same batch can use in `after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// How long one attempt may stay assigned or running; `None` takes the coordinator default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Retries after the first failed attempt; `None` takes the coordinator default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

impl TaskSpec {
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            description: description.into(),
            needs: Vec::new(),
            priority: 0,
            after: Vec::new(),
            key: None,
            timeout_ms: None,
            max_retries: None,
        }
    }

    pub fn needs(mut self, capability: impl Into<String>) -> Self {
        self.needs.push(capability.into());
        self
    }

    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    pub fn after(mut self, dep: impl Into<Dep>) -> Self {
        self.after.push(dep.into());
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }
}

/// A task as shown to callers.
///
/// JSON shape: `{"id":3,"description":"..","needs":["rust"],"priority":0,"after":[1,2],
/// "timeout_ms":60000,"max_retries":3,"state":"running","agent":2,"attempts":0,..}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub description: String,
    /// Sorted, without duplicates.
    pub needs: Vec<String>,
    pub priority: i32,
    pub after: Vec<TaskId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    pub max_retries: u32,
    pub state: TaskState,
    /// The agent it is assigned to or running on (or last ran on, once final).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentId>,
    /// Failed attempts so far (timeouts included; re-queues after an agent vanished are not).
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Dependencies not done yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<TaskId>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}
