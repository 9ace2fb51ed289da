//! The daemon's HTTP server (`ai-session serve`, `daemon.serve`): REST endpoints onto the same
//! methods as the socket, WebSocket streams of a session's output and of bus topics, the OpenAPI
//! document at `/openapi.json`, and MCP over streamable HTTP at `/mcp`. Every route needs the
//! bearer token kept in the daemon's state directory. `docs/http.md` describes the API.
//!
//! `auth` owns the token; `routes` the route table and the REST handler that turns a request
//! into a protocol call through `dispatch`; `openapi` builds the document from that table and
//! the protocol's JSON Schemas; `stream` the WebSockets; `mcp` the `/mcp` service; `metrics`
//! `/metrics` and the token-less `--metrics-listen` server.

mod auth;
mod dashboard;
mod error;
mod hint;
mod mcp;
mod metrics;
mod openapi;
mod origin;
mod routes;
mod stream;
mod view;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use ai_session_protocol::hint::Advice;
use ai_session_protocol::methods::{ServeParams, ServeResult};
use ai_session_protocol::registry::{DaemonServe, Method as _};
use ai_session_protocol::{ErrorKind, RpcError};

use crate::server::Daemon;

pub(crate) use dashboard::web_login;

/// Where `ai-session serve` listens when no address is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7717";

/// The daemon's HTTP server, when it runs. At most one per daemon.
#[derive(Default)]
pub(crate) struct Http {
    running: tokio::sync::Mutex<Option<Running>>,
    /// The dashboard's login codes and sessions.
    logins: dashboard::Logins,
}

struct Running {
    addr: SocketAddr,
    token_file: PathBuf,
    server: tokio::task::JoinHandle<()>,
    mcp_cancel: tokio_util::sync::CancellationToken,
    /// The `/metrics`-only server without a token (`--metrics-listen`), when asked for.
    metrics: Option<(SocketAddr, tokio::task::JoinHandle<()>)>,
}

impl Http {
    /// Stops accepting HTTP connections (the daemon is shutting down).
    pub(crate) async fn stop(&self) {
        if let Some(running) = self.running.lock().await.take() {
            running.server.abort();
            running.mcp_cancel.cancel();
            if let Some((_, metrics)) = running.metrics {
                metrics.abort();
            }
        }
    }
}

/// Starts the HTTP server on `p.listen` (idempotent: the same or no address reports the running
/// server; another address is a conflict), and the `/metrics` server on `p.metrics_listen`
/// when given (likewise).
pub(crate) async fn start(daemon: &Arc<Daemon>, p: ServeParams) -> Result<ServeResult, RpcError> {
    let mut slot = daemon.http.running.lock().await;
    let wanted = p.listen.as_deref().map(parse_listen).transpose()?;
    let metrics = p.metrics_listen.as_deref().map(parse_listen).transpose()?;
    if let Some(running) = slot.as_mut() {
        conflict("HTTP server", wanted, Some(running.addr))?;
        if let Some(m) = metrics {
            conflict(
                "/metrics server",
                Some(m),
                running.metrics.as_ref().map(|r| r.0),
            )?;
            if running.metrics.is_none() {
                running.metrics = Some(serve_metrics(daemon, m, p.allow_remote).await?);
            }
        }
        return Ok(result(running, false));
    }
    let addr = match wanted {
        Some(addr) => addr,
        None => parse_listen(
            daemon
                .config
                .http
                .listen
                .as_deref()
                .unwrap_or(DEFAULT_LISTEN),
        )?,
    };
    remote_allowed(addr, p.allow_remote)?;
    let token = auth::Token::load_or_create(&daemon.paths.data).map_err(|e| {
        RpcError::new(ErrorKind::Internal, e.to_string())
            .with_hint("check the permissions of the daemon's state directory")
    })?;
    // `[mcp] tools` of the configuration file: read when the server starts, like `--tools` of
    // `ai-session mcp`; a wrong value refuses to serve, naming the file and the key.
    let tools = ai_session_mcp::tool_set(&daemon.paths.home, None).map_err(|e| {
        RpcError::new(ErrorKind::InvalidParams, e)
            .with_hint("fix the configuration file, then serve again")
    })?;
    let listener = bind(addr, "listen").await?;
    let bound = listener.local_addr().unwrap_or(addr);
    let metrics = match metrics {
        Some(m) => Some(serve_metrics(daemon, m, p.allow_remote).await?),
        None => None,
    };
    let token_file = token.path().to_owned();
    let (router, mcp_cancel) = guarded("building the routes", || {
        routes::router(daemon.clone(), token, bound, p.allow_remote, tools)
    })?;
    // The peer's address is kept for the audit entries of refused requests.
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, service).await {
            tracing::error!("the HTTP server stopped: {e}");
        }
    });
    tracing::info!(listen = %bound, "HTTP server listening");
    let running = slot.insert(Running {
        addr: bound,
        token_file,
        server,
        mcp_cancel,
        metrics,
    });
    Ok(result(running, true))
}

/// Runs `build`; a panic in it (axum refuses two routes on one path) becomes an error for the
/// client that asked to serve, instead of a request that is never answered. The listeners bound
/// so far close with the error; the daemon and its sessions go on.
fn guarded<T>(what: &str, build: impl FnOnce() -> T) -> Result<T, RpcError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(build)).map_err(|panic| {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "it panicked".to_owned());
        RpcError::new(
            ErrorKind::Internal,
            format!("cannot start the HTTP server: {what} failed: {why}"),
        )
        .with_hint("a defect of this daemon build: its log has the backtrace; report it")
    })
}

/// Another address than the running server's is a conflict (port 0 on the same IP is not).
fn conflict(
    what: &str,
    wanted: Option<SocketAddr>,
    running: Option<SocketAddr>,
) -> Result<(), RpcError> {
    let (Some(w), Some(r)) = (wanted, running) else {
        return Ok(());
    };
    if w == r || (w.port() == 0 && w.ip() == r.ip()) {
        return Ok(());
    }
    Err(RpcError::new(
        ErrorKind::Conflict,
        format!("the {what} already listens on {r}"),
    )
    .with_hint(
        "use that address, or stop the daemon (`ai-session daemon stop`) to listen elsewhere",
    ))
}

fn remote_allowed(addr: SocketAddr, allow_remote: bool) -> Result<(), RpcError> {
    if addr.ip().is_loopback() || allow_remote {
        return Ok(());
    }
    Err(RpcError::new(
        ErrorKind::PermissionDenied,
        format!("{addr} is not a loopback address: the HTTP API controls every session"),
    )
    .with_hint("listen on 127.0.0.1 or [::1], or pass --allow-remote (put TLS in front of it)"))
}

/// Binds `addr`, given as `field` of `daemon.serve` (`listen` or `metrics_listen`), which the
/// hint names in the caller's syntax.
async fn bind(addr: SocketAddr, field: &str) -> Result<tokio::net::TcpListener, RpcError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        let advice = if e.kind() == std::io::ErrorKind::AddrInUse {
            Advice::new(
                "another program uses that port: pick another with {0} (port 0 picks a free one)",
            )
        } else {
            Advice::new("check the address, or pick another with {0}")
        };
        RpcError::new(ErrorKind::Internal, format!("cannot listen on {addr}: {e}"))
            .with_advice(advice.field(DaemonServe::NAME, field))
    })
}

/// Binds and serves `/metrics` alone on `addr`.
async fn serve_metrics(
    daemon: &Arc<Daemon>,
    addr: SocketAddr,
    allow_remote: bool,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), RpcError> {
    remote_allowed(addr, allow_remote)?;
    let listener = bind(addr, "metrics_listen").await?;
    let bound = listener.local_addr().unwrap_or(addr);
    let router = metrics::scrape_router(daemon.clone(), bound, allow_remote);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("the /metrics server stopped: {e}");
        }
    });
    tracing::info!(listen = %bound, "/metrics server listening");
    Ok((bound, server))
}

fn result(running: &Running, started: bool) -> ServeResult {
    ServeResult {
        url: format!("http://{}", running.addr),
        listen: running.addr.to_string(),
        token_file: running.token_file.display().to_string(),
        started,
        metrics_listen: running.metrics.as_ref().map(|(a, _)| a.to_string()),
    }
}

/// `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT` or a bare `PORT` (on 127.0.0.1).
fn parse_listen(s: &str) -> Result<SocketAddr, RpcError> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = s
        .strip_prefix("localhost:")
        .and_then(|p| p.parse::<u16>().ok())
    {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    Err(RpcError::new(
        ErrorKind::InvalidParams,
        format!("invalid listen address '{s}'"),
    )
    .with_hint(format!(
        "give IP:PORT, e.g. {DEFAULT_LISTEN} (port 0 picks a free one)"
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("127.0.0.1:80").unwrap().to_string(),
            "127.0.0.1:80"
        );
        assert_eq!(parse_listen("[::1]:80").unwrap().to_string(), "[::1]:80");
        assert_eq!(parse_listen("8080").unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(
            parse_listen("localhost:9").unwrap().to_string(),
            "127.0.0.1:9"
        );
        let e = parse_listen("example.com:80").unwrap_err();
        assert_eq!(e.kind(), Some(ErrorKind::InvalidParams));
    }

    /// axum panics on two routes on one path: the start answers with that, as an error.
    #[test]
    fn a_router_that_panics_while_built_is_an_error() {
        let e = guarded("building the routes", || {
            axum::Router::<()>::new()
                .route("/x", axum::routing::get(|| async { "a" }))
                .route("/x", axum::routing::get(|| async { "b" }))
        })
        .expect_err("two routes on one path are refused");
        assert_eq!(e.kind(), Some(ErrorKind::Internal));
        assert!(
            e.message.contains("building the routes failed"),
            "{}",
            e.message
        );
    }
}
