//! Failed writes are errors the caller gets, and counted for the daemon's status; refusals
//! of bad input or unknown ids are not failures of the machine and are not counted.

use ai_session_store::{Error, SessionId};

use super::common::*;

#[test]
fn failed_writes_are_typed_errors_and_counted_with_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = store.create_session(config("s")).unwrap().id;
    assert_eq!(store.write_failures().count, 0);
    // A directory where the scrollback goes: the rename onto it fails.
    let sdir = dir.path().join("sessions").join(id.as_str());
    std::fs::create_dir(sdir.join("scrollback")).unwrap();
    std::fs::write(sdir.join("scrollback").join("x"), b"x").unwrap();
    let err = store.save_scrollback(&id, &scrollback(10)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    // The history file replaced by a directory: the append cannot open it.
    store.close_session(&id).unwrap();
    std::fs::create_dir(sdir.join("history.log")).ok();
    let appended = store.append_exec(&id, &exec(0));
    assert!(appended.is_err());
    let f = store.write_failures();
    assert_eq!(f.count, 2, "{f:?}");
    assert!(
        f.recent[0].contains("save scrollback") && f.recent[0].contains("scrollback"),
        "{f:?}"
    );
    assert!(
        f.recent[1].contains("append exec") && f.recent[1].contains(id.as_str()),
        "{f:?}"
    );
    assert!(f.last_ms.is_some());
    // Not failures of the machine: an unknown session, a bad label.
    let ghost = SessionId::new("0000000000aa-ffffff".to_string()).unwrap();
    assert!(matches!(
        store.append_exec(&ghost, &exec(1)),
        Err(Error::NotFound { .. })
    ));
    assert!(store.snapshot(&id, Some("bad\nlabel")).is_err());
    assert_eq!(store.write_failures().count, 2);
}
