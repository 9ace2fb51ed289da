//! `tracing`: what exporting a span per request costs an exec on the socket.
//!
//! Starts two private daemons (the `ai-session` binary next to this one, or `--bin PATH`): one
//! without an OTLP endpoint (no span is made) and one exporting every request's span to a
//! collector on loopback (an HTTP server in this process that reads each `POST /v1/traces` and
//! answers 200), each with one session. Then runs `echo hi` through a connected client of
//! each, alternating rounds of `--round` execs so that the machine's other load falls on both
//! alike, and prints the p50/p90/p99 of each and the p50 ratio (on / off) as JSON.
//!
//! usage: tracing [--execs N] [--round N] [--bin PATH]

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ai_session_bench::{Rpc, pct};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Opts {
    execs: usize,
    round: usize,
    bin: PathBuf,
}

fn opts() -> Result<Opts, Error> {
    let mut o = Opts {
        execs: 2000,
        round: 100,
        bin: std::env::current_exe()?.with_file_name("ai-session"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--execs" => o.execs = val()?.parse()?,
            "--round" => o.round = val()?.parse::<usize>()?.max(1),
            "--bin" => o.bin = val()?.into(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(o)
}

/// A collector that accepts every export; counts the bytes it received.
fn collector(received: Arc<AtomicU64>) -> Result<String, Error> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let received = received.clone();
            std::thread::spawn(move || sink(stream, &received));
        }
    });
    Ok(addr)
}

fn sink(stream: TcpStream, received: &AtomicU64) -> Option<()> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).ok()? == 0 {
                return None;
            }
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        received.fetch_add(length as u64, Ordering::Relaxed);
        out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .ok()?;
    }
}

/// A private daemon with one session, `w`.
struct Daemon {
    home: tempfile::TempDir,
    bin: PathBuf,
}

impl Daemon {
    fn start(bin: &Path, config: &str) -> Result<Self, Error> {
        let home = tempfile::Builder::new().prefix("ais-trace").tempdir()?;
        std::fs::write(home.path().join("config.toml"), config)?;
        let d = Self {
            home,
            bin: bin.to_owned(),
        };
        let out = d.run(&["new", "-s", "w"])?;
        if !out.status.success() {
            return Err(format!(
                "cannot start the daemon with {}: {}",
                bin.display(),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(d)
    }

    fn run(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new(&self.bin)
            .env("AI_SESSION_HOME", self.home.path())
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .args(["-L", "bench"])
            .args(args)
            .stdin(Stdio::null())
            .output()
    }

    fn client(&self) -> Result<Rpc, Error> {
        Ok(Rpc::connect(
            &self.home.path().join("run").join("bench.sock"),
        )?)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.run(&["daemon", "stop"]).ok();
    }
}

fn summary(samples: &mut [f64]) -> serde_json::Value {
    json!({
        "p50_ms": pct(samples, 0.5),
        "p90_ms": pct(samples, 0.9),
        "p99_ms": pct(samples, 0.99),
        "n": samples.len(),
    })
}

fn main() -> Result<(), Error> {
    let o = opts()?;
    let received = Arc::new(AtomicU64::new(0));
    let addr = collector(received.clone())?;
    let off = Daemon::start(&o.bin, "")?;
    let on = Daemon::start(
        &o.bin,
        &format!("[telemetry]\notlp_endpoint = \"http://{addr}\"\nexport_interval_ms = 200\n"),
    )?;
    let mut clients = [off.client()?, on.client()?];
    for c in &mut clients {
        for _ in 0..50 {
            c.exec("w", "echo hi")?;
        }
    }
    let mut samples: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut done = 0;
    while done < o.execs {
        let n = o.round.min(o.execs - done);
        for (c, s) in clients.iter_mut().zip(samples.iter_mut()) {
            for _ in 0..n {
                let t = Instant::now();
                c.exec("w", "echo hi")?;
                s.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        done += n;
    }
    let [mut off_s, mut on_s] = samples;
    let (off_p50, on_p50) = (pct(&mut off_s, 0.5), pct(&mut on_s, 0.5));
    println!(
        "{}",
        json!({
            "execs": o.execs,
            "round": o.round,
            "tracing_off": summary(&mut off_s),
            "tracing_on": summary(&mut on_s),
            "p50_ratio_on_off": on_p50 / off_p50,
            "exported_bytes": received.load(Ordering::Relaxed),
        })
    );
    Ok(())
}
