//! The audit log in segments: rotation at a size, `verify` following the chain across files,
//! and the attacks on whole files it must catch (a middle segment deleted, the last one
//! truncated, two swapped, one extended, the oldest deleted), and retention that is recorded.

use std::path::{Path, PathBuf};

use ai_session_sandbox::audit::{self, Actor, AuditError, AuditLog, Record, VerifyError, segment};

use super::common::TempDir;

fn record(n: usize) -> Record {
    Record::new(
        Actor::Owner,
        "session.exec",
        format!("command number {n} with some text to fill the segment quickly"),
        "ok",
    )
}

/// A log that rotated several times: segments of about `bytes` each, `entries` entries.
fn rotated(name: &str, entries: usize, bytes: u64) -> (TempDir, PathBuf, AuditLog) {
    let tmp = TempDir::new(name);
    let path = tmp.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path).unwrap();
    log.set_max_segment(bytes);
    for n in 0..entries {
        log.append_unsynced(record(n)).unwrap();
    }
    log.sync().unwrap();
    (tmp, path, log)
}

fn sealed(path: &Path) -> Vec<PathBuf> {
    segment::sealed_segments(path)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

fn damage(path: &Path) -> VerifyError {
    match audit::verify(path) {
        Err(AuditError::Damaged { error, .. }) => error,
        other => panic!("tampering not detected: {other:?}"),
    }
}

#[test]
fn the_log_rotates_at_its_size_and_verify_follows_the_chain_across_files() {
    let (_tmp, path, log) = rotated("seg-rotate", 200, 4096);
    let segs = sealed(&path);
    assert!(segs.len() >= 4, "{segs:?}");
    for s in &segs {
        // Each sealed file stops at the first append past the bound.
        assert!(std::fs::metadata(s).unwrap().len() < 4096 + 1024, "{s:?}");
    }
    let report = audit::verify(&path).unwrap();
    // Every entry, plus one rotation entry per sealed segment, across every file.
    assert_eq!(report.entries, 200 + segs.len());
    assert_eq!(report.files, segs.len() + 1);
    assert_eq!(report.first_seq, 1);
    assert_eq!(log.last_seq() as usize, 200 + segs.len());
    // The live file starts with the rotation entry chained to the last sealed entry.
    let first_live = std::fs::read_to_string(&path).unwrap();
    let first_live: audit::Entry =
        serde_json::from_str(first_live.lines().next().unwrap()).unwrap();
    assert_eq!(first_live.action, "audit.rotate");
    let last_sealed = std::fs::read_to_string(segs.last().unwrap()).unwrap();
    let last_sealed: audit::Entry =
        serde_json::from_str(last_sealed.lines().last().unwrap()).unwrap();
    assert_eq!(first_live.prev_hash, last_sealed.hash);
    assert_eq!(first_live.seq, last_sealed.seq + 1);
    // A query reads across every file.
    let all = audit::query(&path, &audit::Query::default()).unwrap();
    assert_eq!(all.len(), report.entries);
}

#[test]
fn a_deleted_middle_segment_is_reported() {
    let (_tmp, path, _log) = rotated("seg-delete-mid", 200, 4096);
    let segs = sealed(&path);
    std::fs::remove_file(&segs[1]).unwrap();
    let err = damage(&path);
    assert!(matches!(err, VerifyError::SegmentMissing { .. }), "{err}");
    let name = segs[1].file_name().unwrap().to_string_lossy().into_owned();
    assert!(err.to_string().contains("missing"), "{err}");
    // The rotation after the gap names what was lost, or the gap is named by its range.
    let seq: u64 = name[6..18].parse().unwrap();
    assert!(
        err.to_string().contains(&format!("#{seq}")),
        "{err} / {name}"
    );
}

#[test]
fn a_truncated_segment_is_reported_whether_sealed_or_live() {
    let (_tmp, path, _log) = rotated("seg-truncate", 200, 4096);
    let segs = sealed(&path);
    // The last sealed segment loses its last entry (cut at a line boundary: a clean cut).
    let last = segs.last().unwrap();
    let text = std::fs::read_to_string(last).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    std::fs::write(
        last,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let err = damage(&path);
    assert!(matches!(err, VerifyError::SegmentAltered { .. }), "{err}");
    std::fs::write(last, &text).unwrap();
    audit::verify(&path).unwrap();
    // The live file loses its tail: the signed head says where it ended.
    let live = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = live.lines().collect();
    lines.pop();
    std::fs::write(
        &path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let err = damage(&path);
    assert!(matches!(err, VerifyError::TruncatedEnd { .. }), "{err}");
}

#[test]
fn two_swapped_segments_are_reported() {
    let (_tmp, path, _log) = rotated("seg-swap", 200, 4096);
    let segs = sealed(&path);
    let (a, b) = (&segs[1], &segs[2]);
    let tmp = a.with_extension("swap");
    std::fs::rename(a, &tmp).unwrap();
    std::fs::rename(b, a).unwrap();
    std::fs::rename(&tmp, b).unwrap();
    let err = damage(&path);
    assert!(matches!(err, VerifyError::SegmentMisplaced { .. }), "{err}");
}

#[test]
fn an_extended_or_replaced_segment_is_reported() {
    let (_tmp, path, _log) = rotated("seg-extend", 200, 4096);
    let segs = sealed(&path);
    // A copy of the segment's own first line appended: every line still verifies on its own.
    let text = std::fs::read_to_string(&segs[0]).unwrap();
    let first = text.lines().next().unwrap().to_owned();
    std::fs::write(&segs[0], format!("{text}{first}\n")).unwrap();
    assert!(audit::verify(&path).is_err());
    std::fs::write(&segs[0], &text).unwrap();
    audit::verify(&path).unwrap();
    // The oldest segment deleted, with nothing recording it: the log no longer starts at #1.
    std::fs::remove_file(&segs[0]).unwrap();
    let err = damage(&path);
    assert!(matches!(err, VerifyError::SegmentMissing { .. }), "{err}");
}

#[test]
fn retention_removes_old_segments_and_records_it() {
    let tmp = TempDir::new("seg-keep");
    let path = tmp.path().join("audit.jsonl");
    let mut log = AuditLog::open(&path).unwrap();
    log.set_max_segment(4096);
    log.set_keep_segments(Some(2));
    for n in 0..300 {
        log.append_unsynced(record(n)).unwrap();
    }
    log.sync().unwrap();
    let segs = sealed(&path);
    assert_eq!(segs.len(), 2, "{segs:?}");
    let report = audit::verify(&path).unwrap();
    let starts: u64 = segs[0].file_name().unwrap().to_string_lossy()[6..18]
        .parse()
        .unwrap();
    assert_eq!(report.pruned_before, Some(starts));
    assert_eq!(report.first_seq, starts);
    let prunes = audit::query(&path, &audit::Query::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "audit.prune")
        .count();
    assert!(prunes >= 1);
    // Deleting a kept segment is still caught: the prune entry vouches only for what it says.
    std::fs::remove_file(&segs[0]).unwrap();
    let err = damage(&path);
    assert!(matches!(err, VerifyError::SegmentMissing { .. }), "{err}");
}

#[test]
fn a_rotation_killed_half_way_is_finished_at_the_next_open() {
    let (_tmp, path, log) = rotated("seg-crash", 50, 1 << 20);
    let last = log.last_seq();
    drop(log);
    // The state a kill between the rename and the new file's first entry leaves.
    let sealed_path = path.with_file_name("audit.000000000001.jsonl");
    std::fs::rename(&path, &sealed_path).unwrap();
    let mut log = AuditLog::open(&path).unwrap();
    assert_eq!(log.last_seq(), last + 1, "the rotation entry was written");
    log.append(record(99)).unwrap();
    let report = audit::verify(&path).unwrap();
    assert_eq!(report.entries as u64, last + 2);
    assert_eq!(report.files, 2);
    // And with an empty new file already created.
    drop(log);
    let seq = report.entries as u64 - 1;
    let next = path.with_file_name(format!("audit.{:012}.jsonl", last + 1));
    std::fs::rename(&path, &next).unwrap();
    std::fs::write(&path, b"").unwrap();
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.last_seq(), seq + 2);
    audit::verify(&path).unwrap();
}

#[test]
fn repair_seals_the_verified_prefix_and_the_chain_runs_through_it() {
    let (_tmp, path, log) = rotated("seg-repair", 60, 1 << 20);
    drop(log);
    // An edited line in the middle of the live file.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[30] = lines[30].replace("command number", "COMMAND NUMBER");
    std::fs::write(
        &path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    assert!(AuditLog::open(&path).is_err());
    let repaired = AuditLog::repair(&path, Actor::Owner, "test").unwrap();
    assert!(
        repaired.entry.detail.contains("sealed as"),
        "{}",
        repaired.entry.detail
    );
    let report = audit::verify(&path).unwrap();
    // 30 verified entries sealed, then the repair entry (a recorded break).
    assert_eq!(report.files, 2);
    assert_eq!(report.entries, 31);
    assert_eq!(report.breaks.len(), 1);
    assert_eq!(sealed(&path).len(), 1);
}
