//! Checkpoints of a clustered daemon's sessions, and bringing back a lost one.
//!
//! Off the exec path, every heartbeat interval, each local session whose output moved since
//! its last checkpoint (or that has none yet) is exported from the store as `export` does,
//! with the environment its shell last exported, and written to the cluster
//! (`ai_session_cluster::checkpoint`). A snapshot writes one at once. When the node dies its
//! leases expire and those checkpoints are the sessions' `lost` state; `restore --from-lost`
//! on any node imports one as `import` does and starts its shell there.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use ai_session_cluster::Cluster;
use ai_session_cluster::checkpoint::{Checkpoint, Saved};
use ai_session_core::protocol::methods as m;
use ai_session_protocol::{ErrorKind, RpcError};
use ai_session_store::SessionStatus;

use super::{capture, import_err, save_context, start_for, store_err};
use crate::server::Daemon;

pub(crate) mod journal;
pub(crate) mod snapshots;

/// Writes the checkpoint of local session `name` to the cluster.
pub(crate) async fn save(daemon: &Daemon, cluster: &Cluster, name: &str) -> Result<(), String> {
    save_as(daemon, cluster, name, None).await
}

/// [`save`], and when `snapshot` is given (just taken of the session), the same export as
/// that snapshot's contents in the cluster (`snapshots`).
pub(crate) async fn save_as(
    daemon: &Daemon,
    cluster: &Cluster,
    name: &str,
    snapshot: Option<&ai_session_protocol::persist::SnapshotInfo>,
) -> Result<(), String> {
    let handle =
        crate::service::session_handle(&daemon.manager, name).map_err(|e| e.to_string())?;
    let sid = handle.id().to_owned();
    // Every exec journaled up to here is in the store already (`journal`): the checkpoint
    // below holds it, and the journal can let it go once the checkpoint is written.
    let mark = cluster
        .journal_mark(&sid)
        .await
        .map_err(|e| e.to_string())?;
    save_context(&daemon.persist, &daemon.contexts, &sid).await;
    let scrollback = capture(&handle).await;
    let owned = name.to_owned();
    let id = sid.clone();
    let saved = daemon
        .persist
        .call(move |w| {
            w.keep_environment(&id, &owned);
            let record = w.id(&id, &owned)?;
            if let Some(s) = &scrollback {
                w.store
                    .save_scrollback(&record, s)
                    .map_err(|e| store_err(&e))?;
            }
            let environment = w.store.load_environment(&record).ok().flatten();
            let record = w.store.export(&record).map_err(|e| store_err(&e))?;
            Ok(Saved {
                record,
                environment,
            })
        })
        .await
        .map_err(|e| e.message)?;
    cluster
        .put_checkpoint(name, &sid, &saved)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(mark) = mark {
        if let Err(e) = cluster.journal_checkpointed(&sid, mark).await {
            tracing::warn!(session = %name, "exec journal not trimmed: {e}");
        }
    }
    if let Some(info) = snapshot {
        cluster
            .put_snapshot(info, &saved)
            .await
            .map_err(|e| format!("the snapshot is not in the cluster: {e}"))?;
    }
    Ok(())
}

/// Checkpoints the local sessions whose output moved, every heartbeat interval, until the
/// daemon stops.
pub(crate) async fn run(daemon: Weak<Daemon>, cluster: Cluster) {
    let mut tick = tokio::time::interval(cluster.heartbeat_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Session id to the log offset of its last checkpoint.
    let mut done: HashMap<String, u64> = HashMap::new();
    loop {
        tick.tick().await;
        let Some(d) = daemon.upgrade() else { return };
        if d.cancel.is_cancelled() {
            return;
        }
        let sessions = d.manager.list().await;
        done.retain(|id, _| sessions.iter().any(|s| s.id == *id));
        for s in sessions {
            if done.get(&s.id) == Some(&s.log_end) {
                continue;
            }
            match save(&d, &cluster, &s.name).await {
                Ok(()) => {
                    done.insert(s.id.clone(), s.log_end);
                }
                Err(e) => tracing::warn!(session = %s.name, "checkpoint not written: {e}"),
            }
        }
    }
}

/// `cluster.restore`: starts lost session `name` here from its checkpoint, as `as_name` (by
/// default its own name). The name is claimed first: of two nodes restoring it at once, one
/// gets it, the other is told where it went.
pub(crate) async fn restore(
    daemon: &Arc<Daemon>,
    who: &crate::access::Principal,
    name: &str,
    as_name: Option<&str>,
) -> Result<m::SessionInfo, RpcError> {
    let cluster = crate::cluster::clustered(daemon)?;
    let header = cluster
        .checkpoint_of(name)
        .await
        .map_err(crate::cluster::to_rpc)?
        .ok_or_else(|| not_lost(name))?;
    let target = as_name.unwrap_or(name).to_owned();
    // A checkpoint whose name is leased is a live session's, not a lost one's.
    let leased = cluster.owner(name).await.map_err(crate::cluster::to_rpc)?;
    if leased.is_some() || daemon.manager.get(&target).is_ok() {
        return Err(taken(cluster, name).await);
    }
    // The claim is an atomic create: of two nodes restoring at once, one gets the name.
    if let Err(e) = cluster.claim_new(&target).await {
        return Err(match e {
            ai_session_cluster::ClusterError::NameTaken { .. } => taken(cluster, &target).await,
            e => crate::cluster::to_rpc(e),
        });
    }
    let started = start(daemon, who, cluster, &header, &target).await;
    match &started {
        Ok(info) => {
            if let Err(e) = cluster.hold(&target, &info.id).await {
                tracing::warn!("cannot lease session {target}: {e}");
            }
            tracing::info!(session = %target, from = %header.node, "restored a lost session");
        }
        Err(_) => cluster.unclaim(&target).await,
    }
    started
}

/// Imports the checkpoint of `name` into the store as `target` and starts its shell.
async fn start(
    daemon: &Arc<Daemon>,
    who: &crate::access::Principal,
    cluster: &Cluster,
    header: &Checkpoint,
    target: &str,
) -> Result<m::SessionInfo, RpcError> {
    let name = header.name.as_str();
    let saved = cluster
        .read_checkpoint(name)
        .await
        .map_err(crate::cluster::to_rpc)?;
    // The execs answered after the checkpoint, from the cluster's journal.
    let journaled = cluster
        .journaled_execs(&header.id)
        .await
        .map_err(crate::cluster::to_rpc)?;
    let source = format!("<checkpoint of {name}>");
    let (info, _) = start_from(daemon, who, saved, &source, target, journaled).await?;
    Ok(info)
}

/// Imports `saved` (a checkpoint's or a snapshot's contents, called `source` in errors) into
/// the store as `target`, with the `journaled` execs it lacks, and starts its shell; the new
/// session, and the last command of its history.
pub(crate) async fn start_from(
    daemon: &Arc<Daemon>,
    who: &crate::access::Principal,
    saved: Saved,
    source: &str,
    target: &str,
    journaled: Vec<bytes::Bytes>,
) -> Result<(m::SessionInfo, Option<String>), RpcError> {
    let final_name = target.to_owned();
    let source = std::path::PathBuf::from(source);
    let (record, environment) = (saved.record, saved.environment.clone());
    let (mut state, scrollback, last) = daemon
        .persist
        .call(move |w| {
            let pending = w
                .store
                .decode_import(&record, &source)
                .map_err(|e| import_err(&e))?;
            let imported = w
                .store
                .commit_import(pending, Some(&final_name), Some(SessionStatus::Restored))
                .map_err(|e| store_err(&e))?;
            let mut state = imported.state;
            let history = w.store.load_history(&state.id).unwrap_or_default();
            let replayed = journal::missing(&journaled, &history);
            w.store
                .append_execs(&state.id, &replayed)
                .map_err(|e| store_err(&e))?;
            let last = replayed
                .last()
                .or(history.last())
                .map(|r| r.command.clone());
            let scrollback = w.store.load_scrollback(&state.id).ok().flatten();
            if let Ok(r) = w.store.load_session(&state.id) {
                state.cwd = r.cwd().to_owned();
            }
            if let Some(text) = &environment {
                if let Err(e) = w.store.save_environment(&state.id, text) {
                    tracing::warn!("cannot keep the restored environment: {e}");
                }
            }
            Ok((state, scrollback, last))
        })
        .await?;
    let cwd = std::mem::take(&mut state.cwd);
    let info = start_for(
        daemon,
        who,
        &state,
        &cwd,
        scrollback.as_ref(),
        saved.environment.as_deref(),
    )
    .await?;
    Ok((info, last))
}

fn not_lost(name: &str) -> RpcError {
    RpcError::new(
        ErrorKind::SessionNotFound,
        format!("no lost session named '{name}' in the cluster"),
    )
    .with_hint("`ai-session ls` lists the lost sessions (state lost) with their checkpoints")
}

async fn taken(cluster: &Cluster, name: &str) -> RpcError {
    let node = match cluster.owner(name).await {
        Ok(Some(lease)) => format!(" on node '{}'", lease.node),
        _ => String::new(),
    };
    RpcError::new(
        ErrorKind::SessionExists,
        format!("session '{name}' is not lost: it runs{node}"),
    )
    .with_hint(
        "address it by name from any node, or restore the checkpoint under another name (-s NAME)",
    )
}
