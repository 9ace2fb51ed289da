//! Tasks across the cluster: each task one entry of the bucket `ais_tasks`, every change a
//! compare-and-swap on the entry's revision, so that two nodes never both claim, complete or
//! release a task. Every node keeps a view of the bucket (a watch) to pick the tasks an agent
//! may claim: the most urgent ready task whose needs the agent's capabilities cover. A running
//! task holds a lease its node renews while the agent is alive; once it lapses (the node died,
//! the agent left) any node puts the task back in the queue, or into the dead letters once
//! its attempts are spent. A task waits until every task in its `after` is done.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::node::encode;
use crate::{Cluster, ClusterError, now_ms};

/// The bucket of tasks (kept until deleted).
pub(crate) const TASKS: &str = "ais_tasks";
/// Changes of one task the bucket keeps: the watch delivers each change from the stream, and
/// a change replaced before the watch read it would be skipped (its event lost) if only the
/// newest were kept. A task changes a few times per attempt; pruning removes them all.
pub(crate) const HISTORY: i64 = 64;
/// The counter of task ids.
const TASK_COUNTER: &str = "task";
/// Compare-and-swap attempts on one task before giving up.
const CAS_TRIES: usize = 64;

/// A task as the cluster keeps it; its JSON is the protocol's task shape plus the fields
/// the cluster needs (`node`, `lease_until_ms`, `not_before_ms`, `claimed_at_ms`, `children`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: u64,
    pub description: String,
    pub needs: Vec<String>,
    pub priority: i32,
    pub after: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    pub max_retries: u32,
    /// `queued`, `running`, `done`, `failed` or `dead_lettered`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<u64>,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Dependencies not done yet.
    #[serde(default)]
    pub waiting_on: Vec<u64>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// The node whose agent runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at_ms: Option<u64>,
    /// When a running task goes back to the queue unless its node renews it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until_ms: Option<u64>,
    /// A failed task waits until then before it may be claimed again (the backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before_ms: Option<u64>,
    /// Tasks that wait for this one.
    #[serde(default)]
    pub children: Vec<u64>,
}

impl TaskRecord {
    fn ready(&self, now: u64) -> bool {
        self.state == "queued"
            && self.waiting_on.is_empty()
            && self.not_before_ms.is_none_or(|t| t <= now)
    }

    fn finished(&self) -> bool {
        matches!(self.state.as_str(), "done" | "failed" | "dead_lettered")
    }
}

/// What a new task asks for.
#[derive(Debug, Clone, Default)]
pub struct NewTask {
    pub description: String,
    pub needs: Vec<String>,
    pub priority: i32,
    pub after: Vec<u64>,
    pub timeout_ms: Option<u64>,
    pub max_retries: u32,
}

/// An agent claiming or reporting, as the daemon checked it.
#[derive(Debug, Clone)]
pub struct Worker {
    pub agent: u64,
    pub capabilities: Vec<String>,
    pub max_tasks: usize,
}

/// Backoff between attempts of a failed task: `base`, doubling, at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

/// Why a task operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("no task {0} in the cluster")]
    Unknown(u64),
    #[error("task {id} in `after` does not exist")]
    UnknownDependency { id: u64 },
    /// Worded as one daemon words it.
    #[error("dependency task-{id} already ended as {state}; the task could never run")]
    DependencyFailed { id: u64, state: String },
    /// Worded as one daemon words it.
    #[error("agent {agent} may not {action} task {task}: it is held by {holder}")]
    NotHolder {
        task: u64,
        agent: u64,
        action: &'static str,
        holder: String,
    },
    #[error("a capability in `needs` is empty")]
    Invalid,
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// This node's view of the task bucket, kept current by a watch.
#[derive(Default)]
pub(crate) struct TaskView {
    state: Mutex<Known>,
    changed: Notify,
    /// Where the watch announces each change of a task's state, holder or attempts
    /// ([`Cluster::task_events`]): every node hears every change once, in order.
    events: Mutex<Option<mpsc::UnboundedSender<TaskRecord>>>,
}

/// What a task event reports: a change of any of these is announced.
type Announced = (String, Option<u64>, u32);

/// The tasks known here, with indexes for claiming.
#[derive(Default)]
struct Known {
    /// Every task and the revision it was read at.
    tasks: HashMap<u64, (TaskRecord, u64)>,
    /// Ready tasks (queued, waiting for nothing), most urgent first.
    ready: BTreeSet<(Reverse<i32>, u64)>,
    /// Running tasks by agent.
    running: HashMap<u64, HashSet<u64>>,
    /// Tasks an agent of this node is claiming right now: the others look elsewhere, so that
    /// this node's agents do not all race for the same task.
    claiming: HashSet<u64>,
    /// The newest revision of the bucket the watch delivered: it delivers them in order, so
    /// every earlier change is known (this node's own writes do not count).
    latest: u64,
    /// What the watch last delivered of each task (this node's own writes enter the view
    /// before the watch brings them, so the view cannot tell what changed).
    announced: HashMap<u64, Announced>,
    /// Pruned tasks whose delete marker (and older changes) are still in the bucket's stream,
    /// and when this node deleted the task or its watch brought the marker: removed from the
    /// stream a lease later, once every node's watch has seen it.
    markers: HashMap<u64, u64>,
}

impl Known {
    fn unindex(&mut self, id: u64) {
        if let Some((old, _)) = self.tasks.get(&id) {
            self.ready.remove(&(Reverse(old.priority), id));
            if let Some(held) = old.agent.and_then(|a| self.running.get_mut(&a)) {
                held.remove(&id);
            }
        }
    }

    /// Takes `record` at `revision` unless a newer one is known.
    fn upsert(&mut self, record: TaskRecord, revision: u64) {
        let id = record.id;
        if self.tasks.get(&id).is_some_and(|(_, rev)| *rev >= revision) {
            return;
        }
        self.unindex(id);
        if record.state == "queued" && record.waiting_on.is_empty() {
            self.ready.insert((Reverse(record.priority), id));
        }
        if let Some(agent) = record.agent.filter(|_| record.state == "running") {
            self.running.entry(agent).or_default().insert(id);
        }
        self.tasks.insert(id, (record, revision));
    }

    fn remove(&mut self, id: u64) {
        self.unindex(id);
        self.tasks.remove(&id);
    }
}

impl TaskView {
    fn lock(&self) -> MutexGuard<'_, Known> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one change the watch delivered; `announce`: tell [`Cluster::task_events`] when a
    /// task's state, holder or attempts changed (not for the history read at start).
    fn apply(&self, entry: &kv::Entry, announce: bool) {
        let id = entry.key.strip_prefix("task.").and_then(|n| n.parse().ok());
        let mut news = None;
        {
            let mut known = self.lock();
            known.latest = known.latest.max(entry.revision);
            if let Some(id) = id {
                if entry.operation != kv::Operation::Put {
                    known.remove(id);
                    known.announced.remove(&id);
                    known.markers.entry(id).or_insert_with(now_ms);
                } else if let Ok(record) = serde_json::from_slice::<TaskRecord>(&entry.value) {
                    let now = (record.state.clone(), record.agent, record.attempts);
                    if known.announced.get(&id) != Some(&now) {
                        known.announced.insert(id, now);
                        news = announce.then(|| record.clone());
                    }
                    known.upsert(record, entry.revision);
                }
            }
        }
        if let Some(record) = news {
            let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(tx) = events.as_ref() {
                tx.send(record).ok();
            }
        }
        self.changed.notify_waiters();
    }
}

fn task_key(id: u64) -> String {
    format!("task.{id}")
}

/// The subject of task `id`'s messages in the bucket's stream.
fn task_subject(id: u64) -> String {
    format!("$KV.{TASKS}.{}", task_key(id))
}

/// Deletes, one by one, every message of pruned task `id` the bucket's stream holds: its
/// changes and its delete marker. Only a deleted task's are removed: the last message must be
/// a marker (ids are never reused, so no change follows it).
async fn remove_every_message(
    stream: &jetstream::stream::Stream,
    id: u64,
) -> Result<(), ClusterError> {
    use jetstream::stream::DirectGetErrorKind;
    let subject = task_subject(id);
    let failed = failed("pruning tasks");
    let last = match stream.direct_get_last_for_subject(&subject).await {
        Ok(message) => message,
        Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(failed(&e)),
    };
    let operation = last
        .headers
        .get(KV_OPERATION)
        .map(|v| v.as_str().to_string());
    if !matches!(operation.as_deref(), Some("DEL" | "PURGE")) {
        return Ok(());
    }
    let mut from = None;
    loop {
        let sequence = match stream.direct_get_next_for_subject(&subject, from).await {
            Ok(message) => {
                jetstream::message::StreamMessage::try_from(message.message)
                    .map_err(|e| failed(&e))?
                    .sequence
            }
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(failed(&e)),
        };
        stream
            .delete_message(sequence)
            .await
            .map_err(|e| failed(&e))?;
        if sequence >= last.sequence {
            return Ok(());
        }
        from = Some(sequence + 1);
    }
}

/// A warning about a task bucket an earlier version made was logged.
static LEGACY_TOLD: AtomicBool = AtomicBool::new(false);

/// The header the key-value layer marks deletes and purges with.
const KV_OPERATION: &str = "KV-Operation";

fn failed(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> ClusterError {
    move |e| ClusterError::store(what, e)
}

impl Cluster {
    fn tasks_store(&self) -> &kv::Store {
        &self.coordination().tasks
    }

    fn view(&self) -> &Arc<TaskView> {
        &self.coordination().view
    }

    /// Starts keeping this node's view of the tasks; returns once it holds every task.
    pub async fn watch_tasks(&self) -> Result<(), ClusterError> {
        let store = self.tasks_store().clone();
        let mut watch = store
            .watch_with_history(">")
            .await
            .map_err(|e| failed("watching tasks")(&e))?;
        let view = self.view().clone();
        let pending = self.tasks_stream_state().await?.messages;
        let mut seen = 0;
        while seen < pending {
            match watch.next().await {
                Some(Ok(entry)) => {
                    view.apply(&entry, false);
                    seen += 1;
                    if entry.delta == 0 {
                        break;
                    }
                }
                _ => break,
            }
        }
        tokio::spawn(async move {
            while let Some(entry) = watch.next().await {
                match entry {
                    Ok(entry) => view.apply(&entry, true),
                    Err(e) => tracing::warn!("the task watch failed: {e}"),
                }
            }
        });
        Ok(())
    }

    /// Every change of a task's state, holder or attempts made anywhere in the cluster from now
    /// on, once each, in the order the bucket took them. One receiver: a second call takes the
    /// stream from the first.
    pub fn task_events(&self) -> mpsc::UnboundedReceiver<TaskRecord> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self
            .view()
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(tx);
        rx
    }

    /// Removes the finished tasks (done, failed, dead-lettered) last changed more than
    /// `[cluster] task_retention_secs` ago, except those with a child not finished yet; then,
    /// a lease after, every message left of each (its changes and its delete marker), so the
    /// bucket's stream does not grow with every task ever submitted. Any node may run it: a
    /// task changed meanwhile is left for the next round. Returns how many tasks this call
    /// removed.
    ///
    /// Nothing here purges or rolls up a subject: servers before 2.10.11 answer a purge by
    /// moving every wider consumer's cursor past what it has not delivered yet, so the watch
    /// of a node that was behind would never see other tasks' changes made just before (a
    /// delete marker and per-message deletes leave the cursors alone).
    pub async fn prune_tasks(&self) -> Result<usize, TaskError> {
        let retention = self.coordination().retention;
        let now = now_ms();
        let cutoff = now.saturating_sub(retention.as_millis() as u64);
        let settled = now.saturating_sub(self.lease().as_millis() as u64);
        let (doomed, markers) = {
            let mut known = self.view().lock();
            let finished = |id: &u64| known.tasks.get(id).is_none_or(|(t, _)| t.finished());
            let doomed: Vec<(u64, u64)> = known
                .tasks
                .values()
                .filter(|(t, _)| {
                    t.finished() && t.updated_at_ms <= cutoff && t.children.iter().all(finished)
                })
                .map(|(t, revision)| (t.id, *revision))
                .collect();
            let mut markers = Vec::new();
            known.markers.retain(|id, at| {
                let old = *at <= settled;
                if old {
                    markers.push((*id, *at));
                }
                !old
            });
            (doomed, markers)
        };
        let mut pruned = 0;
        for (id, revision) in doomed {
            let store = self.tasks_store();
            if store
                .delete_expect_revision(task_key(id), Some(revision))
                .await
                .is_ok()
            {
                pruned += 1;
                let mut known = self.view().lock();
                known.remove(id);
                known.announced.remove(&id);
                known.markers.entry(id).or_insert_with(now_ms);
                continue;
            }
            // Changed meanwhile (left for the next round), or pruned already and its marker
            // removed before this node's watch brought it: then it goes from the view too.
            let gone = match store.entry(task_key(id)).await {
                Ok(None) => true,
                Ok(Some(e)) => e.operation != kv::Operation::Put,
                Err(_) => false,
            };
            if gone {
                let mut known = self.view().lock();
                known.remove(id);
                known.announced.remove(&id);
            }
        }
        if !markers.is_empty() {
            let js = jetstream::new(self.inner.client.clone());
            let stream = js
                .get_stream(format!("KV_{TASKS}"))
                .await
                .map_err(|e| failed("pruning tasks")(&e))?;
            let legacy = stream.cached_info().config.deny_delete;
            if legacy && !LEGACY_TOLD.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "the task bucket was made by an earlier version and denies deleting single \
                     messages: pruned tasks are removed by purges, and on nats-server before \
                     2.10.11 a purge can make a node's watch that is behind skip other tasks' \
                     changes; recreate the bucket (KV_{TASKS}) once no task in it matters"
                );
            }
            for (id, at) in markers {
                let removed = if legacy {
                    stream
                        .purge()
                        .filter(task_subject(id))
                        .await
                        .map(drop)
                        .map_err(|e| failed("pruning tasks")(&e))
                } else {
                    remove_every_message(&stream, id).await
                };
                if let Err(e) = removed {
                    // Tried again at the next round.
                    tracing::warn!("cannot remove what is left of pruned task {id}: {e}");
                    self.view().lock().markers.entry(id).or_insert(at);
                }
            }
        }
        Ok(pruned)
    }

    /// The task bucket's stream as it is now (the store's own status is the one read when it
    /// was opened).
    async fn tasks_stream_state(&self) -> Result<jetstream::stream::State, ClusterError> {
        let js = jetstream::new(self.inner.client.clone());
        let mut stream = js
            .get_stream(format!("KV_{TASKS}"))
            .await
            .map_err(|e| failed("reading the tasks' state")(&e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| failed("reading the tasks' state")(&e))?;
        Ok(info.state.clone())
    }

    /// Reads a task and its revision from the bucket.
    async fn load(&self, id: u64) -> Result<(TaskRecord, u64), TaskError> {
        let entry = self
            .tasks_store()
            .entry(task_key(id))
            .await
            .map_err(|e| failed("reading a task")(&e))?;
        let entry = entry
            .filter(|e| e.operation == kv::Operation::Put)
            .ok_or(TaskError::Unknown(id))?;
        let record =
            serde_json::from_slice(&entry.value).map_err(|e| ClusterError::Codec(e.to_string()))?;
        Ok((record, entry.revision))
    }

    /// Writes `record` if the task is still at `revision`; false when another node changed it.
    async fn swap(&self, record: &TaskRecord, revision: u64) -> Result<bool, TaskError> {
        let value = encode(record)?;
        match self
            .tasks_store()
            .update(task_key(record.id), value.into(), revision)
            .await
        {
            Ok(revision) => {
                self.view().lock().upsert(record.clone(), revision);
                Ok(true)
            }
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(e) => Err(failed("updating a task")(&e).into()),
        }
    }

    /// Applies `change` to task `id` with compare-and-swap, reading it again when another node
    /// changed it first. `change` returns `Ok(false)` to leave the task as it is.
    async fn modify(
        &self,
        id: u64,
        mut change: impl FnMut(&mut TaskRecord) -> Result<bool, TaskError>,
    ) -> Result<TaskRecord, TaskError> {
        for _ in 0..CAS_TRIES {
            let (mut record, revision) = self.load(id).await?;
            if !change(&mut record)? {
                return Ok(record);
            }
            record.updated_at_ms = now_ms();
            if self.swap(&record, revision).await? {
                return Ok(record);
            }
        }
        Err(ClusterError::store("updating a task", "it kept changing under this node").into())
    }

    /// Submits a task; it waits until every task in `after` is done.
    pub async fn submit_task(&self, new: NewTask) -> Result<TaskRecord, TaskError> {
        if new.needs.iter().any(|n| n.trim().is_empty()) {
            return Err(TaskError::Invalid);
        }
        for parent in &new.after {
            let (record, _) = self.load(*parent).await.map_err(|e| match e {
                TaskError::Unknown(id) => TaskError::UnknownDependency { id },
                e => e,
            })?;
            if matches!(record.state.as_str(), "failed" | "dead_lettered") {
                return Err(TaskError::DependencyFailed {
                    id: *parent,
                    state: record.state,
                });
            }
        }
        let id = self.next_id(TASK_COUNTER, 1).await?;
        let at = now_ms();
        let mut needs: Vec<String> = new.needs.iter().map(|n| n.trim().to_string()).collect();
        needs.sort();
        needs.dedup();
        let record = TaskRecord {
            id,
            description: new.description,
            needs,
            priority: new.priority,
            after: new.after.clone(),
            timeout_ms: new.timeout_ms,
            max_retries: new.max_retries,
            state: "queued".into(),
            agent: None,
            attempts: 0,
            result: None,
            last_error: None,
            waiting_on: new.after.clone(),
            created_at_ms: at,
            updated_at_ms: at,
            node: None,
            claimed_at_ms: None,
            lease_until_ms: None,
            not_before_ms: None,
            children: Vec::new(),
        };
        self.tasks_store()
            .create(task_key(id), encode(&record)?.into())
            .await
            .map_err(|e| failed("submitting a task")(&e))?;
        // The parents learn of the child, then the child stops waiting for those already done
        // (a parent done in between releases the child itself: both remove it, once).
        for parent in &new.after {
            let p = self
                .modify(*parent, |p| {
                    let add = !p.children.contains(&id);
                    if add {
                        p.children.push(id);
                    }
                    Ok(add)
                })
                .await?;
            if p.state == "done" {
                self.release_child(id, *parent).await?;
            } else if p.finished() {
                self.fail_dependent(id, *parent).await?;
            }
        }
        Ok(self.load(id).await?.0)
    }

    /// Task `child` no longer waits for `parent`, which is done.
    async fn release_child(&self, child: u64, parent: u64) -> Result<(), TaskError> {
        self.modify(child, |c| {
            let before = c.waiting_on.len();
            c.waiting_on.retain(|p| *p != parent);
            Ok(c.waiting_on.len() != before)
        })
        .await?;
        Ok(())
    }

    /// Task `child` can never run: `parent` failed for good.
    async fn fail_dependent(&self, child: u64, parent: u64) -> Result<(), TaskError> {
        let record = self
            .modify(child, |c| {
                if c.finished() || c.state == "running" {
                    return Ok(false);
                }
                c.state = "failed".into();
                c.last_error = Some(format!("dependency task-{parent} failed"));
                Ok(true)
            })
            .await?;
        if record.state == "failed" {
            for grandchild in record.children.clone() {
                Box::pin(self.fail_dependent(grandchild, child)).await?;
            }
        }
        Ok(())
    }

    /// The most urgent ready task `worker` may take, now running for it; `None` when there is
    /// none (or the agent holds `max_tasks` already). Chosen from this node's view, which the
    /// watch keeps a few milliseconds behind the cluster: a task submitted on another node in
    /// that moment is not yet among the candidates. (Catching the view up first, a JetStream
    /// round trip per claim, cost 24% of the claims per second with 100 agents.)
    pub async fn claim_task(
        &self,
        worker: &Worker,
        lease: Duration,
    ) -> Result<Option<TaskRecord>, TaskError> {
        loop {
            let Some((mut record, revision)) = self.candidate(worker) else {
                return Ok(None);
            };
            let now = now_ms();
            record.state = "running".into();
            record.agent = Some(worker.agent);
            record.node = Some(self.node().to_string());
            record.attempts += 1;
            record.claimed_at_ms = Some(now);
            record.lease_until_ms = Some(now + lease.as_millis() as u64);
            record.not_before_ms = None;
            record.updated_at_ms = now;
            let won = self.swap(&record, revision).await;
            self.view().lock().claiming.remove(&record.id);
            if won? {
                return Ok(Some(record));
            }
            // Another node took it first: the watch brings its new state; look elsewhere.
        }
    }

    /// The most urgent ready task `worker` may take, reserved against this node's other
    /// agents until its claim is decided.
    fn candidate(&self, worker: &Worker) -> Option<(TaskRecord, u64)> {
        let now = now_ms();
        let mut known = self.view().lock();
        let held = known.running.get(&worker.agent).map_or(0, HashSet::len);
        if held >= worker.max_tasks.max(1) {
            return None;
        }
        let found = known.ready.iter().find_map(|(_, id)| {
            let (t, revision) = known.tasks.get(id)?;
            let fits = !known.claiming.contains(id)
                && t.ready(now)
                && t.needs.iter().all(|n| worker.capabilities.contains(n));
            fits.then(|| (t.clone(), *revision))
        })?;
        known.claiming.insert(found.0.id);
        Some(found)
    }

    /// Waits until the task view changes or `until` passes; false once it has passed.
    pub async fn task_change(&self, until: tokio::time::Instant) -> bool {
        let changed = self.view().changed.notified();
        tokio::time::timeout_at(until, changed).await.is_ok()
    }

    fn holder(record: &TaskRecord, agent: u64, action: &'static str) -> Result<(), TaskError> {
        if record.state == "running" && record.agent == Some(agent) {
            return Ok(());
        }
        let holder = match (record.state.as_str(), record.agent) {
            ("running", Some(a)) => format!("agent {a}"),
            (state, _) => format!("nobody (it is {state})"),
        };
        Err(TaskError::NotHolder {
            task: record.id,
            agent,
            action,
            holder,
        })
    }

    /// Reports success on a task the agent holds; the tasks waiting for it are released.
    pub async fn complete_task(
        &self,
        agent: u64,
        id: u64,
        result: Value,
    ) -> Result<TaskRecord, TaskError> {
        let record = self
            .modify(id, |t| {
                Self::holder(t, agent, "complete")?;
                t.state = "done".into();
                t.result = Some(result.clone());
                t.lease_until_ms = None;
                Ok(true)
            })
            .await?;
        for child in &record.children {
            self.release_child(*child, id).await?;
        }
        Ok(record)
    }

    /// Reports failure on a task the agent holds: queued again after the backoff, or dead
    /// once its attempts are spent.
    pub async fn fail_task(
        &self,
        agent: u64,
        id: u64,
        reason: &str,
        backoff: Backoff,
    ) -> Result<TaskRecord, TaskError> {
        let record = self
            .modify(id, |t| {
                Self::holder(t, agent, "fail")?;
                Self::requeue(t, reason, backoff);
                Ok(true)
            })
            .await?;
        self.after_requeue(&record).await?;
        Ok(record)
    }

    fn requeue(t: &mut TaskRecord, reason: &str, backoff: Backoff) {
        t.last_error = Some(reason.to_string());
        t.lease_until_ms = None;
        t.agent = None;
        if t.attempts > t.max_retries {
            t.state = "dead_lettered".into();
            return;
        }
        t.state = "queued".into();
        let shift = t.attempts.saturating_sub(1).min(20);
        let wait = backoff.base.saturating_mul(1 << shift).min(backoff.max);
        t.not_before_ms = Some(now_ms() + wait.as_millis() as u64);
    }

    async fn after_requeue(&self, record: &TaskRecord) -> Result<(), TaskError> {
        if record.state != "dead_lettered" {
            return Ok(());
        }
        let letter = serde_json::json!({
            "seq": record.id,
            "at_ms": now_ms(),
            "recipient": record.node.clone(),
            "reason": "retries_exhausted",
            "attempts": record.attempts,
            "last_error": record.last_error.clone().unwrap_or_default(),
            "kind": "task",
            "item": record,
        });
        self.dead_letter(encode(&letter)?);
        for child in &record.children {
            self.fail_dependent(*child, record.id).await?;
        }
        Ok(())
    }

    /// Renews the leases of the running tasks this node's live agents hold (`alive`), and
    /// puts back in the queue every running task whose lease lapsed, whichever node held it.
    /// Run by every heartbeat.
    pub async fn tend_tasks(
        &self,
        alive: &(dyn Fn(u64) -> bool + Sync),
        lease: Duration,
        backoff: Backoff,
    ) -> Result<(), TaskError> {
        let now = now_ms();
        let running: Vec<TaskRecord> = {
            let known = self.view().lock();
            known
                .running
                .values()
                .flatten()
                .filter_map(|id| known.tasks.get(id).map(|(t, _)| t.clone()))
                .collect()
        };
        for t in running {
            let mine = t.node.as_deref() == Some(self.node());
            let in_time = t
                .timeout_ms
                .is_none_or(|ms| now < t.claimed_at_ms.unwrap_or(now) + ms);
            if mine && in_time && t.agent.is_some_and(alive) {
                let until = now + lease.as_millis() as u64;
                self.modify(t.id, |r| {
                    let same = r.state == "running" && r.agent == t.agent;
                    if same {
                        r.lease_until_ms = Some(until);
                    }
                    Ok(same)
                })
                .await?;
            } else if t.lease_until_ms.is_some_and(|u| u <= now) || (mine && !in_time) {
                let why = format!(
                    "the lease of agent {} on node {} lapsed",
                    t.agent.unwrap_or_default(),
                    t.node.clone().unwrap_or_default()
                );
                let record = self
                    .modify(t.id, |r| {
                        let same = r.state == "running" && r.agent == t.agent;
                        if same {
                            Self::requeue(r, &why, backoff);
                        }
                        Ok(same)
                    })
                    .await?;
                self.after_requeue(&record).await?;
            }
        }
        Ok(())
    }

    /// One task.
    pub async fn task(&self, id: u64) -> Result<TaskRecord, TaskError> {
        Ok(self.load(id).await?.0)
    }

    /// Waits (at most `wait`) until this node's view holds every change made to the tasks
    /// before the call, on any node.
    async fn catch_up(&self, wait: Duration) -> Result<(), TaskError> {
        let last = self.tasks_stream_state().await?.last_sequence;
        let until = tokio::time::Instant::now() + wait;
        loop {
            let changed = self.view().changed.notified();
            if self.view().lock().latest >= last {
                return Ok(());
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return Ok(());
            }
        }
    }

    /// Every task of the cluster, by id, or those in `state`: this node's view once it holds
    /// every change made before the call.
    pub async fn tasks(&self, state: Option<&str>) -> Result<Vec<TaskRecord>, TaskError> {
        self.catch_up(Duration::from_secs(2)).await?;
        Ok(self.view_tasks(state))
    }

    fn view_tasks(&self, state: Option<&str>) -> Vec<TaskRecord> {
        let mut out: Vec<TaskRecord> = self
            .view()
            .lock()
            .tasks
            .values()
            .filter(|(t, _)| state.is_none_or(|s| t.state == s))
            .map(|(t, _)| t.clone())
            .collect();
        out.sort_by_key(|t| t.id);
        out
    }
}
