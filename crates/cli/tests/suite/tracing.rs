//! Spans end to end: a real OTLP/HTTP receiver (a loopback server decoding the protobuf with
//! the official `opentelemetry-proto` types) receives the daemon's spans; the CLI's
//! `TRACEPARENT`, an MCP tool call's `_meta.traceparent` (through the real `ai-session mcp`
//! over stdio) and the HTTP `traceparent` header each make the request's span a child of the
//! caller's; a collector that accepts and never answers slows no exec and grows no memory.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{Value, json};

use super::harness::{Env, eventually};

const CLI_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLI_PARENT: &str = "00f067aa0ba902b7";
const MCP_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const MCP_PARENT: &str = "b7ad6b7169203331";
const HTTP_TRACE: &str = "a3ce929d0e0e47364bf92f3577b34da6";
const HTTP_PARENT: &str = "1234567890abcdef";

fn traceparent(trace: &str, parent: &str) -> String {
    format!("00-{trace}-{parent}-01")
}

/// A span as received, with the resource's `service.name`.
#[derive(Clone, Debug)]
struct Got {
    span: Span,
    service: Option<String>,
}

impl Got {
    fn attr(&self, key: &str) -> Option<any_value::Value> {
        find(&self.span.attributes, key)
    }
    fn str(&self, key: &str) -> String {
        match self.attr(key) {
            Some(any_value::Value::StringValue(s)) => s,
            other => panic!("{key} is {other:?} in {:?}", self.span),
        }
    }
    fn int(&self, key: &str) -> i64 {
        match self.attr(key) {
            Some(any_value::Value::IntValue(n)) => n,
            other => panic!("{key} is {other:?} in {:?}", self.span),
        }
    }
}

fn find(attrs: &[KeyValue], key: &str) -> Option<any_value::Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.clone())
        .and_then(|v: AnyValue| v.value)
}

/// An OTLP/HTTP receiver on a free loopback port: decodes every `POST /v1/traces` body as
/// `ExportTraceServiceRequest` and keeps its spans. `silent` accepts connections and never
/// answers (a hung collector).
struct Collector {
    addr: String,
    spans: Arc<Mutex<Vec<Got>>>,
}

impl Collector {
    fn start(silent: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().flatten() {
                if silent {
                    held.push(stream);
                    continue;
                }
                let kept = kept.clone();
                std::thread::spawn(move || serve(stream, &kept));
            }
        });
        Self { addr, spans }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn spans(&self) -> Vec<Got> {
        self.spans.lock().expect("spans").clone()
    }

    /// Waits for a span matching `pred`.
    fn wait(&self, what: &str, pred: impl Fn(&Got) -> bool) -> Got {
        let mut found = None;
        eventually(30, what, || {
            found = self.spans().into_iter().find(|g| pred(g));
            found.is_some()
        });
        found.expect("found")
    }
}

/// Answers HTTP/1.1 requests on one connection until it closes.
fn serve(stream: TcpStream, kept: &Mutex<Vec<Got>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        assert_eq!(path, "/v1/traces", "spans posted to the wrong path");
        let req = ExportTraceServiceRequest::decode(body.as_slice()).expect("OTLP protobuf");
        for rs in req.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| find(&r.attributes, "service.name"))
                .and_then(|v| match v {
                    any_value::Value::StringValue(s) => Some(s),
                    _ => None,
                });
            for ss in rs.scope_spans {
                for span in ss.spans {
                    kept.lock().expect("spans").push(Got {
                        span,
                        service: service.clone(),
                    });
                }
            }
        }
        let answer =
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
        if out.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A daemon whose config sends spans to `endpoint`.
fn traced_env(endpoint: &str, extra: &str) -> Env {
    let env = Env::new();
    std::fs::write(
        env.home.path().join("config.toml"),
        format!("[telemetry]\notlp_endpoint = \"{endpoint}\"\nexport_interval_ms = 100\n{extra}"),
    )
    .expect("config");
    env.ok(&["new", "-s", "w"]);
    env
}

/// `ai-session mcp` on stdio, initialized.
pub(super) struct Mcp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Mcp {
    pub(super) fn start(env: &Env) -> Self {
        let mut child = env
            .command(&["mcp", "--tools", "all"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("ai-session mcp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut mcp = Self {
            child,
            stdin,
            stdout,
        };
        mcp.call(
            1,
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "trace-test", "version": "1"}}),
        );
        mcp.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        mcp
    }

    fn send(&mut self, msg: &Value) {
        let mut line = msg.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).expect("write");
        self.stdin.flush().expect("flush");
    }

    pub(super) fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).expect("read") > 0,
                "mcp closed"
            );
            let v: Value = serde_json::from_str(&line).expect("json");
            if v["id"] == json!(id) {
                return v;
            }
        }
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[test]
fn spans_join_the_callers_trace_from_traceparent_mcp_meta_and_http() {
    let collector = Collector::start(false);
    let env = traced_env(&collector.endpoint(), "record_commands = true\n");

    // The CLI, run inside a traced program.
    let out = env
        .command(&[
            "exec",
            "-t",
            "w",
            "--json",
            "echo hi; DB_PASSWORD=hunter2 true",
        ])
        .env("TRACEPARENT", traceparent(CLI_TRACE, CLI_PARENT))
        .output()
        .expect("exec");
    assert!(out.status.success(), "{out:?}");

    // An MCP client whose tool call carries `_meta.traceparent`.
    let mut mcp = Mcp::start(&env);
    let r = mcp.call(
        7,
        "tools/call",
        json!({"name": "session_exec",
               "arguments": {"session": "w", "command": "ls /nonexistent-dir"},
               "_meta": {"traceparent": traceparent(MCP_TRACE, MCP_PARENT)}}),
    );
    assert!(r.get("result").is_some(), "{r}");

    // An HTTP client sending the `traceparent` header.
    let served = env.json(&["serve", "--listen", "127.0.0.1:0"]);
    let addr = served["listen"].as_str().expect("listen").to_owned();
    let token =
        std::fs::read_to_string(served["token_file"].as_str().expect("token_file")).expect("token");
    let body = r#"{"command":"true"}"#;
    let mut s = TcpStream::connect(&addr).expect("connect");
    write!(
        s,
        "POST /v1/sessions/w/exec HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\ntraceparent: {}\r\nContent-Length: {}\r\n\r\n{body}",
        token.trim(),
        traceparent(HTTP_TRACE, HTTP_PARENT),
        body.len()
    )
    .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    assert!(
        resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.0 200"),
        "{resp}"
    );

    let cli = collector.wait("the CLI exec's span", |g| {
        hex(&g.span.trace_id) == CLI_TRACE && g.span.name.starts_with("execute_tool")
    });
    assert_eq!(hex(&cli.span.parent_span_id), CLI_PARENT);
    assert_eq!(cli.span.name, "execute_tool session_exec");
    assert_eq!(cli.service.as_deref(), Some("ai-session"));
    assert_eq!(cli.str("gen_ai.operation.name"), "execute_tool");
    assert_eq!(cli.str("gen_ai.tool.name"), "session_exec");
    assert_eq!(cli.str("rpc.method"), "session.exec");
    assert_eq!(cli.int("process.exit.code"), 0);
    assert!(cli.int("process.pid") > 1);
    assert_eq!(cli.str("process.executable.name"), "echo");
    assert_eq!(cli.str("ai_session.session.name"), "w");
    assert!(!cli.str("ai_session.session.id").is_empty());
    assert_eq!(cli.str("ai_session.exec.status"), "exited");
    assert_eq!(cli.str("ai_session.result"), "ok");
    assert_eq!(cli.str("ai_session.principal"), "owner");
    assert!(cli.int("ai_session.exec.output_bytes") >= 3);
    assert!(cli.int("ai_session.exec.tokens.raw") >= 1);
    assert!(cli.int("ai_session.exec.tokens.returned") >= 1);
    assert!(!cli.str("ai_session.cwd").is_empty());
    assert!(!cli.str("ai_session.exec.completion").is_empty());
    assert_eq!(
        cli.str("ai_session.exec.command"),
        "echo hi; DB_PASSWORD=*** true",
        "the command is recorded with its secret masked"
    );
    assert!(cli.attr("ai_session.exec.duration_ms").is_some());

    let tool = collector.wait("the MCP tool call's span", |g| {
        hex(&g.span.trace_id) == MCP_TRACE && g.span.name.starts_with("execute_tool")
    });
    assert_eq!(hex(&tool.span.parent_span_id), MCP_PARENT);
    assert_eq!(tool.str("gen_ai.tool.name"), "session_exec");
    assert_eq!(tool.str("gen_ai.tool.call.id"), "7");
    assert_ne!(tool.int("process.exit.code"), 0);

    let http = collector.wait("the HTTP request's span", |g| {
        hex(&g.span.trace_id) == HTTP_TRACE
    });
    assert_eq!(hex(&http.span.parent_span_id), HTTP_PARENT);
    assert_eq!(http.str("rpc.method"), "session.exec");
    assert_eq!(http.str("ai_session.principal"), "http");

    // Every other request is a span too, a root of its own trace.
    let new = collector.wait("session.new's span", |g| g.span.name == "session.new");
    assert!(new.span.parent_span_id.is_empty());
    assert_eq!(new.str("ai_session.session.name"), "w");
}

#[test]
fn commands_stay_out_of_spans_unless_the_config_allows() {
    let collector = Collector::start(false);
    let env = traced_env(&collector.endpoint(), "");
    let out = env
        .command(&["exec", "-t", "w", "--json", "API_TOKEN=abc printenv HOME"])
        .env("TRACEPARENT", traceparent(CLI_TRACE, CLI_PARENT))
        .output()
        .expect("exec");
    assert!(out.status.success(), "{out:?}");
    let span = collector.wait("the exec's span", |g| {
        hex(&g.span.trace_id) == CLI_TRACE && g.span.name.starts_with("execute_tool")
    });
    assert!(span.attr("ai_session.exec.command").is_none());
    assert_eq!(span.str("process.executable.name"), "printenv");
}

/// Reads the daemon's resident memory in KiB.
fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn a_hung_collector_slows_no_exec_and_grows_no_memory() {
    let collector = Collector::start(true);
    // Each export waits 30 s for an answer that never comes: a request that waited for the
    // exporter would take that long.
    let env = traced_env(
        &collector.endpoint(),
        "export_timeout_ms = 30000\nmax_queue_spans = 64\n",
    );
    for _ in 0..20 {
        let started = Instant::now();
        let r = env.exec("w", "true");
        assert_eq!(r["exit_code"], 0, "{r}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "an exec waited {:?} with the collector hung",
            started.elapsed()
        );
    }
    // The same requests against a daemon whose queue takes a million spans: what the bounded
    // one would grow by if its bound did not hold. The bounded daemon must grow by a small part
    // of that (a test that cannot tell the two apart proves nothing).
    let started = Instant::now();
    // The bounded daemon's least growth of three rounds (an arena opened once, or answers
    // buffered for a reader slowed by a loaded machine, is not growth: a queue that kept every
    // span would grow in each round), against all the control grew over three.
    let bounded = growth(&env, 3).into_iter().min().unwrap_or_default();
    let control = traced_env(
        &collector.endpoint(),
        "export_timeout_ms = 30000\nmax_queue_spans = 1000000\n",
    );
    let unbounded: u64 = growth(&control, 3).into_iter().sum();
    eprintln!(
        "grown: {bounded} KiB bounded (over {LISTS} requests), {unbounded} KiB with a queue of a \
         million (over {} requests)",
        3 * LISTS
    );
    assert!(
        unbounded > 8 * 1024 && bounded * 3 < unbounded,
        "the daemon grew by {bounded} KiB over {LISTS} requests with the collector hung, against \
         {unbounded} KiB over {} with a queue of a million spans",
        3 * LISTS
    );
    assert!(
        started.elapsed() < Duration::from_secs(240),
        "{} requests took {:?}",
        7 * LISTS,
        started.elapsed()
    );
}

/// Requests per batch in [`growth`].
const LISTS: usize = 30_000;

/// How much `env`'s daemon grows over each of `rounds` rounds of [`LISTS`] pipelined requests,
/// after as many have warmed its allocator's arenas and buffers up. Memory the warm-up round
/// freed (answers it buffered for a slow reader on a loaded machine) is reused by the next
/// rounds, so one round's figure can hide a queue that keeps every span; over several rounds
/// such a queue still grows in each of them.
fn growth(env: &Env, rounds: usize) -> Vec<u64> {
    let pid = env.daemon_pid();
    let sock = env.home.path().join("run").join("t.sock");
    pipelined_lists(&sock, LISTS);
    (0..rounds)
        .map(|_| {
            let before = rss_kib(pid);
            pipelined_lists(&sock, LISTS);
            rss_kib(pid).saturating_sub(before)
        })
        .collect()
}

/// Sends `n` pipelined `session.list` requests on one connection and reads every answer.
fn pipelined_lists(sock: &std::path::Path, n: usize) {
    let stream = std::os::unix::net::UnixStream::connect(sock).expect("socket");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let sender = std::thread::spawn(move || {
        let mut batch = String::new();
        for id in 0..n {
            batch.push_str(&format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"session.list\",\"params\":{{}}}}\n"
            ));
            if batch.len() > 64 * 1024 {
                writer.write_all(batch.as_bytes()).expect("write");
                batch.clear();
            }
        }
        writer.write_all(batch.as_bytes()).expect("write");
        writer
    });
    let mut line = String::new();
    for _ in 0..n {
        line.clear();
        reader.read_line(&mut line).expect("answer");
        assert!(line.contains("\"result\""), "{line}");
    }
    drop(sender.join());
}

#[test]
fn an_anomaly_is_an_event_on_the_span_that_raised_it() {
    let collector = Collector::start(false);
    let env = traced_env(&collector.endpoint(), "[alerts]\nretry_count = 2\n");
    for _ in 0..2 {
        let out = env
            .command(&["exec", "-t", "w", "--json", "false"])
            .env("TRACEPARENT", traceparent(CLI_TRACE, CLI_PARENT))
            .output()
            .expect("exec");
        assert!(!out.status.success());
    }
    let span = collector.wait("the span carrying the alert", |g| {
        g.span.events.iter().any(|e| e.name == "ai_session.alert")
    });
    assert_eq!(hex(&span.span.trace_id), CLI_TRACE);
    let event = span
        .span
        .events
        .iter()
        .find(|e| e.name == "ai_session.alert")
        .expect("event");
    assert_eq!(
        find(&event.attributes, "ai_session.alert.rule"),
        Some(any_value::Value::StringValue("retry_loop".into()))
    );
}
