//! The task distributor: task records, dependency tracking, assignment, retries and timeouts.
//!
//! Owned by the coordinator behind one lock and never awaited inside. Every mutation reports what
//! happened through [`Effects`], which the coordinator turns into events and dead letters.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::agent::AgentInfo;
use crate::dag::{self, Edge};
use crate::error::{CoordError, Result};
use crate::event::Event;
use crate::ids::{AgentId, TaskId};
use crate::message::now_ms;
use crate::ready::{CapSet, ReadyIndex, ReadyKey};
use crate::strategy::{Candidate, Strategy};
use crate::task::{Task, TaskSpec, TaskState};

/// Defaults and retry timing for tasks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TaskPolicy {
    pub(crate) max_retries: u32,
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry_base: Duration,
    pub(crate) retry_max: Duration,
}

/// What a mutation did, for the coordinator to publish after the fact.
#[derive(Default)]
pub(crate) struct Effects {
    pub(crate) events: Vec<Event>,
    /// Tasks that ran out of retries, to be put in the dead-letter queue.
    pub(crate) dead: Vec<Task>,
}

struct Entry {
    task: Task,
    caps: CapSet,
    seq: u64,
    /// Set while the task sits in the ready index.
    ready: Option<ReadyKey>,
    dependents: Vec<TaskId>,
    /// Bumped on every assignment and failure, so stale timer entries are recognised.
    epoch: u64,
    timeout: Option<Duration>,
    backoff_until: Option<Instant>,
}

struct Worker {
    caps: HashSet<String>,
    max_tasks: usize,
    load: usize,
    last_assigned: u64,
    /// Assigned but not yet claimed, most urgent first.
    assigned: BTreeSet<ReadyKey>,
    /// Everything it holds, assigned or running.
    held: BTreeSet<TaskId>,
    notify: Arc<Notify>,
}

impl Worker {
    fn has_room(&self) -> bool {
        self.load < self.max_tasks
    }
}

pub(crate) struct Distributor {
    tasks: HashMap<TaskId, Entry>,
    ready: ReadyIndex,
    workers: BTreeMap<AgentId, Worker>,
    /// Workers with room for another task; scheduling stops at once when it is zero.
    with_room: usize,
    timeouts: BinaryHeap<Reverse<(Instant, TaskId, u64)>>,
    backoffs: BinaryHeap<Reverse<(Instant, TaskId, u64)>>,
    strategy: Box<dyn Strategy>,
    policy: TaskPolicy,
    next_id: u64,
    next_seq: u64,
    assignments: u64,
    /// The earliest timer armed since the coordinator last asked, so it can wake its clock.
    armed: Option<Instant>,
}

impl Distributor {
    pub(crate) fn new(strategy: Box<dyn Strategy>, policy: TaskPolicy) -> Self {
        Self {
            tasks: HashMap::new(),
            ready: ReadyIndex::default(),
            workers: BTreeMap::new(),
            with_room: 0,
            timeouts: BinaryHeap::new(),
            backoffs: BinaryHeap::new(),
            strategy,
            policy,
            next_id: 1,
            next_seq: 1,
            assignments: 0,
            armed: None,
        }
    }

    pub(crate) fn strategy_name(&self) -> &'static str {
        self.strategy.name()
    }

    pub(crate) fn add_worker(&mut self, info: &AgentInfo, now: Instant, fx: &mut Effects) {
        let worker = Worker {
            caps: info.capabilities.iter().cloned().collect(),
            max_tasks: info.max_tasks.max(1),
            load: 0,
            last_assigned: 0,
            assigned: BTreeSet::new(),
            held: BTreeSet::new(),
            notify: Arc::new(Notify::new()),
        };
        self.workers.insert(info.id, worker);
        self.with_room += 1;
        self.dispatch(now, fx);
    }

    /// Removes a departed agent and puts every task it held back in the queue. Losing an agent
    /// is not the task's fault, so this does not count as a failed attempt.
    pub(crate) fn remove_worker(
        &mut self,
        agent: AgentId,
        now: Instant,
        fx: &mut Effects,
    ) -> Vec<TaskId> {
        let Some(worker) = self.workers.remove(&agent) else {
            return Vec::new();
        };
        if worker.has_room() {
            self.with_room -= 1;
        }
        // Wake a `claim_wait` of the departed agent so it sees the agent is gone.
        worker.notify.notify_waiters();
        let held: Vec<TaskId> = worker.held.iter().copied().collect();
        let reason = format!("{agent} left");
        for &id in &held {
            if let Some(entry) = self.tasks.get_mut(&id) {
                entry.epoch += 1;
                entry.task.agent = None;
                set_state(entry, TaskState::Queued, Some(reason.clone()), fx);
            }
            self.make_ready(id);
        }
        self.dispatch(now, fx);
        held
    }

    pub(crate) fn load(&self, agent: AgentId) -> usize {
        self.workers.get(&agent).map_or(0, |w| w.load)
    }

    pub(crate) fn notifier(&self, agent: AgentId) -> Option<Arc<Notify>> {
        self.workers.get(&agent).map(|w| w.notify.clone())
    }

    /// Creates the tasks of a checked batch. Nothing is created if any check fails.
    pub(crate) fn submit(
        &mut self,
        specs: Vec<TaskSpec>,
        now: Instant,
        fx: &mut Effects,
    ) -> Result<Vec<TaskId>> {
        if specs
            .iter()
            .flat_map(|s| &s.needs)
            .any(|c| c.trim().is_empty())
        {
            return Err(CoordError::InvalidTask(
                "a needed capability is empty".into(),
            ));
        }
        let plan = dag::plan(&specs)?;
        for edges in &plan.edges {
            for edge in edges {
                if let Edge::Existing(dep) = *edge {
                    let entry = self
                        .tasks
                        .get(&dep)
                        .ok_or(CoordError::UnknownDependency { dependency: dep })?;
                    if matches!(
                        entry.task.state,
                        TaskState::Failed | TaskState::DeadLettered
                    ) {
                        return Err(CoordError::DependencyFailed {
                            dependency: dep,
                            state: entry.task.state,
                        });
                    }
                }
            }
        }
        let first = self.next_id;
        self.next_id += specs.len() as u64;
        let ids: Vec<TaskId> = (0..specs.len() as u64).map(|i| TaskId(first + i)).collect();
        let mut specs: Vec<Option<TaskSpec>> = specs.into_iter().map(Some).collect();
        for &i in &plan.order {
            let Some(spec) = specs[i].take() else {
                continue;
            };
            let after: Vec<TaskId> = plan.edges[i]
                .iter()
                .map(|e| match *e {
                    Edge::Existing(id) => id,
                    Edge::Local(j) => ids[j],
                })
                .collect();
            self.create(ids[i], spec, after, fx);
        }
        self.dispatch(now, fx);
        Ok(ids)
    }

    fn create(&mut self, id: TaskId, spec: TaskSpec, after: Vec<TaskId>, fx: &mut Effects) {
        let mut needs: Vec<String> = spec.needs.iter().map(|c| c.trim().to_string()).collect();
        needs.sort();
        needs.dedup();
        let waiting_on: Vec<TaskId> = after
            .iter()
            .copied()
            .filter(|d| {
                self.tasks
                    .get(d)
                    .is_some_and(|e| e.task.state != TaskState::Done)
            })
            .collect();
        for dep in &waiting_on {
            if let Some(e) = self.tasks.get_mut(dep) {
                e.dependents.push(id);
            }
        }
        let at = now_ms();
        let timeout = spec
            .timeout_ms
            .map(Duration::from_millis)
            .or(self.policy.timeout);
        let task = Task {
            id,
            key: spec.key,
            description: spec.description,
            needs: needs.clone(),
            priority: spec.priority,
            after,
            timeout_ms: timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            max_retries: spec.max_retries.unwrap_or(self.policy.max_retries),
            state: TaskState::Queued,
            agent: None,
            attempts: 0,
            result: None,
            last_error: None,
            waiting_on,
            created_at_ms: at,
            updated_at_ms: at,
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let caps = self.ready.intern(&needs);
        let blocked = !task.waiting_on.is_empty();
        let entry = Entry {
            task,
            caps,
            seq,
            ready: None,
            dependents: Vec::new(),
            epoch: 0,
            timeout,
            backoff_until: None,
        };
        fx.events.push(state_event(&entry.task, None));
        self.tasks.insert(id, entry);
        if !blocked {
            self.make_ready(id);
        }
    }

    /// Puts a queued task whose dependencies are done and whose backoff is over in the ready index.
    fn make_ready(&mut self, id: TaskId) {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return;
        };
        let runnable = entry.task.state == TaskState::Queued
            && entry.task.waiting_on.is_empty()
            && entry.backoff_until.is_none()
            && entry.ready.is_none();
        if !runnable {
            return;
        }
        let key = ReadyKey {
            rank: self.strategy.rank(&entry.task),
            seq: entry.seq,
            id,
        };
        entry.ready = Some(key);
        self.ready.insert(&entry.caps, key);
    }

    /// Active agents with room and every capability in `caps`, by id.
    fn candidates(&self, caps: &[String]) -> Vec<Candidate> {
        self.workers
            .iter()
            .filter(|(_, w)| w.has_room() && caps.iter().all(|c| w.caps.contains(c)))
            .map(|(id, w)| Candidate {
                agent: *id,
                load: w.load,
                max_tasks: w.max_tasks,
                capabilities: w.caps.len(),
                last_assigned: w.last_assigned,
            })
            .collect()
    }

    /// Hands ready tasks to agents until no ready task has a capable agent with room.
    fn dispatch(&mut self, now: Instant, fx: &mut Effects) {
        while self.with_room > 0 && self.ready.len() > 0 {
            let mut chosen = None;
            for (key, caps) in self.ready.heads() {
                let candidates = self.candidates(&caps);
                if candidates.is_empty() {
                    continue;
                }
                let Some(entry) = self.tasks.get(&key.id) else {
                    continue;
                };
                let pick = self.strategy.choose(&entry.task, &candidates);
                if let Some(agent) = pick.filter(|a| candidates.iter().any(|c| c.agent == *a)) {
                    chosen = Some((key.id, agent));
                    break;
                }
            }
            let Some((id, agent)) = chosen else { break };
            self.assign(id, agent, now, fx);
        }
    }

    fn assign(&mut self, id: TaskId, agent: AgentId, now: Instant, fx: &mut Effects) {
        let (Some(entry), Some(worker)) = (self.tasks.get_mut(&id), self.workers.get_mut(&agent))
        else {
            return;
        };
        let Some(key) = entry.ready.take() else {
            return;
        };
        self.ready.remove(&entry.caps, &key);
        entry.epoch += 1;
        entry.task.agent = Some(agent);
        set_state(entry, TaskState::Assigned, None, fx);
        if let Some(timeout) = entry.timeout {
            self.timeouts
                .push(Reverse((now + timeout, id, entry.epoch)));
            self.armed = Some(self.armed.map_or(now + timeout, |a| a.min(now + timeout)));
        }
        self.assignments += 1;
        worker.last_assigned = self.assignments;
        worker.load += 1;
        worker.assigned.insert(key);
        worker.held.insert(id);
        if !worker.has_room() {
            self.with_room -= 1;
        }
        worker.notify.notify_one();
    }

    /// The agent's most urgent assigned task, now running; `None` if it has nothing assigned.
    pub(crate) fn claim(&mut self, agent: AgentId, now: Instant, fx: &mut Effects) -> Option<Task> {
        self.dispatch(now, fx);
        let worker = self.workers.get_mut(&agent)?;
        let key = worker.assigned.pop_first()?;
        let entry = self.tasks.get_mut(&key.id)?;
        set_state(entry, TaskState::Running, None, fx);
        Some(entry.task.clone())
    }

    /// Checks that `agent` holds `id` in a state that accepts a report.
    fn check_holder(&self, agent: AgentId, id: TaskId, action: &'static str) -> Result<()> {
        let entry = self.tasks.get(&id).ok_or(CoordError::UnknownTask(id))?;
        let state = entry.task.state;
        let held = matches!(state, TaskState::Assigned | TaskState::Running);
        if held && entry.task.agent == Some(agent) {
            return Ok(());
        }
        if !held && entry.task.agent == Some(agent) {
            return Err(CoordError::InvalidTaskState {
                task: id,
                state,
                action,
            });
        }
        let owner = if held { entry.task.agent } else { None };
        Err(CoordError::NotTaskHolder {
            agent,
            task: id,
            action,
            owner,
        })
    }

    /// Frees the agent's slot for `id` (assigned or running on it).
    fn release(&mut self, id: TaskId) {
        let Some(entry) = self.tasks.get(&id) else {
            return;
        };
        let Some(agent) = entry.task.agent else {
            return;
        };
        let Some(worker) = self.workers.get_mut(&agent) else {
            return;
        };
        worker.assigned.retain(|k| k.id != id);
        worker.held.remove(&id);
        if !worker.has_room() {
            self.with_room += 1;
        }
        worker.load = worker.load.saturating_sub(1);
    }

    pub(crate) fn complete(
        &mut self,
        agent: AgentId,
        id: TaskId,
        result: Value,
        now: Instant,
        fx: &mut Effects,
    ) -> Result<Task> {
        self.check_holder(agent, id, "complete")?;
        self.release(id);
        let entry = self.tasks.get_mut(&id).ok_or(CoordError::UnknownTask(id))?;
        entry.epoch += 1;
        entry.task.result = Some(result);
        set_state(entry, TaskState::Done, None, fx);
        let task = entry.task.clone();
        for dependent in entry.dependents.clone() {
            if let Some(d) = self.tasks.get_mut(&dependent) {
                d.task.waiting_on.retain(|x| *x != id);
            }
            self.make_ready(dependent);
        }
        self.dispatch(now, fx);
        Ok(task)
    }

    pub(crate) fn fail(
        &mut self,
        agent: AgentId,
        id: TaskId,
        reason: String,
        now: Instant,
        fx: &mut Effects,
    ) -> Result<Task> {
        self.check_holder(agent, id, "fail")?;
        self.attempt_failed(id, reason, now, fx);
        self.dispatch(now, fx);
        self.tasks
            .get(&id)
            .map(|e| e.task.clone())
            .ok_or(CoordError::UnknownTask(id))
    }

    /// Counts a failed attempt: back to the queue after a backoff while retries remain, otherwise
    /// dead-lettered, and every task waiting on it fails.
    fn attempt_failed(&mut self, id: TaskId, reason: String, now: Instant, fx: &mut Effects) {
        self.release(id);
        let policy = self.policy;
        let Some(entry) = self.tasks.get_mut(&id) else {
            return;
        };
        entry.epoch += 1;
        entry.task.attempts += 1;
        entry.task.last_error = Some(reason.clone());
        if entry.task.attempts > entry.task.max_retries {
            set_state(entry, TaskState::DeadLettered, Some(reason), fx);
            fx.dead.push(entry.task.clone());
            let dependents = entry.dependents.clone();
            self.cascade_failure(id, dependents, fx);
            return;
        }
        let delay = backoff(policy, entry.task.attempts);
        entry.backoff_until = Some(now + delay);
        entry.task.agent = None;
        let why = format!(
            "{reason}; retry {} of {} in {delay:?}",
            entry.task.attempts, entry.task.max_retries
        );
        set_state(entry, TaskState::Queued, Some(why), fx);
        self.backoffs.push(Reverse((now + delay, id, entry.epoch)));
        self.armed = Some(self.armed.map_or(now + delay, |a| a.min(now + delay)));
    }

    /// Fails, transitively, every task that waits on a task that can no longer complete.
    fn cascade_failure(&mut self, root: TaskId, dependents: Vec<TaskId>, fx: &mut Effects) {
        let mut stack: Vec<(TaskId, TaskId)> = dependents.into_iter().map(|d| (d, root)).collect();
        while let Some((id, cause)) = stack.pop() {
            let Some(entry) = self.tasks.get_mut(&id) else {
                continue;
            };
            if entry.task.state.is_final() {
                continue;
            }
            if let Some(key) = entry.ready.take() {
                self.ready.remove(&entry.caps, &key);
            }
            entry.epoch += 1;
            let reason = format!("dependency {cause} can never complete");
            entry.task.last_error = Some(reason.clone());
            set_state(entry, TaskState::Failed, Some(reason), fx);
            stack.extend(entry.dependents.iter().map(|d| (*d, id)));
        }
    }

    /// Fires due timeouts and ends due backoffs, then schedules. Returns the next timer deadline.
    pub(crate) fn tick(&mut self, now: Instant, fx: &mut Effects) -> Option<Instant> {
        while let Some(Reverse((at, id, epoch))) = self.timeouts.peek().copied() {
            if at > now {
                break;
            }
            self.timeouts.pop();
            let live = self.tasks.get(&id).is_some_and(|e| {
                e.epoch == epoch && matches!(e.task.state, TaskState::Assigned | TaskState::Running)
            });
            if live {
                let after = self
                    .tasks
                    .get(&id)
                    .and_then(|e| e.timeout)
                    .unwrap_or_default();
                self.attempt_failed(id, format!("timed out after {after:?}"), now, fx);
            }
        }
        while let Some(Reverse((at, id, epoch))) = self.backoffs.peek().copied() {
            if at > now {
                break;
            }
            self.backoffs.pop();
            if let Some(entry) = self.tasks.get_mut(&id).filter(|e| e.epoch == epoch) {
                entry.backoff_until = None;
                self.make_ready(id);
            }
        }
        self.dispatch(now, fx);
        let next_timeout = self.timeouts.peek().map(|Reverse((at, _, _))| *at);
        let next_backoff = self.backoffs.peek().map(|Reverse((at, _, _))| *at);
        next_timeout.into_iter().chain(next_backoff).min()
    }

    /// Drops final tasks. Safe at any time: a final task is in no index, no agent holds it, and
    /// no waiting task counts on it (a done task was already removed from `waiting_on`; the
    /// dependents of a failed one failed with it). Stale timer entries for it are skipped.
    pub(crate) fn prune_finished(&mut self) -> usize {
        let before = self.tasks.len();
        self.tasks.retain(|_, e| !e.task.state.is_final());
        before - self.tasks.len()
    }

    /// The earliest timer armed since the last call, if any.
    pub(crate) fn take_armed(&mut self) -> Option<Instant> {
        self.armed.take()
    }

    pub(crate) fn get(&self, id: TaskId) -> Result<Task> {
        self.tasks
            .get(&id)
            .map(|e| e.task.clone())
            .ok_or(CoordError::UnknownTask(id))
    }

    /// Tasks by id, optionally only those in `state`.
    pub(crate) fn list(&self, state: Option<TaskState>) -> Vec<Task> {
        let mut out: Vec<Task> = self
            .tasks
            .values()
            .filter(|e| state.is_none_or(|s| e.task.state == s))
            .map(|e| e.task.clone())
            .collect();
        out.sort_by_key(|t| t.id);
        out
    }
}

/// `retry_base * 2^(attempt-1)`, capped at `retry_max`.
fn backoff(policy: TaskPolicy, attempt: u32) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    policy
        .retry_base
        .saturating_mul(factor)
        .min(policy.retry_max)
}

fn set_state(entry: &mut Entry, state: TaskState, reason: Option<String>, fx: &mut Effects) {
    entry.task.state = state;
    entry.task.updated_at_ms = now_ms();
    fx.events.push(state_event(&entry.task, reason));
}

fn state_event(task: &Task, reason: Option<String>) -> Event {
    Event::TaskStateChanged {
        task: task.id,
        state: task.state,
        agent: task.agent,
        attempts: task.attempts,
        reason,
        result: if task.state == TaskState::Done {
            task.result.clone()
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = TaskPolicy {
            max_retries: 5,
            timeout: None,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(5),
        };
        let d: Vec<u64> = (1..=5).map(|a| backoff(p, a).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 5, 5]);
        assert_eq!(backoff(p, 100), Duration::from_secs(5));
    }
}
