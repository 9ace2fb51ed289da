//! `GET /metrics`: the Prometheus text of `daemon.metrics`. On the main listener it sits behind
//! the token like every route (an API token needs `daemon:status`); `--metrics-listen` serves it
//! alone, without a token, for a scraper on loopback (Prometheus sends no bearer token unless
//! configured to). Both go through the service, so a scrape is counted like any request.

use std::net::SocketAddr;
use std::sync::Arc;

use ai_session_protocol::RpcError;
use ai_session_protocol::registry::{DaemonMetrics, Method as _};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::{rpc_error_response, status_of};
use crate::server::Daemon;

/// The route on the main listener (the token was checked by then; the request's principal is
/// in the task-local the token check set).
pub(crate) async fn route(State(app): State<Arc<super::routes::App>>) -> Response {
    answer(scrape(&app.daemon).await)
}

async fn scrape(daemon: &Arc<Daemon>) -> Result<Value, RpcError> {
    super::routes::rpc(daemon, DaemonMetrics::NAME, json!({})).await
}

fn answer(result: Result<Value, RpcError>) -> Response {
    match result {
        Ok(value) => {
            let text = value
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            (
                [(header::CONTENT_TYPE, crate::telemetry::CONTENT_TYPE)],
                text,
            )
                .into_response()
        }
        Err(err) => rpc_error_response(status_of(&err), &err),
    }
}

/// The `--metrics-listen` server: `/metrics` only, no token, behind the `Host` and `Origin`
/// check (a page whose name points at loopback must not read it either). Outside a token's
/// scope the service sees the HTTP server's own principal, which may read the figures.
pub(crate) fn scrape_router(daemon: Arc<Daemon>, bound: SocketAddr, allow_remote: bool) -> Router {
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let daemon = daemon.clone();
                async move { answer(scrape(&daemon).await) }
            }),
        )
        .fallback(super::error::not_found)
        .method_not_allowed_fallback(super::error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            super::origin::Origins::new(bound, allow_remote),
            super::origin::check,
        ))
}
