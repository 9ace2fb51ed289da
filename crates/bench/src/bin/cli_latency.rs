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
//!   `session.new`: its `utime + stime` from `/proc/PID/stat` over the rounds, divided by them.
//!
//! usage: cli_latency [--rounds N] [--exe PATH] (TMUX_BASELINE names the baseline script)

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use ai_session_bench::{Cli, Rpc, percentile, tmux_baseline};
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

/// `utime + stime` of process `pid` (with its waited-for children's when `children`), in
/// clock ticks.
fn cpu_ticks(pid: u64, children: bool) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Res<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {i}"))
    };
    // utime, stime, cutime, cstime are fields 14-17 of proc(5): 11-14 counted from the state.
    let own = field(11)? + field(12)?;
    Ok(if children {
        own + field(13)? + field(14)?
    } else {
        own
    })
}

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
