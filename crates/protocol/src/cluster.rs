//! The cluster's wire types: the nodes a clustered daemon sees (`cluster.nodes`), as each one
//! last announced itself in the cluster's node bucket.

use serde::{Deserialize, Serialize};

/// One daemon of the cluster, from its last heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NodeInfo {
    /// The node's name (`--node`), unique in the cluster.
    pub node: String,
    /// The host it runs on.
    pub host: String,
    /// The daemon's process id on that host.
    pub pid: u32,
    /// The daemon's version.
    pub version: String,
    /// The sessions it owns, by name.
    pub sessions: Vec<String>,
    /// The host's one-minute load average when the heartbeat left.
    pub load: f64,
    /// The id of the kernel the node runs on (`/proc/sys/kernel/random/boot_id`); empty from
    /// a node that does not say. Nodes with the same one read the same load average, so
    /// placement compares them on the newest of their samples.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub boot: String,
    /// The processors the daemon may use (placement compares `load` per processor); 0 from
    /// a node that does not say.
    #[serde(default)]
    pub cpus: u32,
    /// Unix time in milliseconds of the node's last heartbeat.
    pub heartbeat_ms: u64,
    /// Unix time in milliseconds when the daemon joined.
    pub joined_ms: u64,
    /// The sandboxed sessions placement may start here; absent from a node that does not
    /// say (it takes any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<NodeSandbox>,
}

/// What sandboxed sessions a node runs, as placement reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NodeSandbox {
    /// The sandbox policies it takes: built-in profile names, and `custom` for a policy
    /// given in TOML (`[cluster] sandbox_policies`).
    pub policies: Vec<String>,
    /// The sandbox mechanisms its host lacks (empty: it enforces every protection a policy
    /// can ask for); a policy that forbids degrading is not placed on a node lacking any.
    #[serde(default)]
    pub missing: Vec<String>,
}

/// A session whose node left the cluster without stopping it (killed, cut off): its lease
/// expired, its last checkpoint remains, and `cluster.restore` brings it back on any node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LostSession {
    pub name: String,
    /// Its id on the node it was lost with.
    pub id: String,
    /// The node it ran on.
    pub node: String,
    /// Unix time in milliseconds of its last checkpoint.
    pub checkpoint_ms: u64,
    /// The size of the checkpoint's record, in bytes.
    pub bytes: u64,
}

/// `cluster.restore`: bring lost session `name` back from its last checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RestoreLostParams {
    /// The lost session's name.
    pub name: String,
    /// The node to start it on (default: the node asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The restored session's name (default: its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_name: Option<String>,
}

/// A node that did not answer a cluster-wide request in time (`session.list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Unanswered {
    pub node: String,
    pub reason: String,
}

/// `cluster.nodes`: every live node, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NodesResult {
    /// The node that answered.
    pub node: String,
    /// Every node whose last heartbeat is younger than the lease, sorted by name.
    pub nodes: Vec<NodeInfo>,
    /// The lost sessions, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<LostSession>,
}
