//! Coordination methods: agents, the message bus and the task distributor.
//!
//! Agents register and receive a token; every call made *as* an agent carries it in `token`
//! (the token names its agent, so `agent` is optional and, when given, must name the same agent).
//! Agents, tasks, messages and dead letters have wire types of their own here ([`AgentInfo`],
//! [`TaskInfo`], [`MessageInfo`], [`DeadLetterInfo`]), the same JSON as the coordinator's, so
//! clients need no coordinator types. Message payloads and task results are the caller's own
//! JSON.
//!
//! Field names are the stable JSON shape: add optional fields freely, rename or retype only with
//! a [`crate::PROTOCOL_VERSION`] bump.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A registered agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AgentInfo {
    pub id: u64,
    pub name: String,
    /// Sorted, without duplicates.
    pub capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    pub max_tasks: usize,
    /// `active` or `gone`.
    pub status: String,
    /// Why it left (`unregistered`, `disconnected`, `heartbeat_lost`), once gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it left, once gone (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    pub registered_at_ms: u64,
    pub last_heartbeat_ms: u64,
    /// Tasks assigned to or running on it.
    #[serde(default)]
    pub load: usize,
    /// The node it registered on, when the daemon is in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// A message on the bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MessageInfo {
    pub id: u64,
    /// `topic`, `direct`, `broadcast`, `request` or `reply`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The addressed agent (direct, request, reply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<u64>,
    /// The sending agent, when it signed the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    /// The sender's JSON.
    pub payload: Value,
    pub sent_at_ms: u64,
}

/// A task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskInfo {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub description: String,
    pub needs: Vec<String>,
    pub priority: i32,
    pub after: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    pub max_retries: u32,
    /// `queued`, `assigned`, `running`, `done`, `failed` or `dead_lettered`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<u64>,
    pub attempts: u32,
    /// What the agent reported with `task.done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Dependencies not done yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_on: Vec<u64>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
}

/// One entry of the dead-letter queue: why, and the message or task itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeadLetterInfo {
    pub seq: u64,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// `queue_full`, `wait_timed_out`, `no_such_agent`, `agent_left`, `request_expired`,
    /// `retries_exhausted`.
    pub reason: String,
    /// The agent, for `no_such_agent` and `agent_left`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<u64>,
    /// For `retries_exhausted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// `message`, `task`, or `hook_event` (an event a webhook could not deliver).
    pub kind: String,
    /// The [`MessageInfo`], [`TaskInfo`], or the hook's event as it would have been POSTed.
    pub item: Value,
}

/// Counters of the dead-letter queue.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeadLetterStats {
    /// Entries held now.
    pub queued: usize,
    /// Entries ever added.
    pub total: u64,
    /// Oldest entries discarded at capacity.
    pub discarded: u64,
}

/// A topic with subscribers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TopicInfo {
    pub topic: String,
    pub subscribers: usize,
}

/// Notification: a message on a subscribed topic (`bus.subscribe`).
pub const NOTIFY_BUS_MESSAGE: &str = "bus.message";
/// Notification: a message in a streamed agent inbox (`bus.inbox`).
pub const NOTIFY_INBOX_MESSAGE: &str = "bus.inbox_message";
/// Notification: a coordinator event (`events.subscribe`).
pub const NOTIFY_EVENT: &str = "events.event";
/// Notification: a stream ended (its agent left, or the coordinator stopped).
pub const NOTIFY_STREAM_CLOSED: &str = "bus.closed";

/// The credentials of an agent, flattened into every call made as one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AgentToken {
    /// The token from `agent.register` (`<agent id>.<64 hex digits>`).
    pub token: String,
    /// The agent's name or id; when given it must be the token's agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RegisterParams {
    pub name: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Tasks the agent may hold at once (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks: Option<usize>,
    /// Keep the agent registered after this connection closes, until it unregisters or misses
    /// its heartbeat deadline. Without it, closing the connection disconnects the agent.
    #[serde(default)]
    pub keep: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RegisterResult {
    /// The agent's id.
    pub agent: u64,
    pub name: String,
    /// Present this in `token` on every call made as this agent.
    pub token: String,
    /// How long the agent may go without a call before it is considered gone.
    pub heartbeat_deadline_ms: u64,
    /// The agent as recorded.
    pub info: AgentInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AgentListResult {
    /// Active and recently departed.
    pub agents: Vec<AgentInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PublishParams {
    pub topic: String,
    /// One message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Value>,
    /// Several messages, published in order (an alternative to `message` for high rates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Value>>,
    /// Sign the message(s) as this agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// How a send or publish went: copies queued, copies dead-lettered.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeliveryResult {
    pub delivered: usize,
    pub dead_lettered: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SubscribeParams {
    pub topic: String,
}

/// The answer to `bus.subscribe`, `bus.inbox` and `events.subscribe`: notifications that follow
/// carry this `subscription` id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SubscribeResult {
    pub subscription: u64,
    pub topic: String,
}

/// Params of `bus.message`, `bus.inbox_message` and `events.event` notifications.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MessageEvent {
    pub subscription: u64,
    /// The `Message` (`{id, kind, topic?, to?, correlation_id?, from?, payload, sent_at_ms}`).
    pub message: Value,
}

/// Params of the `bus.closed` notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StreamClosed {
    pub subscription: u64,
    pub reason: String,
}

/// `bus.broadcast`: a message to every registered agent's inbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BroadcastParams {
    pub message: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SendParams {
    /// The addressee's name or id.
    pub to: String,
    pub message: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RequestParams {
    /// The addressee's name or id.
    pub to: String,
    pub message: Value,
    /// How long to wait for the reply (default 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RequestResult {
    /// The reply; its `payload` is the answer.
    pub reply: MessageInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReplyParams {
    #[serde(flatten)]
    pub auth: AgentToken,
    /// The request's `correlation_id`.
    pub correlation: u64,
    pub message: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DeadLettersResult {
    /// Oldest first.
    pub dead_letters: Vec<DeadLetterInfo>,
    pub stats: DeadLetterStats,
    /// In a cluster: the newest dead letters of every node (this one's included), oldest
    /// first, from the cluster's dead-letter stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Vec<NodeDeadLetter>>,
}

/// A dead letter of one node of the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NodeDeadLetter {
    pub node: String,
    pub letter: DeadLetterInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TopicsResult {
    /// Every topic with at least one subscriber (in a cluster: on any node, `subscribers`
    /// counting every node's).
    pub topics: Vec<TopicInfo>,
    /// In a cluster: the live nodes whose subscribers are missing from `topics` because they
    /// did not answer in time, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unanswered: Vec<crate::cluster::Unanswered>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SubmitParams {
    pub description: String,
    #[serde(default)]
    pub needs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    /// Task ids that must be done first.
    #[serde(default)]
    pub after: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SubmitResult {
    pub id: u64,
    /// The task as recorded.
    pub task: TaskInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClaimParams {
    #[serde(flatten)]
    pub auth: AgentToken,
    /// Wait up to this long for a task to be assigned (default: do not wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClaimResult {
    /// The claimed task, now `running`; absent when nothing is assigned to the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DoneParams {
    #[serde(flatten)]
    pub auth: AgentToken,
    pub id: u64,
    #[serde(default)]
    pub result: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FailParams {
    #[serde(flatten)]
    pub auth: AgentToken,
    pub id: u64,
    pub reason: String,
}

/// The answer to `task.done`, `task.fail` and `task.show`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskResult {
    pub task: TaskInfo,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskListParams {
    /// Only tasks in this state (`queued`, `assigned`, `running`, `done`, `failed`,
    /// `dead_lettered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskListResult {
    pub tasks: Vec<TaskInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TaskShowParams {
    pub id: u64,
}
