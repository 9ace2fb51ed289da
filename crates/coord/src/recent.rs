//! The recent messages of each topic: the last [`PER_TOPIC`] published on it, for a person (the
//! web dashboard, `bus.recent`) to see what a topic carries without having subscribed before.
//!
//! Bounded three ways: messages per topic, topics (the one whose last message is oldest goes
//! first), and the payload bytes kept in all (the oldest message of the fullest topic goes
//! first). The messages are the `Arc`s the subscribers got: keeping one costs no copy.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

use crate::message::Message;

/// Messages kept per topic.
pub const PER_TOPIC: usize = 50;
/// Topics kept.
const TOPICS: usize = 256;
/// Payload bytes kept over every topic (estimated as the JSON text's length).
const BYTES: usize = 8 << 20;

/// One topic's messages, oldest first.
#[derive(Default)]
struct Ring {
    messages: VecDeque<(Arc<Message>, usize)>,
    bytes: usize,
    last_id: u64,
}

#[derive(Default)]
pub(crate) struct Recent {
    topics: HashMap<Arc<str>, Ring>,
    bytes: usize,
}

impl Recent {
    /// Keeps `msg`, published on `topic`, dropping what the bounds say.
    /// Keeps `msg`, published on `topic`, dropping what the bounds say. The message it
    /// pushes out is returned, to be dropped (and maybe freed) after the caller's lock.
    pub(crate) fn record(&mut self, topic: &Arc<str>, msg: &Arc<Message>) -> Option<Arc<Message>> {
        let size = json_len(&msg.payload);
        let ring = match self.topics.get_mut(topic) {
            Some(ring) => ring,
            None => {
                if self.topics.len() >= TOPICS {
                    self.drop_stalest_topic();
                }
                self.topics.entry(topic.clone()).or_default()
            }
        };
        ring.messages.push_back((msg.clone(), size));
        ring.bytes += size;
        ring.last_id = msg.id.0;
        self.bytes += size;
        let mut out = None;
        if ring.messages.len() > PER_TOPIC {
            if let Some((gone, bytes)) = ring.messages.pop_front() {
                ring.bytes -= bytes;
                self.bytes -= bytes;
                out = Some(gone);
            }
        }
        while self.bytes > BYTES && self.drop_from_fullest() {}
        out
    }

    /// The newest `limit` messages of `topic`, oldest first.
    pub(crate) fn of(&self, topic: &str, limit: usize) -> Vec<Arc<Message>> {
        let Some(ring) = self.topics.get(topic) else {
            return Vec::new();
        };
        let skip = ring.messages.len().saturating_sub(limit);
        ring.messages
            .iter()
            .skip(skip)
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// Every topic with kept messages and how many.
    pub(crate) fn counts(&self) -> Vec<(String, usize)> {
        self.topics
            .iter()
            .map(|(t, r)| (t.to_string(), r.messages.len()))
            .collect()
    }

    fn drop_stalest_topic(&mut self) {
        let stalest = self
            .topics
            .iter()
            .min_by_key(|(_, r)| r.last_id)
            .map(|(t, _)| t.clone());
        if let Some(ring) = stalest.and_then(|t| self.topics.remove(&t)) {
            self.bytes -= ring.bytes;
        }
    }

    /// Drops the oldest message of the topic holding the most bytes; false when none is left.
    fn drop_from_fullest(&mut self) -> bool {
        let Some(ring) = self.topics.values_mut().max_by_key(|r| r.bytes) else {
            return false;
        };
        let Some((_, gone)) = ring.messages.pop_front() else {
            return false;
        };
        ring.bytes -= gone;
        self.bytes -= gone;
        true
    }
}

/// About the length of `v` as JSON text, without writing it.
fn json_len(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 20,
        Value::String(s) => s.len() + 2,
        Value::Array(a) => 2 + a.iter().map(|x| json_len(x) + 1).sum::<usize>(),
        Value::Object(o) => {
            2 + o
                .iter()
                .map(|(k, x)| k.len() + 4 + json_len(x))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ids::MessageId;
    use crate::message::Route;

    fn msg(id: u64, topic: &Arc<str>, payload: Value) -> Arc<Message> {
        Arc::new(Message {
            id: MessageId(id),
            route: Route::Topic {
                topic: topic.clone(),
            },
            from: None,
            payload,
            sent_at_ms: 0,
        })
    }

    #[test]
    fn keeps_the_newest_per_topic_oldest_first() {
        let mut r = Recent::default();
        let t: Arc<str> = Arc::from("builds");
        for i in 1..=(PER_TOPIC as u64 + 7) {
            r.record(&t, &msg(i, &t, serde_json::json!({ "n": i })));
        }
        let all = r.of("builds", 1000);
        assert_eq!(all.len(), PER_TOPIC);
        assert_eq!(all[0].id.0, 8);
        assert_eq!(all.last().unwrap().id.0, PER_TOPIC as u64 + 7);
        let three = r.of("builds", 3);
        assert_eq!(
            three.iter().map(|m| m.id.0).collect::<Vec<_>>(),
            [55, 56, 57]
        );
        assert!(r.of("other", 10).is_empty());
    }

    #[test]
    fn topics_and_bytes_are_bounded() {
        let mut r = Recent::default();
        for i in 0..(TOPICS as u64 + 10) {
            let t: Arc<str> = Arc::from(format!("t{i}").as_str());
            r.record(&t, &msg(i + 1, &t, Value::Null));
        }
        assert_eq!(r.counts().len(), TOPICS);
        assert!(r.of("t0", 1).is_empty(), "the stalest topics went first");
        assert_eq!(r.of(&format!("t{}", TOPICS + 9), 1).len(), 1);

        let mut r = Recent::default();
        let big: Arc<str> = Arc::from("big");
        let small: Arc<str> = Arc::from("small");
        r.record(&small, &msg(1, &small, Value::String("x".into())));
        let mib = "y".repeat(1 << 20);
        for i in 0..12 {
            r.record(&big, &msg(i + 2, &big, Value::String(mib.clone())));
        }
        assert!(r.bytes <= BYTES, "{} bytes kept", r.bytes);
        assert_eq!(r.of("big", 100).len(), 7);
        assert_eq!(r.of("small", 100).len(), 1, "the fullest topic pays");
    }
}
