//! Methods onto the session library: parameter decoding, the call, result encoding.

use std::sync::Arc;

use ai_session_core::{Error as CoreError, SessionEvent, SessionHandle, WaitCondition};
use ai_session_protocol::methods::{self as m, *};
use ai_session_protocol::{ErrorKind, Notification, PROTOCOL_VERSION, Request, Response, RpcError};
use base64::Engine;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::server::Daemon;

const METHODS: &[&str] = &[
    m::HELLO,
    m::SESSION_NEW,
    m::SESSION_LIST,
    m::SESSION_EXEC,
    m::SESSION_SEND,
    m::SESSION_WRITE,
    m::SESSION_READ,
    m::SESSION_CAPTURE,
    m::SESSION_WAIT,
    m::SESSION_RESIZE,
    m::SESSION_KILL,
    m::SESSION_SUBSCRIBE,
    m::DAEMON_STATUS,
    m::DAEMON_STOP,
    m::DAEMON_SERVE,
];

pub(crate) async fn handle(
    daemon: &Arc<Daemon>,
    req: Request,
    tx: &mpsc::Sender<String>,
    conn: &Arc<crate::coord::ConnState>,
) -> Response {
    let id = req.id.clone();
    let mut who = conn.principal();
    let ctx = crate::access::AuditCtx::of(&req.method, &req.params);
    let mut result = match authorize(daemon, conn, &mut who, &req) {
        Err(e) => Err(e),
        Ok(()) if req.method.starts_with("access.") || req.method == m::AUDIT_REPAIR => {
            daemon.access.route(&who, &req.method, &req.params)
        }
        Ok(()) if crate::persist::owns(&req.method) => {
            crate::persist::route(daemon, &req.method, req.params, &who).await
        }
        Ok(()) if crate::coord::owns(&req.method) => {
            crate::coord::route(daemon, conn, &req.method, req.params, tx).await
        }
        Ok(()) if req.method.starts_with("context.") => context(daemon, req, &who).await,
        Ok(()) => route(daemon, req, tx, &who).await,
    };
    daemon.access.audit(&who, ctx, &mut result);
    match result {
        Ok(value) => Response::ok(id, value),
        Err(err) => Response::err(id, err),
    }
}

/// Takes a `hello`'s token (the connection acts as its principal from then on), then checks
/// the caller holds the capability the method needs.
fn authorize(
    daemon: &Daemon,
    conn: &crate::coord::ConnState,
    who: &mut crate::access::Principal,
    req: &Request,
) -> Result<(), RpcError> {
    if req.method == m::HELLO {
        if let Some(token) = req.params.get("token").and_then(Value::as_str) {
            *who = daemon.access.principal_for(token, &daemon.coord)?;
            conn.set_principal(who.clone());
        }
    }
    daemon.access.check(who, &req.method, &req.params)
}

/// `context.*`: the target is a session (which must exist; an unknown one lists those that
/// do) or `agent:NAME`, a registered agent's own context, which only that agent (or the
/// owner) may use.
async fn context(
    daemon: &Daemon,
    req: Request,
    who: &crate::access::Principal,
) -> Result<Value, RpcError> {
    let target = req
        .params
        .get("target")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match target.strip_prefix("agent:") {
        Some(name) => {
            let agent = daemon.coord.agent_by_name(name).map_err(|_| {
                let names: Vec<String> =
                    daemon.coord.agents().into_iter().map(|a| a.name).collect();
                RpcError::new(ErrorKind::NotFound, format!("no agent named '{name}'"))
                    .with_hint(format!("registered agents: {}", names.join(", ")))
            })?;
            use crate::access::Principal as P;
            let allowed = match who {
                P::Owner | P::Http => true,
                P::Agent(id) => *id == agent.id.0,
                P::Token(_) => false,
            };
            if !allowed {
                return Err(RpcError::new(
                    ErrorKind::PermissionDenied,
                    format!("only agent '{name}' and the owner may use its context"),
                )
                .with_hint("an agent's context is its own: use agent:YOUR_NAME"));
            }
        }
        None => {
            session(daemon, target)?;
        }
    }
    daemon.contexts.route(&req.method, req.params).await
}

/// The context an agent's execs also feed: `agent:NAME`.
fn agent_context(daemon: &Daemon, who: &crate::access::Principal) -> Option<String> {
    let crate::access::Principal::Agent(id) = who else {
        return None;
    };
    let agent = daemon.coord.agent(ai_session_coord::AgentId(*id)).ok()?;
    Some(format!("agent:{}", agent.name))
}

fn params<T: DeserializeOwned>(value: Value) -> Result<T, RpcError> {
    serde_json::from_value(value)
        .map_err(|e| RpcError::new(ErrorKind::InvalidParams, format!("invalid params: {e}")))
}

pub(crate) fn json(value: impl Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| {
        RpcError::new(
            ErrorKind::Internal,
            format!("cannot encode the result: {e}"),
        )
    })
}

fn core(e: CoreError) -> RpcError {
    e.to_rpc()
}

fn session(daemon: &Daemon, target: &str) -> Result<SessionHandle, RpcError> {
    daemon.manager.get(target).map_err(core)
}

async fn route(
    daemon: &Arc<Daemon>,
    req: Request,
    tx: &mpsc::Sender<String>,
    who: &crate::access::Principal,
) -> Result<Value, RpcError> {
    let p = req.params;
    match req.method.as_str() {
        m::HELLO => {
            let hello: HelloParams = params(p)?;
            if hello.protocol != PROTOCOL_VERSION {
                return Err(RpcError::new(
                    ErrorKind::VersionMismatch,
                    format!("client speaks protocol {}, the daemon speaks {PROTOCOL_VERSION}", hello.protocol),
                )
                .with_hint("restart the daemon with the same ai-session version (`ai-session daemon stop`)"));
            }
            json(HelloResult {
                server: server_name(),
                protocol: PROTOCOL_VERSION,
                pid: std::process::id(),
            })
        }
        m::SESSION_NEW => {
            let mut new: NewParams = params(p)?;
            new.policy = daemon.access.sandbox_for(
                who,
                new.policy.take(),
                new.cwd.as_deref(),
                &daemon.paths,
            )?;
            let info = daemon.manager.create(new.clone()).await.map_err(core)?;
            daemon.access.forget_session(&info.name);
            daemon.persist.on_new(&info, &new);
            daemon.access.owns_session(who, &info.name);
            json(info)
        }
        m::SESSION_LIST => {
            let mut sessions = daemon.manager.list().await;
            sessions.retain(|s| daemon.access.may_read(who, &s.name));
            json(ListResult { sessions })
        }
        m::SESSION_EXEC => {
            let p: ExecParams = params(p)?;
            let (target, command, started) = (
                p.target.clone(),
                p.command.clone(),
                crate::persist::now_ms(),
            );
            let result = session(daemon, &p.target)?.exec(p).await.map_err(core)?;
            daemon.contexts.record(&target, command.clone(), &result);
            if let Some(mine) = agent_context(daemon, who) {
                daemon.contexts.record(&mine, command.clone(), &result);
            }
            daemon
                .persist
                .on_exec(&target, command, started, &result)
                .await;
            json(result)
        }
        m::SESSION_SEND => {
            let p: SendParams = params(p)?;
            json(
                session(daemon, &p.target)?
                    .send_keys(p.keys, p.literal, p.paste)
                    .await
                    .map_err(core)?,
            )
        }
        m::SESSION_WRITE => {
            let p: WriteParams = params(p)?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(&p.data_b64)
                .map_err(|e| {
                    RpcError::new(
                        ErrorKind::InvalidParams,
                        format!("data_b64 is not base64: {e}"),
                    )
                })?;
            json(
                session(daemon, &p.target)?
                    .write(data)
                    .await
                    .map_err(core)?,
            )
        }
        m::SESSION_READ => {
            let p: ReadParams = params(p)?;
            json(session(daemon, &p.target)?.read(p).await.map_err(core)?)
        }
        m::SESSION_CAPTURE => {
            let p: CaptureParams = params(p)?;
            json(session(daemon, &p.target)?.capture(p).await.map_err(core)?)
        }
        m::SESSION_WAIT => {
            let p: WaitParams = params(p)?;
            let cond = WaitCondition::parse(&p.condition).map_err(core)?;
            json(
                session(daemon, &p.target)?
                    .wait(cond, p.timeout_ms, p.since)
                    .await
                    .map_err(core)?,
            )
        }
        m::SESSION_RESIZE => {
            let p: ResizeParams = params(p)?;
            session(daemon, &p.target)?
                .resize(p.size)
                .await
                .map_err(core)?;
            Ok(Value::Object(Default::default()))
        }
        m::SESSION_KILL => {
            let p: Target = params(p)?;
            daemon.manager.kill(&p.target).await.map_err(core)?;
            daemon.access.forget_session(&p.target);
            daemon.contexts.forget(&p.target);
            daemon.persist.on_kill(&p.target);
            Ok(Value::Object(Default::default()))
        }
        m::SESSION_SUBSCRIBE => {
            let p: Target = params(p)?;
            let handle = session(daemon, &p.target)?;
            let (result, rx) = handle.subscribe().await.map_err(core)?;
            tokio::spawn(forward(handle, p.target, rx, tx.clone()));
            json(result)
        }
        m::DAEMON_STATUS => json(StatusResult {
            pid: std::process::id(),
            socket: daemon.paths.socket.display().to_string(),
            state_dir: daemon.paths.data.display().to_string(),
            uptime_ms: daemon.started.elapsed().as_millis() as u64,
            sessions: daemon.manager.len(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: PROTOCOL_VERSION,
            persist: Some(daemon.persist.status()),
            audit: Some(daemon.access.audit_status()),
        }),
        m::DAEMON_SERVE => crate::http::serve_method(daemon, p).await,
        m::DAEMON_STOP => {
            daemon.shutdown.notify_one();
            Ok(Value::Object(Default::default()))
        }
        other => Err(RpcError::new(
            ErrorKind::MethodNotFound,
            format!("unknown method '{other}'"),
        )
        .with_hint(format!(
            "methods: {}, {}",
            METHODS.join(", "),
            ai_session_protocol::coord::METHODS.join(", ")
        ))),
    }
}

fn server_name() -> String {
    format!("ai-session {}", env!("CARGO_PKG_VERSION"))
}

fn notification(method: &str, params: impl Serialize) -> Option<String> {
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
