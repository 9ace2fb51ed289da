//! Pluggable task distribution: which ready task goes first, and which capable agent gets it.
//!
//! Capability matching is not a strategy's choice: the distributor only ever offers a task to
//! agents that have every capability it needs and room for one more task. A strategy orders the
//! ready tasks and picks among those candidates.

use std::cmp::Ordering;

use crate::ids::AgentId;
use crate::task::Task;

/// An agent that could take a task now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub agent: AgentId,
    /// Tasks assigned to or running on it.
    pub load: usize,
    pub max_tasks: usize,
    /// How many capabilities it has; fewer means more specialised.
    pub capabilities: usize,
    /// Sequence number of its latest assignment (0: never), for "waited longest" decisions.
    pub last_assigned: u64,
}

/// A distribution policy.
pub trait Strategy: Send + 'static {
    /// A stable name (`least_loaded`, `round_robin`, `priority_first` for the built-in ones).
    fn name(&self) -> &'static str;

    /// Where a ready task goes in the queue: lower ranks are offered first, equal ranks in
    /// submission order. Called once when the task becomes ready.
    fn rank(&self, task: &Task) -> i64;

    /// Picks the agent for `task`. `candidates` is never empty and is sorted by agent id.
    /// Returning `None` leaves the task queued until the next scheduling pass.
    fn choose(&mut self, task: &Task, candidates: &[Candidate]) -> Option<AgentId>;
}

/// Builds a built-in strategy by its name.
pub fn by_name(name: &str) -> Option<Box<dyn Strategy>> {
    match name {
        "least_loaded" => Some(Box::new(LeastLoaded)),
        "round_robin" => Some(Box::new(RoundRobin::default())),
        "priority_first" => Some(Box::new(PriorityFirst)),
        _ => None,
    }
}

/// Compares `a.load / a.max_tasks` with `b.load / b.max_tasks` without division.
fn by_load_ratio(a: &Candidate, b: &Candidate) -> Ordering {
    (a.load * b.max_tasks).cmp(&(b.load * a.max_tasks))
}

/// The default: highest priority first; the task goes to the capable agent with the lowest load
/// relative to its capacity, then to the most specialised one (keeping generalists free for tasks
/// only they can do), then to the one that waited longest.
#[derive(Clone, Copy, Debug, Default)]
pub struct LeastLoaded;

impl Strategy for LeastLoaded {
    fn name(&self) -> &'static str {
        "least_loaded"
    }

    fn rank(&self, task: &Task) -> i64 {
        -i64::from(task.priority)
    }

    fn choose(&mut self, _task: &Task, candidates: &[Candidate]) -> Option<AgentId> {
        candidates
            .iter()
            .min_by(|a, b| {
                by_load_ratio(a, b)
                    .then(a.capabilities.cmp(&b.capabilities))
                    .then(a.last_assigned.cmp(&b.last_assigned))
            })
            .map(|c| c.agent)
    }
}

/// Tasks in submission order, ignoring priority; agents take turns in id order, whatever their load.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobin {
    last: Option<AgentId>,
}

impl Strategy for RoundRobin {
    fn name(&self) -> &'static str {
        "round_robin"
    }

    fn rank(&self, _task: &Task) -> i64 {
        0
    }

    fn choose(&mut self, _task: &Task, candidates: &[Candidate]) -> Option<AgentId> {
        let next = match self.last {
            Some(last) => candidates
                .iter()
                .find(|c| c.agent > last)
                .or(candidates.first()),
            None => candidates.first(),
        }?;
        self.last = Some(next.agent);
        Some(next.agent)
    }
}

/// Strictly the highest-priority task first, to the capable agent that has waited longest since
/// its last assignment; load and specialisation are not weighed.
#[derive(Clone, Copy, Debug, Default)]
pub struct PriorityFirst;

impl Strategy for PriorityFirst {
    fn name(&self) -> &'static str {
        "priority_first"
    }

    fn rank(&self, task: &Task) -> i64 {
        -i64::from(task.priority)
    }

    fn choose(&mut self, _task: &Task, candidates: &[Candidate]) -> Option<AgentId> {
        candidates
            .iter()
            .min_by_key(|c| (c.last_assigned, c.agent))
            .map(|c| c.agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskState;

    fn task() -> Task {
        Task {
            id: crate::ids::TaskId(1),
            key: None,
            description: String::new(),
            needs: Vec::new(),
            priority: 0,
            after: Vec::new(),
            timeout_ms: None,
            max_retries: 0,
            state: TaskState::Queued,
            agent: None,
            attempts: 0,
            result: None,
            last_error: None,
            waiting_on: Vec::new(),
            created_at_ms: 0,
            updated_at_ms: 0,
        }
    }

    fn cand(id: u64, load: usize, max: usize, caps: usize, last: u64) -> Candidate {
        Candidate {
            agent: AgentId(id),
            load,
            max_tasks: max,
            capabilities: caps,
            last_assigned: last,
        }
    }

    #[test]
    fn least_loaded_prefers_low_ratio_then_specialist() {
        let mut s = LeastLoaded;
        let c = [
            cand(1, 1, 1, 1, 0),
            cand(2, 1, 4, 3, 0),
            cand(3, 1, 4, 1, 5),
        ];
        assert_eq!(s.choose(&task(), &c), Some(AgentId(3)));
    }

    #[test]
    fn round_robin_cycles() {
        let mut s = RoundRobin::default();
        let c = [
            cand(1, 0, 1, 1, 0),
            cand(2, 5, 9, 1, 0),
            cand(3, 0, 1, 1, 0),
        ];
        let picks: Vec<_> = (0..4).map(|_| s.choose(&task(), &c).unwrap().0).collect();
        assert_eq!(picks, vec![1, 2, 3, 1]);
    }

    #[test]
    fn priority_first_picks_longest_waiting() {
        let mut s = PriorityFirst;
        let c = [cand(1, 0, 1, 1, 9), cand(2, 3, 4, 1, 2)];
        assert_eq!(s.choose(&task(), &c), Some(AgentId(2)));
        assert!(by_name("round_robin").is_some() && by_name("nope").is_none());
    }
}
