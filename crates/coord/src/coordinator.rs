//! The coordinator: one handle over the agent registry, the bus and the task distributor.
//!
//! Each component owns its state behind its own lock; the coordinator only wires their effects
//! together (an agent leaving re-queues its tasks, task changes become events). Locks are taken
//! in the order registry, distributor, bus, and never held across an `.await`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::{Instant, timeout_at};

use crate::agent::{AgentInfo, AgentSpec, Registry};
use crate::auth::AgentAuth;
use crate::bus::{Bus, Delivery, Inbox, QueueOptions, Subscription, TopicInfo};
use crate::clock::{self, Alarm, Ticking};
use crate::config::CoordConfig;
use crate::deadletter::{DeadItem, DeadLetter, DeadLetterStats, DeadReason};
use crate::distributor::{Distributor, Effects, TaskPolicy};
use crate::error::{CoordError, Result};
use crate::event::{Event, LeaveReason, RESULTS_TOPIC, SYSTEM_TOPIC};
use crate::ids::{AgentId, CorrelationId, TaskId};
use crate::message::Message;
use crate::relay::Relay;
use crate::strategy::{LeastLoaded, Strategy};
use crate::task::{Task, TaskSpec, TaskState};

/// What `register` hands back: the agent as recorded, and the credentials to act as it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub info: AgentInfo,
    pub auth: AgentAuth,
}

/// The coordination service. Cheap to clone; clones share everything. Create it inside a Tokio
/// runtime: it spawns the clock task that fires heartbeat deadlines, timeouts and retries.
#[derive(Clone)]
pub struct Coordinator {
    shared: Arc<Shared>,
}

struct Shared {
    registry: Mutex<Registry>,
    tasks: Mutex<Distributor>,
    bus: Bus,
    alarm: Arc<Alarm>,
    config: CoordConfig,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Let the clock task notice that nothing is left to drive, instead of sleeping forever.
        self.alarm.ring();
    }
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its state consistent before it can panic, so a poisoned lock is
    // still safe to use.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        relock(&self.registry)
    }

    fn verify(&self, auth: &AgentAuth, action: &'static str) -> Result<()> {
        self.registry().verify(auth, action)
    }

    /// Runs `f` on the distributor, then publishes its effects while still holding the lock, so
    /// observers see task events in the order they happened.
    fn with_tasks<R>(&self, f: impl FnOnce(&mut Distributor, Instant, &mut Effects) -> R) -> R {
        let mut tasks = relock(&self.tasks);
        let mut fx = Effects::default();
        let out = f(&mut tasks, Instant::now(), &mut fx);
        self.publish_effects(fx);
        if let Some(at) = tasks.take_armed() {
            self.alarm.arm(at);
        }
        out
    }

    fn publish_effects(&self, fx: Effects) {
        for event in &fx.events {
            self.bus.emit(SYSTEM_TOPIC, event);
            if matches!(
                event,
                Event::TaskStateChanged {
                    state: TaskState::Done,
                    ..
                }
            ) {
                self.bus.emit(RESULTS_TOPIC, event);
            }
        }
        for task in fx.dead {
            let reason = DeadReason::RetriesExhausted {
                attempts: task.attempts,
                last_error: task.last_error.clone().unwrap_or_default(),
            };
            let recipient = task.agent.map(|a| a.to_string());
            self.bus
                .dead()
                .push(recipient, reason, DeadItem::Task(Box::new(task)));
        }
    }

    /// Marks an agent gone, closes its inbox and re-queues its tasks. No-op if already gone.
    fn leave(&self, agent: AgentId, reason: LeaveReason) {
        let Some(info) = self.registry().leave(agent, reason) else {
            return;
        };
        self.bus.close_mailbox(agent);
        self.with_tasks(|d, now, fx| {
            let at = fx.events.len();
            let requeued = d.remove_worker(agent, now, fx);
            let left = Event::AgentLeft {
                agent,
                name: info.name.clone(),
                reason,
                requeued,
            };
            fx.events.insert(at, left);
        });
    }
}

impl Ticking for Shared {
    fn tick(&self, now: Instant) -> Option<Instant> {
        let expired = self.registry().expired(now);
        for agent in expired {
            self.leave(agent, LeaveReason::HeartbeatLost);
        }
        let next_task = self.with_tasks(|d, now, fx| d.tick(now, fx));
        let next_heartbeat = self.registry().next_deadline();
        next_task.into_iter().chain(next_heartbeat).min()
    }
}

impl Coordinator {
    /// A coordinator with the default strategy ([`LeastLoaded`]).
    ///
    /// # Panics
    /// Outside a Tokio runtime, like `tokio::spawn`.
    pub fn new(config: CoordConfig) -> Self {
        Self::with_strategy(config, Box::new(LeastLoaded))
    }

    /// A coordinator distributing tasks with `strategy`.
    ///
    /// # Panics
    /// Outside a Tokio runtime, like `tokio::spawn`.
    pub fn with_strategy(config: CoordConfig, strategy: Box<dyn Strategy>) -> Self {
        let policy = TaskPolicy {
            max_retries: config.max_retries,
            timeout: config.task_timeout,
            retry_base: config.retry_base,
            retry_max: config.retry_max,
        };
        let alarm = Arc::new(Alarm::new());
        let shared = Arc::new(Shared {
            registry: Mutex::new(
                Registry::new(config.heartbeat_deadline).starting_at(config.first_agent_id),
            ),
            tasks: Mutex::new(Distributor::new(strategy, policy)),
            bus: Bus::new(config.inbox, config.dead_letter_capacity),
            alarm: alarm.clone(),
            config,
        });
        tokio::spawn(clock::run(Arc::downgrade(&shared), alarm));
        Self { shared }
    }

    pub fn config(&self) -> &CoordConfig {
        &self.shared.config
    }

    /// The name of the distribution strategy in use.
    pub fn strategy(&self) -> &'static str {
        relock(&self.shared.tasks).strategy_name()
    }

    // ----- agents -----------------------------------------------------------------------------

    /// Registers an agent and returns its id and token. Announced as [`Event::AgentJoined`].
    pub fn register(&self, spec: AgentSpec) -> Result<Registration> {
        self.enroll(|registry, now| registry.register(spec, now))
    }

    /// Registers an agent under an id and a token chosen by the caller: a node of a cluster
    /// takes ids from the cluster (unique on every node, never reused) and derives tokens that
    /// every node can check.
    pub fn register_as(
        &self,
        spec: AgentSpec,
        id: AgentId,
        token: crate::auth::Token,
    ) -> Result<Registration> {
        self.enroll(|registry, now| registry.register_as(spec, now, id, token))
    }

    fn enroll(
        &self,
        make: impl FnOnce(&mut Registry, Instant) -> Result<(AgentInfo, AgentAuth)>,
    ) -> Result<Registration> {
        let now = Instant::now();
        // The registry stays locked until the agent exists everywhere, so a concurrent
        // `disconnect` cannot slip in between and leave a worker behind for a gone agent.
        let mut registry = self.shared.registry();
        let (info, auth) = make(&mut registry, now)?;
        self.shared.bus.open_mailbox(info.id);
        self.shared.with_tasks(|d, now, fx| {
            fx.events.push(Event::AgentJoined {
                agent: info.clone(),
            });
            d.add_worker(&info, now, fx);
        });
        drop(registry);
        self.shared
            .alarm
            .arm(now + self.shared.config.heartbeat_deadline);
        Ok(Registration { info, auth })
    }

    /// Proves the agent is alive; pushes its heartbeat deadline back.
    pub fn heartbeat(&self, auth: &AgentAuth) -> Result<()> {
        self.shared.registry().heartbeat(auth, Instant::now())
    }

    /// The agent leaves on purpose. Its held tasks go back to the queue.
    pub fn unregister(&self, auth: &AgentAuth) -> Result<()> {
        self.shared.verify(auth, "unregister")?;
        self.shared.leave(auth.agent, LeaveReason::Unregistered);
        Ok(())
    }

    /// The connection that registered `agent` dropped. Called by the daemon, which knows which
    /// connection registered which agent, so no token is needed. No-op if the agent is already gone.
    pub fn disconnect(&self, agent: AgentId) -> Result<()> {
        self.shared.registry().get(agent)?;
        self.shared.leave(agent, LeaveReason::Disconnected);
        Ok(())
    }

    /// Active and recently departed agents, by id, with their current load.
    pub fn agents(&self) -> Vec<AgentInfo> {
        let mut agents = self.shared.registry().list();
        let tasks = relock(&self.shared.tasks);
        for a in &mut agents {
            a.load = tasks.load(a.id);
        }
        agents
    }

    pub fn agent(&self, id: AgentId) -> Result<AgentInfo> {
        let mut info = self.shared.registry().get(id)?;
        info.load = relock(&self.shared.tasks).load(id);
        Ok(info)
    }

    /// The active agent with this name.
    pub fn agent_by_name(&self, name: &str) -> Result<AgentInfo> {
        let mut info = self.shared.registry().find(name)?;
        info.load = relock(&self.shared.tasks).load(info.id);
        Ok(info)
    }

    // ----- bus --------------------------------------------------------------------------------

    /// Subscribes to a topic with the configured queue size and backpressure policy.
    pub fn subscribe(&self, topic: &str) -> Subscription {
        self.shared
            .bus
            .subscribe(topic, self.shared.config.subscription)
    }

    /// Subscribes with an explicit queue size and backpressure policy.
    pub fn subscribe_with(&self, topic: &str, options: QueueOptions) -> Subscription {
        self.shared.bus.subscribe(topic, options)
    }

    /// Subscribes to [`SYSTEM_TOPIC`]. Events never block the coordinator: when this queue is full
    /// they are dead-lettered, whatever the policy.
    pub fn events(&self) -> Subscription {
        self.subscribe(SYSTEM_TOPIC)
    }

    fn sender(&self, from: Option<&AgentAuth>, action: &'static str) -> Result<Option<AgentId>> {
        match from {
            Some(auth) => {
                self.shared.verify(auth, action)?;
                Ok(Some(auth.agent))
            }
            None => Ok(None),
        }
    }

    /// Publishes on a topic; every subscriber gets a copy. With `from`, the message is signed by
    /// that agent. A topic without subscribers delivers to nobody (that is not dead-lettering).
    pub async fn publish(
        &self,
        from: Option<&AgentAuth>,
        topic: &str,
        payload: Value,
    ) -> Result<Delivery> {
        if topic.starts_with('$') {
            return Err(CoordError::ReservedTopic {
                topic: topic.to_string(),
            });
        }
        let from = self.sender(from, "publish")?;
        self.publish_as(from, topic, payload).await
    }

    /// Publishes on a topic as `from`, whose credentials the caller checked (a node of a
    /// cluster checks those of an agent registered on another node). Relayed to the other
    /// nodes when a [`Relay`] is installed.
    pub async fn publish_as(
        &self,
        from: Option<AgentId>,
        topic: &str,
        payload: Value,
    ) -> Result<Delivery> {
        if topic.starts_with('$') {
            return Err(CoordError::ReservedTopic {
                topic: topic.to_string(),
            });
        }
        if let Some(relay) = self.relay() {
            relay.topic(topic, from, &payload).await;
        }
        Ok(self.shared.bus.publish(topic, from, payload).await)
    }

    /// Installs the relay that carries topic messages, broadcasts and dead letters to the other
    /// nodes of a cluster. Returns `false` (and changes nothing) when one is already installed.
    pub fn set_relay(&self, relay: Arc<dyn Relay>) -> bool {
        self.shared.bus.dead().relay().set(relay).is_ok()
    }

    fn relay(&self) -> Option<&Arc<dyn Relay>> {
        self.shared.bus.dead().relay().get()
    }

    /// Delivers a topic message published on another node to this node's subscribers only.
    pub async fn deliver_topic(
        &self,
        topic: &str,
        from: Option<AgentId>,
        payload: Value,
    ) -> Delivery {
        self.shared.bus.publish(topic, from, payload).await
    }

    /// Delivers a broadcast made on another node to this node's agents only.
    pub async fn deliver_broadcast(&self, from: Option<AgentId>, payload: Value) -> Delivery {
        self.shared.bus.broadcast(from, payload).await
    }

    /// Publishes from the daemon itself on one of its reserved topics (`$alerts`), which
    /// [`Coordinator::publish`] refuses to agents.
    pub async fn publish_reserved(&self, topic: &str, payload: Value) -> Delivery {
        self.shared.bus.publish(topic, None, payload).await
    }

    /// Sends to one agent's inbox. A departed agent's mail is dead-lettered.
    pub async fn send(
        &self,
        from: Option<&AgentAuth>,
        to: AgentId,
        payload: Value,
    ) -> Result<Delivery> {
        let from = self.sender(from, "send")?;
        self.send_as(from, to, payload).await
    }

    /// Sends to one agent's inbox as `from`, whose credentials the caller checked.
    pub async fn send_as(
        &self,
        from: Option<AgentId>,
        to: AgentId,
        payload: Value,
    ) -> Result<Delivery> {
        self.shared.registry().get(to)?;
        Ok(self.shared.bus.send(to, from, payload).await)
    }

    /// Sends to the inbox of every active agent.
    pub async fn broadcast(&self, from: Option<&AgentAuth>, payload: Value) -> Result<Delivery> {
        let from = self.sender(from, "broadcast")?;
        Ok(self.broadcast_as(from, payload).await)
    }

    /// Broadcasts as `from`, whose credentials the caller checked; relayed to the other nodes
    /// when a [`Relay`] is installed.
    pub async fn broadcast_as(&self, from: Option<AgentId>, payload: Value) -> Delivery {
        if let Some(relay) = self.relay() {
            relay.broadcast(from, &payload).await;
        }
        self.shared.bus.broadcast(from, payload).await
    }

    /// Sends a request to an agent's inbox and waits up to `timeout` for its reply.
    pub async fn request(
        &self,
        from: Option<&AgentAuth>,
        to: AgentId,
        payload: Value,
        timeout: Duration,
    ) -> Result<Arc<Message>> {
        let from = self.sender(from, "request")?;
        self.request_as(from, to, payload, timeout).await
    }

    /// Sends a request as `from`, whose credentials the caller checked, and waits for the reply.
    pub async fn request_as(
        &self,
        from: Option<AgentId>,
        to: AgentId,
        payload: Value,
        timeout: Duration,
    ) -> Result<Arc<Message>> {
        self.shared.registry().get(to)?;
        self.shared.bus.request(to, from, payload, timeout).await
    }

    /// Answers a request addressed to the authenticated agent.
    pub fn reply(
        &self,
        auth: &AgentAuth,
        correlation: CorrelationId,
        payload: Value,
    ) -> Result<()> {
        self.shared.verify(auth, "reply")?;
        self.shared.bus.reply(auth.agent, correlation, payload)
    }

    /// The authenticated agent's inbox: its direct messages, broadcasts and requests.
    pub fn inbox(&self, auth: &AgentAuth) -> Result<Inbox> {
        self.shared.verify(auth, "read the inbox")?;
        self.shared
            .bus
            .inbox(auth.agent)
            .ok_or(CoordError::AgentGone { agent: auth.agent })
    }

    /// Announces a change made outside this coordinator (a task of the cluster's, changed on
    /// any node) to this coordinator's observers, as its own changes are: on [`SYSTEM_TOPIC`],
    /// and a task done also on [`RESULTS_TOPIC`].
    pub fn announce(&self, event: &Event) {
        self.shared.bus.emit(SYSTEM_TOPIC, event);
        if matches!(
            event,
            Event::TaskStateChanged {
                state: TaskState::Done,
                ..
            }
        ) {
            self.shared.bus.emit(RESULTS_TOPIC, event);
        }
    }

    /// Announces a terminal session's new state on [`SYSTEM_TOPIC`]. Called by the daemon.
    pub fn publish_session_state(&self, session: &str, state: &str, detail: Value) {
        let event = Event::SessionStateChanged {
            session: session.to_string(),
            state: state.to_string(),
            detail,
        };
        self.shared.bus.emit(SYSTEM_TOPIC, &event);
    }

    /// Topics with at least one subscriber.
    pub fn topics(&self) -> Vec<TopicInfo> {
        self.shared.bus.topics()
    }

    /// The newest `limit` messages published on `topic` (at most [`crate::RECENT_PER_TOPIC`]
    /// are kept per topic), oldest first; whether anyone subscribed or not.
    pub fn recent(&self, topic: &str, limit: usize) -> Vec<Arc<Message>> {
        self.shared.bus.recent(topic, limit)
    }

    /// Every topic with recent messages kept, and how many.
    pub fn recent_counts(&self) -> Vec<(String, usize)> {
        self.shared.bus.recent_counts()
    }

    /// The dead-letter queue, oldest first, left in place.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.shared.bus.dead().list()
    }

    /// Takes every entry out of the dead-letter queue, oldest first.
    pub fn drain_dead_letters(&self) -> Vec<DeadLetter> {
        self.shared.bus.dead().drain()
    }

    /// Puts on the dead-letter queue an event the hook `hook` could not deliver in `attempts`
    /// tries, the last failing with `last_error`. Called by the daemon's webhooks.
    pub fn dead_letter_hook_event(
        &self,
        hook: &str,
        attempts: u32,
        last_error: String,
        event: Value,
    ) {
        self.shared.bus.dead().push(
            Some(hook.to_owned()),
            DeadReason::RetriesExhausted {
                attempts,
                last_error,
            },
            DeadItem::HookEvent(Box::new(event)),
        );
    }

    pub fn dead_letter_stats(&self) -> DeadLetterStats {
        self.shared.bus.dead().stats()
    }

    // ----- tasks ------------------------------------------------------------------------------

    /// Submits one task. Its `after` may only name existing task ids.
    pub fn submit(&self, spec: TaskSpec) -> Result<TaskId> {
        let ids = self.submit_batch(vec![spec])?;
        ids.first().copied().ok_or(CoordError::Closed)
    }

    /// Submits tasks that may depend on each other by key. All or nothing: a cycle, an unknown
    /// dependency or a duplicate key rejects the whole batch. Ids come back in input order.
    pub fn submit_batch(&self, specs: Vec<TaskSpec>) -> Result<Vec<TaskId>> {
        self.shared
            .with_tasks(|d, now, fx| d.submit(specs, now, fx))
    }

    /// The authenticated agent's most urgent assigned task, now `running`; `None` if the
    /// distributor has nothing for it (no capable work, or it is at its `max_tasks`).
    pub fn claim(&self, auth: &AgentAuth) -> Result<Option<Task>> {
        self.shared.verify(auth, "claim tasks")?;
        Ok(self
            .shared
            .with_tasks(|d, now, fx| d.claim(auth.agent, now, fx)))
    }

    /// Like [`claim`](Self::claim), but waits up to `wait` for a task to be assigned.
    pub async fn claim_wait(&self, auth: &AgentAuth, wait: Duration) -> Result<Option<Task>> {
        let deadline = Instant::now() + wait;
        loop {
            self.shared.verify(auth, "claim tasks")?;
            let notify = relock(&self.shared.tasks)
                .notifier(auth.agent)
                .ok_or(CoordError::AgentGone { agent: auth.agent })?;
            let notified = notify.notified();
            if let Some(task) = self.claim(auth)? {
                return Ok(Some(task));
            }
            if timeout_at(deadline, notified).await.is_err() {
                return Ok(None);
            }
        }
    }

    /// Reports success on a task the agent holds. The result is published on [`RESULTS_TOPIC`]
    /// and [`SYSTEM_TOPIC`]; dependents become ready.
    pub fn done(&self, auth: &AgentAuth, task: TaskId, result: Value) -> Result<Task> {
        self.shared.verify(auth, "complete tasks")?;
        self.shared
            .with_tasks(|d, now, fx| d.complete(auth.agent, task, result, now, fx))
    }

    /// Reports failure on a task the agent holds: it is retried after a backoff, or dead-lettered
    /// once out of retries.
    pub fn fail(&self, auth: &AgentAuth, task: TaskId, reason: impl Into<String>) -> Result<Task> {
        self.shared.verify(auth, "fail tasks")?;
        let reason = reason.into();
        self.shared
            .with_tasks(|d, now, fx| d.fail(auth.agent, task, reason, now, fx))
    }

    /// Forgets every task that is done, failed or dead-lettered, and returns how many. Later
    /// submissions can no longer name them in `after` (that is `UnknownDependency`).
    pub fn prune_finished(&self) -> usize {
        relock(&self.shared.tasks).prune_finished()
    }

    pub fn task(&self, id: TaskId) -> Result<Task> {
        relock(&self.shared.tasks).get(id)
    }

    /// All tasks by id, or only those in `state`.
    pub fn tasks(&self, state: Option<TaskState>) -> Vec<Task> {
        relock(&self.shared.tasks).list(state)
    }
}
