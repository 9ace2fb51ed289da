use std::fs;

use ai_session_store::{Error, Store};

use super::common::*;

#[test]
fn encrypted_store_round_trips_and_hides_content() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), encrypted("correct horse")).unwrap();
    assert!(store.is_encrypted());
    let s = store.create_session(config("secretive")).unwrap();
    for n in 0..20 {
        store.append_exec(&s.id, &exec(n)).unwrap();
    }
    store.save_scrollback(&s.id, &scrollback(50)).unwrap();
    store.save_context(&s.id, b"context secret-pkg").unwrap();
    store
        .save_environment(&s.id, b"declare -x TOKEN=\"secret-env\"\n")
        .unwrap();
    let snap = store.snapshot(&s.id, None).unwrap();
    drop(store);

    // No plaintext anywhere: not the env, the commands, the scrollback, the context.
    for path in files(tmp.path()) {
        let bytes = fs::read(&path).unwrap();
        for needle in ["hunter2", "secret-pkg", "secret-path", "secret-env"] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{needle} in plaintext in {}",
                path.display()
            );
        }
    }

    let store = Store::open(tmp.path(), encrypted("correct horse")).unwrap();
    assert_eq!(store.load_history(&s.id).unwrap().len(), 20);
    assert_eq!(store.load_scrollback(&s.id).unwrap(), Some(scrollback(50)));
    assert_eq!(
        store.load_environment(&s.id).unwrap().as_deref(),
        Some(&b"declare -x TOKEN=\"secret-env\"\n"[..])
    );
    assert_eq!(store.load_snapshot(&snap.id).unwrap().history.len(), 20);
    // Analytics work without the command text.
    let stats = store.exec_stats(None).unwrap();
    assert_eq!(stats.count, 20);
    assert_eq!(store.slowest_execs(None, 1).unwrap()[0].command, None);
}

#[test]
fn wrong_or_missing_passphrase_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path(), encrypted("right")).unwrap();
    store.create_session(config("x")).unwrap();
    drop(store);
    let err = Store::open(tmp.path(), encrypted("wrong")).unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("wrong passphrase for {}", tmp.path().display())
    );
    // Without a passphrase the store does not open, so nothing plaintext gets written.
    let err = Store::open(tmp.path(), plain()).unwrap_err();
    assert!(matches!(err, Error::PassphraseRequired { .. }), "{err}");
    assert!(err.to_string().contains("AI_SESSION_PASSPHRASE"));
}

#[test]
fn a_plaintext_store_given_a_passphrase_encrypts_from_then_on() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let s = store.create_session(config("x")).unwrap();
    store.append_exec(&s.id, &exec(1)).unwrap();
    drop(store);
    let store = Store::open(tmp.path(), encrypted("now")).unwrap();
    // Old plaintext files still read; the history is rewritten sealed on the next append.
    assert_eq!(store.load_history(&s.id).unwrap(), vec![exec(1)]);
    store.append_exec(&s.id, &exec(2)).unwrap();
    drop(store);
    let hist = fs::read(
        tmp.path()
            .join("sessions")
            .join(s.id.as_str())
            .join("history.log"),
    )
    .unwrap();
    assert!(!hist.windows(10).any(|w| w == b"secret-pkg"));
    let store = Store::open(tmp.path(), encrypted("now")).unwrap();
    assert_eq!(store.load_history(&s.id).unwrap(), vec![exec(1), exec(2)]);
    assert!(Store::open(tmp.path(), plain()).is_err());
}

#[test]
fn encrypted_export_imports_into_another_encrypted_store() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let src = Store::open(a.path(), encrypted("shared pass")).unwrap();
    let s = src.create_session(config("x")).unwrap();
    src.append_exec(&s.id, &exec(1)).unwrap();
    src.save_scrollback(&s.id, &scrollback(10)).unwrap();
    src.snapshot(&s.id, Some("l")).unwrap();
    let bytes = src.export(&s.id).unwrap();
    assert!(!bytes.windows(10).any(|w| w == b"secret-pkg"));
    let source = std::path::Path::new("export.aisx");

    // Another store with its own salt, same passphrase.
    let dst = Store::open(b.path(), encrypted("shared pass")).unwrap();
    let imported = dst.import(&bytes, source).unwrap();
    assert_eq!(dst.load_history(&imported.state.id).unwrap(), vec![exec(1)]);
    assert_eq!(
        dst.load_scrollback(&imported.state.id).unwrap(),
        Some(scrollback(10))
    );
    assert_eq!(imported.snapshots.len(), 1);

    // Importing with another passphrase names the export file.
    let c = tempfile::tempdir().unwrap();
    let other = Store::open(c.path(), encrypted("other pass")).unwrap();
    let err = other.import(&bytes, source).unwrap_err();
    assert_eq!(err.to_string(), "wrong passphrase for export.aisx");
    // And a store without any passphrase cannot read it.
    let d = tempfile::tempdir().unwrap();
    let err = open(d.path()).import(&bytes, source).unwrap_err();
    assert!(matches!(err, Error::PassphraseRequired { .. }), "{err}");
}
