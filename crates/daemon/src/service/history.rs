//! `session.history`: a session's saved execs, each with the compact view of its output as
//! `session.exec` answered it, for the dashboard's per-command timeline. The records come from
//! the store (an answered exec is on disk), the output from the session's log by offsets.

use ai_session_core::SessionHandle;
use ai_session_protocol::RpcError;
use ai_session_protocol::methods::ReadParams;
use ai_session_protocol::web::{HistoryExec, HistoryParams, HistoryResult};
use ai_session_store::ExecRecord;

use crate::server::Daemon;

/// Execs answered when the caller names no limit, and the most it may ask for.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 200;

/// The most output analysed per exec for its compact view; `session.read` gives the rest.
const MAX_ANALYSED: u64 = 1 << 20;

pub(super) async fn history(d: &Daemon, p: HistoryParams) -> Result<HistoryResult, RpcError> {
    let handle = super::sessions::session(d, &p.target)?;
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let (records, total) = d.persist.history(handle.id(), &p.target, limit).await?;
    let mut execs = Vec::with_capacity(records.len());
    for r in records {
        execs.push(entry(&handle, &p.target, r).await);
    }
    Ok(HistoryResult { execs, total })
}

/// One record with its output's compact view, when the log still holds the output.
async fn entry(handle: &SessionHandle, target: &str, r: ExecRecord) -> HistoryExec {
    let (compact, dropped) = compact_view(handle, target, &r).await;
    HistoryExec {
        duration_ms: r.duration_ms(),
        command: r.command,
        exit_code: r.exit_code,
        cwd: r.cwd,
        started_ms: r.started_ms,
        output_start: r.output_start,
        output_end: r.output_end,
        compact,
        dropped,
    }
}

async fn compact_view(
    handle: &SessionHandle,
    target: &str,
    r: &ExecRecord,
) -> (Option<serde_json::Value>, u64) {
    let len = r.output_end.saturating_sub(r.output_start);
    let read = handle
        .read(ReadParams {
            target: target.to_owned(),
            since: Some(r.output_start),
            max_bytes: Some(usize::try_from(len.min(MAX_ANALYSED)).unwrap_or(usize::MAX)),
            raw: false,
            encoding: Default::default(),
        })
        .await;
    let Ok(read) = read else {
        return (None, len);
    };
    let dropped = read.start.saturating_sub(r.output_start).min(len);
    if dropped == len && len > 0 {
        return (None, dropped);
    }
    let (session, command) = (target.to_owned(), r.command.clone());
    let (start, end) = (r.output_start, r.output_end);
    let view = tokio::task::spawn_blocking(move || {
        let handle = ai_session_output::Handle::log(&session, start, end);
        let opts = ai_session_output::ViewOptions::with_budget(None);
        let (_, view) = ai_session_output::analyze(Some(&command), &read.data, &handle, &opts);
        serde_json::to_value(view).ok()
    })
    .await
    .ok()
    .flatten();
    (view, dropped)
}
