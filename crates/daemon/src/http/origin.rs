//! DNS-rebinding and cross-site defence for every route: the `Host` header must name this
//! server (a loopback name or the address it listens on), and a browser's `Origin`, when sent,
//! must be this server's own origin. A page on `http://evil.example` whose name an attacker
//! points at 127.0.0.1 reaches the port, but its requests say `Host: evil.example` and are
//! refused before the token is even looked at; a page of another local origin (another port)
//! is refused by its `Origin`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

/// Names this server answers to.
#[derive(Clone)]
pub(crate) struct Origins {
    names: Arc<Vec<String>>,
    port: u16,
    /// `--allow-remote`: the server is meant to be reached under names it cannot know, so any
    /// `Host` passes and `Origin` must match the `Host` the request names (same origin).
    any_host: bool,
}

impl Origins {
    pub(crate) fn new(bound: SocketAddr, allow_remote: bool) -> Self {
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        if !bound.ip().is_unspecified() {
            names.push(bound.ip().to_string());
        }
        Origins {
            names: Arc::new(names),
            port: bound.port(),
            any_host: allow_remote,
        }
    }

    fn name_ok(&self, name: &str) -> bool {
        self.any_host || self.names.iter().any(|n| n == name)
    }

    /// `Host`: a name we answer to, with no port or ours.
    fn host_ok(&self, host: &str) -> bool {
        split_authority(host).is_some_and(|(name, port)| {
            self.name_ok(&name) && port.is_none_or(|p| self.any_host || p == self.port)
        })
    }

    /// `Origin`: `http(s)://NAME:PORT` naming this server, or the very authority the request
    /// was sent to (same origin).
    fn origin_ok(&self, origin: &str, host: &str) -> bool {
        let Some(authority) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false; // `null` (sandboxed frames, file: pages) and other schemes
        };
        if authority.eq_ignore_ascii_case(host) {
            return true;
        }
        split_authority(authority).is_some_and(|(name, port)| {
            !self.any_host && self.name_ok(&name) && port == Some(self.port)
        })
    }
}

/// `name[:port]` or `[v6]:port` to a lowercase name without a trailing dot, and the port.
fn split_authority(s: &str) -> Option<(String, Option<u16>)> {
    let s = s.trim();
    let (name, port) = if let Some(rest) = s.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        (name, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some((name, port))
}

/// Middleware: refuses a request whose `Host` or `Origin` is not this server's (403).
pub(crate) async fn check(State(origins): State<Origins>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !origins.host_ok(&host) {
        return refuse(&format!("Host '{host}' is not this server"));
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !origins.origin_ok(origin, &host) {
            return refuse(&format!("Origin '{origin}' may not call this server"));
        }
    }
    next.run(req).await
}

fn refuse(message: &str) -> Response {
    super::error::error_response(
        StatusCode::FORBIDDEN,
        "forbidden_origin",
        message,
        Some(
            "call the API from a program on this machine at http://127.0.0.1:PORT or http://localhost:PORT; web pages of other origins may not",
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hosts_and_origins() {
        let o = Origins::new("127.0.0.1:7717".parse().unwrap(), false);
        assert!(o.host_ok("127.0.0.1:7717"));
        assert!(o.host_ok("localhost:7717"));
        assert!(o.host_ok("LOCALHOST."));
        assert!(o.host_ok("[::1]:7717"));
        assert!(!o.host_ok("evil.example:7717"));
        assert!(!o.host_ok("localhost.evil.example"));
        assert!(!o.host_ok(""));
        assert!(!o.host_ok("localhost:80"));
        assert!(o.origin_ok("http://localhost:7717", "127.0.0.1:7717"));
        assert!(o.origin_ok("http://127.0.0.1:7717", "127.0.0.1:7717"));
        assert!(!o.origin_ok("http://localhost:3000", "127.0.0.1:7717"));
        assert!(!o.origin_ok("http://evil.example", "127.0.0.1:7717"));
        assert!(!o.origin_ok("null", "127.0.0.1:7717"));
        let remote = Origins::new("0.0.0.0:7717".parse().unwrap(), true);
        assert!(remote.host_ok("box.lan:7717"));
        assert!(remote.origin_ok("https://box.lan:7717", "box.lan:7717"));
        assert!(!remote.origin_ok("https://evil.example", "box.lan:7717"));
    }
}
