//! Session and daemon methods onto the session library.

use ai_session_core::{Error as CoreError, SessionEvent, SessionHandle, WaitCondition};
use ai_session_protocol::methods::{self as m, *};
use ai_session_protocol::registry::Empty;
use ai_session_protocol::{ErrorKind, Notification, PROTOCOL_VERSION, RpcError};
use base64::Engine;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};

use super::{Caller, Event};
use crate::access::Principal;
use crate::server::Daemon;

fn core(e: CoreError) -> RpcError {
    e.to_rpc()
}

pub(crate) fn session(daemon: &Daemon, target: &str) -> Result<SessionHandle, RpcError> {
    super::pin::get(&daemon.manager, target).map_err(core)
}

fn server_name() -> String {
    format!("ai-session {}", env!("CARGO_PKG_VERSION"))
}

pub(super) fn hello(hello: HelloParams) -> Result<HelloResult, RpcError> {
    if hello.protocol != PROTOCOL_VERSION {
        return Err(RpcError::new(
            ErrorKind::VersionMismatch,
            format!(
                "client speaks protocol {}, the daemon speaks {PROTOCOL_VERSION}",
                hello.protocol
            ),
        )
        .with_advice(
            ai_session_protocol::hint::Advice::new(
                "stop the daemon ({0}) and start it again from the same version as this client",
            )
            .call("daemon.stop", serde_json::Value::Null),
        ));
    }
    Ok(HelloResult {
        server: server_name(),
        protocol: PROTOCOL_VERSION,
        pid: std::process::id(),
    })
}

/// Starts a session: the caller's sandbox decided once (an agent's or a token's sessions always
/// run sandboxed), then the `SessionCreated` event (the access table makes the caller its owner;
/// the store records it before the answer goes out). With the session, what the store could
/// not save of it (a full disk).
pub(super) async fn new(
    daemon: &Daemon,
    who: &Principal,
    mut new: NewParams,
) -> Result<(SessionInfo, Vec<String>), RpcError> {
    new.policy =
        daemon
            .access
            .sandbox_for(who, new.policy.take(), new.cwd.as_deref(), &daemon.paths)?;
    let info = daemon.manager.create(new.clone()).await.map_err(core)?;
    let unsaved = daemon
        .publish(Event::SessionCreated {
            info: &info,
            params: Some(&new),
            by: who,
        })
        .await;
    Ok((info, unsaved))
}

pub(super) async fn list(daemon: &Daemon, who: &Principal) -> Result<ListResult, RpcError> {
    let mut sessions = daemon.manager.list().await;
    sessions.retain(|s| daemon.access.may_read(who, &s.id));
    Ok(ListResult {
        sessions,
        unanswered: Vec::new(),
        lost: Vec::new(),
    })
}

/// Runs a command; its result is published (`ExecFinished`: the contexts record it, the store
/// checkpoints it) before the answer goes out. `--rerun-last` of a restore comes here too.
pub(crate) async fn exec(
    daemon: &Daemon,
    who: &Principal,
    p: ExecParams,
) -> Result<ExecResult, RpcError> {
    exec_saved(daemon, who, p).await.map(|(result, _)| result)
}

/// [`exec`], with what the store could not save of it (its record, on a full disk).
pub(super) async fn exec_saved(
    daemon: &Daemon,
    who: &Principal,
    mut p: ExecParams,
) -> Result<(ExecResult, Vec<String>), RpcError> {
    // The configuration file's `[exec]` defaults, for every front end alike.
    p.timeout_ms = p.timeout_ms.or(Some(daemon.config.exec.timeout_ms()));
    p.idle_timeout_ms = p.idle_timeout_ms.or(daemon.config.exec.idle_timeout_ms());
    let view_only = p.view_only;
    let (target, command, started) = (
        p.target.clone(),
        p.command.clone(),
        crate::persist::now_ms(),
    );
    let handle = session(daemon, &p.target)?;
    let turn = crate::order::my_turn().await;
    let mut result = handle.exec_then(p, || drop(turn)).await.map_err(core)?;
    let agent_context = agent_context(daemon, who);
    let agent_id = match who {
        Principal::Agent(id) if agent_context.is_some() => Some(*id),
        _ => None,
    };
    let unsaved = daemon
        .publish(Event::ExecFinished {
            session: &target,
            session_id: handle.id(),
            command: &command,
            started_ms: started,
            result: &result,
            agent_context: agent_context.as_deref(),
            agent_id,
        })
        .await;
    // The observers had the output; a caller asking for the views only does not get it again.
    if view_only && result.compact.is_some() {
        result.output = String::new();
    }
    Ok((result, unsaved))
}

/// The context an agent's execs also feed: `agent:NAME` (kept under the agent's id, see
/// `Event::ExecFinished`).
fn agent_context(daemon: &Daemon, who: &Principal) -> Option<String> {
    let Principal::Agent(id) = who else {
        return None;
    };
    let agent = daemon.coord.agent(ai_session_coord::AgentId(*id)).ok()?;
    Some(format!("agent:{}", agent.name))
}

pub(super) async fn send(daemon: &Daemon, p: SendParams) -> Result<SendResult, RpcError> {
    let handle = session(daemon, &p.target)?;
    let turn = crate::order::my_turn().await;
    handle
        .send_keys_then(p.keys, p.literal, p.paste, || drop(turn))
        .await
        .map_err(core)
}

pub(super) async fn write(daemon: &Daemon, p: WriteParams) -> Result<SendResult, RpcError> {
    let data = base64::engine::general_purpose::STANDARD
        .decode(&p.data_b64)
        .map_err(|e| {
            RpcError::new(
                ErrorKind::InvalidParams,
                format!("data_b64 is not base64: {e}"),
            )
        })?;
    let handle = session(daemon, &p.target)?;
    let turn = crate::order::my_turn().await;
    handle.write_then(data, || drop(turn)).await.map_err(core)
}

pub(super) async fn read(daemon: &Daemon, p: ReadParams) -> Result<ReadResult, RpcError> {
    session(daemon, &p.target)?.read(p).await.map_err(core)
}

pub(super) async fn capture(daemon: &Daemon, p: CaptureParams) -> Result<CaptureResult, RpcError> {
    session(daemon, &p.target)?.capture(p).await.map_err(core)
}

pub(super) async fn wait(daemon: &Daemon, p: WaitParams) -> Result<WaitResult, RpcError> {
    let cond = WaitCondition::parse(&p.condition).map_err(core)?;
    session(daemon, &p.target)?
        .wait(cond, p.timeout_ms, p.since)
        .await
        .map_err(core)
}

pub(super) async fn resize(daemon: &Daemon, p: ResizeParams) -> Result<Empty, RpcError> {
    session(daemon, &p.target)?
        .resize(p.size)
        .await
        .map_err(core)?;
    Ok(Empty {})
}

/// Kills a session; `SessionKilled` revokes every grant bound to it, drops its context and
/// its record.
pub(super) async fn kill(daemon: &Daemon, p: Target) -> Result<Empty, RpcError> {
    let id = super::pin::id_of(&daemon.manager, &p.target);
    super::pin::kill(&daemon.manager, &p.target)
        .await
        .map_err(core)?;
    daemon
        .publish(Event::SessionKilled {
            name: &p.target,
            id: id.as_deref(),
        })
        .await;
    Ok(Empty {})
}

pub(super) async fn subscribe(
    daemon: &Daemon,
    caller: &Caller,
    p: Target,
) -> Result<SubscribeResult, RpcError> {
    let handle = session(daemon, &p.target)?;
    let (result, rx) = handle.subscribe().await.map_err(core)?;
    tokio::spawn(forward(handle, p.target, rx, caller.notifier()));
    Ok(result)
}

pub(super) fn status(daemon: &Daemon) -> StatusResult {
    StatusResult {
        pid: std::process::id(),
        socket: daemon.paths.socket.display().to_string(),
        state_dir: daemon.paths.data.display().to_string(),
        uptime_ms: daemon.started.elapsed().as_millis() as u64,
        sessions: daemon.manager.len(),
        version: env!("CARGO_PKG_VERSION").into(),
        protocol: PROTOCOL_VERSION,
        persist: Some(daemon.persist.status()),
        audit: Some(daemon.access.audit_status()),
        degraded: daemon.manager.degraded(),
        config: Some(ConfigStatus {
            path: daemon.config_file.0.display().to_string(),
            loaded: daemon.config_file.1,
        }),
        hooks: daemon.hooks.status(),
    }
}

pub(super) fn stop(daemon: &Daemon) -> Empty {
    daemon.shutdown.notify_one();
    Empty {}
}

/// `context.*`: the target is a session (which must exist; an unknown one lists those that
/// do) or `agent:NAME`, a registered agent's own context, which only that agent (or the
/// owner) may use. Returns the key the context is kept under: the session's or the agent's
/// id, never a name, so a later session or agent with the same name starts empty.
pub(super) fn context_target(
    daemon: &Daemon,
    who: &Principal,
    target: &str,
) -> Result<String, RpcError> {
    match target.strip_prefix("agent:") {
        Some(name) => {
            let agent = daemon.coord.agent_by_name(name).map_err(|_| {
                let names: Vec<String> =
                    daemon.coord.agents().into_iter().map(|a| a.name).collect();
                RpcError::new(ErrorKind::NotFound, format!("no agent named '{name}'"))
                    .with_hint(format!("registered agents: {}", names.join(", ")))
            })?;
            let allowed = match who {
                Principal::Owner | Principal::Http => true,
                Principal::Agent(id) => *id == agent.id.0,
                Principal::Token(_) => false,
            };
            if !allowed {
                return Err(RpcError::new(
                    ErrorKind::PermissionDenied,
                    format!("only agent '{name}' and the owner may use its context"),
                )
                .with_hint("an agent's context is its own: use agent:YOUR_NAME"));
            }
            Ok(crate::context::agent_key(agent.id.0))
        }
        None => session(daemon, target).map(|h| h.id().to_owned()),
    }
}

pub(super) fn notification(method: &str, params: impl Serialize) -> Option<String> {
    let mut line = serde_json::to_string(&Notification::new(method, params).ok()?).ok()?;
    line.push('\n');
    Some(line)
}

/// Streams a session's output to a subscribed connection until either side goes away. A
/// subscriber that falls behind the broadcast buffer gets a fresh screen redraw instead of the
/// bytes it missed (which stay readable from the log with `session.read`).
async fn forward(
    handle: SessionHandle,
    target: String,
    mut rx: broadcast::Receiver<SessionEvent>,
    tx: mpsc::Sender<String>,
) {
    let b64 = base64::engine::general_purpose::STANDARD;
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            () = tx.closed() => return,
        };
        let line = match event {
            Ok(SessionEvent::Output { offset, data }) => notification(
                m::NOTIFY_OUTPUT,
                OutputEvent {
                    target: target.clone(),
                    offset,
                    data_b64: b64.encode(&data),
                },
            ),
            Ok(SessionEvent::Closed { exit_code }) => {
                if let Some(line) = notification(
                    m::NOTIFY_CLOSED,
                    ClosedEvent {
                        target: target.clone(),
                        exit_code,
                    },
                ) {
                    tx.send(line).await.ok();
                }
                return;
            }
            Ok(SessionEvent::CommandStarted { offset }) => notification(
                m::NOTIFY_COMMAND,
                CommandEvent {
                    target: target.clone(),
                    phase: CommandPhase::Started,
                    offset,
                    exit_code: None,
                },
            ),
            Ok(SessionEvent::CommandFinished { offset, exit_code }) => notification(
                m::NOTIFY_COMMAND,
                CommandEvent {
                    target: target.clone(),
                    phase: CommandPhase::Finished,
                    offset,
                    exit_code,
                },
            ),
            Ok(SessionEvent::State { state, exit_code }) => notification(
                m::NOTIFY_STATE,
                StateEvent {
                    target: target.clone(),
                    state,
                    exit_code,
                },
            ),
            Err(broadcast::error::RecvError::Lagged(_)) => match handle.subscribe().await {
                Ok((fresh, new_rx)) => {
                    rx = new_rx;
                    let data = b64.encode(fresh.screen_ansi.as_bytes());
                    notification(
                        m::NOTIFY_OUTPUT,
                        OutputEvent {
                            target: target.clone(),
                            offset: fresh.offset,
                            data_b64: data,
                        },
                    )
                }
                Err(_) => return,
            },
            Err(broadcast::error::RecvError::Closed) => {
                if let Some(line) = notification(
                    m::NOTIFY_CLOSED,
                    ClosedEvent {
                        target: target.clone(),
                        exit_code: None,
                    },
                ) {
                    tx.send(line).await.ok();
                }
                return;
            }
        };
        if let Some(line) = line {
            if tx.send(line).await.is_err() {
                return;
            }
        }
    }
}
