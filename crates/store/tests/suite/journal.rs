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

/// A record acknowledged after its first half (the journal frame) whose `state.json` was
/// never written (the second half failed, or the process died between the two): a `sync`
/// keeps the journal instead of emptying it, and the next open writes the record back.
#[test]
fn a_record_begun_and_not_finished_survives_a_sync_and_comes_back_at_open() {
    for options in [durable, durable_encrypted] {
        let dir = tempfile::tempdir().unwrap();
        let id = ai_session_store::SessionId::new("0123456789abcdef0123456789abcdef").unwrap();
        {
            let store = Store::open(dir.path(), options()).unwrap();
            let finished = store.create_session(config("finished")).unwrap();
            let begun = store.begin_session_as(id.clone(), config("begun")).unwrap();
            assert_eq!(begun.state().config.name, "begun");
            drop(begun);
            assert!(
                !dir.path()
                    .join("sessions")
                    .join(id.as_str())
                    .join("state.json")
                    .exists(),
                "the second half writes state.json"
            );
            store.sync().unwrap();
            assert!(
                journal_len(dir.path()) > 0,
                "a record without its state.json keeps the journal"
            );
            assert_eq!(
                store.load_session(&finished.id).unwrap().state.config.name,
                "finished"
            );
        }
        let store = Store::open(dir.path(), options()).unwrap();
        let record = store.load_session(&id).unwrap();
        assert_eq!(record.state.config.name, "begun");
        assert_eq!(record.state.status, SessionStatus::Live);
        assert_eq!(store.load_all_sessions().unwrap().len(), 2);
        assert_eq!(journal_len(dir.path()), 0, "open empties the journal");
    }
}

/// The two halves together are `create_session_as`: the same record, on disk and listed.
#[test]
fn begin_then_finish_records_what_create_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), durable()).unwrap();
    let id = ai_session_store::SessionId::new("00112233445566778899aabbccddeeff").unwrap();
    let begun = store.begin_session_as(id.clone(), config("two")).unwrap();
    let state = store.finish_session(begun).unwrap();
    assert_eq!(state.id, id);
    let record = store.load_session(&id).unwrap();
    assert_eq!(record.state.config.name, "two");
    assert_eq!(store.find_sessions("two").unwrap(), vec![id.clone()]);
    assert!(matches!(
        store.begin_session_as(id, config("again")),
        Err(ai_session_store::Error::Exists { .. })
    ));
}
