//! Snapshots anywhere: a clustered daemon's `snapshot.create` also puts the snapshot into the
//! cluster (`spread::after`, with the session's checkpoint), `snapshot.list` adds the other
//! nodes' snapshots (`spread::after`), and `snapshot.restore` of a snapshot another node took
//! starts it here from the cluster's copy (the session's export when it was taken);
//! `snapshot.prune` removes the cluster's copies of the snapshots it prunes.

use std::sync::Arc;

use ai_session_cluster::{Cluster, ClusterError};
use ai_session_protocol::persist::{RestoreParams, RestoreResult, SnapshotInfo};
use ai_session_protocol::{ErrorKind, RpcError};

use crate::access::Principal;
use crate::cluster::to_rpc;
use crate::server::Daemon;

/// `snapshot.restore` of a snapshot in the cluster that this node's store does not hold; `None`
/// when it is not one (a local snapshot, or an id the cluster does not know).
pub(crate) async fn restore(
    daemon: &Arc<Daemon>,
    who: &Principal,
    a: &RestoreParams,
) -> Option<Result<RestoreResult, RpcError>> {
    let cluster = daemon.cluster.as_ref()?;
    let info = match find(cluster, &a.snapshot).await {
        Ok(Some(info)) if info.node.as_deref() != Some(cluster.node()) => info,
        Ok(_) => return None,
        Err(e) => return Some(Err(e)),
    };
    Some(restore_from(daemon, cluster, who, a, info).await)
}

/// The cluster's snapshot `id` (or the one snapshot whose id starts with it).
async fn find(cluster: &Cluster, id: &str) -> Result<Option<SnapshotInfo>, RpcError> {
    let all = cluster.snapshots().await.map_err(to_rpc)?;
    if let Some(exact) = all.iter().find(|s| s.id == id) {
        return Ok(Some(exact.clone()));
    }
    let mut found: Vec<SnapshotInfo> = all.into_iter().filter(|s| s.id.starts_with(id)).collect();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(RpcError::new(
            ErrorKind::InvalidParams,
            format!("'{id}' is the start of {n} snapshots' ids in the cluster"),
        )
        .with_hint("give more of the id (`ai-session snapshot ls` lists them)")),
    }
}

async fn restore_from(
    daemon: &Arc<Daemon>,
    cluster: &Cluster,
    who: &Principal,
    a: &RestoreParams,
    info: SnapshotInfo,
) -> Result<RestoreResult, RpcError> {
    if !daemon
        .access
        .may_snapshot(who, "restore", &info.session, Some(&info.id))
    {
        return Err(daemon.access.snapshot_denied(who, "restore", &info.session));
    }
    let target = a.name.clone().unwrap_or_else(|| info.session_name.clone());
    if daemon.manager.get(&target).is_ok() {
        return Err(super::super::exists(&target));
    }
    // The name is the cluster's: claimed with an atomic create, as `new` does.
    cluster.claim_new(&target).await.map_err(to_rpc)?;
    let node = info.node.clone().unwrap_or_default();
    let started = match cluster.read_snapshot(&info.id).await {
        Ok(saved) => {
            let source = format!("<snapshot {} from node {node}>", info.id);
            super::start_from(daemon, who, saved, &source, &target, Vec::new()).await
        }
        Err(e) => Err(to_rpc(e)),
    };
    let (session, last) = match started {
        Ok(started) => started,
        Err(e) => {
            cluster.unclaim(&target).await;
            return Err(e);
        }
    };
    if let Err(e) = cluster.hold(&target, &session.id).await {
        tracing::warn!("cannot lease session {target}: {e}");
    }
    tracing::info!(session = %target, snapshot = %info.id, from = %node, "restored a snapshot of another node");
    let rerun = match (a.rerun_last, last) {
        (true, Some(command)) => {
            Some(super::super::rerun_last(daemon, who, &session.name, command).await?)
        }
        _ => None,
    };
    Ok(RestoreResult {
        session,
        snapshot: info.id,
        rerun,
    })
}

/// `snapshot.list` in a cluster: this node's snapshots (named with the node) and every other
/// node's, oldest first; `target` and the caller's grants filter them as for local ones.
pub(crate) async fn list(
    daemon: &Daemon,
    cluster: &Cluster,
    who: &Principal,
    target: Option<&str>,
    local: &mut Vec<SnapshotInfo>,
) -> Result<(), ClusterError> {
    for s in local.iter_mut() {
        s.node = Some(cluster.node().to_owned());
    }
    let others = cluster.snapshots().await?;
    local.extend(
        others
            .into_iter()
            .filter(|s| s.node.as_deref() != Some(cluster.node()))
            .filter(|s| target.is_none_or(|t| t == s.session_name))
            .filter(|s| daemon.access.may_snapshot(who, "list", &s.session, None)),
    );
    local.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
    Ok(())
}

/// `snapshot.prune` in a cluster: the cluster's copies of the snapshots pruned here go too, so
/// no node lists or restores them any more.
pub(crate) async fn prune(cluster: &Cluster, removed: &[SnapshotInfo]) -> Result<(), RpcError> {
    for s in removed {
        cluster.drop_snapshot(&s.id).await.map_err(|e| {
            to_rpc(e).with_hint(
                "the snapshot is gone from this node but still listed in the cluster; \
                 retry `snapshot prune` once the cluster is reachable",
            )
        })?;
    }
    Ok(())
}
