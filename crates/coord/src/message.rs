//! Messages as they travel on the bus and as they are shown on the wire.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Event;
use crate::ids::{AgentId, CorrelationId, MessageId};

/// One message. Subscribers receive `Arc<Message>`: fan-out to N subscribers shares one allocation.
///
/// JSON shape: `{"id":1,"kind":"topic","topic":"builds","from":3,"payload":{..},"sent_at_ms":..}`;
/// `kind` is one of `topic`, `direct`, `broadcast`, `request`, `reply`, and the other route fields
/// (`topic`, `to`, `correlation_id`) appear with the kinds that have them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    #[serde(flatten)]
    pub route: Route,
    /// The agent that sent it, when the sender presented a token; `None` for anonymous senders
    /// (the daemon, the CLI) and for system events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<AgentId>,
    pub payload: Value,
    /// Wall-clock send time, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
}

/// Where a message was addressed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Route {
    /// Published on a topic; every subscriber of the topic gets a copy.
    Topic { topic: Arc<str> },
    /// Sent to one agent's inbox.
    Direct { to: AgentId },
    /// Sent to the inbox of every active agent.
    Broadcast,
    /// A request to one agent; answer it with `reply(correlation_id, ..)`.
    Request {
        to: AgentId,
        correlation_id: CorrelationId,
    },
    /// The answer to a request; `to` is the requesting agent, absent for anonymous requesters.
    Reply {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<AgentId>,
        correlation_id: CorrelationId,
    },
}

impl Message {
    /// The system event this message carries, when it came from the system topic.
    pub fn event(&self) -> Option<Event> {
        Event::deserialize(&self.payload).ok()
    }

    /// The topic, for topic messages.
    pub fn topic(&self) -> Option<&str> {
        match &self.route {
            Route::Topic { topic } => Some(topic),
            _ => None,
        }
    }

    /// The correlation id, for requests and replies.
    pub fn correlation_id(&self) -> Option<CorrelationId> {
        match self.route {
            Route::Request { correlation_id, .. } | Route::Reply { correlation_id, .. } => {
                Some(correlation_id)
            }
            _ => None,
        }
    }
}

/// Milliseconds since the Unix epoch, for timestamps shown to people and programs.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
