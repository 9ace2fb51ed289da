use std::fs;

use ai_session_store::{ExecRecord, SessionStatus, Store};

use super::common::*;

/// A hand-made layout version 0: no layout file, states without schema, JSON-lines history.
fn make_v0(root: &std::path::Path) {
    let s = root.join("sessions");
    fs::create_dir_all(s.join("build")).unwrap();
    fs::write(
        s.join("build/state.json"),
        r#"{"name":"build","command":"/bin/bash -l","cwd":"/srv","env":{"A":"1"},
           "cols":100,"rows":30,"created":1700000000.5,"alive":true}"#,
    )
    .unwrap();
    fs::write(
        s.join("build/history.log"),
        concat!(
            r#"{"cmd":"make","code":0,"cwd":"/srv","start":1700000001.0,"end":1700000002.25}"#,
            "\n",
            r#"{"cmd":"make test","code":2,"start":1700000003.0,"end":1700000004.0}"#,
            "\n",
            r#"{"cmd":"torn wri"#,
        ),
    )
    .unwrap();
    fs::write(s.join("build/context.bin"), b"old raw context").unwrap();
    // A name that is not a valid id: the directory gets a fresh id.
    fs::create_dir_all(s.join("Dev Box")).unwrap();
    fs::write(
        s.join("Dev Box/state.json"),
        r#"{"name":"Dev Box","command":"zsh","cwd":"/home/u","created":1700000100,"alive":false}"#,
    )
    .unwrap();
}

#[test]
fn v0_layout_migrates_to_v1() {
    let tmp = tempfile::tempdir().unwrap();
    make_v0(tmp.path());
    let store = open(tmp.path());
    let layout = fs::read_to_string(tmp.path().join("metadata/layout.json")).unwrap();
    assert!(layout.contains("\"schema\":1"), "{layout}");

    let all = store.load_all_sessions().unwrap();
    assert_eq!(all.len(), 2);
    let build = store.find_sessions("build").unwrap();
    assert_eq!(build.len(), 1);
    let state = store.load_state(&build[0]).unwrap();
    assert_eq!(state.schema, 1);
    assert_eq!(state.config.argv, vec!["/bin/bash", "-l"]);
    assert_eq!((state.config.size.cols, state.config.size.rows), (100, 30));
    assert_eq!(state.config.created_ms, 1_700_000_000_500);
    assert_eq!(state.status, SessionStatus::Live);
    let history = store.load_history(&build[0]).unwrap();
    assert_eq!(
        history,
        vec![
            ExecRecord {
                command: "make".into(),
                exit_code: Some(0),
                cwd: "/srv".into(),
                started_ms: 1_700_000_001_000,
                ended_ms: 1_700_000_002_250,
                output_start: 0,
                output_end: 0,
            },
            ExecRecord {
                command: "make test".into(),
                exit_code: Some(2),
                cwd: "/srv".into(),
                started_ms: 1_700_000_003_000,
                ended_ms: 1_700_000_004_000,
                output_start: 0,
                output_end: 0,
            },
        ]
    );
    assert_eq!(
        store.load_context(&build[0]).unwrap().unwrap(),
        b"old raw context"
    );
    let dev = store.find_sessions("Dev Box").unwrap();
    assert_eq!(
        store.load_state(&dev[0]).unwrap().status,
        SessionStatus::Exited
    );
    assert_eq!(store.exec_stats(None).unwrap().count, 2);
    // The migrated store takes new writes and reopens without migrating again.
    store.append_exec(&build[0], &exec(1)).unwrap();
    drop(store);
    let store = Store::open(tmp.path(), plain()).unwrap();
    assert_eq!(store.load_history(&build[0]).unwrap().len(), 3);
}

#[test]
fn v0_layout_migrates_into_an_encrypted_store() {
    let tmp = tempfile::tempdir().unwrap();
    make_v0(tmp.path());
    let store = Store::open(tmp.path(), encrypted("p")).unwrap();
    let build = store.find_sessions("build").unwrap();
    assert_eq!(store.load_history(&build[0]).unwrap().len(), 2);
    let raw = fs::read(
        tmp.path()
            .join("sessions")
            .join(build[0].as_str())
            .join("state.json"),
    )
    .unwrap();
    assert!(raw.starts_with(b"AISB"));
}
