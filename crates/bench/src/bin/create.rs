//! `create`: what recording a session before `session.new` answers costs, and whether an
//! acknowledged session survives a SIGKILL right after the answer. Interleaves `--rounds R`
//! rounds of `--sessions N` creates (`/bin/sh`, one connected client) on a private daemon with
//! the session store on (each `new` waits for its record) and one with the store off (its
//! directory is a file, so the daemon starts without persistence), then `--kills K` times
//! starts the daemon, creates one session and SIGKILLs the daemon at once (0 ms), and counts
//! the sessions the next daemon brings back. Prints JSON: create p50/p90/p99 per mode, survivors.
//!
//! usage: create [--sessions N] [--rounds R] [--kills K] [--bin PATH]

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use ai_session_bench::{Cli, Rpc, pct};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Daemon<'a> {
    bin: &'a Path,
    home: &'a Path,
}

impl Daemon<'_> {
    fn cli(&self, args: &[&str]) -> Result<String, Error> {
        Ok(Cli::new(self.bin, self.home, "cr").run(args)?)
    }

    fn rpc(&self) -> Result<Rpc, Error> {
        Ok(Rpc::hello(
            &Cli::new(self.bin, self.home, "cr").socket(),
            "bench-create",
        )?)
    }
}

/// `n` timed creates on a fresh daemon; the store off when `store` is false.
fn creates(bin: &Path, n: usize, store: bool, out: &mut Vec<f64>) -> Result<(), Error> {
    let home = tempfile::Builder::new().prefix("bench-create").tempdir()?;
    if !store {
        let data = home.path().join("servers/cr");
        std::fs::create_dir_all(&data)?;
        std::fs::write(data.join("store"), b"not a directory: persistence off")?;
    }
    let d = Daemon {
        bin,
        home: home.path(),
    };
    d.cli(&["daemon", "start"])?;
    let mut rpc = d.rpc()?;
    let status = rpc.call("daemon.status", json!({}))?;
    if status["persist"]["dir"].is_null() == store {
        return Err(format!("store expected {store}: {status}").into());
    }
    let cwd = home.path().display().to_string();
    for i in 0..n {
        let t = Instant::now();
        let r = rpc.call(
            "session.new",
            json!({"name": format!("s{i}"), "shell": "/bin/sh", "cwd": cwd}),
        )?;
        out.push(t.elapsed().as_secs_f64() * 1000.0);
        if r.get("persisted") == Some(&Value::Bool(false)) {
            return Err(format!("not recorded: {r}").into());
        }
    }
    d.cli(&["daemon", "stop"])?;
    Ok(())
}

fn stats(mut v: Vec<f64>) -> Value {
    let n = v.len();
    json!({"n": n, "p50_ms": pct(&mut v, 0.5), "p90_ms": pct(&mut v, 0.9), "p99_ms": pct(&mut v, 0.99)})
}

/// `kills` times: a daemon, one `new`, SIGKILL at once; then how many came back.
fn sigkills(bin: &Path, kills: usize) -> Result<Value, Error> {
    let home = tempfile::Builder::new().prefix("bench-create").tempdir()?;
    let d = Daemon {
        bin,
        home: home.path(),
    };
    let cwd = home.path().display().to_string();
    for i in 0..kills {
        d.cli(&["daemon", "start"])?;
        let mut rpc = d.rpc()?;
        let pid = rpc.call("daemon.status", json!({}))?["pid"]
            .as_u64()
            .ok_or("no pid")?;
        rpc.call(
            "session.new",
            json!({"name": format!("k{i}"), "shell": "/bin/sh", "cwd": cwd}),
        )?;
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()?;
        while Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        {
            std::thread::yield_now();
        }
    }
    d.cli(&["daemon", "start"])?;
    let list = d.rpc()?.call("session.list", json!({}))?;
    let back = list["sessions"].as_array().map_or(0, |s| {
        s.iter()
            .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with('k')))
            .count()
    });
    d.cli(&["daemon", "stop"])?;
    Ok(json!({"acknowledged": kills, "back_after_restart": back}))
}

fn main() -> Result<(), Error> {
    let (mut n, mut rounds, mut kills) = (200usize, 5usize, 20usize);
    let mut bin = std::env::current_exe()?.with_file_name("ai-session");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--sessions" => n = val()?.parse()?,
            "--rounds" => rounds = val()?.parse()?,
            "--kills" => kills = val()?.parse()?,
            "--bin" => bin = PathBuf::from(val()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        creates(&bin, n, true, &mut on)?;
        creates(&bin, n, false, &mut off)?;
    }
    let result = json!({
        "create_recorded": stats(on),
        "create_store_off": stats(off),
        "sigkill_after_new": sigkills(&bin, kills)?,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
