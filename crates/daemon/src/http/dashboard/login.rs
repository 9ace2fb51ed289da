//! Logging a browser in: `web.login` makes a one-time code bound to its caller's principal;
//! `GET /login?code=CODE` exchanges it, once and within [`CODE_TTL`], for a dashboard session:
//! an `HttpOnly`, `SameSite=Strict` cookie naming it and a CSRF token the page sends on every
//! request that changes something. Neither the code nor the bearer token stays in the page's
//! URL: the exchange answers with a redirect to `/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ai_session_protocol::web::WebLoginResult;
use ai_session_protocol::{ErrorKind, RpcError};
use subtle::ConstantTimeEq;

use crate::access::Principal;
use crate::server::Daemon;

/// How long a login code works.
pub(crate) const CODE_TTL: Duration = Duration::from_secs(120);
/// How long a dashboard session lasts without a new login.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The cookie naming a dashboard session.
pub(crate) const COOKIE: &str = "ais_session";
/// Codes waiting to be used, and sessions alive, at most (the oldest goes first).
const MAX_CODES: usize = 64;
const MAX_SESSIONS: usize = 256;

/// A logged-in browser: who it acts as, and the token its state-changing requests carry.
#[derive(Clone)]
pub(crate) struct WebSession {
    pub principal: Principal,
    pub csrf: Arc<str>,
    expires: Instant,
}

struct Pending {
    principal: Principal,
    expires: Instant,
}

/// The codes not used yet and the sessions alive, in memory: a daemon restart logs every
/// browser out.
#[derive(Default)]
pub(crate) struct Logins {
    codes: Mutex<HashMap<String, Pending>>,
    sessions: Mutex<HashMap<String, WebSession>>,
}

impl Logins {
    /// A fresh code for `principal`.
    fn issue(&self, principal: Principal) -> Result<String, RpcError> {
        let code = random_hex()?;
        let now = Instant::now();
        let mut codes = self.codes.lock().unwrap_or_else(PoisonError::into_inner);
        codes.retain(|_, p| p.expires > now);
        evict_oldest(&mut codes, MAX_CODES, |p| p.expires);
        codes.insert(
            code.clone(),
            Pending {
                principal,
                expires: now + CODE_TTL,
            },
        );
        Ok(code)
    }

    /// Uses up `code`: the session id and the session, or `None` when the code is unknown,
    /// used or expired (the three are not told apart).
    pub(crate) fn exchange(&self, code: &str) -> Option<(String, WebSession)> {
        let pending = self
            .codes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(code)?;
        let now = Instant::now();
        if pending.expires <= now {
            return None;
        }
        let (id, csrf) = (random_hex().ok()?, random_hex().ok()?);
        let session = WebSession {
            principal: pending.principal,
            csrf: csrf.into(),
            expires: now + SESSION_TTL,
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|_, s| s.expires > now);
        evict_oldest(&mut sessions, MAX_SESSIONS, |s| s.expires);
        sessions.insert(id.clone(), session.clone());
        Some((id, session))
    }

    /// The live session a cookie names.
    pub(crate) fn session(&self, id: &str) -> Option<WebSession> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        // Looked up by key, then compared in constant time: a hash lookup alone could leak
        // how much of a guessed id matched through its timing.
        let (key, s) = sessions.get_key_value(id)?;
        let same = bool::from(key.as_bytes().ct_eq(id.as_bytes()));
        (same && s.expires > Instant::now()).then(|| s.clone())
    }

    pub(crate) fn end(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

fn evict_oldest<V>(map: &mut HashMap<String, V>, max: usize, expires: impl Fn(&V) -> Instant) {
    while map.len() >= max {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, v)| expires(v))
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        map.remove(&oldest);
    }
}

/// 32 random bytes as hex.
fn random_hex() -> Result<String, RpcError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        RpcError::new(
            ErrorKind::Internal,
            format!("no randomness for a login code: {e}"),
        )
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `web.login`: a code for the caller, with the link that uses it. The HTTP server must run.
pub(crate) async fn web_login(
    daemon: &Arc<Daemon>,
    who: &Principal,
) -> Result<WebLoginResult, RpcError> {
    let url = {
        let running = daemon.http.running.lock().await;
        let Some(running) = running.as_ref() else {
            return Err(RpcError::new(
                ErrorKind::Unsupported,
                "the HTTP server is not running: the dashboard is served by it",
            )
            .with_hint("start it with `ai-session serve` (or run `ai-session web`, which does)"));
        };
        login_base(running.addr)
    };
    // The owner over the socket is the owner over HTTP too, recorded as such.
    let principal = match who {
        Principal::Owner => Principal::Http,
        other => other.clone(),
    };
    let code = daemon.http.logins.issue(principal)?;
    Ok(WebLoginResult {
        login_url: format!("{url}/login?code={code}"),
        url,
        expires_in_ms: u64::try_from(CODE_TTL.as_millis()).unwrap_or(u64::MAX),
    })
}

/// The URL a browser on this machine reaches the server at: a wildcard address is reached on
/// loopback.
fn login_base(addr: std::net::SocketAddr) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_code_works_once() {
        let logins = Logins::default();
        let code = logins.issue(Principal::Http).unwrap();
        let (id, s) = logins.exchange(&code).unwrap();
        assert_eq!(s.principal, Principal::Http);
        assert!(logins.exchange(&code).is_none(), "a code works once");
        assert!(logins.session(&id).is_some());
        assert!(logins.session("nope").is_none());
        logins.end(&id);
        assert!(logins.session(&id).is_none());
    }

    #[test]
    fn an_expired_code_is_refused() {
        let logins = Logins::default();
        let code = logins.issue(Principal::Http).unwrap();
        logins.codes.lock().unwrap().get_mut(&code).unwrap().expires = Instant::now();
        assert!(logins.exchange(&code).is_none());
    }

    #[test]
    fn pending_codes_are_bounded() {
        let logins = Logins::default();
        for _ in 0..MAX_CODES * 2 {
            logins.issue(Principal::Http).unwrap();
        }
        assert!(logins.codes.lock().unwrap().len() <= MAX_CODES);
    }
}
