//! `[cluster]`: joining a cluster of daemons over NATS JetStream (see `docs/cluster.md`).
//! Without a `url` (the default) the daemon is alone, as it always was: nothing connects,
//! nothing is started.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[cluster]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// The NATS server to join through, `nats://HOST:PORT` (or `tls://`); `--cluster` overrides
    /// it. Not clustered when absent.
    pub url: Option<String>,
    /// This daemon's node name, unique in the cluster; `--node` overrides it. The host name
    /// when absent.
    pub node: Option<String>,
    /// A PEM file of the certificate authorities the NATS server's certificate must chain to;
    /// setting it (or `tls_cert`) requires TLS.
    pub tls_ca: Option<PathBuf>,
    /// The node's client certificate (PEM), for a server that verifies clients; with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// A NATS credentials file (`.creds`: a user JWT and its nkey seed) the node authenticates
    /// to the server with; `--creds` overrides it.
    pub creds_file: Option<PathBuf>,
    /// A file holding an nkey seed (`SU...`) the node authenticates to the server with, for a
    /// server whose `authorization` lists users by nkey. Not with `creds_file`.
    pub nkey_file: Option<PathBuf>,
    /// A file of at least 32 secret bytes, the same on every node: agent tokens are derived
    /// from it, so that an agent's token works on every node. Without it, an agent's token
    /// works only on the node it registered on.
    pub secret_file: Option<PathBuf>,
    /// Seconds between two heartbeats (node record and session leases renewed).
    pub heartbeat_secs: f64,
    /// Seconds after its last heartbeat when a node, and the leases on its sessions, expire.
    /// At least twice `heartbeat_secs`.
    pub lease_secs: f64,
    /// Seconds a finished task (done, failed, dead-lettered) stays in the cluster's tasks
    /// after its last change before it is removed; a task with a child not finished yet stays
    /// until the child finishes.
    pub task_retention_secs: f64,
    /// The sandbox policies this node takes for sessions placed without `--node`: built-in
    /// profile names and `custom` (a policy given in TOML). Every one when absent; `[]` for a
    /// node that takes no sandboxed session by placement.
    pub sandbox_policies: Option<Vec<String>>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            url: None,
            node: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            creds_file: None,
            nkey_file: None,
            secret_file: None,
            heartbeat_secs: 2.0,
            lease_secs: 10.0,
            task_retention_secs: 86_400.0,
            sandbox_policies: None,
        }
    }
}

impl ClusterConfig {
    /// Checks the values that the file's types do not: a usable timing and a complete TLS
    /// identity. The message names the key and what to write.
    pub fn check(&self) -> Result<(), String> {
        if !(self.heartbeat_secs.is_finite() && self.heartbeat_secs >= 0.1) {
            return Err(format!(
                "[cluster] heartbeat_secs = {} is out of range: use 0.1 or more",
                self.heartbeat_secs
            ));
        }
        if !(self.lease_secs.is_finite() && self.lease_secs >= 2.0 * self.heartbeat_secs) {
            return Err(format!(
                "[cluster] lease_secs = {} must be at least twice heartbeat_secs ({})",
                self.lease_secs, self.heartbeat_secs
            ));
        }
        if !(self.task_retention_secs.is_finite() && self.task_retention_secs >= 0.0) {
            return Err(format!(
                "[cluster] task_retention_secs = {} is out of range: use 0 or more seconds",
                self.task_retention_secs
            ));
        }
        if self.creds_file.is_some() && self.nkey_file.is_some() {
            return Err(
                "[cluster] creds_file and nkey_file are two ways to authenticate: set one".into(),
            );
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("[cluster] tls_cert and tls_key go together: set both or neither".into());
        }
        Ok(())
    }
}
