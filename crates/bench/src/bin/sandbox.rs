//! `sandbox`: what a sandbox costs at session creation. Starts a private daemon (state under
//! `./target`, outside `/tmp`, which a sandbox's private `/tmp` would hide), then for each of
//! `--sessions N` rounds creates one unconfined and one sandboxed (`--policy P`, default
//! `default`) `sh` session over the socket, and times two things for each: `session.new` until
//! it answers, and `session.new` + a first `exec echo ok` (the session is usable). Sessions are
//! killed as it goes. Prints p50/p99 in milliseconds and the sandboxed/unconfined ratios.
//!
//! usage: sandbox [--sessions N] [--policy P] [--bin PATH]

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use ai_session_bench::{Rpc, pct};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let mut n = 100usize;
    let mut policy = "default".to_string();
    let mut bin = std::env::current_exe()?.with_file_name("ai-session");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--sessions" => n = val()?.parse()?,
            "--policy" => policy = val()?,
            "--bin" => bin = PathBuf::from(val()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let base = std::env::current_dir()?.join("target");
    std::fs::create_dir_all(&base)?;
    let home = tempfile::Builder::new()
        .prefix("bench-sandbox")
        .tempdir_in(&base)?;
    let ws = home.path().join("ws");
    std::fs::create_dir_all(&ws)?;
    let cli = |args: &[&str]| {
        Command::new(&bin)
            .env("AI_SESSION_HOME", home.path())
            .args(["-L", "sbx"])
            .args(args)
            .output()
    };
    let started = cli(&["daemon", "start"])?;
    if !started.status.success() {
        return Err(String::from_utf8_lossy(&started.stderr).into_owned().into());
    }
    let mut rpc = Rpc::hello(&home.path().join("run/sbx.sock"), "bench-sandbox")?;
    let (mut plain_new, mut plain_ready, mut sb_new, mut sb_ready) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut protections = Value::Null;
    for i in 0..n {
        for sandboxed in [false, true] {
            let name = format!("{}{i}", if sandboxed { "s" } else { "p" });
            let mut params =
                json!({"name": name, "shell": "/bin/sh", "cwd": ws.display().to_string()});
            if sandboxed {
                params["policy"] = json!(policy);
            }
            let t = Instant::now();
            let info = rpc.call("session.new", params)?;
            let created = t.elapsed().as_secs_f64() * 1e3;
            let r = rpc.call(
                "session.exec",
                json!({"target": name, "command": "echo ok", "timeout_ms": 10000}),
            )?;
            let ready = t.elapsed().as_secs_f64() * 1e3;
            if r["output"] != "ok\n" {
                return Err(format!("{name}: unexpected exec result {r}").into());
            }
            if sandboxed {
                sb_new.push(created);
                sb_ready.push(ready);
                protections = info["sandbox"]["active"].clone();
            } else {
                plain_new.push(created);
                plain_ready.push(ready);
            }
            rpc.call("session.kill", json!({"target": name}))?;
        }
    }
    cli(&["daemon", "stop"]).ok();
    let (pn50, pr50, sn50, sr50) = (
        pct(&mut plain_new, 0.5),
        pct(&mut plain_ready, 0.5),
        pct(&mut sb_new, 0.5),
        pct(&mut sb_ready, 0.5),
    );
    let report = json!({
        "sessions": n,
        "policy": policy,
        "protections": protections,
        "unconfined": {
            "create_p50_ms": pn50, "create_p99_ms": pct(&mut plain_new, 0.99),
            "usable_p50_ms": pr50, "usable_p99_ms": pct(&mut plain_ready, 0.99),
        },
        "sandboxed": {
            "create_p50_ms": sn50, "create_p99_ms": pct(&mut sb_new, 0.99),
            "usable_p50_ms": sr50, "usable_p99_ms": pct(&mut sb_ready, 0.99),
        },
        "overhead": {
            "create_p50_ms": sn50 - pn50,
            "create_ratio": sn50 / pn50,
            "usable_p50_ms": sr50 - pr50,
            "usable_ratio": sr50 / pr50,
        }
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
