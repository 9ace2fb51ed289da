//! `resurrect`: how long the daemon takes to bring sessions back after a restart. Starts a
//! private daemon, creates `--sessions N` `sh` sessions and runs one `exec` in each (so each
//! has a history record and scrollback), then `--rounds R` times: stops the daemon cleanly,
//! starts it again and times (a) `daemon start` until it answers (the sessions are spawned
//! before it says ready), (b) until `session.list` holds all N sessions marked `restored`, and
//! (c) until every one is `idle` (its new shell at its prompt). Prints JSON with p50 and max.
//!
//! usage: resurrect [--sessions N] [--rounds R] [--bin PATH]

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ai_session_bench::{Cli, Rpc, pct};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let mut n = 1000usize;
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
    let home = tempfile::Builder::new()
        .prefix("bench-resurrect")
        .tempdir()?;
    let ws = home.path().join("ws");
    std::fs::create_dir_all(&ws)?;
    let daemon = Cli::new(&bin, home.path(), "rs");
    let sock = daemon.socket();
    let cli = |args: &[&str]| -> Result<(), Error> { Ok(daemon.run(args).map(drop)?) };
    cli(&["daemon", "start"])?;
    let mut rpc = Rpc::hello(&sock, "bench-resurrect")?;
    let t = Instant::now();
    for i in 0..n {
        let name = format!("s{i}");
        rpc.call(
            "session.new",
            json!({"name": name, "shell": "/bin/sh", "cwd": ws.display().to_string()}),
        )?;
        rpc.call(
            "session.exec",
            json!({"target": name, "command": format!("echo line-{i}"), "timeout_ms": 30000}),
        )?;
    }
    eprintln!(
        "{n} sessions created with one exec each in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(rpc);
    let (mut start_ms, mut listed_ms, mut idle_ms, mut stop_ms, mut daemon_ms) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let t = Instant::now();
        cli(&["daemon", "stop"])?;
        stop_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        cli(&["daemon", "start"])?;
        start_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let mut rpc = Rpc::hello(&sock, "bench-resurrect")?;
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut listed = None;
        loop {
            let list = rpc.call("session.list", json!({}))?;
            let sessions = list["sessions"].as_array().cloned().unwrap_or_default();
            let back = sessions.iter().filter(|s| s["restored"] == true).count();
            if back == n && listed.is_none() {
                listed = Some(t.elapsed().as_secs_f64() * 1e3);
            }
            if back == n && sessions.iter().all(|s| s["state"] == "idle") {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("round {round}: only {back}/{n} sessions back").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        listed_ms.push(listed.unwrap_or(f64::NAN));
        idle_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let status = rpc.call("daemon.status", json!({}))?;
        daemon_ms.push(status["persist"]["restore_ms"].as_f64().unwrap_or(f64::NAN));
        let errors = &status["persist"]["errors"];
        if !errors.is_null() {
            eprintln!("round {round}: load errors {errors}");
        }
        // The old scrollback must be there.
        let cap = rpc.call(
            "session.capture",
            json!({"target": "s7", "scrollback": 100}),
        )?;
        if !cap["lines"].to_string().contains("line-7") {
            return Err(format!("round {round}: s7 lost its scrollback: {cap}").into());
        }
    }
    cli(&["daemon", "stop"]).ok();
    let report = json!({
        "sessions": n,
        "rounds": rounds,
        "daemon_restore_ms_p50": pct(&mut daemon_ms, 0.5),
        "start_until_ready_ms_p50": pct(&mut start_ms, 0.5),
        "start_until_ready_ms_max": pct(&mut start_ms, 1.0),
        "start_until_all_listed_ms_p50": pct(&mut listed_ms, 0.5),
        "start_until_all_idle_ms_p50": pct(&mut idle_ms, 0.5),
        "start_until_all_idle_ms_max": pct(&mut idle_ms, 1.0),
        "clean_stop_ms_p50": pct(&mut stop_ms, 0.5),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
