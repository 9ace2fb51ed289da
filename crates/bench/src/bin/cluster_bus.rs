//! `cluster_bus`: the coordination bus and tasks across a cluster of three daemons.
//!
//! Starts a private `nats-server -js` and three daemons joining it (the `ai-session` binary
//! next to this one, or `--bin PATH`), then measures:
//! - **bus across nodes**: a publisher on node a pipelines `bus.publish` requests, a subscriber
//!   on node b reads them; messages received per second, from the first request written to
//!   the last message read;
//! - **task claims**: `--tasks` tasks submitted, then `--agents` agents spread over the three
//!   nodes each claim (without waiting) and complete tasks until none is left; the latency of
//!   every `task.claim` that returned a task (p50/p99), and tasks done per second;
//! - **an agent through another node**: an agent registered on node a; `agent.heartbeat`
//!   latency (p50/p99, `--calls` calls) made on node a and through node b, and its inbox read
//!   on node a and through node b (relayed from a) while a sender on node a pipelines
//!   `--inbox` direct messages to it: messages received per second.
//!
//! usage: cluster_bus [--messages N] [--tasks N] [--agents N] [--inbox N] [--calls N] [--bin PATH]

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ai_session_bench::{Cli, Rpc, pct};
use ai_session_cluster::testing::NatsServer;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Opts {
    messages: u64,
    inbox: u64,
    calls: u64,
    tasks: u64,
    agents: usize,
    bin: PathBuf,
}

fn opts() -> Result<Opts, Error> {
    let mut o = Opts {
        messages: 100_000,
        inbox: 20_000,
        calls: 1000,
        tasks: 10_000,
        agents: 100,
        bin: std::env::current_exe()?.with_file_name("ai-session"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--messages" => o.messages = val()?.parse()?,
            "--tasks" => o.tasks = val()?.parse()?,
            "--inbox" => o.inbox = val()?.parse()?,
            "--calls" => o.calls = val()?.parse()?,
            "--agents" => o.agents = val()?.parse::<usize>()?.max(1),
            "--bin" => o.bin = val()?.into(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(o)
}

/// A daemon of the cluster in its own state directory.
struct Node {
    cli: Cli,
    _home: tempfile::TempDir,
}

impl Node {
    fn join(bin: &Path, url: &str, name: &str) -> Result<Node, Error> {
        let home = tempfile::Builder::new().prefix("ais-cluster").tempdir()?;
        let secret = home.path().join("cluster.secret");
        std::fs::write(
            &secret,
            "bench secret, the same on every node of the cluster",
        )?;
        let config = format!(
            "[cluster]\nurl = \"{url}\"\nnode = \"{name}\"\nsecret_file = \"{}\"\n",
            secret.display()
        );
        std::fs::write(home.path().join("config.toml"), config)?;
        let cli = Cli::new(bin, home.path(), "bench");
        cli.run(&["daemon", "start"])
            .map_err(|e| format!("node {name} did not start: {e}"))?;
        Ok(Node { cli, _home: home })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.cli.run(&["daemon", "stop"]).ok();
    }
}

fn main() -> Result<(), Error> {
    let o = opts()?;
    let nats = NatsServer::start::<&str>(&[])?;
    let url = nats.url("nats");
    let nodes = ["a", "b", "c"]
        .iter()
        .map(|n| Node::join(&o.bin, &url, n))
        .collect::<Result<Vec<_>, _>>()?;
    eprintln!("bus across nodes ...");
    let bus = bus(&o, &nodes[0].cli.socket(), &nodes[1].cli.socket())?;
    eprintln!("an agent through another node ...");
    let agent = agent(&o, &nodes[0].cli.socket(), &nodes[1].cli.socket())?;
    eprintln!("task claims ...");
    let tasks = tasks(&o, &nodes)?;
    println!("{}", json!({"bus": bus, "agent": agent, "tasks": tasks}));
    Ok(())
}

fn connect(sock: &Path) -> Result<(UnixStream, BufReader<UnixStream>), Error> {
    let mut s = UnixStream::connect(sock)?;
    let mut r = BufReader::new(s.try_clone()?);
    writeln!(
        s,
        "{}",
        json!({"jsonrpc":"2.0","id":0,"method":"hello","params":{"client":"bench","protocol":1}})
    )?;
    let mut line = String::new();
    r.read_line(&mut line)?;
    Ok((s, r))
}

/// Messages per second from a publisher on one node to a subscriber on another.
fn bus(o: &Opts, from: &Path, to: &Path) -> Result<Value, Error> {
    let (mut s, mut r) = connect(to)?;
    writeln!(
        s,
        "{}",
        json!({"jsonrpc":"2.0","id":1,"method":"bus.subscribe","params":{"topic":"bench"}})
    )?;
    let mut line = String::new();
    r.read_line(&mut line)?;
    let want = o.messages;
    let reader = std::thread::spawn(move || -> Result<Instant, Error> {
        let mut got = 0u64;
        let mut line = Vec::with_capacity(256);
        while got < want {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Err(format!("the subscriber's connection closed after {got}").into());
            }
            if line.starts_with(br#"{"jsonrpc":"2.0","method":"bus.message""#) {
                got += 1;
            }
        }
        drop(s);
        Ok(Instant::now())
    });
    let (p, mut pr) = connect(from)?;
    let answers = std::thread::spawn(move || -> Result<(), Error> {
        let mut line = String::new();
        for _ in 0..want {
            line.clear();
            if pr.read_line(&mut line)? == 0 {
                return Err("the publisher's connection closed".into());
            }
            if line.contains(r#""error""#) {
                return Err(format!("publish failed: {line}").into());
            }
        }
        Ok(())
    });
    let start = Instant::now();
    let mut w = BufWriter::with_capacity(1 << 16, p);
    for n in 0..o.messages {
        let req = json!({"jsonrpc":"2.0","id":n + 10,"method":"bus.publish",
                         "params":{"topic":"bench","message":{"n":n}}});
        serde_json::to_writer(&mut w, &req)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    answers
        .join()
        .map_err(|_| "the publisher's reader panicked")??;
    let last = reader.join().map_err(|_| "the subscriber panicked")??;
    let secs = (last - start).as_secs_f64();
    Ok(json!({
        "messages": o.messages,
        "seconds": (secs * 1000.0).round() / 1000.0,
        "messages_per_s": (o.messages as f64 / secs).round(),
    }))
}

/// Claim latency with many agents on three nodes, until every task is done.
fn tasks(o: &Opts, nodes: &[Node]) -> Result<Value, Error> {
    let mut submit = Rpc::connect(&nodes[0].cli.socket())?;
    for n in 0..o.tasks {
        submit.call(
            "task.submit",
            json!({"description": format!("t{n}"), "needs": ["work"], "priority": n % 10}),
        )?;
    }
    let start = Instant::now();
    let workers: Vec<_> = (0..o.agents)
        .map(|n| {
            let sock = nodes[n % nodes.len()].cli.socket();
            std::thread::spawn(move || -> Result<(Vec<f64>, u64), String> {
                let mut rpc = Rpc::connect(&sock)?;
                let reg = rpc.call(
                    "agent.register",
                    json!({"name": format!("w{n}"), "capabilities": ["work"]}),
                )?;
                let token = reg["token"].as_str().unwrap_or_default().to_string();
                let mut latencies = Vec::new();
                let mut empty = 0;
                // A few empty answers in a row: the others hold the last tasks.
                while empty < 3 {
                    let t0 = Instant::now();
                    let r = rpc.call("task.claim", json!({"token": token}))?;
                    let Some(id) = r["task"]["id"].as_u64() else {
                        empty += 1;
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        continue;
                    };
                    empty = 0;
                    latencies.push(t0.elapsed().as_secs_f64() * 1e6);
                    rpc.call("task.done", json!({"token": token, "id": id}))?;
                }
                let done = latencies.len() as u64;
                Ok((latencies, done))
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut done = 0;
    for w in workers {
        let (lat, n) = w.join().map_err(|_| "a worker panicked")??;
        all.extend(lat);
        done += n;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(json!({
        "tasks": o.tasks,
        "agents": o.agents,
        "done": done,
        "claim_p50_us": pct(&mut all, 0.50).round(),
        "claim_p99_us": pct(&mut all, 0.99).round(),
        "tasks_per_s": (done as f64 / secs).round(),
    }))
}

/// An agent of node a working on node a and through node b: heartbeat latency, inbox rate.
fn agent(o: &Opts, home: &Path, far: &Path) -> Result<Value, Error> {
    let mut rpc = Rpc::connect(home)?;
    let reg = rpc.call("agent.register", json!({"name": "roamer", "keep": true}))?;
    let token = reg["token"].as_str().unwrap_or_default().to_string();
    let mut heartbeats = json!({});
    for (label, sock) in [("home", home), ("through_other_node", far)] {
        let mut rpc = Rpc::connect(sock)?;
        let mut lat = Vec::new();
        for _ in 0..o.calls {
            let t0 = Instant::now();
            rpc.call("agent.heartbeat", json!({"token": token}))?;
            lat.push(t0.elapsed().as_secs_f64() * 1e6);
        }
        heartbeats[label] = json!({
            "p50_us": pct(&mut lat, 0.50).round(),
            "p99_us": pct(&mut lat, 0.99).round(),
        });
    }
    // One agent per reader: a reader's connection that closed lets go of the inbox only when
    // the next message comes.
    let mut inbox = json!({});
    for (label, sock) in [("home", home), ("through_other_node", far)] {
        let name = format!("reader-{label}");
        let reg = rpc.call("agent.register", json!({"name": name, "keep": true}))?;
        let token = reg["token"].as_str().unwrap_or_default().to_string();
        inbox[label] = inbox_rate(o.inbox, (&name, &token), home, sock)?;
    }
    Ok(json!({"calls": o.calls, "heartbeat": heartbeats, "inbox": inbox}))
}

/// Direct messages per second from a sender on `from` to the agent's inbox read on `reader`.
fn inbox_rate(
    want: u64,
    (name, token): (&str, &str),
    from: &Path,
    reader: &Path,
) -> Result<Value, Error> {
    let (mut s, mut r) = connect(reader)?;
    writeln!(
        s,
        "{}",
        json!({"jsonrpc":"2.0","id":1,"method":"bus.inbox","params":{"token": token}})
    )?;
    let mut line = String::new();
    r.read_line(&mut line)?;
    if line.contains(r#""error""#) {
        return Err(format!("bus.inbox failed: {line}").into());
    }

    // Messages the inbox could not take in time are dead-lettered: they are not waited for.
    let dead = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen_dead = dead.clone();
    r.get_ref()
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))?;
    let counter = std::thread::spawn(move || -> Result<Instant, Error> {
        let mut got = 0u64;
        let mut line = Vec::with_capacity(256);
        let mut last = Instant::now();
        while got + seen_dead.load(std::sync::atomic::Ordering::SeqCst) < want {
            match r.read_until(b'\n', &mut line) {
                Ok(0) => {
                    return Err(format!("the inbox's connection closed after {got}").into());
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            if line.ends_with(b"\n") {
                if line.starts_with(br#"{"jsonrpc":"2.0","method":"bus.inbox_message""#) {
                    got += 1;
                    last = Instant::now();
                }
                line.clear();
            }
        }
        drop(s);
        Ok(last)
    });
    let dead_count = dead.clone();
    let (p, mut pr) = connect(from)?;
    let answers = std::thread::spawn(move || -> Result<(), Error> {
        let mut line = String::new();
        for _ in 0..want {
            line.clear();
            if pr.read_line(&mut line)? == 0 {
                return Err("the sender's connection closed".into());
            }
            if line.contains(r#""error""#) {
                return Err(format!("send failed: {line}").into());
            }
            if !line.contains(r#""dead_lettered":0"#) {
                dead.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        Ok(())
    });
    let start = Instant::now();
    let mut w = BufWriter::with_capacity(1 << 16, p);
    for n in 0..want {
        let req = json!({"jsonrpc":"2.0","id":n + 10,"method":"bus.send",
                         "params":{"to": name,"message":{"n":n}}});
        serde_json::to_writer(&mut w, &req)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    answers
        .join()
        .map_err(|_| "the sender's reader panicked")??;
    let last = counter.join().map_err(|_| "the inbox reader panicked")??;
    let secs = (last - start).as_secs_f64();
    let dead_lettered = dead_count.load(std::sync::atomic::Ordering::SeqCst);
    let want = want - dead_lettered;
    Ok(json!({
        "dead_lettered": dead_lettered,
        "messages": want,
        "seconds": (secs * 1000.0).round() / 1000.0,
        "messages_per_s": (want as f64 / secs).round(),
    }))
}
