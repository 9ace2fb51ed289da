//! Spans: every request the service handles becomes one, exported over OTLP
//! ([`super::export`]). A request runs inside a [`RequestScope`] (a task-local the service
//! sets): the caller's trace it joins, and what observers learn while it runs (the exec's
//! attributes from `ExecFinished`, the anomalies raised). The `Handled` event ends it: the span
//! is built then, with its start taken from the request's daemon-side time, so nothing is
//! allocated for tracing before the request has its answer.
//!
//! Exec spans follow the OpenTelemetry GenAI and process conventions
//! (`gen_ai.operation.name = execute_tool`, `gen_ai.tool.*`, `process.*`); the rest are
//! `ai_session.*` (listed in `docs/observability.md`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use ai_session_protocol::methods::{ExecResult, ExecStatus, SessionInfo};
use ai_session_protocol::registry::{self as reg, Method as _, MethodSpec};
use ai_session_protocol::trace::TraceContext;
use ai_session_protocol::{ErrorKind, RpcError};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanBuilder, SpanKind, Status, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use serde_json::Value;

use crate::access::Principal;

/// `gen_ai.tool.name` of execs that did not come from an MCP tool call: the exec tool's name.
fn exec_tool_name() -> &'static str {
    reg::SessionExec::SPEC
        .mcp
        .map_or(reg::SessionExec::NAME, |m| m.tool)
}

tokio::task_local! {
    static REQUEST: RequestScope;
    /// The trace of a front end's request that reaches the service through code that does
    /// not carry it (an HTTP route's handler).
    static CALLER: Option<TraceContext>;
}

/// Runs `call` with `trace` as its caller's trace: the service's [`crate::service::handle`]
/// calls made inside it join it. (A plain function, as every wrapper of a request's future
/// here: an `async fn` would hold `call` twice, as its argument and inside the scope it
/// awaits, and a request's future is kilobytes that every spawn copies.)
pub(crate) fn with_caller_trace<F: std::future::Future>(
    trace: Option<TraceContext>,
    call: F,
) -> impl std::future::Future<Output = F::Output> {
    CALLER.scope(trace, call)
}

/// The trace set by [`with_caller_trace`] on this task, if any.
pub(crate) fn caller_trace() -> Option<TraceContext> {
    CALLER.try_with(Clone::clone).ok().flatten()
}

/// The W3C `traceparent` and `tracestate` headers of an HTTP request.
pub(crate) fn http_trace(headers: &axum::http::HeaderMap) -> Option<TraceContext> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    Some(TraceContext {
        traceparent: Some(header("traceparent")?),
        tracestate: header("tracestate"),
        ..TraceContext::default()
    })
}

/// One request's tracing state, from its arrival to its `Handled` event.
pub(crate) struct RequestScope {
    /// The caller's span (from `traceparent`), or none: the span is a root.
    parent: Context,
    tool_name: Option<String>,
    tool_call_id: Option<String>,
    /// Filled by `ExecFinished`.
    exec: Mutex<Vec<KeyValue>>,
    /// Anomalies raised while the request ran, as span events.
    events: Mutex<Vec<(String, Vec<KeyValue>)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a session's spans say about it, kept from its `SessionCreated`.
#[derive(Clone)]
struct SessionFacts {
    pid: i64,
    sandbox: Option<String>,
}

/// The tracer, and what it remembers between events.
pub(crate) struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    record_commands: bool,
    sessions: Mutex<HashMap<String, SessionFacts>>,
}

impl Tracing {
    pub(crate) fn new(provider: SdkTracerProvider, record_commands: bool) -> Self {
        use opentelemetry::trace::TracerProvider as _;
        let tracer = provider.tracer("ai-session");
        Self {
            provider,
            tracer,
            record_commands,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// The scope a request runs in, joining `trace` when the caller sent one.
    pub(crate) fn scope(trace: Option<TraceContext>) -> RequestScope {
        let trace = trace.unwrap_or_default();
        RequestScope {
            parent: parent_context(trace.traceparent.as_deref(), trace.tracestate.as_deref()),
            tool_name: trace.tool_name,
            tool_call_id: trace.tool_call_id,
            exec: Mutex::new(Vec::new()),
            events: Mutex::new(Vec::new()),
        }
    }

    /// Runs `request` inside `scope` (not an `async fn`: see [`with_caller_trace`]).
    pub(crate) fn run<F: std::future::Future>(
        scope: RequestScope,
        request: F,
    ) -> impl std::future::Future<Output = F::Output> {
        REQUEST.scope(scope, request)
    }

    pub(crate) fn session_created(&self, info: &SessionInfo) {
        let facts = SessionFacts {
            pid: i64::from(info.pid),
            sandbox: info.sandbox.as_ref().map(|s| s.policy.clone()),
        };
        lock(&self.sessions).insert(info.name.clone(), facts);
    }

    pub(crate) fn session_killed(&self, name: &str) {
        lock(&self.sessions).remove(name);
    }

    /// An exec finished: its attributes go on its request's span, or on a span of its own when
    /// no request runs it (a restore's `--rerun-last`).
    pub(crate) fn exec_finished(&self, exec: &ExecSpan<'_>) {
        let facts = lock(&self.sessions).get(exec.session).cloned();
        let attributes = self.exec_attributes(exec, facts.as_ref());
        let in_request = REQUEST
            .try_with(|scope| {
                lock(&scope.exec).extend(attributes.iter().cloned());
            })
            .is_ok();
        if !in_request {
            let end = SystemTime::now();
            let start = end
                .checked_sub(Duration::from_secs_f64(
                    exec.result.duration_ms.max(0.0) / 1000.0,
                ))
                .unwrap_or(end);
            let mut span = SpanBuilder::from_name(format!("execute_tool {}", exec_tool_name()))
                .with_kind(SpanKind::Internal)
                .with_start_time(start)
                .with_attributes(attributes)
                .start_with_context(&self.tracer, &Context::new());
            span.end_with_timestamp(end);
        }
    }

    fn exec_attributes(&self, e: &ExecSpan<'_>, facts: Option<&SessionFacts>) -> Vec<KeyValue> {
        let r = e.result;
        let mut a = vec![
            KeyValue::new("gen_ai.operation.name", "execute_tool"),
            KeyValue::new("ai_session.session.name", e.session.to_owned()),
            KeyValue::new("ai_session.exec.status", status_name(r.status)),
            KeyValue::new("ai_session.exec.duration_ms", r.duration_ms),
            KeyValue::new(
                "ai_session.exec.output_bytes",
                as_i64(r.output_end.saturating_sub(r.output_start)),
            ),
            KeyValue::new("ai_session.exec.truncated", r.truncated),
            KeyValue::new("ai_session.exec.completion", completion_name(r)),
        ];
        if let Some(code) = r.exit_code {
            a.push(KeyValue::new("process.exit.code", i64::from(code)));
        }
        if let Some(name) = executable_name(e.command) {
            a.push(KeyValue::new("process.executable.name", name));
        }
        if self.record_commands {
            a.push(KeyValue::new(
                "ai_session.exec.command",
                super::redact::command(e.command),
            ));
        }
        if let Some(f) = facts {
            a.push(KeyValue::new("process.pid", f.pid));
            if let Some(s) = &f.sandbox {
                a.push(KeyValue::new("ai_session.sandbox.profile", s.clone()));
            }
        }
        if let Some(fg) = &r.foreground {
            a.push(KeyValue::new(
                "ai_session.exec.foreground_pid",
                i64::from(fg.pid),
            ));
        }
        if let Some(agent) = e.agent {
            a.push(KeyValue::new("ai_session.agent", agent.to_owned()));
        }
        if let Some(cwd) = &r.cwd {
            a.push(KeyValue::new("ai_session.cwd", cwd.clone()));
        }
        if let Some(c) = &r.compact {
            view_attributes(c, &mut a);
        }
        if let Some(d) = &r.degraded {
            a.push(KeyValue::new("ai_session.exec.degraded", d.clone()));
        }
        a
    }

    /// A request was handled: its span, with what its scope gathered.
    pub(crate) fn handled(&self, h: &HandledSpan<'_>) {
        let end = SystemTime::now();
        let start = end.checked_sub(h.elapsed).unwrap_or(end);
        let taken = REQUEST.try_with(|scope| {
            (
                scope.parent.clone(),
                scope.tool_name.clone(),
                scope.tool_call_id.clone(),
                std::mem::take(&mut *lock(&scope.exec)),
                std::mem::take(&mut *lock(&scope.events)),
            )
        });
        let (parent, tool, call_id, exec, events) =
            taken.unwrap_or_else(|_| (Context::new(), None, None, Vec::new(), Vec::new()));
        let is_exec = !exec.is_empty();
        let mut a = request_attributes(h);
        if let Some(id) = &call_id {
            a.push(KeyValue::new("gen_ai.tool.call.id", id.clone()));
        }
        let tool = tool.or_else(|| is_exec.then(|| exec_tool_name().to_owned()));
        if let Some(t) = &tool {
            a.push(KeyValue::new("gen_ai.tool.name", t.clone()));
        }
        let name = match (&tool, is_exec || h.method == reg::SessionExec::NAME) {
            (Some(t), true) => format!("execute_tool {t}"),
            (None, true) => format!("execute_tool {}", exec_tool_name()),
            _ => h.method.to_owned(),
        };
        if is_exec || h.method == reg::SessionExec::NAME {
            a.push(KeyValue::new("gen_ai.operation.name", "execute_tool"));
        }
        a.extend(exec);
        let mut span = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes(a)
            .start_with_context(&self.tracer, &parent);
        for (name, attrs) in events {
            span.add_event_with_timestamp(name, end, attrs);
        }
        if let Err(e) = h.result {
            span.set_status(Status::error(e.message.clone()));
        }
        span.end_with_timestamp(end);
    }

    /// Sends what is queued and stops the export thread (at shutdown; blocks up to the export
    /// timeout when the collector does not answer).
    pub(crate) fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!("span export shutdown: {e}");
        }
    }
}

/// An anomaly raised while a request runs: an event on the request's span. False when no
/// request is running on this task.
pub(crate) fn add_event(name: &str, attributes: Vec<KeyValue>) -> bool {
    REQUEST
        .try_with(|scope| lock(&scope.events).push((name.to_owned(), attributes)))
        .is_ok()
}

/// What the `ExecFinished` event gives an exec's span.
pub(crate) struct ExecSpan<'a> {
    pub session: &'a str,
    pub command: &'a str,
    pub result: &'a ExecResult,
    pub agent: Option<&'a str>,
}

/// What the `Handled` event gives a request's span.
pub(crate) struct HandledSpan<'a> {
    pub who: &'a Principal,
    pub spec: Option<&'static MethodSpec>,
    pub method: &'a str,
    pub session: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub result: &'a Result<Value, RpcError>,
    pub elapsed: Duration,
}

fn request_attributes(h: &HandledSpan<'_>) -> Vec<KeyValue> {
    let outcome = match h.result {
        Ok(_) => "ok",
        Err(e) if e.kind() == Some(ErrorKind::PermissionDenied) => "denied",
        Err(_) => "error",
    };
    let mut a = vec![
        KeyValue::new("rpc.system", "jsonrpc"),
        KeyValue::new("rpc.method", h.method.to_owned()),
        KeyValue::new("ai_session.result", outcome),
        KeyValue::new("ai_session.principal", principal_label(h.who)),
        KeyValue::new("ai_session.daemon_ms", h.elapsed.as_secs_f64() * 1000.0),
    ];
    if h.spec.is_none() {
        a.push(KeyValue::new("ai_session.unknown_method", true));
    }
    if let Some(s) = h.session {
        a.push(KeyValue::new("ai_session.session.name", s.to_owned()));
    }
    if let Some(id) = h.session_id {
        a.push(KeyValue::new("ai_session.session.id", id.to_owned()));
    }
    if let Err(e) = h.result {
        a.push(KeyValue::new("error.type", error_type(e)));
    }
    a
}

/// The error's kind as the wire names it (`session_not_found`), else its code.
pub(crate) fn error_type(e: &RpcError) -> String {
    e.kind()
        .and_then(|k| serde_json::to_value(k).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| e.code.to_string())
}

fn view_attributes(compact: &Value, a: &mut Vec<KeyValue>) {
    let num = |k: &str| compact.get(k).and_then(Value::as_u64).map(as_i64);
    if let Some(raw) = num("raw_tokens") {
        a.push(KeyValue::new("ai_session.exec.tokens.raw", raw));
    }
    if let Some(returned) = num("compact_tokens") {
        a.push(KeyValue::new("ai_session.exec.tokens.returned", returned));
    }
    if let Some(budget) = num("budget") {
        a.push(KeyValue::new("ai_session.exec.view.budget", budget));
    }
    let whole = compact
        .get("whole")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    a.push(KeyValue::new(
        "ai_session.exec.view",
        if whole { "whole" } else { "compact" },
    ));
}

pub(crate) fn principal_label(who: &Principal) -> String {
    match who {
        Principal::Owner => "owner".into(),
        Principal::Http => "http".into(),
        Principal::Agent(id) => format!("agent:{id}"),
        Principal::Token(id) => format!("token:{id}"),
    }
}

fn status_name(status: ExecStatus) -> &'static str {
    match status {
        ExecStatus::Exited => "exited",
        ExecStatus::Timeout => "timeout",
        ExecStatus::Running => "running",
        ExecStatus::WaitingForInput => "waiting_for_input",
        ExecStatus::Starting => "starting",
    }
}

fn completion_name(r: &ExecResult) -> String {
    serde_json::to_value(r.completion)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The program a command line runs: its first word that is not a `VAR=value` assignment,
/// without its directory.
pub(crate) fn executable_name(command: &str) -> Option<String> {
    let word = command
        .split_whitespace()
        .find(|w| !is_assignment(w))?
        .trim_matches(|c| c == '\'' || c == '"');
    let name = word.rsplit('/').next().unwrap_or(word);
    (!name.is_empty()).then(|| name.to_owned())
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The caller's span as a parent context; an empty context (a new trace) when `traceparent`
/// is absent or malformed.
fn parent_context(traceparent: Option<&str>, tracestate: Option<&str>) -> Context {
    let Some(tp) = traceparent else {
        return Context::new();
    };
    let mut carrier = HashMap::with_capacity(2);
    carrier.insert("traceparent".to_owned(), tp.to_owned());
    if let Some(ts) = tracestate {
        carrier.insert("tracestate".to_owned(), ts.to_owned());
    }
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        cx
    } else {
        Context::new()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_traceparent_becomes_the_parent_and_a_bad_one_is_ignored() {
        let cx = parent_context(
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            Some("vendor=x"),
        );
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert_eq!(sc.span_id().to_string(), "b7ad6b7169203331");
        assert!(sc.is_remote());
        let bad = parent_context(Some("not-a-traceparent"), None);
        assert!(!bad.span().span_context().is_valid());
    }

    #[test]
    fn the_executable_is_the_first_word_after_assignments() {
        assert_eq!(executable_name("make -j4").as_deref(), Some("make"));
        assert_eq!(
            executable_name("FOO=1 BAR=x /usr/bin/python3 x.py").as_deref(),
            Some("python3")
        );
        assert_eq!(executable_name("   ").as_deref(), None);
    }
}
