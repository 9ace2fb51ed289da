//! `session.subscribe` (and so `attach`) of a session another node owns. The entry node
//! watches a relay subject (`ai_session_cluster` `relay`) and forwards the subscribe with it;
//! the owner subscribes as for a local client, its notification lines going to that subject
//! instead of a connection. The entry node passes them on to its client in order and keeps
//! the stream lossless by offsets: when an output line starts after the last byte the client
//! got, the bytes between are read from the owner (`session.read --since`, base64 so
//! they pass unchanged) and sent first.

use std::sync::Arc;

use ai_session_cluster::{Cluster, Origin, Watch};
use ai_session_protocol::methods::{self as m, OutputEvent};
use ai_session_protocol::registry::{self as reg, Method};
use ai_session_protocol::{ErrorKind, RpcError};
use base64::Engine;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Caller;
use super::forward::{self, Route};
use crate::access::Principal;
use crate::cluster::to_rpc;

/// Lines the owner may hold for a slow relay before the session's own subscriber lags.
const BACKLOG: usize = 1024;
/// The most bytes one gap-filling read asks for.
const FILL: u64 = 256 * 1024;

/// Entry node: subscribes `caller` to session `params.target` on `node`.
pub(super) async fn subscribe(
    cluster: &Cluster,
    caller: &Caller,
    who: &Principal,
    node: &str,
    mut params: Value,
) -> Route {
    let origin = Origin::new(cluster.node());
    let subject = ai_session_cluster::relay_subject(&origin.request);
    let watch = match cluster.watch(&subject).await {
        Ok(w) => w,
        Err(e) => return forward::failed(to_rpc(e)),
    };
    let target = params
        .get("target")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if let Some(map) = params.as_object_mut() {
        map.insert("relay".into(), Value::String(subject));
    }
    let method = reg::SessionSubscribe::NAME;
    let route = forward::forward_as(cluster, who, node, method, params, origin).await;
    if let Route::There {
        result: Ok(answer), ..
    } = &route
    {
        let owner = Owner {
            cluster: cluster.clone(),
            node: node.to_owned(),
            principal: who.clone(),
            target,
        };
        let next = answer.get("offset").and_then(Value::as_u64).unwrap_or(0);
        tokio::spawn(pass_on(owner, watch, caller.notifier(), next));
    }
    route
}

/// Where the relayed session lives, to read a gap from.
struct Owner {
    cluster: Cluster,
    node: String,
    principal: Principal,
    target: String,
}

/// Passes the owner's lines to the client until either goes away; `next` is the offset of
/// the first byte the client has not had.
async fn pass_on(owner: Owner, mut watch: Watch, tx: mpsc::Sender<String>, mut next: u64) {
    let b64 = base64::engine::general_purpose::STANDARD;
    loop {
        let line = tokio::select! {
            line = watch.next() => line,
            () = tx.closed() => return,
        };
        let Some(line) = line else { return };
        let Ok(text) = String::from_utf8(line.to_vec()) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let method = value.get("method").and_then(Value::as_str).unwrap_or("");
        if method == m::NOTIFY_OUTPUT {
            let params = &value["params"];
            let offset = params["offset"].as_u64().unwrap_or(next);
            let len = params["data_b64"]
                .as_str()
                .and_then(|d| b64.decode(d).ok())
                .map_or(0, |d| d.len() as u64);
            if offset > next && !fill(&owner, next, offset, &tx).await {
                return;
            }
            next = offset + len;
        }
        if tx.send(text).await.is_err() || method == m::NOTIFY_CLOSED {
            return;
        }
    }
}

/// Sends the client the owner's bytes from `from` to `to`, read from its log; false once the
/// client is gone.
async fn fill(owner: &Owner, mut from: u64, to: u64, tx: &mpsc::Sender<String>) -> bool {
    while from < to {
        let params = serde_json::json!({
            "target": owner.target,
            "since": from,
            "max_bytes": (to - from).min(FILL),
            "encoding": "base64",
        });
        let read = forward::call_owner(
            &owner.cluster,
            &owner.principal,
            &owner.node,
            reg::SessionRead::NAME,
            params,
        )
        .await;
        let Ok(read) = read.and_then(|v| {
            serde_json::from_value::<m::ReadResult>(v)
                .map_err(|e| RpcError::new(ErrorKind::Internal, e.to_string()))
        }) else {
            tracing::warn!(session = %owner.target, "a relayed subscription's gap could not be read");
            return true;
        };
        let Some(data_b64) = read.data_b64.filter(|d| !d.is_empty() && read.end > from) else {
            return true;
        };
        let event = OutputEvent {
            target: owner.target.clone(),
            offset: read.start,
            data_b64,
        };
        if let Some(line) = super::sessions::notification(m::NOTIFY_OUTPUT, event) {
            if tx.send(line).await.is_err() {
                return false;
            }
        }
        from = read.end;
    }
    true
}

/// Owner node: the caller a forwarded subscribe runs as, its notification lines relayed to
/// `subject` until the entry node stops watching it.
pub(crate) fn owner(cluster: &Cluster, principal: Principal, subject: String) -> Arc<Caller> {
    let (tx, mut rx) = mpsc::channel::<String>(BACKLOG);
    let cluster = cluster.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(cluster.heartbeat_interval());
        tick.tick().await;
        let mut confirmed = std::time::Instant::now();
        // An entry node reconnecting to NATS is briefly without its subscription: the relay
        // ends after two checks in a row find nobody watching, not one.
        let mut unwatched = false;
        loop {
            tokio::select! {
                line = rx.recv() => {
                    let Some(line) = line else { return };
                    if let Err(e) = cluster.relay_line(&subject, line).await {
                        tracing::warn!("a relayed subscription ended: {e}");
                        return;
                    }
                }
                _ = tick.tick() => match cluster.watched(&subject).await {
                    Some(true) => {
                        confirmed = std::time::Instant::now();
                        unwatched = false;
                    }
                    Some(false) if unwatched => return,
                    Some(false) => unwatched = true,
                    None if confirmed.elapsed() > cluster.lease() => return,
                    None => {}
                },
            }
        }
    });
    Caller::new(principal, tx)
}
