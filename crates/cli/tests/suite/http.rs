//! The HTTP API of `ai-session serve` over real sockets: REST calls, the token on every route,
//! error statuses, the WebSocket streams, MCP at `/mcp` through the Python SDK, and a
//! property-based fuzzer (schemathesis) against the OpenAPI document.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;

pub(super) use super::harness::{Env, run_with_deadline};

const IO_DEADLINE: Duration = Duration::from_secs(60);

/// A private daemon serving HTTP on a free loopback port.
pub(super) struct Server {
    pub(super) env: Env,
    addr: String,
    pub(super) token: String,
    token_file: String,
}

impl Server {
    pub(super) fn start() -> Self {
        let env = Env::new();
        let r = env.json(&["serve", "--listen", "127.0.0.1:0"]);
        let addr = r["listen"].as_str().expect("listen").to_owned();
        let token_file = r["token_file"].as_str().expect("token_file").to_owned();
        let token = std::fs::read_to_string(&token_file).expect("token file");
        Self {
            env,
            addr,
            token: token.trim().to_owned(),
            token_file,
        }
    }

    /// The daemon's log, for failure messages.
    fn log(&self) -> String {
        let path = self.env.home.path().join("servers/t/daemon.log");
        std::fs::read_to_string(path).unwrap_or_default()
    }

    pub(super) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(super) fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let auth = format!("Bearer {}", self.token);
        request(&self.addr, method, path, Some(&auth), body)
    }

    /// A call with another bearer token than the server's own.
    pub(super) fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let auth = format!("Bearer {token}");
        request(&self.addr, method, path, Some(&auth), body)
    }

    fn ws(&self, path: &str) -> Ws {
        let mut req = format!("ws://{}{path}", self.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "Authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        ws_connect(&self.addr, req)
    }
}

/// One HTTP/1.1 request on a fresh connection; the status and the JSON body.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let (status, _, body) = raw_request(addr, method, path, auth, body, &[]);
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, String, String) {
    let mut headers = extra.to_vec();
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    let a = super::harness::http(addr, method, path, &headers, body.unwrap_or(""));
    (a.status, a.headers, a.body)
}

type Ws = tungstenite::WebSocket<TcpStream>;

fn ws_connect(addr: &str, req: tungstenite::handshake::client::Request) -> Ws {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_DEADLINE)).unwrap();
    let (ws, _) = tungstenite::client(req, stream).unwrap();
    ws
}

/// The next JSON text message (a read past the deadline fails the test).
fn next(ws: &mut Ws) -> Value {
    loop {
        match ws.read().expect("WebSocket message before the deadline") {
            tungstenite::Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            tungstenite::Message::Close(_) => panic!("the stream closed"),
            _ => {}
        }
    }
}

/// Reads messages until `pred` holds for one; returns everything read.
fn until(ws: &mut Ws, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + IO_DEADLINE;
    let mut seen = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "no {what} within the deadline: {seen:?}"
        );
        let m = next(ws);
        let done = pred(&m);
        seen.push(m);
        if done {
            return seen;
        }
    }
}

fn new_session(s: &Server, name: &str) {
    let body = json!({"name": name, "shell": "/bin/bash"}).to_string();
    let (status, info) = s.call("POST", "/v1/sessions", Some(&body));
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["name"], name);
}

#[test]
fn rest_create_exec_read_kill() {
    let s = Server::start();
    new_session(&s, "w");
    let (status, list) = s.call("GET", "/v1/sessions", None);
    assert_eq!(status, 200);
    assert_eq!(list["sessions"][0]["name"], "w");
    let (status, r) = s.call(
        "POST",
        "/v1/sessions/w/exec",
        Some(r#"{"command":"echo hi","timeout_ms":30000}"#),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["output"], "hi\n");
    let (status, r) = s.call(
        "POST",
        "/v1/sessions/w/exec",
        Some(r#"{"command":"printf 'out\\n'; (exit 3)"}"#),
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["exit_code"], 3, "{r}");
    let since = r["output_start"].as_u64().unwrap();
    let (status, read) = s.call("GET", &format!("/v1/sessions/w/read?since={since}"), None);
    assert_eq!(status, 200, "{read}");
    assert!(read["data"].as_str().unwrap().starts_with("out"), "{read}");
    let (status, cap) = s.call("GET", "/v1/sessions/w/capture?scrollback=10", None);
    assert_eq!(status, 200, "{cap}");
    assert!(cap["lines"].to_string().contains("out"), "{cap}");
    let (status, one) = s.call("GET", "/v1/sessions/w", None);
    assert_eq!((status, one["name"].as_str()), (200, Some("w")));
    let (status, _) = s.call(
        "POST",
        "/v1/sessions/w/resize",
        Some(r#"{"size":{"cols":100,"rows":30}}"#),
    );
    assert_eq!(status, 200);
    let (status, _) = s.call("DELETE", "/v1/sessions/w", None);
    assert_eq!(status, 200);
    let (_, list) = s.call("GET", "/v1/sessions", None);
    assert_eq!(list["sessions"], json!([]));
}

#[test]
fn every_route_needs_the_token() {
    let s = Server::start();
    let routes = [
        ("GET", "/v1/status"),
        ("GET", "/v1/sessions"),
        ("POST", "/v1/sessions"),
        ("POST", "/v1/sessions/x/exec"),
        ("DELETE", "/v1/sessions/x"),
        ("GET", "/v1/sessions/x/stream"),
        ("POST", "/v1/bus/publish"),
        ("GET", "/v1/tasks"),
        ("GET", "/openapi.json"),
        ("POST", "/mcp"),
        ("GET", "/no/such/route"),
    ];
    let wrong = format!("Bearer {}x", s.token);
    for (method, path) in routes {
        for auth in [None, Some(wrong.as_str()), Some("Basic abc")] {
            let (status, body) = request(&s.addr, method, path, auth, Some("{}"));
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {body}");
            assert_eq!(body["error"]["kind"], "unauthorized");
            assert!(
                body["error"]["hint"]
                    .as_str()
                    .unwrap()
                    .contains(&s.token_file),
                "{body}"
            );
        }
    }
    // The query-string token is for WebSocket upgrades only.
    let (status, _) = request(
        &s.addr,
        "GET",
        &format!("/v1/status?access_token={}", s.token),
        None,
        None,
    );
    assert_eq!(status, 401);
    let (status, _) = s.call("GET", "/openapi.json", None);
    assert_eq!(status, 200);
}

#[test]
fn errors_have_statuses_kinds_and_hints_and_the_server_stays_up() {
    let s = Server::start();
    new_session(&s, "here");
    let (status, e) = s.call(
        "POST",
        "/v1/sessions/nope/exec",
        Some(r#"{"command":"true"}"#),
    );
    assert_eq!(status, 404, "{e}");
    assert_eq!(e["error"]["kind"], "session_not_found");
    assert_eq!(e["error"]["sessions"], json!(["here"]));
    assert!(e["error"]["hint"].as_str().unwrap().contains("here"));
    let (status, e) = s.call("GET", "/v1/sessions/nope", None);
    assert_eq!((status, &e["error"]["sessions"]), (404, &json!(["here"])));

    for bad in ["{not json", "[1,2]", "\"text\""] {
        let (status, e) = s.call("POST", "/v1/sessions/here/exec", Some(bad));
        assert_eq!(status, 400, "{bad}: {e}");
        assert!(e["error"]["hint"].is_string(), "{e}");
    }
    let (status, e) = s.call("POST", "/v1/sessions/here/exec", Some(r#"{"commandx":1}"#));
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["kind"], "invalid_params");
    let (status, e) = s.call("GET", "/v1/sessions/here/read?since=soon", None);
    assert_eq!(status, 400, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("since"));
    let (status, e) = s.call("POST", "/v1/sessions", Some(r#"{"name":"here"}"#));
    assert_eq!(
        (status, e["error"]["kind"].as_str()),
        (409, Some("session_exists"))
    );
    let (status, e) = s.call(
        "POST",
        "/v1/sessions/here/wait",
        Some(r#"{"condition":{"kind":"regex","pattern":"never-printed"},"timeout_ms":50}"#),
    );
    assert_eq!(
        (status, e["error"]["kind"].as_str()),
        (408, Some("timeout")),
        "{e}"
    );
    let (status, _) = s.call("PUT", "/v1/sessions", None);
    assert_eq!(status, 405);
    // A plain GET on a stream route is not a WebSocket upgrade.
    let (status, e) = s.call("GET", "/v1/sessions/here/stream", None);
    assert!((400..500).contains(&status), "{status} {e}");

    // Still serving, and `serve` is idempotent.
    let (status, _) = s.call("GET", "/v1/status", None);
    assert_eq!(status, 200);
    let again = s.env.json(&["serve"]);
    assert_eq!(again["listen"], s.addr.as_str());
    assert_eq!(again["started"], false);
    let out = s.env.run(&["serve", "--listen", "127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already listens"));
}

#[test]
fn remote_addresses_need_allow_remote() {
    let env = Env::new();
    let out = env.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(err.contains("--allow-remote"), "{err}");
    let out = env.run(&["serve", "--listen", "nowhere"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid listen address"));
}

#[test]
fn websocket_streams_output_and_the_finished_command_with_its_exit_code() {
    let s = Server::start();
    new_session(&s, "ws");
    // At its prompt first, so the shell's start-up marks are not part of the stream.
    let (status, _) = s.call(
        "POST",
        "/v1/sessions/ws/exec",
        Some(r#"{"command":"true"}"#),
    );
    assert_eq!(status, 200);
    let mut ws = s.ws("/v1/sessions/ws/stream");
    let first = next(&mut ws);
    assert_eq!(first["type"], "subscribed", "{first}");
    let start = first["offset"].as_u64().unwrap();
    let (addr, auth) = (s.addr.clone(), format!("Bearer {}", s.token));
    let exec = std::thread::spawn(move || {
        request(
            &addr,
            "POST",
            "/v1/sessions/ws/exec",
            Some(&auth),
            Some(r#"{"command":"printf 'ws-%s\\n' $((6*7)); (exit 7)"}"#),
        )
    });
    let seen = until(&mut ws, "command finished", |m| {
        m["type"] == "command" && m["phase"] == "finished"
    });
    let finished = seen.last().unwrap();
    assert_eq!(finished["exit_code"], 7, "{seen:?}");
    let text: String = seen
        .iter()
        .filter(|m| m["type"] == "output")
        .map(|m| m["data"].as_str().unwrap())
        .collect();
    assert!(text.contains("ws-42"), "{seen:?}");
    assert!(
        seen.iter()
            .any(|m| m["type"] == "command" && m["phase"] == "started")
    );
    let first_out = seen.iter().find(|m| m["type"] == "output").unwrap();
    assert!(first_out["offset"].as_u64().unwrap() >= start);
    let (status, r) = exec.join().unwrap();
    assert_eq!(
        (status, &r["exit_code"]),
        (200, &json!(7)),
        "{r}\ndaemon log:\n{}",
        s.log()
    );
    // Killing the session ends the stream with `closed`.
    s.call("DELETE", "/v1/sessions/ws", None);
    until(&mut ws, "closed", |m| m["type"] == "closed");
}

#[test]
fn websocket_bus_stream_receives_a_published_message() {
    let s = Server::start();
    // The query-string token, as a browser would send it.
    let req = format!(
        "ws://{}/v1/bus/stream?topic=news&access_token={}",
        s.addr, s.token
    )
    .into_client_request()
    .unwrap();
    let mut ws = ws_connect(&s.addr, req);
    let first = next(&mut ws);
    assert_eq!(
        (first["type"].as_str(), first["topic"].as_str()),
        (Some("subscribed"), Some("news"))
    );
    let (status, d) = s.call(
        "POST",
        "/v1/bus/publish",
        Some(r#"{"topic":"news","message":{"n":1}}"#),
    );
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["delivered"], 1);
    let m = next(&mut ws);
    assert_eq!(m["type"], "message", "{m}");
    assert_eq!(m["message"]["payload"], json!({"n": 1}), "{m}");
    // A stream of an unknown session is refused before the upgrade.
    let mut req = format!("ws://{}/v1/sessions/none/stream", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", s.token).parse().unwrap(),
    );
    let stream = TcpStream::connect(&s.addr).unwrap();
    match tungstenite::client(req, stream) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            assert_eq!(resp.status(), 404)
        }
        other => panic!("expected a 404: {:?}", other.map(|_| ())),
    }
}

#[test]
fn rest_coordination_agents_and_tasks() {
    let s = Server::start();
    let (status, reg) = s.call(
        "POST",
        "/v1/agents",
        Some(r#"{"name":"builder","capabilities":["rust"]}"#),
    );
    assert_eq!(status, 201, "{reg}");
    let token = reg["token"].as_str().unwrap().to_owned();
    let (status, t) = s.call(
        "POST",
        "/v1/tasks",
        Some(r#"{"description":"build","needs":["rust"]}"#),
    );
    assert_eq!(status, 201, "{t}");
    let id = t["id"].as_u64().unwrap();
    let claim = json!({"token": token, "wait_ms": 5000}).to_string();
    let (status, c) = s.call("POST", "/v1/tasks/claim", Some(&claim));
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["task"]["id"], id);
    let done = json!({"token": token, "result": {"ok": true}}).to_string();
    let (status, d) = s.call("POST", &format!("/v1/tasks/{id}/done"), Some(&done));
    assert_eq!(status, 200, "{d}");
    let (status, show) = s.call("GET", &format!("/v1/tasks/{id}"), None);
    assert_eq!(status, 200);
    assert_eq!(show["task"]["id"], id);
    let (status, e) = s.call("GET", "/v1/tasks/99999", None);
    assert_eq!(status, 404, "{e}");
    let (status, e) = s.call("POST", "/v1/agents/heartbeat", Some(r#"{"token":"1.00"}"#));
    assert_eq!(status, 403, "{e}");
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails, naming the install step, when python3 cannot import `module`.
pub(super) fn require_python(module: &str) {
    assert!(
        python_has(module),
        "python3 cannot import {module}: run .ci/run's install step (python3 -m pip install {module})"
    );
}

pub(super) fn script(name: &str) -> String {
    format!("{}/tests/http/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn mcp_over_streamable_http_with_the_python_sdk() {
    require_python("mcp");
    let s = Server::start();
    let (ok, out) = run_with_deadline(
        Command::new("python3")
            .arg(script("mcp_http_client.py"))
            .args([&s.url(), &s.token]),
        180,
    );
    assert!(ok, "{out}");
    // The tools ran in the daemon's own service, as the HTTP server's principal: not through
    // a client of the daemon's socket (which would act, and be audited, as the socket's owner).
    let out = s.env.run(&["audit", "ls", "--json"]);
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let created = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "session.new" && e["session"] == "mcp-http")
        .unwrap_or_else(|| panic!("no session.new of mcp-http in {entries}"));
    assert_eq!(created["actor"]["kind"], "http_token", "{created}");
}

/// The OpenAPI document is valid OpenAPI 3.1, and schemathesis' generated requests (valid and
/// invalid) never get a 5xx. Operations that block by design until a deadline the request sets
/// (exec, wait, bus request, task claim) are left out of the fuzzing: they are tested above.
#[test]
fn openapi_document_is_valid_and_fuzzing_finds_no_server_error() {
    require_python("schemathesis");
    require_python("openapi_spec_validator");
    let s = Server::start();
    let (status, doc) = s.call("GET", "/openapi.json", None);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let file = s.env.home.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let (ok, out) = run_with_deadline(
        Command::new("python3").args([
            "-c",
            "import sys, json; from openapi_spec_validator import validate; validate(json.load(open(sys.argv[1]))); print('valid')",
            file.to_str().unwrap(),
        ]),
        60,
    );
    assert!(ok, "{out}");
    let (ok, out) = run_with_deadline(
        Command::new("python3")
            .args(["-m", "schemathesis.cli", "run"])
            .arg(file.to_str().unwrap())
            .args(["--url", &s.url()])
            .args(["-H", &format!("Authorization: Bearer {}", s.token)])
            .args(["--checks", "not_a_server_error"])
            .args([
                "--exclude-path-regex",
                "/(exec|wait)$|/bus/request$|/tasks/claim$",
            ])
            .args([
                "--max-examples",
                "15",
                "--max-time",
                "120",
                "--request-timeout",
                "20",
            ])
            .args(["--seed", "1"])
            .env("HOME", s.env.home.path())
            .current_dir(s.env.home.path()),
        240,
    );
    assert!(ok, "schemathesis found problems:\n{out}");
    let (status, _) = s.call("GET", "/v1/status", None);
    assert_eq!(status, 200, "the daemon went down under fuzzing");
}

#[test]
fn an_api_token_over_http_holds_only_its_capabilities() {
    let s = Server::start();
    new_session(&s, "build");
    new_session(&s, "secret");
    let out = s.env.run(&[
        "access",
        "token",
        "--json",
        "--cap",
        "session:read:build",
        "--cap",
        "session:list",
    ]);
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    let auth = format!("Bearer {}", made["token"].as_str().unwrap());
    let call = |method: &str, path: &str, body: Option<&str>| {
        request(&s.addr, method, path, Some(&auth), body)
    };
    let (status, list) = call("GET", "/v1/sessions", None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["sessions"][0]["name"], "build");
    let (status, _) = call("GET", "/v1/sessions/build/capture", None);
    assert_eq!(status, 200);
    let (status, err) = call(
        "POST",
        "/v1/sessions/build/exec",
        Some(r#"{"command":"id"}"#),
    );
    assert_eq!(status, 403, "{err}");
    assert!(err.to_string().contains("session:exec:build"), "{err}");
    let (status, _) = call("GET", "/v1/sessions/secret/capture", None);
    assert_eq!(status, 403);
    // MCP over HTTP is the owner's only.
    let (status, _) = call("POST", "/mcp", Some("{}"));
    assert_eq!(status, 403);
    // The stream of a session it may not read is refused before the upgrade.
    let mut req = format!("ws://{}/v1/sessions/secret/stream", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", auth.parse().unwrap());
    let stream = TcpStream::connect(&s.addr).unwrap();
    assert!(tungstenite::client(req, stream).is_err());
    // A revoked or forged token is a 401.
    s.env
        .ok(&["access", "revoke-token", made["id"].as_str().unwrap()]);
    let (status, _) = call("GET", "/v1/sessions", None);
    assert_eq!(status, 401);
}

/// One request with the given `Host` (raw_request sends the real address) and headers; the
/// status and the body.
fn with_host(
    addr: &str,
    method: &str,
    path: &str,
    host: &str,
    auth: &str,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_DEADLINE)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n{}");
    s.write_all(head.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp)
}

#[test]
fn dns_rebinding_and_foreign_origins_are_refused_on_every_route() {
    let s = Server::start();
    new_session(&s, "w");
    let auth = format!("Bearer {}", s.token);
    let port = s.addr.rsplit(':').next().unwrap().to_owned();
    let evil = format!("evil.example:{port}");
    let routes = [
        ("GET", "/v1/status"),
        ("GET", "/v1/sessions"),
        ("POST", "/v1/sessions/w/exec"),
        ("DELETE", "/v1/sessions/w"),
        ("GET", "/v1/sessions/w/stream"),
        ("GET", "/openapi.json"),
        ("POST", "/mcp"),
    ];
    for (method, path) in routes {
        // A page whose name the attacker pointed at 127.0.0.1: the browser sends its Host.
        let (status, body) = with_host(&s.addr, method, path, &evil, &auth, &[]);
        assert_eq!(status, 403, "{method} {path} with Host {evil}: {body}");
        assert!(body.contains("forbidden_origin"), "{body}");
        // A page of another origin (another port of this machine, a sandboxed frame).
        for origin in ["http://localhost:3000", "http://evil.example", "null"] {
            let (status, body) =
                with_host(&s.addr, method, path, &s.addr, &auth, &[("Origin", origin)]);
            assert_eq!(status, 403, "{method} {path} from {origin}: {body}");
        }
    }
    // The server's own names and its own origin pass.
    for host in [s.addr.clone(), format!("localhost:{port}")] {
        let origin = format!("http://{host}");
        let (status, body) = with_host(
            &s.addr,
            "GET",
            "/v1/status",
            &host,
            &auth,
            &[("Origin", &origin)],
        );
        assert_eq!(status, 200, "{host}: {body}");
    }
    // A WebSocket upgrade from a foreign origin is refused before the upgrade.
    let mut req = format!("ws://{}/v1/sessions/w/stream", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Authorization", auth.parse().unwrap());
    req.headers_mut()
        .insert("Origin", "http://evil.example".parse().unwrap());
    let stream = TcpStream::connect(&s.addr).unwrap();
    assert!(tungstenite::client(req, stream).is_err());
    // The session is still there: nothing above reached it.
    let (status, _) = s.call("GET", "/v1/sessions/w", None);
    assert_eq!(status, 200);
}

#[test]
fn token_failures_look_alike_and_are_audited_with_a_rate_limit() {
    let s = Server::start();
    let out = s
        .env
        .run(&["access", "token", "--json", "--cap", "session:list"]);
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = made["token"].as_str().unwrap();
    let (prefix, secret) = token.rsplit_once('.').unwrap();
    let (daemon_part, _id) = prefix.rsplit_once('.').unwrap();
    let unknown_id = format!("{daemon_part}.0badc0de.{secret}");
    let wrong_secret = format!("{prefix}.{}", "0".repeat(64));
    let mut answers = Vec::new();
    for t in [unknown_id.as_str(), wrong_secret.as_str(), "garbage"] {
        let auth = format!("Bearer {t}");
        answers.push(request(&s.addr, "GET", "/v1/sessions", Some(&auth), None));
    }
    answers.push(request(&s.addr, "GET", "/v1/sessions", None, None));
    for (status, body) in &answers {
        assert_eq!(*status, 401, "{body}");
        assert_eq!(body, &answers[0].1, "every failure answers alike");
    }
    let (status, _) = request(
        &s.addr,
        "GET",
        "/v1/sessions",
        Some(&format!("Bearer {token}")),
        None,
    );
    assert_eq!(status, 200);

    // The owner sees each refusal and its real reason in the audit log.
    let unauthorized = || -> Vec<Value> {
        let entries: Value = serde_json::from_str(&s.env.ok(&["audit", "ls", "--json"])).unwrap();
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "http.unauthorized")
            .cloned()
            .collect()
    };
    let seen = unauthorized();
    assert_eq!(seen.len(), 4, "{seen:?}");
    let details: Vec<&str> = seen.iter().map(|e| e["detail"].as_str().unwrap()).collect();
    assert!(
        details.iter().any(|d| d.contains("unknown or was revoked")),
        "{details:?}"
    );
    assert!(
        details.iter().any(|d| d.contains("wrong secret")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .all(|d| d.contains("GET /v1/sessions from 127.0.0.1"))
    );
    assert!(
        details.iter().all(|d| !d.contains(secret)),
        "no secret in the log"
    );
    assert!(seen.iter().all(|e| e["actor"]["kind"] == "anonymous"));
    assert!(seen.iter().all(|e| e["risk"].as_u64().unwrap() >= 60));
    // A flood is recorded up to the window's quota, not line by line.
    for _ in 0..40 {
        let (status, _) = request(&s.addr, "GET", "/v1/status", Some("Bearer nope"), None);
        assert_eq!(status, 401);
    }
    assert_eq!(unauthorized().len(), 20);
}
