//! `session.results` and `session.diagnostics`: a session's finished commands with their
//! parsed output (what `ai-session report` turns into JUnit, SARIF, GitHub annotations and
//! Markdown), and one exec's diagnostics in the shape editors read.

use ai_session_protocol::integration::{
    DiagnosticInfo, DiagnosticsParams, DiagnosticsResult, HistoryEntry, HistoryParams,
    HistoryResult,
};
use ai_session_protocol::{ErrorKind, RpcError};

use crate::server::Daemon;

/// The commands kept for `target` (live, or ended and not yet forgotten).
async fn entries(daemon: &Daemon, target: &str) -> Result<Vec<HistoryEntry>, RpcError> {
    if let Some(entries) = daemon.hooks.history(target).await {
        return Ok(entries);
    }
    if daemon.manager.id_of(target).is_some() {
        // A live session that has run nothing yet.
        return Ok(Vec::new());
    }
    Err(
        RpcError::new(ErrorKind::NotFound, format!("no session '{target}'"))
            .with_hint(format!("sessions: {}", daemon.manager.names().join(", "))),
    )
}

pub(super) async fn history(daemon: &Daemon, p: HistoryParams) -> Result<HistoryResult, RpcError> {
    let mut execs: Vec<HistoryEntry> = entries(daemon, &p.target)
        .await?
        .into_iter()
        .filter(|e| p.since_ms.is_none_or(|t| e.started_ms >= t))
        .filter(|e| p.until_ms.is_none_or(|t| e.started_ms <= t))
        .collect();
    if let Some(limit) = p.limit {
        let skip = execs.len().saturating_sub(limit);
        execs.drain(..skip);
    }
    Ok(HistoryResult {
        target: p.target,
        execs,
    })
}

pub(super) async fn diagnostics(
    daemon: &Daemon,
    p: DiagnosticsParams,
) -> Result<DiagnosticsResult, RpcError> {
    let execs = entries(daemon, &p.target).await?;
    let exec = match p.seq {
        None => execs.last(),
        Some(seq) => execs.iter().find(|e| e.seq == seq),
    };
    let Some(exec) = exec else {
        let msg = match p.seq {
            None => format!("session '{}' has run no command yet", p.target),
            Some(seq) => format!("session '{}' has no exec {seq} kept", p.target),
        };
        return Err(RpcError::new(ErrorKind::NotFound, msg)
            .with_hint("run a command with exec first; session.results lists the seq of each"));
    };
    let diagnostics = exec
        .parsed
        .clone()
        .and_then(|v| serde_json::from_value::<ai_session_output::Parsed>(v).ok())
        .map(|parsed| {
            ai_session_output::diagnostics::collect(&parsed)
                .into_iter()
                .map(|d| DiagnosticInfo {
                    severity: d.severity_name().to_owned(),
                    file: d.file,
                    line: d.line,
                    column: d.column,
                    code: d.code,
                    message: d.message,
                    source: d.source,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(DiagnosticsResult {
        target: p.target,
        seq: exec.seq,
        command: exec.command.clone(),
        exit_code: exec.exit_code,
        diagnostics,
    })
}
