//! `/mcp`: the Model Context Protocol over streamable HTTP (rmcp's server transport), serving the
//! same tools as `ai-session mcp`. Each MCP session gets the MCP crate's server, a client of this
//! daemon's own socket, so the tools behave exactly as over stdio.

use std::sync::Arc;

use ai_session_mcp::{AiSessionMcp, Selector};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::server::Daemon;

pub(crate) type McpService = StreamableHttpService<AiSessionMcp, LocalSessionManager>;

/// The `/mcp` service and the token that ends its sessions when the server stops.
pub(crate) fn service(daemon: &Arc<Daemon>, allow_remote: bool) -> (McpService, CancellationToken) {
    let sel = Selector {
        label: None,
        socket: Some(daemon.paths.socket.clone()),
    };
    let cancel = CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default().with_cancellation_token(cancel.clone());
    if allow_remote {
        // The SDK's Host check guards loopback servers against DNS rebinding; a server meant to
        // be reached under other names relies on the bearer token alone.
        config = config.disable_allowed_hosts();
    }
    let service = StreamableHttpService::new(
        move || Ok(AiSessionMcp::new(sel.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    (service, cancel)
}
