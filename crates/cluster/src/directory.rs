//! The session directory: in `ais_sessions`, `name.NAME` and `id.ID` map a session to the
//! node that owns it. The owner claims a name before it creates the session (so two nodes
//! never both create it), and renews its leases with every heartbeat; a dead node's leases
//! expire one lease after its last heartbeat.

use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};

use crate::node::encode;
use crate::{Cluster, ClusterError};

/// Who owns a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The owning node.
    pub node: String,
    /// The session's name.
    pub name: String,
    /// The session's id; empty while the session is being created.
    pub id: String,
}

/// A session name as a key: session names may hold dots, which separate key tokens, and
/// never `=`, which stands in for them.
fn name_key(name: &str) -> String {
    format!("name.{}", name.replace('.', "="))
}

fn id_key(id: &str) -> String {
    format!("id.{}", id.replace('.', "="))
}

/// Whether `target` can be a session's name or id (anything else names no session, and would
/// not make a valid key).
fn plausible(target: &str) -> bool {
    !target.is_empty()
        && target.len() <= 64
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// At most this many numbers are tried for a session created without a name.
const MAX_AUTO_NAMES: u64 = 100_000;

impl Cluster {
    fn lease_for(&self, name: &str, id: &str) -> Lease {
        Lease {
            node: self.inner.node.clone(),
            name: name.to_string(),
            id: id.to_string(),
        }
    }

    /// Who owns session `name` (its name or its id), if any node does.
    pub async fn owner(&self, target: &str) -> Result<Option<Lease>, ClusterError> {
        if !plausible(target) {
            return Ok(None);
        }
        for key in [name_key(target), id_key(target)] {
            let value = self
                .inner
                .sessions
                .get(&key)
                .await
                .map_err(|e| ClusterError::store("looking up a session", e))?;
            if let Some(value) = value {
                return serde_json::from_slice(&value)
                    .map(Some)
                    .map_err(|e| ClusterError::Codec(e.to_string()));
            }
        }
        Ok(None)
    }

    /// Claims `name` for a session this node is about to create. Taken by another node: an
    /// error naming it. Already this node's: claimed (the local create decides).
    pub async fn claim(&self, name: &str) -> Result<(), ClusterError> {
        let key = name_key(name);
        let value = encode(&self.lease_for(name, ""))?;
        match self.inner.sessions.create(&key, value.into()).await {
            Ok(_) => {
                self.held().insert(name.to_string(), String::new());
                Ok(())
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                match self.owner(name).await? {
                    Some(lease) if lease.node != self.inner.node => Err(ClusterError::NameTaken {
                        name: name.to_string(),
                        node: lease.node,
                    }),
                    _ => Ok(()),
                }
            }
            Err(e) => Err(ClusterError::store("claiming a session name", e)),
        }
    }

    /// Claims `name` only if no node holds it, this one included: the claim of a restore,
    /// which two nodes may try at once (one gets it, the other `NameTaken`).
    pub async fn claim_new(&self, name: &str) -> Result<(), ClusterError> {
        let value = encode(&self.lease_for(name, ""))?;
        match self
            .inner
            .sessions
            .create(name_key(name), value.into())
            .await
        {
            Ok(_) => {
                self.held().insert(name.to_string(), String::new());
                Ok(())
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let node = self.owner(name).await?.map(|l| l.node).unwrap_or_default();
                Err(ClusterError::NameTaken {
                    name: name.to_string(),
                    node,
                })
            }
            Err(e) => Err(ClusterError::store("claiming a session name", e)),
        }
    }

    /// Claims the lowest number not used here (`local`) nor leased by any node: the name of
    /// a session created without one.
    pub async fn claim_free_name(&self, local: &[String]) -> Result<String, ClusterError> {
        for n in 0..MAX_AUTO_NAMES {
            let name = n.to_string();
            if local.contains(&name) {
                continue;
            }
            match self.claim(&name).await {
                Ok(()) => return Ok(name),
                Err(ClusterError::NameTaken { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ClusterError::Config(format!(
            "no free session number below {MAX_AUTO_NAMES}: give the session a name"
        )))
    }

    /// The session `name` now exists here with `id`: both keys point at this node.
    pub async fn hold(&self, name: &str, id: &str) -> Result<(), ClusterError> {
        self.held().insert(name.to_string(), id.to_string());
        self.put_lease(name, id).await
    }

    /// Gives up `name` (a failed create, a killed session): its keys and its checkpoint are
    /// deleted.
    pub async fn release(&self, name: &str) {
        self.unclaim(name).await;
        self.drop_checkpoint(name).await;
    }

    /// Gives up the lease on `name`, keeping its checkpoint (a failed restore of a lost
    /// session leaves it lost).
    pub async fn unclaim(&self, name: &str) {
        let id = self.held().remove(name);
        self.drop_lease(name, id.as_deref().unwrap_or_default())
            .await;
    }

    pub(crate) async fn drop_lease(&self, name: &str, id: &str) {
        let sessions = &self.inner.sessions;
        if let Err(e) = sessions.delete(name_key(name)).await {
            tracing::warn!("cannot release the lease on session {name}: {e}");
        }
        if !id.is_empty() {
            if let Err(e) = sessions.delete(id_key(id)).await {
                tracing::warn!("cannot release the lease on session id {id}: {e}");
            }
        }
    }

    async fn put_lease(&self, name: &str, id: &str) -> Result<(), ClusterError> {
        let value = encode(&self.lease_for(name, id))?;
        let sessions = &self.inner.sessions;
        sessions
            .put(name_key(name), value.clone().into())
            .await
            .map_err(|e| ClusterError::store("renewing a session lease", e))?;
        if !id.is_empty() {
            sessions
                .put(id_key(id), value.into())
                .await
                .map_err(|e| ClusterError::store("renewing a session lease", e))?;
        }
        Ok(())
    }

    /// Renews the lease of every local session, claims those this node does not hold yet
    /// (restored, imported), and releases the leases of sessions that are gone.
    pub(crate) async fn renew_leases(
        &self,
        sessions: &[(String, String)],
    ) -> Result<(), ClusterError> {
        let held = self.held().clone();
        for (name, id) in sessions {
            if !held.contains_key(name) {
                match self.claim(name).await {
                    Ok(()) => {}
                    Err(ClusterError::NameTaken { node, .. }) => {
                        tracing::warn!("session {name} is also on node {node}: not leased here");
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            self.hold(name, id).await?;
        }
        // A claim with no id yet is a session being created: not gone.
        for (name, id) in held {
            if !id.is_empty() && !sessions.iter().any(|(n, _)| *n == name) {
                self.held().remove(&name);
                self.drop_lease(&name, &id).await;
                self.drop_checkpoint(&name).await;
            }
        }
        Ok(())
    }
}
