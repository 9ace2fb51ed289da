//! `upgrade`: the pause clients see while `daemon upgrade` replaces the daemon under running
//! sessions. Starts a private daemon with `--sessions N` `sh` sessions (one exec each, so each
//! has scrollback and a history record) plus a `probe` session; a client thread runs
//! `exec true` in `probe` back to back, reconnecting when its connection is closed or answered
//! `shutting_down` (the exec is then sent again, and its latency counts from the first try).
//! Then `--rounds R` times: `ai-session daemon upgrade --json` (to the same binary), timed.
//! Prints JSON: the exec latency p50 outside upgrades, the largest exec latency (the pause a
//! client sees), the daemon's own `pause_ms` and the wall time of the upgrade command.
//!
//! usage: upgrade [--sessions N] [--rounds R] [--bin PATH]

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ai_session_bench::{Cli, Rpc, pct};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let mut n = 100usize;
    let mut rounds = 3usize;
    let mut bin = std::env::current_exe()?.with_file_name("ai-session");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--sessions" => n = val()?.parse()?,
            "--rounds" => rounds = val()?.parse()?,
            "--bin" => bin = PathBuf::from(val()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let home = tempfile::Builder::new().prefix("bench-upgrade").tempdir()?;
    let daemon = Cli::new(&bin, home.path(), "up");
    let sock = daemon.socket();
    let cli = |args: &[&str]| -> Result<String, Error> { Ok(daemon.run(args)?) };
    cli(&["daemon", "start"])?;
    let mut rpc = Rpc::hello(&sock, "bench-upgrade")?;
    for i in 0..n {
        let name = format!("s{i}");
        rpc.call("session.new", json!({"name": name, "shell": "/bin/sh"}))?;
        rpc.exec(&name, &format!("echo line-{i}"))?;
    }
    rpc.call("session.new", json!({"name": "probe", "shell": "/bin/sh"}))?;
    rpc.exec("probe", "true")?;
    drop(rpc);
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (sock, stop) = (sock.clone(), stop.clone());
        std::thread::spawn(move || probe(&sock, &stop))
    };
    let (mut pause_ms, mut wall_ms) = (Vec::new(), Vec::new());
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..rounds {
        let t = Instant::now();
        let out: serde_json::Value = serde_json::from_str(&cli(&["daemon", "upgrade", "--json"])?)?;
        wall_ms.push(t.elapsed().as_secs_f64() * 1e3);
        pause_ms.push(out["pause_ms"].as_f64().unwrap_or(f64::NAN));
        let handed = out["sessions"].as_array().map_or(0, Vec::len);
        if handed != n + 1 {
            return Err(format!("{handed} sessions handed over, not {}", n + 1).into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    let probed = prober.join().map_err(|_| "the probe thread panicked")??;
    let (mut lat, retried) = probed;
    let count = lat.len();
    cli(&["daemon", "stop"]).ok();
    let report = json!({
        "sessions": n + 1,
        "rounds": rounds,
        "execs": count,
        "execs_retried_after_handover": retried,
        "exec_ms_p50": pct(&mut lat, 0.5),
        "exec_ms_p99": pct(&mut lat, 0.99),
        "exec_ms_max": pct(&mut lat, 1.0),
        "daemon_pause_ms_p50": pct(&mut pause_ms, 0.5),
        "daemon_pause_ms_max": pct(&mut pause_ms, 1.0),
        "upgrade_command_ms_p50": pct(&mut wall_ms, 0.5),
        "upgrade_command_ms_max": pct(&mut wall_ms, 1.0),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Runs `exec true` in `probe` until `stop`; returns each exec's latency (ms, retries
/// included) and how many had to be sent again on a new connection.
fn probe(sock: &Path, stop: &AtomicBool) -> Result<(Vec<f64>, usize), Error> {
    let mut lat = Vec::new();
    let mut retried = 0;
    let mut rpc: Option<Rpc> = None;
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        let mut tries = 0;
        loop {
            tries += 1;
            if tries > 1000 {
                return Err("exec failed 1000 times in a row".into());
            }
            let conn = match rpc.as_mut() {
                Some(c) => c,
                None => match Rpc::hello(sock, "bench-upgrade-probe") {
                    Ok(c) => rpc.insert(c),
                    Err(_) => continue,
                },
            };
            match conn.exec("probe", "true") {
                Ok(_) => break,
                Err(_) => rpc = None,
            }
        }
        if tries > 1 {
            retried += 1;
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok((lat, retried))
}
