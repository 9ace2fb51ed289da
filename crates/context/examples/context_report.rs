//! Replays the recorded agent session and prints, per budget, the tokens a context view uses
//! and the share of the session's key facts it keeps.
//!
//! `cargo run --release -p ai-session-context --example context_report [-- --show BUDGET]`

#[path = "../tests/common/fixture.rs"]
mod fixture;

use std::time::Instant;

use ai_session_context::{ContextConfig, ContextError, Encoding};

fn main() -> Result<(), ContextError> {
    let show: Option<usize> = std::env::args()
        .skip_while(|a| a != "--show")
        .nth(1)
        .and_then(|b| b.parse().ok());
    let config = ContextConfig {
        max_tokens: 16_000,
        ..ContextConfig::default()
    };
    let facts = fixture::facts();
    let t = Instant::now();
    let ctx = fixture::replay(config.clone())?;
    let replay = t.elapsed();
    let s = ctx.stats();
    println!(
        "fixture: {} execs, {} messages; replayed in {:.0} ms (parse + compact + add)",
        facts.execs,
        facts.messages,
        replay.as_secs_f64() * 1e3
    );
    println!(
        "config: max_tokens {}, threshold {} ({} tokens), window {} entries",
        config.max_tokens,
        config.compression_threshold,
        config.threshold_tokens(),
        config.window_entries
    );
    println!(
        "history: {} entries, {} live ({} tokens) + summary {} lines ({} tokens), {} archived in {} frames ({} bytes zstd), {} compressions",
        s.entries_added,
        ctx.live().count(),
        ctx.tokens() - ctx.summary().tokens(),
        ctx.summary().lines.len(),
        ctx.summary().tokens(),
        ctx.archive().len(),
        ctx.archive().frames().len(),
        ctx.archive().bytes().len(),
        s.compressions
    );
    println!();
    println!("| budget | task | tokens used | real count | must-keep facts | all facts | build |");
    println!("|---|---|---|---|---|---|---|");
    for task in [None, Some("t-py")] {
        for budget in [1_000usize, 4_000, 16_000] {
            let t = Instant::now();
            let view = ctx.build(budget, task)?;
            let took = t.elapsed();
            let real = ai_session_output::count_tokens(&view.text, Encoding::O200kBase);
            let kept = fixture::kept(&facts, &view.text);
            let must: Vec<_> = kept.iter().filter(|(f, _)| f.must).collect();
            let must_kept = must.iter().filter(|(_, k)| *k).count();
            let all_kept = kept.iter().filter(|(_, k)| *k).count();
            println!(
                "| {budget} | {} | {} | {real} | {must_kept}/{} | {all_kept}/{} ({:.0}%) | {:.0} µs |",
                task.unwrap_or("-"),
                view.tokens_used,
                must.len(),
                kept.len(),
                100.0 * all_kept as f64 / kept.len().max(1) as f64,
                took.as_secs_f64() * 1e6
            );
            let missing: Vec<&str> = kept
                .iter()
                .filter(|(_, k)| !k)
                .map(|(f, _)| f.id.as_str())
                .collect();
            if !missing.is_empty() {
                println!("|  | missing: {} | | | | | |", missing.join(", "));
            }
            if show == Some(budget) && task.is_none() {
                eprintln!("----- view at {budget} tokens -----\n{}", view.text);
            }
        }
    }
    Ok(())
}
