//! Errors as HTTP responses: the status of each protocol error kind, and the JSON body every
//! error has, `{"error": {kind, code, message, hint?, sessions?, reason?}}`.

use ai_session_protocol::{ErrorKind, RpcError};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

/// The HTTP status of a protocol error.
pub(crate) fn status_of(err: &RpcError) -> StatusCode {
    use ErrorKind as K;
    match err.kind() {
        Some(K::ParseError | K::InvalidRequest | K::VersionMismatch) => StatusCode::BAD_REQUEST,
        Some(K::InvalidParams | K::SpawnFailed) => StatusCode::UNPROCESSABLE_ENTITY,
        Some(K::MethodNotFound | K::SessionNotFound | K::NotFound) => StatusCode::NOT_FOUND,
        Some(
            K::SessionExists | K::SessionBusy | K::SessionExited | K::Unsupported | K::Conflict,
        ) => StatusCode::CONFLICT,
        Some(K::PermissionDenied) => StatusCode::FORBIDDEN,
        Some(K::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
        // A wait or request that reached the deadline its caller chose is the caller's outcome,
        // not a failure of this server (nor of a gateway): 408, not 504.
        Some(K::Timeout) => StatusCode::REQUEST_TIMEOUT,
        Some(K::ShuttingDown | K::AuditUnavailable | K::Overloaded) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Some(K::Internal) | None => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error body: `{"error": {kind, code, message, hint?, sessions?, reason?}}`.
#[derive(Serialize, JsonSchema)]
pub(crate) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, JsonSchema)]
pub(crate) struct ErrorDetail {
    /// The stable kind (`docs/protocol.md`), or `unauthorized`, `not_found`,
    /// `method_not_allowed` for HTTP-level errors.
    pub kind: String,
    /// The protocol's numeric code, or the HTTP status for HTTP-level errors.
    pub code: i64,
    /// What was wrong.
    pub message: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// For `session_not_found`: the sessions that exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<Vec<String>>,
    /// A finer reason (the coordinator's error code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub(crate) fn error_body(
    kind: &str,
    code: i64,
    message: &str,
    hint: Option<&str>,
) -> axum::Json<ErrorBody> {
    axum::Json(ErrorBody {
        error: ErrorDetail {
            kind: kind.to_owned(),
            code,
            message: message.to_owned(),
            hint: hint.map(str::to_owned),
            sessions: None,
            reason: None,
        },
    })
}

pub(crate) fn error_response(
    status: StatusCode,
    kind: &str,
    message: &str,
    hint: Option<&str>,
) -> Response {
    (
        status,
        error_body(kind, i64::from(status.as_u16()), message, hint),
    )
        .into_response()
}

pub(crate) fn rpc_error_response(status: StatusCode, err: &RpcError) -> Response {
    let mut err = err.clone();
    err.rephrase(&super::hint::Http);
    let kind = err
        .kind()
        .and_then(|k| serde_json::to_value(k).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "internal".to_owned());
    let body = ErrorBody {
        error: ErrorDetail {
            kind,
            code: err.code,
            message: err.message.clone(),
            hint: err.data.hint.clone(),
            sessions: err.data.sessions.clone(),
            reason: err.data.reason.clone(),
        },
    };
    (status, axum::Json(body)).into_response()
}

pub(crate) async fn not_found(req: Request) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no route {} {}", req.method(), req.uri().path()),
        Some("GET /openapi.json lists the routes"),
    )
}

pub(crate) async fn method_not_allowed(req: Request) -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("{} is not allowed on {}", req.method(), req.uri().path()),
        Some("GET /openapi.json lists the methods of each route"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_error_kind_has_a_client_status_except_internal_and_shutdown() {
        for kind in [
            ErrorKind::SessionNotFound,
            ErrorKind::InvalidParams,
            ErrorKind::Conflict,
            ErrorKind::SessionBusy,
        ] {
            assert!(status_of(&RpcError::new(kind, "x")).is_client_error());
        }
        assert_eq!(
            status_of(&RpcError::new(ErrorKind::Timeout, "x")),
            StatusCode::REQUEST_TIMEOUT
        );
    }
}
