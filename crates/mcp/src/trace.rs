//! The trace a tool call belongs to: the W3C `traceparent`/`tracestate` a client put in the
//! call's `_meta` (as the MCP specification reserves them), with the tool's name and the
//! request's id. Every daemon call the tool makes carries it, so the daemon's spans join the
//! client's trace as children of its tool call.

use ai_session_protocol::trace::TraceContext;
use rmcp::RoleServer;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RequestContext;

tokio::task_local! {
    static TOOL_CALL: TraceContext;
}

/// The trace of the tool call running on this task, if any.
pub fn current() -> Option<TraceContext> {
    TOOL_CALL.try_with(Clone::clone).ok()
}

/// The trace a tool call names: its params' `_meta` when it holds a `traceparent`, else the
/// request context's.
pub(crate) fn of(
    request: &CallToolRequestParams,
    ctx: &RequestContext<RoleServer>,
) -> TraceContext {
    let meta = request
        .meta
        .as_ref()
        .filter(|m| m.get_traceparent().is_some())
        .unwrap_or(&ctx.meta);
    let field = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    TraceContext {
        traceparent: field(meta.get_traceparent()),
        tracestate: field(meta.get_tracestate()),
        tool_name: Some(request.name.to_string()),
        tool_call_id: Some(ctx.id.to_string()),
    }
}

/// Runs `call` with `trace` as the current tool call's trace.
pub(crate) async fn scope<F: std::future::Future>(trace: TraceContext, call: F) -> F::Output {
    TOOL_CALL.scope(trace, call).await
}
