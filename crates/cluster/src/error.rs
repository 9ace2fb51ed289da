//! Why a cluster operation failed.

use std::path::PathBuf;

/// What went wrong talking to the cluster. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A `[cluster]` value or a `--node` name is unusable (returned by [`crate::Cluster::join`]);
    /// fix the setting the message names.
    #[error("{0}")]
    Config(String),
    /// A file the settings name (certificates, keys) could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The NATS server could not be reached or refused the node (address, TLS).
    #[error(
        "cannot join the cluster at {url}: {reason}; check that nats-server runs there with -js, and the node's TLS settings and credentials ([cluster] creds_file or nkey_file)"
    )]
    Connect { url: String, reason: String },
    /// JetStream (the key-value buckets) failed: the server runs without `-js`, or is full.
    #[error("the cluster's JetStream store failed ({what}): {reason}")]
    Store { what: String, reason: String },
    /// Another live daemon already uses this node name.
    #[error(
        "node name '{node}' is already in the cluster (daemon {pid} on {host}, heartbeat {age_ms} ms ago); give this daemon another --node"
    )]
    NodeTaken {
        node: String,
        host: String,
        pid: u32,
        age_ms: u64,
    },
    /// The session name is leased by another node.
    #[error("session '{name}' already exists on node '{node}'")]
    NameTaken { name: String, node: String },
    /// The node owning a session did not answer a forwarded request.
    #[error("node '{node}' did not answer: {reason}")]
    Unreachable { node: String, reason: String },
    /// A message between nodes could not be encoded or decoded (nodes of different versions).
    #[error("a cluster message could not be read: {0}")]
    Codec(String),
}

impl ClusterError {
    pub(crate) fn store(what: &str, e: impl std::fmt::Display) -> Self {
        ClusterError::Store {
            what: what.to_string(),
            reason: e.to_string(),
        }
    }
}
