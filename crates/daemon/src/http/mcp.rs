//! `/mcp`: the Model Context Protocol over streamable HTTP (rmcp's server transport), serving the
//! same tools as `ai-session mcp`. Each MCP session gets the MCP crate's server over an
//! in-process [`Backend`]: its tools call the daemon's service directly, as the server's owner
//! (only the owner's token reaches `/mcp`), on a [`Caller`] of their own that lives as long as
//! the MCP session (agents it registers leave with it, as with a socket connection).

use std::sync::Arc;

use ai_session_mcp::{AiSessionMcp, Backend, BoxFuture, ToolSet};
use ai_session_protocol::RpcError;
use ai_session_protocol::registry::{Method, SessionSubscribe};
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::access::Principal;
use crate::server::Daemon;
use crate::service::Caller;

/// The SDK's streamable-HTTP service, and its session manager (to answer `DELETE` of a session
/// it does not know).
#[derive(Clone)]
pub(crate) struct McpService {
    http: StreamableHttpService<AiSessionMcp, LocalSessionManager>,
    sessions: Arc<LocalSessionManager>,
}

impl McpService {
    /// Serves one request. `DELETE /mcp` ends the session its `Mcp-Session-Id` names (`202`,
    /// and the session's agents leave), as the SDKs' `terminateSession` expects; an id that is
    /// not a live session (ended already, or never given) is `404`, as the specification says,
    /// where the SDK alone would answer `202`.
    pub(crate) async fn handle(&self, req: axum::extract::Request) -> axum::response::Response {
        if req.method() == axum::http::Method::DELETE
            && let Some(id) = req
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
        {
            let id: rmcp::transport::common::server_side_http::SessionId = id.to_owned().into();
            if !self.sessions.has_session(&id).await.unwrap_or(false) {
                return super::error::error_response(
                    axum::http::StatusCode::NOT_FOUND,
                    "not_found",
                    "no MCP session with this Mcp-Session-Id (it ended, or never existed)",
                    Some("initialize a new session"),
                );
            }
        }
        self.http.handle(req).await.map(axum::body::Body::new)
    }
}

/// Notification lines queued for one followed session before the stream waits.
const QUEUE: usize = 256;

/// The service, in-process, for one MCP session.
struct InProcess {
    daemon: Arc<Daemon>,
    caller: Arc<Caller>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.caller.close(&self.daemon);
    }
}

impl Backend for InProcess {
    fn call<'a>(
        &'a self,
        method: &'a str,
        params: Value,
    ) -> BoxFuture<'a, Result<Value, RpcError>> {
        // Inside a tool call, its trace (`_meta.traceparent`) is on this task.
        Box::pin(crate::service::handle_traced(
            &self.daemon,
            &self.caller,
            method,
            params,
            ai_session_mcp::current_trace(),
        ))
    }

    fn subscribe<'a>(
        &'a self,
        target: &'a str,
    ) -> BoxFuture<'a, Result<mpsc::Receiver<String>, RpcError>> {
        Box::pin(async move {
            // A stream of its own, as a second socket connection would be.
            let (tx, rx) = mpsc::channel(QUEUE);
            let caller = Caller::new(Principal::Http, tx);
            let params = serde_json::json!({ "target": target });
            let result =
                crate::service::handle(&self.daemon, &caller, SessionSubscribe::NAME, params).await;
            caller.close(&self.daemon);
            result.map(|_| rx)
        })
    }
}

/// The `/mcp` service, offering the tools of `tools`, and the token that ends its sessions when
/// the server stops.
pub(crate) fn service(
    daemon: &Arc<Daemon>,
    allow_remote: bool,
    tools: ToolSet,
) -> (McpService, CancellationToken) {
    let cancel = CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default().with_cancellation_token(cancel.clone());
    if allow_remote {
        // The SDK's Host check guards loopback servers against DNS rebinding; a server meant to
        // be reached under other names relies on the bearer token alone.
        config = config.disable_allowed_hosts();
    }
    let daemon = daemon.clone();
    let sessions = Arc::new(LocalSessionManager::default());
    let http = StreamableHttpService::new(
        move || {
            let backend = InProcess {
                daemon: daemon.clone(),
                caller: Caller::detached(Principal::Http),
            };
            Ok(AiSessionMcp::with_backend(Arc::new(backend), &tools))
        },
        sessions.clone(),
        config,
    );
    (McpService { http, sessions }, cancel)
}
