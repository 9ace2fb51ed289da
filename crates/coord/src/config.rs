//! Coordinator settings: heartbeat deadline, queue sizes and backpressure, task retry timing.

use std::time::Duration;

use crate::bus::{Backpressure, QueueOptions};

/// Settings of one coordinator. `Default` suits a daemon; tests shrink the durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoordConfig {
    /// An agent that has not heartbeated for this long is gone and its tasks are re-queued.
    pub heartbeat_deadline: Duration,
    /// Size and backpressure policy of every agent's inbox.
    pub inbox: QueueOptions,
    /// Size and backpressure policy of subscriptions made with `subscribe`.
    pub subscription: QueueOptions,
    /// Dead letters kept before the oldest are discarded.
    pub dead_letter_capacity: usize,
    /// Retries of a task after its first failed attempt, unless the task says otherwise.
    pub max_retries: u32,
    /// How long one attempt may stay assigned or running, unless the task says otherwise.
    /// `None`: no limit.
    pub task_timeout: Option<Duration>,
    /// Backoff before the first retry; doubles with every further failure.
    pub retry_base: Duration,
    /// The longest backoff between retries.
    pub retry_max: Duration,
    /// The id the first agent registered gets. A daemon passes one past every id an earlier
    /// run handed out, so an id (and every grant or policy kept under it) never names two
    /// agents.
    pub first_agent_id: u64,
}

impl Default for CoordConfig {
    fn default() -> Self {
        Self {
            heartbeat_deadline: Duration::from_secs(30),
            inbox: QueueOptions {
                capacity: 1024,
                policy: Backpressure::Wait {
                    max: Duration::from_secs(1),
                },
            },
            subscription: QueueOptions::default(),
            dead_letter_capacity: 10_000,
            max_retries: 3,
            task_timeout: None,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            first_agent_id: 1,
        }
    }
}
