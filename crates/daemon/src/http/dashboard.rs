//! The web dashboard (`docs/web.md`): the page at `/`, its assets under `/ui/` (hand-written
//! HTML, CSS and JavaScript, and the vendored xterm.js, all compiled into the binary), the
//! one-time login at `/login`, and the door through which the page's own requests reach the
//! REST and WebSocket API: a dashboard session's cookie instead of the bearer token, with a
//! CSRF token on every request that changes something.
//!
//! Requests reach this router after the `Host`/`Origin` check. A request with a live session
//! cookie (and no `Authorization` header) to `/v1/...` is served as the session's principal;
//! anything else goes to the API behind the bearer-token check, unchanged.

mod login;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use subtle::ConstantTimeEq;
use tower::ServiceExt;

use login::{COOKIE, SESSION_TTL, WebSession};
pub(crate) use login::{Logins, web_login};

use crate::access::{HTTP_PRINCIPAL, Principal};
use crate::server::Daemon;

/// The header that carries the CSRF token.
const CSRF_HEADER: &str = "x-csrf-token";

/// What the page may load and connect to: its own origin only (no CDN, no inline script).
/// xterm.js sets element styles, hence `'unsafe-inline'` for styles alone.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A file served under `/ui/`.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $mime:expr) => {
        Asset {
            name: $name,
            mime: $mime,
            body: include_bytes!(concat!("../../web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("app.js", JS),
    asset!("panels.js", JS),
    asset!("insight.js", JS),
    asset!("terminal.js", JS),
    asset!("app.css", CSS),
    asset!("vendor/xterm.js", JS),
    asset!("vendor/xterm.css", CSS),
    asset!("vendor/addon-fit.js", JS),
    asset!("vendor/LICENSE.xterm", TEXT),
    asset!("vendor/LICENSE.addon-fit", TEXT),
];

static INDEX: &str = include_str!("../../web/index.html");

struct Dash {
    daemon: Arc<Daemon>,
    /// The API without the token check: reached only with a live session cookie.
    api: Router,
    /// The API behind the bearer-token check.
    authed: Router,
}

/// The dashboard's routes in front of the API: `api` is the route table without
/// authentication, `authed` the same behind the bearer-token check.
pub(crate) fn router(daemon: Arc<Daemon>, api: Router, authed: Router) -> Router {
    let dash = Arc::new(Dash {
        daemon,
        api,
        authed,
    });
    Router::new()
        .route("/", get(index))
        .route("/ui/{*file}", get(asset))
        .route("/login", get(login))
        .route("/logout", post(logout))
        .fallback(forward)
        .with_state(dash)
}

/// The dashboard session a request's cookie names, with the cookie's value.
fn web_session(dash: &Dash, headers: &HeaderMap) -> Option<(String, WebSession)> {
    let id = cookie(headers, COOKIE)?;
    let session = dash.daemon.http.logins.session(&id)?;
    Some((id, session))
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.to_owned())
        })
}

/// True when the request's CSRF header is the session's token.
fn csrf_ok(headers: &HeaderMap, session: &WebSession) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes())))
}

fn safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Everything but the dashboard's own routes: the API, as the cookie's principal when the
/// request carries a live one and no bearer token, else behind the token check.
async fn forward(State(dash): State<Arc<Dash>>, req: Request) -> Response {
    let by_cookie =
        !req.headers().contains_key(header::AUTHORIZATION) && req.uri().path().starts_with("/v1/");
    let session = if by_cookie {
        web_session(&dash, req.headers())
    } else {
        None
    };
    let Some((_, session)) = session else {
        return serve(dash.authed.clone(), req).await;
    };
    if !safe(req.method()) && !csrf_ok(req.headers(), &session) {
        return csrf_refused();
    }
    // A browser always sends `Origin` on a WebSocket upgrade (checked before this router);
    // one without it is not the dashboard's page.
    if req.headers().contains_key(header::UPGRADE) && !req.headers().contains_key(header::ORIGIN) {
        return csrf_refused();
    }
    HTTP_PRINCIPAL
        .scope(session.principal, serve(dash.api.clone(), req))
        .await
}

async fn serve(router: Router, req: Request) -> Response {
    match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

fn csrf_refused() -> Response {
    super::error::error_response(
        StatusCode::FORBIDDEN,
        "forbidden_csrf",
        "a dashboard request that changes something must carry the session's CSRF token",
        Some("send the token of the page's <meta name=\"csrf-token\"> as the X-CSRF-Token header"),
    )
}

/// `GET /`: the page, with the session's CSRF token; without a session, how to get one.
async fn index(State(dash): State<Arc<Dash>>, headers: HeaderMap) -> Response {
    let Some((_, session)) = web_session(&dash, &headers) else {
        return login_needed("log in with the link `ai-session web` prints");
    };
    let page = INDEX
        .replace("{{CSRF}}", &session.csrf)
        .replace("{{PRINCIPAL}}", &principal_name(&session.principal));
    page_response(StatusCode::OK, page)
}

/// `GET /ui/FILE`: an asset, for a logged-in browser.
async fn asset(
    State(dash): State<Arc<Dash>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if web_session(&dash, &headers).is_none() {
        return login_needed("log in with the link `ai-session web` prints");
    }
    let Some(a) = ASSETS.iter().find(|a| a.name == file) else {
        return super::error::error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no dashboard file '{file}'"),
            None,
        );
    };
    (
        [
            (header::CONTENT_TYPE, a.mime),
            (header::CACHE_CONTROL, "private, no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        a.body,
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    code: Option<String>,
}

/// `GET /login?code=CODE`: the code for a session cookie, then away from the URL holding it.
async fn login(State(dash): State<Arc<Dash>>, req: Request) -> Response {
    let code = Query::<LoginQuery>::try_from_uri(req.uri())
        .ok()
        .and_then(|Query(q)| q.code)
        .unwrap_or_default();
    let Some((id, _)) = dash.daemon.http.logins.exchange(&code) else {
        dash.daemon.telemetry.unauthorized();
        let peer = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "?".to_owned(), |c| c.0.to_string());
        dash.daemon.access.audit_unauthorized(format!(
            "GET /login from {peer}: unknown, used or expired login code"
        ));
        return login_needed("this login link was used already or has expired");
    };
    let cookie = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, v);
    }
    no_store(headers);
    resp
}

/// `POST /logout`: ends the session (CSRF token required) and clears the cookie.
async fn logout(State(dash): State<Arc<Dash>>, headers: HeaderMap) -> Response {
    let Some((id, session)) = web_session(&dash, &headers) else {
        return login_needed("not logged in");
    };
    if !csrf_ok(&headers, &session) {
        return csrf_refused();
    }
    dash.daemon.http.logins.end(&id);
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("ais_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    resp
}

fn principal_name(p: &Principal) -> String {
    match p {
        Principal::Owner | Principal::Http => "owner".to_owned(),
        Principal::Agent(id) => format!("agent:{id}"),
        Principal::Token(id) => format!("token:{id}"),
    }
}

/// The 401 page of a browser without a session.
fn login_needed(why: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ai-session: log in</title></head>\
         <body><h1>ai-session dashboard</h1><p>{why}.</p>\
         <p>Run <code>ai-session web</code> on this machine and open the link it prints \
         (each link works once, for two minutes).</p></body></html>"
    );
    page_response(StatusCode::UNAUTHORIZED, page)
}

fn page_response(status: StatusCode, page: String) -> Response {
    let mut resp = (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page,
    )
        .into_response();
    no_store(resp.headers_mut());
    resp
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
