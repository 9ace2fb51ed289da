//! Coordination across a cluster (`daemon run --cluster`): this node's bus relayed to the
//! other nodes over NATS (topic messages and broadcasts published, direct messages and requests
//! sent to the agent's own node), the other nodes' bus messages delivered here, agents with
//! cluster-wide ids recorded in the cluster, and tokens of agents registered on other nodes
//! checked against the cluster's shared secret. A daemon on its own runs none of this.

use std::sync::{Arc, Weak};
use std::time::Duration;

use ai_session_cluster::{
    AgentRecord, Backoff, BusIncoming, BusRoute, Cluster, ClusterError, NewTask, TaskError,
    TaskRecord, Worker,
};
use ai_session_coord::{
    AgentAuth, AgentId, AgentSpec, Coordinator, DeadLetter, Registration, Relay, Relaying, Token,
};
use ai_session_protocol::{ErrorKind, RpcError};
use serde_json::{Value, json};

use crate::cluster::{next_while_running, to_rpc};
use crate::server::Daemon;

/// Carries this node's topic messages, broadcasts and dead letters to the cluster.
struct ClusterRelay {
    cluster: Cluster,
}

impl Relay for ClusterRelay {
    fn topic<'a>(
        &'a self,
        topic: &'a str,
        from: Option<AgentId>,
        payload: &'a Value,
    ) -> Relaying<'a> {
        Box::pin(async move {
            if let Err(e) = self
                .cluster
                .bus_topic(topic, from.map(|a| a.0), payload)
                .await
            {
                tracing::warn!("a message on {topic} did not reach the other nodes: {e}");
            }
        })
    }

    fn broadcast<'a>(&'a self, from: Option<AgentId>, payload: &'a Value) -> Relaying<'a> {
        Box::pin(async move {
            if let Err(e) = self.cluster.bus_broadcast(from.map(|a| a.0), payload).await {
                tracing::warn!("a broadcast did not reach the other nodes: {e}");
            }
        })
    }

    fn dead_letter(&self, letter: &DeadLetter) {
        match serde_json::to_vec(letter) {
            Ok(bytes) => self.cluster.dead_letter(bytes),
            Err(e) => tracing::warn!("cannot encode a dead letter for the cluster: {e}"),
        }
    }
}

/// Relays this node's bus to the cluster and starts delivering the other nodes' messages here.
pub(crate) async fn start(daemon: &Arc<Daemon>, cluster: &Cluster) -> Result<(), ClusterError> {
    let inbox = cluster.bus_inbox().await?;
    let events = cluster.task_events();
    cluster.watch_tasks().await?;
    tokio::spawn(announce_tasks(daemon.coord.clone(), events));
    let asked = cluster.asked(TOPICS).await?;
    tokio::spawn(answer_topics(Arc::downgrade(daemon), asked));
    daemon.coord.set_relay(Arc::new(ClusterRelay {
        cluster: cluster.clone(),
    }));
    tokio::spawn(serve(Arc::downgrade(daemon), cluster.clone(), inbox));
    Ok(())
}

/// Delivers the other nodes' bus messages until the daemon stops. Topic messages and
/// broadcasts are delivered in the order they arrive; direct messages and requests each on
/// their own task (a request waits for its reply).
async fn serve(daemon: Weak<Daemon>, cluster: Cluster, mut inbox: ai_session_cluster::BusInbox) {
    while let Some((d, incoming)) = next_while_running(&daemon, inbox.next()).await {
        let envelope = match &incoming.envelope {
            Ok(e) => e.clone(),
            Err(e) => {
                tracing::warn!("unreadable bus message from another node: {e}");
                continue;
            }
        };
        let from = envelope.from.map(AgentId);
        let coord = &d.coord;
        match envelope.route {
            BusRoute::Topic { topic } => {
                coord.deliver_topic(&topic, from, envelope.payload).await;
            }
            BusRoute::Broadcast => {
                coord.deliver_broadcast(from, envelope.payload).await;
            }
            route => {
                let Some(to) = route.addressee() else {
                    continue;
                };
                // Every node hears the agent's subject; only the agent's own node answers.
                if !coord.agent(AgentId(to)).is_ok_and(|a| a.is_active()) {
                    continue;
                }
                let cluster = cluster.clone();
                let daemon = d.clone();
                d.tasks.clone().spawn(async move {
                    let (route, payload) = incoming_route(&incoming);
                    let result = match route {
                        BusRoute::Direct { .. } | BusRoute::Request { .. } => {
                            deliver(&daemon.coord, (route, payload), from, to).await
                        }
                        route => agent_call(&daemon, &cluster, (route, payload), from, to).await,
                    };
                    cluster.bus_answer(incoming, result).await;
                });
            }
        }
    }
}

fn incoming_route(incoming: &BusIncoming) -> (BusRoute, Value) {
    match &incoming.envelope {
        Ok(e) => (e.route.clone(), e.payload.clone()),
        Err(_) => (BusRoute::Broadcast, Value::Null),
    }
}

/// Delivers a direct message or a request from another node to agent `to` of this node.
async fn deliver(
    coord: &Coordinator,
    (route, payload): (BusRoute, Value),
    from: Option<AgentId>,
    to: u64,
) -> Result<Value, RpcError> {
    let to = AgentId(to);
    match route {
        BusRoute::Request { timeout_ms, .. } => {
            let reply = coord
                .request_as(from, to, payload, Duration::from_millis(timeout_ms))
                .await
                .map_err(super::coord_error)?;
            serde_json::to_value(&*reply).map_err(internal)
        }
        _ => {
            let d = coord
                .send_as(from, to, payload)
                .await
                .map_err(super::coord_error)?;
            Ok(json!({"delivered": d.delivered, "dead_lettered": d.dead_lettered}))
        }
    }
}

/// A call agent `to` of this node made through another node, which checked its token against
/// the cluster's secret (`from` is the agent itself). The token is not sent: this node derives
/// it from the same secret.
async fn agent_call(
    daemon: &Daemon,
    cluster: &Cluster,
    (route, payload): (BusRoute, Value),
    from: Option<AgentId>,
    to: u64,
) -> Result<Value, RpcError> {
    let coord = &daemon.coord;
    let auth = home_auth(cluster, from, to)?;
    match route {
        BusRoute::Heartbeat { .. } => coord.heartbeat(&auth).map_err(super::coord_error)?,
        BusRoute::Unregister { .. } => {
            coord.unregister(&auth).map_err(super::coord_error)?;
            cluster.drop_agent(to).await;
            // Answered only once the agent's grants here are gone; the answer says whether
            // it left for good (tied to a connection), so the entering node drops its own.
            let left = daemon.tethers.unregistered(daemon, auth.agent);
            return Ok(json!({ "left": left }));
        }
        BusRoute::Reply { correlation, .. } => {
            coord
                .reply(&auth, ai_session_coord::CorrelationId(correlation), payload)
                .map_err(super::coord_error)?;
            coord.heartbeat(&auth).ok();
        }
        BusRoute::Inbox { subject, .. } => {
            let inbox = coord.inbox(&auth).map_err(super::coord_error)?;
            coord.heartbeat(&auth).ok();
            tokio::spawn(super::relay_inbox(
                inbox,
                cluster.stream_sink(&subject),
                cluster.heartbeat_interval(),
            ));
        }
        BusRoute::Topic { .. }
        | BusRoute::Broadcast
        | BusRoute::Direct { .. }
        | BusRoute::Request { .. } => {}
    }
    Ok(json!({}))
}

/// The credentials of agent `to` of this node, derived from the cluster's secret, for a call
/// another node checked; refused unless the call was made as that agent.
fn home_auth(cluster: &Cluster, from: Option<AgentId>, to: u64) -> Result<AgentAuth, RpcError> {
    if from != Some(AgentId(to)) {
        return Err(RpcError::new(
            ErrorKind::PermissionDenied,
            format!("only agent {to} itself may make this call"),
        )
        .with_reason("unauthorized"));
    }
    let token = cluster.agent_token(to).ok_or_else(|| {
        RpcError::new(
            ErrorKind::PermissionDenied,
            format!(
                "node '{}' has no [cluster] secret_file: agent {to}'s calls work only here",
                cluster.node()
            ),
        )
        .with_hint("set the same [cluster] secret_file on every node")
        .with_reason("unauthorized")
    })?;
    Ok(AgentAuth {
        agent: AgentId(to),
        token: Token::from_bytes(token),
    })
}

pub(crate) fn internal(e: impl std::fmt::Display) -> RpcError {
    RpcError::new(ErrorKind::Internal, e.to_string())
}

/// Registers an agent with an id unique in the cluster and, when the cluster has a shared
/// secret, a token every node accepts; records it in the cluster at once.
pub(crate) async fn register(
    daemon: &Daemon,
    cluster: &Cluster,
    spec: AgentSpec,
) -> Result<Registration, RpcError> {
    let floor = daemon.access.first_agent_id();
    let id = cluster.next_agent_id(floor).await.map_err(to_rpc)?;
    let token = cluster
        .agent_token(id)
        .map_or_else(Token::generate, Token::from_bytes);
    let reg = daemon
        .coord
        .register_as(spec, AgentId(id), token)
        .map_err(super::coord_error)?;
    let info = serde_json::to_value(&reg.info).map_err(internal)?;
    cluster.put_agent(id, &info).await.map_err(to_rpc)?;
    Ok(reg)
}

/// Renews the cluster's records of this node's agents; run by every heartbeat.
pub(crate) async fn renew_agents(daemon: &Daemon, cluster: &Cluster) {
    let mut active = Vec::new();
    let mut gone = Vec::new();
    for info in daemon.coord.agents() {
        if info.is_active() {
            match serde_json::to_value(&info) {
                Ok(v) => active.push((info.id.0, v)),
                Err(e) => tracing::warn!("cannot encode agent {}: {e}", info.id),
            }
        } else {
            gone.push(info.id.0);
        }
    }
    if let Err(e) = cluster.renew_agents(&active, &gone).await {
        tracing::warn!("cannot renew this node's agents in the cluster: {e}");
    }
    tend_tasks(daemon, cluster).await;
}

/// The agents other nodes registered, as `agent.list` shows them.
pub(crate) async fn remote_agents(cluster: &Cluster) -> Result<Vec<(String, Value)>, RpcError> {
    let records = cluster.agents().await.map_err(to_rpc)?;
    Ok(records
        .into_iter()
        .filter(|(_, r)| r.node != cluster.node())
        .map(|(_, r)| (r.node, r.info))
        .collect())
}

/// An agent registered on another node, found by name, id or `agent-ID`.
pub(crate) async fn find_remote(
    cluster: &Cluster,
    who: &str,
) -> Result<Option<(u64, AgentRecord)>, RpcError> {
    let digits = who.strip_prefix("agent-").unwrap_or(who);
    if let Ok(id) = digits.parse::<u64>() {
        let record = cluster.agent(id).await.map_err(to_rpc)?;
        return Ok(record.filter(|r| r.node != cluster.node()).map(|r| (id, r)));
    }
    let records = cluster.agents().await.map_err(to_rpc)?;
    Ok(records.into_iter().find(|(_, r)| {
        r.node != cluster.node() && r.info.get("name").and_then(Value::as_str) == Some(who)
    }))
}

/// The sender of a call made with the token of an agent another node registered: checked
/// against the cluster's secret (the token never leaves this node) and the agent's record.
pub(crate) async fn remote_sender(
    cluster: &Cluster,
    auth: &AgentAuth,
) -> Result<AgentId, RpcError> {
    remote_holder(cluster, auth).await.map(|(id, _)| id)
}

/// [`remote_sender`], with the node the agent registered on.
pub(crate) async fn remote_holder(
    cluster: &Cluster,
    auth: &AgentAuth,
) -> Result<(AgentId, String), RpcError> {
    let id = auth.agent.0;
    let refused =
        |why: String| RpcError::new(ErrorKind::PermissionDenied, why).with_reason("unauthorized");
    let record = cluster.agent(id).await.map_err(to_rpc)?;
    let Some(record) = record else {
        return Err(refused(format!(
            "agent {id} is not registered on any node of the cluster"
        ))
        .with_hint(
            "the agent left (unregistered, disconnected or missed its heartbeat): register again (agent.register) for a new token",
        ));
    };
    if !cluster.shares_agent_tokens() {
        return Err(refused(format!(
            "agent {id} registered on node '{}', and this cluster has no shared secret: its token \
             works only there (set [cluster] secret_file on every node for tokens that work on all)",
            record.node
        )));
    }
    if !cluster.verify_agent_token(id, auth.token.as_bytes()) {
        return Err(refused(format!(
            "wrong token for agent {id} (not issued by this cluster)"
        )));
    }
    Ok((AgentId(id), record.node))
}

/// The question every node answers with its topics and their subscribers.
const TOPICS: &str = "topics";
/// How long `bus.topics` waits for the other nodes.
const GATHER: Duration = Duration::from_secs(3);

/// Answers the other nodes' `bus.topics` with this node's topics until the daemon stops.
async fn answer_topics(daemon: Weak<Daemon>, mut asked: ai_session_cluster::Asked) {
    while let Some((d, question)) = next_while_running(&daemon, asked.next()).await {
        let topics: Vec<Value> = d
            .coord
            .topics()
            .iter()
            .map(|t| json!({"topic": t.topic, "subscribers": t.subscribers}))
            .collect();
        asked.answer(question, Value::Array(topics)).await;
    }
}

/// `bus.topics` in a cluster: this node's topics (`here`) and every other live node's, the
/// subscribers of a topic counted on every node; a node that does not answer is named.
pub(crate) async fn cluster_topics(
    cluster: &Cluster,
    here: Vec<ai_session_protocol::coord::TopicInfo>,
) -> Result<ai_session_protocol::coord::TopicsResult, RpcError> {
    use std::collections::BTreeMap;
    let gathered = cluster.gather(TOPICS, GATHER).await.map_err(to_rpc)?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in here {
        *counts.entry(t.topic).or_default() += t.subscribers;
    }
    for (_, answer) in gathered.answers {
        let theirs: Vec<ai_session_protocol::coord::TopicInfo> =
            serde_json::from_value(answer).map_err(internal)?;
        for t in theirs {
            *counts.entry(t.topic).or_default() += t.subscribers;
        }
    }
    Ok(ai_session_protocol::coord::TopicsResult {
        topics: counts
            .into_iter()
            .map(
                |(topic, subscribers)| ai_session_protocol::coord::TopicInfo { topic, subscribers },
            )
            .collect(),
        unanswered: gathered
            .unanswered
            .into_iter()
            .map(|(node, reason)| ai_session_protocol::cluster::Unanswered { node, reason })
            .collect(),
    })
}

/// `bus.recent` in a cluster: the topics with messages kept in the cluster's stream, and the
/// newest `limit` of `topic`, whichever node they entered through and whenever this node
/// joined. A message's `id` is its sequence in that stream.
pub(crate) async fn recent(
    cluster: &Cluster,
    topic: Option<&str>,
    limit: usize,
) -> Result<ai_session_protocol::web::RecentResult, RpcError> {
    use ai_session_protocol::web::{RecentResult, RecentTopic};
    let mut topics: Vec<RecentTopic> = cluster
        .recent_topics()
        .await
        .map_err(to_rpc)?
        .into_iter()
        .map(|(topic, kept)| RecentTopic { topic, kept })
        .collect();
    topics.sort_by(|a, b| a.topic.cmp(&b.topic));
    let messages = match topic {
        Some(topic) => cluster
            .recent_messages(topic, limit)
            .await
            .map_err(to_rpc)?
            .into_iter()
            .map(|m| ai_session_protocol::coord::MessageInfo {
                id: m.sequence,
                kind: "topic".into(),
                topic: Some(m.topic),
                to: None,
                correlation_id: None,
                from: m.from,
                payload: m.payload,
                sent_at_ms: m.sent_at_ms,
            })
            .collect(),
        None => Vec::new(),
    };
    Ok(RecentResult { topics, messages })
}

/// Dead letters of every node `bus.dead_letters` shows in a cluster.
const CLUSTER_DEAD_LETTERS: usize = 1000;

/// The newest dead letters of every node, from the cluster's stream.
pub(crate) async fn dead_letters(
    cluster: &Cluster,
) -> Result<Vec<ai_session_protocol::coord::NodeDeadLetter>, RpcError> {
    let letters = cluster
        .dead_letters(CLUSTER_DEAD_LETTERS)
        .await
        .map_err(to_rpc)?;
    letters
        .into_iter()
        .map(|(node, letter)| {
            Ok(ai_session_protocol::coord::NodeDeadLetter {
                node,
                letter: crate::service::wire(letter)?,
            })
        })
        .collect()
}

// ----- tasks ------------------------------------------------------------------------------

/// A task refusal as the protocol's error, with the same kinds and reasons as on one daemon.
pub(crate) fn task_error(e: TaskError) -> RpcError {
    let (kind, reason) = match &e {
        TaskError::Unknown(_) => (ErrorKind::NotFound, "unknown_task"),
        TaskError::UnknownDependency { .. } => (ErrorKind::InvalidParams, "unknown_dependency"),
        TaskError::DependencyFailed { .. } => (ErrorKind::Conflict, "dependency_failed"),
        TaskError::NotHolder { .. } => (ErrorKind::PermissionDenied, "not_task_holder"),
        TaskError::Invalid => (ErrorKind::InvalidParams, "invalid_task"),
        TaskError::Cluster(_) => (ErrorKind::Internal, "cluster"),
    };
    let hint = match &e {
        TaskError::Unknown(_) | TaskError::UnknownDependency { .. } => {
            "task.list lists the cluster's tasks"
        }
        TaskError::DependencyFailed { .. } => {
            "the dependency can never complete; submit it again, then this task after it"
        }
        TaskError::NotHolder { .. } => {
            "only the agent holding a task may report it; task.show says who holds it"
        }
        TaskError::Invalid => "give non-empty capability names in `needs`",
        TaskError::Cluster(_) => "cluster.nodes shows the cluster; the daemon's log says more",
    };
    RpcError::new(kind, e.to_string())
        .with_hint(hint)
        .with_reason(reason)
}

fn backoff(daemon: &Daemon) -> Backoff {
    let config = daemon.coord.config();
    Backoff {
        base: config.retry_base,
        max: config.retry_max,
    }
}

/// The agent a task call is made as, checked, with what it may take: this node's agent (its
/// token verified, which counts as a heartbeat) or another node's (against the cluster's secret).
pub(crate) async fn worker(
    daemon: &Daemon,
    cluster: &Cluster,
    auth: &AgentAuth,
) -> Result<Worker, RpcError> {
    if let Ok(info) = daemon.coord.agent(auth.agent) {
        daemon.coord.heartbeat(auth).map_err(super::coord_error)?;
        return Ok(Worker {
            agent: info.id.0,
            capabilities: info.capabilities,
            max_tasks: info.max_tasks,
        });
    }
    let id = remote_sender(cluster, auth).await?;
    let record = cluster.agent(id.0).await.map_err(to_rpc)?;
    let info = record.map(|r| r.info).unwrap_or_default();
    let capabilities = info
        .get("capabilities")
        .and_then(Value::as_array)
        .map(|caps| {
            caps.iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let max_tasks = info.get("max_tasks").and_then(Value::as_u64).unwrap_or(1);
    Ok(Worker {
        agent: id.0,
        capabilities,
        max_tasks: usize::try_from(max_tasks).unwrap_or(1),
    })
}

pub(crate) async fn submit(cluster: &Cluster, new: NewTask) -> Result<TaskRecord, RpcError> {
    cluster.submit_task(new).await.map_err(task_error)
}

/// Claims the most urgent task the agent may take, waiting up to `wait` for one.
pub(crate) async fn claim(
    cluster: &Cluster,
    worker: &Worker,
    wait: Duration,
) -> Result<Option<TaskRecord>, RpcError> {
    let until = tokio::time::Instant::now() + wait;
    loop {
        if let Some(task) = cluster
            .claim_task(worker, cluster.lease())
            .await
            .map_err(task_error)?
        {
            return Ok(Some(task));
        }
        // A task in its backoff becomes ready without any change: look again at least every
        // heartbeat.
        let next = (tokio::time::Instant::now() + cluster.heartbeat_interval()).min(until);
        if !cluster.task_change(next).await && tokio::time::Instant::now() >= until {
            return Ok(None);
        }
    }
}

pub(crate) async fn done(
    cluster: &Cluster,
    worker: &Worker,
    id: u64,
    result: Value,
) -> Result<TaskRecord, RpcError> {
    cluster
        .complete_task(worker.agent, id, result)
        .await
        .map_err(task_error)
}

pub(crate) async fn fail(
    daemon: &Daemon,
    cluster: &Cluster,
    worker: &Worker,
    id: u64,
    reason: &str,
) -> Result<TaskRecord, RpcError> {
    cluster
        .fail_task(worker.agent, id, reason, backoff(daemon))
        .await
        .map_err(task_error)
}

pub(crate) async fn list(
    cluster: &Cluster,
    state: Option<&str>,
) -> Result<Vec<TaskRecord>, RpcError> {
    cluster.tasks(state).await.map_err(task_error)
}

pub(crate) async fn show(cluster: &Cluster, id: u64) -> Result<TaskRecord, RpcError> {
    cluster.task(id).await.map_err(task_error)
}

/// Announces every change of the cluster's tasks to this node's observers (`$system`,
/// `$results`), as one daemon announces its own: each node hears each change once.
async fn announce_tasks(
    coord: Coordinator,
    mut events: tokio::sync::mpsc::UnboundedReceiver<TaskRecord>,
) {
    while let Some(task) = events.recv().await {
        match task_event(&task) {
            Ok(event) => coord.announce(&event),
            Err(e) => tracing::warn!("cannot announce a change of task {}: {e}", task.id),
        }
    }
}

/// A task's change as the coordinator's event.
fn task_event(task: &TaskRecord) -> Result<ai_session_coord::Event, serde_json::Error> {
    let state = serde_json::from_value(Value::String(task.state.clone()))?;
    let failing = matches!(task.state.as_str(), "queued" | "failed" | "dead_lettered");
    Ok(ai_session_coord::Event::TaskStateChanged {
        task: ai_session_coord::TaskId(task.id),
        state,
        agent: task.agent.map(AgentId),
        attempts: task.attempts,
        reason: task.last_error.clone().filter(|_| failing),
        result: task.result.clone().filter(|_| task.state == "done"),
    })
}

/// Renews the leases of this node's running tasks and requeues lapsed ones; every heartbeat.
pub(crate) async fn tend_tasks(daemon: &Daemon, cluster: &Cluster) {
    let coord = &daemon.coord;
    let alive = |id: u64| coord.agent(AgentId(id)).is_ok_and(|a| a.is_active());
    if let Err(e) = cluster
        .tend_tasks(&alive, cluster.lease(), backoff(daemon))
        .await
    {
        tracing::warn!("cannot tend the cluster's tasks: {e}");
    }
    if let Err(e) = cluster.prune_tasks().await {
        tracing::warn!("cannot prune the cluster's finished tasks: {e}");
    }
}
