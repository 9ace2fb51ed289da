//! The HTTP server's bearer token: 32 random bytes as hex, created on first start in the
//! daemon's state directory (`http.token`, mode 0600), checked in constant time on every request.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// The token file's name inside the daemon's state directory.
pub(crate) const TOKEN_FILE: &str = "http.token";

/// The query parameter that carries the token on WebSocket upgrades, for clients (browsers)
/// that cannot set headers. RFC 6750 names it so.
pub(crate) const QUERY_PARAM: &str = "access_token";

#[derive(Clone)]
pub(crate) struct Token {
    secret: Arc<str>,
    path: PathBuf,
}

impl Token {
    /// Reads the token file, or creates it with a fresh token. A file readable by others is made
    /// private again (the token is still good: only the file's owner could have written it).
    pub(crate) fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(TOKEN_FILE);
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        let secret = match created {
            Ok(mut file) => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| {
                    std::io::Error::other(format!("no randomness for the HTTP token: {e}"))
                })?;
                let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                file.write_all(secret.as_bytes())?;
                file.sync_all()?;
                secret
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = std::fs::metadata(&path)?;
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!("{} was readable by others: made private", path.display());
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
                let secret = std::fs::read_to_string(&path)?.trim().to_owned();
                if secret.len() < 32 {
                    return Err(std::io::Error::other(format!(
                        "{} does not hold a token; delete it and serve again to create one",
                        path.display()
                    )));
                }
                secret
            }
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", path.display()),
                ));
            }
        };
        Ok(Self {
            secret: secret.into(),
            path,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn matches(&self, presented: &str) -> bool {
        bool::from(presented.as_bytes().ct_eq(self.secret.as_bytes()))
    }
}

/// What every refused credential gets, whatever was wrong with it: a caller probing tokens
/// learns nothing (an unknown token id and a wrong secret answer alike). The audit log keeps
/// the real reason.
const UNAUTHORIZED: &str = "missing or invalid token";

/// Middleware: every request carries a token, as `Authorization: Bearer TOKEN` or, on a
/// WebSocket upgrade, as `?access_token=TOKEN`: the server's own token (the owner), or an API
/// or agent token, whose capabilities then bound every call the request makes. Anything else
/// is a 401 saying where the token is, and an audit entry (rate-limited).
pub(crate) async fn require_token(
    State((token, daemon)): State<(Token, std::sync::Arc<crate::server::Daemon>)>,
    req: Request,
    next: Next,
) -> Response {
    use crate::access::{HTTP_PRINCIPAL, Principal};
    let presented = bearer(&req).or_else(|| websocket_query_token(&req));
    let reason = match presented {
        Some(t) if token.matches(&t) => {
            return HTTP_PRINCIPAL.scope(Principal::Http, next.run(req)).await;
        }
        Some(t) => match daemon.access.principal_for(&t, &daemon.coord) {
            // MCP over HTTP calls the daemon as its owner: only the owner's token may use it.
            Ok(_) if req.uri().path().starts_with("/mcp") => {
                let body = super::error::error_body(
                    "permission_denied",
                    403,
                    "/mcp serves the owner only",
                    Some("use the server's own token for /mcp, or the REST routes with this token"),
                );
                return (StatusCode::FORBIDDEN, body).into_response();
            }
            Ok(who) => return HTTP_PRINCIPAL.scope(who, next.run(req)).await,
            Err(e) => e.message,
        },
        None => "no token".to_owned(),
    };
    daemon.telemetry.unauthorized();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "?".to_owned(), |c| c.0.to_string());
    // The path only: a query string may carry the token that was refused.
    daemon.access.audit_unauthorized(format!(
        "{} {} from {peer}: {reason}",
        req.method(),
        req.uri().path()
    ));
    unauthorized(&token)
}

fn bearer(req: &Request) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn websocket_query_token(req: &Request) -> Option<String> {
    let upgrade = req.headers().get(header::UPGRADE)?.to_str().ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return None;
    }
    let query = req.uri().query()?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == QUERY_PARAM).then(|| v.to_owned())
    })
}

fn unauthorized(token: &Token) -> Response {
    let hint = format!(
        "send `Authorization: Bearer TOKEN`, TOKEN being the content of the file {} (WebSocket \
         clients may use ?{QUERY_PARAM}=TOKEN)",
        token.path.display()
    );
    let body = super::error::error_body("unauthorized", 401, UNAUTHORIZED, Some(&hint));
    let mut resp = (StatusCode::UNAUTHORIZED, body).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"ai-session\""),
    );
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn created_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = Token::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(a.secret.len(), 64);
        let b = Token::load_or_create(dir.path()).unwrap();
        assert_eq!(a.secret, b.secret);
        assert!(a.matches(&b.secret));
        assert!(!a.matches("nope"));
        assert!(!a.matches(""));
    }
}
