//! Questions every node answers about itself, gathered by the node asked: each live node
//! answers on `ais.ask.WHAT` (NATS request, many replies), and the asker waits until every
//! live node has answered or the time is up, naming the nodes that did not answer rather
//! than leaving their part out silently.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::node::encode;
use crate::{Cluster, ClusterError};

/// The answers of the nodes: by node, and the live nodes that did not answer, with why.
pub struct Gathered {
    pub answers: Vec<(String, Value)>,
    pub unanswered: Vec<(String, String)>,
}

/// The questions this node is asked, as it receives them.
pub struct Asked {
    subscriber: async_nats::Subscriber,
    client: async_nats::Client,
    node: String,
}

/// One question, to be answered with [`Asked::answer`].
pub struct Question {
    reply: Option<async_nats::Subject>,
}

impl Asked {
    /// The next question; `None` once the connection is closed.
    pub async fn next(&mut self) -> Option<Question> {
        let message = self.subscriber.next().await?;
        Some(Question {
            reply: message.reply,
        })
    }

    /// Answers a question with this node's `value`.
    pub async fn answer(&self, question: Question, value: Value) {
        let Some(reply) = question.reply else { return };
        let Ok(bytes) = encode(&serde_json::json!({"node": self.node, "value": value})) else {
            return;
        };
        if let Err(e) = self.client.publish(reply, bytes.into()).await {
            tracing::warn!("cannot answer another node's question: {e}");
        }
    }
}

fn subject(what: &str) -> String {
    format!("ais.ask.{what}")
}

impl Cluster {
    /// Starts receiving the question `what` (a subject token) from other nodes.
    pub async fn asked(&self, what: &str) -> Result<Asked, ClusterError> {
        let client = self.inner.client.clone();
        let subscriber = client
            .subscribe(subject(what))
            .await
            .map_err(|e| ClusterError::store("answering other nodes", e))?;
        crate::round_trip(&client, "answering other nodes").await?;
        Ok(Asked {
            subscriber,
            client,
            node: self.inner.node.clone(),
        })
    }

    /// Asks every other live node `what` and gathers their answers, waiting at most `wait`.
    pub async fn gather(&self, what: &str, wait: Duration) -> Result<Gathered, ClusterError> {
        let failed = |e: &dyn std::fmt::Display| ClusterError::store("asking the nodes", e);
        let mut waiting: HashMap<String, ()> = self
            .nodes()
            .await?
            .into_iter()
            .filter(|n| n.node != self.inner.node)
            .map(|n| (n.node, ()))
            .collect();
        let client = &self.inner.client;
        let inbox = client.new_inbox();
        let mut replies = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| failed(&e))?;
        client
            .publish_with_reply(subject(what), inbox, Vec::new().into())
            .await
            .map_err(|e| failed(&e))?;
        let mut answers = Vec::new();
        let until = tokio::time::Instant::now() + wait;
        while !waiting.is_empty() {
            let Ok(Some(message)) = tokio::time::timeout_at(until, replies.next()).await else {
                break;
            };
            let Ok(reply) = serde_json::from_slice::<Value>(&message.payload) else {
                continue;
            };
            let Some(node) = reply.get("node").and_then(Value::as_str) else {
                continue;
            };
            if waiting.remove(node).is_some() {
                answers.push((node.to_string(), reply["value"].clone()));
            }
        }
        let mut unanswered: Vec<(String, String)> = waiting
            .into_keys()
            .map(|n| (n, format!("no answer in {} s", wait.as_secs_f64())))
            .collect();
        unanswered.sort();
        answers.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Gathered {
            answers,
            unanswered,
        })
    }
}
