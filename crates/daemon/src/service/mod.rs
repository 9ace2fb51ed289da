//! The application service: every operation of the daemon, whichever front end it came from.
//!
//! Front ends (the socket's [`crate::connection`], the HTTP and WebSocket server, the in-process
//! MCP server at `/mcp`) decode a request, call [`handle`] with their [`Caller`], and encode
//! the answer. `handle` decides identity (`hello`) and capability once, from the method's entry
//! in the protocol crate's registry, runs the method's service function (an exhaustive match
//! over [`Call`]: a method without one does not compile), and publishes what happened as
//! [`Event`]s to the observers: the access table and audit log, the contexts, the store,
//! telemetry.
//!
//! Direction: front end -> service -> observers. Observers never call back into the service.

mod audit_trail;
mod caller;
mod events;
mod forward;
mod history;
mod pin;
mod relay;
mod reports;
mod sessions;
mod spread;
mod upgrade;

use std::sync::Arc;

use ai_session_protocol::registry::{self as reg, Call, Method};
use ai_session_protocol::{ErrorKind, RpcError};
use serde::Serialize;
use serde_json::Value;

pub(crate) use caller::{Caller, Receipted, Tethers};
pub(crate) use events::{Ack, Event, Observer, Reaction};
pub(crate) use forward::forwardable;
pub(crate) use pin::get as session_handle;
pub(crate) use relay::owner as relay_caller;
pub(crate) use sessions::exec;
pub(crate) use spread::lost_session;

use crate::access::Principal;
use crate::server::Daemon;

/// Encodes a result.
pub(crate) fn json(value: impl Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| {
        RpcError::new(
            ErrorKind::Internal,
            format!("cannot encode the result: {e}"),
        )
    })
}

/// A library object (the coordinator's, a context's) as its protocol twin: the same JSON,
/// typed for the wire.
pub(crate) fn wire<T: serde::de::DeserializeOwned>(value: impl Serialize) -> Result<T, RpcError> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| {
            RpcError::new(
                ErrorKind::Internal,
                format!("cannot encode the result: {e}"),
            )
        })
}

/// Encodes a method's result, checking at compile time that the service function returns the
/// type the registry declares.
fn ok<M: Method>(result: Result<M::Result, RpcError>) -> Result<Value, RpcError> {
    json(result?)
}

/// As [`ok`], for a result the store records before the answer (`session.new`, `session.exec`):
/// when it could not (a full disk), the answer still goes out, saying `persisted: false` and
/// why (`persist_error`), never acknowledging as saved what the next daemon will not know.
fn saved<M: Method>(result: Result<(M::Result, Vec<String>), RpcError>) -> Result<Value, RpcError> {
    let (value, unsaved) = result?;
    with_unsaved(json(value)?, unsaved)
}

/// [`saved`] for `session.exec`: the output (up to megabytes) is moved into the answer, not
/// copied.
fn saved_exec(
    result: Result<(<reg::SessionExec as Method>::Result, Vec<String>), RpcError>,
) -> Result<Value, RpcError> {
    let (mut value, unsaved) = result?;
    let output = std::mem::take(&mut value.output);
    let mut answer = json(value)?;
    if let Some(fields) = answer.as_object_mut() {
        fields.insert("output".into(), Value::String(output));
    }
    with_unsaved(answer, unsaved)
}

/// Adds `persisted: false` and `persist_error` to an answer the store could not record.
fn with_unsaved(mut answer: Value, unsaved: Vec<String>) -> Result<Value, RpcError> {
    if let (false, Some(fields)) = (unsaved.is_empty(), answer.as_object_mut()) {
        fields.insert("persisted".into(), Value::Bool(false));
        fields.insert("persist_error".into(), Value::String(unsaved.join("; ")));
    }
    Ok(answer)
}

impl Daemon {
    /// Shows `event` to every observer and waits for what they acknowledge; returns their
    /// warnings.
    pub(crate) async fn publish(&self, event: Event<'_>) -> Vec<String> {
        let reactions = self.reactions(&event);
        events::settle(reactions).await
    }

    /// Shows `event` to every observer without waiting for their acknowledgements.
    pub(crate) fn observe(&self, event: &Event<'_>) {
        drop(self.reactions(event));
    }

    fn reactions(&self, event: &Event<'_>) -> Vec<Reaction> {
        let observers: [&dyn Observer; 5] = [
            &self.access,
            &self.contexts,
            &self.persist,
            &self.telemetry,
            &self.hooks,
        ];
        let mut reactions: Vec<Reaction> = observers.iter().map(|o| o.observe(event)).collect();
        // Last: a clustered exec's journal record follows the store's (`persist::checkpoint`).
        if let Some(cluster) = &self.cluster {
            reactions.extend(crate::persist::checkpoint::journal::observe(cluster, event));
        }
        reactions
    }
}

/// Handles one request for `caller`: identity, capability, the operation, the audit event.
pub(crate) async fn handle(
    daemon: &Arc<Daemon>,
    caller: &Arc<Caller>,
    method: &str,
    params: Value,
) -> Result<Value, RpcError> {
    let trace = crate::telemetry::caller_trace();
    handle_traced(daemon, caller, method, params, trace).await
}

/// [`handle`], as part of the caller's trace (`traceparent` from the request envelope, an
/// HTTP header or an MCP tool call's `_meta`): with tracing on, the request's span joins it.
pub(crate) async fn handle_traced(
    daemon: &Arc<Daemon>,
    caller: &Arc<Caller>,
    method: &str,
    params: Value,
    trace: Option<ai_session_protocol::trace::TraceContext>,
) -> Result<Value, RpcError> {
    if daemon.telemetry.tracing() {
        let scope = crate::telemetry::Tracing::scope(trace);
        crate::telemetry::Tracing::run(scope, handle_from(daemon, caller, method, params, None))
            .await
    } else {
        handle_from(daemon, caller, method, params, None).await
    }
}

/// [`handle`], for a request another node of the cluster forwarded (`origin`): it runs here,
/// and its audit entry names the entry node and the request id that node audited it under.
pub(crate) async fn handle_from(
    daemon: &Arc<Daemon>,
    caller: &Arc<Caller>,
    method: &str,
    params: Value,
    origin: Option<&ai_session_cluster::Origin>,
) -> Result<Value, RpcError> {
    let arrived = std::time::Instant::now();
    let spec = reg::spec(method);
    let mut detail = spec.map(|s| s.audit_detail(&params)).unwrap_or_default();
    if let Some(o) = origin {
        detail.push_str(&format!(" from={} request={}", o.node, o.request));
    }
    let mut session = params
        .get("target")
        .and_then(Value::as_str)
        .map(str::to_owned);
    // Resolved once, before the call (a killed session's id is gone after it): the check, the
    // operation and the audit entry all mean this session.
    let pin = pin::Pin::take(&daemon.manager, session.as_deref());
    let mut session_id = pin.as_ref().map(|p| p.id().to_owned());
    let mut who = caller.principal();
    // A `hello` with the token of an agent another node registered, checked with the cluster.
    let remote = match method == reg::Hello::NAME {
        true => crate::coord::remote_principal(daemon, &params).await,
        false => None,
    };
    let resolved = remote.is_some();
    let authorized = match remote {
        Some(Err(e)) => Err(e),
        Some(Ok(agent)) => {
            who = agent;
            caller.set_principal(who.clone());
            Ok(())
        }
        None => Ok(()),
    };
    let mut result = match spec {
        None => Err(reg::unknown_method(method)),
        Some(spec) => match authorized.and_then(|()| {
            let hello = (!resolved).then_some(&params);
            authorize(daemon, caller, &mut who, spec, &params, hello, pin.as_ref())
        }) {
            Err(e) => Err(e),
            Ok(()) => {
                let op = run(daemon, caller, &who, method, params, origin, &mut detail);
                pin::scope(pin, op).await
            }
        },
    };
    if method == reg::SessionNew::NAME {
        // The audit entry names the session created.
        if let Ok(v) = &result {
            session = v.get("name").and_then(Value::as_str).map(str::to_owned);
            session_id = v.get("id").and_then(Value::as_str).map(str::to_owned);
        }
    }
    let warnings = daemon
        .publish(Event::Handled {
            who: &who,
            spec,
            method,
            detail: &detail,
            session: session.as_deref(),
            session_id: session_id.as_deref(),
            result: &result,
            elapsed: arrived.elapsed(),
        })
        .await;
    if let (Some(warning), Ok(Value::Object(map))) = (warnings.into_iter().next(), &mut result) {
        map.insert("audit_warning".into(), Value::String(warning));
    }
    result
}

/// Runs an authorized call: on the node that owns its session when the daemon is in a
/// cluster and the session is elsewhere (the audit detail then names the node and the request
/// id), else here.
async fn run(
    daemon: &Arc<Daemon>,
    caller: &Arc<Caller>,
    who: &Principal,
    method: &str,
    params: Value,
    origin: Option<&ai_session_cluster::Origin>,
    detail: &mut String,
) -> Result<Value, RpcError> {
    // Kept for the lease of a killed session (only a clustered daemon has leases).
    let target = daemon
        .cluster
        .as_ref()
        .and_then(|_| params.get("target")?.as_str().map(str::to_owned));
    match forward::route(daemon, caller, who, method, params, origin).await {
        forward::Route::There { result, note } => {
            detail.push_str(&note);
            result
        }
        forward::Route::Here { params, claimed } => {
            let mut result = match Call::decode(method, params) {
                Ok(call) => dispatch(daemon, caller, who, call).await,
                Err(e) => Err(e),
            };
            forward::settle(daemon, method, claimed, target.as_deref(), &result).await;
            spread::gather(daemon, who, method, origin, &mut result).await;
            spread::after(daemon, who, method, target.as_deref(), &mut result).await;
            result
        }
    }
}

/// Takes a `hello`'s token (`hello`: its params, unless the cluster already checked the
/// token; the connection acts as its principal from then on), then checks the caller holds the
/// capability the method needs.
fn authorize(
    daemon: &Daemon,
    caller: &Caller,
    who: &mut Principal,
    spec: &'static reg::MethodSpec,
    params: &Value,
    hello: Option<&Value>,
    pin: Option<&pin::Pin>,
) -> Result<(), RpcError> {
    if spec.name == reg::Hello::NAME {
        if let Some(token) = hello.and_then(|p| p.get("token")?.as_str()) {
            *who = daemon.access.principal_for(token, &daemon.coord)?;
            caller.set_principal(who.clone());
        }
    }
    let sessions = pin::Checked {
        manager: &daemon.manager,
        pin,
    };
    daemon.access.check(who, spec, params, &sessions)
}

/// Every method onto its service function.
async fn dispatch(
    d: &Arc<Daemon>,
    caller: &Arc<Caller>,
    who: &Principal,
    call: Call,
) -> Result<Value, RpcError> {
    use crate::coord as co;
    use crate::persist as pe;
    use crate::telemetry::decisions as de;
    use reg::*;
    use sessions as s;
    match call {
        Call::Hello(p) => ok::<Hello>(s::hello(p)),
        Call::SessionNew(p) => saved::<SessionNew>(s::new(d, who, p).await),
        Call::SessionList(_) => ok::<SessionList>(s::list(d, who).await),
        Call::SessionExec(p) => saved_exec(s::exec_saved(d, who, p).await),
        Call::SessionSend(p) => ok::<SessionSend>(s::send(d, p).await),
        Call::SessionWrite(p) => ok::<SessionWrite>(s::write(d, p).await),
        Call::SessionRead(p) => ok::<SessionRead>(s::read(d, p).await),
        Call::SessionCapture(p) => ok::<SessionCapture>(s::capture(d, p).await),
        Call::SessionWait(p) => ok::<SessionWait>(s::wait(d, p).await),
        Call::SessionResize(p) => ok::<SessionResize>(s::resize(d, p).await),
        Call::SessionKill(p) => ok::<SessionKill>(s::kill(d, p).await),
        Call::SessionSubscribe(p) => ok::<SessionSubscribe>(s::subscribe(d, caller, p).await),
        Call::SessionResults(p) => ok::<SessionResults>(reports::history(d, p).await),
        Call::SessionDiagnostics(p) => ok::<SessionDiagnostics>(reports::diagnostics(d, p).await),
        Call::DaemonStatus(_) => ok::<DaemonStatus>(Ok(s::status(d))),
        Call::DaemonStats(_) => ok::<DaemonStats>(crate::telemetry::stats(d).await),
        Call::DaemonMetrics(_) => ok::<DaemonMetrics>(crate::telemetry::metrics(d).await),
        Call::AlertsList(p) => ok::<AlertsList>(crate::telemetry::alerts::list(d, &p)),
        Call::DecisionRecord(p) => ok::<DecisionRecord>(de::record(d, who, p).await),
        Call::DecisionOutcome(p) => ok::<DecisionOutcome>(de::outcome(d, p).await),
        Call::DecisionList(p) => ok::<DecisionList>(de::list(d, p).await),
        Call::DecisionShow(p) => ok::<DecisionShow>(de::show(d, p).await),
        Call::DecisionStats(p) => ok::<DecisionStats>(de::stats(d, p).await),
        Call::DaemonStop(_) => ok::<DaemonStop>(Ok(s::stop(d))),
        Call::DaemonUpgrade(p) => ok::<DaemonUpgrade>(upgrade::upgrade(d, p).await),
        Call::DaemonServe(p) => ok::<DaemonServe>(crate::http::start(d, p).await),
        Call::ClusterNodes(_) => ok::<ClusterNodes>(crate::cluster::nodes(d).await),
        Call::ClusterRestore(p) => ok::<ClusterRestore>(
            pe::checkpoint::restore(d, who, &p.name, p.as_name.as_deref()).await,
        ),
        Call::AuditRepair(_) => ok::<AuditRepair>(d.access.repair_audit(who)),
        Call::WebLogin(_) => ok::<WebLogin>(crate::http::web_login(d, who).await),
        Call::SessionHistory(p) => ok::<SessionHistory>(history::history(d, p).await),
        Call::AuditList(p) => ok::<AuditList>(audit_trail::list(d, p).await),
        Call::AuditVerify(_) => ok::<AuditVerify>(audit_trail::verify(d).await),
        Call::AuditOpen(p) => ok::<AuditOpen>(audit_trail::open(d, p).await),
        Call::SnapshotCreate(p) => ok::<SnapshotCreate>(pe::snapshot_create(d, p).await),
        Call::SnapshotList(p) => ok::<SnapshotList>(pe::snapshot_list(d, who, p).await),
        Call::SnapshotRestore(p) => ok::<SnapshotRestore>(pe::snapshot_restore(d, who, p).await),
        Call::SnapshotPrune(p) => ok::<SnapshotPrune>(pe::snapshot_prune(d, p).await),
        Call::SessionExport(p) => ok::<SessionExport>(pe::export(d, p).await),
        Call::SessionImport(p) => ok::<SessionImport>(pe::import(d, who, p).await),
        Call::ContextGet(p) => {
            let key = s::context_target(d, who, &p.target)?;
            ok::<ContextGet>(d.contexts.get(key, p).await)
        }
        Call::ContextAdd(p) => {
            let key = s::context_target(d, who, &p.target)?;
            ok::<ContextAdd>(d.contexts.add(key, p).await)
        }
        Call::ContextShow(p) => {
            let key = s::context_target(d, who, &p.target)?;
            ok::<ContextShow>(d.contexts.show(key, p).await)
        }
        Call::ContextTask(p) => {
            let key = s::context_target(d, who, &p.target)?;
            ok::<ContextTask>(d.contexts.task(key, p).await)
        }
        Call::ContextConfig(p) => {
            let key = s::context_target(d, who, &p.target)?;
            ok::<ContextConfig>(d.contexts.config(key, p).await)
        }
        Call::AccessGrant(p) => ok::<AccessGrant>(d.access.grant(p, true, &d.manager)),
        Call::AccessRevoke(p) => ok::<AccessRevoke>(d.access.grant(p, false, &d.manager)),
        Call::AccessToken(p) => ok::<AccessToken>(d.access.token(p, &d.manager)),
        Call::AccessPolicy(p) => ok::<AccessPolicy>(d.access.policy(p)),
        Call::AccessRevokeToken(p) => ok::<AccessRevokeToken>(d.access.revoke_token_call(p)),
        Call::AccessList(_) => ok::<AccessList>(Ok(d.access.list_all())),
        Call::AgentRegister(p) => ok::<AgentRegister>(co::agent_register(d, caller, p).await),
        Call::AgentList(_) => ok::<AgentList>(co::agent_list(d).await),
        Call::AgentHeartbeat(p) => ok::<AgentHeartbeat>(co::agent_heartbeat(d, p).await),
        Call::AgentUnregister(p) => ok::<AgentUnregister>(co::agent_unregister(d, p).await),
        Call::BusPublish(p) => ok::<BusPublish>(co::bus_publish(d, p).await),
        Call::BusSubscribe(p) => ok::<BusSubscribe>(co::bus_subscribe(d, caller, p).await),
        Call::BusSend(p) => ok::<BusSend>(co::bus_send(d, p).await),
        Call::BusBroadcast(p) => ok::<BusBroadcast>(co::bus_broadcast(d, p).await),
        Call::BusRequest(p) => ok::<BusRequest>(co::bus_request(d, p).await),
        Call::BusReply(p) => ok::<BusReply>(co::bus_reply(d, p).await),
        Call::BusInbox(p) => ok::<BusInbox>(co::bus_inbox(d, caller, p).await),
        Call::BusDeadLetters(_) => ok::<BusDeadLetters>(co::bus_dead_letters(d).await),
        Call::BusTopics(_) => ok::<BusTopics>(co::bus_topics(d).await),
        Call::TaskSubmit(p) => ok::<TaskSubmit>(co::task_submit(d, p).await),
        Call::TaskClaim(p) => ok::<TaskClaim>(co::task_claim(d, p).await),
        Call::TaskDone(p) => ok::<TaskDone>(co::task_done(d, p).await),
        Call::TaskFail(p) => ok::<TaskFail>(co::task_fail(d, p).await),
        Call::TaskList(p) => ok::<TaskList>(co::task_list(d, p).await),
        Call::TaskShow(p) => ok::<TaskShow>(co::task_show(d, p).await),
        Call::EventsSubscribe(_) => ok::<EventsSubscribe>(co::events_subscribe(d, caller).await),
        Call::BusRecent(p) => ok::<BusRecent>(co::bus_recent(d, p).await),
    }
}
