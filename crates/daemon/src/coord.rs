//! Coordination methods (`agent.*`, `bus.*`, `task.*`, `events.*`) onto the daemon's one
//! [`Coordinator`]: parameter decoding, token checks, error mapping, and the streams that push
//! bus messages, inbox messages and events to a connection as notifications.

use std::sync::Arc;
use std::time::Duration;

use ai_session_coord::{
    AgentAuth, AgentId, AgentSpec, CoordError, Coordinator, CorrelationId, Dep, Inbox,
    Subscription, TaskId, TaskSpec, TaskState, Token,
};
use ai_session_protocol::coord::{self as c, *};
use ai_session_protocol::hint::Advice;
use ai_session_protocol::{ErrorKind, Notification, RpcError};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::server::Daemon;
use crate::service::{Caller, wire};
use ai_session_protocol::registry::Empty;

mod cluster;
pub(crate) use cluster::{renew_agents, start as start_cluster};

/// Default wait for `bus.request` when the caller gives none.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How much longer than a request's own wait its answer may take from another node.
const REMOTE_MARGIN: Duration = Duration::from_secs(2);
/// Messages a stream moves from its queue to the connection in one write.
const STREAM_BATCH: usize = 256;
/// How long an agent's call through another node may wait for its own node's answer.
const HOME_CALL: Duration = Duration::from_secs(10);

/// A coordinator refusal as a protocol error: the coordinator's message, a hint saying what to
/// do, and its stable code in `data.reason`.
pub(crate) fn coord_error(e: CoordError) -> RpcError {
    use CoordError as E;
    let (kind, hint) = match &e {
        E::Unauthorized { .. } => (
            ErrorKind::PermissionDenied,
            Advice::new("present the token {0} returned for this agent ({1})")
                .call("agent.register", json!({"name": "NAME"}))
                .field("agent.heartbeat", "token"),
        ),
        E::NotTaskHolder { .. } => (
            ErrorKind::PermissionDenied,
            Advice::new("only the agent holding a task may report it; {0} says who holds it")
                .call("task.show", json!({"id": "ID"})),
        ),
        E::NotAddressee { .. } => (
            ErrorKind::PermissionDenied,
            Advice::new("only the agent a request was sent to may reply to it"),
        ),
        E::AgentGone { .. } => (
            ErrorKind::PermissionDenied,
            Advice::new("the agent left (unregistered, disconnected or missed its heartbeat); register again ({0}) for a new token")
                .call("agent.register", json!({"name": "NAME"})),
        ),
        E::UnknownAgent(_) | E::UnknownAgentName(_) => (
            ErrorKind::NotFound,
            Advice::new("{0} lists the agents").call("agent.list", json!({})),
        ),
        E::UnknownTask(_) => (
            ErrorKind::NotFound,
            Advice::new("{0} lists the tasks").call("task.list", json!({})),
        ),
        E::UnknownRequest(_) => (
            ErrorKind::NotFound,
            Advice::new("the request timed out or was already answered; nothing to reply to"),
        ),
        E::UnknownDependency { .. } | E::UnknownDependencyKey { .. } => (
            ErrorKind::InvalidParams,
            Advice::new("every task in {0} must exist ({1} lists them)")
                .field("task.submit", "after")
                .call("task.list", json!({})),
        ),
        E::DependencyFailed { .. } => (
            ErrorKind::Conflict,
            Advice::new("the dependency can never complete; submit it again, then this task after it"),
        ),
        E::Cycle { .. } | E::DuplicateKey { .. } => (
            ErrorKind::InvalidParams,
            Advice::new("dependencies must form a DAG: break the cycle"),
        ),
        E::InvalidAgent(_) => (
            ErrorKind::InvalidParams,
            Advice::new("give a non-empty name and non-empty capabilities"),
        ),
        E::InvalidTask(_) => (
            ErrorKind::InvalidParams,
            Advice::new("give non-empty capability names in {0}").field("task.submit", "needs"),
        ),
        E::NameTaken { .. } => (
            ErrorKind::Conflict,
            Advice::new("choose another name, or unregister the active agent first"),
        ),
        E::InvalidTaskState { .. } => (
            ErrorKind::Conflict,
            Advice::new("{0} shows the task's current state").call("task.show", json!({"id": "ID"})),
        ),
        E::InboxFull { .. } => (
            ErrorKind::Conflict,
            Advice::new("the agent is not reading its inbox; the message is in the dead letters ({0})")
                .call("bus.dead_letters", json!({})),
        ),
        E::ReservedTopic { .. } => (
            ErrorKind::InvalidParams,
            Advice::new("topics starting with '$' carry the coordinator's own events: subscribe to them, publish elsewhere"),
        ),
        E::RequestTimeout { .. } => (
            ErrorKind::Timeout,
            Advice::new("the agent did not reply in time: check that it reads its inbox, or wait longer ({0})")
                .field("bus.request", "timeout_ms"),
        ),
        E::Closed => (
            ErrorKind::ShuttingDown,
            Advice::new("the coordinator is shutting down"),
        ),
    };
    RpcError::new(kind, e.to_string())
        .with_advice(hint)
        .with_reason(e.code())
}

fn bad_token() -> RpcError {
    RpcError::new(
        ErrorKind::PermissionDenied,
        "malformed agent token: expected <agent id>.<64 hex digits>",
    )
    .with_advice(
        Advice::new("pass the token exactly as {0} returned it")
            .call("agent.register", json!({"name": "NAME"})),
    )
    .with_reason("unauthorized")
}

/// The wire form of an agent's credentials: `<agent id>.<token hex>`.
fn token_string(auth: &AgentAuth) -> String {
    format!("{}.{}", auth.agent.0, auth.token.to_hex())
}

pub(crate) fn parse_token(token: &str) -> Result<AgentAuth, RpcError> {
    let (id, hex) = token.trim().split_once('.').ok_or_else(bad_token)?;
    let agent = AgentId(id.parse().map_err(|_| bad_token())?);
    let token = Token::from_hex(hex).ok_or_else(bad_token)?;
    Ok(AgentAuth { agent, token })
}

/// An agent named by name, by id (`3`), or as displayed (`agent-3`).
fn resolve_agent(coord: &Coordinator, who: &str) -> Result<AgentId, RpcError> {
    match coord.agent_by_name(who) {
        Ok(info) => Ok(info.id),
        Err(e) => {
            let digits = who.strip_prefix("agent-").unwrap_or(who);
            match digits.parse::<u64>() {
                Ok(n) => coord.agent(AgentId(n)).map(|i| i.id).map_err(coord_error),
                Err(_) => Err(coord_error(e)),
            }
        }
    }
}

/// The credentials a call presents. When `agent` is given, the token must be that agent's.
fn auth(coord: &Coordinator, t: &AgentToken) -> Result<AgentAuth, RpcError> {
    let mut auth = parse_token(&t.token)?;
    if let Some(who) = &t.agent {
        auth.agent = resolve_agent(coord, who)?;
    }
    Ok(auth)
}

fn optional_auth(coord: &Coordinator, token: Option<&str>) -> Result<Option<AgentAuth>, RpcError> {
    token
        .map(|t| {
            auth(
                coord,
                &AgentToken {
                    token: t.to_string(),
                    agent: None,
                },
            )
        })
        .transpose()
}

/// Any successful call made as an agent counts as a heartbeat.
fn alive(coord: &Coordinator, auth: Option<&AgentAuth>) {
    if let Some(auth) = auth {
        coord.heartbeat(auth).ok();
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) async fn agent_register(
    daemon: &Daemon,
    caller: &Caller,
    p: RegisterParams,
) -> Result<RegisterResult, RpcError> {
    let coord = &daemon.coord;
    let mut spec = AgentSpec::new(p.name);
    spec.capabilities = p.capabilities;
    spec.session = p.session;
    if let Some(n) = p.max_tasks {
        spec.max_tasks = n;
    }
    let reg = match &daemon.cluster {
        Some(c) => cluster::register(daemon, c, spec).await?,
        None => coord.register(spec).map_err(coord_error)?,
    };
    daemon.access.agent_registered(reg.info.id.0);
    if !p.keep && !caller.track(daemon, reg.info.id) {
        coord.disconnect(reg.info.id).ok();
        return Err(RpcError::new(
            ErrorKind::Internal,
            "the connection closed while the agent was registering",
        ));
    }
    Ok(RegisterResult {
        agent: reg.info.id.0,
        name: reg.info.name.clone(),
        token: token_string(&reg.auth),
        heartbeat_deadline_ms: ms(coord.config().heartbeat_deadline),
        info: wire(&reg.info)?,
    })
}

pub(crate) async fn agent_list(daemon: &Daemon) -> Result<AgentListResult, RpcError> {
    let coord = &daemon.coord;
    let mut agents: Vec<c::AgentInfo> =
        coord.agents().iter().map(wire).collect::<Result<_, _>>()?;
    // In a cluster: this node's agents, then every other node's (by id, unique in the cluster).
    if let Some(cl) = &daemon.cluster {
        for a in &mut agents {
            a.node = Some(cl.node().to_string());
        }
        for (node, info) in cluster::remote_agents(cl).await? {
            let mut a: c::AgentInfo = wire(info)?;
            a.node = Some(node);
            agents.push(a);
        }
        // The tasks are the cluster's: an agent's load is the running tasks it holds there.
        let running = cl
            .tasks(Some("running"))
            .await
            .map_err(cluster::task_error)?;
        for a in &mut agents {
            a.load = running.iter().filter(|t| t.agent == Some(a.id)).count();
        }
        agents.sort_by_key(|a| a.id);
    }
    Ok(AgentListResult { agents })
}

/// The agent a token names when another node of the cluster registered it (checked against
/// the cluster's secret); `None` for a token of this node's agents, or without a cluster.
async fn remote_sender(
    daemon: &Daemon,
    from: Option<&AgentAuth>,
) -> Result<Option<AgentId>, RpcError> {
    let (Some(cl), Some(auth)) = (&daemon.cluster, from) else {
        return Ok(None);
    };
    if daemon.coord.agent(auth.agent).is_ok() {
        return Ok(None);
    }
    cluster::remote_sender(cl, auth).await.map(Some)
}

/// The agent a bus call is signed by, checked: this node's agent (its token verified, which
/// counts as a heartbeat) or another node's.
async fn signer(daemon: &Daemon, from: Option<&AgentAuth>) -> Result<Option<AgentId>, RpcError> {
    if let Some(id) = remote_sender(daemon, from).await? {
        return Ok(Some(id));
    }
    match from {
        Some(auth) => {
            daemon.coord.heartbeat(auth).map_err(coord_error)?;
            Ok(Some(auth.agent))
        }
        None => Ok(None),
    }
}

/// Where the agent a message is addressed to is: on this node, or on another of the cluster.
enum Addressee {
    Here(AgentId),
    Node(String, u64),
}

async fn addressee(daemon: &Daemon, who: &str) -> Result<Addressee, RpcError> {
    let here = resolve_agent(&daemon.coord, who);
    let (Some(cl), Err(e)) = (&daemon.cluster, &here) else {
        return here.map(Addressee::Here);
    };
    match cluster::find_remote(cl, who).await? {
        Some((id, record)) => Ok(Addressee::Node(record.node, id)),
        None => Err(e.clone()),
    }
}

/// Sends a direct message or a request to an agent of another node, through the cluster.
async fn call_remote(
    daemon: &Daemon,
    (node, to): (String, u64),
    from: Option<AgentId>,
    route: ai_session_cluster::BusRoute,
    payload: &Value,
    wait: Duration,
) -> Result<Value, RpcError> {
    let cl = crate::cluster::clustered(daemon)?;
    cl.bus_call(&node, to, from.map(|a| a.0), route, payload, wait)
        .await
        .map_err(crate::cluster::to_rpc)?
}

/// The agent a token names, on this node or, in a cluster, on the node it registered on.
enum Holder {
    Here(AgentAuth),
    Node(String, u64),
}

/// Where the agent of `t` lives; an agent of another node must present a token the cluster's
/// secret confirms (checked here, so the token does not travel).
async fn holder(daemon: &Daemon, t: &AgentToken) -> Result<Holder, RpcError> {
    let coord = &daemon.coord;
    let Some(cl) = &daemon.cluster else {
        return auth(coord, t).map(Holder::Here);
    };
    let mut a = parse_token(&t.token)?;
    if let Some(who) = &t.agent {
        a.agent = match resolve_agent(coord, who) {
            Ok(id) => id,
            Err(e) => match cluster::find_remote(cl, who).await? {
                Some((id, _)) => AgentId(id),
                None => return Err(e),
            },
        };
    }
    if coord.agent(a.agent).is_ok() {
        return Ok(Holder::Here(a));
    }
    let (id, node) = cluster::remote_holder(cl, &a).await?;
    Ok(Holder::Node(node, id.0))
}

/// Makes an agent's call on the node it registered on.
async fn home_call(
    daemon: &Daemon,
    (node, id): (String, u64),
    route: ai_session_cluster::BusRoute,
    payload: &Value,
) -> Result<Value, RpcError> {
    call_remote(
        daemon,
        (node, id),
        Some(AgentId(id)),
        route,
        payload,
        HOME_CALL,
    )
    .await
}

pub(crate) async fn agent_heartbeat(daemon: &Daemon, p: AgentToken) -> Result<Empty, RpcError> {
    let a = match holder(daemon, &p).await? {
        Holder::Here(a) => a,
        Holder::Node(node, to) => {
            let route = ai_session_cluster::BusRoute::Heartbeat { to };
            home_call(daemon, (node, to), route, &Value::Null).await?;
            return Ok(Empty {});
        }
    };
    daemon.coord.heartbeat(&a).map_err(coord_error)?;
    Ok(Empty {})
}

pub(crate) async fn agent_unregister(daemon: &Daemon, p: AgentToken) -> Result<Empty, RpcError> {
    let coord = &daemon.coord;
    let a = match holder(daemon, &p).await? {
        Holder::Here(a) => a,
        Holder::Node(node, to) => {
            let route = ai_session_cluster::BusRoute::Unregister { to };
            let answer = home_call(daemon, (node, to), route, &Value::Null).await?;
            // Its node dropped its grants; those made here for it go too.
            if answer["left"] == true {
                daemon.observe(&crate::service::Event::AgentLeft { agent: to });
            }
            return Ok(Empty {});
        }
    };
    coord.unregister(&a).map_err(coord_error)?;
    // An agent tied to its connection leaves for good: its grants go with it. One
    // registered to persist (`keep`) keeps them for its next connection.
    daemon.tethers.unregistered(daemon, a.agent);
    Ok(Empty {})
}

pub(crate) async fn bus_publish(
    daemon: &Daemon,
    p: PublishParams,
) -> Result<DeliveryResult, RpcError> {
    let coord = &daemon.coord;
    let from = optional_auth(coord, p.token.as_deref())?;
    let messages = match (p.message, p.messages) {
        (Some(one), None) => vec![one],
        (None, Some(many)) => many,
        _ => {
            return Err(RpcError::new(
                ErrorKind::InvalidParams,
                "give exactly one of `message` and `messages`",
            ));
        }
    };
    let remote = remote_sender(daemon, from.as_ref()).await?;
    let mut total = DeliveryResult::default();
    for message in messages {
        let d = match remote {
            Some(id) => coord.publish_as(Some(id), &p.topic, message).await,
            None => coord.publish(from.as_ref(), &p.topic, message).await,
        }
        .map_err(coord_error)?;
        total.delivered += d.delivered;
        total.dead_lettered += d.dead_lettered;
    }
    alive(coord, from.as_ref());
    Ok(total)
}

pub(crate) async fn bus_subscribe(
    daemon: &Daemon,
    caller: &Caller,
    p: SubscribeParams,
) -> Result<SubscribeResult, RpcError> {
    let coord = &daemon.coord;
    let sub = coord.subscribe(&p.topic);
    let id = caller.stream_id();
    tokio::spawn(forward_topic(
        sub,
        id,
        c::NOTIFY_BUS_MESSAGE,
        caller.notifier(),
    ));
    Ok(SubscribeResult {
        subscription: id,
        topic: p.topic,
    })
}

pub(crate) async fn events_subscribe(
    daemon: &Daemon,
    caller: &Caller,
) -> Result<SubscribeResult, RpcError> {
    let coord = &daemon.coord;
    let sub = coord.events();
    let id = caller.stream_id();
    let topic = sub.topic().to_string();
    tokio::spawn(forward_topic(sub, id, c::NOTIFY_EVENT, caller.notifier()));
    Ok(SubscribeResult {
        subscription: id,
        topic,
    })
}

pub(crate) async fn bus_inbox(
    daemon: &Daemon,
    caller: &Arc<Caller>,
    p: AgentToken,
) -> Result<SubscribeResult, RpcError> {
    let coord = &daemon.coord;
    let a = match holder(daemon, &p).await? {
        Holder::Here(a) => a,
        Holder::Node(node, to) => return remote_inbox(daemon, caller, (node, to)).await,
    };
    let inbox = coord.inbox(&a).map_err(coord_error)?;
    alive(coord, Some(&a));
    let id = caller.stream_id();
    tokio::spawn(forward_inbox(inbox, id, caller.clone()));
    Ok(SubscribeResult {
        subscription: id,
        topic: format!("inbox of {}", a.agent),
    })
}

pub(crate) async fn bus_send(
    daemon: &Daemon,
    p: c::SendParams,
) -> Result<DeliveryResult, RpcError> {
    let coord = &daemon.coord;
    let from = optional_auth(coord, p.token.as_deref())?;
    let to = match addressee(daemon, &p.to).await? {
        Addressee::Here(to) => to,
        Addressee::Node(node, to) => {
            let signer = signer(daemon, from.as_ref()).await?;
            let route = ai_session_cluster::BusRoute::Direct { to };
            let wait = DEFAULT_REQUEST_TIMEOUT;
            let answer = call_remote(daemon, (node, to), signer, route, &p.message, wait).await?;
            return wire(answer);
        }
    };
    let d = match remote_sender(daemon, from.as_ref()).await? {
        Some(id) => coord.send_as(Some(id), to, p.message).await,
        None => coord.send(from.as_ref(), to, p.message).await,
    }
    .map_err(coord_error)?;
    alive(coord, from.as_ref());
    Ok(DeliveryResult {
        delivered: d.delivered,
        dead_lettered: d.dead_lettered,
    })
}

pub(crate) async fn bus_broadcast(
    daemon: &Daemon,
    p: c::BroadcastParams,
) -> Result<DeliveryResult, RpcError> {
    let coord = &daemon.coord;
    let from = optional_auth(coord, p.token.as_deref())?;
    let d = match remote_sender(daemon, from.as_ref()).await? {
        Some(id) => coord.broadcast_as(Some(id), p.message).await,
        None => coord
            .broadcast(from.as_ref(), p.message)
            .await
            .map_err(coord_error)?,
    };
    alive(coord, from.as_ref());
    Ok(DeliveryResult {
        delivered: d.delivered,
        dead_lettered: d.dead_lettered,
    })
}

pub(crate) async fn bus_request(
    daemon: &Daemon,
    p: RequestParams,
) -> Result<RequestResult, RpcError> {
    let coord = &daemon.coord;
    let from = optional_auth(coord, p.token.as_deref())?;
    let wait = p
        .timeout_ms
        .map_or(DEFAULT_REQUEST_TIMEOUT, Duration::from_millis);
    let to = match addressee(daemon, &p.to).await? {
        Addressee::Here(to) => to,
        Addressee::Node(node, to) => {
            let signer = signer(daemon, from.as_ref()).await?;
            let route = ai_session_cluster::BusRoute::Request {
                to,
                timeout_ms: ms(wait),
            };
            // The agent's node ends the request at `wait`; its answer needs a moment more.
            let answer = call_remote(
                daemon,
                (node, to),
                signer,
                route,
                &p.message,
                wait + REMOTE_MARGIN,
            )
            .await?;
            return Ok(RequestResult {
                reply: wire(answer)?,
            });
        }
    };
    let reply = match remote_sender(daemon, from.as_ref()).await? {
        Some(id) => coord.request_as(Some(id), to, p.message, wait).await,
        None => {
            alive(coord, from.as_ref());
            coord.request(from.as_ref(), to, p.message, wait).await
        }
    }
    .map_err(coord_error)?;
    Ok(RequestResult {
        reply: wire(&*reply)?,
    })
}

pub(crate) async fn bus_reply(daemon: &Daemon, p: ReplyParams) -> Result<Empty, RpcError> {
    let coord = &daemon.coord;
    let a = match holder(daemon, &p.auth).await? {
        Holder::Here(a) => a,
        Holder::Node(node, to) => {
            let route = ai_session_cluster::BusRoute::Reply {
                to,
                correlation: p.correlation,
            };
            home_call(daemon, (node, to), route, &p.message).await?;
            return Ok(Empty {});
        }
    };
    coord
        .reply(&a, CorrelationId(p.correlation), p.message)
        .map_err(coord_error)?;
    alive(coord, Some(&a));
    Ok(Empty {})
}

pub(crate) async fn bus_dead_letters(daemon: &Daemon) -> Result<DeadLettersResult, RpcError> {
    let coord = &daemon.coord;
    let cluster = match &daemon.cluster {
        Some(cl) => Some(cluster::dead_letters(cl).await?),
        None => None,
    };
    Ok(DeadLettersResult {
        cluster,
        dead_letters: coord
            .dead_letters()
            .iter()
            .map(wire)
            .collect::<Result<_, _>>()?,
        stats: wire(coord.dead_letter_stats())?,
    })
}

pub(crate) async fn bus_topics(daemon: &Daemon) -> Result<TopicsResult, RpcError> {
    let coord = &daemon.coord;
    let topics: Vec<c::TopicInfo> = coord.topics().iter().map(wire).collect::<Result<_, _>>()?;
    match &daemon.cluster {
        Some(cl) => cluster::cluster_topics(cl, topics).await,
        None => Ok(TopicsResult {
            topics,
            unanswered: Vec::new(),
        }),
    }
}

/// `bus.recent`: the topics with messages kept, and the newest of one topic's; in a cluster,
/// the cluster's (`coord::cluster::recent`).
pub(crate) async fn bus_recent(
    daemon: &Daemon,
    p: ai_session_protocol::web::RecentParams,
) -> Result<ai_session_protocol::web::RecentResult, RpcError> {
    use ai_session_protocol::web::{RecentResult, RecentTopic};
    let limit = p
        .limit
        .unwrap_or(ai_session_coord::RECENT_PER_TOPIC)
        .min(ai_session_coord::RECENT_PER_TOPIC);
    if let Some(cl) = &daemon.cluster {
        return cluster::recent(cl, p.topic.as_deref(), limit).await;
    }
    let coord = &daemon.coord;
    let mut topics: Vec<RecentTopic> = coord
        .recent_counts()
        .into_iter()
        .map(|(topic, kept)| RecentTopic { topic, kept })
        .collect();
    topics.sort_by(|a, b| a.topic.cmp(&b.topic));
    let messages = match &p.topic {
        Some(topic) => coord
            .recent(topic, limit)
            .iter()
            .map(|m| wire(&**m))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(RecentResult { topics, messages })
}

pub(crate) async fn task_submit(
    daemon: &Daemon,
    p: SubmitParams,
) -> Result<SubmitResult, RpcError> {
    if let Some(cl) = &daemon.cluster {
        let new = ai_session_cluster::NewTask {
            description: p.description,
            needs: p.needs,
            priority: p.priority.unwrap_or(0),
            after: p.after,
            timeout_ms: p.timeout_ms,
            max_retries: p.max_retries.unwrap_or(daemon.coord.config().max_retries),
        };
        let task = cluster::submit(cl, new).await?;
        return Ok(SubmitResult {
            id: task.id,
            task: wire(task)?,
        });
    }
    let coord = &daemon.coord;
    let mut spec = TaskSpec::new(p.description);
    spec.needs = p.needs;
    spec.priority = p.priority.unwrap_or(0);
    spec.after = p
        .after
        .into_iter()
        .map(|id| Dep::Task(TaskId(id)))
        .collect();
    spec.timeout_ms = p.timeout_ms;
    spec.max_retries = p.max_retries;
    let id = coord.submit(spec).map_err(coord_error)?;
    let task = coord.task(id).map_err(coord_error)?;
    Ok(SubmitResult {
        id: id.0,
        task: wire(task)?,
    })
}

pub(crate) async fn task_claim(daemon: &Daemon, p: ClaimParams) -> Result<ClaimResult, RpcError> {
    let coord = &daemon.coord;
    let a = auth(coord, &p.auth)?;
    if let Some(cl) = &daemon.cluster {
        let worker = cluster::worker(daemon, cl, &a).await?;
        let wait = Duration::from_millis(p.wait_ms.unwrap_or(0));
        let task = cluster::claim(cl, &worker, wait).await?;
        return Ok(ClaimResult {
            task: task.map(wire).transpose()?,
        });
    }
    let task = match p.wait_ms {
        Some(w) if w > 0 => coord
            .claim_wait(&a, Duration::from_millis(w))
            .await
            .map_err(coord_error)?,
        _ => coord.claim(&a).map_err(coord_error)?,
    };
    alive(coord, Some(&a));
    Ok(ClaimResult {
        task: task.map(wire).transpose()?,
    })
}

pub(crate) async fn task_done(daemon: &Daemon, p: DoneParams) -> Result<TaskResult, RpcError> {
    let coord = &daemon.coord;
    let a = auth(coord, &p.auth)?;
    if let Some(cl) = &daemon.cluster {
        let worker = cluster::worker(daemon, cl, &a).await?;
        let task = cluster::done(cl, &worker, p.id, p.result).await?;
        return Ok(TaskResult { task: wire(task)? });
    }
    let task = coord
        .done(&a, TaskId(p.id), p.result)
        .map_err(coord_error)?;
    alive(coord, Some(&a));
    Ok(TaskResult { task: wire(task)? })
}

pub(crate) async fn task_fail(daemon: &Daemon, p: FailParams) -> Result<TaskResult, RpcError> {
    let coord = &daemon.coord;
    let a = auth(coord, &p.auth)?;
    if let Some(cl) = &daemon.cluster {
        let worker = cluster::worker(daemon, cl, &a).await?;
        let task = cluster::fail(daemon, cl, &worker, p.id, &p.reason).await?;
        return Ok(TaskResult { task: wire(task)? });
    }
    let task = coord
        .fail(&a, TaskId(p.id), p.reason)
        .map_err(coord_error)?;
    alive(coord, Some(&a));
    Ok(TaskResult { task: wire(task)? })
}

pub(crate) async fn task_list(
    daemon: &Daemon,
    p: TaskListParams,
) -> Result<TaskListResult, RpcError> {
    let coord = &daemon.coord;
    let state = p
        .state
        .map(|s| {
            serde_json::from_value::<TaskState>(Value::String(s.clone())).map_err(|_| {
                RpcError::new(
                    ErrorKind::InvalidParams,
                    format!("unknown task state '{s}'"),
                )
                .with_hint("states: queued, assigned, running, done, failed, dead_lettered")
            })
        })
        .transpose()?;
    if let Some(cl) = &daemon.cluster {
        let state = state
            .map(|s| serde_json::to_value(s).map_err(cluster::internal))
            .transpose()?;
        let state = state.as_ref().and_then(Value::as_str);
        return Ok(TaskListResult {
            tasks: cluster::list(cl, state)
                .await?
                .iter()
                .map(wire)
                .collect::<Result<_, _>>()?,
        });
    }
    Ok(TaskListResult {
        tasks: coord
            .tasks(state)
            .iter()
            .map(wire)
            .collect::<Result<_, _>>()?,
    })
}

pub(crate) async fn task_show(daemon: &Daemon, p: TaskShowParams) -> Result<TaskResult, RpcError> {
    if let Some(cl) = &daemon.cluster {
        let task = cluster::show(cl, p.id).await?;
        return Ok(TaskResult { task: wire(task)? });
    }
    let coord = &daemon.coord;
    let task = coord.task(TaskId(p.id)).map_err(coord_error)?;
    Ok(TaskResult { task: wire(task)? })
}

/// Appends one notification line for `message` to `out`.
fn push_line<M: Serialize>(out: &mut String, method: &str, subscription: u64, message: &M) {
    #[derive(Serialize)]
    struct Line<'a, M> {
        jsonrpc: &'static str,
        method: &'a str,
        params: Params<'a, M>,
    }
    #[derive(Serialize)]
    struct Params<'a, M> {
        subscription: u64,
        message: &'a M,
    }
    let line = Line {
        jsonrpc: "2.0",
        method,
        params: Params {
            subscription,
            message,
        },
    };
    match serde_json::to_string(&line) {
        Ok(s) => {
            out.push_str(&s);
            out.push('\n');
        }
        Err(e) => tracing::warn!("cannot encode a bus notification: {e}"),
    }
}

async fn closed(tx: &mpsc::Sender<String>, subscription: u64, reason: &str) {
    let n = Notification::new(
        c::NOTIFY_STREAM_CLOSED,
        StreamClosed {
            subscription,
            reason: reason.to_string(),
        },
    );
    if let Ok(line) = n.and_then(|n| serde_json::to_string(&n)) {
        tx.send(line + "\n").await.ok();
    }
}

/// Moves a subscription's messages to the connection, many per write, until either side goes
/// away. Dropping the subscription on return unsubscribes.
async fn forward_topic(
    mut sub: Subscription,
    subscription: u64,
    method: &'static str,
    tx: mpsc::Sender<String>,
) {
    let mut buf = Vec::with_capacity(STREAM_BATCH);
    loop {
        buf.clear();
        let n = tokio::select! {
            n = sub.recv_many(&mut buf, STREAM_BATCH) => n,
            () = tx.closed() => return,
        };
        if n == 0 {
            closed(&tx, subscription, "the coordinator stopped").await;
            return;
        }
        let mut out = String::with_capacity(256 * n);
        for m in &buf {
            push_line(&mut out, method, subscription, m);
        }
        if tx.send(out).await.is_err() {
            return;
        }
    }
}

/// Moves an agent's inbox to the connection until the agent leaves or the connection closes.
/// Each message goes to the client exactly once or stays for the next reader: a batch counts
/// as delivered once the connection's socket has it ([`Caller::deliver`]), so a client that
/// half-closed its end but still reads gets it, and a batch the connection can no longer
/// write (the client is gone) goes back to the inbox.
async fn forward_inbox(inbox: Inbox, subscription: u64, caller: Arc<Caller>) {
    let tx = caller.notifier();
    let ended = caller.closed();
    tokio::pin!(ended);
    loop {
        let first = tokio::select! {
            biased;
            () = &mut ended => return,
            () = tx.closed() => return,
            m = inbox.recv() => m,
        };
        let Some(first) = first else {
            closed(&tx, subscription, "the agent left").await;
            return;
        };
        let mut taken = vec![first];
        while taken.len() < STREAM_BATCH {
            let Some(m) = inbox.try_recv() else { break };
            taken.push(m);
        }
        let mut out = String::new();
        for m in &taken {
            push_line(&mut out, c::NOTIFY_INBOX_MESSAGE, subscription, m);
        }
        if !caller.deliver(out).await {
            inbox.unread(taken).await;
            return;
        }
    }
}

/// `bus.inbox` of an agent another node registered: that node relays the inbox to a stream
/// this node holds, and this node moves it to the connection.
async fn remote_inbox(
    daemon: &Daemon,
    caller: &Arc<Caller>,
    (node, to): (String, u64),
) -> Result<SubscribeResult, RpcError> {
    let cl = crate::cluster::clustered(daemon)?;
    let source = cl.open_stream().await.map_err(crate::cluster::to_rpc)?;
    let route = ai_session_cluster::BusRoute::Inbox {
        to,
        subject: source.subject().to_string(),
    };
    home_call(daemon, (node.clone(), to), route, &Value::Null).await?;
    let id = caller.stream_id();
    tokio::spawn(forward_remote_inbox(
        cl.clone(),
        node.clone(),
        source,
        id,
        caller.clone(),
    ));
    Ok(SubscribeResult {
        subscription: id,
        topic: format!("inbox of agent-{to} (on node {node})"),
    })
}

/// Moves an inbox relayed from the agent's node to the connection, until the agent leaves,
/// its node leaves the cluster, or the connection closes (the relay then ends at its next
/// frame: dropping the stream unsubscribes). A frame is answered taken once the client's
/// socket has it, refused when it cannot (the agent's node puts its messages back).
async fn forward_remote_inbox(
    cl: ai_session_cluster::Cluster,
    node: String,
    mut source: ai_session_cluster::StreamSource,
    subscription: u64,
    caller: Arc<Caller>,
) {
    use ai_session_cluster::Frame;
    let tx = caller.notifier();
    let ended = caller.closed();
    tokio::pin!(ended);
    let mut tick = tokio::time::interval(cl.lease());
    tick.tick().await;
    loop {
        let frame = tokio::select! {
            f = source.next() => f,
            () = &mut ended => return,
            () = tx.closed() => return,
            _ = tick.tick() => {
                if cl.node_alive(&node).await == Some(false) {
                    closed(&tx, subscription, &format!("node {node} left the cluster")).await;
                    return;
                }
                continue;
            }
        };
        let Some((frame, receipt)) = frame else {
            closed(&tx, subscription, "the cluster connection closed").await;
            return;
        };
        match frame {
            Frame::Items(items) if items.is_empty() => receipt.answer(!caller.is_closed()).await,
            Frame::Items(items) => {
                let mut out = String::new();
                for m in &items {
                    push_line(&mut out, c::NOTIFY_INBOX_MESSAGE, subscription, m);
                }
                let taken = caller.deliver(out).await;
                receipt.answer(taken).await;
                if !taken {
                    return;
                }
            }
            Frame::Closed(reason) => {
                receipt.answer(true).await;
                closed(&tx, subscription, &reason).await;
                return;
            }
        }
    }
}

/// Relays this node's agent's inbox to another node's stream, until the agent leaves or the
/// receiver is gone. An empty frame every `probe` finds a receiver that went away while the
/// inbox was quiet, before a message is taken for it.
pub(crate) async fn relay_inbox(
    inbox: Inbox,
    sink: ai_session_cluster::StreamSink,
    probe: Duration,
) {
    use ai_session_cluster::Frame;
    let mut tick = tokio::time::interval(probe);
    tick.tick().await;
    loop {
        let first = tokio::select! {
            m = inbox.recv() => m,
            _ = tick.tick() => {
                if !matches!(sink.send(&Frame::Items(Vec::new())).await, Ok(true)) {
                    return;
                }
                continue;
            }
        };
        let Some(first) = first else {
            sink.send(&Frame::Closed("the agent left".into()))
                .await
                .ok();
            return;
        };
        let taken: Vec<_> = std::iter::once(first)
            .chain(std::iter::from_fn(|| inbox.try_recv()))
            .take(STREAM_BATCH)
            .collect();
        let mut items = Vec::new();
        for m in &taken {
            match serde_json::to_value(&**m) {
                Ok(v) => items.push(v),
                Err(e) => tracing::warn!("cannot encode an inbox message: {e}"),
            }
        }
        match sink.send(&Frame::Items(items)).await {
            Ok(true) => {}
            Ok(false) => {
                // The receiver's client is gone: the messages wait for the next reader.
                inbox.unread(taken).await;
                return;
            }
            Err(e) => {
                // Stalled a minute: the batch goes back rather than being lost; should the
                // stalled receiver still pass it on, its client has it twice.
                tracing::warn!("an inbox relayed to another node ended: {e}");
                inbox.unread(taken).await;
                return;
            }
        }
    }
}

/// The principal of a `hello` made with the token of an agent another node registered: the
/// token is checked against the cluster's secret here and the hello counts as the agent's
/// heartbeat on its node. `None` for any other hello (this node checks it as usual).
pub(crate) async fn remote_principal(
    daemon: &Daemon,
    params: &Value,
) -> Option<Result<crate::access::Principal, RpcError>> {
    let cl = daemon.cluster.as_ref()?;
    let token = params.get("token")?.as_str()?.trim();
    let a = parse_token(token).ok()?;
    if daemon.coord.agent(a.agent).is_ok() {
        return None;
    }
    let answer = async {
        let (id, node) = cluster::remote_holder(cl, &a).await?;
        let route = ai_session_cluster::BusRoute::Heartbeat { to: id.0 };
        home_call(daemon, (node, id.0), route, &Value::Null).await?;
        Ok(crate::access::Principal::Agent(id.0))
    };
    Some(answer.await)
}
