//! Membership: this node's record in `ais_nodes`, claimed at join, renewed by each heartbeat
//! with its sessions and load, and the list of every live node.

use ai_session_protocol::cluster::NodeInfo;
use async_nats::jetstream::kv;

use crate::{Cluster, ClusterError, now_ms};

/// The key of a node's record.
pub(crate) fn key(node: &str) -> String {
    format!("node.{node}")
}

impl Cluster {
    fn record(&self, sessions: Vec<String>) -> NodeInfo {
        NodeInfo {
            node: self.inner.node.clone(),
            host: self.inner.host.clone(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            sessions,
            load: load_average(),
            boot: self.inner.boot.clone(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            heartbeat_ms: now_ms(),
            joined_ms: self.inner.joined_ms,
            sandbox: self
                .inner
                .sandbox
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    /// Says in this node's record, from its next heartbeat on, which sandboxed sessions it
    /// takes (placement reads it).
    pub fn set_sandbox(&self, sandbox: ai_session_protocol::cluster::NodeSandbox) {
        *self
            .inner
            .sandbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(sandbox);
    }

    /// Claims the node name: free, or held by a daemon of this host that is gone (a crash
    /// less than a lease ago). Any other holder is a live daemon: refused.
    pub(crate) async fn claim_node(&self) -> Result<(), ClusterError> {
        let key = key(&self.inner.node);
        let value = encode(&self.record(Vec::new()))?;
        let nodes = &self.inner.nodes;
        match nodes.create(&key, value.clone().into()).await {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(ClusterError::store("claiming the node name", e)),
        }
        let entry = nodes
            .entry(&key)
            .await
            .map_err(|e| ClusterError::store("reading a node record", e))?;
        let Some(entry) = entry else {
            nodes
                .put(&key, value.into())
                .await
                .map_err(|e| ClusterError::store("claiming the node name", e))?;
            return Ok(());
        };
        if let Ok(other) = serde_json::from_slice::<NodeInfo>(&entry.value) {
            let gone = other.host == self.inner.host && !process_alive(other.pid);
            if !gone {
                return Err(ClusterError::NodeTaken {
                    node: self.inner.node.clone(),
                    host: other.host,
                    pid: other.pid,
                    age_ms: now_ms().saturating_sub(other.heartbeat_ms),
                });
            }
        }
        nodes
            .update(&key, value.into(), entry.revision)
            .await
            .map_err(|e| ClusterError::store("claiming the node name", e))?;
        Ok(())
    }

    /// Renews this node's record (its sessions and load) and the leases of its sessions:
    /// `sessions` is every local session, as (name, id).
    pub async fn heartbeat(&self, sessions: &[(String, String)]) -> Result<(), ClusterError> {
        let names = sessions.iter().map(|(n, _)| n.clone()).collect();
        let value = encode(&self.record(names))?;
        self.inner
            .nodes
            .put(key(&self.inner.node), value.into())
            .await
            .map_err(|e| ClusterError::store("renewing the node record", e))?;
        self.renew_leases(sessions).await
    }

    /// Every node whose last heartbeat is younger than the lease, sorted by name.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, ClusterError> {
        let nodes = &self.inner.nodes;
        let names = crate::keys::keys(nodes, "node.", "listing nodes").await?;
        let oldest = now_ms().saturating_sub(self.inner.lease.as_millis() as u64);
        let mut list = Vec::new();
        for key in names {
            let value = nodes
                .get(&key)
                .await
                .map_err(|e| ClusterError::store("reading a node record", e))?;
            let Some(value) = value else { continue };
            match serde_json::from_slice::<NodeInfo>(&value) {
                Ok(info) if info.heartbeat_ms >= oldest => list.push(info),
                Ok(_) => {}
                Err(e) => tracing::warn!("unreadable node record {key}: {e}"),
            }
        }
        list.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(list)
    }
}

pub(crate) fn encode(value: &impl serde::Serialize) -> Result<Vec<u8>, ClusterError> {
    serde_json::to_vec(value).map_err(|e| ClusterError::Codec(e.to_string()))
}

/// The host's one-minute load average (0 when `/proc/loadavg` cannot be read).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
