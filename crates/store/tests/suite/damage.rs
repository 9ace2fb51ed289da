use std::fs;

use ai_session_store::{Error, Store};

use super::common::*;

/// Three sessions; returns the store dir and the ids.
fn three() -> (tempfile::TempDir, Vec<ai_session_store::SessionId>) {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let mut ids = Vec::new();
    for name in ["one", "two", "three"] {
        let s = store.create_session(config(name)).unwrap();
        for n in 0..5 {
            store.append_exec(&s.id, &exec(n)).unwrap();
        }
        store.save_scrollback(&s.id, &scrollback(20)).unwrap();
        ids.push(s.id);
    }
    (tmp, ids)
}

fn others_load(store: &Store, bad: &ai_session_store::SessionId) {
    for (id, record) in store.load_all_sessions().unwrap() {
        if &id != bad {
            let record = record.unwrap();
            assert_eq!(record.execs, 5);
            assert!(record.history_error.is_none());
        }
    }
}

#[test]
fn truncated_state_names_the_file_and_others_load() {
    let (tmp, ids) = three();
    let path = tmp
        .path()
        .join("sessions")
        .join(ids[1].as_str())
        .join("state.json");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let store = open(tmp.path());
    let all = store.load_all_sessions().unwrap();
    assert_eq!(all.len(), 3);
    let err = all
        .iter()
        .find(|(id, _)| id == &ids[1])
        .unwrap()
        .1
        .as_ref()
        .unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    assert!(err.to_string().contains(path.to_str().unwrap()), "{err}");
    others_load(&store, &ids[1]);
}

#[test]
fn corrupted_scrollback_is_a_clear_error() {
    let (tmp, ids) = three();
    let path = tmp
        .path()
        .join("sessions")
        .join(ids[0].as_str())
        .join("scrollback");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    fs::write(&path, &bytes).unwrap();
    let store = open(tmp.path());
    let err = store.load_scrollback(&ids[0]).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    assert_eq!(err.path(), Some(path.as_path()));
    assert!(store.load_scrollback(&ids[1]).unwrap().is_some());
}

#[test]
fn newer_schema_is_refused_with_its_version() {
    let (tmp, ids) = three();
    let path = tmp
        .path()
        .join("sessions")
        .join(ids[2].as_str())
        .join("state.json");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("\"schema\": 1", "\"schema\": 7");
    fs::write(&path, text).unwrap();
    let store = open(tmp.path());
    let all = store.load_all_sessions().unwrap();
    let err = all
        .iter()
        .find(|(id, _)| id == &ids[2])
        .unwrap()
        .1
        .as_ref()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NewerVersion {
                found: 7,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    others_load(&store, &ids[2]);

    // A newer history header too.
    let hist = tmp
        .path()
        .join("sessions")
        .join(ids[0].as_str())
        .join("history.log");
    let mut bytes = fs::read(&hist).unwrap();
    bytes[4] = 9;
    fs::write(&hist, &bytes).unwrap();
    let err = store.load_history(&ids[0]).unwrap_err();
    assert!(matches!(err, Error::NewerVersion { found: 9, .. }), "{err}");

    // And a newer layout stops the open before anything is touched.
    fs::write(tmp.path().join("metadata/layout.json"), r#"{"schema":3}"#).unwrap();
    let err = Store::open(tmp.path(), plain()).unwrap_err();
    assert!(matches!(err, Error::NewerVersion { found: 3, .. }), "{err}");
}

#[test]
fn torn_history_tail_is_ignored_and_cut_before_the_next_append() {
    let (tmp, ids) = three();
    let path = tmp
        .path()
        .join("sessions")
        .join(ids[0].as_str())
        .join("history.log");
    let good = fs::read(&path).unwrap();
    // Half of a sixth frame, as a killed writer could leave it.
    let store = open(tmp.path());
    store.append_exec(&ids[0], &exec(5)).unwrap();
    drop(store);
    let full = fs::read(&path).unwrap();
    fs::write(&path, &full[..good.len() + (full.len() - good.len()) / 2]).unwrap();

    let store = open(tmp.path());
    let record = store.load_session(&ids[0]).unwrap();
    assert_eq!(record.execs, 5);
    assert!(record.torn_bytes > 0);
    assert_eq!(
        store.load_history(&ids[0]).unwrap(),
        (0..5).map(exec).collect::<Vec<_>>()
    );
    store.append_exec(&ids[0], &exec(6)).unwrap();
    let history = store.load_history(&ids[0]).unwrap();
    assert_eq!(history.len(), 6);
    assert_eq!(history[5], exec(6));
}

#[test]
fn corruption_in_the_middle_of_a_history_is_reported_but_the_session_loads() {
    let (tmp, ids) = three();
    let path = tmp
        .path()
        .join("sessions")
        .join(ids[1].as_str())
        .join("history.log");
    let mut bytes = fs::read(&path).unwrap();
    bytes[8 + 12 + 2] ^= 0xff; // inside the first frame's body
    fs::write(&path, &bytes).unwrap();
    let store = open(tmp.path());
    let err = store.load_history(&ids[1]).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("history.log"), "{err}");
    let record = store.load_session(&ids[1]).unwrap();
    assert!(record.history_error.is_some());
    others_load(&store, &ids[1]);
}

#[test]
fn garbage_and_empty_files_are_errors_not_panics() {
    let (tmp, ids) = three();
    let dir = tmp.path().join("sessions").join(ids[0].as_str());
    let store = open(tmp.path());
    for content in [
        &b""[..],
        b"AIS",
        b"garbage garbage garbage garbage",
        &[0u8; 64],
    ] {
        fs::write(dir.join("scrollback"), content).unwrap();
        assert!(store.load_scrollback(&ids[0]).is_err());
        fs::write(dir.join("history.log"), content).unwrap();
        // Short or zeroed histories read as torn (empty); garbage is an error: never a panic.
        let _outcome = store.load_history(&ids[0]);
        fs::write(dir.join("state.json"), content).unwrap();
        assert!(store.load_state(&ids[0]).is_err());
    }
}

#[test]
fn a_file_in_the_way_is_an_error_not_a_panic() {
    let (tmp, ids) = three();
    let store = open(tmp.path());
    // A directory where the scrollback file should be: the rename onto it fails.
    let path = tmp
        .path()
        .join("sessions")
        .join(ids[0].as_str())
        .join("scrollback");
    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    fs::write(path.join("occupied"), b"x").unwrap();
    let err = store.save_scrollback(&ids[0], &scrollback(5)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("scrollback"), "{err}");
    // The session's other files still work.
    store.append_exec(&ids[0], &exec(9)).unwrap();

    // A file where the snapshots directory of a session goes.
    fs::write(
        tmp.path().join("snapshots").join(ids[1].as_str()),
        b"in the way",
    )
    .unwrap();
    let err = store.snapshot(&ids[1], None).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    // A file where the store's root should be.
    let blocker = tmp.path().join("blocker");
    fs::write(&blocker, b"x").unwrap();
    let err = Store::open(blocker.join("store"), plain()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn read_only_directory_is_an_error_not_a_panic() {
    let (tmp, ids) = three();
    let store = open(tmp.path());
    let dir = tmp.path().join("sessions").join(ids[0].as_str());
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o500)).unwrap();
    let result = store.save_context(&ids[0], b"data");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    // Root ignores directory permissions; everyone else gets a clear error.
    if !is_root() {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains(dir.to_str().unwrap()), "{err}");
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}
