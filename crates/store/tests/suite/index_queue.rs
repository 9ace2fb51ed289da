//! Exec rows queue for the index: an answer waits for the history only. Readers see every
//! row at once, and a process killed with rows queued loses none of them from the index.

use super::common::*;

fn marker(root: &std::path::Path) -> std::path::PathBuf {
    root.join("metadata").join("index.pending")
}

#[test]
fn queued_rows_are_in_the_index_for_any_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let state = store.create_session(config("q")).unwrap();
    for n in 0..3 {
        store.append_exec(&state.id, &exec(n)).unwrap();
    }
    assert!(marker(tmp.path()).exists(), "rows are queued");
    assert_eq!(store.exec_stats(Some(&state.id)).unwrap().count, 3);
    // More than a queue's worth goes in without a reader.
    for n in 3..600 {
        store.append_exec(&state.id, &exec(n)).unwrap();
    }
    store.sync().unwrap();
    assert_eq!(store.exec_stats(None).unwrap().count, 600);
    store.sync_final().unwrap();
    assert!(
        !marker(tmp.path()).exists(),
        "every row is in, and none follows"
    );
}

/// An exec a few seconds after the last, past the periodic sync that drained the queue, writes
/// no marker on its answer's path: the one written for the first is still there, the same file.
#[test]
fn an_exec_soon_after_a_sync_writes_no_marker() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let state = store.create_session(config("s")).unwrap();
    store.append_exec(&state.id, &exec(0)).unwrap();
    let first = std::fs::metadata(marker(tmp.path())).unwrap().ino();
    store.sync().unwrap();
    assert!(
        marker(tmp.path()).exists(),
        "the marker stays after a sync for the execs that follow"
    );
    store.append_exec(&state.id, &exec(1)).unwrap();
    assert_eq!(std::fs::metadata(marker(tmp.path())).unwrap().ino(), first);
    assert_eq!(store.exec_stats(None).unwrap().count, 2);
    store.sync_final().unwrap();
    assert!(!marker(tmp.path()).exists());
    drop(store);
    let store = open(tmp.path());
    assert_eq!(store.exec_stats(None).unwrap().count, 2);
}

#[test]
fn a_kill_with_rows_queued_loses_none_of_them() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let state = store.create_session(config("k")).unwrap();
    store.append_exec(&state.id, &exec(0)).unwrap();
    store.sync().unwrap();
    for n in 1..5 {
        store.append_exec(&state.id, &exec(n)).unwrap();
    }
    // What a SIGKILL does: no destructor runs, nothing is written after this point.
    std::mem::forget(store);
    assert!(marker(tmp.path()).exists());

    let store = open(tmp.path());
    assert_eq!(store.exec_stats(Some(&state.id)).unwrap().count, 5);
    assert!(!marker(tmp.path()).exists());
    drop(store);
    // The marker is gone: the next open does not rebuild again, and the rows stay.
    let store = open(tmp.path());
    assert_eq!(store.exec_stats(None).unwrap().count, 5);
}

#[test]
fn a_link_in_the_markers_place_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let state = store.create_session(config("l")).unwrap();
    store.sync().unwrap();
    let target = tmp.path().join("elsewhere");
    std::fs::write(&target, b"keep").unwrap();
    std::os::unix::fs::symlink(&target, marker(tmp.path())).unwrap();
    // The history append succeeds; the marker's refusal is counted, the rows still go in.
    store.append_exec(&state.id, &exec(0)).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    assert_eq!(store.exec_stats(None).unwrap().count, 1);
}
