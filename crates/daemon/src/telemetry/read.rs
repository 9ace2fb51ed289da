//! Reading the figures: the counters as they are, and the gauges read now (sessions by state,
//! the coordinator's bus and tasks, the store and the audit log, the daemon process), as
//! `daemon.stats` for people and `daemon.metrics` for Prometheus.

use std::sync::atomic::Ordering;

use ai_session_coord::TaskState;
use ai_session_protocol::methods::{SessionInfo, SessionState};
use ai_session_protocol::registry::METHODS;
use ai_session_protocol::stats::{
    AuditCounts, BusCounts, ExecCounts, MethodCounts, MetricsResult, SessionCounts, StatsResult,
    StoreCounts, TaskCounts, TokenCounts,
};
use ai_session_protocol::{ErrorKind, RpcError};

use super::exposition::{Kind, Text};
use super::histogram::Snapshot;
use super::{Outcome, RESULTS, Telemetry};
use crate::server::Daemon;

/// The name `ai_session_requests_total` gives requests for a method that does not exist.
const UNKNOWN_METHOD: &str = "unknown";

/// Everything but the per-session usage, which costs a pass over `/proc`, for these sessions.
fn gauges(d: &Daemon, infos: &[SessionInfo]) -> StatsResult {
    let t = &d.telemetry;
    let mut sessions = SessionCounts::default();
    for s in infos {
        match s.state {
            SessionState::Starting => sessions.starting += 1,
            SessionState::Idle => sessions.idle += 1,
            SessionState::Busy => sessions.busy += 1,
            SessionState::Exited => sessions.exited += 1,
        }
    }
    let mut tasks = TaskCounts::default();
    for task in d.coord.tasks(None) {
        match task.state {
            TaskState::Queued => tasks.queued += 1,
            TaskState::Assigned => tasks.assigned += 1,
            TaskState::Running => tasks.running += 1,
            TaskState::Done => tasks.done += 1,
            TaskState::Failed => tasks.failed += 1,
            TaskState::DeadLettered => tasks.dead_lettered += 1,
        }
    }
    let dead = d.coord.dead_letter_stats();
    let persist = d.persist.status();
    let audit = d.access.audit_status();
    let exec = |o: Outcome| t.execs[o as usize].load(Ordering::Relaxed);
    StatsResult {
        uptime_ms: d.started.elapsed().as_millis() as u64,
        telemetry: t.enabled,
        sessions,
        execs: ExecCounts {
            ok: exec(Outcome::Ok),
            nonzero: exec(Outcome::Nonzero),
            no_exit_code: exec(Outcome::NoExitCode),
            timeout: exec(Outcome::Timeout),
            running: exec(Outcome::Running),
            waiting_for_input: exec(Outcome::WaitingForInput),
            starting: exec(Outcome::Starting),
            error: exec(Outcome::Error),
        },
        exec_duration: exec_histogram(t).summary(),
        exec_pty_duration: t.exec_pty.snapshot().summary(),
        output_bytes: t.output_bytes.load(Ordering::Relaxed),
        tokens: TokenCounts {
            raw: t.raw_tokens.load(Ordering::Relaxed),
            returned: t.returned_tokens.load(Ordering::Relaxed),
            execs_with_view: t.execs_with_view.load(Ordering::Relaxed),
        },
        requests: method_counts(t),
        capability_denials: t.denials.load(Ordering::Relaxed),
        http_unauthorized: t.unauthorized.load(Ordering::Relaxed),
        connections: t.connections.load(Ordering::Relaxed),
        bus: BusCounts {
            messages: t.bus_messages.load(Ordering::Relaxed),
            topics: d.coord.topics().len() as u64,
            dead_letters_queued: dead.queued as u64,
            dead_letters_total: dead.total,
        },
        tasks,
        store: StoreCounts {
            open: persist.dir.is_some(),
            write_failures: persist.write_failures,
            disk_full: persist.disk_full,
            load_errors: persist.errors.len() as u64,
        },
        audit: AuditCounts {
            ok: audit.ok,
            writes_refused: audit.writes_refused,
            last_seq: audit.last_seq,
        },
        process: super::process::own(),
        session_usage: Vec::new(),
        agents: Vec::new(),
    }
}

fn exec_histogram(t: &Telemetry) -> Snapshot {
    t.methods
        .get(t.exec_index)
        .and_then(|m| m.duration.as_ref())
        .map_or_else(|| super::Histogram::default().snapshot(), |h| h.snapshot())
}

fn method_counts(t: &Telemetry) -> Vec<MethodCounts> {
    let names = METHODS.iter().map(|m| m.name).chain([UNKNOWN_METHOD]);
    names
        .zip(&t.methods)
        .filter_map(|(name, m)| {
            let [ok, denied, error] = [0, 1, 2].map(|i| m.results[i].load(Ordering::Relaxed));
            (ok + denied + error > 0).then(|| MethodCounts {
                method: name.to_owned(),
                ok,
                denied,
                error,
                duration: m.duration.as_ref().map(|h| h.snapshot().summary()),
            })
        })
        .collect()
}

/// `daemon.stats`: the figures, with each session's CPU and memory and the tokens per agent.
pub(crate) async fn stats(d: &Daemon) -> Result<StatsResult, RpcError> {
    let infos = d.manager.list().await;
    let mut stats = gauges(d, &infos);
    stats.session_usage = tokio::task::spawn_blocking(move || super::process::sessions(&infos))
        .await
        .map_err(|e| {
            RpcError::new(
                ErrorKind::Internal,
                format!("reading the sessions' processes failed: {e}"),
            )
        })?;
    let mut agents: Vec<_> = d
        .telemetry
        .agents
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect();
    agents.sort_by(|a, b| a.agent.cmp(&b.agent));
    stats.agents = agents;
    Ok(stats)
}

/// `daemon.metrics`: every metric in the Prometheus text format.
pub(crate) async fn metrics(d: &Daemon) -> Result<MetricsResult, RpcError> {
    let s = gauges(d, &d.manager.list().await);
    let t = &d.telemetry;
    let mut x = Text::default();
    daemon_metrics(&mut x, &s);
    exec_metrics(&mut x, &s, t);
    request_metrics(&mut x, t);
    coordination_metrics(&mut x, &s);
    resource_metrics(&mut x, &s);
    alert_metrics(&mut x, t);
    hook_metrics(&mut x, &d.hooks.status());
    Ok(MetricsResult { text: x.finish() })
}

fn alert_metrics(x: &mut Text, t: &Telemetry) {
    let name = "ai_session_alerts_total";
    x.family(
        name,
        Kind::Counter,
        "Anomalies detected, by rule (docs/observability.md lists the rules).",
    );
    for (rule, n) in t.alerts.counts() {
        x.integer(name, &[("rule", rule)], n);
    }
}

/// `[[hooks]]` and the other integrations (docs/integration.md): what each delivered, failed,
/// dropped, and holds queued.
fn hook_metrics(x: &mut Text, hooks: &[ai_session_protocol::integration::HookStatus]) {
    let name = "ai_session_hook_events_total";
    x.family(
        name,
        Kind::Counter,
        "Events per hook by outcome: delivered, failed (a program's error or timeout, a \
         webhook dead-lettered), dropped (its queue was full).",
    );
    for h in hooks {
        for (outcome, n) in [
            ("delivered", h.delivered),
            ("failed", h.failed),
            ("dropped", h.dropped),
        ] {
            x.integer(name, &[("hook", &h.name), ("outcome", outcome)], n);
        }
    }
    let name = "ai_session_hook_queued";
    x.family(name, Kind::Gauge, "Events waiting for each hook.");
    for h in hooks {
        x.integer(name, &[("hook", &h.name)], h.queued);
    }
}

fn flag(b: bool) -> u8 {
    u8::from(b)
}

fn daemon_metrics(x: &mut Text, s: &StatsResult) {
    let name = "ai_session_info";
    x.family(
        name,
        Kind::Gauge,
        "The daemon's version and protocol, as labels (value 1).",
    );
    let protocol = ai_session_protocol::PROTOCOL_VERSION.to_string();
    let labels = [
        ("version", env!("CARGO_PKG_VERSION")),
        ("protocol", &protocol),
    ];
    x.sample(name, &labels, 1u8);
    x.one_f(
        "ai_session_uptime_seconds",
        Kind::Gauge,
        "Seconds since the daemon started.",
        s.uptime_ms as f64 / 1000.0,
    );
    x.one_f(
        "ai_session_telemetry_enabled",
        Kind::Gauge,
        "1 when the counters are kept (AI_SESSION_TELEMETRY is not off).",
        flag(s.telemetry),
    );
    let name = "ai_session_sessions";
    x.family(name, Kind::Gauge, "Sessions by state.");
    let c = &s.sessions;
    for (state, n) in [
        ("starting", c.starting),
        ("idle", c.idle),
        ("busy", c.busy),
        ("exited", c.exited),
    ] {
        x.integer(name, &[("state", state)], n);
    }
    x.one(
        "ai_session_connections",
        Kind::Gauge,
        "Socket client connections open.",
        s.connections,
    );
}

fn exec_metrics(x: &mut Text, s: &StatsResult, t: &Telemetry) {
    let name = "ai_session_execs_total";
    x.family(name, Kind::Counter, "Execs by outcome: ok, nonzero, no_exit_code (exited), timeout, running, waiting_for_input, starting (unfinished), error (the request failed).");
    let e = &s.execs;
    let counts = [
        e.ok,
        e.nonzero,
        e.no_exit_code,
        e.timeout,
        e.running,
        e.waiting_for_input,
        e.starting,
        e.error,
    ];
    for (o, n) in Outcome::ALL.iter().zip(counts) {
        x.integer(name, &[("outcome", o.as_str())], n);
    }
    let name = "ai_session_exec_duration_seconds";
    x.family(
        name,
        Kind::Histogram,
        "Daemon-side time of session.exec requests, from decoding to the answer.",
    );
    x.histogram(name, &[], &exec_histogram(t));
    let name = "ai_session_exec_pty_duration_seconds";
    x.family(
        name,
        Kind::Histogram,
        "Time each exec's command ran in its PTY (ExecResult.duration_ms).",
    );
    x.histogram(name, &[], &t.exec_pty.snapshot());
    x.one(
        "ai_session_exec_output_bytes_total",
        Kind::Counter,
        "Bytes of output the execs' commands wrote (escapes included).",
        s.output_bytes,
    );
    let name = "ai_session_exec_tokens_total";
    x.family(name, Kind::Counter, "Tokens of the execs' raw output (kind=raw) and of the compact views returned (kind=returned).");
    x.integer(name, &[("kind", "raw")], s.tokens.raw);
    x.integer(name, &[("kind", "returned")], s.tokens.returned);
    x.one(
        "ai_session_exec_views_total",
        Kind::Counter,
        "Execs whose result carried a compact view (those counted in ai_session_exec_tokens_total).",
        s.tokens.execs_with_view,
    );
}

fn request_metrics(x: &mut Text, t: &Telemetry) {
    let names: Vec<&str> = METHODS
        .iter()
        .map(|m| m.name)
        .chain([UNKNOWN_METHOD])
        .collect();
    let name = "ai_session_requests_total";
    x.family(
        name,
        Kind::Counter,
        "Requests by method and result: ok, denied (no capability), error.",
    );
    for (method, m) in names.iter().zip(&t.methods) {
        for (i, result) in RESULTS.iter().enumerate() {
            let n = m.results[i].load(Ordering::Relaxed);
            x.integer(name, &[("method", method), ("result", result)], n);
        }
    }
    let name = "ai_session_request_duration_seconds";
    x.family(
        name,
        Kind::Histogram,
        "Daemon-side time of requests on the hot paths (exec, context, store), by method.",
    );
    for (method, m) in names.iter().zip(&t.methods) {
        if let Some(h) = &m.duration {
            x.histogram(name, &[("method", method)], &h.snapshot());
        }
    }
    x.one(
        "ai_session_capability_denials_total",
        Kind::Counter,
        "Requests refused for want of a capability.",
        t.denials.load(Ordering::Relaxed),
    );
    x.one(
        "ai_session_http_unauthorized_total",
        Kind::Counter,
        "HTTP requests refused for a missing or invalid token.",
        t.unauthorized.load(Ordering::Relaxed),
    );
}

fn coordination_metrics(x: &mut Text, s: &StatsResult) {
    x.one(
        "ai_session_bus_messages_total",
        Kind::Counter,
        "Messages accepted by bus.publish, bus.send, bus.broadcast, bus.request and bus.reply.",
        s.bus.messages,
    );
    x.one(
        "ai_session_bus_topics",
        Kind::Gauge,
        "Bus topics with at least one subscriber.",
        s.bus.topics,
    );
    x.one(
        "ai_session_bus_dead_letters_queued",
        Kind::Gauge,
        "Entries held in the dead-letter queue.",
        s.bus.dead_letters_queued,
    );
    x.one(
        "ai_session_bus_dead_letters_total",
        Kind::Counter,
        "Entries ever added to the dead-letter queue.",
        s.bus.dead_letters_total,
    );
    let name = "ai_session_tasks";
    x.family(
        name,
        Kind::Gauge,
        "Coordinator tasks by state (queued is the queue's depth).",
    );
    let c = &s.tasks;
    for (state, n) in [
        ("queued", c.queued),
        ("assigned", c.assigned),
        ("running", c.running),
        ("done", c.done),
        ("failed", c.failed),
        ("dead_lettered", c.dead_lettered),
    ] {
        x.integer(name, &[("state", state)], n);
    }
}

fn resource_metrics(x: &mut Text, s: &StatsResult) {
    x.one_f(
        "ai_session_store_open",
        Kind::Gauge,
        "1 while the session store is open (0: persistence is off).",
        flag(s.store.open),
    );
    x.one(
        "ai_session_store_write_failures_total",
        Kind::Counter,
        "Store writes that failed since start.",
        s.store.write_failures,
    );
    x.one(
        "ai_session_store_disk_full_total",
        Kind::Counter,
        "Store writes that failed on a full file system.",
        s.store.disk_full,
    );
    x.one(
        "ai_session_store_load_errors",
        Kind::Gauge,
        "Problems met while loading the store at start.",
        s.store.load_errors,
    );
    x.one_f(
        "ai_session_audit_ok",
        Kind::Gauge,
        "1 while every action is recorded in the audit log.",
        flag(s.audit.ok),
    );
    x.one_f(
        "ai_session_audit_writes_refused",
        Kind::Gauge,
        "1 while writes are refused until the audit log is repaired (audit.repair).",
        flag(s.audit.writes_refused),
    );
    x.one(
        "ai_session_audit_last_seq",
        Kind::Gauge,
        "Sequence number of the audit log's last entry.",
        s.audit.last_seq,
    );
    let p = &s.process;
    x.one(
        "ai_session_process_resident_memory_bytes",
        Kind::Gauge,
        "The daemon's resident memory.",
        p.rss_bytes,
    );
    x.one(
        "ai_session_process_open_fds",
        Kind::Gauge,
        "The daemon's open file descriptors.",
        p.open_fds,
    );
    if let Some(max) = p.max_fds {
        x.one(
            "ai_session_process_max_fds",
            Kind::Gauge,
            "The daemon's open-file limit.",
            max,
        );
    }
    x.one_f(
        "ai_session_process_cpu_seconds_total",
        Kind::Counter,
        "User and system CPU time of the daemon process.",
        p.cpu_seconds,
    );
    x.one(
        "ai_session_process_threads",
        Kind::Gauge,
        "The daemon's threads.",
        p.threads,
    );
}
