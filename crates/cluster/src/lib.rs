//! Several ai-session daemons as one cluster over NATS JetStream.
//!
//! A daemon that joins ([`Cluster::join`]) announces itself in the key-value bucket
//! `ais_nodes` (its record expires one lease after its last heartbeat), holds a lease on each
//! of its sessions in `ais_sessions` (session name and id to owning node, renewed by every
//! heartbeat, so a dead node's sessions are free again after one lease), and answers requests
//! other nodes forward to it on the subject `ais.node.NAME.call` (NATS request/reply). The
//! daemon decides what to forward and serves what it is forwarded; this crate only moves it.

mod agents;
mod bus;
mod call;
pub mod checkpoint;
mod directory;
mod error;
mod gather;
mod journal;
mod keys;
mod node;
pub mod placement;
mod recent;
mod relay;
mod relayed;
mod snapshots;
mod tasks;
#[cfg(feature = "test-server")]
pub mod testing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ai_session_protocol::config::ClusterConfig;
use async_nats::jetstream::{self, kv};

pub use agents::AgentRecord;
pub use bus::{BusInbox, BusIncoming, BusRoute, Envelope, topic_token};
pub use call::{Forward, Inbox, Incoming, Origin};
pub use directory::Lease;
pub use error::ClusterError;
pub use gather::{Asked, Gathered, Question};
pub use recent::RecentMessage;
pub use relay::{Watch, relay_subject};
pub use relayed::{Frame, Receipt, StreamSink, StreamSource};
pub use tasks::{Backoff, NewTask, TaskError, TaskRecord, Worker};

/// The bucket of node records.
const NODES: &str = "ais_nodes";
/// The bucket of session leases.
const SESSIONS: &str = "ais_sessions";
/// How long joining may take before the daemon gives up and says why.
const CONNECT: Duration = Duration::from_secs(10);
/// How long leaving may take at shutdown.
const LEAVE: Duration = Duration::from_secs(3);

/// A daemon's membership of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    url: String,
    node: String,
    host: String,
    boot: String,
    joined_ms: u64,
    heartbeat: Duration,
    lease: Duration,
    nodes: kv::Store,
    sessions: kv::Store,
    /// Session checkpoints (`checkpoint.rs`): headers, and the saved records.
    index: kv::Store,
    objects: async_nats::jetstream::object_store::ObjectStore,
    /// The session leases this node holds: name to id (empty until the session exists).
    held: Mutex<HashMap<String, String>>,
    /// Agents, their ids and tokens (`agents.rs`).
    coordination: agents::Coordination,
    /// The sandboxed sessions this node takes, for its record (`node.rs`).
    sandbox: Mutex<Option<ai_session_protocol::cluster::NodeSandbox>>,
}

impl Cluster {
    /// Connects to the NATS server at `url` as node `node`, opens (or creates) the buckets and
    /// claims the node name. Fails when the name is held by another live daemon.
    pub async fn join(
        config: &ClusterConfig,
        url: &str,
        node: &str,
    ) -> Result<Cluster, ClusterError> {
        check_node_name(node)?;
        config.check().map_err(ClusterError::Config)?;
        let client = connect(config, url, node).await?;
        let js = jetstream::new(client.clone());
        let lease = Duration::from_secs_f64(config.lease_secs);
        let nodes = bucket(&js, NODES, lease).await?;
        let sessions = bucket(&js, SESSIONS, lease).await?;
        let coordination = agents::Coordination::open(&js, lease, config).await?;
        bus::dead_letter_stream(&js).await?;
        recent::stream(&js).await?;
        let index = checkpoint::index(&js).await?;
        let objects = checkpoint::objects(&js).await?;
        journal::stream(&js).await?;
        snapshots::index(&js).await?;
        let cluster = Cluster {
            inner: Arc::new(Inner {
                client,
                url: url.to_string(),
                node: node.to_string(),
                host: host_name(),
                boot: boot_id(),
                joined_ms: now_ms(),
                heartbeat: Duration::from_secs_f64(config.heartbeat_secs),
                lease,
                nodes,
                sessions,
                index,
                objects,
                held: Mutex::new(HashMap::new()),
                coordination,
                sandbox: Mutex::new(None),
            }),
        };
        cluster.claim_node().await?;
        Ok(cluster)
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.inner.node
    }

    /// The NATS server's address.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// How often [`Cluster::heartbeat`] should run.
    pub fn heartbeat_interval(&self) -> Duration {
        self.inner.heartbeat
    }

    /// How long a record or a lease lives without a heartbeat.
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// Leaves the cluster: the node record and every lease this node holds are deleted, so
    /// the names are free at once instead of after a lease.
    pub async fn leave(&self) {
        // Bounded: with the server unreachable the client would wait for it forever, and a
        // daemon that stops must not (its leases expire by themselves).
        if tokio::time::timeout(LEAVE, self.leave_now()).await.is_err() {
            tracing::warn!(
                "the cluster did not answer in {} s: this node's leases will expire",
                LEAVE.as_secs()
            );
        }
    }

    async fn leave_now(&self) {
        let held: Vec<(String, String)> = self.held().drain().collect();
        for (name, id) in held {
            // A node that stops takes its sessions with it (they come back when it starts
            // again): they are not lost.
            self.drop_checkpoint(&name).await;
            self.drop_lease(&name, &id).await;
        }
        if let Err(e) = self.inner.nodes.delete(node::key(&self.inner.node)).await {
            tracing::warn!("cannot remove this node's record: {e}");
        }
        if let Err(e) = self.inner.client.flush().await {
            tracing::warn!("cannot flush the cluster connection: {e}");
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.inner
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A node name is a NATS subject token and a key: 1-64 letters, digits, `_` or `-`.
fn check_node_name(node: &str) -> Result<(), ClusterError> {
    let ok = !node.is_empty()
        && node.len() <= 64
        && node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ClusterError::Config(format!(
            "invalid node name '{node}': use 1-64 letters, digits, '_' or '-' (--node or [cluster] node)"
        )))
    }
}

/// The default node name: the host name up to its first dot, made a valid node name.
pub fn default_node_name() -> String {
    let host = host_name();
    let short: String = host
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if short.is_empty() {
        "node".into()
    } else {
        short
    }
}

/// The running kernel's boot id (empty when it cannot be read): shared by every process,
/// container or not, that reads this kernel's load average.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_string())
        .unwrap_or_default()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

async fn connect(
    config: &ClusterConfig,
    url: &str,
    node: &str,
) -> Result<async_nats::Client, ClusterError> {
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("ai-session node {node}"))
        .connection_timeout(Duration::from_secs(5));
    if let Some(ca) = &config.tls_ca {
        readable(ca)?;
        options = options.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        readable(cert)?;
        readable(key)?;
        options = options
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    options = credentials(config, options).await?;
    let failed = |reason: String| ClusterError::Connect {
        url: url.to_string(),
        reason,
    };
    match tokio::time::timeout(CONNECT, options.connect(url)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed(format!("no answer in {} s", CONNECT.as_secs()))),
    }
}

/// The node's NATS identity: a `.creds` file (user JWT and nkey seed) or an nkey seed file.
async fn credentials(
    config: &ClusterConfig,
    options: async_nats::ConnectOptions,
) -> Result<async_nats::ConnectOptions, ClusterError> {
    fn file(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ClusterError + '_ {
        move |source| ClusterError::File {
            path: path.to_owned(),
            source,
        }
    }
    if let Some(creds) = &config.creds_file {
        return options.credentials_file(creds).await.map_err(file(creds));
    }
    if let Some(path) = &config.nkey_file {
        let seed = std::fs::read_to_string(path).map_err(file(path))?;
        let seed = seed.trim();
        if !seed.starts_with("SU") {
            return Err(ClusterError::Config(format!(
                "[cluster] nkey_file {} does not hold a user nkey seed (a line starting SU...)",
                path.display()
            )));
        }
        return Ok(options.nkey(seed.to_string()));
    }
    Ok(options)
}

fn readable(path: &std::path::Path) -> Result<(), ClusterError> {
    std::fs::metadata(path)
        .map(drop)
        .map_err(|source| ClusterError::File {
            path: path.to_owned(),
            source,
        })
}

/// Creates the file-backed stream `name` on `subjects`, oldest messages discarded first, unless
/// the cluster has it already; `limits` gives its bounds (age, bytes, messages).
async fn log_stream(
    js: &jetstream::Context,
    name: &str,
    subjects: &str,
    limits: jetstream::stream::Config,
) -> Result<(), ClusterError> {
    let config = jetstream::stream::Config {
        name: name.to_string(),
        subjects: vec![subjects.to_string()],
        max_message_size: -1,
        storage: jetstream::stream::StorageType::File,
        discard: jetstream::stream::DiscardPolicy::Old,
        allow_direct: true,
        num_replicas: 1,
        ..limits
    };
    js.get_or_create_stream(config)
        .await
        .map(drop)
        .map_err(|e| ClusterError::store(name, e))
}

/// Opens a bucket, creating it with `lease` as its entries' lifetime. A bucket another node
/// created with another lifetime is refused: the nodes of a cluster must agree on the lease.
async fn bucket(
    js: &jetstream::Context,
    name: &str,
    lease: Duration,
) -> Result<kv::Store, ClusterError> {
    bucket_keeping(js, name, lease, 1, false).await
}

/// [`bucket`] keeping the last `history` values of each key (`tasks.rs`: so that a watch
/// that falls behind still gets every change); `deletable`: single messages of its stream
/// may be deleted (`tasks.rs` removes a pruned task's that way rather than by a purge).
async fn bucket_keeping(
    js: &jetstream::Context,
    name: &str,
    lease: Duration,
    history: i64,
    deletable: bool,
) -> Result<kv::Store, ClusterError> {
    if let Ok(store) = js.get_key_value(name).await {
        let status = store
            .status()
            .await
            .map_err(|e| ClusterError::store(name, e))?;
        let age = status.max_age();
        if age != lease {
            return Err(ClusterError::Config(format!(
                "the cluster's lease is {} s (bucket {name}) and this node's lease_secs is {} s: \
                 set [cluster] lease_secs = {} on every node",
                age.as_secs_f64(),
                lease.as_secs_f64(),
                age.as_secs_f64()
            )));
        }
        if status.history() < history {
            // A bucket an earlier version made keeping fewer values: kept longer from now on.
            // (One that denies deletes stays so: a server never lifts that; `tasks.rs` copes.)
            let failed = |e: &dyn std::fmt::Display| ClusterError::store(name, e);
            let mut stream = js
                .get_stream(format!("KV_{name}"))
                .await
                .map_err(|e| failed(&e))?;
            let mut config = stream.info().await.map_err(|e| failed(&e))?.config.clone();
            config.max_messages_per_subject = history;
            js.update_stream(config).await.map_err(|e| failed(&e))?;
        }
        return Ok(store);
    }
    // The bucket's stream, as the key-value layer lays it out, created directly: the
    // client's `create_key_value` first reads account fields that servers before 2.10 (as
    // Debian's) do not send.
    let stream = jetstream::stream::Config {
        name: format!("KV_{name}"),
        subjects: vec![format!("$KV.{name}.>")],
        max_messages_per_subject: history,
        max_bytes: -1,
        max_message_size: -1,
        max_age: lease,
        storage: jetstream::stream::StorageType::File,
        allow_rollup: true,
        deny_delete: !deletable,
        allow_direct: true,
        num_replicas: 1,
        discard: jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    };
    js.get_or_create_stream(stream)
        .await
        .map_err(|e| ClusterError::store(name, e))?;
    js.get_key_value(name)
        .await
        .map_err(|e| ClusterError::store(name, e))
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Waits until the server has processed everything this client sent before (its
/// subscriptions above all). `flush` only empties the client's socket buffer: the server may
/// read it later than a message another connection publishes meanwhile, which the new
/// subscription would then miss. A request on a fresh subject nobody listens to is answered
/// "no responders" by the server in order on this connection, after the earlier commands.
pub(crate) async fn round_trip(
    client: &async_nats::Client,
    what: &str,
) -> Result<(), ClusterError> {
    match client
        .request(client.new_inbox(), bytes::Bytes::new())
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(ClusterError::store(what, e)),
    }
}
