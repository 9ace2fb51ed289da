//! Cluster-wide views: `session.list` on a clustered daemon gathers every live node's
//! sessions (each asked in parallel, for [`LIST_WAIT`] at most), marks each session with its
//! node, and names the nodes that did not answer instead of leaving their sessions out
//! silently.

use std::time::Duration;

use ai_session_cluster::{Cluster, Forward, Origin};
use ai_session_protocol::RpcError;
use ai_session_protocol::cluster::{LostSession, Unanswered};
use ai_session_protocol::methods::ListResult;
use ai_session_protocol::persist::{SnapshotInfo, SnapshotListResult};
use ai_session_protocol::registry::{self as reg, Method};
use futures_util::future::join_all;
use serde_json::Value;

use crate::access::Principal;
use crate::server::Daemon;

/// How long a node gets to answer a cluster-wide list.
pub(crate) const LIST_WAIT: Duration = Duration::from_secs(3);

/// Completes a local `session.list` with every other node's sessions. Only for a request that
/// entered here (a forwarded list answers for its own node) and for the identities every node
/// shares (an agent or a token lists its own node's sessions).
pub(super) async fn gather(
    daemon: &Daemon,
    who: &Principal,
    method: &str,
    origin: Option<&Origin>,
    result: &mut Result<Value, RpcError>,
) {
    let (Some(cluster), None, Ok(answer)) = (daemon.cluster.as_ref(), origin, result.as_mut())
    else {
        return;
    };
    if method != reg::SessionList::NAME {
        return;
    }
    let Ok(mut list) = serde_json::from_value::<ListResult>(answer.take()) else {
        return;
    };
    for s in &mut list.sessions {
        s.node = Some(cluster.node().to_string());
    }
    if let Some(principal) = super::forward::shared(who) {
        others(cluster, principal, &mut list).await;
        for s in &mut list.sessions {
            if let Ok(Some(c)) = cluster.checkpoint_of(&s.name).await {
                s.checkpoint_ms = (c.id == s.id).then_some(c.taken_ms);
            }
        }
        match cluster.lost().await {
            Ok(lost) => list.lost = lost.into_iter().map(lost_session).collect(),
            Err(e) => tracing::warn!("cannot list the lost sessions: {e}"),
        }
    }
    list.sessions.sort_by(|a, b| a.name.cmp(&b.name));
    *result = super::json(list);
}

/// A checkpoint without a lease, as the protocol shows it.
pub(crate) fn lost_session(c: ai_session_cluster::checkpoint::Checkpoint) -> LostSession {
    LostSession {
        name: c.name,
        id: c.id,
        node: c.node,
        checkpoint_ms: c.taken_ms,
        bytes: c.bytes,
    }
}

/// After a snapshot of a session of a clustered daemon: its checkpoint is written before the
/// snapshot is answered, so a session snapshotted before its node dies is restored with
/// everything up to the snapshot.
pub(super) async fn after(
    daemon: &Daemon,
    who: &Principal,
    method: &str,
    target: Option<&str>,
    result: &mut Result<Value, RpcError>,
) {
    if method == reg::SnapshotList::NAME {
        return snapshots(daemon, who, target, result).await;
    }
    let (Some(cluster), Some(name), Ok(Value::Object(answer))) =
        (daemon.cluster.as_ref(), target, result.as_mut())
    else {
        return;
    };
    if method != reg::SnapshotCreate::NAME {
        return;
    }
    // The snapshot goes into the cluster with the checkpoint (one export for both).
    let snapshot = serde_json::from_value::<SnapshotInfo>(Value::Object(answer.clone())).ok();
    let saved = crate::persist::checkpoint::save_as(daemon, cluster, name, snapshot.as_ref()).await;
    if let Err(e) = saved {
        tracing::warn!(session = %name, "checkpoint after a snapshot not written: {e}");
        answer.insert(
            "cluster_warning".into(),
            Value::String(format!("the cluster checkpoint was not written: {e}")),
        );
    }
}

/// `snapshot.list` in a cluster: every node's snapshots, each with its node.
async fn snapshots(
    daemon: &Daemon,
    who: &Principal,
    target: Option<&str>,
    result: &mut Result<Value, RpcError>,
) {
    let (Some(cluster), Ok(answer)) = (daemon.cluster.as_ref(), result.as_mut()) else {
        return;
    };
    let Ok(mut list) = serde_json::from_value::<SnapshotListResult>(answer.take()) else {
        return;
    };
    let listed = crate::persist::checkpoint::snapshots::list(
        daemon,
        cluster,
        who,
        target,
        &mut list.snapshots,
    )
    .await;
    if let Err(e) = &listed {
        tracing::warn!("cannot list the cluster's snapshots: {e}");
    }
    *answer = serde_json::to_value(&list).unwrap_or_default();
    if let (Err(e), Value::Object(map)) = (listed, answer) {
        map.insert(
            "cluster_warning".into(),
            Value::String(format!("other nodes' snapshots are not listed: {e}")),
        );
    }
}

/// Asks every other live node for its sessions.
async fn others(cluster: &Cluster, principal: &str, list: &mut ListResult) {
    let nodes = match cluster.nodes().await {
        Ok(nodes) => nodes,
        Err(e) => {
            list.unanswered.push(Unanswered {
                node: "*".into(),
                reason: format!("the node list could not be read: {e}"),
            });
            return;
        }
    };
    let asks = nodes
        .iter()
        .filter(|n| n.node != cluster.node())
        .map(|n| ask(cluster, principal, &n.node));
    for (node, answer) in join_all(asks).await {
        match answer {
            Ok(sessions) => list.sessions.extend(sessions),
            Err(reason) => list.unanswered.push(Unanswered { node, reason }),
        }
    }
}

/// One node's sessions, each marked with the node.
async fn ask(
    cluster: &Cluster,
    principal: &str,
    node: &str,
) -> (
    String,
    Result<Vec<ai_session_protocol::methods::SessionInfo>, String>,
) {
    let forward = Forward {
        origin: Origin::new(cluster.node()),
        principal: principal.to_string(),
        method: reg::SessionList::NAME.to_string(),
        params: serde_json::json!({}),
        order: None,
    };
    let answer =
        match tokio::time::timeout(LIST_WAIT, cluster.call(node, &forward, LIST_WAIT)).await {
            Err(_) => Err(format!("no answer in {} s", LIST_WAIT.as_secs())),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(Err(e))) => Err(e.message),
            Ok(Ok(Ok(value))) => serde_json::from_value::<ListResult>(value)
                .map(|l| l.sessions)
                .map_err(|e| format!("unreadable answer: {e}")),
        };
    let answer = answer.map(|mut sessions| {
        for s in &mut sessions {
            s.node = Some(node.to_string());
        }
        sessions
    });
    (node.to_string(), answer)
}
