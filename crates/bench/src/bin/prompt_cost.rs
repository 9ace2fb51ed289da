//! `prompt_cost`: what a prompt costs an exec, per shell. Starts a private daemon from `--bin`
//! (so two builds can be compared in one run), one session each of bash, zsh and sh, and runs
//! `--execs N` round trips of `exec true` in each, alternating between the shells so load on
//! the machine falls on all of them alike. Prints JSON: p50 and p99 per shell. Used to measure
//! the exported-environment capture the hooks do before each prompt (`docs/benchmarks.md`).
//!
//! usage: prompt_cost [--execs N] [--bin PATH]

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Instant;

use ai_session_bench::{Cli, Rpc, pct};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

const SHELLS: [&str; 3] = ["bash", "zsh", "sh"];

fn main() -> Result<(), Error> {
    let mut execs = 500usize;
    let mut bin = std::env::current_exe()?.with_file_name("ai-session");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--execs" => execs = val()?.parse()?,
            "--bin" => bin = PathBuf::from(val()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let home = tempfile::Builder::new().prefix("bench-prompt").tempdir()?;
    let daemon = Cli::new(&bin, home.path(), "pc").with_env("HOME", home.path());
    let cli = |args: &[&str]| -> Result<(), Error> { Ok(daemon.run(args).map(drop)?) };
    cli(&["daemon", "start"])?;
    let mut rpc = Rpc::hello(&daemon.socket(), "bench-prompt")?;
    for sh in SHELLS {
        rpc.call("session.new", json!({"name": sh, "shell": sh}))?;
        // A few warm-up execs: the first prompt and the tokenizer's first use.
        for _ in 0..5 {
            rpc.exec(sh, "true")?;
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(execs); SHELLS.len()];
    for _ in 0..execs {
        for (i, sh) in SHELLS.iter().enumerate() {
            let t = Instant::now();
            rpc.exec(sh, "true")?;
            samples[i].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    drop(rpc);
    cli(&["daemon", "stop"]).ok();
    let mut report = serde_json::Map::new();
    report.insert("bin".into(), json!(bin.display().to_string()));
    report.insert("execs_per_shell".into(), json!(execs));
    for (sh, mut s) in SHELLS.iter().zip(samples) {
        report.insert(
            (*sh).to_owned(),
            json!({"exec_ms_p50": pct(&mut s, 0.5), "exec_ms_p99": pct(&mut s, 0.99)}),
        );
    }
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
