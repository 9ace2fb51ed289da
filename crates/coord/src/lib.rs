//! Multi-agent coordination for ai-session: an agent registry, a message bus and a task
//! distributor, in process, driven by Tokio.
//!
//! [`Coordinator`] is the one entry point; the daemon exposes its methods one to one. Agents
//! register with capabilities and get a token ([`AgentAuth`]) that lets them act only as
//! themselves. The bus fans every topic message out to every subscriber, delivers direct
//! messages, broadcasts and request/replies to agents' inboxes, applies backpressure per queue
//! and keeps what it cannot deliver in a dead-letter queue. The distributor runs a DAG of tasks
//! through `queued -> assigned -> running -> done`, retrying failures with exponential backoff,
//! and hands work out through a pluggable [`Strategy`]. Everything observable is published as an
//! [`Event`] on [`SYSTEM_TOPIC`].

#![forbid(unsafe_code)]

mod agent;
mod auth;
mod bus;
mod clock;
mod config;
mod coordinator;
mod dag;
mod deadletter;
mod distributor;
mod error;
mod event;
mod ids;
mod message;
mod ready;
mod recent;
mod relay;
pub mod strategy;
mod task;

pub use agent::{AgentInfo, AgentSpec, AgentStatus};
pub use auth::{AgentAuth, Token};
pub use bus::{Backpressure, Delivery, Inbox, QueueOptions, Subscription, TopicInfo};
pub use config::CoordConfig;
pub use coordinator::{Coordinator, Registration};
pub use deadletter::{DeadItem, DeadLetter, DeadLetterStats, DeadReason};
pub use error::{CoordError, Result};
pub use event::{Event, LeaveReason, RESULTS_TOPIC, SYSTEM_TOPIC};
pub use ids::{AgentId, CorrelationId, MessageId, TaskId};
pub use message::{Message, Route};
pub use recent::PER_TOPIC as RECENT_PER_TOPIC;
pub use relay::{Relay, Relaying};
pub use strategy::{Candidate, LeastLoaded, PriorityFirst, RoundRobin, Strategy};
pub use task::{Dep, Task, TaskSpec, TaskState};
