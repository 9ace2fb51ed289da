use ai_session_store::{Error, SessionStatus, Store};

use super::common::*;

#[test]
fn session_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let state = store.create_session(config("build")).unwrap();
    assert_eq!(state.status, SessionStatus::Live);
    for n in 0..50 {
        store.append_exec(&state.id, &exec(n)).unwrap();
    }
    store
        .append_execs(&state.id, &[exec(50), exec(51)])
        .unwrap();
    store.save_scrollback(&state.id, &scrollback(500)).unwrap();
    store
        .save_context(&state.id, b"opaque context bytes")
        .unwrap();
    drop(store);

    let store = open(tmp.path());
    let history = store.load_history(&state.id).unwrap();
    assert_eq!(history, (0..52).map(exec).collect::<Vec<_>>());
    assert_eq!(
        store.load_scrollback(&state.id).unwrap().unwrap(),
        scrollback(500)
    );
    assert_eq!(
        store.load_context(&state.id).unwrap().unwrap(),
        b"opaque context bytes"
    );
    let all = store.load_all_sessions().unwrap();
    assert_eq!(all.len(), 1);
    let record = all[0].1.as_ref().unwrap();
    assert_eq!(record.state, state);
    assert_eq!(record.execs, 52);
    assert_eq!(record.last_exec, Some(exec(51)));
    assert_eq!(record.cwd(), exec(51).cwd);
    assert!(record.has_scrollback && record.has_context);
    assert_eq!(
        store.find_sessions("build").unwrap(),
        vec![state.id.clone()]
    );

    let exited = store
        .set_status(&state.id, SessionStatus::Exited, Some(3))
        .unwrap();
    assert_eq!(store.load_state(&state.id).unwrap(), exited);

    let stats = store.exec_stats(Some(&state.id)).unwrap();
    assert_eq!(stats.count, 52);
    assert_eq!(stats.failed, (0..52).filter(|n| n % 3 != 0).count() as u64);
    let slow = store.slowest_execs(None, 1).unwrap();
    assert_eq!(slow[0].duration_ms, 510);
    assert_eq!(slow[0].command.as_deref(), Some(exec(51).command.as_str()));

    store.delete_session(&state.id).unwrap();
    assert!(store.load_all_sessions().unwrap().is_empty());
    assert!(matches!(
        store.load_state(&state.id),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn snapshots_create_list_load_restore_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let a = store.create_session(config("a")).unwrap();
    let b = store.create_session(config("b")).unwrap();
    for n in 0..10 {
        store.append_exec(&a.id, &exec(n)).unwrap();
    }
    store.save_scrollback(&a.id, &scrollback(100)).unwrap();
    store.save_context(&a.id, &[7u8; 1000]).unwrap();
    let s1 = store.snapshot(&a.id, Some("before")).unwrap();
    store.append_exec(&a.id, &exec(10)).unwrap();
    let s2 = store.snapshot(&a.id, None).unwrap();
    let s3 = store.snapshot(&b.id, None).unwrap();
    assert_eq!(s1.execs, 10);
    assert_eq!(s2.execs, 11);

    assert_eq!(store.list_snapshots(None).unwrap().len(), 3);
    let of_a = store.list_snapshots(Some(&a.id)).unwrap();
    assert_eq!(of_a, vec![s1.clone(), s2.clone()]);
    assert_eq!(of_a[0].label.as_deref(), Some("before"));

    let loaded = store.load_snapshot(&s1.id).unwrap();
    assert_eq!(loaded.history, (0..10).map(exec).collect::<Vec<_>>());
    assert_eq!(loaded.scrollback, Some(scrollback(100)));
    assert_eq!(loaded.context, Some(vec![7u8; 1000]));
    assert_eq!(loaded.state, a);
    // A unique prefix works; the random tail makes the whole id unique.
    let prefix = &s3.id[..s3.id.len() - 1];
    assert_eq!(store.load_snapshot(prefix).unwrap().meta.id, s3.id);
    // A prefix common to all is ambiguous.
    assert!(matches!(
        store.load_snapshot("0"),
        Err(Error::Ambiguous { .. })
    ));
    assert!(matches!(
        store.load_snapshot("ffff"),
        Err(Error::NotFound { .. })
    ));

    // Snapshots outlive their session.
    store.delete_session(&a.id).unwrap();
    let restored = store.restore(&s1.id, Some("a2")).unwrap();
    assert_eq!(restored.state.config.name, "a2");
    assert_eq!(restored.state.status, SessionStatus::Restored);
    assert_eq!(
        restored.state.restored_from.as_deref(),
        Some(s1.id.as_str())
    );
    assert_eq!(restored.state.cwd, exec(9).cwd);
    let id = restored.state.id.clone();
    assert_eq!(store.load_history(&id).unwrap(), loaded.history);
    assert_eq!(store.load_scrollback(&id).unwrap(), Some(scrollback(100)));

    store.delete_snapshot(&s2.id).unwrap();
    assert_eq!(store.list_snapshots(Some(&a.id)).unwrap(), vec![s1.clone()]);
    assert!(matches!(
        store.load_snapshot(&s2.id),
        Err(Error::NotFound { .. })
    ));

    // The index is derived: lose it and it comes back from the files.
    drop(store);
    std::fs::remove_file(tmp.path().join("metadata/index.db")).unwrap();
    let store = open(tmp.path());
    assert_eq!(store.list_snapshots(None).unwrap().len(), 2);
    assert_eq!(store.find_sessions("a2").unwrap(), vec![id.clone()]);
    assert_eq!(store.exec_stats(None).unwrap().count, 10);
}

#[test]
fn export_import_across_state_dirs() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let store = open(src.path());
    let s = store.create_session(config("moved")).unwrap();
    for n in 0..200 {
        store.append_exec(&s.id, &exec(n)).unwrap();
    }
    store.save_scrollback(&s.id, &scrollback(1000)).unwrap();
    store.save_context(&s.id, b"ctx").unwrap();
    let snap = store.snapshot(&s.id, Some("x")).unwrap();
    let file = src.path().join("moved.aisx");
    store.export_to_file(&s.id, &file).unwrap();

    let other = open(dst.path());
    let bytes = std::fs::read(&file).unwrap();
    let imported = other.import(&bytes, &file).unwrap();
    assert_eq!(imported.state, store.load_state(&s.id).unwrap());
    assert_eq!(
        other.load_history(&s.id).unwrap(),
        store.load_history(&s.id).unwrap()
    );
    assert_eq!(
        other.load_scrollback(&s.id).unwrap(),
        store.load_scrollback(&s.id).unwrap()
    );
    assert_eq!(other.load_context(&s.id).unwrap(), Some(b"ctx".to_vec()));
    assert_eq!(imported.snapshots.len(), 1);
    let a = store.load_snapshot(&snap.id).unwrap();
    let b = other.load_snapshot(&snap.id).unwrap();
    assert_eq!(
        (a.history, a.scrollback, a.context, a.state),
        (b.history, b.scrollback, b.context, b.state)
    );

    // Importing again into the same store gives a new id instead of overwriting.
    let again = other.import(&bytes, &file).unwrap();
    assert_ne!(again.state.id, s.id);
    assert_eq!(other.load_history(&again.state.id).unwrap().len(), 200);

    // A truncated export is refused and changes nothing.
    let before = other.load_all_sessions().unwrap().len();
    let err = other.import(&bytes[..bytes.len() - 3], &file).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("moved.aisx"));
    assert_eq!(other.load_all_sessions().unwrap().len(), before);
    assert!(Store::open(dst.path(), plain()).is_ok());
}
