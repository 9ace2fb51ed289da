//! `audit.list`, `audit.verify` and `audit.open`: the audit log read back for the dashboard,
//! through the sandbox crate's verified reader (a damaged log answers no entries: an answer
//! from a tampered log would mislead). They read files, so they run on the blocking pool.

use ai_session_protocol::web::{
    AuditEntry, AuditListParams, AuditListResult, AuditOpenParams, AuditOpenResult,
    AuditVerifyResult,
};
use ai_session_protocol::{ErrorKind, RpcError};
use ai_session_sandbox::audit::{self, Actor, Entry, Query};

use crate::server::Daemon;

const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 5000;

pub(super) async fn list(d: &Daemon, p: AuditListParams) -> Result<AuditListResult, RpcError> {
    let path = d.paths.audit_log();
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let query = Query {
        since: None,
        min_risk: p.min_risk.unwrap_or(0),
        session: p.session,
    };
    let entries = blocking(move || audit::query(&path, &query)).await?;
    let mut entries: Vec<AuditEntry> = entries
        .into_iter()
        .map(to_wire)
        .filter(|e| p.principal.as_ref().is_none_or(|who| &e.principal == who))
        .collect();
    let matched = entries.len();
    entries.drain(..matched.saturating_sub(limit));
    Ok(AuditListResult { entries, matched })
}

/// `audit.open`: entry `seq`'s detail in clear. The registry records the call itself (who
/// opened which entry) in the log before the answer goes out.
pub(super) async fn open(d: &Daemon, p: AuditOpenParams) -> Result<AuditOpenResult, RpcError> {
    let path = d.paths.audit_log();
    let query = Query {
        since: None,
        min_risk: 0,
        session: None,
    };
    let entries = blocking(move || audit::query(&path, &query)).await?;
    let Some(entry) = entries.into_iter().find(|e| e.seq == p.seq) else {
        return Err(
            RpcError::new(ErrorKind::NotFound, format!("no audit entry #{}", p.seq))
                .with_hint("pick a seq that `GET /v1/audit` (audit.list) lists"),
        );
    };
    if !audit::secret::is_sealed(&entry.detail) {
        return Ok(AuditOpenResult {
            seq: p.seq,
            detail: entry.detail,
            sealed: false,
        });
    }
    match d.access.open_audit_detail(p.seq, &entry.detail) {
        Some(Some(detail)) => Ok(AuditOpenResult {
            seq: p.seq,
            detail,
            sealed: true,
        }),
        Some(None) => Err(RpcError::new(
            ErrorKind::Unsupported,
            format!("audit entry #{}'s detail does not open with this daemon's passphrase", p.seq),
        )
        .with_hint("it was sealed under another passphrase: `ai-session audit ls` with that one in AI_SESSION_PASSPHRASE opens it")),
        None => Err(RpcError::new(
            ErrorKind::Unsupported,
            "this daemon runs without the store passphrase, so it cannot open sealed details",
        )
        .with_hint("run `ai-session audit ls` with AI_SESSION_PASSPHRASE set, or start the daemon with it")),
    }
}

pub(super) async fn verify(d: &Daemon) -> Result<AuditVerifyResult, RpcError> {
    let path = d.paths.audit_log();
    let report = tokio::task::spawn_blocking(move || audit::verify(&path))
        .await
        .map_err(|e| RpcError::new(ErrorKind::Internal, format!("audit check failed: {e}")))?;
    Ok(match report {
        Ok(r) => AuditVerifyResult {
            intact: true,
            error: None,
            entries: r.entries,
            head_seq: r.head_seq,
            files: r.files,
            breaks: r.breaks.into_iter().map(to_wire).collect(),
        },
        Err(e) => AuditVerifyResult {
            intact: false,
            error: Some(e.to_string()),
            entries: 0,
            head_seq: 0,
            files: 0,
            breaks: Vec::new(),
        },
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, audit::AuditError> + Send + 'static,
) -> Result<T, RpcError> {
    let damaged = |e: String| {
        RpcError::new(ErrorKind::AuditUnavailable, format!("the audit log cannot be read: {e}"))
            .with_hint("`ai-session audit verify` says what is wrong; `ai-session audit repair` starts a new segment")
    };
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| damaged(e.to_string()))?
        .map_err(|e| damaged(e.to_string()))
}

/// The principal's name as `audit.list` filters by it.
fn principal(actor: &Actor) -> String {
    match actor {
        Actor::Owner => "owner".into(),
        Actor::HttpToken(_) => "http".into(),
        Actor::Agent(id) => format!("agent:{id}"),
        Actor::Token(id) => format!("token:{id}"),
        Actor::Anonymous => "anonymous".into(),
        Actor::Daemon => "daemon".into(),
    }
}

fn to_wire(e: Entry) -> AuditEntry {
    let sealed = audit::secret::is_sealed(&e.detail);
    let detail = if sealed {
        "[sealed under the store passphrase: `audit.open` (the dashboard's \"open\") or `ai-session audit ls` opens it]".to_owned()
    } else {
        e.detail
    };
    AuditEntry {
        principal: principal(&e.actor),
        seq: e.seq,
        time: e.time,
        session: e.session,
        action: e.action,
        detail,
        result: e.result,
        risk: e.risk,
        sealed,
    }
}
