//! Sessions anywhere: in a cluster, a request for a session this daemon does not have goes to
//! the node that leases it (NATS request/reply), and `session.new` claims its name cluster-wide
//! before the session is created, here or on the node `node` names. On a daemon outside a
//! cluster every request is local, as always.
//!
//! The entry node has already checked the caller's capability (`service::handle`); the owner
//! checks the forwarded identity again and audits the request under the same request id.

use std::time::Duration;

use ai_session_cluster::{Cluster, Forward, Origin};
use ai_session_protocol::registry::{self as reg, Method};
use ai_session_protocol::{ErrorKind, RpcError};
use serde_json::Value;

use crate::access::Principal;
use crate::cluster::to_rpc;
use crate::server::Daemon;

/// Where a request runs.
pub(super) enum Route {
    /// Here, with these params; `claimed` is the session name claimed for a `session.new`
    /// (released again if the create fails).
    Here {
        params: Value,
        claimed: Option<String>,
    },
    /// On another node: its answer, and the audit note naming the node and the request id.
    There {
        result: Result<Value, RpcError>,
        note: String,
    },
}

/// The methods that follow their session to its node: the session's own operations.
pub(crate) fn forwardable(method: &str) -> bool {
    [
        reg::SessionNew::NAME,
        reg::SessionExec::NAME,
        reg::SessionSend::NAME,
        reg::SessionWrite::NAME,
        reg::SessionRead::NAME,
        reg::SessionCapture::NAME,
        reg::SessionWait::NAME,
        reg::SessionResize::NAME,
        reg::SessionKill::NAME,
        reg::SessionHistory::NAME,
        reg::SessionSubscribe::NAME,
        reg::SessionList::NAME,
        reg::ClusterRestore::NAME,
        reg::SnapshotCreate::NAME,
        reg::ContextGet::NAME,
        reg::ContextAdd::NAME,
        reg::ContextShow::NAME,
        reg::ContextTask::NAME,
        reg::ContextConfig::NAME,
    ]
    .contains(&method)
}

/// Decides where a request runs. `origin` is set for a request another node forwarded here:
/// it runs here, never forwarded again.
pub(super) async fn route(
    daemon: &Daemon,
    caller: &super::Caller,
    who: &Principal,
    method: &str,
    mut params: Value,
    origin: Option<&Origin>,
) -> Route {
    let node = if method == reg::SessionNew::NAME || method == reg::ClusterRestore::NAME {
        take_node(&mut params)
    } else {
        None
    };
    let Some(cluster) = daemon.cluster.as_ref() else {
        if node.is_some() {
            if let Err(e) = crate::cluster::clustered(daemon) {
                return failed(e);
            }
        }
        return here(params);
    };
    if !forwardable(method) {
        return here(params);
    }
    if method == reg::SessionNew::NAME {
        // A forwarded `new` was placed by its entry node: it is created here.
        let node = if origin.is_some() { None } else { node };
        return place(daemon, cluster, who, params, node).await;
    }
    if origin.is_some() {
        return here(params);
    }
    if method == reg::ClusterRestore::NAME {
        return match node.filter(|n| n != cluster.node()) {
            Some(node) => forward(cluster, who, &node, method, params).await,
            None => here(params),
        };
    }
    let target = params.get("target").and_then(Value::as_str).unwrap_or("");
    if target.is_empty() || daemon.manager.get(target).is_ok() {
        return here(params);
    }
    match cluster.owner(target).await {
        Ok(Some(lease)) if lease.node != cluster.node() => {
            if method == reg::SessionSubscribe::NAME {
                return super::relay::subscribe(cluster, caller, who, &lease.node, params).await;
            }
            forward(cluster, who, &lease.node, method, params).await
        }
        Ok(_) => here(params),
        Err(e) => failed(to_rpc(e)),
    }
}

/// `session.new`: on the node `node` names (forwarded there), else here; the name (or the
/// lowest free number) is claimed in the cluster's directory first.
async fn place(
    daemon: &Daemon,
    cluster: &Cluster,
    who: &Principal,
    mut params: Value,
    node: Option<String>,
) -> Route {
    let node = match node {
        Some(node) => Some(node),
        None => match least_loaded(cluster, &params).await {
            Ok(node) => node,
            Err(e) => return failed(e),
        },
    };
    if let Some(node) = node.filter(|n| n != cluster.node()) {
        return forward(cluster, who, &node, reg::SessionNew::NAME, params).await;
    }
    let name = match params.get("name").and_then(Value::as_str) {
        Some(name) => cluster.claim(name).await.map(|()| name.to_string()),
        None => cluster.claim_free_name(&daemon.manager.names()).await,
    };
    match name {
        Ok(name) => {
            if let Some(map) = params.as_object_mut() {
                map.insert("name".into(), Value::String(name.clone()));
            }
            Route::Here {
                params,
                claimed: Some(name),
            }
        }
        Err(e) => failed(to_rpc(e)),
    }
}

/// The least-loaded live node that runs the session's sandbox (`ai_session_cluster::placement`),
/// when it is not this one; refused when no live node runs it. When the nodes cannot be read
/// the session starts here.
async fn least_loaded(cluster: &Cluster, params: &Value) -> Result<Option<String>, RpcError> {
    let need = crate::placement::need(params);
    match cluster.nodes().await {
        Ok(nodes) => {
            let found = ai_session_cluster::placement::least_loaded_for(
                &nodes,
                cluster.node(),
                need.as_ref(),
            );
            match (found, need) {
                (Some(n), _) => Ok(Some(n.node.clone()).filter(|n| n != cluster.node())),
                (None, Some(need)) => Err(crate::placement::nowhere(&need, &nodes)),
                (None, None) => Ok(None),
            }
        }
        Err(e) => {
            tracing::warn!("cannot read the nodes' load, the session starts here: {e}");
            Ok(None)
        }
    }
}

/// After a local call: a claimed name becomes a lease on the new session (or is released when
/// the create failed); a killed session's lease is released.
pub(super) async fn settle(
    daemon: &Daemon,
    method: &str,
    claimed: Option<String>,
    target: Option<&str>,
    result: &Result<Value, RpcError>,
) {
    let Some(cluster) = daemon.cluster.as_ref() else {
        return;
    };
    if let Some(name) = claimed {
        let id = result
            .as_ref()
            .ok()
            .and_then(|v| v.get("id")?.as_str().map(str::to_owned));
        match id {
            Some(id) => {
                if let Err(e) = cluster.hold(&name, &id).await {
                    tracing::warn!("cannot lease session {name}: {e}");
                }
            }
            None => cluster.release(&name).await,
        }
    }
    if let (true, Ok(_), Some(name)) = (method == reg::SessionKill::NAME, result, target) {
        cluster.release(name).await;
    }
}

fn here(params: Value) -> Route {
    Route::Here {
        params,
        claimed: None,
    }
}

pub(super) fn failed(e: RpcError) -> Route {
    Route::There {
        result: Err(e),
        note: String::new(),
    }
}

/// `node` in a `session.new`'s params (`new --node`): taken out, the session library does
/// not know it.
fn take_node(params: &mut Value) -> Option<String> {
    let map = params.as_object_mut()?;
    match map.remove("node")? {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// The identity a forwarded request acts as, for the principals every node shares.
pub(super) fn shared(who: &Principal) -> Option<&'static str> {
    match who {
        Principal::Owner => Some("owner"),
        Principal::Http => Some("http"),
        Principal::Agent(_) | Principal::Token(_) => None,
    }
}

/// Sends the request to `node` and returns its answer.
async fn forward(
    cluster: &Cluster,
    who: &Principal,
    node: &str,
    method: &str,
    params: Value,
) -> Route {
    forward_as(
        cluster,
        who,
        node,
        method,
        params,
        Origin::new(cluster.node()),
    )
    .await
}

/// A request of this node's own to `node` (not audited as a client's): its answer.
pub(super) async fn call_owner(
    cluster: &Cluster,
    who: &Principal,
    node: &str,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    match forward(cluster, who, node, method, params).await {
        Route::There { result, .. } => result,
        Route::Here { .. } => Err(RpcError::new(
            ErrorKind::Internal,
            "a request to another node ran here",
        )),
    }
}

/// [`forward`], under the request id `origin` (chosen before, as a relay's subject).
pub(super) async fn forward_as(
    cluster: &Cluster,
    who: &Principal,
    node: &str,
    method: &str,
    params: Value,
    origin: Origin,
) -> Route {
    // A typing request keeps its place in its connection's order: the next one goes once this
    // one is sent on, and the owner queues them in the order they arrive.
    let order = crate::order::forwarding().await;
    let principal = match shared(who) {
        Some(principal) => principal,
        None => {
            return failed(
                RpcError::new(
                    ErrorKind::PermissionDenied,
                    format!("the session is on node '{node}': agents and API tokens act on their own node's sessions only"),
                )
                .with_hint(format!("connect to node '{node}''s daemon with a token it issued")),
            );
        }
    };
    let note = format!(" node={node} request={}", origin.request);
    let timeout = deadline(method, &params);
    let forward = Forward {
        origin,
        principal: principal.to_string(),
        method: method.to_string(),
        params,
        order: order.as_ref().map(|(line, _)| *line),
    };
    let answer = match order {
        Some((_, sent)) => {
            cluster
                .call_in_order(node, &forward, timeout, move || drop(sent))
                .await
        }
        None => cluster.call(node, &forward, timeout).await,
    };
    let result = match answer {
        Ok(result) => result,
        Err(e) => Err(to_rpc(e)),
    };
    Route::There { result, note }
}

/// How long to wait for the owner's answer: the call's own time limit and a margin, so the
/// owner's `timeout` status comes back rather than a cluster error.
fn deadline(method: &str, params: &Value) -> Duration {
    let own = params.get("timeout_ms").and_then(Value::as_u64);
    let limit = match method {
        m if m == reg::SessionExec::NAME || m == reg::SessionWait::NAME => own.unwrap_or(600_000),
        _ => 30_000,
    };
    Duration::from_millis(limit.saturating_add(30_000))
}
