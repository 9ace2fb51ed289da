//! Parsing throughput on large generated inputs: a leveled log, JSON lines, and unrecognised text.
//!
//! Run: `cargo run --release -p ai-session-output --example throughput`

use std::time::Instant;

fn leveled_log(target: usize) -> String {
    let mut s = String::with_capacity(target + 256);
    let mut i = 0u64;
    while s.len() < target {
        i += 1;
        let level = match i % 500 {
            0 => "ERROR",
            1..=9 => "WARN",
            10..=99 => "DEBUG",
            _ => "INFO",
        };
        s.push_str(&format!(
            "2024-05-01 10:{:02}:{:02},{:03} {level} [worker-{}] processed job {i} in {} ms\n",
            (i / 60) % 60,
            i % 60,
            i % 1000,
            i % 8,
            i % 97
        ));
    }
    s
}

fn json_log(target: usize) -> String {
    let mut s = String::with_capacity(target + 256);
    let mut i = 0u64;
    while s.len() < target {
        i += 1;
        let level = if i % 400 == 0 { "error" } else { "info" };
        s.push_str(&format!(
            "{{\"ts\":\"2024-05-01T10:00:{:02}Z\",\"level\":\"{level}\",\"msg\":\"request served\",\"path\":\"/api/items/{i}\",\"ms\":{}}}\n",
            i % 60,
            i % 40
        ));
    }
    s
}

fn measure(name: &str, command: Option<&str>, input: &str) {
    // One warm-up run compiles the lazily built regexes.
    let _warm = ai_session_output::parse(command, &input[..input.len().min(1 << 16)]);
    let start = Instant::now();
    let parsed = ai_session_output::parse(command, input);
    let secs = start.elapsed().as_secs_f64();
    let mb = input.len() as f64 / 1e6;
    println!(
        "{name:<14} {mb:>7.1} MB  {secs:>6.3} s  {:>7.1} MB/s  format={:?} lines={}",
        mb / secs,
        parsed.format,
        parsed.lines
    );
}

fn main() {
    let size = 200_000_000;
    measure("leveled log", None, &leveled_log(size));
    measure("json lines", None, &json_log(size));
    let text: String = leveled_log(size / 2)
        .replace("INFO", "info")
        .replace("WARN", "warn")
        .replace("ERROR", "oops")
        .replace("DEBUG", "dbg");
    measure("plain text", None, &text);
}
