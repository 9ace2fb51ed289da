//! `cli_latency`: where a CLI call's time goes, side by side with tmux in the same run (issue 17).
//!
//! Each figure is a row of the breakdown of `ai-session exec -t S 'echo hi'` and
//! `ai-session new -s N --shell sh`, one process per call as a user runs them:
//!
//! - the process floor: spawning `/bin/true` and `tmux -V` from this process;
//! - the CLI's own start: `ai-session --version` (loading, arguments, no daemon);
//! - a call with no work: `ai-session ls` on a daemon with two sessions (start, connect,
//!   `hello`, one answer);
//! - the daemon's side alone, on one open connection: `session.exec` and `session.new`;
//! - the whole CLI call, against `tmux-baseline.sh`'s send-keys + capture-pane loop and
//!   `new-session` (its `roundtrip_ms` and `create_ms`);
//! - the daemon's CPU per socket `exec true` (in an sh and a bash session) and per
//!   `session.new`: its `utime + stime` from `/proc/PID/stat` over the rounds, divided by them;
//! - the floor: a bare shell round trip (`echo hi` typed into an interactive `sh` on a PTY this
//!   process reads, until its prompt is back), and what any client must pay at least (the
//!   cheapest start of a real client process, `tmux -V`, plus that round trip), against the
//!   issue's goals (tmux's loop / 5, tmux's `new-session` / 3).
//!
//! usage: cli_latency [--rounds N] [--exe PATH] (TMUX_BASELINE names the baseline script)

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use ai_session_bench::{Cli, Rpc, cpu_ticks, percentile, tmux_baseline};
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

fn main() {
    if let Err(e) = run() {
        eprintln!("cli_latency: {e}");
        std::process::exit(1);
    }
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let rounds: usize = match value("--rounds") {
        Some(n) => n.parse().map_err(|e| format!("--rounds {n}: {e}"))?,
        None => 200,
    };
    let exe = match value("--exe") {
        Some(p) => PathBuf::from(p),
        None => sibling("ai-session")?,
    };
    let home = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cli = Cli::new(&exe, home.path(), "lat");
    cli.run(&["daemon", "start"])?;
    let figures = measure(&cli, &exe, rounds);
    cli.run(&["daemon", "stop"]).ok();
    let mut out = figures?;
    let tmux = tmux_baseline(200, 1)?;
    let ratio = |ours: &Value, theirs: &Value| match (ours["mean_ms"].as_f64(), theirs.as_f64()) {
        (Some(a), Some(b)) if a > 0.0 => json!(b / a),
        _ => Value::Null,
    };
    out["exec_speedup_over_tmux"] = ratio(&out["cli_exec"], &tmux["roundtrip_ms"]);
    out["new_speedup_over_tmux"] = ratio(&out["cli_new"], &tmux["create_ms"]);
    out["floor"] = floor(&out, &tmux);
    out["tmux"] = tmux;
    out["rounds"] = json!(rounds);
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// `name` beside this benchmark's own executable (both are built into `target/release`).
fn sibling(name: &str) -> Res<PathBuf> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = me.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it (cargo build --release -p ai-session) or pass --exe",
            path.display()
        ))
    }
}

fn measure(cli: &Cli, exe: &Path, rounds: usize) -> Res<Value> {
    cli.run(&["new", "-s", "rt", "--shell", "sh"])?;
    cli.run(&["exec", "-t", "rt", "true"])?;
    cli.run(&["new", "-s", "idle", "--shell", "sh"])?;
    let mut out = serde_json::Map::new();
    out.insert(
        "true".into(),
        spawn_times(Path::new("/bin/true"), &[], rounds)?,
    );
    out.insert(
        "tmux_version".into(),
        spawn_times(Path::new("tmux"), &["-V"], rounds)?,
    );
    out.insert(
        "bare_shell_round_trip".into(),
        bare_shell_round_trip(rounds)?,
    );
    out.insert(
        "cli_version".into(),
        spawn_times(exe, &["--version"], rounds)?,
    );
    out.insert(
        "cli_ls".into(),
        timed(rounds, |_| cli.run(&["ls"]).map(drop))?,
    );
    out.insert(
        "cli_exec".into(),
        timed(rounds, |i| {
            let shown = cli.run(&["exec", "-t", "rt", &format!("echo MARK{i}")])?;
            if shown == format!("MARK{i}\n") {
                Ok(())
            } else {
                Err(format!("exec printed {shown:?}"))
            }
        })?,
    );
    out.insert(
        "cli_new".into(),
        timed(rounds, |i| {
            cli.run(&["new", "-s", &format!("c{i}"), "--shell", "sh"])
                .map(drop)
        })?,
    );
    let mut rpc = Rpc::connect(&cli.socket())?;
    let pid = rpc.call("daemon.status", json!({}))?["pid"]
        .as_u64()
        .ok_or("daemon.status has no pid")?;
    rpc.call("session.new", json!({"name": "bash", "shell": "bash"}))?;
    rpc.exec("bash", "true")?;
    let list = rpc.call("session.list", json!({}))?;
    for (target, shell) in [("rt", "sh"), ("bash", "bash")] {
        let shell_pid = list["sessions"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == target))
            .and_then(|s| s["pid"].as_u64())
            .ok_or_else(|| format!("session {target} has no pid"))?;
        let shell_before = cpu_ticks(shell_pid, true)?;
        let cpu = cpu_per_round(pid, rounds, |_| rpc.exec(target, "true").map(drop))?;
        let shell_cpu = (cpu_ticks(shell_pid, true)? - shell_before) as f64 * US_PER_TICK
            / rounds.max(1) as f64;
        out.insert(format!("daemon_cpu_us_per_exec_{shell}"), json!(cpu));
        out.insert(format!("shell_cpu_us_per_exec_{shell}"), json!(shell_cpu));
    }
    out.insert(
        "socket_exec_bash".into(),
        timed(rounds, |_| rpc.exec("bash", "echo hi").map(drop))?,
    );
    let cpu = cpu_per_round(pid, rounds, |i| {
        rpc.call(
            "session.new",
            json!({"name": format!("u{i}"), "shell": "sh"}),
        )
        .map(drop)
    })?;
    out.insert("daemon_cpu_us_per_new".into(), json!(cpu));
    out.insert(
        "socket_exec".into(),
        timed(rounds, |_| rpc.exec("rt", "echo hi").map(drop))?,
    );
    out.insert(
        "socket_new".into(),
        timed(rounds, |i| {
            rpc.call(
                "session.new",
                json!({"name": format!("s{i}"), "shell": "sh"}),
            )
            .map(drop)
        })?,
    );
    Ok(Value::Object(out))
}

/// What a CLI call cannot go below on this machine, beside the goals: a client process
/// that starts as cheaply as `tmux -V`, plus a bare shell's round trip (exec) or nothing more
/// (new: a fork of the shell is cheaper than a process start and left out, so that floor is low).
fn floor(out: &Value, tmux: &Value) -> Value {
    let mean = |v: &Value| v["mean_ms"].as_f64().unwrap_or(f64::NAN);
    let start = mean(&out["tmux_version"]);
    let round_trip = mean(&out["bare_shell_round_trip"]);
    json!({
        "exec_floor_ms": start + round_trip,
        "exec_goal_ms": tmux["roundtrip_ms"].as_f64().unwrap_or(f64::NAN) / 5.0,
        "new_floor_ms": start,
        "new_goal_ms": tmux["create_ms"].as_f64().unwrap_or(f64::NAN) / 3.0,
        "cli_start_over_tmux_start_ms": mean(&out["cli_version"]) - start,
        "socket_exec_over_bare_shell_ms": mean(&out["socket_exec"]) - round_trip,
    })
}

/// `echo hi` typed into an interactive `sh` on a PTY read by this process, timed until the
/// prompt is back: the shell's and the kernel's share of an exec, with no daemon in between.
fn bare_shell_round_trip(rounds: usize) -> Res<Value> {
    use std::io::{Read, Write};
    let (mut master, slave) = ai_session_bench::open_pty()?;
    let clone = |f: &std::fs::File| f.try_clone().map_err(|e| e.to_string());
    const PROMPT: &[u8] = b"@@ready@@ ";
    let mut child = Command::new("sh")
        .arg("-i")
        .env("PS1", std::str::from_utf8(PROMPT).unwrap_or("$ "))
        .env("ENV", "/dev/null")
        .stdin(clone(&slave)?)
        .stdout(clone(&slave)?)
        .stderr(slave)
        .spawn()
        .map_err(|e| format!("sh: {e}"))?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut until_prompt = |master: &mut std::fs::File| -> Res<()> {
        seen.clear();
        while !seen.ends_with(PROMPT) {
            let n = master.read(&mut buf).map_err(|e| format!("pty: {e}"))?;
            if n == 0 {
                return Err("the shell closed its terminal".into());
            }
            seen.extend_from_slice(&buf[..n]);
        }
        Ok(())
    };
    until_prompt(&mut master)?;
    let times = timed(rounds, |_| {
        master
            .write_all(b"echo hi\n")
            .map_err(|e| format!("pty: {e}"))?;
        until_prompt(&mut master)
    });
    child.kill().ok();
    child.wait().ok();
    times
}

/// The daemon's CPU time (user + system, microseconds) per call of `f` over `rounds` calls.
fn cpu_per_round(pid: u64, rounds: usize, mut f: impl FnMut(usize) -> Res<()>) -> Res<f64> {
    let before = cpu_ticks(pid, false)?;
    for i in 0..rounds {
        f(i)?;
    }
    let after = cpu_ticks(pid, false)?;
    Ok((after - before) as f64 * US_PER_TICK / rounds.max(1) as f64)
}

/// Clock ticks are 1/100 s on Linux (`getconf CLK_TCK`).
const US_PER_TICK: f64 = 10_000.0;

/// Spawns `program args` `rounds` times, waiting for each to exit.
fn spawn_times(program: &Path, args: &[&str], rounds: usize) -> Res<Value> {
    timed(rounds, |_| {
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{} {args:?}: {status}", program.display()))
        }
    })
}

/// Runs `f(i)` for i in 0..rounds; mean, p50 and p99 of its wall time in ms.
fn timed(rounds: usize, mut f: impl FnMut(usize) -> Res<()>) -> Res<Value> {
    let mut ms = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let t = Instant::now();
        f(i)?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    Ok(json!({
        "mean_ms": mean,
        "p50_ms": percentile(&ms, 0.5),
        "p99_ms": percentile(&ms, 0.99),
    }))
}
