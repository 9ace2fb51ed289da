//! `cluster`: what a cluster costs and how fast it recovers (issue 20). Starts a private
//! `nats-server -js` and three daemons joined to it (`a`, `b`, and a victim), each with its own
//! `AI_SESSION_HOME`, then measures:
//!
//! - exec latency of `true` in a session on `b`, asked of `b` directly and of `a` (forwarded
//!   over NATS request/reply): p50 and p99 of each and the added latency; and on a daemon on
//!   its own, so that `b`'s minus it is what the exec journal (`AIS_EXECS`) adds;
//! - the checkpoint of a session with 1 MiB of output: its size, and `snapshot.create` on `b`
//!   (which writes the checkpoint before answering) against the daemon on its own;
//! - failover, `--rounds R` times: a session on a fresh victim node with one exec and its
//!   checkpoint written, the victim SIGKILLed, then the time until `a`'s `session.list` shows
//!   the session `lost`, and until `cluster.restore` on `a` has it running again and an exec
//!   in it answers.
//!
//! Prints JSON. usage: cluster [--execs N] [--rounds R] [--heartbeat S] [--lease S] [--bin PATH]

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ai_session_bench::{Rpc, pct};
use ai_session_cluster::testing::NatsServer;
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    execs: usize,
    rounds: usize,
    heartbeat: f64,
    lease: f64,
    bin: PathBuf,
}

fn args() -> Result<Args, Error> {
    let mut a = Args {
        execs: 500,
        rounds: 5,
        heartbeat: 0.5,
        lease: 3.0,
        bin: std::env::current_exe()?.with_file_name("ai-session"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{k} needs a value"));
        match k.as_str() {
            "--execs" => a.execs = val()?.parse()?,
            "--rounds" => a.rounds = val()?.parse()?,
            "--heartbeat" => a.heartbeat = val()?.parse()?,
            "--lease" => a.lease = val()?.parse()?,
            "--bin" => a.bin = PathBuf::from(val()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(a)
}

/// A daemon of the cluster, stopped (or killed) when dropped.
struct Node {
    child: Child,
    home: tempfile::TempDir,
    bin: PathBuf,
}

impl Node {
    fn join(a: &Args, url: &str, name: &str) -> Result<Node, Error> {
        Node::start(a, Some((url, name)))
    }

    /// A daemon on its own (`cluster`: the NATS server and node name to join, if any).
    fn start(a: &Args, cluster: Option<(&str, &str)>) -> Result<Node, Error> {
        let home = tempfile::Builder::new().prefix("bench-cluster").tempdir()?;
        let name = cluster.map_or("alone", |(_, name)| name);
        std::fs::write(
            home.path().join("config.toml"),
            format!(
                "[cluster]\nheartbeat_secs = {}\nlease_secs = {}\n",
                a.heartbeat, a.lease
            ),
        )?;
        let mut command = Command::new(&a.bin);
        command.env("AI_SESSION_HOME", home.path()).args([
            "-L",
            "b",
            "daemon",
            "run",
            "--notify-ready",
        ]);
        if let Some((url, name)) = cluster {
            command.args(["--cluster", url, "--node", name]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        if line.trim() != "ready" {
            return Err(format!("node {name} did not start: {line}").into());
        }
        Ok(Node {
            child,
            home,
            bin: a.bin.clone(),
        })
    }

    fn socket(&self) -> PathBuf {
        self.home.path().join("run/b.sock")
    }

    fn rpc(&self) -> Result<Rpc, Error> {
        Ok(Rpc::hello(&self.socket(), "bench-cluster")?)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        Command::new(&self.bin)
            .env("AI_SESSION_HOME", self.home.path())
            .args(["-L", "b", "daemon", "stop"])
            .output()
            .ok();
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Milliseconds of `execs` execs of `true` in `target` through `rpc`.
fn exec_times(rpc: &mut Rpc, target: &str, execs: usize) -> Result<Vec<f64>, Error> {
    let mut out = Vec::with_capacity(execs);
    for _ in 0..execs {
        let t = Instant::now();
        rpc.exec(target, "true")?;
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(out)
}

/// Polls `rpc`'s `session.list` until `cond` holds (60 s at most).
fn until(rpc: &mut Rpc, what: &str, cond: impl Fn(&Value) -> bool) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if cond(&rpc.call("session.list", json!({}))?) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One failover: (kill to lost, kill to restored and answering), in milliseconds.
fn failover(a: &Args, url: &str, round: usize, entry: &mut Rpc) -> Result<(f64, f64), Error> {
    let victim = Node::join(a, url, &format!("victim{round}"))?;
    let name = format!("f{round}");
    let mut rpc = victim.rpc()?;
    rpc.call("session.new", json!({"name": name, "shell": "/bin/sh"}))?;
    rpc.exec(&name, "export K=1")?;
    rpc.call("snapshot.create", json!({"target": name}))?;
    let mut victim = victim;
    let t = Instant::now();
    victim.child.kill()?;
    victim.child.wait()?;
    until(entry, "the session lost", |l| {
        l["lost"]
            .as_array()
            .is_some_and(|v| v.iter().any(|s| s["name"] == name.as_str()))
    })?;
    let lost = t.elapsed().as_secs_f64() * 1e3;
    entry.call("cluster.restore", json!({"name": name}))?;
    entry.exec(&name, "true")?;
    let restored = t.elapsed().as_secs_f64() * 1e3;
    entry.call("session.kill", json!({"target": name}))?;
    Ok((lost, restored))
}

/// The checkpoint of a session with about 1 MB of scrollback: its size (the session's export,
/// what a checkpoint holds) and milliseconds of `snapshot.create`, which on a clustered node
/// also writes the checkpoint before it answers, `rounds` times.
fn snapshot_times(
    rpc: &mut Rpc,
    node: Option<&str>,
    rounds: usize,
) -> Result<(u64, Vec<f64>), Error> {
    let mut new = json!({"name": "big", "shell": "/bin/sh"});
    if let Some(node) = node {
        new["node"] = json!(node);
    }
    rpc.call("session.new", new)?;
    // 768 KiB of random bytes as base64: 1 MiB of output, 76-column lines (the answer
    // carries only its last KiB).
    let exec = json!({"target": "big", "command": "head -c 786432 /dev/urandom | base64",
        "max_output_bytes": 1024});
    rpc.call("session.exec", exec)?;
    let export = rpc.call("session.export", json!({"target": "big", "max_bytes": 1}))?;
    let bytes = export["bytes"].as_u64().unwrap_or(0);
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        rpc.call("snapshot.create", json!({"target": "big"}))?;
        out.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((bytes, out))
}

fn summary(mut ms: Vec<f64>) -> Value {
    json!({"p50_ms": pct(&mut ms, 0.5), "p99_ms": pct(&mut ms, 0.99), "max_ms": pct(&mut ms, 1.0), "n": ms.len()})
}

fn main() -> Result<(), Error> {
    let a = args()?;
    let server = NatsServer::start::<&str>(&[])?;
    let url = server.url("nats");
    let na = Node::join(&a, &url, "a")?;
    let nb = Node::join(&a, &url, "b")?;
    let mut direct = nb.rpc()?;
    let mut entry = na.rpc()?;
    direct.call("session.new", json!({"name": "s", "shell": "/bin/sh"}))?;
    // Warm both paths before timing.
    exec_times(&mut direct, "s", 20)?;
    exec_times(&mut entry, "s", 20)?;
    let mut d = exec_times(&mut direct, "s", a.execs)?;
    let mut f = exec_times(&mut entry, "s", a.execs)?;
    let added = json!({
        "p50_ms": pct(&mut f, 0.5) - pct(&mut d, 0.5),
        "p99_ms": pct(&mut f, 0.99) - pct(&mut d, 0.99),
    });
    // The exec journal's cost: the same execs on a daemon on its own.
    let alone = Node::start(&a, None)?;
    let mut own = alone.rpc()?;
    own.call("session.new", json!({"name": "s", "shell": "/bin/sh"}))?;
    exec_times(&mut own, "s", 20)?;
    let mut o = exec_times(&mut own, "s", a.execs)?;
    let journal = json!({
        "p50_ms": pct(&mut d, 0.5) - pct(&mut o, 0.5),
        "p99_ms": pct(&mut d, 0.99) - pct(&mut o, 0.99),
    });
    let (export_bytes, snap_alone) = snapshot_times(&mut own, None, 10)?;
    let (_, mut snap_clustered) = snapshot_times(&mut direct, Some("b"), 10)?;
    let checkpoint_ms = pct(&mut snap_clustered, 0.5) - pct(&mut snap_alone.clone(), 0.5);
    let (mut lost, mut restored) = (Vec::new(), Vec::new());
    for round in 0..a.rounds {
        let (l, r) = failover(&a, &url, round, &mut entry)?;
        lost.push(l);
        restored.push(r);
    }
    let out = json!({
        "heartbeat_secs": a.heartbeat,
        "lease_secs": a.lease,
        "exec_alone": summary(o),
        "exec_direct": summary(d),
        "exec_journal_added": journal,
        "checkpoint_1mb": json!({
            "bytes": export_bytes,
            "snapshot_alone": summary(snap_alone),
            "snapshot_clustered": summary(snap_clustered),
            "checkpoint_p50_ms": checkpoint_ms,
        }),
        "exec_forwarded": summary(f),
        "exec_added": added,
        "failover_kill_to_lost": summary(lost),
        "failover_kill_to_restored": summary(restored),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    drop((na, nb, alone));
    Ok(())
}
