//! The daemon in a cluster (`daemon run --cluster`): joining before `ready`, the heartbeat
//! that renews its node record and its sessions' leases, the requests other nodes forward to
//! it, and leaving at shutdown. A daemon without `--cluster` runs none of this.

use std::sync::{Arc, Weak};

use ai_session_cluster::{Cluster, ClusterError, Incoming};
use ai_session_protocol::cluster::NodesResult;
use ai_session_protocol::config::ClusterConfig;
use ai_session_protocol::{ErrorKind, RpcError};

use crate::access::Principal;
use crate::server::Daemon;
use crate::service::Caller;

/// What `daemon run` was told about the cluster to join.
#[derive(Debug, Clone)]
pub struct Join {
    /// `[cluster]` from the configuration file (timings, TLS).
    pub config: ClusterConfig,
    /// The NATS server: `--cluster`, else `[cluster] url`.
    pub url: String,
    /// This node's name: `--node`, else `[cluster] node`, else the host name.
    pub node: String,
}

/// Joins the cluster; the daemon does not start when it cannot.
pub(crate) async fn join(join: &Join) -> Result<Cluster, ClusterError> {
    let sandbox = crate::placement::node_sandbox(&join.config)?;
    let cluster = Cluster::join(&join.config, &join.url, &join.node).await?;
    cluster.set_sandbox(sandbox);
    tracing::info!(node = %join.node, url = %join.url, "joined the cluster");
    Ok(cluster)
}

/// Starts the heartbeat and the forwarded-request server of a clustered daemon.
pub(crate) async fn start(daemon: &Arc<Daemon>) -> Result<(), ClusterError> {
    let Some(cluster) = &daemon.cluster else {
        return Ok(());
    };
    let inbox = cluster.inbox().await?;
    crate::coord::start_cluster(daemon, cluster).await?;
    heartbeat(daemon, cluster).await;
    tokio::spawn(heartbeats(Arc::downgrade(daemon), cluster.clone()));
    tokio::spawn(serve(Arc::downgrade(daemon), cluster.clone(), inbox));
    tokio::spawn(crate::persist::checkpoint::run(
        Arc::downgrade(daemon),
        cluster.clone(),
    ));
    Ok(())
}

/// Leaves the cluster at shutdown: other nodes see the node and its sessions go at once.
pub(crate) async fn leave(daemon: &Daemon) {
    if let Some(cluster) = &daemon.cluster {
        cluster.leave().await;
    }
}

async fn heartbeat(daemon: &Daemon, cluster: &Cluster) {
    let sessions: Vec<(String, String)> = daemon
        .manager
        .names()
        .into_iter()
        .filter_map(|name| daemon.manager.id_of(&name).map(|id| (name, id)))
        .collect();
    if let Err(e) = cluster.heartbeat(&sessions).await {
        tracing::warn!("cluster heartbeat failed: {e}");
    }
    crate::coord::renew_agents(daemon, cluster).await;
}

async fn heartbeats(daemon: Weak<Daemon>, cluster: Cluster) {
    let mut tick = tokio::time::interval(cluster.heartbeat_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(d) = daemon.upgrade() else { return };
        if d.cancel.is_cancelled() {
            return;
        }
        heartbeat(&d, &cluster).await;
    }
}

/// Serves forwarded requests, each on its own task, until the daemon stops. The typing
/// requests of one connection on another node get their turns in the order they arrive, which
/// is the order that connection sent them (`order`).
async fn serve(daemon: Weak<Daemon>, cluster: Cluster, mut inbox: ai_session_cluster::Inbox) {
    let mut lines = crate::order::Lines::default();
    while let Some((d, incoming)) = next_while_running(&daemon, inbox.next()).await {
        let turn = incoming.forward.as_ref().ok().and_then(|f| {
            let line = f.order.filter(|_| crate::order::types(&f.method))?;
            Some(lines.next(&f.origin.node, line))
        });
        let cluster = cluster.clone();
        d.tasks.clone().spawn(async move {
            let result = crate::order::holding(turn, answer(&d, &incoming)).await;
            cluster.answer(incoming, result).await;
        });
    }
}

/// The next message `next` brings, with the daemon to handle it; `None` once the daemon is gone
/// or stopping, or the subscription ended.
pub(crate) async fn next_while_running<T>(
    daemon: &Weak<Daemon>,
    next: impl std::future::Future<Output = Option<T>>,
) -> Option<(Arc<Daemon>, T)> {
    let cancel = daemon.upgrade()?.cancel.clone();
    let item = tokio::select! {
        item = next => item?,
        () = cancel.cancelled() => return None,
    };
    Some((daemon.upgrade()?, item))
}

/// Runs one forwarded request through the service, as the principal the entry node checked
/// (checked again here), audited with the entry node's request id.
async fn answer(daemon: &Arc<Daemon>, incoming: &Incoming) -> Result<serde_json::Value, RpcError> {
    let forward = incoming.forward.as_ref().map_err(|e| {
        RpcError::new(
            ErrorKind::InvalidRequest,
            format!("unreadable forwarded request: {e}"),
        )
        .with_hint("run the same ai-session version on every node")
    })?;
    if !crate::service::forwardable(&forward.method) {
        return Err(RpcError::new(
            ErrorKind::PermissionDenied,
            format!("{} is not served for other nodes", forward.method),
        ));
    }
    let principal = match forward.principal.as_str() {
        "owner" => Principal::Owner,
        "http" => Principal::Http,
        other => {
            return Err(RpcError::new(
                ErrorKind::PermissionDenied,
                format!("a forwarded request acts as the owner, not as '{other}'"),
            ));
        }
    };
    let mut params = forward.params.clone();
    let caller = match relay(daemon, &forward.method, &mut params) {
        Some(subject) => crate::service::relay_caller(clustered(daemon)?, principal, subject?),
        None => Caller::detached(principal),
    };
    crate::service::handle_from(
        daemon,
        &caller,
        &forward.method,
        params,
        Some(&forward.origin),
    )
    .await
}

/// A forwarded `session.subscribe`'s relay subject, taken out of its params (`None` for other
/// methods): its notifications go there (`service::relay`).
fn relay(
    daemon: &Daemon,
    method: &str,
    params: &mut serde_json::Value,
) -> Option<Result<String, RpcError>> {
    use ai_session_protocol::registry::Method;
    if method != ai_session_protocol::registry::SessionSubscribe::NAME || daemon.cluster.is_none() {
        return None;
    }
    let subject = params
        .as_object_mut()
        .and_then(|m| m.remove("relay"))
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|s| s.starts_with("ais.out."));
    Some(subject.ok_or_else(|| {
        RpcError::new(
            ErrorKind::InvalidRequest,
            "a forwarded subscribe names no relay subject",
        )
        .with_hint("run the same ai-session version on every node")
    }))
}

/// `cluster.nodes`: every live node, from the node bucket.
pub(crate) async fn nodes(daemon: &Daemon) -> Result<NodesResult, RpcError> {
    let cluster = clustered(daemon)?;
    let nodes = cluster.nodes().await.map_err(to_rpc)?;
    let lost = cluster.lost().await.map_err(to_rpc)?;
    Ok(NodesResult {
        node: cluster.node().to_string(),
        nodes,
        lost: lost.into_iter().map(crate::service::lost_session).collect(),
    })
}

/// The daemon's cluster, or the error saying this daemon is alone.
pub(crate) fn clustered(daemon: &Daemon) -> Result<&Cluster, RpcError> {
    daemon.cluster.as_ref().ok_or_else(|| {
        RpcError::new(ErrorKind::Unsupported, "this daemon is not in a cluster").with_hint(
            "a daemon joins a cluster when it starts: set `url` (and `node`) in the [cluster] \
             section of its config.toml and restart it (docs/cluster.md)",
        )
    })
}

/// A cluster failure as the protocol's error.
pub(crate) fn to_rpc(e: ClusterError) -> RpcError {
    let kind = match &e {
        ClusterError::NameTaken { .. } => ErrorKind::SessionExists,
        ClusterError::Unreachable { .. } => ErrorKind::Unsupported,
        ClusterError::Config(_) => ErrorKind::InvalidParams,
        _ => ErrorKind::Internal,
    };
    let nodes = |text: &str| {
        ai_session_protocol::hint::Advice::new(text).call("cluster.nodes", serde_json::Value::Null)
    };
    let advice = match &e {
        ClusterError::Unreachable { .. } => {
            nodes("the owning node is down or partitioned: {0} lists the live ones")
        }
        ClusterError::NameTaken { .. } => ai_session_protocol::hint::Advice::new(
            "choose another name, or address the existing session",
        ),
        _ => nodes("{0} shows the cluster; the daemon's log says more"),
    };
    RpcError::new(kind, e.to_string()).with_advice(advice)
}
