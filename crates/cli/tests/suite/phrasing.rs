//! Every front end speaks its caller's language: the same situation (a command still running,
//! a busy session, a wrong argument) gets a hint in the CLI's syntax on the socket, in routes and
//! JSON fields over HTTP, and in tools and arguments over MCP (`crates/mcp/tests`), and none of
//! them mentions another front end's syntax. Errors about params name the field in plain words.

use serde_json::{Value, json};

use super::harness::Env;
use super::http::Server;

/// Hints of the other front ends, none of which may show up in an HTTP answer.
const NOT_HTTP: &[&str] = &["ai-session ", "session_wait", "session_send_keys", " -t "];
/// Words of the decoder that a person should never read.
const JARGON: &[&str] = &[
    "invalid type",
    "expected u64",
    "unknown variant",
    "deserialize",
];

fn hint(v: &Value) -> String {
    v["hint"]
        .as_str()
        .or_else(|| v["error"]["hint"].as_str())
        .unwrap_or_else(|| panic!("no hint in {v}"))
        .to_owned()
}

fn assert_speaks_http(v: &Value) {
    let h = hint(v);
    for foreign in NOT_HTTP {
        assert!(!h.contains(foreign), "HTTP hint mentions {foreign:?}: {h}");
    }
    assert!(v.get("advice").is_none(), "unphrased advice leaked: {v}");
}

#[test]
fn http_hints_name_routes_and_json_fields() {
    let s = Server::start();
    let (status, _) = s.call("POST", "/v1/sessions", Some(r#"{"name":"h"}"#));
    assert_eq!(status, 201);
    let (status, running) = s.call(
        "POST",
        "/v1/sessions/h/exec",
        Some(r#"{"command":"echo begin; sleep 30","idle_timeout_ms":500,"timeout_ms":30000}"#),
    );
    assert_eq!(status, 200, "{running}");
    assert_eq!(running["status"], "running", "{running}");
    assert_speaks_http(&running);
    let h = hint(&running);
    assert!(
        h.contains(r#"POST /v1/sessions/h/wait {"condition":{"kind":"prompt"}}"#),
        "{h}"
    );
    let end = running["output_end"].as_u64().unwrap();
    assert!(
        h.contains(&format!("GET /v1/sessions/h/read?since={end}")),
        "{h}"
    );

    // The session is busy: 409, and the hint says how to wait or interrupt, over HTTP.
    let (status, busy) = s.call(
        "POST",
        "/v1/sessions/h/exec",
        Some(r#"{"command":"echo no"}"#),
    );
    assert_eq!(
        (status, busy["error"]["kind"].as_str()),
        (409, Some("session_busy")),
        "{busy}"
    );
    assert_speaks_http(&busy["error"]);
    assert!(
        hint(&busy).contains(r#"POST /v1/sessions/h/send {"keys":["C-c"]}"#),
        "{busy}"
    );

    // An unknown session with none left lists how to create one, over HTTP.
    let (status, _) = s.call("POST", "/v1/sessions/h/send", Some(r#"{"keys":["C-c"]}"#));
    assert_eq!(status, 200);
    let (status, _) = s.call("DELETE", "/v1/sessions/h", None);
    assert_eq!(status, 200);
    let (status, gone) = s.call("POST", "/v1/sessions/h/exec", Some(r#"{"command":"true"}"#));
    assert_eq!(status, 404, "{gone}");
    assert_speaks_http(&gone["error"]);
    assert!(hint(&gone).contains("POST /v1/sessions"), "{gone}");
}

#[test]
fn http_params_errors_name_the_field_in_plain_words() {
    let s = Server::start();
    let (status, _) = s.call("POST", "/v1/sessions", Some(r#"{"name":"p"}"#));
    assert_eq!(status, 201);
    let cases = [
        (
            r#"{"command":"true","timeout_ms":"soon"}"#,
            r#"`timeout_ms` must be a whole number, 0 or more, not the string "soon""#,
        ),
        (r#"{"timeout_ms":100}"#, "`command` is required"),
        (
            r#"{"command":"true","timeout_ms":-1}"#,
            "`timeout_ms` must be a whole number, 0 or more, not the number -1",
        ),
    ];
    for (body, want) in cases {
        let (status, e) = s.call("POST", "/v1/sessions/p/exec", Some(body));
        assert_eq!(status, 422, "{body}: {e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert_eq!(message, want, "{body}");
    }
    let (status, e) = s.call(
        "POST",
        "/v1/sessions/p/wait",
        Some(r#"{"condition":{"kind":"soon"}}"#),
    );
    assert_eq!(status, 422, "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("`condition` cannot be \"soon\""),
        "{message}"
    );
    for word in JARGON {
        assert!(!message.contains(word), "{message}");
    }
}

#[test]
fn socket_hints_are_cli_commands_with_the_advice_beside_them() {
    let env = Env::new();
    env.ok(&["new", "-s", "c"]);
    let r = env.json(&["exec", "-t", "c", "--idle-timeout", "0.3", "sleep 30"]);
    assert_eq!(r["status"], "running", "{r}");
    let h = hint(&r);
    // The CLI names the daemon the user chose (`-L t`), so the command can be run as it is.
    assert!(h.contains("ai-session -L t wait -t c --prompt"), "{h}");
    assert!(h.contains("ai-session -L t send -t c C-c"), "{h}");
    for foreign in ["session_wait", "POST /v1"] {
        assert!(!h.contains(foreign), "{h}");
    }
    // The unphrased form travels with it, for clients that phrase hints their own way.
    assert_eq!(
        r["advice"]["steps"][0],
        json!({"step": "call", "method": "session.wait",
               "params": {"target": "c", "condition": {"kind": "prompt"}}}),
        "{r}"
    );
    env.ok(&["send", "-t", "c", "C-c"]);
}

/// Values a context refuses (a compression threshold out of range, a task that would be its own
/// parent) are the caller's mistake: 422 `invalid_params`, not a 500 (schemathesis found both
/// once the context routes existed).
#[test]
fn context_routes_refuse_bad_values_as_invalid_params() {
    let s = Server::start();
    let (status, _) = s.call("POST", "/v1/sessions", Some(r#"{"name":"x"}"#));
    assert_eq!(status, 201);
    for (path, body) in [
        (
            "/v1/sessions/x/context/config",
            r#"{"compression_threshold": 0}"#,
        ),
        (
            "/v1/sessions/x/context/tasks",
            r#"{"id": "t", "parent": "t"}"#,
        ),
    ] {
        let (status, e) = s.call("POST", path, Some(body));
        assert_eq!(
            (status, e["error"]["kind"].as_str()),
            (422, Some("invalid_params")),
            "{path} {body}: {e}"
        );
    }
    let (status, added) = s.call(
        "POST",
        "/v1/sessions/x/context",
        Some(r#"{"role": "note", "text": "kept"}"#),
    );
    assert_eq!(status, 201, "{added}");
    let id = added["id"].as_u64().unwrap();
    let (status, entry) = s.call("GET", &format!("/v1/sessions/x/context/{id}"), None);
    assert_eq!(status, 200, "{entry}");
    assert!(entry.to_string().contains("kept"), "{entry}");
}

/// A caller of HTTP or MCP never reads a command line: every refusal below came, before, with
/// an `ai-session ...` command in its hint (a token without a capability, a token that is not
/// one, an unknown context entry or decision, a prune without a rule, an outcome set to
/// `unknown`, the 401 of a missing token, cluster nodes asked of a daemon alone).
fn assert_no_command_line(what: &str, v: &Value) {
    let text = v.to_string();
    assert!(!text.contains("ai-session "), "{what}: {text}");
    assert!(!text.contains(" -t "), "{what}: {text}");
}

#[test]
fn refusals_over_http_and_mcp_name_no_cli_command() {
    let s = Server::start();
    let (status, _) = s.call("POST", "/v1/sessions", Some(r#"{"name":"h"}"#));
    assert_eq!(status, 201);
    let reader = s
        .env
        .ok(&["access", "token", "--cap", "session:read:*"])
        .trim()
        .to_owned();

    let denied: &[(&str, &str, Option<&str>)] = &[
        ("POST", "/v1/sessions/h/exec", Some(r#"{"command":"true"}"#)),
        ("POST", "/v1/sessions/h/snapshots", Some("{}")),
        ("GET", "/v1/snapshots", None),
    ];
    for (method, path, body) in denied {
        let (status, e) = s.call_as(&reader, method, path, *body);
        assert_eq!(status, 403, "{method} {path}: {e}");
        assert_speaks_http(&e["error"]);
        assert_no_command_line(path, &e);
        assert!(hint(&e).contains("access.grant"), "{e}");
    }
    let (status, e) = s.call_as("ais.not-a-token", "GET", "/v1/status", None);
    assert_eq!(status, 401, "{e}");
    assert_no_command_line("a malformed token", &e);

    let owner: &[(&str, &str, Option<&str>, u16)] = &[
        ("GET", "/v1/sessions/h/context/999", None, 404),
        ("POST", "/v1/snapshots/prune", Some("{}"), 422),
        ("GET", "/v1/decisions/show?id=999", None, 404),
        ("GET", "/v1/cluster/nodes", None, 409),
        (
            "POST",
            "/v1/decisions/outcome",
            Some(r#"{"id":1,"outcome":"unknown"}"#),
            422,
        ),
    ];
    for (method, path, body, want) in owner {
        let (status, e) = s.call(method, path, *body);
        assert_eq!(status, *want, "{method} {path}: {e}");
        assert_speaks_http(&e["error"]);
        assert_no_command_line(path, &e);
    }

    // The same refusals over MCP (stdio), for a server acting with the reader's token, then
    // with a token that is not one.
    let calls = [
        ("session_exec", json!({"session": "h", "command": "true"})),
        ("snapshot_create", json!({"session": "h"})),
        ("snapshot_list", json!({})),
        ("context_get", json!({"session": "nope"})),
        ("snapshot_restore", json!({"snapshot": "nope"})),
    ];
    let calls: Vec<(&str, Value)> = calls
        .into_iter()
        .map(|(tool, args)| ("tools/call", json!({"name": tool, "arguments": args})))
        .collect();
    for token in [reader.as_str(), "ais.not-a-token"] {
        let answers = mcp_stdio(&s.env, Some(token), &calls);
        for ((_, call), answer) in calls.iter().zip(&answers) {
            let tool = &call["name"];
            assert_eq!(answer["result"]["isError"], true, "{tool}: {answer}");
            assert_no_command_line(&tool.to_string(), answer);
        }
        assert!(answers[0].to_string().contains("access."), "{}", answers[0]);
    }

    // The API's own description speaks HTTP too.
    let (_, doc) = s.call("GET", "/openapi.json", None);
    assert_no_command_line("/openapi.json", &doc);

    // An audit log damaged under the daemon: reading it over HTTP says how it is repaired.
    let log = s.env.home.path().join("servers/t/audit.jsonl");
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("\"action\"", "\"acti0n\"", 1)).unwrap();
    let (status, e) = s.call("GET", "/v1/audit", None);
    assert_eq!(e["error"]["kind"], "audit_unavailable", "{status} {e}");
    assert_no_command_line("a damaged audit log", &e);
    assert!(hint(&e).contains("audit.repair"), "{e}");
}

/// Sends `requests` (method, params) to `ai-session mcp`, run with `$AI_SESSION_TOKEN` =
/// `token` when given, in the 2026-07-28 protocol (each request carries its own metadata); the
/// answers in order.
fn mcp_stdio(env: &Env, token: Option<&str>, requests: &[(&str, Value)]) -> Vec<Value> {
    use std::io::{BufRead, Write};
    let mut cmd = env.command(&["mcp"]);
    match token {
        Some(t) => cmd.env("AI_SESSION_TOKEN", t),
        None => cmd.env_remove("AI_SESSION_TOKEN"),
    };
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ai-session mcp");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "suite", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let mut answers = Vec::new();
    for (id, (method, params)) in requests.iter().enumerate() {
        let mut params = params.clone();
        params["_meta"] = meta.clone();
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(stdin, "{request}").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let answer = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{method}: no answer within 60 s"));
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == json!(id) {
                break v;
            }
        };
        answers.push(answer);
    }
    // End of input ends the server.
    drop(stdin);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("ai-session mcp did not end with its input");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    answers
}

/// One unit for durations: milliseconds, under the same `*_ms` names, over HTTP and MCP (and
/// in the library, whose params are the protocol's). MCP still takes the old `*_secs` names in
/// seconds, refuses both at once, and offers only the `*_ms` ones in its tool schemas.
#[test]
fn durations_are_milliseconds_under_one_name_everywhere() {
    let s = Server::start();
    let (status, _) = s.call("POST", "/v1/sessions", Some(r#"{"name":"u"}"#));
    assert_eq!(status, 201);
    let (status, w) = s.call(
        "POST",
        "/v1/sessions/u/wait",
        Some(r#"{"condition":{"kind":"regex","pattern":"never-printed"},"timeout_ms":200}"#),
    );
    assert_eq!(
        (status, w["error"]["kind"].as_str()),
        (408, Some("timeout")),
        "{w}"
    );

    let tool = |name: &str, args: Value| ("tools/call", json!({"name": name, "arguments": args}));
    let answers = mcp_stdio(
        &s.env,
        None,
        &[
            ("tools/list", json!({})),
            tool(
                "session_wait",
                json!({"session": "u", "regex": "never-printed", "timeout_ms": 200}),
            ),
            tool(
                "session_wait",
                json!({"session": "u", "regex": "never-printed", "timeout_secs": 0.2}),
            ),
            tool(
                "session_wait",
                json!({"session": "u", "regex": "x", "timeout_ms": 200, "timeout_secs": 1}),
            ),
            tool(
                "session_exec",
                json!({"session": "u", "command": "sleep 3", "idle_timeout_ms": 300}),
            ),
        ],
    );
    let tools = answers[0]["result"]["tools"].as_array().unwrap();
    for (name, field) in [
        ("session_exec", "timeout_ms"),
        ("session_wait", "timeout_ms"),
    ] {
        let t = tools.iter().find(|t| t["name"] == name).unwrap();
        let props = &t["inputSchema"]["properties"];
        assert!(props.get(field).is_some(), "{name}: {props}");
        assert!(props.get("timeout_secs").is_none(), "{name}: {props}");
    }
    for answer in &answers[1..3] {
        let e = &answer["result"]["structuredContent"]["error"];
        assert_eq!(e["kind"], "timeout", "{answer}");
    }
    let both = &answers[3]["result"]["structuredContent"]["error"];
    assert_eq!(both["kind"], "invalid_params", "{both}");
    assert!(
        both["message"].as_str().unwrap().contains("timeout_ms"),
        "{both}"
    );
    let running = &answers[4]["result"]["structuredContent"];
    assert_eq!(running["status"], "running", "{running}");
    s.env
        .ok(&["wait", "-t", "u", "--prompt", "--timeout", "20s"]);

    // The CLI writes durations with their unit (a bare number keeps the flag's old unit), and
    // phrases the advice the same way.
    let timeout = s
        .env
        .json(&["exec", "-t", "u", "--timeout", "300ms", "sleep 3"]);
    assert_eq!(timeout["status"], "timeout", "{timeout}");
    s.env
        .ok(&["wait", "-t", "u", "--prompt", "--timeout", "20"]);
    let running = s
        .env
        .json(&["exec", "-t", "u", "--idle-timeout", "300ms", "sleep 3"]);
    assert_eq!(running["status"], "running", "{running}");
    let idle = s
        .env
        .json(&["wait", "-t", "u", "--idle", "200ms", "--timeout", "1m"]);
    assert!(
        idle["waited_ms"].as_f64().is_some_and(|ms| ms >= 150.0),
        "{idle}"
    );
    let out = s.env.run(&["exec", "-t", "u", "--timeout", "3d", "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("500ms, 30s"), "{err}");
}
