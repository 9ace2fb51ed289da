//! `mcp`: the round trip of an MCP `session_exec` over stdio (default compact view, as an agent
//! calls it), with and without a progress token, `resources/read` of a session's screen and log,
//! and the same exec straight on the daemon's socket.
//!
//! Starts a private daemon (the `ai-session` binary next to this one, or `--bin PATH`) in a
//! temporary `AI_SESSION_HOME`, spawns `ai-session mcp`, speaks newline-delimited JSON-RPC to it
//! (initialize, notifications/initialized, tools/call session_create, then `--calls` timed
//! requests of each kind after `--warmup` untimed ones), and reports p50/p90/p99. The same number
//! of `session.exec` requests on the daemon socket give the baseline the MCP layer adds to.
//!
//! usage: mcp [--calls N] [--warmup N] [--command CMD] [--bin PATH]

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Opts {
    calls: usize,
    warmup: usize,
    command: String,
    bin: PathBuf,
}

fn opts() -> Result<Opts, Error> {
    let mut o = Opts {
        calls: 300,
        warmup: 30,
        command: "echo hi".into(),
        bin: std::env::current_exe()?.with_file_name("ai-session"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--calls" => o.calls = val()?.parse::<usize>()?.max(1),
            "--warmup" => o.warmup = val()?.parse()?,
            "--command" => o.command = val()?,
            "--bin" => o.bin = val()?.into(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(o)
}

/// The `ai-session mcp` child and its stdio.
struct Mcp {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Mcp {
    fn spawn(o: &Opts, home: &std::path::Path, label: &str) -> Result<Self, Error> {
        let mut child = Command::new(&o.bin)
            .args(["-L", label, "mcp"])
            .env("AI_SESSION_HOME", home)
            // The session's bash reads no rc file of the user's.
            .env("HOME", home)
            .current_dir(home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(Self {
            child,
            stdin,
            stdout,
            next_id: 1,
        })
    }

    fn send(&mut self, msg: &Value) -> Result<(), Error> {
        let mut line = serde_json::to_vec(msg)?;
        line.push(b'\n');
        self.stdin.write_all(&line)?;
        self.stdin.flush()?;
        Ok(())
    }

    /// A request and its response (notifications in between are skipped).
    fn request(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err("ai-session mcp closed stdout".into());
            }
            let msg: Value = serde_json::from_str(&line)?;
            if msg.get("id") == Some(&json!(id)) {
                if let Some(err) = msg.get("error") {
                    return Err(format!("{method}: {err}").into());
                }
                return Ok(msg.get("result").cloned().unwrap_or(Value::Null));
            }
        }
    }

    fn tool(&mut self, name: &str, arguments: Value) -> Result<Value, Error> {
        self.tool_with(json!({"name": name, "arguments": arguments}))
    }

    fn tool_with(&mut self, params: Value) -> Result<Value, Error> {
        let name = params["name"].clone();
        let r = self.request("tools/call", params)?;
        if r.get("isError") == Some(&Value::Bool(true)) {
            return Err(format!("{name}: {r}").into());
        }
        Ok(r.get("structuredContent").cloned().unwrap_or(Value::Null))
    }
}

fn percentiles(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3;
    let mean = v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64 * 1e3;
    println!(
        "{name:<28} n={:<4} p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  mean {:.3} ms  max {:.3} ms",
        v.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        mean,
        at(1.0)
    );
}

fn direct(o: &Opts, sock: &std::path::Path) -> Result<Vec<Duration>, Error> {
    let mut rpc = ai_session_bench::Rpc::hello(sock, "bench")?;
    let params = json!({"target": "bench", "command": o.command});
    let mut out = Vec::with_capacity(o.calls);
    for i in 0..o.warmup + o.calls {
        let t = Instant::now();
        rpc.call("session.exec", params.clone())?;
        if i >= o.warmup {
            out.push(t.elapsed());
        }
    }
    Ok(out)
}

fn main() -> Result<(), Error> {
    let o = opts()?;
    let home = tempfile::tempdir()?;
    let label = format!("bench-mcp-{}", std::process::id());
    let mut mcp = Mcp::spawn(&o, home.path(), &label)?;
    let result = run(&o, &mut mcp, home.path(), &label);
    drop(mcp.stdin);
    mcp.child.wait().ok();
    Command::new(&o.bin)
        .args(["-L", &label, "daemon", "stop"])
        .env("AI_SESSION_HOME", home.path())
        .stdout(Stdio::null())
        .status()
        .ok();
    result
}

fn run(o: &Opts, mcp: &mut Mcp, home: &std::path::Path, label: &str) -> Result<(), Error> {
    let init = mcp.request(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {},
               "clientInfo": {"name": "bench", "version": "0"}}),
    )?;
    mcp.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
    println!(
        "ai-session mcp: protocol {}, command {:?}, {} calls after {} warm-up",
        init["protocolVersion"], o.command, o.calls, o.warmup
    );
    let shell = if std::path::Path::new("/bin/bash").exists() {
        json!("/bin/bash")
    } else {
        Value::Null
    };
    mcp.tool("session_create", json!({"name": "bench", "shell": shell}))?;
    let args = json!({"session": "bench", "command": o.command});
    let plain = json!({"name": "session_exec", "arguments": args});
    let times = timed(o, || {
        let r = mcp.tool_with(plain.clone())?;
        if r.get("exit_code") != Some(&json!(0)) {
            return Err(format!("session_exec failed: {r}").into());
        }
        Ok(())
    })?;
    percentiles("MCP session_exec", times);
    let mut token = 0u64;
    let times = timed(o, || {
        token += 1;
        let params = json!({"name": "session_exec", "arguments": args,
                            "_meta": {"progressToken": token}});
        mcp.tool_with(params).map(drop)
    })?;
    percentiles("MCP session_exec + progress", times);
    for kind in ["screen", "log"] {
        let uri = format!("ai-session://sessions/bench/{kind}");
        let times = timed(o, || {
            mcp.request("resources/read", json!({ "uri": uri }))
                .map(drop)
        })?;
        percentiles(&format!("MCP resources/read {kind}"), times);
    }
    let sock = home.join("run").join(format!("{label}.sock"));
    percentiles("daemon session.exec", direct(o, &sock)?);
    Ok(())
}

/// `--calls` timings of `f` after `--warmup` untimed calls.
fn timed(o: &Opts, mut f: impl FnMut() -> Result<(), Error>) -> Result<Vec<Duration>, Error> {
    let mut times = Vec::with_capacity(o.calls);
    for i in 0..o.warmup + o.calls {
        let t = Instant::now();
        f()?;
        if i >= o.warmup {
            times.push(t.elapsed());
        }
    }
    Ok(times)
}
