//! `export_size`: what `ai-session export` costs for a session with many snapshots. Starts a
//! private daemon, creates one `sh` session whose first exec prints `--lines L` lines (its
//! scrollback and output log), then `--snapshots N` times runs a small exec and takes a
//! snapshot. Then `--rounds R` times: resets the daemon's peak resident size
//! (`/proc/PID/clear_refs`), runs `ai-session export -t s` with its output in a file, and
//! records the export's size, the time it took and the daemon's peak resident size during it
//! (and how far that peak rose above its resident size just before).
//! Prints JSON, with the size of the daemon's store for comparison.
//!
//! usage: export_size [--snapshots N] [--lines L] [--rounds R] [--bin PATH]

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use ai_session_bench::{Cli, Rpc, pct};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let mut snapshots = 80usize;
    let mut lines = 20_000usize;
    let mut rounds = 3usize;
    let mut bin = std::env::current_exe()?.with_file_name("ai-session");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--snapshots" => snapshots = val()?.parse()?,
            "--lines" => lines = val()?.parse()?,
            "--rounds" => rounds = val()?.parse()?,
            "--bin" => bin = PathBuf::from(val()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let home = tempfile::Builder::new().prefix("bench-export").tempdir()?;
    let daemon = Cli::new(&bin, home.path(), "ex");
    daemon.run(&["daemon", "start"])?;
    let mut rpc = Rpc::hello(&daemon.socket(), "bench-export")?;
    let pid = rpc.call("daemon.status", json!({}))?["pid"]
        .as_u64()
        .ok_or("daemon.status has no pid")?;
    rpc.call("session.new", json!({"name": "s", "shell": "/bin/sh"}))?;
    rpc.exec(
        "s",
        &format!("seq 1 {lines} | sed 's/^/build step: compiling crate number /'"),
    )?;
    let t = Instant::now();
    for i in 0..snapshots {
        rpc.exec("s", &format!("echo snapshot {i} of the work so far"))?;
        rpc.call("snapshot.create", json!({"target": "s"}))?;
    }
    eprintln!(
        "{snapshots} snapshots taken in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let store = home.path().join("servers/ex/store");
    let store_bytes = tree_bytes(&store);
    let rss_before = vm_kib(pid, "VmRSS")?;
    let out = home.path().join("export.aisx");
    let (mut ms, mut peaks, mut grew, mut sizes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5")?;
        let start_rss = vm_kib(pid, "VmRSS")?;
        let file = std::fs::File::create(&out)?;
        let t = Instant::now();
        let status = Command::new(&bin)
            .env("AI_SESSION_HOME", home.path())
            .args(["-L", "ex", "export", "-t", "s"])
            .stdout(Stdio::from(file))
            .status()?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if !status.success() {
            return Err(format!("export failed: {status}").into());
        }
        let peak = vm_kib(pid, "VmHWM")?;
        peaks.push(peak as f64);
        grew.push(peak.saturating_sub(start_rss) as f64);
        sizes.push(std::fs::metadata(&out)?.len());
    }
    drop(rpc);
    daemon.run(&["daemon", "stop"])?;
    println!(
        "{}",
        json!({
            "snapshots": snapshots,
            "lines": lines,
            "store_bytes": store_bytes,
            "export_bytes": sizes.last(),
            "export_ms_p50": pct(&mut ms, 0.5),
            "export_ms_max": pct(&mut ms, 1.0),
            "daemon_rss_kib_before": rss_before,
            "daemon_peak_rss_kib_p50": pct(&mut peaks, 0.5),
            "daemon_peak_rss_kib_max": pct(&mut peaks, 1.0),
            "daemon_peak_growth_kib_p50": pct(&mut grew, 0.5),
            "daemon_peak_growth_kib_max": pct(&mut grew, 1.0),
        })
    );
    Ok(())
}

/// A line of `/proc/PID/status` in KiB (`VmRSS`; `VmHWM`, the peak since the last reset).
fn vm_kib(pid: u64, field: &str) -> Result<u64, Error> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))?
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("no {field} for pid {pid}").into())
}

/// Bytes of the regular files under `dir`.
fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => tree_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
