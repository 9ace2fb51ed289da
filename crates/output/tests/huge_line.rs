//! The worst case: a single 100 MB line, with no newline, through parse and the compact view
//! (token counts included), in bounded time and memory. It runs in its own test binary so that the peak
//! resident size it reads belongs to this test alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use ai_session_output::{Handle, Status, compact, parse};

/// Peak resident set size of this process in KiB (`VmHWM`), when the kernel reports it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn hundred_mb_single_line() {
    const SIZE: usize = 100 << 20;
    let line = "x".repeat(SIZE);
    let before = peak_rss_kib();
    let start = Instant::now();
    // One pass, content detection only: in a debug build it takes about 30 s (measured), most of it counting
    // tokens of the raw line.
    let parsed = parse(None, &line);
    assert_eq!(parsed.lines, 1);
    assert_eq!(parsed.bytes, SIZE);
    let view = compact(&parsed, &line, &Handle::log("big", 0, SIZE as u64));
    assert_ne!(view.status, Status::Success);
    assert!(
        view.text.len() < 64 << 10,
        "view of a 100 MB line stays short: {} bytes",
        view.text.len()
    );
    assert!(view.text.ends_with("]\n"));
    assert!(view.raw_tokens > 0 && view.compact_tokens < view.raw_tokens);
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(180),
        "a pass over 100 MB took {elapsed:?}"
    );
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        // Cleaning copies the input once; allow a few copies, never a blow-up per byte.
        let grown_mib = after.saturating_sub(before) / 1024;
        assert!(
            grown_mib < 8 * (SIZE as u64 >> 20),
            "peak memory grew by {grown_mib} MiB for a 100 MiB line"
        );
        eprintln!("100 MiB line: {elapsed:?}, peak memory +{grown_mib} MiB");
    }
}
