//! `ai-session-bench`: the figures of docs/benchmarks.md, measured side by side with tmux.
//!
//! Runs `../shared/bench/tmux-baseline.sh` (or `$TMUX_BASELINE`) and the same workloads against
//! a private ai-session daemon, then prints both and their ratios as one JSON object.
//!
//! usage: ai-session-bench [--sessions N] [--mb MB] [--hold N] [--skip-tmux]

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use ai_session_bench::{Rpc, percentile, tmux_baseline};
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

fn stats(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    json!({"mean_ms": mean, "p50_ms": percentile(&ms, 0.5), "p99_ms": percentile(&ms, 0.99), "n": ms.len()})
}

fn rss_kb(pid: i64) -> Res<f64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| e.to_string())?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

/// The daemon's RSS once it has settled: the tokenizer tables it loads on a spare thread at
/// start (about 66 MB) must not count as the sessions' memory. Waits until two readings 300 ms
/// apart differ by under 256 KB (at most 20 s).
fn settled_rss_kb(pid: i64) -> Res<f64> {
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    let mut last = rss_kb(pid)?;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = rss_kb(pid)?;
        if (now - last).abs() < 256.0 || Instant::now() > deadline {
            return Ok(now);
        }
        last = now;
    }
}

struct Setup {
    exe: PathBuf,
    home: tempfile::TempDir,
}

impl Setup {
    fn cli(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.env("AI_SESSION_HOME", self.home.path())
            .args(["-L", "bench"])
            .args(args);
        c
    }
    fn sock(&self) -> PathBuf {
        self.home.path().join("run/bench.sock")
    }
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let sessions = arg(&args, "--sessions", 200);
    let mb = arg(&args, "--mb", 64);
    let hold = arg(&args, "--hold", 5000);
    let exe = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .with_file_name("ai-session");
    let setup = Setup {
        exe,
        home: tempfile::tempdir().map_err(|e| e.to_string())?,
    };
    let tmux = if args.iter().any(|a| a == "--skip-tmux") {
        Value::Null
    } else {
        tmux_baseline(sessions, mb)?
    };
    let st = setup
        .cli(&["daemon", "start"])
        .output()
        .map_err(|e| e.to_string())?;
    if !st.status.success() {
        return Err(format!(
            "daemon start failed: {}",
            String::from_utf8_lossy(&st.stderr)
        ));
    }
    let mut rpc = Rpc::connect(&setup.sock())?;
    let pid = rpc.call("daemon.status", json!({}))?["pid"]
        .as_i64()
        .unwrap_or(0);
    let ours = measure(&setup, &mut rpc, pid, sessions, mb, hold);
    setup.cli(&["daemon", "stop"]).output().ok();
    let ours = ours?;
    let ratio = |a: &str, b: &str, invert: bool| -> Value {
        let t = tmux[a].as_f64();
        let o = ours[b].as_f64();
        match (t, o) {
            (Some(t), Some(o)) if o > 0.0 && t > 0.0 => json!(if invert { o / t } else { t / o }),
            _ => Value::Null,
        }
    };
    let report = json!({
        "tmux": tmux,
        "ai_session": ours,
        "ratios": {
            "create_speedup_socket": ratio("create_ms", "create_socket_mean_ms", false),
            "create_speedup_cli": ratio("create_ms", "create_cli_mean_ms", false),
            "roundtrip_speedup_socket": ratio("roundtrip_ms", "exec_socket_mean_ms", false),
            "roundtrip_speedup_cli": ratio("roundtrip_ms", "exec_cli_mean_ms", false),
            "throughput_ratio": ratio("throughput_mb_s", "throughput_mb_s", true),
            "rss_per_session_ratio": ratio("rss_kb_per_session", "rss_kb_per_session", true),
        }
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn measure(
    setup: &Setup,
    rpc: &mut Rpc,
    pid: i64,
    sessions: usize,
    mb: usize,
    hold: usize,
) -> Res<Value> {
    let mut out = serde_json::Map::new();
    // Create: over a connected socket, and one CLI process per session (as tmux's figure is).
    let rss0 = settled_rss_kb(pid)?;
    let mut create = Vec::new();
    for i in 0..sessions {
        let t = Instant::now();
        rpc.call(
            "session.new",
            json!({"name": format!("c{i}"), "program": ["sh"], "cwd": "/tmp"}),
        )?;
        create.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    // Let every shell draw its first prompt before reading memory.
    for i in 0..sessions {
        rpc.call("session.wait", json!({"target": format!("c{i}"), "condition": {"kind": "prompt"}, "timeout_ms": 10_000}))?;
    }
    // "Idle" means what it says: past the 500 ms after which an unwatched screen sleeps and the
    // 2 s tick that returns freed pages to the OS.
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let rss1 = rss_kb(pid)?;
    out.insert(
        "rss_kb_per_session".into(),
        json!((rss1 - rss0) / sessions as f64),
    );
    let s = stats(create);
    out.insert("create_socket_mean_ms".into(), s["mean_ms"].clone());
    out.insert("create_socket".into(), s);
    let mut create_cli = Vec::new();
    for i in 0..sessions.min(100) {
        let t = Instant::now();
        let st = setup
            .cli(&["new", "-s", &format!("k{i}"), "--shell", "sh"])
            .output()
            .map_err(|e| e.to_string())?;
        if !st.status.success() {
            return Err(String::from_utf8_lossy(&st.stderr).into_owned());
        }
        create_cli.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let s = stats(create_cli);
    out.insert("create_cli_mean_ms".into(), s["mean_ms"].clone());
    out.insert("create_cli".into(), s);

    // Exec round trip: `echo hi` to output and exit code.
    rpc.call(
        "session.new",
        json!({"name": "rt", "program": ["sh"], "cwd": "/tmp"}),
    )?;
    rpc.exec("rt", "true")?;
    let mut rt = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        let r = rpc.exec("rt", "echo hi")?;
        rt.push(t.elapsed().as_secs_f64() * 1000.0);
        if r["output"] != "hi\n" {
            return Err(format!("unexpected output {r}"));
        }
    }
    let s = stats(rt);
    out.insert("exec_socket_mean_ms".into(), s["mean_ms"].clone());
    out.insert("exec_socket".into(), s);
    let mut rt_cli = Vec::new();
    for i in 0..50 {
        let t = Instant::now();
        let st = setup
            .cli(&["exec", "-t", "rt", &format!("echo MARK{i}")])
            .output()
            .map_err(|e| e.to_string())?;
        rt_cli.push(t.elapsed().as_secs_f64() * 1000.0);
        if !String::from_utf8_lossy(&st.stdout).starts_with("MARK") {
            return Err("CLI exec failed".into());
        }
    }
    let s = stats(rt_cli);
    out.insert("exec_cli_mean_ms".into(), s["mean_ms"].clone());
    out.insert("exec_cli".into(), s);

    // Throughput: MB of base64 text through a 200x50 session with full emulation, with the
    // result as a client gets it by default (output, parsed structure, compact view).
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("big.txt");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {} /dev/urandom | base64 > {}",
            mb * 1_000_000 * 3 / 4,
            file.display()
        ))
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("cannot make the throughput file".into());
    }
    let bytes = std::fs::metadata(&file).map_err(|e| e.to_string())?.len() as f64;
    rpc.call(
        "session.new",
        json!({"name": "tp", "program": ["sh"], "cwd": "/tmp", "size": {"cols": 200, "rows": 50}}),
    )?;
    rpc.exec("tp", "true")?;
    let t = Instant::now();
    let r = rpc.call(
        "session.exec",
        json!({"target": "tp", "command": format!("cat {}", file.display()), "timeout_ms": 600_000}),
    )?;
    let secs = t.elapsed().as_secs_f64();
    if r["status"] != "exited" {
        return Err(format!("throughput exec: {r}"));
    }
    out.insert("throughput_mb_s".into(), json!(bytes / 1e6 / secs));

    // Hold many sessions and keep answering.
    for i in 0..sessions {
        rpc.call("session.kill", json!({"target": format!("c{i}")}))?;
    }
    let t = Instant::now();
    for i in 0..hold {
        rpc.call(
            "session.new",
            json!({"name": format!("h{i}"), "program": ["sh"], "cwd": "/tmp"}),
        )?;
    }
    out.insert("hold_sessions".into(), json!(hold));
    out.insert("hold_create_s".into(), json!(t.elapsed().as_secs_f64()));
    let mut lat = Vec::new();
    for k in 0..500 {
        let target = format!("h{}", (k * 7919) % hold.max(1));
        let t = Instant::now();
        rpc.exec(&target, "echo hi")?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.insert("hold_exec".into(), stats(lat));
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let held = rss_kb(pid)?;
    out.insert("hold_rss_kb".into(), json!(held));
    out.insert(
        "hold_rss_kb_per_session".into(),
        json!(held / hold.max(1) as f64),
    );
    Ok(Value::Object(out))
}
