//! `bus`: messages per second through the daemon's socket, publisher to subscriber.
//!
//! Starts a private daemon (the `ai-session` binary next to this one, or `--bin PATH`), opens a
//! subscriber connection (`bus.subscribe`) and a publisher connection that pipelines
//! `bus.publish` requests, and reports messages received per second, from the first request
//! written to the last message read. `--batch N` publishes N messages per request (`messages`).
//!
//! usage: bus [--messages N] [--batch N] [--subscribers N] [--bin PATH]

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Opts {
    messages: u64,
    batch: u64,
    subscribers: usize,
    bin: PathBuf,
}

fn opts() -> Result<Opts, Error> {
    let mut o = Opts {
        messages: 200_000,
        batch: 1,
        subscribers: 1,
        bin: std::env::current_exe()?.with_file_name("ai-session"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--messages" => o.messages = val()?.parse()?,
            "--batch" => o.batch = val()?.parse::<u64>()?.max(1),
            "--subscribers" => o.subscribers = val()?.parse::<usize>()?.max(1),
            "--bin" => o.bin = val()?.into(),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(o)
}

fn connect(sock: &std::path::Path) -> Result<(UnixStream, BufReader<UnixStream>), Error> {
    let mut s = UnixStream::connect(sock)?;
    let mut r = BufReader::new(s.try_clone()?);
    writeln!(
        s,
        "{}",
        json!({"jsonrpc":"2.0","id":0,"method":"hello","params":{"client":"bench","protocol":1}})
    )?;
    let mut line = String::new();
    r.read_line(&mut line)?;
    Ok((s, r))
}

fn main() -> Result<(), Error> {
    let o = opts()?;
    let home = tempfile::Builder::new().prefix("ais-bus").tempdir()?;
    let daemon = |args: &[&str]| {
        Command::new(&o.bin)
            .env("AI_SESSION_HOME", home.path())
            .args(["-L", "bench"])
            .args(args)
            .stdin(Stdio::null())
            .output()
    };
    let started = daemon(&["daemon", "start"])?;
    if !started.status.success() {
        return Err(format!(
            "cannot start the daemon with {}: {}",
            o.bin.display(),
            String::from_utf8_lossy(&started.stderr)
        )
        .into());
    }
    let sock = home.path().join("run").join("bench.sock");
    let result = run(&o, &sock);
    daemon(&["daemon", "stop"])?;
    result
}

fn run(o: &Opts, sock: &std::path::Path) -> Result<(), Error> {
    // Subscribers: count bus.message lines until every message has arrived.
    let mut readers = Vec::new();
    for _ in 0..o.subscribers {
        let (mut s, mut r) = connect(sock)?;
        writeln!(
            s,
            "{}",
            json!({"jsonrpc":"2.0","id":1,"method":"bus.subscribe","params":{"topic":"bench"}})
        )?;
        let mut line = String::new();
        r.read_line(&mut line)?;
        let want = o.messages;
        readers.push(std::thread::spawn(move || -> Result<Instant, Error> {
            let mut got = 0u64;
            let mut line = Vec::with_capacity(256);
            while got < want {
                line.clear();
                if r.read_until(b'\n', &mut line)? == 0 {
                    return Err(format!("connection closed after {got} messages").into());
                }
                if line.starts_with(br#"{"jsonrpc":"2.0","method":"bus.message""#) {
                    got += 1;
                }
            }
            drop(s);
            Ok(Instant::now())
        }));
    }

    // The publisher: requests pipelined on one connection, responses read by a second thread.
    let (s, mut r) = connect(sock)?;
    let requests = o.messages.div_ceil(o.batch);
    let responses = std::thread::spawn(move || -> Result<(u64, u64), Error> {
        let (mut delivered, mut dead) = (0u64, 0u64);
        let mut line = String::new();
        for _ in 0..requests {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Err("the publisher connection closed".into());
            }
            let v: Value = serde_json::from_str(&line)?;
            if let Some(e) = v.get("error") {
                return Err(format!("publish failed: {e}").into());
            }
            delivered += v["result"]["delivered"].as_u64().unwrap_or(0);
            dead += v["result"]["dead_lettered"].as_u64().unwrap_or(0);
        }
        Ok((delivered, dead))
    });
    let start = Instant::now();
    let mut w = BufWriter::with_capacity(1 << 16, s);
    let mut sent = 0u64;
    for id in 0..requests {
        let n = o.batch.min(o.messages - sent);
        let req = if o.batch == 1 {
            json!({"jsonrpc":"2.0","id":id + 10,"method":"bus.publish",
                   "params":{"topic":"bench","message":{"n":sent}}})
        } else {
            let msgs: Vec<Value> = (sent..sent + n).map(|i| json!({"n": i})).collect();
            json!({"jsonrpc":"2.0","id":id + 10,"method":"bus.publish",
                   "params":{"topic":"bench","messages":msgs}})
        };
        serde_json::to_writer(&mut w, &req)?;
        w.write_all(b"\n")?;
        sent += n;
    }
    w.flush()?;
    let (delivered, dead) = responses
        .join()
        .map_err(|_| "the response reader panicked")??;
    let mut last = start;
    for r in readers {
        last = last.max(r.join().map_err(|_| "a subscriber panicked")??);
    }
    let secs = (last - start).as_secs_f64();
    let rate = (o.messages as f64 * o.subscribers as f64) / secs;
    println!(
        "{}",
        json!({
            "messages": o.messages,
            "batch": o.batch,
            "subscribers": o.subscribers,
            "seconds": (secs * 1000.0).round() / 1000.0,
            "messages_per_s": rate.round(),
            "delivered": delivered,
            "dead_lettered": dead,
        })
    );
    Ok(())
}
