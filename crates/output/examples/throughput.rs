//! Parse-and-view throughput on large generated inputs (a leveled log, JSON lines, cargo output with
//! thousands of warnings, unrecognised text), in process: what `analyze` costs once the input is in
//! memory. `ai-session-bench`'s `output` binary measures the same through the CLI.
//!
//! Run: `cargo run --release -p ai-session-output --example throughput [MB [cargo|json|leveled|plain]]`

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

fn cargo_output(target: usize) -> String {
    let mut s = String::with_capacity(target + 512);
    let mut k = 0u64;
    while s.len() < target {
        k += 1;
        let line = 10 + k % 900;
        s.push_str(&format!(
            "warning: unused variable: `item_{k}`\n  --> src/module_{}.rs:{line}:13\n   |\n{line} |         let item_{k} = load(id);\n   |             ^^^^^^^^ help: if this is intentional, prefix it with an underscore: `_item_{k}`\n   |\n   = note: `#[warn(unused_variables)]` on by default\n\n",
            k % 40
        ));
    }
    s.push_str("error[E0425]: cannot find value `rate` in this scope\n  --> src/tax.rs:14:9\n\nerror: could not compile `shop` (lib) due to 1 previous error\n");
    s
}

fn measure(name: &str, command: Option<&str>, input: &str) {
    let handle = ai_session_output::Handle::command("the input");
    let opts = ai_session_output::ViewOptions::default();
    // The daemon loads the tokenizer on a spare thread at start; `parse` pays it once per process
    // (measured separately in docs/benchmarks.md). One warm-up run compiles the lazy regexes.
    ai_session_output::warm_up(opts.encoding);
    let _warm =
        ai_session_output::analyze(command, &input[..input.len().min(1 << 16)], &handle, &opts);
    let start = Instant::now();
    let (parsed, view) = ai_session_output::analyze(command, input, &handle, &opts);
    let secs = start.elapsed().as_secs_f64();
    let mb = input.len() as f64 / 1e6;
    println!(
        "{name:<14} {mb:>7.1} MB  {secs:>6.3} s  {:>7.1} MB/s  format={:?} lines={} view={} tokens",
        mb / secs,
        parsed.format,
        parsed.lines,
        view.compact_tokens
    );
}

fn main() {
    let size: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200)
        * 1_000_000;
    // A second argument picks one input by the start of its name (`cargo`, `json` ...).
    let only = std::env::args().nth(2).unwrap_or_default();
    if only.is_empty() || "leveled log".starts_with(&only) {
        measure("leveled log", None, &leveled_log(size));
    }
    if only.is_empty() || "json lines".starts_with(&only) {
        measure("json lines", None, &json_log(size));
    }
    if only.is_empty() || "cargo build".starts_with(&only) {
        measure("cargo build", Some("cargo build"), &cargo_output(size / 4));
    }
    if !only.is_empty() && !"plain text".starts_with(&only) {
        return;
    }
    let text: String = leveled_log(size / 2)
        .replace("INFO", "info")
        .replace("WARN", "warn")
        .replace("ERROR", "oops")
        .replace("DEBUG", "dbg");
    measure("plain text", None, &text);
}
