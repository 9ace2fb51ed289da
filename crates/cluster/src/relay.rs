//! Output subscriptions across nodes. A client of node B subscribing to a session node A owns
//! gets A's notification lines (output with its log offsets, commands, state, close) on the
//! subject `ais.out.REQUEST` (the forwarded request's id). B subscribes before it forwards the
//! `session.subscribe`, so nothing A publishes is missed; B also answers on
//! `ais.out.REQUEST.alive`, which A asks every heartbeat: once nobody answers (B's client went
//! away, or B died), A stops relaying.

use bytes::Bytes;
use futures_util::StreamExt;

use crate::{Cluster, ClusterError};

/// The subject a forwarded subscription's lines go to.
pub fn relay_subject(request: &str) -> String {
    format!("ais.out.{request}")
}

/// The entry node's end of a relayed subscription: the owner's lines, in order.
pub struct Watch {
    lines: async_nats::Subscriber,
    alive: async_nats::Subscriber,
    client: async_nats::Client,
}

impl Watch {
    /// The next line; `None` once the connection is closed. Answers the owner's liveness
    /// questions meanwhile.
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            tokio::select! {
                line = self.lines.next() => return line.map(|m| m.payload),
                ping = self.alive.next() => {
                    let reply = ping?.reply?;
                    if let Err(e) = self.client.publish(reply, Bytes::new()).await {
                        tracing::warn!("cannot answer a relay's liveness check: {e}");
                    }
                }
            }
        }
    }
}

impl Cluster {
    /// Starts receiving the lines relayed on `subject`; the subscription is on the server when
    /// this returns.
    pub async fn watch(&self, subject: &str) -> Result<Watch, ClusterError> {
        let failed = |e: &dyn std::fmt::Display| ClusterError::store("relaying a subscription", e);
        let client = self.inner.client.clone();
        let lines = client
            .subscribe(subject.to_string())
            .await
            .map_err(|e| failed(&e))?;
        let alive = client
            .subscribe(format!("{subject}.alive"))
            .await
            .map_err(|e| failed(&e))?;
        crate::round_trip(&client, "relaying a subscription").await?;
        Ok(Watch {
            lines,
            alive,
            client,
        })
    }

    /// Relays one line to the entry node watching `subject`.
    pub async fn relay_line(&self, subject: &str, line: String) -> Result<(), ClusterError> {
        self.inner
            .client
            .publish(subject.to_string(), Bytes::from(line))
            .await
            .map_err(|e| ClusterError::store("relaying a subscription", e))
    }

    /// Whether an entry node still watches `subject`: `Some(false)` when nobody answers
    /// (its client left, or the node is gone), `None` when the question itself failed.
    pub async fn watched(&self, subject: &str) -> Option<bool> {
        let asked = self
            .inner
            .client
            .request(format!("{subject}.alive"), Bytes::new());
        match tokio::time::timeout(self.inner.heartbeat * 2, asked).await {
            Ok(Ok(_)) => Some(true),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => Some(false),
            Ok(Err(_)) | Err(_) => None,
        }
    }
}
