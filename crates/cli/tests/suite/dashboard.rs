//! The web dashboard over real sockets: the one-time login link of `ai-session web`, the
//! session cookie's flags, the CSRF check, that every dashboard route needs a login, that a
//! dashboard session acts as the principal that asked for the link, the methods its panels
//! read (`session.history`, `audit.list`, `audit.verify`); and the page itself in Debian's
//! chromium driven by Playwright (`tests/web/dashboard_browser.py`).

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::harness::{Env, run_with_deadline};

mod panels;

/// A private daemon serving HTTP on a free loopback port.
struct Server {
    env: Env,
    addr: String,
}

/// A logged-in browser: its cookie and CSRF token.
struct Login {
    cookie: String,
    csrf: String,
}

use super::harness::HttpAnswer as Answer;

impl Server {
    fn start() -> Self {
        Self::start_in(Env::new(), None)
    }

    /// Serves from `env`'s daemon, started with `passphrase` as the store passphrase when given.
    fn start_in(env: Env, passphrase: Option<&str>) -> Self {
        let mut cmd = env.command(&["serve", "--listen", "127.0.0.1:0", "--json"]);
        if let Some(p) = passphrase {
            cmd.env("AI_SESSION_PASSPHRASE", p);
        }
        let out = cmd.output().expect("run ai-session serve");
        assert!(
            out.status.success(),
            "serve: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: Value = serde_json::from_slice(&out.stdout).expect("serve --json");
        let addr = r["listen"].as_str().expect("listen").to_owned();
        Self { env, addr }
    }

    /// `ai-session web --json`, as the owner or as an API token.
    fn web(&self, token: Option<&str>) -> Value {
        let mut cmd = self.env.command(&["web", "--json"]);
        if let Some(t) = token {
            cmd.env("AI_SESSION_TOKEN", t);
        }
        let out = cmd.output().expect("run ai-session web");
        assert!(
            out.status.success(),
            "web failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("web --json")
    }

    /// The login link's path and query (`/login?code=...`).
    fn login_path(&self, token: Option<&str>) -> String {
        let r = self.web(token);
        let url = r["login_url"].as_str().expect("login_url");
        let prefix = format!("http://{}", self.addr);
        assert!(url.starts_with(&prefix), "{url} is not on {prefix}");
        url[prefix.len()..].to_owned()
    }

    fn login(&self, token: Option<&str>) -> Login {
        let path = self.login_path(token);
        let a = self.get(&path, &[]);
        assert_eq!(a.status, 303, "{}", a.body);
        let set = a.header("set-cookie").expect("Set-Cookie");
        let cookie = set.split(';').next().unwrap_or_default().to_owned();
        let page = self.get("/", &[("Cookie", &cookie)]);
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = meta(&page.body, "csrf-token");
        Login { cookie, csrf }
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        request(&self.addr, "GET", path, headers, "")
    }

    /// A request as a logged-in browser sends it: the cookie, and the CSRF token when given.
    fn as_browser(
        &self,
        login: &Login,
        method: &str,
        path: &str,
        csrf: Option<&str>,
        body: &str,
    ) -> Answer {
        let mut headers = vec![("Cookie", login.cookie.as_str())];
        if let Some(c) = csrf {
            headers.push(("X-CSRF-Token", c));
        }
        request(&self.addr, method, path, &headers, body)
    }
}

/// An API token holding exactly `caps`.
fn api_token(env: &Env, caps: &[&str]) -> String {
    let mut args = vec!["access", "token", "--json"];
    for cap in caps {
        args.extend(["--cap", cap]);
    }
    let out = env.ok(&args);
    let v: Value = serde_json::from_str(&out).expect("token JSON");
    v["token"].as_str().expect("token").to_owned()
}

fn meta(page: &str, name: &str) -> String {
    let marker = format!("<meta name=\"{name}\" content=\"");
    let start = page.find(&marker).expect("meta tag") + marker.len();
    page[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// One HTTP/1.1 request on a fresh connection.
fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    super::harness::http(addr, method, path, headers, body)
}

#[test]
fn the_login_code_works_once_for_a_strict_httponly_cookie_and_leaves_the_url() {
    let s = Server::start();
    let path = s.login_path(None);
    assert!(path.starts_with("/login?code="), "{path}");
    let first = s.get(&path, &[]);
    assert_eq!(first.status, 303, "{}", first.body);
    assert_eq!(
        first.header("location").as_deref(),
        Some("/"),
        "the code leaves the URL"
    );
    let cookie = first.header("set-cookie").expect("Set-Cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing: {cookie}");
    }
    let code = path.trim_start_matches("/login?code=");
    assert!(
        !cookie.contains(code),
        "the cookie is not the code: {cookie}"
    );
    assert_eq!(
        first.header("cache-control").as_deref(),
        Some("no-store"),
        "{}",
        first.headers
    );
    let again = s.get(&path, &[]);
    assert_eq!(again.status, 401, "a code works once: {}", again.body);
    assert!(again.header("set-cookie").is_none());
    let page = s.get("/", &[("Cookie", cookie.split(';').next().unwrap())]);
    assert_eq!(page.status, 200);
    assert_eq!(meta(&page.body, "csrf-token").len(), 64);
    assert!(!page.body.contains(code), "the page does not hold the code");
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    // A refused code is audited like a refused token.
    let audit = s.env.ok(&["audit", "ls", "--json"]);
    assert!(
        audit.contains("unknown, used or expired login code"),
        "{audit}"
    );
}

#[test]
fn every_dashboard_route_needs_a_login() {
    let s = Server::start();
    let bogus = format!("ais_session={}", "0".repeat(64));
    let routes = [
        ("GET", "/"),
        ("GET", "/ui/app.js"),
        ("GET", "/ui/vendor/xterm.js"),
        ("GET", "/ui/nope.js"),
        ("POST", "/logout"),
        ("GET", "/v1/sessions"),
        ("GET", "/v1/audit"),
        ("GET", "/login?code=0123"),
        ("GET", "/login"),
    ];
    for (method, path) in routes {
        for headers in [vec![], vec![("Cookie", bogus.as_str())]] {
            let a = request(&s.addr, method, path, &headers, "");
            assert_eq!(a.status, 401, "{method} {path} {headers:?}: {}", a.body);
            assert!(!a.body.contains("xterm"), "{method} {path} leaked");
        }
    }
    // A logged-in browser gets the page and its assets, from the binary.
    let login = s.login(None);
    for (file, mime) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/vendor/xterm.js", "text/javascript"),
        ("/ui/vendor/xterm.css", "text/css"),
        ("/ui/vendor/LICENSE.xterm", "text/plain"),
    ] {
        let a = s.as_browser(&login, "GET", file, None, "");
        assert_eq!(a.status, 200, "{file}");
        assert!(
            a.header("content-type")
                .unwrap_or_default()
                .starts_with(mime),
            "{file}: {}",
            a.headers
        );
    }
    // Logging out ends the session: the cookie is refused from then on.
    let out = s.as_browser(&login, "POST", "/logout", Some(&login.csrf), "");
    assert_eq!(out.status, 204, "{}", out.body);
    let a = s.as_browser(&login, "GET", "/v1/sessions", None, "");
    assert_eq!(a.status, 401, "{}", a.body);
}

#[test]
fn a_request_that_changes_something_needs_the_csrf_token() {
    let s = Server::start();
    let login = s.login(None);
    let body = json!({"name": "w", "shell": "/bin/bash"}).to_string();
    let a = s.as_browser(&login, "GET", "/v1/sessions", None, "");
    assert_eq!(a.status, 200, "a read needs no CSRF token: {}", a.body);
    for csrf in [None, Some("0".repeat(64).as_str()), Some("")] {
        let a = s.as_browser(&login, "POST", "/v1/sessions", csrf, &body);
        assert_eq!(a.status, 403, "{csrf:?}: {}", a.body);
        assert_eq!(a.json()["error"]["kind"], "forbidden_csrf", "{}", a.body);
    }
    let list = s.as_browser(&login, "GET", "/v1/sessions", None, "");
    assert_eq!(list.json()["sessions"], json!([]), "nothing was created");
    let a = s.as_browser(&login, "POST", "/logout", None, "");
    assert_eq!(a.status, 403, "logout needs the token too: {}", a.body);
    // Another origin is refused even with the cookie and the token.
    let a = request(
        &s.addr,
        "POST",
        "/v1/sessions",
        &[
            ("Cookie", &login.cookie),
            ("X-CSRF-Token", &login.csrf),
            ("Origin", "http://evil.example"),
        ],
        &body,
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert_eq!(a.json()["error"]["kind"], "forbidden_origin");
    // A WebSocket upgrade with the cookie but no Origin is not the dashboard's page.
    let a = request(
        &s.addr,
        "GET",
        "/v1/bus/stream?topic=x",
        &[
            ("Cookie", &login.cookie),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        "",
    );
    assert_eq!(a.status, 403, "{}", a.body);
    let a = s.as_browser(&login, "POST", "/v1/sessions", Some(&login.csrf), &body);
    assert_eq!(a.status, 201, "with the token: {}", a.body);
}

#[test]
fn a_dashboard_session_acts_as_the_token_that_asked_for_the_link() {
    let s = Server::start();
    s.env.ok(&["new", "-s", "w"]);
    let token = api_token(&s.env, &["session:list", "session:read:*", "web:login"]);
    let login = s.login(Some(&token));
    let page = s.as_browser(&login, "GET", "/", None, "");
    assert!(meta(&page.body, "principal").starts_with("token:"));
    let list = s.as_browser(&login, "GET", "/v1/sessions", None, "");
    assert_eq!(list.json()["sessions"][0]["name"], "w", "{}", list.body);
    // Typing into the session needs session:send:w, which the token lacks.
    let data = json!({"data_b64": "ZWNobyBubwo="}).to_string();
    let a = s.as_browser(
        &login,
        "POST",
        "/v1/sessions/w/write",
        Some(&login.csrf),
        &data,
    );
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("session:send:w"),
        "{}",
        a.body
    );
    // A token without web:login gets no link.
    let bare = api_token(&s.env, &["session:list"]);
    let out = s
        .env
        .command(&["web", "--json"])
        .env("AI_SESSION_TOKEN", &bare)
        .output()
        .unwrap();
    assert!(!out.status.success());
    // With --json the error is JSON on stdout; without, a line on stderr.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("web:login"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The owner's dashboard may type.
    let owner = s.login(None);
    let a = s.as_browser(
        &owner,
        "POST",
        "/v1/sessions/w/write",
        Some(&owner.csrf),
        &data,
    );
    assert_eq!(a.status, 200, "{}", a.body);
}

#[test]
fn the_timeline_and_audit_panels_read_history_and_the_verified_log() {
    let s = Server::start();
    s.env.ok(&["new", "-s", "w"]);
    s.env.exec("w", "seq 1 2000");
    s.env.exec("w", "printf 'boom\\n'; (exit 3)");
    let login = s.login(None);
    let h = s
        .as_browser(&login, "GET", "/v1/sessions/w/history", None, "")
        .json();
    let execs = h["execs"].as_array().expect("execs");
    assert_eq!(execs.len(), 2, "{h}");
    assert_eq!(h["total"], 2);
    assert_eq!(execs[0]["command"], "seq 1 2000");
    assert_eq!(execs[0]["exit_code"], 0);
    let raw = execs[0]["compact"]["raw_tokens"].as_u64().expect("raw");
    let compact = execs[0]["compact"]["compact_tokens"]
        .as_u64()
        .expect("view");
    assert!(compact < raw, "the view saves tokens: {}", execs[0]);
    assert_eq!(execs[1]["exit_code"], 3);
    let (start, end) = (
        execs[1]["output_start"].as_u64().unwrap(),
        execs[1]["output_end"].as_u64().unwrap(),
    );
    let read = s
        .as_browser(
            &login,
            "GET",
            &format!(
                "/v1/sessions/w/read?since={start}&max_bytes={}",
                end - start
            ),
            None,
            "",
        )
        .json();
    assert!(
        read["data"].as_str().unwrap_or_default().contains("boom"),
        "{read}"
    );
    let one = s
        .as_browser(&login, "GET", "/v1/sessions/w/history?limit=1", None, "")
        .json();
    assert_eq!(one["execs"][0]["exit_code"], 3, "{one}");
    let a = s
        .as_browser(&login, "GET", "/v1/audit?session=w", None, "")
        .json();
    let entries = a["entries"].as_array().expect("entries");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "session.exec" && e["detail"] == "seq 1 2000"),
        "{a}"
    );
    assert!(entries.iter().all(|e| e["session"] == "w"), "{a}");
    let owner = s
        .as_browser(
            &login,
            "GET",
            "/v1/audit?principal=owner&min_risk=0",
            None,
            "",
        )
        .json();
    assert!(
        owner["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["principal"] == "owner"),
        "{owner}"
    );
    let v = s
        .as_browser(&login, "GET", "/v1/audit/verify", None, "")
        .json();
    assert_eq!(v["intact"], true, "{v}");
    assert!(v["entries"].as_u64().unwrap() >= 3, "{v}");
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn require_browser() {
    assert!(
        python_has("playwright"),
        "python3 cannot import playwright: run .ci/run's install step (python3 -m pip install playwright)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "no /usr/bin/chromium: run .ci/run's install step (apt-get install chromium)"
    );
}

/// `tests/web/dashboard_browser.py` against `s`, with login links for the owner and for an API
/// token holding `viewer_caps` (and `web:login`).
fn browser_script(s: &Server, viewer_caps: &[&str]) -> Command {
    let mut caps = viewer_caps.to_vec();
    caps.push("web:login");
    let viewer = api_token(&s.env, &caps);
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("..")
        .join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(format!(
        "{}/tests/web/dashboard_browser.py",
        env!("CARGO_MANIFEST_DIR")
    ))
    .env("DASH_URL", format!("http://{}", s.addr))
    .env(
        "DASH_OWNER_LOGIN",
        s.web(None)["login_url"].as_str().unwrap(),
    )
    .env(
        "DASH_VIEWER_LOGIN",
        s.web(Some(&viewer))["login_url"].as_str().unwrap(),
    )
    .env("DASH_BIN", env!("CARGO_BIN_EXE_ai-session"))
    .env("AI_SESSION_HOME", s.env.home.path())
    .env("HOME", s.env.home.path())
    .env("DASH_SCREENSHOTS", &shots);
    cmd
}

/// The page in a real browser: Debian's chromium, driven by Playwright. Screenshots land in
/// `target/dashboard-screenshots/`; `docs/web/` holds copies.
#[test]
fn the_dashboard_in_chromium() {
    require_browser();
    let s = Server::start();
    s.env.ok(&["new", "-s", "build"]);
    s.env.ok(&["new", "-s", "docs"]);
    s.env.exec("build", "echo compiled; (exit 0)");
    let mut cmd = browser_script(&s, &["session:list", "session:read:*"]);
    let (ok, out) = run_with_deadline(&mut cmd, 180);
    assert!(ok, "the browser test failed:\n{out}");
    println!("{out}");
}

/// With a store passphrase: the audit panel opens a sealed detail for the owner (audited),
/// and refuses a token without `audit:open`.
#[test]
fn the_sealed_audit_details_in_chromium() {
    require_browser();
    let s = Server::start_in(Env::new(), Some("correct horse battery"));
    s.env.ok(&["new", "-s", "w"]);
    s.env.exec("w", "echo sealed-$((6*7))");
    let mut cmd = browser_script(&s, &["audit:list", "audit:verify"]);
    cmd.env("DASH_MODE", "sealed");
    let (ok, out) = run_with_deadline(&mut cmd, 180);
    assert!(ok, "the browser test failed:\n{out}");
    println!("{out}");
}

/// In a cluster (a real nats-server, two daemons): the dashboard of node `a` names each
/// session's node, lists `b`'s session beside its own, shows its screen, timeline and a
/// command run on `b`, and types into it through the forwarded write.
#[test]
fn the_dashboard_in_a_cluster_in_chromium() {
    require_browser();
    let nats = super::cluster::Nats::start();
    let joined = |node: &str| {
        let env = Env::new();
        let config = format!(
            "[cluster]\nurl = \"{}\"\nnode = \"{node}\"\nheartbeat_secs = 0.5\nlease_secs = 3\n",
            nats.url
        );
        std::fs::write(env.home.path().join("config.toml"), config).expect("config");
        env
    };
    let b = joined("b");
    b.ok(&["new", "-s", "far"]);
    b.exec("far", "echo far-$((6*7))");
    let s = Server::start_in(joined("a"), None);
    s.env.ok(&["new", "-s", "near"]);
    let mut cmd = browser_script(&s, &["session:list"]);
    cmd.env("DASH_MODE", "cluster")
        .env("DASH_PEER_HOME", b.home.path());
    let (ok, out) = run_with_deadline(&mut cmd, 180);
    assert!(ok, "the browser test failed:\n{out}");
    println!("{out}");
}

/// 1,000 sessions: the page loads in under a second, draws only the rows in view, scrolls to
/// the last one and opens one stream, for the selected session only.
#[test]
fn the_dashboard_at_1000_sessions_in_chromium() {
    require_browser();
    let s = Server::start();
    let serve = s.env.json(&["serve"]);
    let token_file = serve["token_file"].as_str().expect("token_file");
    let token = std::fs::read_to_string(token_file).expect("token");
    let auth = format!("Bearer {}", token.trim());
    const COUNT: usize = 1000;
    for i in 0..COUNT {
        // Idle programs stand for most sessions; the last one runs a shell to look at.
        let body = if i + 1 == COUNT {
            json!({"name": format!("s{i:04}"), "shell": "/bin/bash"})
        } else {
            json!({"name": format!("s{i:04}"), "program": ["sleep", "100000"]})
        };
        let a = request(
            &s.addr,
            "POST",
            "/v1/sessions",
            &[("Authorization", &auth)],
            &body.to_string(),
        );
        assert_eq!(a.status, 201, "session {i}: {}", a.body);
    }
    let mut cmd = browser_script(&s, &["session:list"]);
    cmd.env("DASH_SESSIONS", COUNT.to_string());
    let (ok, out) = run_with_deadline(&mut cmd, 300);
    assert!(ok, "the browser test failed:\n{out}");
    println!("{out}");
}
