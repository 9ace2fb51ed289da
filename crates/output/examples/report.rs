//! Prints, for every fixture of the corpus, raw and compact token counts, the savings, and how many of
//! its key facts the compact view keeps; then the totals.
//!
//! Run: `cargo run -p ai-session-output --example report [--release] [-- --cl100k] [-- --show NAME]`

use std::path::Path;

use ai_session_output::{Encoding, Handle, ViewOptions, compact_with, parse};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let encoding = if args.iter().any(|a| a == "--cl100k") {
        Encoding::Cl100kBase
    } else {
        Encoding::O200kBase
    };
    let show = args
        .iter()
        .position(|a| a == "--show")
        .and_then(|i| args.get(i + 1));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".json"))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    println!("encoding: {encoding:?}");
    println!(
        "{:<24} {:<12} {:>8} {:>8} {:>7} {:>7}",
        "fixture", "format", "raw", "compact", "saved", "facts"
    );
    let (mut raw_total, mut compact_total, mut facts_total, mut kept_total) = (0, 0, 0, 0);
    for name in &names {
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json")))?)?;
        let raw =
            String::from_utf8_lossy(&std::fs::read(dir.join(format!("{name}.txt")))?).into_owned();
        let command = meta["command"].as_str();
        let parsed = parse(command, &raw);
        let view = compact_with(
            &parsed,
            &raw,
            &Handle::log(name, 0, raw.len() as u64),
            &ViewOptions {
                encoding,
                ..ViewOptions::default()
            },
        );
        let facts: Vec<&str> = meta["facts"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f.as_str()).collect())
            .unwrap_or_default();
        let has = |f: &str| view.text.contains(f) || view.text.contains(&normalise_fact(f));
        let kept = facts.iter().filter(|f| has(f)).count();
        let missing: Vec<&&str> = facts.iter().filter(|f| !has(f)).collect();
        let saved = 100.0 * (1.0 - view.compact_tokens as f64 / view.raw_tokens.max(1) as f64);
        let format = serde_json::to_value(parsed.format)?;
        println!(
            "{:<24} {:<12} {:>8} {:>8} {:>6.1}% {:>3}/{:<3}{}",
            name,
            format.as_str().unwrap_or("?"),
            view.raw_tokens,
            view.compact_tokens,
            saved,
            kept,
            facts.len(),
            if missing.is_empty() {
                String::new()
            } else {
                format!(" MISSING {missing:?}")
            }
        );
        if show.is_some_and(|s| s == name || s == "all") {
            println!("{}", view.text);
        }
        raw_total += view.raw_tokens;
        compact_total += view.compact_tokens;
        facts_total += facts.len();
        kept_total += kept;
    }
    let saved = 100.0 * (1.0 - compact_total as f64 / raw_total.max(1) as f64);
    println!(
        "{:<24} {:<12} {:>8} {:>8} {:>6.1}% {:>3}/{:<3}",
        "TOTAL", "", raw_total, compact_total, saved, kept_total, facts_total
    );
    Ok(())
}

/// A `file(l,c)` location (tsc) or `file l:c` (webpack) is the same fact as `file:l:c`, as in the
/// fixture tests.
fn normalise_fact(fact: &str) -> String {
    let tsc = fact
        .strip_suffix(')')
        .and_then(|f| f.rsplit_once('('))
        .and_then(|(file, lc)| lc.split_once(',').map(|(l, c)| format!("{file}:{l}:{c}")));
    if let Some(t) = tsc {
        return t;
    }
    match fact.rsplit_once(' ') {
        Some((file, lc))
            if lc.contains(':') && lc.bytes().all(|b| b.is_ascii_digit() || b == b':') =>
        {
            format!("{file}:{lc}")
        }
        _ => fact.to_string(),
    }
}
