//! The journal of new records: a `new` in a durable store is one fdatasync of a journal
//! append; the record's `state.json` is made durable later. What a power loss can take from
//! an unsynced `state.json` (the file, or its contents) comes back from the journal at the
//! next open, and a deleted record never does.

use std::path::Path;

use ai_session_store::{Options, SessionStatus, Store};

use super::common::*;

fn durable() -> Options {
    Options {
        durable: true,
        ..Options::default()
    }
}

fn durable_encrypted() -> Options {
    Options {
        durable: true,
        ..encrypted("journal pass")
    }
}

fn journal_len(root: &Path) -> u64 {
    std::fs::metadata(root.join("metadata/sessions.journal"))
        .unwrap()
        .len()
}

/// A power loss after the answer can leave the unsynced `state.json` missing or empty; both
/// come back as they were, in a plain and in an encrypted store.
#[test]
fn a_new_record_whose_state_a_power_loss_took_comes_back_from_the_journal() {
    for options in [durable, durable_encrypted] {
        let dir = tempfile::tempdir().unwrap();
        let (gone, emptied) = {
            let store = Store::open(dir.path(), options()).unwrap();
            let a = store.create_session(config("gone")).unwrap();
            let b = store.create_session(config("emptied")).unwrap();
            assert!(
                journal_len(dir.path()) > 0,
                "the records are in the journal"
            );
            (a, b)
        };
        // What the page cache held and the disk did not: the file, or its contents.
        let state = |id: &ai_session_store::SessionId| {
            dir.path()
                .join("sessions")
                .join(id.as_str())
                .join("state.json")
        };
        std::fs::remove_file(state(&gone.id)).unwrap();
        std::fs::write(state(&emptied.id), b"").unwrap();

        let store = Store::open(dir.path(), options()).unwrap();
        for (before, name) in [(&gone, "gone"), (&emptied, "emptied")] {
            let record = store.load_session(&before.id).unwrap();
            assert_eq!(record.state.config.name, name);
            assert_eq!(record.state.config.env, before.config.env);
            assert_eq!(record.state.status, SessionStatus::Live);
        }
        assert_eq!(store.load_all_sessions().unwrap().len(), 2);
        assert_eq!(journal_len(dir.path()), 0, "open empties the journal");
    }
}

#[test]
fn sync_makes_the_records_durable_and_empties_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), durable()).unwrap();
    let s = store.create_session(config("s")).unwrap();
    assert!(journal_len(dir.path()) > 0);
    store.sync().unwrap();
    assert_eq!(journal_len(dir.path()), 0);
    assert_eq!(store.load_session(&s.id).unwrap().state.config.name, "s");
}

/// A record deleted while still in the journal is not written back at the next open.
#[test]
fn a_deleted_record_does_not_come_back_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let kept = {
        let store = Store::open(dir.path(), durable()).unwrap();
        let gone = store.create_session(config("gone")).unwrap();
        let kept = store.create_session(config("kept")).unwrap();
        store.delete_session(&gone.id).unwrap();
        kept
    };
    let store = Store::open(dir.path(), durable()).unwrap();
    let all = store.load_all_sessions().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, kept.id);
}

/// A store that does not fsync (`durable: false`) writes no journal.
#[test]
fn a_store_that_does_not_fsync_journals_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create_session(config("s")).unwrap();
    assert_eq!(journal_len(dir.path()), 0);
}
