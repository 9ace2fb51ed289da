//! The message bus: topics with fan-out, agent inboxes, broadcast, request/reply, backpressure.
//!
//! Every subscriber owns a bounded queue (`tokio::sync::mpsc`), so each one gets its own copy of
//! every message (an `Arc` clone, not a deep copy). When a queue is full, the subscriber's
//! [`Backpressure`] policy decides: wait for room up to a deadline, or dead-letter at once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout_at};

use crate::deadletter::{DeadItem, DeadLetters, DeadReason};
use crate::error::{CoordError, Result};
use crate::event::Event;
use crate::ids::{AgentId, CorrelationId, MessageId};
use crate::message::{Message, Route, now_ms};
use crate::recent::Recent;

/// What a publisher does when a subscriber's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backpressure {
    /// Wait for room up to `max`, then dead-letter the message. Slows the publisher down to the
    /// subscriber's pace, within the deadline.
    Wait { max: Duration },
    /// Dead-letter the message at once; the publisher never waits.
    DeadLetter,
}

/// Queue size and backpressure policy of one subscription or inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// Messages the queue holds before backpressure applies (at least 1).
    pub capacity: usize,
    pub policy: Backpressure,
}

impl Default for QueueOptions {
    fn default() -> Self {
        Self {
            capacity: 1024,
            policy: Backpressure::Wait {
                max: Duration::from_millis(100),
            },
        }
    }
}

/// How a send went: copies queued, and copies dead-lettered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub delivered: usize,
    pub dead_lettered: usize,
}

/// A topic and how many subscribers it has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    pub topic: String,
    pub subscribers: usize,
}

type Tx = mpsc::Sender<Arc<Message>>;
type Rx = mpsc::Receiver<Arc<Message>>;

#[derive(Clone)]
struct Slot {
    id: u64,
    tx: Tx,
    policy: Backpressure,
}

struct Mailbox {
    tx: Tx,
    rx: Arc<tokio::sync::Mutex<MailQueue>>,
    policy: Backpressure,
}

/// The read side of an inbox: what senders queued, and in front of it what a reader took but
/// could not deliver (its connection went), for the next reader.
struct MailQueue {
    rx: Rx,
    unread: VecDeque<Arc<Message>>,
}

impl MailQueue {
    async fn recv(&mut self) -> Option<Arc<Message>> {
        match self.unread.pop_front() {
            Some(m) => Some(m),
            None => self.rx.recv().await,
        }
    }

    fn try_recv(&mut self) -> Option<Arc<Message>> {
        self.unread.pop_front().or_else(|| self.rx.try_recv().ok())
    }
}

struct Pending {
    addressee: AgentId,
    requester: Option<AgentId>,
    tx: oneshot::Sender<Arc<Message>>,
}

#[derive(Default)]
struct Routes {
    /// Copy-on-write subscriber lists: a publisher clones the `Arc` and delivers without the lock.
    topics: HashMap<Arc<str>, Arc<[Slot]>>,
    mailboxes: HashMap<AgentId, Mailbox>,
    pending: HashMap<CorrelationId, Pending>,
}

struct Shared {
    routes: Mutex<Routes>,
    dead: DeadLetters,
    next_message: AtomicU64,
    next_subscription: AtomicU64,
    next_correlation: AtomicU64,
    inbox: QueueOptions,
    /// The last messages of each topic, for `bus.recent`.
    recent: Mutex<Recent>,
}

impl Shared {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        // Every critical section leaves the maps consistent, so a poisoned lock is still usable.
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

enum Outcome {
    Delivered,
    DeadLettered,
    Closed,
}

/// The bus. Cheap to clone; all clones share the same topics and inboxes.
#[derive(Clone)]
pub(crate) struct Bus {
    shared: Arc<Shared>,
}

impl Bus {
    pub(crate) fn new(inbox: QueueOptions, dead_letter_capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                routes: Mutex::new(Routes::default()),
                dead: DeadLetters::new(dead_letter_capacity),
                next_message: AtomicU64::new(1),
                next_subscription: AtomicU64::new(1),
                next_correlation: AtomicU64::new(1),
                inbox,
                recent: Mutex::new(Recent::default()),
            }),
        }
    }

    pub(crate) fn dead(&self) -> &DeadLetters {
        &self.shared.dead
    }

    fn message(&self, route: Route, from: Option<AgentId>, payload: Value) -> Arc<Message> {
        let id = MessageId(self.shared.next_message.fetch_add(1, Ordering::Relaxed));
        Arc::new(Message {
            id,
            route,
            from,
            payload,
            sent_at_ms: now_ms(),
        })
    }

    /// Queues `msg` on one queue under `policy`; dead-letters it if the policy says so.
    async fn deliver(
        &self,
        tx: &Tx,
        policy: Backpressure,
        msg: Arc<Message>,
        recipient: impl FnOnce() -> String,
    ) -> Outcome {
        let msg = match tx.try_send(msg) {
            Ok(()) => return Outcome::Delivered,
            Err(mpsc::error::TrySendError::Closed(_)) => return Outcome::Closed,
            Err(mpsc::error::TrySendError::Full(msg)) => msg,
        };
        let reason = match policy {
            Backpressure::DeadLetter => DeadReason::QueueFull,
            Backpressure::Wait { max } => {
                match timeout_at(Instant::now() + max, tx.reserve()).await {
                    Ok(Ok(permit)) => {
                        permit.send(msg);
                        return Outcome::Delivered;
                    }
                    Ok(Err(_)) => return Outcome::Closed,
                    Err(_) => DeadReason::WaitTimedOut,
                }
            }
        };
        self.shared
            .dead
            .push(Some(recipient()), reason, DeadItem::Message(msg));
        Outcome::DeadLettered
    }

    pub(crate) fn subscribe(&self, topic: &str, opts: QueueOptions) -> Subscription {
        let (tx, rx) = mpsc::channel(opts.capacity.max(1));
        let id = self
            .shared
            .next_subscription
            .fetch_add(1, Ordering::Relaxed);
        let slot = Slot {
            id,
            tx,
            policy: opts.policy,
        };
        let mut routes = self.shared.routes();
        let key = match routes.topics.get_key_value(topic) {
            Some((k, _)) => k.clone(),
            None => Arc::from(topic),
        };
        let slots = routes
            .topics
            .entry(key.clone())
            .or_insert_with(|| Arc::from(Vec::new()));
        let mut next: Vec<Slot> = slots.iter().cloned().collect();
        next.push(slot);
        *slots = Arc::from(next);
        Subscription {
            id,
            topic: key,
            rx,
            bus: Arc::downgrade(&self.shared),
        }
    }

    fn keep(&self, topic: &Arc<str>, msg: &Arc<Message>) {
        let pushed_out = self
            .shared
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(topic, msg);
        drop(pushed_out);
    }

    /// The newest `limit` messages published on `topic`, oldest first.
    pub(crate) fn recent(&self, topic: &str, limit: usize) -> Vec<Arc<Message>> {
        self.shared
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .of(topic, limit)
    }

    /// Every topic with recent messages, and how many are kept.
    pub(crate) fn recent_counts(&self) -> Vec<(String, usize)> {
        self.shared
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .counts()
    }

    pub(crate) fn topics(&self) -> Vec<TopicInfo> {
        let routes = self.shared.routes();
        let mut out: Vec<TopicInfo> = routes
            .topics
            .iter()
            .map(|(t, s)| TopicInfo {
                topic: t.to_string(),
                subscribers: s.len(),
            })
            .collect();
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        out
    }

    pub(crate) async fn publish(
        &self,
        topic: &str,
        from: Option<AgentId>,
        payload: Value,
    ) -> Delivery {
        let found = {
            let routes = self.shared.routes();
            routes
                .topics
                .get_key_value(topic)
                .map(|(k, v)| (k.clone(), v.clone()))
        };
        let mut report = Delivery::default();
        // A message nobody listens to is still kept with the topic's recent ones.
        let (topic, slots) = found.unwrap_or_else(|| (Arc::from(topic), Arc::from(Vec::new())));
        let msg = self.message(
            Route::Topic {
                topic: topic.clone(),
            },
            from,
            payload,
        );
        self.keep(&topic, &msg);
        for slot in slots.iter() {
            let label = || format!("{topic}#sub-{}", slot.id);
            match self
                .deliver(&slot.tx, slot.policy, msg.clone(), label)
                .await
            {
                Outcome::Delivered => report.delivered += 1,
                Outcome::DeadLettered => report.dead_lettered += 1,
                Outcome::Closed => {}
            }
        }
        report
    }

    /// Publishes a system event without ever waiting: observers must not stall the scheduler, so a
    /// full observer queue dead-letters the event. Serialises only when someone listens.
    pub(crate) fn emit(&self, topic: &str, event: &Event) {
        let found = {
            let routes = self.shared.routes();
            routes
                .topics
                .get_key_value(topic)
                .map(|(k, v)| (k.clone(), v.clone()))
        };
        let Some((topic, slots)) = found else { return };
        let Ok(payload) = serde_json::to_value(event) else {
            return;
        };
        let msg = self.message(
            Route::Topic {
                topic: topic.clone(),
            },
            None,
            payload,
        );
        self.keep(&topic, &msg);
        for slot in slots.iter() {
            if let Err(mpsc::error::TrySendError::Full(m)) = slot.tx.try_send(msg.clone()) {
                let label = format!("{topic}#sub-{}", slot.id);
                self.shared
                    .dead
                    .push(Some(label), DeadReason::QueueFull, DeadItem::Message(m));
            }
        }
    }

    pub(crate) fn open_mailbox(&self, agent: AgentId) {
        let (tx, rx) = mpsc::channel(self.shared.inbox.capacity.max(1));
        let mailbox = Mailbox {
            tx,
            rx: Arc::new(tokio::sync::Mutex::new(MailQueue {
                rx,
                unread: VecDeque::new(),
            })),
            policy: self.shared.inbox.policy,
        };
        self.shared.routes().mailboxes.insert(agent, mailbox);
    }

    /// Removes an agent's inbox: unread messages are dead-lettered, and requests addressed to it
    /// fail at once instead of waiting for their timeout.
    pub(crate) fn close_mailbox(&self, agent: AgentId) {
        let mailbox = {
            let mut routes = self.shared.routes();
            routes.pending.retain(|_, p| p.addressee != agent);
            routes.mailboxes.remove(&agent)
        };
        let Some(mailbox) = mailbox else { return };
        drop(mailbox.tx);
        // A reader blocked in `recv` holds the lock only while the queue is empty, so failing to
        // take the lock means there is nothing left to rescue.
        if let Ok(mut rx) = mailbox.rx.try_lock() {
            while let Some(msg) = rx.try_recv() {
                let reason = DeadReason::AgentLeft { agent };
                self.shared
                    .dead
                    .push(Some(agent.to_string()), reason, DeadItem::Message(msg));
            }
        }
    }

    pub(crate) fn inbox(&self, agent: AgentId) -> Option<Inbox> {
        let routes = self.shared.routes();
        routes.mailboxes.get(&agent).map(|m| Inbox {
            agent,
            rx: m.rx.clone(),
        })
    }

    /// Sends to one agent's inbox. An agent without an inbox (gone) gets the message dead-lettered.
    pub(crate) async fn send(
        &self,
        to: AgentId,
        from: Option<AgentId>,
        payload: Value,
    ) -> Delivery {
        let target = {
            let routes = self.shared.routes();
            routes.mailboxes.get(&to).map(|m| (m.tx.clone(), m.policy))
        };
        let msg = self.message(Route::Direct { to }, from, payload);
        self.deliver_to_agent(to, target, msg).await
    }

    async fn deliver_to_agent(
        &self,
        to: AgentId,
        target: Option<(Tx, Backpressure)>,
        msg: Arc<Message>,
    ) -> Delivery {
        let outcome = match target {
            Some((tx, policy)) => {
                self.deliver(&tx, policy, msg.clone(), || to.to_string())
                    .await
            }
            None => Outcome::Closed,
        };
        match outcome {
            Outcome::Delivered => Delivery {
                delivered: 1,
                dead_lettered: 0,
            },
            Outcome::DeadLettered => Delivery {
                delivered: 0,
                dead_lettered: 1,
            },
            Outcome::Closed => {
                let reason = DeadReason::NoSuchAgent { agent: to };
                self.shared
                    .dead
                    .push(Some(to.to_string()), reason, DeadItem::Message(msg));
                Delivery {
                    delivered: 0,
                    dead_lettered: 1,
                }
            }
        }
    }

    pub(crate) async fn broadcast(&self, from: Option<AgentId>, payload: Value) -> Delivery {
        let targets: Vec<(AgentId, Tx, Backpressure)> = {
            let routes = self.shared.routes();
            routes
                .mailboxes
                .iter()
                .map(|(a, m)| (*a, m.tx.clone(), m.policy))
                .collect()
        };
        let msg = self.message(Route::Broadcast, from, payload);
        let mut report = Delivery::default();
        for (agent, tx, policy) in targets {
            match self
                .deliver(&tx, policy, msg.clone(), || agent.to_string())
                .await
            {
                Outcome::Delivered => report.delivered += 1,
                Outcome::DeadLettered => report.dead_lettered += 1,
                Outcome::Closed => {}
            }
        }
        report
    }

    /// Sends a request to `to` and waits for the reply until `wait` has passed.
    pub(crate) async fn request(
        &self,
        to: AgentId,
        from: Option<AgentId>,
        payload: Value,
        wait: Duration,
    ) -> Result<Arc<Message>> {
        let deadline = Instant::now() + wait;
        let correlation =
            CorrelationId(self.shared.next_correlation.fetch_add(1, Ordering::Relaxed));
        let (reply_tx, reply_rx) = oneshot::channel();
        let (tx, policy) = {
            let mut routes = self.shared.routes();
            let Some(mailbox) = routes.mailboxes.get(&to) else {
                return Err(CoordError::AgentGone { agent: to });
            };
            let target = (mailbox.tx.clone(), mailbox.policy);
            let pending = Pending {
                addressee: to,
                requester: from,
                tx: reply_tx,
            };
            routes.pending.insert(correlation, pending);
            target
        };
        let msg = self.message(
            Route::Request {
                to,
                correlation_id: correlation,
            },
            from,
            payload,
        );
        let delivered =
            match timeout_at(deadline, self.deliver(&tx, policy, msg, || to.to_string())).await {
                Ok(Outcome::Delivered) => Ok(()),
                Ok(Outcome::DeadLettered) => Err(CoordError::InboxFull { agent: to }),
                Ok(Outcome::Closed) => Err(CoordError::AgentGone { agent: to }),
                Err(_) => Err(CoordError::RequestTimeout {
                    correlation,
                    after: wait,
                }),
            };
        if let Err(e) = delivered {
            self.shared.routes().pending.remove(&correlation);
            return Err(e);
        }
        match timeout_at(deadline, reply_rx).await {
            Ok(Ok(reply)) => Ok(reply),
            // The pending entry was dropped without an answer: the addressee left.
            Ok(Err(_)) => Err(CoordError::AgentGone { agent: to }),
            Err(_) => {
                self.shared.routes().pending.remove(&correlation);
                Err(CoordError::RequestTimeout {
                    correlation,
                    after: wait,
                })
            }
        }
    }

    /// Answers a pending request. Only the agent the request was addressed to may answer it.
    pub(crate) fn reply(
        &self,
        agent: AgentId,
        correlation: CorrelationId,
        payload: Value,
    ) -> Result<()> {
        let pending = {
            let mut routes = self.shared.routes();
            match routes.pending.get(&correlation) {
                Some(p) if p.addressee != agent => {
                    return Err(CoordError::NotAddressee {
                        agent,
                        correlation,
                        addressee: p.addressee,
                    });
                }
                Some(_) => routes.pending.remove(&correlation),
                None => None,
            }
        };
        let Some(pending) = pending else {
            let route = Route::Reply {
                to: None,
                correlation_id: correlation,
            };
            let msg = self.message(route, Some(agent), payload);
            self.shared
                .dead
                .push(None, DeadReason::RequestExpired, DeadItem::Message(msg));
            return Err(CoordError::UnknownRequest(correlation));
        };
        let route = Route::Reply {
            to: pending.requester,
            correlation_id: correlation,
        };
        let msg = self.message(route, Some(agent), payload);
        if let Err(msg) = pending.tx.send(msg) {
            let recipient = pending.requester.map(|a| a.to_string());
            self.shared.dead.push(
                recipient,
                DeadReason::RequestExpired,
                DeadItem::Message(msg),
            );
        }
        Ok(())
    }
}

/// A subscription to one topic. Dropping it unsubscribes.
pub struct Subscription {
    id: u64,
    topic: Arc<str>,
    rx: Rx,
    bus: Weak<Shared>,
}

impl Subscription {
    /// The next message; `None` once the coordinator is gone and the queue is drained.
    pub async fn recv(&mut self) -> Option<Arc<Message>> {
        self.rx.recv().await
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Option<Arc<Message>> {
        self.rx.try_recv().ok()
    }

    /// Waits for at least one message, then takes up to `limit` queued ones into `buf`. Returns how
    /// many were added; 0 means the coordinator is gone.
    pub async fn recv_many(&mut self, buf: &mut Vec<Arc<Message>>, limit: usize) -> usize {
        self.rx.recv_many(buf, limit).await
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Messages waiting in this subscription's queue.
    pub fn queued(&self) -> usize {
        self.rx.len()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Some(bus) = self.bus.upgrade() else {
            return;
        };
        let mut routes = bus.routes();
        let Some(slots) = routes.topics.get_mut(&self.topic) else {
            return;
        };
        let rest: Vec<Slot> = slots.iter().filter(|s| s.id != self.id).cloned().collect();
        if rest.is_empty() {
            routes.topics.remove(&self.topic);
        } else {
            *slots = Arc::from(rest);
        }
    }
}

/// An agent's inbox: direct messages, broadcasts and requests. Clones share one queue, so two
/// readers of the same agent split the messages between them.
#[derive(Clone)]
pub struct Inbox {
    agent: AgentId,
    rx: Arc<tokio::sync::Mutex<MailQueue>>,
}

impl Inbox {
    pub fn agent(&self) -> AgentId {
        self.agent
    }

    /// The next message; `None` once the agent is gone and the inbox is drained.
    pub async fn recv(&self) -> Option<Arc<Message>> {
        self.rx.lock().await.recv().await
    }

    /// The next message if one is queued and no other reader is waiting.
    pub fn try_recv(&self) -> Option<Arc<Message>> {
        self.rx.try_lock().ok()?.try_recv()
    }

    /// Puts back, in front and in order, messages a reader took but could not deliver: the
    /// next reader gets them first.
    pub async fn unread(&self, messages: Vec<Arc<Message>>) {
        let mut queue = self.rx.lock().await;
        for m in messages.into_iter().rev() {
            queue.unread.push_front(m);
        }
    }
}
