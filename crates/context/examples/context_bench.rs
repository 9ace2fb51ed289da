//! Benchmarks of the context library, on generated agent-session history.
//!
//! `cargo run --release -p ai-session-context --example context_bench [-- MEGABYTES [ZSTD_LEVEL]]`
//!
//! 1. Building a 4k-token view from 10,000 live entries: p50 and p99 over 2,000 builds.
//! 2. One-shot compression: a history of MEGABYTES (default 100) MB of entry text (command
//!    lines, compact outputs, messages) added with compression out of reach, then the default
//!    limits applied with `set_config`: the timed call chooses the entries, folds them into the
//!    summary (counting the changed lines' tokens), encodes them as JSON, compresses them with
//!    zstd and appends the frames.
//! 3. Incremental compression: the same history added to a context with the default config;
//!    the context's own `compress_time` counter sums the same work over every compression,
//!    timed apart from adding (rendering both forms of each entry and counting their tokens
//!    with the real tokenizer, trackers, learning).

use std::time::{Duration, Instant};

use ai_session_context::{ContextConfig, ContextError, ExecRecord, Role, SessionContext};

/// Nanoseconds of CPU this thread has used (user + system, from Linux `/proc/thread-self/stat`,
/// in 10 ms clock ticks): time taken by other processes on this shared machine does not count.
fn cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at field 3; utime is 14.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|n| n.parse().ok())
        .collect();
    f.iter().sum::<u64>() * 10_000_000
}

/// xorshift64*, for reproducible variety without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const FILES: [&str; 8] = [
    "src/lib.rs",
    "src/parser.rs",
    "src/main.rs",
    "tests/api.rs",
    "py/slug.py",
    "py/tests/test_slug.py",
    "Cargo.toml",
    "src/cache/mod.rs",
];
const COMMANDS: [&str; 8] = [
    "cargo build",
    "cargo test --features unicode",
    "cargo check",
    "git status --short",
    "python -m pytest -q tests/",
    "git diff --stat",
    "cargo clippy --all-targets -- -D warnings",
    "ls -la src",
];

/// One exec with a compact output of about `size` bytes.
fn exec(rng: &mut Rng, i: usize, size: usize) -> ExecRecord {
    let cmd = COMMANDS[rng.below(8) as usize];
    let failed = rng.below(6) == 0;
    let mut out = String::with_capacity(size + 128);
    if failed {
        let f = FILES[rng.below(8) as usize];
        out.push_str(&format!(
            "error[E0{}]: mismatched types in call {}\n  --> {f}:{}:{}\n",
            300 + rng.below(99),
            rng.next() % 100_000,
            rng.below(400),
            rng.below(80)
        ));
    }
    while out.len() < size {
        let f = FILES[rng.below(8) as usize];
        match rng.below(4) {
            0 => out.push_str(&format!(
                "   Compiling crate_{} v0.{}.{} ({f})\n",
                rng.below(300),
                rng.below(20),
                rng.below(10)
            )),
            1 => out.push_str(&format!(
                "test module_{}::case_{} ... ok ({} ms)\n",
                rng.below(50),
                rng.below(1000),
                rng.below(900)
            )),
            2 => out.push_str(&format!(" M {f}\n?? scratch/{:x}.tmp\n", rng.next())),
            _ => out.push_str(&format!(
                "warning: unused variable `v{}` at {f}:{}\n",
                rng.below(100),
                rng.below(500)
            )),
        }
    }
    ExecRecord::new(cmd, Some(if failed { 101 } else { 0 }), "/work/proj")
        .output(out)
        .duration_ms(rng.below(5_000))
        .at_ms(1_700_000_000_000 + i as u64 * 1_000)
}

/// Adds about `megabytes` MB of entry text (every tenth entry a note) to `ctx`; returns the
/// text bytes added.
fn fill(ctx: &mut SessionContext, megabytes: usize) -> Result<usize, ContextError> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let target = megabytes * 1_000_000;
    let mut text = 0usize;
    let mut i = 0;
    while text < target {
        if i % 10 == 9 {
            let msg = format!(
                "Decision {i}: keep the parser streaming; cache {} in {}",
                rng.next(),
                FILES[rng.below(8) as usize]
            );
            text += msg.len();
            ctx.add_message(Role::Note, msg, None)?;
        } else {
            let size = 1_500 + rng.below(1_500) as usize;
            let r = exec(&mut rng, i, size);
            text += r.command.len() + r.output.len();
            ctx.record_exec(r)?;
        }
        i += 1;
    }
    Ok(text)
}

/// A whole history compressed at once: entries added with compression out of reach, then the
/// default limits applied, which compresses all but the window in one pass.
fn one_shot(megabytes: usize, zstd_level: i32) -> Result<(), ContextError> {
    let config = ContextConfig {
        zstd_level,
        ..ContextConfig::default()
    };
    let roomy = ContextConfig {
        max_tokens: 1 << 40,
        ..config.clone()
    };
    let mut ctx = SessionContext::new("bench", roomy)?;
    let text = fill(&mut ctx, megabytes)?;
    let (t, cpu) = (Instant::now(), cpu_ns());
    ctx.set_config(config)?;
    let took = t.elapsed().as_secs_f64();
    let on_cpu = (cpu_ns() - cpu) as f64 / 1e9;
    let s = ctx.stats();
    println!("## One-shot compression of a {megabytes} MB history (zstd level {zstd_level})");
    println!(
        "{} entries, {:.1} MB of entry text; archived {} entries ({:.1} MB text, {:.1} MB JSON) into {} frames, {:.1} MB zstd; summary {} lines, {} tokens; live {} entries",
        s.entries_added,
        text as f64 / 1e6,
        s.entries_archived,
        s.text_bytes_archived as f64 / 1e6,
        ctx.archive().raw_bytes() as f64 / 1e6,
        ctx.archive().frames().len(),
        ctx.archive().bytes().len() as f64 / 1e6,
        ctx.summary().lines.len(),
        ctx.summary().tokens(),
        ctx.live().count()
    );
    let text_mb = s.text_bytes_archived as f64 / 1e6;
    let json_mb = ctx.archive().raw_bytes() as f64 / 1e6;
    println!(
        "set_config -> compression: wall {:.0} ms -> {:.0} MB/s of entry text ({:.0} MB/s of JSON); on-CPU {:.0} ms -> {:.0} MB/s ({:.0} MB/s of JSON)",
        took * 1e3,
        text_mb / took,
        json_mb / took,
        on_cpu * 1e3,
        text_mb / on_cpu,
        json_mb / on_cpu
    );
    Ok(())
}

fn compression(megabytes: usize, zstd_level: i32) -> Result<(), ContextError> {
    let config = ContextConfig {
        zstd_level,
        ..ContextConfig::default()
    };
    let mut ctx = SessionContext::new("bench", config)?;
    let (start, cpu) = (Instant::now(), cpu_ns());
    let text = fill(&mut ctx, megabytes)?;
    let total = start.elapsed();
    let on_cpu = (cpu_ns() - cpu) as f64 / 1e9;
    let s = ctx.stats();
    let c = s.compress_time.as_secs_f64();
    let mb = s.text_bytes_archived as f64 / 1e6;
    let json_mb = ctx.archive().raw_bytes() as f64 / 1e6;
    println!(
        "## Incremental compression while adding {megabytes} MB (default config, zstd level {zstd_level})"
    );
    println!(
        "entries added: {}; archived: {} in {} frames; compressions: {}",
        s.entries_added,
        s.entries_archived,
        ctx.archive().frames().len(),
        s.compressions
    );
    println!(
        "archived entry text: {mb:.1} MB ({json_mb:.1} MB as JSON lines) -> {:.1} MB zstd (ratio {:.1}x)",
        ctx.archive().bytes().len() as f64 / 1e6,
        json_mb * 1e6 / ctx.archive().bytes().len().max(1) as f64
    );
    println!(
        "compress time (sum over all compressions): {:.0} ms -> {:.0} MB/s of entry text ({:.0} MB/s of JSON)",
        c * 1e3,
        mb / c,
        json_mb / c
    );
    println!(
        "add time (render + real token counts + trackers), compression excluded: {:.0} ms -> {:.1} MB/s",
        (total.as_secs_f64() - c) * 1e3,
        text as f64 / 1e6 / (total.as_secs_f64() - c)
    );
    println!(
        "this thread was on a CPU {:.0}% of the wall time (the rest went to other processes)",
        100.0 * on_cpu / total.as_secs_f64()
    );
    breakdown(&ctx)?;
    let t = Instant::now();
    let bytes = ctx.to_bytes()?;
    let ser = t.elapsed();
    let t = Instant::now();
    let back = SessionContext::from_bytes(&bytes)?;
    let de = t.elapsed();
    let t = Instant::now();
    let e = back.get(s.entries_archived / 2)?;
    let get = t.elapsed();
    println!(
        "to_bytes: {} bytes in {:.1} ms; from_bytes {:.1} ms; get(archived id) {:.0} µs ({})",
        bytes.len(),
        ser.as_secs_f64() * 1e3,
        de.as_secs_f64() * 1e3,
        get.as_secs_f64() * 1e6,
        if e.is_some() { "found" } else { "MISSING" }
    );
    Ok(())
}

/// Re-runs the two halves of compression on the archived entries, in batches of the size the
/// run used, to show where the time goes.
fn breakdown(ctx: &SessionContext) -> Result<(), ContextError> {
    use ai_session_context::summary::{Extractive, Summarizer, Summary, SummaryLimits};
    let mut entries = Vec::new();
    ctx.archive().for_each(|e| entries.push(e))?;
    let batch = (entries.len() / ctx.stats().compressions.max(1) as usize).max(1);
    let level = ctx.config().zstd_level;
    let (t, cpu) = (Instant::now(), cpu_ns());
    let mut archive = ai_session_context::Archive::default();
    for chunk in entries.chunks(batch) {
        archive.append(chunk, level)?;
    }
    let archive_time = t.elapsed();
    let archive_cpu = (cpu_ns() - cpu) as f64 / 1e9;
    let limits = SummaryLimits {
        encoding: ctx.config().encoding,
        max_lines: ctx.config().max_summary_lines,
        max_tokens: ctx.config().target_tokens() / 3,
    };
    let mut summary = Summary::default();
    let (t, cpu) = (Instant::now(), cpu_ns());
    for chunk in entries.chunks(batch) {
        Extractive.fold(&mut summary, chunk, limits)?;
    }
    let fold_time = t.elapsed();
    let fold_cpu = (cpu_ns() - cpu) as f64 / 1e9;
    let mb = ctx.stats().text_bytes_archived as f64 / 1e6;
    println!(
        "breakdown, the same entries again in batches of {batch}: archive (JSON + zstd level {level} + append) wall {:.0} ms / on-CPU {:.0} ms; summary fold (incl. token counts of changed lines) wall {:.0} ms / on-CPU {:.0} ms; both: {:.0} MB/s wall, {:.0} MB/s on-CPU",
        archive_time.as_secs_f64() * 1e3,
        archive_cpu * 1e3,
        fold_time.as_secs_f64() * 1e3,
        fold_cpu * 1e3,
        mb / (archive_time + fold_time).as_secs_f64(),
        mb / (archive_cpu + fold_cpu)
    );
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn build_bench() -> Result<(), ContextError> {
    let config = ContextConfig {
        max_tokens: 100_000_000,
        ..ContextConfig::default()
    };
    let mut ctx = SessionContext::new("bench", config)?;
    ctx.create_task("root", None, None)?;
    ctx.create_task("a", Some("root"), None)?;
    ctx.create_task("b", Some("root"), None)?;
    let mut rng = Rng(42);
    for i in 0..10_000 {
        let task = ["root", "a", "b"][rng.below(3) as usize];
        if i % 8 == 7 {
            ctx.add_message(
                Role::Assistant,
                format!("step {i}: looked at {}", FILES[i % 8]),
                Some(task),
            )?;
        } else {
            let size = 200 + rng.below(400) as usize;
            ctx.record_exec(exec(&mut rng, i, size).task(task))?;
        }
    }
    println!("## Build (10,000 live entries, {} tokens)", ctx.tokens());
    for task in [None, Some("a")] {
        let mut times = Vec::with_capacity(2_000);
        let mut used = 0;
        for _ in 0..2_000 {
            let t = Instant::now();
            let v = ctx.build(4_000, task)?;
            times.push(t.elapsed());
            used = v.tokens_used;
        }
        times.sort();
        println!(
            "build(4000, {:?}): p50 {:.0} µs, p99 {:.0} µs, tokens used {used}",
            task,
            percentile(&times, 0.5).as_secs_f64() * 1e6,
            percentile(&times, 0.99).as_secs_f64() * 1e6
        );
    }
    Ok(())
}

fn main() -> Result<(), ContextError> {
    let megabytes = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let level = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(ContextConfig::default().zstd_level);
    build_bench()?;
    println!();
    one_shot(megabytes, level)?;
    println!();
    compression(megabytes, level)
}
