//! Snapshots anywhere. When clustered, `snapshot create` also puts the snapshot, as the
//! session's export (what a checkpoint holds: cwd, history, scrollback, the shell's exported
//! environment), into the object store `ais_checkpoints` under `snap.ID`, and its description
//! (with the node that took it) into the bucket `ais_snapshots`. Neither expires, and neither
//! goes with the node: `snapshot ls` on any node lists them, `snapshot restore` on any node
//! starts one.

use ai_session_protocol::persist::SnapshotInfo;
use async_nats::jetstream::{self, kv};

use crate::checkpoint::Saved;
use crate::node::encode;
use crate::{Cluster, ClusterError};

/// The bucket of snapshot descriptions.
pub(crate) const INDEX: &str = "ais_snapshots";

/// The key of snapshot `id`, in the bucket and the object store (ids are letters and digits).
fn key(id: &str) -> String {
    format!("snap.{}", id.replace('.', "="))
}

/// Opens (or creates) the bucket of snapshot descriptions: no expiry.
pub(crate) async fn index(js: &jetstream::Context) -> Result<kv::Store, ClusterError> {
    crate::bucket(js, INDEX, std::time::Duration::ZERO).await
}

impl Cluster {
    async fn snapshot_index(&self) -> Result<kv::Store, ClusterError> {
        jetstream::new(self.inner.client.clone())
            .get_key_value(INDEX)
            .await
            .map_err(|e| ClusterError::store(INDEX, e))
    }

    /// Puts snapshot `info` (taken on this node) and its contents into the cluster.
    pub async fn put_snapshot(
        &self,
        info: &SnapshotInfo,
        saved: &Saved,
    ) -> Result<(), ClusterError> {
        let failed = |e: &dyn std::fmt::Display| ClusterError::store("writing a snapshot", e);
        let mut info = info.clone();
        info.node = Some(self.inner.node.clone());
        let data = saved.encode();
        self.put_object(&key(&info.id), &data, "writing a snapshot")
            .await?;
        self.snapshot_index()
            .await?
            .put(key(&info.id), encode(&info)?.into())
            .await
            .map_err(|e| failed(&e))?;
        Ok(())
    }

    /// Every snapshot in the cluster, oldest first, each with its node.
    pub async fn snapshots(&self) -> Result<Vec<SnapshotInfo>, ClusterError> {
        let index = self.snapshot_index().await?;
        let keys = crate::keys::keys(&index, "snap.", "listing snapshots").await?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let value = index
                .get(&key)
                .await
                .map_err(|e| ClusterError::store("reading a snapshot", e))?;
            let Some(value) = value else { continue };
            match serde_json::from_slice::<SnapshotInfo>(&value) {
                Ok(info) => out.push(info),
                Err(e) => tracing::warn!("unreadable snapshot description {key}: {e}"),
            }
        }
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }

    /// The contents of snapshot `id`.
    pub async fn read_snapshot(&self, id: &str) -> Result<Saved, ClusterError> {
        self.read_saved(&key(id), "reading a snapshot").await
    }

    /// Removes snapshot `id` (its description and its contents) from the cluster: `snapshot
    /// prune` on the node that took it.
    pub async fn drop_snapshot(&self, id: &str) -> Result<(), ClusterError> {
        self.snapshot_index()
            .await?
            .delete(key(id))
            .await
            .map_err(|e| ClusterError::store("removing a snapshot", e))?;
        self.delete_object(&key(id)).await
    }
}
