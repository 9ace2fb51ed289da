//! The cluster's recent topic messages, in the JetStream stream `AIS_BUS_RECENT`: it takes
//! every topic message as the node it entered through publishes it (`ais.bus.topic.TOKEN`,
//! [`crate::bus`]) and keeps the newest of each topic, so `bus.recent` on a node that joined
//! later still has what was said on a topic before.

use async_nats::jetstream;
use futures_util::StreamExt;
use serde_json::Value;

use crate::bus::{BusRoute, Envelope, topic_token};
use crate::{Cluster, ClusterError};

/// The stream of recent topic messages.
const STREAM: &str = "AIS_BUS_RECENT";
/// The subjects of topic messages.
const TOPICS: &str = "ais.bus.topic.>";
/// Messages kept per topic (as one daemon keeps).
const PER_TOPIC: usize = 50;
/// Topics kept at most (as one daemon keeps): the oldest messages go first beyond.
const TOPICS_KEPT: usize = 256;
/// Bytes of messages the stream keeps at most (as one daemon keeps of payloads).
const BYTES_KEPT: i64 = 8 << 20;

/// A topic message kept in the cluster.
#[derive(Debug, Clone)]
pub struct RecentMessage {
    /// Its sequence in the cluster's stream (increasing with time, cluster-wide).
    pub sequence: u64,
    pub topic: String,
    /// The agent that signed it.
    pub from: Option<u64>,
    pub payload: Value,
    /// When the stream took it, milliseconds since the Unix epoch.
    pub sent_at_ms: u64,
}

/// Creates the stream when the cluster has none yet.
pub(crate) async fn stream(js: &jetstream::Context) -> Result<(), ClusterError> {
    let limits = jetstream::stream::Config {
        max_messages_per_subject: PER_TOPIC as i64,
        max_messages: (PER_TOPIC * TOPICS_KEPT) as i64,
        max_bytes: BYTES_KEPT,
        ..Default::default()
    };
    crate::log_stream(js, STREAM, TOPICS, limits).await
}

/// The topic a subject token stands for ([`topic_token`] reversed).
fn topic_of(token: &str) -> Option<String> {
    if token == "~" {
        return Some(String::new());
    }
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'~' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

fn failed(e: &dyn std::fmt::Display) -> ClusterError {
    ClusterError::store("reading the recent topic messages", e)
}

impl Cluster {
    /// Every topic with messages kept in the cluster, and how many.
    pub async fn recent_topics(&self) -> Result<Vec<(String, usize)>, ClusterError> {
        let js = jetstream::new(self.inner.client.clone());
        let stream = js.get_stream(STREAM).await.map_err(|e| failed(&e))?;
        let mut subjects = stream
            .info_with_subjects(TOPICS)
            .await
            .map_err(|e| failed(&e))?;
        let mut out = Vec::new();
        while let Some(entry) = subjects.next().await {
            let (subject, count) = entry.map_err(|e| failed(&e))?;
            let topic = subject.strip_prefix("ais.bus.topic.").and_then(topic_of);
            if let Some(topic) = topic {
                out.push((topic, count));
            }
        }
        Ok(out)
    }

    /// The newest `limit` messages of `topic` kept in the cluster, oldest first.
    pub async fn recent_messages(
        &self,
        topic: &str,
        limit: usize,
    ) -> Result<Vec<RecentMessage>, ClusterError> {
        let js = jetstream::new(self.inner.client.clone());
        let stream = js.get_stream(STREAM).await.map_err(|e| failed(&e))?;
        let subject = format!("ais.bus.topic.{}", topic_token(topic));
        let mut out = Vec::new();
        let mut at = None;
        // At most `PER_TOPIC` are kept: read them all in order, keep the newest.
        for _ in 0..=PER_TOPIC {
            let message = match stream.direct_get_next_for_subject(&subject, at).await {
                Ok(m) => m,
                Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => break,
                Err(e) => return Err(failed(&e)),
            };
            let message = jetstream::message::StreamMessage::try_from(message.message)
                .map_err(|e| failed(&e))?;
            at = Some(message.sequence + 1);
            let Ok(envelope) = serde_json::from_slice::<Envelope>(&message.payload) else {
                continue;
            };
            if !matches!(&envelope.route, BusRoute::Topic { topic: t } if t == topic) {
                continue;
            }
            let nanos = message.time.unix_timestamp_nanos();
            out.push(RecentMessage {
                sequence: message.sequence,
                topic: topic.to_owned(),
                from: envelope.from,
                payload: envelope.payload,
                sent_at_ms: u64::try_from(nanos / 1_000_000).unwrap_or(0),
            });
        }
        let skip = out.len().saturating_sub(limit);
        Ok(out.split_off(skip))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_token_gives_back_its_topic() {
        for topic in ["builds", "a.b c", "~", "", "é/ü", "a~2eb"] {
            let token = crate::bus::topic_token(topic);
            assert_eq!(super::topic_of(&token).as_deref(), Some(topic), "{token}");
        }
        assert_eq!(super::topic_of("~zz"), None);
        assert_eq!(super::topic_of("~4"), None);
    }
}
