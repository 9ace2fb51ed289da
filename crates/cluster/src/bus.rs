//! The coordination bus between nodes, on NATS subjects: a topic message on
//! `ais.bus.topic.TOPIC`, a broadcast on `ais.bus.broadcast` (both published by the node the
//! message entered through, delivered by every other node to its own subscribers and agents),
//! a direct message or a request to agent ID on `ais.bus.agent.ID` (NATS request/reply,
//! answered by the agent's node only; so are the calls an agent makes through another node than
//! its own: heartbeat, unregister, reply, inbox), and dead letters into the JetStream stream
//! `AIS_DEAD_LETTERS` (subjects `ais.dead.NODE`), where they outlive the node.

use std::time::Duration;

use ai_session_protocol::RpcError;
use async_nats::jetstream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::node::encode;
use crate::{Cluster, ClusterError};

/// The stream of dead letters.
const DEAD_STREAM: &str = "AIS_DEAD_LETTERS";
/// Dead letters the stream keeps before it discards the oldest.
const DEAD_KEPT: i64 = 100_000;

/// A bus message between nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The node the message entered through.
    pub origin: String,
    /// The agent that signed it, checked by the origin node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<u64>,
    #[serde(flatten)]
    pub route: BusRoute,
    pub payload: Value,
}

/// Where a bus message between nodes goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusRoute {
    Topic {
        topic: String,
    },
    Broadcast,
    Direct {
        to: u64,
    },
    Request {
        to: u64,
        timeout_ms: u64,
    },
    /// Calls an agent makes through another node than its own, its token checked there
    /// (against the cluster's secret): a heartbeat, leaving, a reply to a request, and its
    /// inbox, relayed to `subject` ([`crate::Cluster::open_stream`]).
    Heartbeat {
        to: u64,
    },
    Unregister {
        to: u64,
    },
    Reply {
        to: u64,
        correlation: u64,
    },
    Inbox {
        to: u64,
        subject: String,
    },
}

impl BusRoute {
    /// The agent a call to one agent is for; `None` for topic messages and broadcasts.
    pub fn addressee(&self) -> Option<u64> {
        match self {
            BusRoute::Topic { .. } | BusRoute::Broadcast => None,
            BusRoute::Direct { to }
            | BusRoute::Request { to, .. }
            | BusRoute::Heartbeat { to }
            | BusRoute::Unregister { to }
            | BusRoute::Reply { to, .. }
            | BusRoute::Inbox { to, .. } => Some(*to),
        }
    }
}

/// One bus message from another node; answer those that carry a reply subject with
/// [`Cluster::bus_answer`].
pub struct BusIncoming {
    /// The message, or why it could not be read.
    pub envelope: Result<Envelope, String>,
    reply: Option<async_nats::Subject>,
}

/// The bus messages of the other nodes, as this node receives them.
pub struct BusInbox {
    subscriber: async_nats::Subscriber,
    node: String,
}

impl BusInbox {
    /// The next message of another node; `None` once the connection is closed. This node's own
    /// topic messages and broadcasts (which it delivered itself) are skipped.
    pub async fn next(&mut self) -> Option<BusIncoming> {
        loop {
            let message = self.subscriber.next().await?;
            let envelope: Result<Envelope, String> =
                serde_json::from_slice(&message.payload).map_err(|e| e.to_string());
            let own = envelope.as_ref().is_ok_and(|e| {
                e.origin == self.node
                    && matches!(e.route, BusRoute::Topic { .. } | BusRoute::Broadcast)
            });
            if own {
                continue;
            }
            return Some(BusIncoming {
                envelope,
                reply: message.reply,
            });
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Reply {
    result: Result<Value, RpcError>,
}

/// A topic as a subject token: letters, digits, `-` and `_` as they are, every other byte as
/// `~XX` (hex), so that any topic maps to one token and back.
pub fn topic_token(topic: &str) -> String {
    let mut out = String::with_capacity(topic.len());
    for b in topic.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("~{b:02x}"));
        }
    }
    if out.is_empty() {
        out.push('~');
    }
    out
}

fn agent_subject(id: u64) -> String {
    format!("ais.bus.agent.{id}")
}

impl Cluster {
    fn envelope(&self, from: Option<u64>, route: BusRoute, payload: &Value) -> Envelope {
        Envelope {
            origin: self.inner.node.clone(),
            from,
            route,
            payload: payload.clone(),
        }
    }

    /// Publishes a topic message for the other nodes' subscribers.
    pub async fn bus_topic(
        &self,
        topic: &str,
        from: Option<u64>,
        payload: &Value,
    ) -> Result<(), ClusterError> {
        let route = BusRoute::Topic {
            topic: topic.to_string(),
        };
        let bytes = encode(&self.envelope(from, route, payload))?;
        self.inner
            .client
            .publish(
                format!("ais.bus.topic.{}", topic_token(topic)),
                bytes.into(),
            )
            .await
            .map_err(|e| ClusterError::store("publishing on the bus", e))
    }

    /// Publishes a broadcast for the other nodes' agents.
    pub async fn bus_broadcast(
        &self,
        from: Option<u64>,
        payload: &Value,
    ) -> Result<(), ClusterError> {
        let bytes = encode(&self.envelope(from, BusRoute::Broadcast, payload))?;
        self.inner
            .client
            .publish("ais.bus.broadcast", bytes.into())
            .await
            .map_err(|e| ClusterError::store("broadcasting on the bus", e))
    }

    /// Sends a direct message or a request to agent `to` on `node` and waits at most `wait`
    /// for its node's answer (how the message was delivered, or the reply).
    pub async fn bus_call(
        &self,
        node: &str,
        to: u64,
        from: Option<u64>,
        route: BusRoute,
        payload: &Value,
        wait: Duration,
    ) -> Result<Result<Value, RpcError>, ClusterError> {
        let bytes = encode(&self.envelope(from, route, payload))?;
        let request = async_nats::Request::new()
            .payload(bytes.into())
            .timeout(Some(wait));
        let message = self
            .inner
            .client
            .send_request(agent_subject(to), request)
            .await
            .map_err(|e| ClusterError::Unreachable {
                node: node.to_string(),
                reason: e.to_string(),
            })?;
        let reply: Reply = serde_json::from_slice(&message.payload)
            .map_err(|e| ClusterError::Codec(e.to_string()))?;
        Ok(reply.result)
    }

    /// Starts receiving the other nodes' bus messages. Confirmed by the server: once this returns, messages
    /// published anywhere reach this node.
    pub async fn bus_inbox(&self) -> Result<BusInbox, ClusterError> {
        let client = &self.inner.client;
        let subscriber = client
            .subscribe("ais.bus.>")
            .await
            .map_err(|e| ClusterError::store("subscribing to the bus", e))?;
        crate::round_trip(client, "subscribing to the bus").await?;
        Ok(BusInbox {
            subscriber,
            node: self.inner.node.clone(),
        })
    }

    /// Answers a direct message or a request from another node.
    pub async fn bus_answer(&self, incoming: BusIncoming, result: Result<Value, RpcError>) {
        let Some(reply) = incoming.reply else { return };
        let Ok(bytes) = serde_json::to_vec(&Reply { result }) else {
            return;
        };
        if let Err(e) = self.inner.client.publish(reply, bytes.into()).await {
            tracing::warn!("cannot answer a bus message from another node: {e}");
        }
    }

    /// Puts a dead letter (its JSON) into the cluster's dead-letter stream, without waiting.
    pub fn dead_letter(&self, letter: Vec<u8>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.inner.client.clone();
        let subject = format!("ais.dead.{}", self.inner.node);
        runtime.spawn(async move {
            if let Err(e) = client.publish(subject, letter.into()).await {
                tracing::warn!("cannot put a dead letter into the cluster's stream: {e}");
            }
        });
    }

    /// The newest `limit` dead letters of every node, oldest first, from the cluster's stream:
    /// the node each was dead-lettered on, and the letter.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<(String, Value)>, ClusterError> {
        let failed = |e: &dyn std::fmt::Display| ClusterError::store("reading dead letters", e);
        let js = jetstream::new(self.inner.client.clone());
        let mut stream = js.get_stream(DEAD_STREAM).await.map_err(|e| failed(&e))?;
        let (first, last, count) = {
            let state = &stream.info().await.map_err(|e| failed(&e))?.state;
            (state.first_sequence, state.last_sequence, state.messages)
        };
        if count == 0 || limit == 0 {
            return Ok(Vec::new());
        }
        let first = first.max(last.saturating_sub(limit as u64 - 1));
        let mut out = Vec::new();
        for seq in first..=last {
            // A sequence discarded meanwhile is skipped.
            let Ok(message) = stream.get_raw_message(seq).await else {
                continue;
            };
            let node = message
                .subject
                .strip_prefix("ais.dead.")
                .unwrap_or_default();
            if let Ok(value) = serde_json::from_slice(&message.payload) {
                out.push((node.to_string(), value));
            }
        }
        Ok(out)
    }
}

/// Creates the dead-letter stream when the cluster has none yet.
pub(crate) async fn dead_letter_stream(js: &jetstream::Context) -> Result<(), ClusterError> {
    let limits = jetstream::stream::Config {
        max_messages: DEAD_KEPT,
        max_bytes: -1,
        ..Default::default()
    };
    crate::log_stream(js, DEAD_STREAM, "ais.dead.>", limits).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_topic_is_one_subject_token() {
        assert_eq!(super::topic_token("builds"), "builds");
        assert_eq!(super::topic_token("a.b c"), "a~2eb~20c");
        assert_eq!(super::topic_token("~"), "~7e");
        assert_ne!(super::topic_token("a.b"), super::topic_token("a~2eb"));
    }
}
