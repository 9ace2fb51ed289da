//! The exec journal: no acknowledged exec is lost with its node.
//!
//! A checkpoint is written every heartbeat, so an exec answered less than a heartbeat before
//! its node dies would not be in it. When clustered, the owner therefore also publishes each
//! exec's history record to the JetStream stream `AIS_EXECS` (file storage, subject
//! `ais.exec.SESSION_ID`) and waits for JetStream's acknowledgement before the exec answers.
//! A checkpoint purges the records it holds (those published before it was exported), so the
//! journal keeps only what happened since each session's last checkpoint; `restore
//! --from-lost` adds those records to the restored session's history. The stream is bounded
//! anyway (age, bytes, records per session) in case a node dies between the two.

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;

use crate::{Cluster, ClusterError};

/// The stream of exec records.
pub(crate) const STREAM: &str = "AIS_EXECS";
/// A record is kept at most this long (a lost session restored later loses its last execs).
const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most the stream holds, oldest records dropped first.
const MAX_BYTES: i64 = 1 << 30;
/// The most records kept per session (one checkpoint interval's worth is what matters).
const PER_SESSION: i64 = 10_000;
/// How long an exec waits for JetStream to acknowledge its record.
const ACK: Duration = Duration::from_secs(5);

/// Creates the exec journal's stream when the cluster has none yet.
pub(crate) async fn stream(js: &jetstream::Context) -> Result<(), ClusterError> {
    let limits = stream::Config {
        max_age: MAX_AGE,
        max_bytes: MAX_BYTES,
        max_messages_per_subject: PER_SESSION,
        ..Default::default()
    };
    crate::log_stream(js, STREAM, "ais.exec.>", limits).await
}

/// The subject of session `id`'s records: the id as one subject token (bytes other than
/// letters, digits, `-` and `_` as `~XX`).
fn subject(id: &str) -> String {
    let mut token = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            token.push(char::from(b));
        } else {
            token.push_str(&format!("~{b:02x}"));
        }
    }
    format!("ais.exec.{token}")
}

impl Cluster {
    fn jetstream(&self) -> jetstream::Context {
        jetstream::new(self.inner.client.clone())
    }

    /// Publishes the history record of an exec of session `id` and returns once JetStream has
    /// it on disk (its acknowledgement), at most [`ACK`] later.
    pub async fn journal_exec(&self, id: &str, record: Vec<u8>) -> Result<(), ClusterError> {
        let failed = |e: &dyn std::fmt::Display| ClusterError::store("journaling an exec", e);
        let publish = async {
            let ack = self
                .jetstream()
                .publish(subject(id), Bytes::from(record))
                .await
                .map_err(|e| failed(&e))?;
            ack.await.map_err(|e| failed(&e))
        };
        match tokio::time::timeout(ACK, publish).await {
            Ok(acked) => acked.map(drop),
            Err(_) => Err(failed(&format!(
                "no acknowledgement in {} s",
                ACK.as_secs()
            ))),
        }
    }

    /// The last journal sequence of session `id`, to be passed to [`Cluster::journal_checkpointed`]
    /// once a checkpoint exported after this call is written; `None` when it has no records.
    pub async fn journal_mark(&self, id: &str) -> Result<Option<u64>, ClusterError> {
        let stream = self.journal().await?;
        match stream.direct_get_last_for_subject(subject(id)).await {
            Ok(message) => Ok(Some(message.sequence)),
            Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClusterError::store("reading the exec journal", e)),
        }
    }

    /// Drops session `id`'s records up to `mark` (inclusive): a checkpoint holds them now.
    pub async fn journal_checkpointed(&self, id: &str, mark: u64) -> Result<(), ClusterError> {
        let stream = self.journal().await?;
        stream
            .purge()
            .filter(subject(id))
            .sequence(mark + 1)
            .await
            .map(drop)
            .map_err(|e| ClusterError::store("trimming the exec journal", e))
    }

    /// Drops every record of session `id` (killed on purpose: it will not be restored).
    pub async fn journal_forget(&self, id: &str) -> Result<(), ClusterError> {
        let stream = self.journal().await?;
        stream
            .purge()
            .filter(subject(id))
            .await
            .map(drop)
            .map_err(|e| ClusterError::store("trimming the exec journal", e))
    }

    /// Session `id`'s journaled records since its last checkpoint, oldest first.
    pub async fn journaled_execs(&self, id: &str) -> Result<Vec<Bytes>, ClusterError> {
        let stream = self.journal().await?;
        let subject = subject(id);
        let mut records = Vec::new();
        let mut next = Some(1u64);
        loop {
            let message = match stream.direct_get_next_for_subject(&subject, next).await {
                Ok(m) => m,
                Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => break,
                Err(e) => return Err(ClusterError::store("reading the exec journal", e)),
            };
            let message = async_nats::jetstream::message::StreamMessage::try_from(message.message)
                .map_err(|e| ClusterError::store("reading the exec journal", e))?;
            next = message.sequence.checked_add(1);
            records.push(message.payload);
            if next.is_none() {
                break;
            }
        }
        Ok(records)
    }

    async fn journal(&self) -> Result<stream::Stream, ClusterError> {
        self.jetstream()
            .get_stream(STREAM)
            .await
            .map_err(|e| ClusterError::store("opening the exec journal", e))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_session_id_is_one_subject_token() {
        assert_eq!(super::subject("s-12ab"), "ais.exec.s-12ab");
        assert_eq!(super::subject("a.b *>"), "ais.exec.a~2eb~20~2a~3e");
    }
}
