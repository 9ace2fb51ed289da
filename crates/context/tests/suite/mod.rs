mod archive;
mod persist;
mod props;
mod replay;
mod tasks;
mod threshold;
mod trackers;
mod workspace;

use ai_session_context::{ContextConfig, ExecRecord, SessionContext};

/// A context with a small token limit, so compression is easy to reach.
pub fn small(max_tokens: usize, threshold: f64, window: usize) -> SessionContext {
    SessionContext::new(
        "t",
        ContextConfig {
            max_tokens,
            compression_threshold: threshold,
            window_entries: window,
            ..ContextConfig::default()
        },
    )
    .unwrap()
}

/// A run with some output that varies with `i`.
pub fn run(i: usize, code: i32) -> ExecRecord {
    let output: String = (0..(i % 7 + 1))
        .map(|k| {
            format!(
                "line {k} of run {i}: compiled crate_{k} in {}ms\n",
                i * 13 % 997
            )
        })
        .collect();
    ExecRecord::new(format!("make step{}", i % 9), Some(code), "/w/proj")
        .output(output)
        .duration_ms(i as u64 * 7)
        .at_ms(1_000 + i as u64)
}

#[test]
fn a_context_can_live_in_the_daemon_behind_a_lock() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SessionContext>();
    send_sync::<ai_session_context::ContextView>();
}
