//! The tokenizer choice, measured: `bpe-openai` (what the crate uses) against `tiktoken-rs` on
//! the fixture corpus (are the counts equal?) and on a 50 MB generated log (speed), with the cost
//! of each one's first use (loading its vocabulary).
//!
//! Run: `cargo run --release -p ai-session-output --example tokenizers [-- MB]`

use std::path::Path;
use std::time::Instant;

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn log(target: usize) -> String {
    let mut s = String::with_capacity(target + 256);
    let mut i = 0u64;
    while s.len() < target {
        i += 1;
        let level = if i % 400 == 0 { "WARN" } else { "INFO" };
        s.push_str(&format!(
            "2026-11-30 10:{:02}:{:02},{:03} {level} [worker-{}] processed job {i} in {} ms\n",
            (i / 60) % 60,
            i % 60,
            i % 1000,
            i % 8,
            i % 97
        ));
    }
    s
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    // First use: each loads its vocabulary.
    let (r0, t) = (rss_kb(), Instant::now());
    let bpe = bpe_openai::o200k_base();
    let n = bpe.count("hello world");
    let bpe_load = (t.elapsed().as_secs_f64() * 1000.0, rss_kb() - r0, n);
    let (r0, t) = (rss_kb(), Instant::now());
    let tik = tiktoken_rs::o200k_base()?;
    let n = tik.encode_ordinary("hello world").len();
    let tik_load = (t.elapsed().as_secs_f64() * 1000.0, rss_kb() - r0, n);
    println!(
        "first use (o200k_base): bpe-openai {:.1} ms +{} KB; tiktoken-rs {:.1} ms +{} KB",
        bpe_load.0, bpe_load.1, tik_load.0, tik_load.1
    );
    // Counts on the fixtures.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let (mut files, mut equal, mut a_total, mut b_total) = (0, 0, 0usize, 0usize);
    let mut names: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    names.sort();
    for p in names {
        let text = String::from_utf8_lossy(&std::fs::read(&p)?).into_owned();
        let a = bpe.count(text.as_str());
        let b = tik.encode_ordinary(&text).len();
        files += 1;
        equal += usize::from(a == b);
        a_total += a;
        b_total += b;
        if a != b {
            println!("  differs: {} bpe-openai {a} tiktoken-rs {b}", p.display());
        }
    }
    println!(
        "fixtures: {equal}/{files} equal counts; totals bpe-openai {a_total}, tiktoken-rs {b_total}"
    );
    // Speed on a large log, whole text at once.
    let text = log(mb * 1_000_000);
    let t = Instant::now();
    let a = bpe.count(text.as_str());
    let a_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let b = tik.encode_ordinary(&text).len();
    let b_s = t.elapsed().as_secs_f64();
    let mbf = text.len() as f64 / 1e6;
    println!(
        "{mbf:.0} MB log: bpe-openai {a} tokens in {a_s:.2} s ({:.1} MB/s); tiktoken-rs {b} tokens in {b_s:.2} s ({:.1} MB/s)",
        mbf / a_s,
        mbf / b_s
    );
    let est = ai_session_output::estimate_tokens(&text, ai_session_output::Encoding::O200kBase);
    println!(
        "sampled estimate: {} tokens ({:+.2}% of exact)",
        est.tokens,
        100.0 * (est.tokens as f64 - a as f64) / a as f64
    );
    Ok(())
}
