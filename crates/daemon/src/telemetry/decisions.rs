//! The decision tracker (`decision.*`): agents record what they chose, why and how sure they
//! were; the execs that follow link to the decision and set its outcome; the figures are
//! success rates by agent and calibration (reliability bins, Brier score).
//!
//! The decisions live in the store's `metadata/decisions.db` (sealed text in an encrypted
//! store), driven from one thread behind a bounded queue like the store itself. An exec costs
//! nothing here unless its session (or its agent) has a decision still following its execs:
//! those targets are kept in memory, and only their execs queue a link, which the exec's answer
//! waits for (so a `decisions show` after the exec sees it).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use ai_session_protocol::decisions::{
    AgentDecisions, DecisionId, DecisionInfo, DecisionList, DecisionListParams, DecisionParams,
    DecisionStats, DecisionStatsParams, Outcome, OutcomeParams, ReliabilityBin,
};
use ai_session_protocol::hint::Advice;
use ai_session_protocol::methods::{ExecResult, ExecStatus};
use ai_session_protocol::{ErrorKind, RpcError};
use ai_session_store::{
    Decision, DecisionFilter, DecisionOutcome, DecisionText, Decisions as Db, NewDecision, Store,
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sessions and agents whose execs link to a decision.
#[derive(Default)]
struct Targets {
    sessions: HashSet<String>,
    agents: HashSet<String>,
}

/// The tracker: its thread (none when the store is off) and the targets of open decisions.
pub(crate) struct Decisions {
    worker: Option<Worker<Db>>,
    targets: Arc<Mutex<Targets>>,
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
    pub(crate) fn open(store: Option<&Arc<Store>>) -> Self {
        let opened = store
            .ok_or_else(|| NO_STORE.to_owned())
            .and_then(|s| s.decisions().map_err(|e| e.to_string()));
        let targets = Arc::new(Mutex::new(Targets::default()));
        match opened {
            Ok(db) => {
                if let Ok((sessions, agents)) = db.open_targets() {
                    let mut t = lock(&targets);
                    t.sessions.extend(sessions);
                    t.agents.extend(agents);
                }
                match Worker::start("decisions", QUEUE, db) {
                    Ok(worker) => Self {
                        worker: Some(worker),
                        targets,
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

    /// An exec finished: linked to the open decision of its session or agent, if there is one
    /// (the answer waits for the link).
    pub(crate) fn exec_finished(
        &self,
        session: &str,
        agent: Option<&str>,
        result: &ExecResult,
    ) -> Reaction {
        if result.status != ExecStatus::Exited {
            return Reaction::default();
        }
        let targeted = {
            let t = lock(&self.targets);
            t.sessions.contains(session) || agent.is_some_and(|a| t.agents.contains(a))
        };
        let Some(worker) = self.worker.as_ref().filter(|_| targeted) else {
            return Reaction::default();
        };
        let failed = result.exit_code != Some(0);
        let (session, agent, worker) = (
            session.to_owned(),
            agent.map(str::to_owned),
            worker.handle(),
        );
        Reaction::ack(async move {
            let linked = worker
                .call(move |db| {
                    db.link_exec(&session, agent.as_deref(), failed, now_ms())
                        .map_err(store_err)
                })
                .await;
            if let Err(e) = linked {
                tracing::warn!("linking an exec to its decision: {}", e.message);
            }
        })
    }

    fn remember(&self, d: &Decision) {
        let mut t = lock(&self.targets);
        match (&d.session, &d.agent) {
            (Some(s), _) => t.sessions.insert(s.clone()),
            (None, Some(a)) => t.agents.insert(a.clone()),
            (None, None) => false,
        };
    }
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
    Ok(())
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
    if let Some(t) = &p.target {
        daemon.manager.get(t).map_err(|e| e.to_rpc())?;
    }
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
        task: p.task,
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
        task: p.task,
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

/// Success rates by agent, reliability bins and the Brier score over `all`.
pub(crate) fn figures(all: &[Decision]) -> DecisionStats {
    let mut by_agent: std::collections::BTreeMap<String, (AgentDecisions, f64)> =
        std::collections::BTreeMap::new();
    let mut bins: [(u64, f64, u64); 10] = [(0, 0.0, 0); 10];
    let (mut decided, mut brier) = (0u64, 0.0);
    for d in all {
        let name = d.agent.clone().unwrap_or_else(|| "(owner)".into());
        let (a, sum) = by_agent.entry(name.clone()).or_insert_with(|| {
            (
                AgentDecisions {
                    agent: name,
                    ..AgentDecisions::default()
                },
                0.0,
            )
        });
        a.decisions += 1;
        *sum += d.confidence;
        let hit = match d.outcome {
            DecisionOutcome::Unknown => {
                a.unknown += 1;
                continue;
            }
            DecisionOutcome::Success => {
                a.success += 1;
                1.0
            }
            DecisionOutcome::Failure => {
                a.failure += 1;
                0.0
            }
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
    let by_agent = by_agent
        .into_values()
        .map(|(mut a, sum)| {
            a.mean_confidence = sum / a.decisions.max(1) as f64;
            let judged = a.success + a.failure;
            a.success_rate = (judged > 0).then(|| a.success as f64 / judged as f64);
            a
        })
        .collect();
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
        by_agent,
        bins,
        brier: (decided > 0).then(|| brier / decided as f64),
    }
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
            task: None,
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
        assert_eq!((a.agent.as_str(), a.success, a.failure), ("a", 2, 1));
        assert!((a.success_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.by_agent[1].unknown, 1);
        // (0.1^2 + 0.9^2 + 0.05^2 + 0.2^2) / 4
        let brier = (0.01 + 0.81 + 0.0025 + 0.04) / 4.0;
        assert!((s.brier.unwrap() - brier).abs() < 1e-9, "{:?}", s.brier);
        let high = s.bins.iter().find(|b| b.lower == 0.9).unwrap();
        assert_eq!(high.count, 3);
        assert!((high.success_rate - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(s.bins.len(), 2);
    }
}
