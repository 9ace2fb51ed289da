//! Agents across the cluster: ids handed out by a counter every node shares (bucket `ais_ids`,
//! updated with compare-and-swap, kept forever: an id never names two agents), each node's
//! live agents in the bucket `ais_agents` (renewed by the node's heartbeat while the agent
//! heartbeats, expiring one lease after), and agent tokens derived from the cluster's shared
//! secret so that every node can check a token without it ever crossing the network.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::node::encode;
use crate::{Cluster, ClusterError};

/// The bucket of live agents.
const AGENTS: &str = "ais_agents";
/// The bucket of cluster-wide counters (never expiring).
const IDS: &str = "ais_ids";
/// The counter of agent ids.
const AGENT_COUNTER: &str = "agent";
/// What the HMAC of an agent token covers besides the id, so that the key derives nothing else.
const TOKEN_LABEL: &[u8] = b"ai-session cluster agent token v1\0";
/// A secret shorter than this is refused: it could be guessed.
const MIN_SECRET: usize = 32;
/// Compare-and-swap attempts before giving up on a contended counter.
const CAS_TRIES: usize = 64;

/// An agent as the cluster lists it: the node it registered on, and its record there.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRecord {
    pub node: String,
    pub info: Value,
}

/// The coordination state of the cluster: its buckets and the key agent tokens derive from.
pub(crate) struct Coordination {
    agents: kv::Store,
    ids: kv::Store,
    key: Option<[u8; 32]>,
    /// The agents of this node recorded in `ais_agents`.
    recorded: Mutex<HashSet<u64>>,
    /// The tasks (`tasks.rs`) and this node's view of them.
    pub(crate) tasks: kv::Store,
    pub(crate) view: std::sync::Arc<crate::tasks::TaskView>,
    /// How long finished tasks are kept (`[cluster] task_retention_secs`).
    pub(crate) retention: Duration,
}

impl Coordination {
    /// Opens (or creates) the buckets and reads the shared secret `[cluster] secret_file`.
    pub(crate) async fn open(
        js: &jetstream::Context,
        lease: Duration,
        config: &ai_session_protocol::config::ClusterConfig,
    ) -> Result<Coordination, ClusterError> {
        let key = config.secret_file.as_deref().map(read_secret).transpose()?;
        Ok(Coordination {
            agents: crate::bucket(js, AGENTS, lease).await?,
            ids: crate::bucket(js, IDS, Duration::ZERO).await?,
            key,
            recorded: Mutex::new(HashSet::new()),
            tasks: crate::bucket_keeping(
                js,
                crate::tasks::TASKS,
                Duration::ZERO,
                crate::tasks::HISTORY,
                true,
            )
            .await?,
            view: std::sync::Arc::default(),
            retention: Duration::from_secs_f64(config.task_retention_secs),
        })
    }
}

/// The key agent tokens derive from: SHA-256 of the secret file's contents (at least 32 bytes,
/// surrounding white space ignored).
fn read_secret(path: &std::path::Path) -> Result<[u8; 32], ClusterError> {
    let bytes = std::fs::read(path).map_err(|source| ClusterError::File {
        path: path.to_owned(),
        source,
    })?;
    let secret = bytes.trim_ascii();
    if secret.len() < MIN_SECRET {
        return Err(ClusterError::Config(format!(
            "[cluster] secret_file {} holds {} bytes: it needs at least {MIN_SECRET} random bytes, \
             the same file on every node (make one with `head -c 32 /dev/urandom | base64 > FILE`)",
            path.display(),
            secret.len()
        )));
    }
    Ok(Sha256::digest(secret).into())
}

fn agent_key(id: u64) -> String {
    format!("agent.{id}")
}

impl Cluster {
    pub(crate) fn coordination(&self) -> &Coordination {
        &self.inner.coordination
    }

    /// Whether agent tokens are valid on every node (the cluster has a shared secret).
    pub fn shares_agent_tokens(&self) -> bool {
        self.coordination().key.is_some()
    }

    /// The token of agent `id`, derived from the cluster's secret; `None` without one.
    pub fn agent_token(&self, id: u64) -> Option<[u8; 32]> {
        let key = self.coordination().key.as_ref()?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).ok()?;
        mac.update(TOKEN_LABEL);
        mac.update(&id.to_le_bytes());
        Some(mac.finalize().into_bytes().into())
    }

    /// Whether `token` is agent `id`'s token in this cluster (compared in constant time).
    /// Always false without a shared secret.
    pub fn verify_agent_token(&self, id: u64, token: &[u8; 32]) -> bool {
        let Some(key) = self.coordination().key.as_ref() else {
            return false;
        };
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
            return false;
        };
        mac.update(TOKEN_LABEL);
        mac.update(&id.to_le_bytes());
        mac.verify_slice(token).is_ok()
    }

    /// A new agent id, unique in the cluster and never handed out before, at least `floor`
    /// (the node's own next id, past every id its grants name).
    pub async fn next_agent_id(&self, floor: u64) -> Result<u64, ClusterError> {
        self.next_id(AGENT_COUNTER, floor).await
    }

    /// The next value of the cluster-wide counter `counter`, at least `floor`.
    pub(crate) async fn next_id(&self, counter: &str, floor: u64) -> Result<u64, ClusterError> {
        let ids = &self.coordination().ids;
        let failed = |e: &dyn std::fmt::Display| ClusterError::store("taking an id", e);
        for _ in 0..CAS_TRIES {
            let entry = ids.entry(counter).await.map_err(|e| failed(&e))?;
            let (next, revision) = match &entry {
                Some(e) if e.operation == kv::Operation::Put => {
                    let text = std::str::from_utf8(&e.value).unwrap_or_default();
                    (text.parse::<u64>().unwrap_or(1), Some(e.revision))
                }
                _ => (1, None),
            };
            let id = next.max(floor).max(1);
            let value = (id + 1).to_string().into_bytes();
            let stored = match revision {
                Some(rev) => ids.update(counter, value.into(), rev).await.is_ok(),
                None => ids.create(counter, value.into()).await.is_ok(),
            };
            if stored {
                return Ok(id);
            }
        }
        Err(ClusterError::store(
            "taking an id",
            format!("the counter changed {CAS_TRIES} times while this node tried to take one"),
        ))
    }

    /// Records (or renews) an agent of this node, `info` being its record here.
    pub async fn put_agent(&self, id: u64, info: &Value) -> Result<(), ClusterError> {
        let record = AgentRecord {
            node: self.inner.node.clone(),
            info: info.clone(),
        };
        self.coordination()
            .agents
            .put(agent_key(id), encode(&record)?.into())
            .await
            .map_err(|e| ClusterError::store("recording an agent", e))?;
        self.recorded().insert(id);
        Ok(())
    }

    /// Removes an agent that left this node.
    pub async fn drop_agent(&self, id: u64) {
        self.recorded().remove(&id);
        if let Err(e) = self.coordination().agents.delete(agent_key(id)).await {
            tracing::warn!("cannot remove agent {id} from the cluster: {e}");
        }
    }

    fn recorded(&self) -> std::sync::MutexGuard<'_, HashSet<u64>> {
        self.coordination()
            .recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Renews the records of this node's live agents (`active`: id and record) and removes
    /// those of its agents in `gone` still recorded. Run by every heartbeat.
    pub async fn renew_agents(
        &self,
        active: &[(u64, Value)],
        gone: &[u64],
    ) -> Result<(), ClusterError> {
        for (id, info) in active {
            self.put_agent(*id, info).await?;
        }
        let stale: Vec<u64> = {
            let recorded = self.recorded();
            gone.iter()
                .filter(|id| recorded.contains(id))
                .copied()
                .collect()
        };
        for id in stale {
            self.drop_agent(id).await;
        }
        Ok(())
    }

    /// The live agent `id` wherever it registered, `None` when no node has it.
    pub async fn agent(&self, id: u64) -> Result<Option<AgentRecord>, ClusterError> {
        let value = self
            .coordination()
            .agents
            .get(agent_key(id))
            .await
            .map_err(|e| ClusterError::store("reading an agent", e))?;
        Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Every live agent of every node, by id.
    pub async fn agents(&self) -> Result<Vec<(u64, AgentRecord)>, ClusterError> {
        let agents = &self.coordination().agents;
        let failed = |e: &dyn std::fmt::Display| ClusterError::store("listing agents", e);
        let mut keys = agents.keys().await.map_err(|e| failed(&e))?;
        let mut ids = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| failed(&e))?;
            if let Some(id) = key.strip_prefix("agent.").and_then(|n| n.parse().ok()) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.agent(id).await? {
                out.push((id, record));
            }
        }
        Ok(out)
    }
}
