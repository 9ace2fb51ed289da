//! `output`: the figures of issue 17 (output at any size), each taken on the path users take and
//! side by side with tmux and a bare PTY reader in the same run.
//!
//! - `ai-session parse` (one process, default view) of a 50 MB leveled log with 3 errors and of
//!   cargo output with 53,896 warnings then 2 errors (20 MB), and both at 500 MB with `--big`:
//!   MB/s, peak memory (`/usr/bin/time`), view tokens, whether every error line is in the view
//!   and the errors come before the warnings;
//! - the tokenizer's first use in a process (time and resident memory);
//! - `ai-session exec -t tp 'cat FILE'` of base64 text (default 32 MB) through the CLI with its
//!   default view and with `--view compact`, against a bare PTY reader (`cat` on a PTY, 64 KiB
//!   reads, nothing else), a reader that also appends each read to a file (what keeping every
//!   byte costs a reader here) and tmux's `cat` through a pane; the readers and the two execs
//!   alternate for `--cat-rounds` rounds (default 3, the first exec in a fresh session) and
//!   the medians are reported with every round's figures, so a moment of load on the shared
//!   machine moves one sample, not the ratio;
//! - CLI `exec 'echo hi'` round trip and CLI `new`, against tmux's send-keys + capture loop and
//!   `new-session`. Each latency phase starts once the daemon has used no CPU for 300 ms (at
//!   most 20 s; the wait is reported as `*_waited_for_quiet_ms`): the floods before it leave
//!   up to a second of log writing behind them, which would be counted in the first round trips.
//!
//! `--cat-only` takes the `cat` figures alone (the bare reader and the two views), for
//! comparing builds run after run.
//!
//! usage: output [--mb MB] [--big] [--rounds N] [--cat-rounds N] [--skip-tmux] [--cat-only]

#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ai_session_bench::{Rpc, percentile, tmux_baseline, wait_quiet};
use ai_session_output::{Encoding, count_tokens};
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let mb = arg(&args, "--mb", 32);
    let rounds = arg(&args, "--rounds", 100);
    let big = args.iter().any(|a| a == "--big");
    let exe = std::env::current_exe()
        .map_err(err)?
        .with_file_name("ai-session");
    let dir = tempfile::tempdir().map_err(err)?;
    let cat_only = args.iter().any(|a| a == "--cat-only");
    let mut report = serde_json::Map::new();
    if !cat_only {
        report.insert("tokenizer_first_use".into(), tokenizer_first_use());
    }
    let mut parse = Vec::new();
    let sizes: &[(&str, usize)] = if cat_only {
        &[]
    } else {
        &[("log", 50), ("cargo", 20), ("cargo", 50)]
    };
    for &(name, size) in sizes.iter().chain(
        (big && !cat_only)
            .then_some([("log", 500), ("cargo", 500)])
            .iter()
            .flatten(),
    ) {
        let file = dir.path().join(format!("{name}{size}.txt"));
        let facts = write_input(name, size * 1_000_000, &file)?;
        parse.push(parse_figure(&exe, name, &file, &facts)?);
        std::fs::remove_file(&file).map_err(err)?;
    }
    report.insert("parse".into(), Value::Array(parse));
    let tmux = if cat_only || args.iter().any(|a| a == "--skip-tmux") {
        Value::Null
    } else {
        tmux_baseline(rounds, mb)?
    };
    report.insert("tmux".into(), tmux.clone());
    let text = dir.path().join("big.txt");
    shell(&format!(
        "head -c {} /dev/urandom | base64 > {}",
        mb * 1_000_000 * 3 / 4,
        text.display()
    ))?;
    let cat_rounds = arg(&args, "--cat-rounds", 3).max(1);
    let ours = daemon_figures(&exe, &text, rounds, cat_rounds, cat_only)?;
    let bare = ours["bare_pty_reader_mb_s"].as_f64().unwrap_or(0.0);
    report.insert("bare_pty_reader_mb_s".into(), json!(bare));
    let ratio = |a: f64, b: Option<f64>| b.filter(|b| *b > 0.0).map(|b| a / b);
    let tp = ours["exec_cat_default_view_mb_s"].as_f64().unwrap_or(0.0);
    report.insert(
        "ratios".into(),
        json!({
            "exec_cat_vs_bare_pty": tp / bare,
            "logging_reader_vs_bare_pty": ours["logging_pty_reader_mb_s"].as_f64().unwrap_or(0.0) / bare,
            "exec_cat_vs_tmux": ratio(tp, tmux["throughput_mb_s"].as_f64()),
            "cli_exec_speedup_vs_tmux": tmux["roundtrip_ms"].as_f64()
                .and_then(|t| ratio(t, ours["cli_exec"]["mean_ms"].as_f64())),
            "cli_new_speedup_vs_tmux": tmux["create_ms"].as_f64()
                .and_then(|t| ratio(t, ours["cli_new"]["mean_ms"].as_f64())),
        }),
    );
    report.insert("ai_session".into(), ours);
    println!(
        "{}",
        serde_json::to_string_pretty(&Value::Object(report)).map_err(err)?
    );
    Ok(())
}

fn shell(script: &str) -> Res<()> {
    let st = Command::new("sh")
        .arg("-c")
        .arg(script)
        .status()
        .map_err(err)?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("`{script}` failed"))
    }
}

/// The first count in a fresh process loads the vocabulary: its time and resident memory.
fn tokenizer_first_use() -> Value {
    let before = rss_kb("self").unwrap_or(0.0);
    let t = Instant::now();
    let n = count_tokens("hello world", Encoding::O200kBase);
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let after = rss_kb("self").unwrap_or(0.0);
    let t = Instant::now();
    count_tokens("hello again", Encoding::O200kBase);
    json!({"encoding": "o200k_base", "first_count_ms": ms, "rss_growth_kb": after - before,
           "next_count_ms": t.elapsed().as_secs_f64() * 1000.0, "tokens": n})
}

fn rss_kb(pid: &str) -> Res<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(err)?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

/// What a view of an input must hold.
struct Facts {
    command: Option<&'static str>,
    /// Lines that must be in the view.
    must: Vec<String>,
    /// A line that must come after every `must` line (the first warning), if any.
    after: Option<String>,
}

/// Writes about `size` bytes of a generated input: a leveled log with 3 errors among warnings,
/// or cargo output with warnings then 2 errors.
fn write_input(kind: &str, size: usize, path: &Path) -> Res<Facts> {
    let mut w = BufWriter::new(File::create(path).map_err(err)?);
    let mut written = 0usize;
    let mut i = 0u64;
    if kind == "log" {
        let errors = [size / 4, size / 2, size - size / 100];
        let mut next = 0;
        let mut must = Vec::new();
        while written < size {
            i += 1;
            let level = match i % 400 {
                0 => "WARN",
                1..=40 => "DEBUG",
                _ => "INFO",
            };
            let mut line = format!(
                "2026-11-30 10:{:02}:{:02},{:03} {level} [worker-{}] processed job {i} in {} ms\n",
                (i / 60) % 60,
                i % 60,
                i % 1000,
                i % 8,
                i % 97
            );
            if next < errors.len() && written >= errors[next] {
                let e = format!(
                    "2026-11-30 10:00:00,000 ERROR [billing] invoice {i} failed: card declined (case {next})"
                );
                line = format!("{e}\n");
                must.push(e);
                next += 1;
            }
            w.write_all(line.as_bytes()).map_err(err)?;
            written += line.len();
        }
        w.flush().map_err(err)?;
        return Ok(Facts {
            command: None,
            must,
            after: None,
        });
    }
    let warnings = size / 376;
    let tail = format!(
        "error[E0308]: mismatched types\n  --> src/billing.rs:88:17\n   |\n88 |     let total: u32 = \"12\";\n   |                ---   ^^^^ expected `u32`, found `&str`\n   |                |\n   |                expected due to this\n\nerror[E0425]: cannot find value `rate` in this scope\n  --> src/tax.rs:14:9\n   |\n14 |         rate * amount\n   |         ^^^^ not found in this scope\n\nerror: could not compile `shop` (lib) due to 2 previous errors; {warnings} warnings emitted\n"
    );
    w.write_all(b"   Compiling shop v0.1.0 (/work/shop)\n")
        .map_err(err)?;
    for k in 0..warnings as u64 {
        let line = 10 + k % 900;
        let block = format!(
            "warning: unused variable: `item_{k}`\n  --> src/module_{m}.rs:{line}:13\n   |\n{line} |         let item_{k} = load(id);\n   |             ^^^^^^^^ help: if this is intentional, prefix it with an underscore: `_item_{k}`\n   |\n   = note: `#[warn(unused_variables)]` on by default\n\n",
            m = k % 40
        );
        w.write_all(block.as_bytes()).map_err(err)?;
    }
    w.write_all(tail.as_bytes()).map_err(err)?;
    w.flush().map_err(err)?;
    Ok(Facts {
        command: Some("cargo build"),
        must: vec![
            "E0308".into(),
            "src/billing.rs:88:17".into(),
            "E0425".into(),
            "src/tax.rs:14:9".into(),
            "could not compile `shop`".into(),
        ],
        after: Some("warning".into()),
    })
}

/// `ai-session parse < file` under `/usr/bin/time`: wall time, peak memory, the view's tokens and
/// whether it keeps the facts.
fn parse_figure(exe: &Path, kind: &str, file: &Path, facts: &Facts) -> Res<Value> {
    let bytes = std::fs::metadata(file).map_err(err)?.len() as f64;
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "%M"]).arg(exe).arg("parse");
    if let Some(c) = facts.command {
        cmd.args(["--command", c]);
    }
    let t = Instant::now();
    let out = cmd
        .stdin(File::open(file).map_err(err)?)
        .output()
        .map_err(err)?;
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "parse failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let peak_kb: f64 = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(f64::NAN);
    let view = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&String> = facts
        .must
        .iter()
        .filter(|f| !view.contains(f.as_str()))
        .collect();
    let last_fact = facts
        .must
        .iter()
        .filter_map(|f| view.find(f.as_str()))
        .max();
    let errors_first = match (&facts.after, last_fact) {
        (Some(w), Some(last)) => view
            .lines()
            .skip(1)
            .find(|l| l.starts_with(w.as_str()))
            .and_then(|l| view.find(l))
            .is_none_or(|p| p > last),
        _ => true,
    };
    Ok(json!({
        "input": kind,
        "mb": bytes / 1e6,
        "seconds": secs,
        "mb_s": bytes / 1e6 / secs,
        "peak_rss_mb": peak_kb / 1024.0,
        "view_tokens": count_tokens(&view, Encoding::O200kBase),
        "view_lines": view.lines().count(),
        "facts_kept": facts.must.len() - missing.len(),
        "facts": facts.must.len(),
        "missing": missing,
        "errors_before_warnings": errors_first,
    }))
}

/// `cat FILE` with its output on a fresh PTY, read in 64 KiB chunks and thrown away: the most any
/// reader of a PTY gets on this machine.
fn bare_pty_reader(file: &Path) -> Res<f64> {
    pty_reader(file, None)
}

/// [`bare_pty_reader`] that also appends every chunk to a file in `dir` as it reads (as the
/// daemon's output log must): the most a reader that keeps what it read gets here.
fn logging_pty_reader(file: &Path, dir: &Path) -> Res<f64> {
    let path = dir.join("reader.log");
    let log = std::fs::File::create(&path).map_err(err)?;
    let speed = pty_reader(file, Some(log));
    std::fs::remove_file(&path).ok();
    speed
}

fn pty_reader(file: &Path, mut log: Option<std::fs::File>) -> Res<f64> {
    use std::io::Write;
    let (mut master, slave) = ai_session_bench::open_pty()?;
    let bytes = std::fs::metadata(file).map_err(err)?.len() as f64;
    let t = Instant::now();
    let mut child = Command::new("cat")
        .arg(file)
        .stdout(Stdio::from(slave))
        .stdin(Stdio::null())
        .spawn()
        .map_err(err)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0usize;
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if let Some(log) = &mut log {
                    log.write_all(&buf[..n]).map_err(err)?;
                }
            }
            // EIO: the last holder of the slave (cat) exited.
            Err(_) => break,
        }
    }
    let secs = t.elapsed().as_secs_f64();
    child.wait().map_err(err)?;
    if (got as f64) < bytes {
        return Err(format!("bare reader got {got} of {bytes} bytes"));
    }
    Ok(bytes / 1e6 / secs)
}

struct Cli {
    exe: PathBuf,
    home: tempfile::TempDir,
}

impl Cli {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.env("AI_SESSION_HOME", self.home.path())
            .args(["-L", "bench"])
            .args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> Res<Vec<u8>> {
        let out = self.cmd(args).output().map_err(err)?;
        if !out.status.success() {
            return Err(format!(
                "ai-session {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(out.stdout)
    }
}

fn stats(mut ms: Vec<f64>) -> Value {
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    json!({"mean_ms": mean, "p50_ms": percentile(&ms, 0.5), "p99_ms": percentile(&ms, 0.99), "n": ms.len()})
}

/// The daemon's figures, each through one CLI process as a user runs it.
fn daemon_figures(
    exe: &Path,
    text: &Path,
    rounds: usize,
    cat_rounds: usize,
    cat_only: bool,
) -> Res<Value> {
    let cli = Cli {
        exe: exe.to_path_buf(),
        home: tempfile::tempdir().map_err(err)?,
    };
    cli.ok(&["daemon", "start"])?;
    let figures = daemon_runs(&cli, text, rounds, cat_rounds, cat_only);
    cli.ok(&["daemon", "stop"]).ok();
    figures
}

/// The median of `xs` (the upper one of an even count).
fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0)
}

/// The bare PTY reader, the cat exec with the default view and with `--view compact`, one after
/// the other for `cat_rounds` rounds: medians and every round's MB/s.
fn cat_runs(
    cli: &Cli,
    text: &Path,
    cat_rounds: usize,
    out: &mut serde_json::Map<String, Value>,
) -> Res<()> {
    let bytes = std::fs::metadata(text).map_err(err)?.len() as f64;
    cli.ok(&["new", "-s", "tp", "--shell", "/bin/sh", "--size", "200x50"])?;
    cli.ok(&["exec", "-t", "tp", "true"])?;
    let cat = format!("cat {}", text.display());
    let keys = [
        "bare_pty_reader_mb_s",
        "exec_cat_default_view_mb_s",
        "exec_cat_compact_view_mb_s",
        "logging_pty_reader_mb_s",
    ];
    let mut runs: [Vec<f64>; 4] = Default::default();
    for _ in 0..cat_rounds {
        runs[0].push(bare_pty_reader(text)?);
        runs[3].push(logging_pty_reader(text, cli.home.path())?);
        for (i, view) in [(1, None), (2, Some("compact"))] {
            let mut args = vec!["exec", "-t", "tp"];
            if let Some(v) = view {
                args.extend(["--view", v]);
            }
            args.push(&cat);
            let t = Instant::now();
            let shown = cli.ok(&args)?;
            runs[i].push(bytes / 1e6 / t.elapsed().as_secs_f64());
            if view.is_some() {
                let view = String::from_utf8_lossy(&shown);
                out.insert(
                    "exec_cat_compact_view_tokens".into(),
                    json!(count_tokens(&view, Encoding::O200kBase)),
                );
            } else if shown.len() < (bytes as usize).min(8 << 20) / 10 * 9 {
                return Err(format!("the cat exec printed {} bytes", shown.len()));
            }
        }
    }
    for (key, xs) in keys.iter().zip(runs) {
        out.insert(format!("{key}_rounds"), json!(xs));
        out.insert((*key).into(), json!(median(xs)));
    }
    Ok(())
}

fn daemon_runs(
    cli: &Cli,
    text: &Path,
    rounds: usize,
    cat_rounds: usize,
    cat_only: bool,
) -> Res<Value> {
    let mut out = serde_json::Map::new();
    cat_runs(cli, text, cat_rounds, &mut out)?;
    if cat_only {
        return Ok(Value::Object(out));
    }
    cli.ok(&["new", "-s", "rt", "--shell", "/bin/sh"])?;
    cli.ok(&["exec", "-t", "rt", "true"])?;
    // The latency phases start on a daemon at rest: after the floods above it still writes
    // and compresses their logs for up to a second, which is not what a round trip costs.
    let sock = cli.home.path().join("run/bench.sock");
    let mut rpc = Rpc::connect(&sock)?;
    let pid = rpc.call("daemon.status", json!({}))?["pid"]
        .as_u64()
        .ok_or("daemon.status has no pid")?;
    let settle = |out: &mut serde_json::Map<String, Value>, phase: &str| -> Res<()> {
        let waited = wait_quiet(pid, Duration::from_millis(300), Duration::from_secs(20))?;
        out.insert(
            format!("{phase}_waited_for_quiet_ms"),
            json!(waited.as_millis() as u64),
        );
        Ok(())
    };
    settle(&mut out, "cli_exec")?;
    let mut rt = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        let shown = cli.ok(&["exec", "-t", "rt", &format!("echo MARK{i}")])?;
        rt.push(t.elapsed().as_secs_f64() * 1000.0);
        if shown != format!("MARK{i}\n").as_bytes() {
            return Err(format!(
                "exec printed {:?}",
                String::from_utf8_lossy(&shown)
            ));
        }
    }
    out.insert("cli_exec".into(), stats(rt));
    settle(&mut out, "cli_new")?;
    let mut create = Vec::new();
    for i in 0..rounds {
        let name = format!("c{i}");
        let t = Instant::now();
        cli.ok(&["new", "-s", &name, "--shell", "sh"])?;
        create.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.insert("cli_new".into(), stats(create));
    settle(&mut out, "socket_exec")?;
    let mut socket = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        rpc.exec("rt", "echo hi")?;
        socket.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    out.insert("socket_exec".into(), stats(socket));
    Ok(Value::Object(out))
}
