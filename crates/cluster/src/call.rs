//! Requests forwarded between nodes: NATS request/reply on `ais.node.NAME.call`. The entry
//! node sends a [`Forward`] (the method, its params, who asked, a request id both nodes audit),
//! the owner answers with the method's result or error.

use ai_session_protocol::RpcError;
use futures_util::{StreamExt, TryFutureExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::node::encode;
use crate::{Cluster, ClusterError};

/// A request on its way to the node that owns its session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forward {
    /// Where it came from and under which id both nodes audit it.
    pub origin: Origin,
    /// Who asked, as the entry node identified them: `owner` or `http` (the only identities
    /// that mean the same on every node).
    pub principal: String,
    pub method: String,
    pub params: Value,
    /// For a request that types into a session (exec, send, write): the number of the entry
    /// node's connection it came on. The owner keeps one connection's requests in the order
    /// they arrive, which is the order they were sent in ([`Cluster::call_in_order`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<u64>,
}

/// The node a forwarded request entered through, and the request's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub node: String,
    pub request: String,
}

impl Origin {
    /// A fresh request id (64 random bits in hex) for a request entering at `node`.
    pub fn new(node: &str) -> Origin {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            // Ids only need to be distinct enough to match two audit entries.
            bytes = crate::now_ms().to_le_bytes();
        }
        Origin {
            node: node.to_string(),
            request: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Reply {
    result: Result<Value, RpcError>,
}

/// A forwarded request received by this node, to be answered with [`Cluster::answer`].
pub struct Incoming {
    /// The request, or why it could not be read.
    pub forward: Result<Forward, String>,
    reply: Option<async_nats::Subject>,
}

/// The stream of forwarded requests for this node.
pub struct Inbox {
    subscriber: async_nats::Subscriber,
}

impl Inbox {
    /// The next request; `None` once the connection is closed.
    pub async fn next(&mut self) -> Option<Incoming> {
        let message = self.subscriber.next().await?;
        Some(Incoming {
            forward: serde_json::from_slice(&message.payload).map_err(|e| e.to_string()),
            reply: message.reply,
        })
    }
}

fn subject(node: &str) -> String {
    format!("ais.node.{node}.call")
}

impl Cluster {
    /// Sends `forward` to `node` and waits for its answer at most `timeout`.
    pub async fn call(
        &self,
        node: &str,
        forward: &Forward,
        timeout: std::time::Duration,
    ) -> Result<Result<Value, RpcError>, ClusterError> {
        let request = async_nats::Request::new()
            .payload(encode(forward)?.into())
            .timeout(Some(timeout));
        let sent = self.inner.client.send_request(subject(node), request);
        self.answer_of(node, sent.map_err(|e| e.to_string())).await
    }

    /// [`Self::call`], running `sent` once the request is in this node's outgoing queue:
    /// requests sent one after another this way reach `node` in that order (one NATS
    /// connection delivers one publisher's messages in order).
    pub async fn call_in_order(
        &self,
        node: &str,
        forward: &Forward,
        timeout: std::time::Duration,
        sent: impl FnOnce() + Send,
    ) -> Result<Result<Value, RpcError>, ClusterError> {
        let payload = encode(forward)?;
        let client = &self.inner.client;
        let reply = client.new_inbox();
        let published = async {
            let answers = client
                .subscribe(reply.clone())
                .await
                .map_err(|e| e.to_string())?;
            client
                .publish_with_reply(subject(node), reply, payload.into())
                .await
                .map_err(|e| e.to_string())?;
            Ok(answers)
        }
        .await;
        // Sent or failed: either way the next request may go.
        sent();
        let mut answers = published.map_err(|reason| ClusterError::Unreachable {
            node: node.to_string(),
            reason,
        })?;
        let answer = async move {
            let message = tokio::time::timeout(timeout, answers.next())
                .await
                .map_err(|_| format!("no answer in {} s", timeout.as_secs_f64()))?
                .ok_or_else(|| "the connection to the cluster closed".to_string())?;
            if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                return Err("no responders".to_string());
            }
            Ok(message)
        };
        self.answer_of(node, answer).await
    }

    /// The answer `sent` brings from `node`, or the node's loss if it leaves first.
    async fn answer_of(
        &self,
        node: &str,
        sent: impl std::future::Future<Output = Result<async_nats::Message, String>>,
    ) -> Result<Result<Value, RpcError>, ClusterError> {
        let unreachable = |reason: String| ClusterError::Unreachable {
            node: node.to_string(),
            reason,
        };
        tokio::pin!(sent);
        // A node that dies with the request in hand never answers: the request ends when the
        // node's record expires, not at its own (possibly long) deadline.
        let mut tick = tokio::time::interval(self.inner.heartbeat);
        let mut confirmed = std::time::Instant::now();
        let message = loop {
            tokio::select! {
                answer = &mut sent => break answer.map_err(unreachable)?,
                _ = tick.tick() => match self.alive(node).await {
                    Some(true) => confirmed = std::time::Instant::now(),
                    Some(false) => {
                        return Err(unreachable("it left the cluster (its lease expired)".into()));
                    }
                    // The store did not answer: the node counts as alive for one lease after
                    // it was last seen, no longer.
                    None if confirmed.elapsed() > self.inner.lease => {
                        return Err(unreachable(format!(
                            "its record could not be read for {} s",
                            self.inner.lease.as_secs_f64()
                        )));
                    }
                    None => {}
                },
            }
        };
        let reply: Reply = serde_json::from_slice(&message.payload)
            .map_err(|e| ClusterError::Codec(e.to_string()))?;
        Ok(reply.result)
    }

    /// Whether `node` has a live record: one whose last heartbeat is younger than the lease
    /// (the server drops expired records on its own schedule, later under load). `None` when
    /// the record cannot be read.
    pub(crate) async fn alive(&self, node: &str) -> Option<bool> {
        let record = self.inner.nodes.get(crate::node::key(node)).await.ok()?;
        let Some(record) = record else {
            return Some(false);
        };
        let oldest = crate::now_ms().saturating_sub(self.inner.lease.as_millis() as u64);
        Some(
            serde_json::from_slice::<ai_session_protocol::cluster::NodeInfo>(&record)
                .is_ok_and(|info| info.heartbeat_ms >= oldest),
        )
    }

    /// Starts receiving the requests other nodes forward to this one.
    pub async fn inbox(&self) -> Result<Inbox, ClusterError> {
        let subscriber = self
            .inner
            .client
            .subscribe(subject(&self.inner.node))
            .await
            .map_err(|e| ClusterError::store("subscribing to forwarded requests", e))?;
        // The subscription is live once the server has it: confirmed before the node says it
        // is ready, so a request right after finds a responder.
        crate::round_trip(&self.inner.client, "subscribing to forwarded requests").await?;
        Ok(Inbox { subscriber })
    }

    /// Answers a forwarded request. An answer larger than the server's message limit is
    /// replaced by an error saying so (the caller reads the output in pieces instead).
    pub async fn answer(&self, incoming: Incoming, result: Result<Value, RpcError>) {
        let Some(reply) = incoming.reply else {
            return;
        };
        let limit = self.inner.client.server_info().max_payload;
        let mut bytes = match serde_json::to_vec(&Reply { result }) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("cannot encode an answer: {e}");
                return;
            }
        };
        if bytes.len() > limit {
            let error = RpcError::new(
                ai_session_protocol::ErrorKind::TooLarge,
                format!(
                    "the answer is {} bytes, over the cluster's message limit of {limit}",
                    bytes.len()
                ),
            )
            .with_hint("ask the session's own node, or read the output in pieces (read --since with --max-bytes)");
            bytes = serde_json::to_vec(&Reply { result: Err(error) }).unwrap_or_default();
        }
        if let Err(e) = self.inner.client.publish(reply, bytes.into()).await {
            tracing::warn!("cannot answer a forwarded request: {e}");
        }
    }
}
