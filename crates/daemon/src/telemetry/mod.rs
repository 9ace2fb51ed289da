//! Telemetry: what the daemon did, counted by an observer of the service's events, and what it
//! runs and costs, read when someone asks; shown to people (`daemon.stats`, `ai-session stats`)
//! and to Prometheus (`daemon.metrics`, `GET /metrics`).
//!
//! The observer only adds to atomic counters and fixed-bucket histograms (no lock, no
//! allocation on the request path); the one map, tokens per agent, is touched only by an
//! agent's exec and holds its lock for one insert. Everything that costs (listing sessions,
//! reading `/proc`, counting tasks) happens at read time, off the request path.
//! `AI_SESSION_TELEMETRY=off` leaves the observer out.
//!
//! With an OTLP endpoint configured, every request is also a span ([`trace`], exported by
//! [`export`]).

pub(crate) mod alerts;
pub(crate) mod decisions;
mod export;
mod exposition;
mod histogram;
mod process;
mod read;
mod redact;
mod trace;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ai_session_protocol::methods::{ExecResult, ExecStatus};
use ai_session_protocol::registry::{self as reg, METHODS, Method as _, MethodSpec};
use ai_session_protocol::stats::AgentTokens;
use ai_session_protocol::{ErrorKind, RpcError};
use serde_json::Value;

use crate::service::{Event, Observer, Reaction};
use histogram::Histogram;

pub use export::SetupError;
pub(crate) use exposition::CONTENT_TYPE;
pub(crate) use read::{metrics, stats};
pub(crate) use trace::{Tracing, caller_trace, http_trace, with_caller_trace};

/// How an exec ended, as counted in `ai_session_execs_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok,
    Nonzero,
    NoExitCode,
    Timeout,
    Running,
    WaitingForInput,
    Starting,
    Error,
}

impl Outcome {
    pub(crate) const ALL: [Outcome; 8] = [
        Self::Ok,
        Self::Nonzero,
        Self::NoExitCode,
        Self::Timeout,
        Self::Running,
        Self::WaitingForInput,
        Self::Starting,
        Self::Error,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Nonzero => "nonzero",
            Self::NoExitCode => "no_exit_code",
            Self::Timeout => "timeout",
            Self::Running => "running",
            Self::WaitingForInput => "waiting_for_input",
            Self::Starting => "starting",
            Self::Error => "error",
        }
    }

    fn of(result: &ExecResult) -> Self {
        match (result.status, result.exit_code) {
            (ExecStatus::Exited, Some(0)) => Self::Ok,
            (ExecStatus::Exited, Some(_)) => Self::Nonzero,
            (ExecStatus::Exited, None) => Self::NoExitCode,
            (ExecStatus::Timeout, _) => Self::Timeout,
            (ExecStatus::Running, _) => Self::Running,
            (ExecStatus::WaitingForInput, _) => Self::WaitingForInput,
            (ExecStatus::Starting, _) => Self::Starting,
        }
    }
}

/// How a request ended, as counted in `ai_session_requests_total{result}`.
pub(crate) const RESULTS: [&str; 3] = ["ok", "denied", "error"];

/// Methods whose daemon-side time is kept in a histogram each: the exec path, the contexts and
/// the store.
pub(crate) const TIMED: [&str; 12] = [
    reg::SessionExec::NAME,
    reg::SessionNew::NAME,
    reg::ContextGet::NAME,
    reg::ContextAdd::NAME,
    reg::ContextShow::NAME,
    reg::ContextTask::NAME,
    reg::ContextConfig::NAME,
    reg::SnapshotCreate::NAME,
    reg::SnapshotList::NAME,
    reg::SnapshotRestore::NAME,
    reg::SessionExport::NAME,
    reg::SessionImport::NAME,
];

/// Methods that put a message on the bus when they succeed.
const BUS_MESSAGES: [&str; 5] = [
    reg::BusPublish::NAME,
    reg::BusSend::NAME,
    reg::BusBroadcast::NAME,
    reg::BusRequest::NAME,
    reg::BusReply::NAME,
];

/// Agents kept apart in the tokens-per-agent table; later ones are counted together.
const MAX_AGENTS: usize = 1024;
const OTHER_AGENTS: &str = "(other)";

/// One method's counters: by result, and its duration when it is in [`TIMED`].
#[derive(Default)]
struct MethodCounters {
    results: [AtomicU64; 3],
    duration: Option<Histogram>,
    /// One of [`BUS_MESSAGES`].
    bus: bool,
}

/// The counters, and the observer that keeps them.
pub(crate) struct Telemetry {
    enabled: bool,
    execs: [AtomicU64; Outcome::ALL.len()],
    exec_pty: Histogram,
    output_bytes: AtomicU64,
    raw_tokens: AtomicU64,
    returned_tokens: AtomicU64,
    execs_with_view: AtomicU64,
    /// One per entry of [`METHODS`], then one for unknown method names.
    methods: Vec<MethodCounters>,
    exec_index: usize,
    denials: AtomicU64,
    unauthorized: AtomicU64,
    connections: AtomicU64,
    bus_messages: AtomicU64,
    agents: Mutex<HashMap<String, AgentTokens>>,
    /// Spans, when an OTLP endpoint is configured.
    tracing: Option<Tracing>,
    /// Anomaly detection.
    pub(crate) alerts: alerts::Alerts,
    /// The decision tracker (on whether or not the counters are).
    pub(crate) decisions: decisions::Decisions,
}

impl Telemetry {
    /// On unless `AI_SESSION_TELEMETRY` is `off` (or `0`, `false`).
    pub(crate) fn from_env() -> Self {
        let off = std::env::var("AI_SESSION_TELEMETRY")
            .is_ok_and(|v| matches!(v.trim(), "off" | "0" | "false"));
        Self::new(!off)
    }

    pub(crate) fn new(enabled: bool) -> Self {
        let methods = METHODS
            .iter()
            .map(|m| MethodCounters {
                duration: TIMED.contains(&m.name).then(Histogram::default),
                bus: BUS_MESSAGES.contains(&m.name),
                ..MethodCounters::default()
            })
            .chain(std::iter::once(MethodCounters::default()))
            .collect();
        Self {
            enabled,
            execs: std::array::from_fn(|_| AtomicU64::new(0)),
            exec_pty: Histogram::default(),
            output_bytes: AtomicU64::new(0),
            raw_tokens: AtomicU64::new(0),
            returned_tokens: AtomicU64::new(0),
            execs_with_view: AtomicU64::new(0),
            methods,
            exec_index: index_of_name(reg::SessionExec::NAME),
            denials: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            bus_messages: AtomicU64::new(0),
            agents: Mutex::new(HashMap::new()),
            tracing: None,
            alerts: alerts::Alerts::new(Default::default()),
            decisions: decisions::Decisions::off("the session store is off".into()),
        }
    }

    /// Keeps decisions in `store`'s decisions database.
    pub(crate) fn with_decisions(
        mut self,
        store: Option<&std::sync::Arc<ai_session_store::Store>>,
        coord: &ai_session_coord::Coordinator,
    ) -> Self {
        self.decisions = decisions::Decisions::open(store, coord);
        self
    }

    /// Detects anomalies with the thresholds of `[alerts]`.
    pub(crate) fn with_alerts(
        mut self,
        config: &ai_session_protocol::config::AlertsConfig,
    ) -> Self {
        self.alerts = alerts::Alerts::new(config.clone());
        self
    }

    /// Exports a span for every request (unless `AI_SESSION_TELEMETRY=off`), as `[telemetry]`
    /// or the `OTEL_EXPORTER_OTLP_*` variables say; unchanged when neither names an endpoint.
    pub(crate) fn with_tracing(
        mut self,
        config: &ai_session_protocol::config::TelemetryConfig,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, SetupError> {
        if self.enabled {
            self.tracing =
                export::provider(config, runtime)?.map(|p| Tracing::new(p, config.record_commands));
        }
        Ok(self)
    }

    /// Whether requests are traced.
    pub(crate) fn tracing(&self) -> bool {
        self.tracing.is_some()
    }

    /// Sends the spans still queued (at shutdown).
    pub(crate) fn flush(&self) {
        if let Some(t) = &self.tracing {
            t.shutdown();
        }
    }

    /// Socket connections open now.
    pub(crate) fn open_connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts a socket connection while the guard lives.
    pub(crate) fn connection(&self) -> ConnectionGuard<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(&self.connections)
    }

    /// An HTTP request refused for a missing or invalid token.
    pub(crate) fn unauthorized(&self) {
        if self.enabled {
            self.unauthorized.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn exec_finished(&self, result: &ExecResult, agent_context: Option<&str>) {
        self.count(Outcome::of(result));
        self.exec_pty.observe(Duration::from_secs_f64(
            result.duration_ms.max(0.0) / 1000.0,
        ));
        let bytes = result.output_end.saturating_sub(result.output_start);
        self.output_bytes.fetch_add(bytes, Ordering::Relaxed);
        let Some((raw, returned)) = view_tokens(result.compact.as_ref()) else {
            return;
        };
        self.raw_tokens.fetch_add(raw, Ordering::Relaxed);
        self.returned_tokens.fetch_add(returned, Ordering::Relaxed);
        self.execs_with_view.fetch_add(1, Ordering::Relaxed);
        if let Some(agent) = agent_context.and_then(|c| c.strip_prefix("agent:")) {
            let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
            let key = if agents.len() < MAX_AGENTS || agents.contains_key(agent) {
                agent
            } else {
                OTHER_AGENTS
            };
            let entry = agents.entry(key.to_owned()).or_insert_with(|| AgentTokens {
                agent: key.to_owned(),
                ..AgentTokens::default()
            });
            entry.execs += 1;
            entry.raw_tokens += raw;
            entry.returned_tokens += returned;
        }
    }

    fn count(&self, outcome: Outcome) {
        if let Some(c) = self.execs.get(outcome as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn handled(
        &self,
        spec: Option<&'static MethodSpec>,
        result: &Result<Value, RpcError>,
        elapsed: Duration,
    ) {
        let index = spec.map_or(METHODS.len(), index_of);
        let Some(m) = self.methods.get(index) else {
            return;
        };
        let class = match result {
            Ok(_) => 0,
            Err(e) if e.kind() == Some(ErrorKind::PermissionDenied) => 1,
            Err(_) => 2,
        };
        m.results[class].fetch_add(1, Ordering::Relaxed);
        if let Some(h) = &m.duration {
            h.observe(elapsed);
        }
        if class == 1 {
            self.denials.fetch_add(1, Ordering::Relaxed);
        }
        if class == 0 && m.bus {
            self.bus_messages.fetch_add(1, Ordering::Relaxed);
        }
        if class != 0 && index == self.exec_index {
            // A failed exec publishes no `ExecFinished`: it is counted here.
            self.count(Outcome::Error);
        }
    }
}

/// Decrements the connection gauge when the connection ends.
pub(crate) struct ConnectionGuard<'a>(&'a AtomicU64);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `(raw_tokens, compact_tokens)` of an exec's compact view.
fn view_tokens(compact: Option<&Value>) -> Option<(u64, u64)> {
    let c = compact?;
    Some((
        c.get("raw_tokens")?.as_u64()?,
        c.get("compact_tokens")?.as_u64()?,
    ))
}

/// The position of a method's entry in [`METHODS`]: `spec` is a reference into it.
fn index_of(spec: &'static MethodSpec) -> usize {
    METHODS
        .iter()
        .position(|m| std::ptr::eq(m, spec))
        .unwrap_or_else(|| index_of_name(spec.name))
}

fn index_of_name(name: &str) -> usize {
    METHODS
        .iter()
        .position(|m| m.name == name)
        .unwrap_or(METHODS.len())
}

impl Observer for Telemetry {
    fn observe(&self, event: &Event<'_>) -> Reaction {
        let linked = match event {
            Event::ExecFinished {
                session,
                session_id,
                result,
                agent_context,
                agent_id,
                ..
            } => {
                let agent = agent_context
                    .and_then(|c| c.strip_prefix("agent:"))
                    .zip(*agent_id);
                self.decisions
                    .exec_finished(session, session_id, agent, result)
            }
            _ => Reaction::default(),
        };
        if !self.enabled {
            return linked;
        }
        match event {
            Event::ExecFinished {
                session,
                command,
                result,
                agent_context,
                ..
            } => {
                self.exec_finished(result, *agent_context);
                let agent = agent_context.and_then(|c| c.strip_prefix("agent:"));
                self.alerts.exec(session, command, result, agent);
            }
            Event::Handled {
                who,
                spec,
                method,
                session,
                result,
                elapsed,
                ..
            } => {
                self.handled(*spec, result, *elapsed);
                self.alerts.handled(who, method, *session, result);
            }
            Event::SessionCreated { .. }
            | Event::SessionKilled { .. }
            | Event::AgentLeft { .. } => {}
        }
        if let Some(t) = &self.tracing {
            trace_event(t, event);
        }
        linked
    }
}

/// What the tracer takes from an event.
fn trace_event(t: &Tracing, event: &Event<'_>) {
    match event {
        Event::SessionCreated { info, .. } => t.session_created(info),
        Event::SessionKilled { name, .. } => t.session_killed(name),
        Event::ExecFinished {
            session,
            command,
            result,
            agent_context,
            ..
        } => t.exec_finished(&trace::ExecSpan {
            session,
            command,
            result,
            agent: agent_context.and_then(|c| c.strip_prefix("agent:")),
        }),
        Event::Handled {
            who,
            spec,
            method,
            session,
            session_id,
            result,
            elapsed,
            ..
        } => t.handled(&trace::HandledSpan {
            who,
            spec: *spec,
            method,
            session: *session,
            session_id: *session_id,
            result,
            elapsed: *elapsed,
        }),
        Event::AgentLeft { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// From JSON, as a client sees it, so that fields added later need no change here.
    fn exec(status: ExecStatus, code: Option<i32>, compact: Option<Value>) -> ExecResult {
        serde_json::from_value(serde_json::json!({
            "status": status,
            "exit_code": code,
            "output": "",
            "output_start": 100,
            "output_end": 150,
            "truncated": false,
            "duration_ms": 2.5,
            "completion": "osc133",
            "compact": compact,
        }))
        .unwrap()
    }

    #[test]
    fn execs_are_counted_by_outcome_with_their_tokens() {
        let t = Telemetry::new(true);
        let view = serde_json::json!({"raw_tokens": 40, "compact_tokens": 12});
        t.exec_finished(
            &exec(ExecStatus::Exited, Some(0), Some(view)),
            Some("agent:a"),
        );
        t.exec_finished(&exec(ExecStatus::Exited, Some(2), None), None);
        t.exec_finished(&exec(ExecStatus::Timeout, None, None), None);
        let n = |o: Outcome| t.execs[o as usize].load(Ordering::Relaxed);
        assert_eq!(
            (n(Outcome::Ok), n(Outcome::Nonzero), n(Outcome::Timeout)),
            (1, 1, 1)
        );
        assert_eq!(t.output_bytes.load(Ordering::Relaxed), 150);
        assert_eq!(t.raw_tokens.load(Ordering::Relaxed), 40);
        assert_eq!(t.returned_tokens.load(Ordering::Relaxed), 12);
        let agents = t.agents.lock().unwrap();
        assert_eq!(agents["a"].returned_tokens, 12);
        assert_eq!(t.exec_pty.snapshot().count, 3);
    }

    #[test]
    fn requests_are_counted_by_method_and_result() {
        let t = Telemetry::new(true);
        let exec = reg::spec(reg::SessionExec::NAME);
        let denied = Err(RpcError::new(ErrorKind::PermissionDenied, "no"));
        let missing = Err(RpcError::new(ErrorKind::SessionNotFound, "no"));
        t.handled(exec, &Ok(Value::Null), Duration::from_millis(1));
        t.handled(exec, &denied, Duration::from_millis(1));
        t.handled(exec, &missing, Duration::from_millis(1));
        t.handled(None, &missing, Duration::from_millis(1));
        t.handled(
            reg::spec(reg::BusPublish::NAME),
            &Ok(Value::Null),
            Duration::ZERO,
        );
        let m = &t.methods[index_of_name(reg::SessionExec::NAME)];
        let r: Vec<u64> = m
            .results
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        assert_eq!(r, [1, 1, 1]);
        assert_eq!(m.duration.as_ref().unwrap().snapshot().count, 3);
        assert_eq!(t.execs[Outcome::Error as usize].load(Ordering::Relaxed), 2);
        assert_eq!(t.denials.load(Ordering::Relaxed), 1);
        assert_eq!(t.bus_messages.load(Ordering::Relaxed), 1);
        let unknown = &t.methods[METHODS.len()];
        assert_eq!(unknown.results[2].load(Ordering::Relaxed), 1);
    }

    #[test]
    fn off_counts_nothing() {
        let t = Telemetry::new(false);
        let handled = Event::Handled {
            who: &crate::access::Principal::Owner,
            spec: reg::spec(reg::SessionList::NAME),
            method: reg::SessionList::NAME,
            detail: "",
            session: None,
            session_id: None,
            result: &Ok(Value::Null),
            elapsed: Duration::from_millis(1),
        };
        drop(t.observe(&handled));
        let i = index_of_name(reg::SessionList::NAME);
        assert_eq!(t.methods[i].results[0].load(Ordering::Relaxed), 0);
    }
}
