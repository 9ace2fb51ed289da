//! Checkpoints of sessions, so that a node's sessions outlive the node.
//!
//! The owner of a session writes its checkpoint (the session's exported record: cwd,
//! history, scrollback, with the shell's exported environment) to the JetStream object store
//! `ais_checkpoints`, and a header (session, id, node, time, size) to the key-value bucket
//! `ais_checkpoint_index`, under the session's name. Neither expires. A session whose
//! checkpoint has no lease in `ais_sessions` is **lost**: its node died (or was cut off) and
//! its lease expired. `restore --from-lost` claims the name (an atomic create in
//! `ais_sessions`: of two nodes restoring at once, one wins) and starts the session from the
//! checkpoint on the claiming node, whose own checkpoints then replace it.

use async_nats::jetstream::{self, kv, object_store};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::node::encode;
use crate::{Cluster, ClusterError};

/// The object store of checkpoints.
pub(crate) const OBJECTS: &str = "ais_checkpoints";
/// The key-value bucket of checkpoint headers.
pub(crate) const INDEX: &str = "ais_checkpoint_index";

/// What a checkpoint holds, and whose it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The session's name (the key).
    pub name: String,
    /// The session's id on the node that wrote it.
    pub id: String,
    /// The node that owned the session.
    pub node: String,
    /// Unix time in milliseconds when it was written.
    pub taken_ms: u64,
    /// The size of the exported record, in bytes.
    pub bytes: u64,
}

/// A checkpoint's contents: the exported record and the shell's exported environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub record: Vec<u8>,
    pub environment: Option<Vec<u8>>,
}

impl Saved {
    /// One object: the environment's length (u32, little-endian, `u32::MAX` for none), the
    /// environment, the record.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let env = self.environment.as_deref();
        let mut out = Vec::with_capacity(4 + env.map_or(0, <[u8]>::len) + self.record.len());
        out.extend_from_slice(&env.map_or(u32::MAX, |e| e.len() as u32).to_le_bytes());
        out.extend_from_slice(env.unwrap_or_default());
        out.extend_from_slice(&self.record);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Saved, ClusterError> {
        let bad = || ClusterError::Codec("a checkpoint is truncated".into());
        let (len, rest) = bytes.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = u32::from_le_bytes(*len);
        if len == u32::MAX {
            return Ok(Saved {
                record: rest.to_vec(),
                environment: None,
            });
        }
        let len = len as usize;
        let environment = rest.get(..len).ok_or_else(bad)?.to_vec();
        Ok(Saved {
            record: rest[len..].to_vec(),
            environment: Some(environment),
        })
    }
}

fn key(name: &str) -> String {
    format!("name.{}", name.replace('.', "="))
}

/// Opens (or creates) the object store, its stream laid out as the object layer expects,
/// created directly for the same reason as the buckets (`crate::bucket`).
pub(crate) async fn objects(
    js: &jetstream::Context,
) -> Result<object_store::ObjectStore, ClusterError> {
    if let Ok(store) = js.get_object_store(OBJECTS).await {
        return Ok(store);
    }
    let stream = jetstream::stream::Config {
        name: format!("OBJ_{OBJECTS}"),
        subjects: vec![format!("$O.{OBJECTS}.C.>"), format!("$O.{OBJECTS}.M.>")],
        max_bytes: -1,
        max_message_size: -1,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        allow_direct: true,
        num_replicas: 1,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    };
    js.get_or_create_stream(stream)
        .await
        .map_err(|e| ClusterError::store(OBJECTS, e))?;
    js.get_object_store(OBJECTS)
        .await
        .map_err(|e| ClusterError::store(OBJECTS, e))
}

impl Cluster {
    /// Writes the checkpoint of session `name` (id `id`), owned by this node.
    pub async fn put_checkpoint(
        &self,
        name: &str,
        id: &str,
        saved: &Saved,
    ) -> Result<(), ClusterError> {
        let data = saved.encode();
        let header = Checkpoint {
            name: name.to_string(),
            id: id.to_string(),
            node: self.inner.node.clone(),
            taken_ms: crate::now_ms(),
            bytes: saved.record.len() as u64,
        };
        self.put_object(&key(name), &data, "writing a checkpoint")
            .await?;
        self.inner
            .index
            .put(key(name), encode(&header)?.into())
            .await
            .map_err(|e| ClusterError::store("writing a checkpoint", e))?;
        Ok(())
    }

    /// The header of session `name`'s checkpoint, if there is one.
    pub async fn checkpoint_of(&self, name: &str) -> Result<Option<Checkpoint>, ClusterError> {
        let value = self
            .inner
            .index
            .get(key(name))
            .await
            .map_err(|e| ClusterError::store("reading a checkpoint", e))?;
        value
            .map(|v| serde_json::from_slice(&v).map_err(|e| ClusterError::Codec(e.to_string())))
            .transpose()
    }

    /// The contents of session `name`'s checkpoint.
    pub async fn read_checkpoint(&self, name: &str) -> Result<Saved, ClusterError> {
        self.read_saved(&key(name), "reading a checkpoint").await
    }

    /// Writes `data` as the object `key` of the object store (`doing` names the failure).
    pub(crate) async fn put_object(
        &self,
        key: &str,
        data: &[u8],
        doing: &str,
    ) -> Result<(), ClusterError> {
        self.inner
            .objects
            .put(key, &mut &data[..])
            .await
            .map(drop)
            .map_err(|e| ClusterError::store(doing, e))
    }

    /// Reads and decodes the object `key` of the object store (`doing` names the failure).
    pub(crate) async fn read_saved(&self, key: &str, doing: &str) -> Result<Saved, ClusterError> {
        let failed = |e: &dyn std::fmt::Display| ClusterError::store(doing, e);
        let mut object = self.inner.objects.get(key).await.map_err(|e| failed(&e))?;
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| failed(&e))?;
        Saved::decode(&bytes)
    }

    /// Removes the object `key` of the object store; one already gone is not an error.
    pub(crate) async fn delete_object(&self, key: &str) -> Result<(), ClusterError> {
        match self.inner.objects.delete(key).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == object_store::DeleteErrorKind::NotFound => Ok(()),
            Err(e) => Err(ClusterError::store("removing an object", e)),
        }
    }

    /// Forgets session `name`'s checkpoint (a session killed on purpose is not lost).
    pub async fn drop_checkpoint(&self, name: &str) {
        if let Err(e) = self.inner.index.delete(key(name)).await {
            tracing::warn!("cannot remove the checkpoint of session {name}: {e}");
        }
        if let Err(e) = self.delete_object(&key(name)).await {
            tracing::warn!("cannot remove the checkpoint of session {name}: {e}");
        }
    }

    /// The lost sessions: every checkpoint whose session no live node leases, by name.
    pub async fn lost(&self) -> Result<Vec<Checkpoint>, ClusterError> {
        let keys = crate::keys::keys(&self.inner.index, "name.", "listing checkpoints").await?;
        let mut lost = Vec::new();
        for key in keys {
            let value = self
                .inner
                .index
                .get(&key)
                .await
                .map_err(|e| ClusterError::store("reading a checkpoint", e))?;
            let Some(value) = value else { continue };
            let header: Checkpoint = match serde_json::from_slice(&value) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!("unreadable checkpoint header {key}: {e}");
                    continue;
                }
            };
            if self.owner(&header.name).await?.is_none() {
                lost.push(header);
            }
        }
        lost.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(lost)
    }
}

/// Opens (or creates) the bucket of checkpoint headers: no expiry.
pub(crate) async fn index(js: &jetstream::Context) -> Result<kv::Store, ClusterError> {
    crate::bucket(js, INDEX, std::time::Duration::ZERO).await
}

#[cfg(test)]
mod tests {
    use super::Saved;

    #[test]
    fn a_checkpoint_decodes_to_what_was_encoded() {
        for environment in [None, Some(b"export X=1\n".to_vec()), Some(Vec::new())] {
            let saved = Saved {
                record: b"record bytes".to_vec(),
                environment,
            };
            assert_eq!(Saved::decode(&saved.encode()).unwrap(), saved);
        }
        assert!(Saved::decode(&[1, 0]).is_err());
        assert!(Saved::decode(&[9, 0, 0, 0, 1]).is_err());
    }
}
