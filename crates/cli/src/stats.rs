//! `ai-session stats`: the daemon's figures for a person (`daemon.stats`), as JSON, or in the
//! Prometheus text format (`daemon.metrics`).

use std::process::ExitCode;

use ai_session_client::Selector;
use ai_session_protocol::registry::{DaemonMetrics, DaemonStats, Method as _};
use ai_session_protocol::stats::{DurationSummary, MetricsResult, StatsResult};

use crate::commands::{connect, print_json};
use crate::error::CliError;

pub(crate) async fn run(sel: &Selector, a: crate::StatsArgs) -> Result<ExitCode, CliError> {
    let client = connect(sel, true).await?;
    if a.prometheus {
        let m: MetricsResult = client
            .call(DaemonMetrics::NAME, serde_json::json!({}))
            .await?;
        out!("{}", m.text);
        return Ok(ExitCode::SUCCESS);
    }
    let s: StatsResult = client
        .call(DaemonStats::NAME, serde_json::json!({}))
        .await?;
    if a.json {
        print_json(&s)?;
    } else {
        out!("{}", render(&s));
    }
    Ok(ExitCode::SUCCESS)
}

fn duration(d: &DurationSummary) -> String {
    let q = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.2}"));
    format!(
        "{} (p50 {} ms, p90 {} ms, p99 {} ms)",
        d.count,
        q(d.p50_ms),
        q(d.p90_ms),
        q(d.p99_ms)
    )
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The figures as lines of text, most telling first.
fn render(s: &StatsResult) -> String {
    let mut out = Vec::new();
    let p = &s.process;
    out.push(format!(
        "daemon: pid {}, up {:.0}s, {} resident, {} descriptors{}, {:.2}s CPU, {} threads, {} client(s)",
        p.pid,
        s.uptime_ms as f64 / 1000.0,
        mib(p.rss_bytes),
        p.open_fds,
        p.max_fds.map(|m| format!(" of {m}")).unwrap_or_default(),
        p.cpu_seconds,
        p.threads,
        s.connections
    ));
    if !s.telemetry {
        out.push("telemetry: off (AI_SESSION_TELEMETRY=off): counters are not kept".into());
    }
    let c = &s.sessions;
    out.push(format!(
        "sessions: {} idle, {} busy, {} starting, {} exited",
        c.idle, c.busy, c.starting, c.exited
    ));
    let e = &s.execs;
    out.push(format!(
        "execs: {} ok, {} nonzero, {} without exit code, {} timeout, {} running, {} waiting for input, {} starting, {} failed",
        e.ok, e.nonzero, e.no_exit_code, e.timeout, e.running, e.waiting_for_input, e.starting, e.error
    ));
    out.push(format!("  daemon time: {}", duration(&s.exec_duration)));
    out.push(format!(
        "  command time: {}",
        duration(&s.exec_pty_duration)
    ));
    out.push(format!("  output: {} bytes", s.output_bytes));
    let t = &s.tokens;
    if t.execs_with_view > 0 {
        out.push(format!(
            "  tokens: {} raw, {} returned ({:.0}% of raw) over {} execs",
            t.raw,
            t.returned,
            100.0 * t.returned as f64 / t.raw.max(1) as f64,
            t.execs_with_view
        ));
    }
    out.push(format!(
        "requests: {} refused for a capability, {} HTTP without a valid token",
        s.capability_denials, s.http_unauthorized
    ));
    for m in &s.requests {
        let time = m.duration.as_ref().map(duration).unwrap_or_default();
        out.push(format!(
            "  {:<20} {} ok, {} denied, {} error  {time}",
            m.method, m.ok, m.denied, m.error
        ));
    }
    out.push(format!(
        "bus: {} messages, {} topics, {} dead letters ({} ever)",
        s.bus.messages, s.bus.topics, s.bus.dead_letters_queued, s.bus.dead_letters_total
    ));
    let k = &s.tasks;
    out.push(format!(
        "tasks: {} queued, {} assigned, {} running, {} done, {} failed, {} dead-lettered",
        k.queued, k.assigned, k.running, k.done, k.failed, k.dead_lettered
    ));
    out.push(format!(
        "store: {}, {} failed writes ({} on a full disk); audit log: {}",
        if s.store.open { "open" } else { "OFF" },
        s.store.write_failures,
        s.store.disk_full,
        match (s.audit.ok, s.audit.writes_refused) {
            (true, _) => "ok",
            (false, true) => "UNAVAILABLE, writes refused",
            (false, false) => "UNAVAILABLE, not recording",
        }
    ));
    if !s.session_usage.is_empty() {
        out.push("session          pid  procs      cpu       rss".into());
        for u in &s.session_usage {
            out.push(format!(
                "{:<12} {:>7} {:>6} {:>7.2}s {:>9}",
                u.name,
                u.pid,
                u.processes,
                u.cpu_seconds,
                mib(u.rss_bytes)
            ));
        }
    }
    for a in &s.agents {
        out.push(format!(
            "agent {}: {} execs, {} raw tokens, {} returned",
            a.agent, a.execs, a.raw_tokens, a.returned_tokens
        ));
    }
    out.push(String::new());
    out.join("\n")
}
