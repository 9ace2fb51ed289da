//! The exec journal of a clustered daemon (`ai_session_cluster` `journal`): each answered
//! exec's history record is in JetStream before the client hears of it, so an exec answered
//! just before its node dies is still in the restored session's history.

use ai_session_cluster::Cluster;
use ai_session_store::ExecRecord;

use crate::service::{Event, Reaction};

/// When clustered, an exec's answer waits for its record to be in the journal. The record
/// is published only once the reactions before it (the store's own record) are acknowledged:
/// a checkpoint that sees a journal record therefore also sees the store's. A session killed
/// on purpose loses its records.
pub(crate) fn observe(cluster: &Cluster, event: &Event<'_>) -> Option<Reaction> {
    if let Event::SessionKilled { id: Some(id), .. } = event {
        // Killed on purpose, it will not be restored: its records go with it.
        let (cluster, id) = (cluster.clone(), (*id).to_owned());
        return Some(Reaction::ack(async move {
            if let Err(e) = cluster.journal_forget(&id).await {
                tracing::warn!(session = %id, "exec journal not dropped: {e}");
            }
        }));
    }
    let Event::ExecFinished {
        session_id,
        command,
        started_ms,
        result,
        ..
    } = event
    else {
        return None;
    };
    let record = ExecRecord {
        command: (*command).to_owned(),
        exit_code: result.exit_code,
        cwd: result.cwd.clone().unwrap_or_default(),
        started_ms: *started_ms,
        ended_ms: ai_session_cluster::now_ms(),
        output_start: result.output_start,
        output_end: result.output_end,
    };
    let bytes = match serde_json::to_vec(&record) {
        Ok(b) => b,
        Err(e) => return Some(Reaction::warning(Some(format!("exec record: {e}")))),
    };
    let (cluster, id) = (cluster.clone(), (*session_id).to_owned());
    Some(Reaction {
        ack: Some(Box::pin(async move {
            cluster.journal_exec(&id, bytes).await.err().map(|e| {
                tracing::error!(session = %id, "exec not journaled: {e}");
                format!("the exec is not in the cluster's journal: {e}")
            })
        })),
        warning: None,
    })
}

/// The journaled records of session `id` (from the cluster's journal) that `history` does
/// not hold yet, oldest first: what happened after its checkpoint.
pub(crate) fn missing(journal: &[bytes::Bytes], history: &[ExecRecord]) -> Vec<ExecRecord> {
    let mut out: Vec<ExecRecord> = Vec::new();
    for bytes in journal {
        let record: ExecRecord = match serde_json::from_slice(bytes) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("unreadable journaled exec skipped: {e}");
                continue;
            }
        };
        let same = |r: &ExecRecord| {
            r.started_ms == record.started_ms
                && r.output_start == record.output_start
                && r.command == record.command
        };
        if !history.iter().any(same) && !out.iter().any(same) {
            out.push(record);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(command: &str, started_ms: u64) -> ExecRecord {
        ExecRecord {
            command: command.into(),
            exit_code: Some(0),
            cwd: "/".into(),
            started_ms,
            ended_ms: started_ms + 1,
            output_start: started_ms,
            output_end: started_ms + 1,
        }
    }

    #[test]
    fn only_records_the_checkpoint_lacks_are_replayed_once_in_order() {
        let journal: Vec<bytes::Bytes> = [record("a", 1), record("b", 2), record("c", 3)]
            .iter()
            .chain([record("c", 3)].iter())
            .map(|r| serde_json::to_vec(r).unwrap().into())
            .chain([bytes::Bytes::from_static(b"not json")])
            .collect();
        let missing = missing(&journal, &[record("a", 1)]);
        assert_eq!(missing, vec![record("b", 2), record("c", 3)]);
    }
}
