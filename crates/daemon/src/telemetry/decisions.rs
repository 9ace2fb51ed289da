//! The decision tracker (`decision.*`): agents record what they chose, why and how sure they
//! were; the execs that follow (in its session, by the agent running its task, or the agent's
//! own) link to the decision and set its outcome; the figures are success rates by agent and
//! by kind, and calibration (reliability bins, Brier score).
//!
//! The decisions live in the store's `metadata/decisions.db` (sealed text in an encrypted
//! store), driven from one thread behind a bounded queue like the store itself. An exec costs
//! nothing here unless its session, its agent or a task its agent runs has a decision still
//! following its execs:
//! those targets are kept in memory, and only their execs queue a link, which the exec's answer
//! waits for (so a `decisions show` after the exec sees it).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use ai_session_protocol::decisions::{
    AgentDecisions, DecisionId, DecisionInfo, DecisionList, DecisionListParams, DecisionParams,
    DecisionStats, DecisionStatsParams, KindDecisions, Outcome, OutcomeParams, ReliabilityBin,
    Tally,
};
use ai_session_protocol::hint::Advice;
use ai_session_protocol::methods::{ExecResult, ExecStatus};
use ai_session_protocol::{ErrorKind, RpcError};
use ai_session_store::{
    Decision, DecisionFilter, DecisionOutcome, DecisionText, Decisions as Db, LinkedExec,
    NewDecision, OpenTargets, Store,
};
use serde_json::Value;

use crate::access::Principal;
use crate::server::Daemon;
use crate::service::Reaction;
use crate::worker::Worker;

/// Jobs queued for the decisions thread before callers wait.
const QUEUE: usize = 256;
/// Bounds on what an agent writes.
const MAX_TEXT: usize = 4096;
const MAX_RATIONALE: usize = 64 * 1024;
const MAX_ALTERNATIVES: usize = 32;
const MAX_KIND: usize = 64;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sessions (by id), agents and tasks whose execs link to a decision.
#[derive(Default)]
struct Targets {
    sessions: HashSet<String>,
    agents: HashSet<String>,
    tasks: HashSet<String>,
}

impl Targets {
    fn add(&mut self, open: OpenTargets) {
        self.sessions.extend(open.sessions);
        self.agents.extend(open.agents);
        self.tasks.extend(open.tasks);
    }
}

/// The tracker: its thread (none when the store is off), the targets of open decisions, and
/// the coordinator that says which tasks an agent runs.
pub(crate) struct Decisions {
    worker: Option<Worker<Db>>,
    targets: Arc<Mutex<Targets>>,
    coord: Option<ai_session_coord::Coordinator>,
    off: Option<String>,
}

fn store_err(e: ai_session_store::Error) -> RpcError {
    match e {
        ai_session_store::Error::NotFound { what, id } => {
            RpcError::new(ErrorKind::NotFound, format!("no {what} {id}")).with_advice(
                Advice::new("{0} lists the decisions and their ids")
                    .call("decision.list", Value::Null),
            )
        }
        e => RpcError::new(ErrorKind::Internal, format!("decisions: {e}")).with_advice(
            Advice::new("{0} shows the store's state").call("daemon.status", Value::Null),
        ),
    }
}

impl Decisions {
    /// Opens the decisions database of `store`; without a store the tracker answers every call
    /// with why.
    pub(crate) fn open(store: Option<&Arc<Store>>, coord: &ai_session_coord::Coordinator) -> Self {
        let opened = store
            .ok_or_else(|| NO_STORE.to_owned())
            .and_then(|s| s.decisions().map_err(|e| e.to_string()));
        let targets = Arc::new(Mutex::new(Targets::default()));
        match opened {
            Ok(db) => {
                if let Ok(open) = db.open_targets() {
                    lock(&targets).add(open);
                }
                match Worker::start("decisions", QUEUE, db) {
                    Ok(worker) => Self {
                        worker: Some(worker),
                        targets,
                        coord: Some(coord.clone()),
                        off: None,
                    },
                    Err(e) => Self::off(format!("cannot start the decisions thread: {e}")),
                }
            }
            Err(reason) => Self::off(reason),
        }
    }

    /// A tracker that answers every call with `reason`.
    pub(crate) fn off(reason: String) -> Self {
        if store_opened(&reason) {
            tracing::warn!("decision tracker off: {reason}");
        }
        Self {
            worker: None,
            targets: Arc::default(),
            coord: None,
            off: Some(reason),
        }
    }

    fn worker(&self) -> Result<&Worker<Db>, RpcError> {
        self.worker.as_ref().ok_or_else(|| {
            RpcError::new(
                ErrorKind::Unsupported,
                format!(
                    "decisions are kept in the session store, which is unavailable: {}",
                    self.off.as_deref().unwrap_or("unknown reason")
                ),
            )
            .with_advice(
                Advice::new("{0} says why the store is off").call("daemon.status", Value::Null),
            )
        })
    }

    /// An exec finished in session `session` (id `session_id`), run by `agent` (name and id)
    /// if one: linked to the open decision of its session, of a task the agent runs, or of the
    /// agent itself, if there is one (the answer waits for the link).
    pub(crate) fn exec_finished(
        &self,
        session: &str,
        session_id: &str,
        agent: Option<(&str, u64)>,
        result: &ExecResult,
    ) -> Reaction {
        if result.status != ExecStatus::Exited {
            return Reaction::default();
        }
        let (targeted, tasks) = {
            let t = lock(&self.targets);
            let targeted = t.sessions.contains(session_id)
                || t.sessions.contains(session)
                || agent.is_some_and(|(name, _)| t.agents.contains(name));
            let tasks = match (agent, &self.coord) {
                (Some((_, id)), Some(coord)) if !t.tasks.is_empty() => running_tasks(coord, id, &t),
                _ => Vec::new(),
            };
            (targeted, tasks)
        };
        let Some(worker) = self
            .worker
            .as_ref()
            .filter(|_| targeted || !tasks.is_empty())
        else {
            return Reaction::default();
        };
        let failed = result.exit_code != Some(0);
        let (session, session_id, agent, worker) = (
            session.to_owned(),
            session_id.to_owned(),
            agent.map(|(name, _)| name.to_owned()),
            worker.handle(),
        );
        Reaction::ack(async move {
            let linked = worker
                .call(move |db| {
                    let exec = LinkedExec {
                        session_id: &session_id,
                        session: &session,
                        agent: agent.as_deref(),
                        tasks: &tasks,
                        failed,
                    };
                    db.link_exec(&exec, now_ms()).map_err(store_err)
                })
                .await;
            if let Err(e) = linked {
                tracing::warn!("linking an exec to its decision: {}", e.message);
            }
        })
    }

    fn remember(&self, d: &Decision) {
        let open = OpenTargets {
            sessions: d.session_id.iter().cloned().collect(),
            agents: match (&d.session, &d.task) {
                (None, None) => d.agent.iter().cloned().collect(),
                _ => Vec::new(),
            },
            tasks: d.task.iter().cloned().collect(),
        };
        lock(&self.targets).add(open);
    }
}

/// The tasks agent `agent` runs now that a decision follows.
fn running_tasks(
    coord: &ai_session_coord::Coordinator,
    agent: u64,
    targets: &Targets,
) -> Vec<String> {
    coord
        .tasks(Some(ai_session_coord::TaskState::Running))
        .into_iter()
        .filter(|t| t.agent.is_some_and(|a| a.0 == agent))
        .map(|t| t.id.to_string())
        .filter(|id| targets.tasks.contains(id))
        .collect()
}

fn now_ms() -> u64 {
    crate::persist::now_ms()
}

/// Whether the tracker is off for a reason worth logging (not merely "no store yet").
fn store_opened(reason: &str) -> bool {
    reason != NO_STORE
}

const NO_STORE: &str = "the session store is off";

fn invalid(message: String, hint: &str) -> RpcError {
    RpcError::new(ErrorKind::InvalidParams, message).with_hint(hint)
}

fn check(p: &DecisionParams) -> Result<(), RpcError> {
    if p.decision.trim().is_empty() || p.decision.len() > MAX_TEXT {
        return Err(invalid(
            format!(
                "`decision` must say what was decided, in 1 to {MAX_TEXT} bytes (got {})",
                p.decision.len()
            ),
            "give one sentence, e.g. \"run the failing test alone\"",
        ));
    }
    if !(0.0..=1.0).contains(&p.confidence) {
        return Err(invalid(
            format!("`confidence` must be between 0 and 1, got {}", p.confidence),
            "0.7 means you expect it to work 7 times in 10",
        ));
    }
    if p.rationale.len() > MAX_RATIONALE
        || p.alternatives.len() > MAX_ALTERNATIVES
        || p.alternatives.iter().any(|a| a.len() > MAX_TEXT)
    {
        return Err(invalid(
            format!(
                "a rationale holds at most {MAX_RATIONALE} bytes, and a decision at most {MAX_ALTERNATIVES} alternatives of {MAX_TEXT} bytes"
            ),
            "summarise; the details belong in the session's context (context_add)",
        ));
    }
    if let Some(kind) = &p.kind {
        let label = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if kind.is_empty() || kind.len() > MAX_KIND || !kind.chars().all(label) {
            return Err(invalid(
                format!(
                    "`kind` must be a label of 1 to {MAX_KIND} lowercase letters, digits, `-` or `_`, got {kind:?}"
                ),
                "e.g. \"fix\", \"test-strategy\", \"dependency\"",
            ));
        }
    }
    Ok(())
}

/// A task named as `task-3` or `3`, in the first form, if the coordinator has it.
fn task_id(daemon: &Daemon, task: &str) -> Result<String, RpcError> {
    let n = task.strip_prefix("task-").unwrap_or(task);
    let found = n
        .parse::<u64>()
        .ok()
        .and_then(|n| daemon.coord.task(ai_session_coord::TaskId(n)).ok());
    match found {
        Some(t) => Ok(t.id.to_string()),
        None => Err(RpcError::new(
            ErrorKind::NotFound,
            format!("no task {task:?}: a decision's task is one the coordinator has"),
        )
        .with_hint("the task ids are those `task_submit` returned (`task-3`, or `3`)")),
    }
}

fn info(d: Decision) -> DecisionInfo {
    DecisionInfo {
        id: d.id,
        decision: d.text.decision,
        rationale: d.text.rationale,
        confidence: d.confidence,
        alternatives: d.text.alternatives,
        agent: d.agent,
        session: d.session,
        task: d.task,
        kind: d.kind,
        created_ms: d.created_ms,
        outcome: match d.outcome {
            DecisionOutcome::Unknown => Outcome::Unknown,
            DecisionOutcome::Success => Outcome::Success,
            DecisionOutcome::Failure => Outcome::Failure,
        },
        explicit: d.explicit,
        execs: d.execs,
        failed_execs: d.failed_execs,
        note: d.text.note,
    }
}

/// The name of the agent a principal acts as.
fn agent_name(daemon: &Daemon, who: &Principal) -> Option<String> {
    let Principal::Agent(id) = who else {
        return None;
    };
    daemon
        .coord
        .agent(ai_session_coord::AgentId(*id))
        .ok()
        .map(|a| a.name)
}

/// `decision.record`.
pub(crate) async fn record(
    daemon: &Daemon,
    who: &Principal,
    p: DecisionParams,
) -> Result<DecisionInfo, RpcError> {
    check(&p)?;
    let session_id = match &p.target {
        Some(t) => Some(
            crate::service::session_handle(&daemon.manager, t)
                .map_err(|e| e.to_rpc())?
                .id()
                .to_owned(),
        ),
        None => None,
    };
    let task = p.task.as_deref().map(|t| task_id(daemon, t)).transpose()?;
    let tracker = &daemon.telemetry.decisions;
    let new = NewDecision {
        text: DecisionText {
            decision: p.decision,
            rationale: p.rationale,
            alternatives: p.alternatives,
            note: None,
        },
        confidence: p.confidence,
        agent: agent_name(daemon, who),
        session: p.target,
        session_id,
        task,
        kind: p.kind,
        created_ms: now_ms(),
    };
    let d = tracker
        .worker()?
        .call(move |db| db.record(&new).and_then(|id| db.get(id)).map_err(store_err))
        .await?;
    tracker.remember(&d);
    Ok(info(d))
}

/// `decision.outcome`.
pub(crate) async fn outcome(daemon: &Daemon, p: OutcomeParams) -> Result<DecisionInfo, RpcError> {
    let outcome = match p.outcome {
        Outcome::Success => DecisionOutcome::Success,
        Outcome::Failure => DecisionOutcome::Failure,
        Outcome::Unknown => {
            return Err(RpcError::new(
                ErrorKind::InvalidParams,
                "an outcome set by hand is `success` or `failure`",
            )
            .with_advice(
                Advice::new("give {0} as `success` or `failure`")
                    .field("decision.outcome", "outcome"),
            ));
        }
    };
    let d = daemon
        .telemetry
        .decisions
        .worker()?
        .call(move |db| {
            db.set_outcome(p.id, outcome, p.note, now_ms())
                .map_err(store_err)
        })
        .await?;
    Ok(info(d))
}

/// `decision.show`.
pub(crate) async fn show(daemon: &Daemon, p: DecisionId) -> Result<DecisionInfo, RpcError> {
    let d = daemon
        .telemetry
        .decisions
        .worker()?
        .call(move |db| db.get(p.id).map_err(store_err))
        .await?;
    Ok(info(d))
}

/// `decision.list`.
pub(crate) async fn list(daemon: &Daemon, p: DecisionListParams) -> Result<DecisionList, RpcError> {
    let filter = DecisionFilter {
        agent: p.agent,
        session: p.target,
        // A task that is gone may still have decisions: its name is kept as given.
        task: p.task.map(|t| task_id(daemon, &t).unwrap_or(t)),
        kind: p.kind,
        limit: Some(p.limit.unwrap_or(100)),
    };
    let all = daemon
        .telemetry
        .decisions
        .worker()?
        .call(move |db| db.list(&filter).map_err(store_err))
        .await?;
    Ok(DecisionList {
        decisions: all.into_iter().map(info).collect(),
    })
}

/// `decision.stats`.
pub(crate) async fn stats(
    daemon: &Daemon,
    p: DecisionStatsParams,
) -> Result<DecisionStats, RpcError> {
    let filter = DecisionFilter {
        agent: p.agent,
        ..DecisionFilter::default()
    };
    daemon
        .telemetry
        .decisions
        .worker()?
        .call(move |db| db.list(&filter).map(|all| figures(&all)).map_err(store_err))
        .await
}

/// Success rates by agent and by kind, reliability bins and the Brier score over `all`.
pub(crate) fn figures(all: &[Decision]) -> DecisionStats {
    use std::collections::BTreeMap;
    let mut by_agent: BTreeMap<String, (Tally, f64)> = BTreeMap::new();
    let mut by_kind: BTreeMap<String, (Tally, f64)> = BTreeMap::new();
    let mut bins: [(u64, f64, u64); 10] = [(0, 0.0, 0); 10];
    let (mut decided, mut brier) = (0u64, 0.0);
    for d in all {
        let agent = d.agent.clone().unwrap_or_else(|| "(owner)".into());
        let kind = d.kind.clone().unwrap_or_else(|| "(none)".into());
        for (t, sum) in [
            by_agent.entry(agent).or_default(),
            by_kind.entry(kind).or_default(),
        ] {
            count(t, d.outcome);
            *sum += d.confidence;
        }
        let hit = match d.outcome {
            DecisionOutcome::Unknown => continue,
            DecisionOutcome::Success => 1.0,
            DecisionOutcome::Failure => 0.0,
        };
        decided += 1;
        brier += (d.confidence - hit).powi(2);
        let bin = ((d.confidence * 10.0) as usize).min(9);
        if let Some(b) = bins.get_mut(bin) {
            b.0 += 1;
            b.1 += d.confidence;
            b.2 += hit as u64;
        }
    }
    let bins = bins
        .iter()
        .enumerate()
        .filter(|(_, b)| b.0 > 0)
        .map(|(i, &(count, conf, hits))| ReliabilityBin {
            lower: i as f64 / 10.0,
            upper: (i + 1) as f64 / 10.0,
            count,
            mean_confidence: conf / count as f64,
            success_rate: hits as f64 / count as f64,
        })
        .collect();
    DecisionStats {
        decisions: all.len() as u64,
        decided,
        by_agent: by_agent
            .into_iter()
            .map(|(agent, t)| AgentDecisions {
                agent,
                tally: settle(t),
            })
            .collect(),
        by_kind: by_kind
            .into_iter()
            .map(|(kind, t)| KindDecisions {
                kind,
                tally: settle(t),
            })
            .collect(),
        bins,
        brier: (decided > 0).then(|| brier / decided as f64),
    }
}

fn count(t: &mut Tally, outcome: DecisionOutcome) {
    t.decisions += 1;
    match outcome {
        DecisionOutcome::Unknown => t.unknown += 1,
        DecisionOutcome::Success => t.success += 1,
        DecisionOutcome::Failure => t.failure += 1,
    }
}

/// A group's rates from its counts and the sum of its confidences.
fn settle((mut t, confidence): (Tally, f64)) -> Tally {
    t.mean_confidence = confidence / t.decisions.max(1) as f64;
    let judged = t.success + t.failure;
    t.success_rate = (judged > 0).then(|| t.success as f64 / judged as f64);
    t
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn decision(agent: &str, confidence: f64, outcome: DecisionOutcome) -> Decision {
        Decision {
            id: 1,
            text: DecisionText::default(),
            confidence,
            agent: Some(agent.into()),
            session: None,
            session_id: None,
            task: None,
            kind: Some(if confidence > 0.5 { "sure" } else { "unsure" }.into()),
            created_ms: 0,
            outcome,
            explicit: false,
            execs: 0,
            failed_execs: 0,
            outcome_ms: None,
        }
    }

    #[test]
    fn rates_bins_and_brier_score() {
        use DecisionOutcome::*;
        let all = [
            decision("a", 0.9, Success),
            decision("a", 0.9, Failure),
            decision("a", 0.95, Success),
            decision("b", 0.2, Failure),
            decision("b", 0.5, Unknown),
        ];
        let s = figures(&all);
        assert_eq!((s.decisions, s.decided), (5, 4));
        let a = &s.by_agent[0];
        assert_eq!(
            (a.agent.as_str(), a.tally.success, a.tally.failure),
            ("a", 2, 1)
        );
        assert!((a.tally.success_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.by_agent[1].tally.unknown, 1);
        let kinds: Vec<(&str, u64, u64)> = s
            .by_kind
            .iter()
            .map(|k| (k.kind.as_str(), k.tally.success, k.tally.failure))
            .collect();
        assert_eq!(kinds, [("sure", 2, 1), ("unsure", 0, 1)]);
        // (0.1^2 + 0.9^2 + 0.05^2 + 0.2^2) / 4
        let brier = (0.01 + 0.81 + 0.0025 + 0.04) / 4.0;
        assert!((s.brier.unwrap() - brier).abs() < 1e-9, "{:?}", s.brier);
        let high = s.bins.iter().find(|b| b.lower == 0.9).unwrap();
        assert_eq!(high.count, 3);
        assert!((high.success_rate - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.bins.len(), 2);
    }
}
