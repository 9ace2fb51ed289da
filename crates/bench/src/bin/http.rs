//! `http`: latencies of the HTTP, WebSocket and MCP front ends.
//!
//! Starts a private daemon (the `ai-session` binary next to this one, or `--bin PATH`), has it
//! serve HTTP on a free loopback port, creates a `bash` session, then measures:
//!
//! - **HTTP exec**: `POST /v1/sessions/b/exec {"command":"echo hi"}` round trips on one
//!   keep-alive connection, request written to response read.
//! - **WebSocket output delivery**: the session runs `date +%s%N` in a loop; each line carries
//!   the wall-clock time at which `date` read the clock, just before writing the line to the PTY.
//!   The latency is the wall-clock time at which this process reads the WebSocket message with
//!   that line, minus the stamp: the PTY, the session actor, the subscription, the WebSocket and
//!   this process's read, plus the few microseconds `date` takes between its clock read and its
//!   write (so it is an upper bound on the daemon's part).
//! - **Socket exec**, for comparison: the same `session.exec` over the daemon's Unix socket.
//! - **MCP stdio `session_exec`**: `ai-session mcp` spawned with pipes, initialised, then
//!   `tools/call session_exec {"command":"echo hi"}` round trips, request line written to
//!   response line read.
//!
//! Prints one JSON object with p50, p90, p99 and mean in milliseconds.
//!
//! usage: http [--iterations N] [--bin PATH]

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Opts {
    iterations: usize,
    bin: PathBuf,
}

fn opts() -> Result<Opts, Error> {
    let mut o = Opts {
        iterations: 1000,
        bin: std::env::current_exe()?.with_file_name("ai-session"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--iterations" => o.iterations = val()?.parse::<usize>()?.max(10),
            "--bin" => o.bin = val()?.into(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(o)
}

fn main() -> Result<(), Error> {
    let o = opts()?;
    let home = tempfile::Builder::new().prefix("ais-http").tempdir()?;
    let cli = |args: &[&str]| {
        Command::new(&o.bin)
            .env("AI_SESSION_HOME", home.path())
            // The daemon's sessions inherit this: no user rc files in the measurement.
            .env("HOME", home.path())
            .args(["-L", "bench"])
            .args(args)
            .stdin(Stdio::null())
            .output()
    };
    let served = cli(&["serve", "--listen", "127.0.0.1:0", "--json"])?;
    if !served.status.success() {
        return Err(format!(
            "cannot serve with {}: {}",
            o.bin.display(),
            String::from_utf8_lossy(&served.stderr)
        )
        .into());
    }
    let served: Value = serde_json::from_slice(&served.stdout)?;
    let addr = served["listen"]
        .as_str()
        .ok_or("no listen address")?
        .to_owned();
    let token_file = served["token_file"].as_str().ok_or("no token file")?;
    let token = std::fs::read_to_string(token_file)?.trim().to_owned();
    let result = run(&o, &addr, &token, home.path());
    cli(&["daemon", "stop"])?;
    println!("{}", result?);
    Ok(())
}

fn run(o: &Opts, addr: &str, token: &str, home: &std::path::Path) -> Result<Value, Error> {
    let mut http = Http::connect(addr, token)?;
    let (status, _) = http.call(
        "POST",
        "/v1/sessions",
        r#"{"name":"b","shell":"/bin/bash"}"#,
    )?;
    if status != 201 {
        return Err(format!("create failed: {status}").into());
    }
    let exec = r#"{"command":"echo hi"}"#;
    let mut samples = Vec::with_capacity(o.iterations);
    for i in 0..o.iterations + 20 {
        let t = Instant::now();
        let (status, body) = http.call("POST", "/v1/sessions/b/exec", exec)?;
        let took = t.elapsed();
        if status != 200 || !body.contains(r#""output":"hi\n""#) {
            return Err(format!("exec failed: {status} {body}").into());
        }
        if i >= 20 {
            samples.push(took);
        }
    }
    let http_exec = stats(&mut samples);
    let socket_exec = socket_exec(o, &home.join("run").join("bench.sock"))?;
    let ws = websocket_delivery(o, addr, token, &mut http)?;
    let mcp = mcp_exec(o, home)?;
    Ok(json!({
        "iterations": o.iterations,
        "http_exec_echo_hi_ms": http_exec,
        "socket_exec_echo_hi_ms": socket_exec,
        "websocket_output_delivery_ms": ws,
        "mcp_stdio_session_exec_echo_hi_ms": mcp,
    }))
}

/// HTTP/1.1 on one keep-alive connection.
struct Http {
    w: TcpStream,
    r: BufReader<TcpStream>,
    addr: String,
    auth: String,
}

impl Http {
    fn connect(addr: &str, token: &str) -> Result<Self, Error> {
        let w = TcpStream::connect(addr)?;
        w.set_nodelay(true)?;
        w.set_read_timeout(Some(Duration::from_secs(60)))?;
        let r = BufReader::new(w.try_clone()?);
        Ok(Self {
            w,
            r,
            addr: addr.to_owned(),
            auth: format!("Bearer {token}"),
        })
    }

    fn call(&mut self, method: &str, path: &str, body: &str) -> Result<(u16, String), Error> {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            self.auth,
            body.len()
        );
        self.w.write_all(req.as_bytes())?;
        let mut line = String::new();
        self.r.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse()?;
                }
            }
        }
        let mut body = vec![0u8; len];
        self.r.read_exact(&mut body)?;
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// The same exec over the daemon's Unix socket, in the same run, to show what HTTP adds.
fn socket_exec(o: &Opts, sock: &std::path::Path) -> Result<Value, Error> {
    let mut rpc = ai_session_bench::Rpc::hello(sock, "bench-http")?;
    let mut samples = Vec::with_capacity(o.iterations);
    for i in 0..o.iterations + 20 {
        let t = Instant::now();
        let r = rpc.call("session.exec", json!({"target": "b", "command": "echo hi"}))?;
        let took = t.elapsed();
        if r["exit_code"] != 0 {
            return Err(format!("socket exec failed: {r}").into());
        }
        if i >= 20 {
            samples.push(took);
        }
    }
    Ok(stats(&mut samples))
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn websocket_delivery(o: &Opts, addr: &str, token: &str, http: &mut Http) -> Result<Value, Error> {
    let mut req = format!("ws://{addr}/v1/sessions/b/stream").into_client_request()?;
    req.headers_mut()
        .insert("Authorization", format!("Bearer {token}").parse()?);
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let (mut ws, _) = tungstenite::client(req, stream).map_err(|e| format!("WebSocket: {e}"))?;
    let lines = o.iterations.min(500);
    // One line every 5 ms: each is read before the next is written, so no queueing is measured.
    let script = format!("for i in $(seq {lines}); do date +%s%N; sleep 0.005; done; echo WS-DONE");
    let keys = json!({"keys": [script, "Enter"]}).to_string();
    http.call("POST", "/v1/sessions/b/send", &keys)?;
    let mut samples = Vec::new();
    let mut partial = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let msg = ws.read().map_err(|e| format!("WebSocket read: {e}"))?;
        let got = now_ns();
        let tungstenite::Message::Text(text) = msg else {
            continue;
        };
        let v: Value = serde_json::from_str(text.as_str())?;
        if v["type"] != "output" {
            continue;
        }
        partial.push_str(v["data"].as_str().unwrap_or(""));
        let mut done = false;
        while let Some(nl) = partial.find('\n') {
            let line: String = partial.drain(..=nl).collect();
            let line = line.trim();
            if line == "WS-DONE" {
                done = true;
            }
            if line.len() == 19 {
                if let Ok(stamp) = line.parse::<u128>() {
                    samples.push(Duration::from_nanos((got.saturating_sub(stamp)) as u64));
                }
            }
        }
        if done {
            break;
        }
    }
    if samples.len() < lines / 2 {
        return Err(format!("only {} stamped lines arrived", samples.len()).into());
    }
    Ok(stats(&mut samples))
}

fn mcp_exec(o: &Opts, home: &std::path::Path) -> Result<Value, Error> {
    let mut child = Command::new(&o.bin)
        .env("AI_SESSION_HOME", home)
        .env("HOME", home)
        .args(["-L", "bench", "mcp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut w = child.stdin.take().ok_or("no stdin")?;
    let mut r = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut send = |v: Value| -> Result<(), Error> {
        writeln!(&mut w, "{v}")?;
        w.flush()?;
        Ok(())
    };
    let mut line = String::new();
    send(
        json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},
        "clientInfo":{"name":"bench","version":"0"}}}),
    )?;
    r.read_line(&mut line)?;
    send(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))?;
    let mut samples = Vec::with_capacity(o.iterations);
    for i in 0..o.iterations + 20 {
        let req = json!({"jsonrpc":"2.0","id":i + 1,"method":"tools/call","params":{
            "name":"session_exec","arguments":{"session":"b","command":"echo hi","view":"full"}}});
        let t = Instant::now();
        send(req)?;
        line.clear();
        r.read_line(&mut line)?;
        let took = t.elapsed();
        let v: Value = serde_json::from_str(&line)?;
        if v["result"]["structuredContent"]["exit_code"] != 0 {
            return Err(format!("session_exec failed: {line}").into());
        }
        if i >= 20 {
            samples.push(took);
        }
    }
    child.kill().ok();
    child.wait().ok();
    Ok(stats(&mut samples))
}

fn stats(samples: &mut [Duration]) -> Value {
    samples.sort();
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    let at = |q: f64| ms(samples[((samples.len() as f64 - 1.0) * q).round() as usize]);
    let mean = samples.iter().map(|d| d.as_secs_f64()).sum::<f64>() / samples.len() as f64;
    json!({
        "n": samples.len(),
        "p50": at(0.5),
        "p90": at(0.9),
        "p99": at(0.99),
        "mean": (mean * 1e6).round() / 1e3,
    })
}
