//! The JSON a hook receives: one object per event, the same for programs (on standard input)
//! and webhooks (the POST body).
//!
//! `{"event": "command-finished", "id": "…", "at_ms": …, "data": {…}}`: `id` is unique per
//! event and kept across a webhook's retries, so a receiver can drop a repeat.

use ai_session_core::SessionInfo;
use ai_session_core::integration::{CommandFinished, SessionEnd};
use serde_json::{Value, json};

/// The envelope around `data`.
pub(crate) fn envelope(event: &str, data: Value) -> Value {
    let mut id = [0u8; 12];
    // Without randomness the id is still unique enough for a receiver: time and a counter.
    let id = match getrandom::fill(&mut id) {
        Ok(()) => id.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        Err(_) => format!("{:x}-{:x}", now_ms(), next()),
    };
    json!({ "event": event, "id": id, "at_ms": now_ms(), "data": data })
}

fn next() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn session_created(info: &SessionInfo) -> Value {
    serde_json::to_value(info).unwrap_or(Value::Null)
}

pub(crate) fn session_terminated(end: &SessionEnd) -> Value {
    serde_json::to_value(end).unwrap_or(Value::Null)
}

/// A finished command: what it was, how it ended, its parsed output and its compact view's
/// text (never the whole output, which can be megabytes: `output_start`/`output_end` say
/// where to read it).
pub(crate) fn command_finished(c: &CommandFinished) -> Value {
    let r = &c.result;
    json!({
        "session": c.session,
        "command": c.command,
        "started_ms": c.started_ms,
        "status": r.status.as_str(),
        "exit_code": r.exit_code,
        "duration_ms": r.duration_ms,
        "cwd": r.cwd,
        "output_start": r.output_start,
        "output_end": r.output_end,
        "parsed": r.parsed,
        "view": r.compact.as_ref().and_then(|v| v.get("text")).cloned(),
    })
}
