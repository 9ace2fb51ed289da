//! Streams relayed between nodes: the node a client is connected to holds a private subject
//! ([`Cluster::open_stream`]) and tells another node to send it a stream there (an agent's
//! inbox, read through any node). Each batch is a NATS request the receiver answers once it
//! has passed the batch on (taken) or could not (refused: its client is gone), so a slow
//! client slows the sender down, the sender keeps what was refused, and a receiver that went
//! away (no responder on its subject) ends the stream at the sender.

use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::node::encode;
use crate::{Cluster, ClusterError};

/// How long a sender waits for the receiver to take one batch before it ends the stream.
const TAKE: Duration = Duration::from_secs(60);

/// One frame of a relayed stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    /// Items, in order.
    Items(Vec<Value>),
    /// The stream ended at its source, and why.
    Closed(String),
}

/// The sending end of a relayed stream, on the node the stream comes from.
pub struct StreamSink {
    client: async_nats::Client,
    subject: String,
}

impl StreamSink {
    /// Sends one frame and waits until the receiver has passed it on: true when it did, false
    /// when it did not (it refused it, its client being gone, or nobody listens on the subject
    /// any more): the stream is over then, the frame's items undelivered. An error means the
    /// receiver stalled past a minute: whether it passed the frame on is not known.
    pub async fn send(&self, frame: &Frame) -> Result<bool, ClusterError> {
        let request = async_nats::Request::new()
            .payload(encode(frame)?.into())
            .timeout(Some(TAKE));
        match self
            .client
            .send_request(self.subject.clone(), request)
            .await
        {
            Ok(answer) => Ok(answer.payload.as_ref() != REFUSED),
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(false),
            Err(e) => Err(ClusterError::store("relaying a stream", e)),
        }
    }
}

/// The answer of a receiver that could not pass a frame on.
const REFUSED: &[u8] = b"refused";

/// A frame received, to be answered once it is passed on ([`Receipt::answer`]); dropping it
/// unanswered leaves the sender waiting until its timeout.
pub struct Receipt {
    client: async_nats::Client,
    reply: Option<async_nats::Subject>,
}

impl Receipt {
    /// Tells the sender whether the frame reached the client (`taken`) or not.
    pub async fn answer(self, taken: bool) {
        let Some(reply) = self.reply else { return };
        let payload = if taken { Vec::new() } else { REFUSED.to_vec() };
        if let Err(e) = self.client.publish(reply, payload.into()).await {
            tracing::warn!("cannot answer a relayed stream's frame: {e}");
        }
    }
}

/// The receiving end of a relayed stream, on the node the client is connected to. Dropping it
/// unsubscribes, which ends the stream at its source.
pub struct StreamSource {
    client: async_nats::Client,
    subscriber: async_nats::Subscriber,
    subject: String,
}

impl StreamSource {
    /// The subject the source sends to.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The next frame, and its receipt to answer once it is passed on (the sender sends the
    /// next one then); `None` once the connection is closed. An unreadable frame counts as
    /// the end of the stream.
    pub async fn next(&mut self) -> Option<(Frame, Receipt)> {
        let message = self.subscriber.next().await?;
        let frame = serde_json::from_slice(&message.payload)
            .unwrap_or_else(|e| Frame::Closed(format!("unreadable frame: {e}")));
        let receipt = Receipt {
            client: self.client.clone(),
            reply: message.reply,
        };
        Some((frame, receipt))
    }
}

impl Cluster {
    /// A private subject to receive a stream on, live once this returns.
    pub async fn open_stream(&self) -> Result<StreamSource, ClusterError> {
        let client = self.inner.client.clone();
        let subject = format!("ais.stream.{}.{}", self.inner.node, client.new_inbox());
        let subscriber = client
            .subscribe(subject.clone())
            .await
            .map_err(|e| ClusterError::store("opening a stream", e))?;
        crate::round_trip(&client, "opening a stream").await?;
        Ok(StreamSource {
            client,
            subscriber,
            subject,
        })
    }

    /// The sending end of the stream another node receives on `subject`.
    pub fn stream_sink(&self, subject: &str) -> StreamSink {
        StreamSink {
            client: self.inner.client.clone(),
            subject: subject.to_string(),
        }
    }

    /// Whether `node` is in the cluster (its record younger than the lease); `None` when the
    /// record cannot be read.
    pub async fn node_alive(&self, node: &str) -> Option<bool> {
        self.alive(node).await
    }
}
