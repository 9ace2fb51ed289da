//! Exports and store directories built by an attacker: ids that climb out of the store,
//! symbolic links planted in it, and decompression bombs. Each is refused with a typed error,
//! nothing is written outside the store, and a refused import leaves nothing behind.

use std::fs;
use std::io::Write;
use std::path::Path;

use ai_session_store::{Error, Options, Store};

use super::common::*;

const TAG_STATE: u32 = 2;
const TAG_SCROLLBACK: u32 = 4;
const TAG_SNAP_META: u32 = 6;

impl Export {
    /// Edits the JSON body of every frame tagged `tag` (plaintext exports keep JSON as is).
    fn edit_json(&mut self, tag: u32, edit: impl Fn(&mut serde_json::Value)) {
        for (t, body) in &mut self.frames {
            if *t == tag {
                let mut v: serde_json::Value = serde_json::from_slice(body).unwrap();
                edit(&mut v);
                *body = serde_json::to_vec(&v).unwrap();
            }
        }
    }

    fn set_frame(&mut self, tag: u32, body: Vec<u8>) {
        self.frames.retain(|(t, _)| *t != tag);
        let at = self
            .frames
            .iter()
            .position(|(t, _)| *t > tag)
            .unwrap_or(self.frames.len());
        self.frames.insert(at, (tag, body));
    }
}

/// A plaintext store with one session (three execs, a scrollback, one snapshot), exported.
fn exported() -> (tempfile::TempDir, Vec<u8>) {
    let src = tempfile::tempdir().unwrap();
    let store = open(src.path());
    let s = store.create_session(config("victim")).unwrap();
    for n in 0..3 {
        store.append_exec(&s.id, &exec(n)).unwrap();
    }
    store.save_scrollback(&s.id, &scrollback(20)).unwrap();
    store.snapshot(&s.id, Some("before")).unwrap();
    let bytes = store.export(&s.id).unwrap();
    (src, bytes)
}

/// Every entry under `dir`, links included, as paths relative to it.
fn entries(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A blob file (`AISB`, kind 2: scrollback) whose packed body is `method | raw_len | data`.
fn scrollback_blob(declared: u32, zstd_data: &[u8]) -> Vec<u8> {
    let mut body = vec![1u8];
    body.extend_from_slice(&declared.to_le_bytes());
    body.extend_from_slice(zstd_data);
    let mut out = b"AISB".to_vec();
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&[2, 0]);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// `n` zero bytes as one zstd frame, compressed on the fly (about 32 KiB per GiB).
fn zstd_zeros(n: u64) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        enc.write_all(&chunk[..k]).unwrap();
        left -= k as u64;
    }
    enc.finish().unwrap()
}

#[test]
fn snapshot_ids_that_climb_out_of_the_store_are_refused() {
    let (_src, bytes) = exported();
    let outside = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let store = open(dst.path());
    let before = entries(dst.path());
    let absolute = outside.path().join("x").display().to_string();
    let bad = [
        "../../../../../../../../tmp/ais-escape".to_owned(),
        format!("../../../..{absolute}"),
        absolute,
        "..".to_owned(),
        ".hidden".to_owned(),
        "a\0b".to_owned(),
        "x".repeat(65),
        "Upper".to_owned(),
        "a/b".to_owned(),
        String::new(),
    ];
    for id in &bad {
        let mut e = Export::parse(&bytes);
        e.edit_json(TAG_SNAP_META, |v| v["id"] = id.clone().into());
        let err = store
            .import(&e.bytes(), Path::new("hostile.aisx"))
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidId { .. }),
            "{id:?}: {err} ({err:?})"
        );
        assert!(err.is_bad_input(), "{err}");
        assert!(err.to_string().contains("snapshot id"), "{err}");
    }
    assert!(entries(outside.path()).is_empty());
    assert!(!Path::new("/tmp/ais-escape.json").exists());
    // Nothing left in the store either: no session, no snapshot, no temporary file.
    assert_eq!(entries(dst.path()), before);
    assert!(store.list_snapshots(None).unwrap().is_empty());
}

#[test]
fn session_ids_and_names_from_an_export_are_checked() {
    let (_src, bytes) = exported();
    let dst = tempfile::tempdir().unwrap();
    let store = open(dst.path());
    let before = entries(dst.path());
    for (field, value) in [
        ("id", "../../escape"),
        ("id", "/etc/passwd"),
        ("id", "a\0b"),
        ("name", "../../escape"),
        ("name", "-rf"),
        ("name", "a\nb"),
        ("name", &"n".repeat(65)),
    ] {
        let mut e = Export::parse(&bytes);
        e.edit_json(TAG_STATE, |v| match field {
            "id" => v["id"] = value.into(),
            _ => v["config"]["name"] = value.into(),
        });
        let err = store
            .import(&e.bytes(), Path::new("hostile.aisx"))
            .unwrap_err();
        assert!(err.is_bad_input(), "{field}={value:?}: {err}");
    }
    // A snapshot label that would drive the terminal listing it.
    let mut e = Export::parse(&bytes);
    e.edit_json(TAG_SNAP_META, |v| v["label"] = "\u{1b}]0;pwned\u{7}".into());
    let err = store
        .import(&e.bytes(), Path::new("hostile.aisx"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidId { .. }), "{err}");
    assert_eq!(entries(dst.path()), before);
    // The untouched export still imports.
    store.import(&bytes, Path::new("fine.aisx")).unwrap();
}

#[test]
fn symlinks_planted_in_the_store_are_never_followed() {
    let (_src, bytes) = exported();
    let outside = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let store = open(dst.path());
    let manifest_id = Export::parse(&bytes)
        .frames
        .iter()
        .find(|(t, _)| *t == TAG_STATE)
        .map(|(_, b)| serde_json::from_slice::<serde_json::Value>(b).unwrap()["id"].clone())
        .unwrap();
    let id = manifest_id.as_str().unwrap();

    // The imported session's snapshot directory is a link out of the store.
    std::os::unix::fs::symlink(outside.path(), dst.path().join("snapshots").join(id)).unwrap();
    let err = store.import(&bytes, Path::new("x.aisx")).unwrap_err();
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert!(
        entries(outside.path()).is_empty(),
        "wrote outside the store"
    );
    // The half-imported session was removed again.
    assert!(!dst.path().join("sessions").join(id).exists());
    assert!(store.load_all_sessions().unwrap().is_empty());
    fs::remove_file(dst.path().join("snapshots").join(id)).unwrap();

    // A session directory that is a link: the import takes a fresh id instead.
    std::os::unix::fs::symlink(outside.path(), dst.path().join("sessions").join(id)).unwrap();
    let imported = store.import(&bytes, Path::new("x.aisx")).unwrap();
    assert_ne!(imported.state.id.as_str(), id);
    assert!(
        entries(outside.path()).is_empty(),
        "wrote outside the store"
    );
    // Reading through it is refused too.
    let linked = ai_session_store::SessionId::new(id).unwrap();
    let err = store.load_state(&linked).unwrap_err();
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");

    // A history replaced by a link to a file outside: appends do not go there.
    let sid = imported.state.id.clone();
    let victim = outside.path().join("victim.txt");
    fs::write(&victim, b"untouched").unwrap();
    drop(store);
    let hist = dst
        .path()
        .join("sessions")
        .join(sid.as_str())
        .join("history.log");
    fs::remove_file(&hist).unwrap();
    std::os::unix::fs::symlink(&victim, &hist).unwrap();
    let store = open(dst.path());
    let err = store.append_exec(&sid, &exec(9)).unwrap_err();
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");
    assert_eq!(fs::read(&victim).unwrap(), b"untouched");
    fs::remove_file(&hist).unwrap();

    // A scrollback replaced by a link to a secret: an export does not carry the secret away.
    let secret = outside.path().join("id_ed25519");
    fs::write(&secret, b"PRIVATE KEY MATERIAL").unwrap();
    let sb = dst
        .path()
        .join("sessions")
        .join(sid.as_str())
        .join("scrollback");
    fs::remove_file(&sb).unwrap();
    std::os::unix::fs::symlink(&secret, &sb).unwrap();
    let err = store.export(&sid).unwrap_err();
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");
    let err = store.load_scrollback(&sid).unwrap_err();
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");
    fs::remove_file(&sb).unwrap();
    drop(store);

    // The index itself.
    let db = dst.path().join("metadata").join("index.db");
    fs::rename(&db, outside.path().join("moved.db")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("moved.db"), &db).unwrap();
    let err = Store::open(dst.path(), plain()).unwrap_err();
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");
}

#[test]
fn a_frame_declaring_a_gibibyte_is_refused_before_decompressing() {
    let (_src, bytes) = exported();
    let dst = tempfile::tempdir().unwrap();
    let store = open(dst.path());
    let before = entries(dst.path());
    let bomb = zstd_zeros(1 << 30);
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let mut e = Export::parse(&bytes);
    e.set_frame(TAG_SCROLLBACK, scrollback_blob(1 << 30, &bomb));
    let hostile = e.bytes();
    assert!(hostile.len() < 100 * 1024);

    // (The memory this costs is measured on the real daemon, in the CLI's end-to-end tests:
    // this process runs other tests in parallel.)
    let started = std::time::Instant::now();
    let err = store.import(&hostile, Path::new("bomb.aisx")).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(err.is_bad_input());
    let msg = err.to_string();
    assert!(
        msg.contains("1073741824") && msg.contains("268435456") && msg.contains("bomb.aisx"),
        "{msg}"
    );
    assert_eq!(entries(dst.path()), before, "a refused import left files");
}

#[test]
fn a_frame_that_expands_past_its_declared_size_is_cut_off() {
    let (_src, bytes) = exported();
    let dst = tempfile::tempdir().unwrap();
    let store = open(dst.path());
    let before = entries(dst.path());
    // Declares 4 KiB, holds 1 GiB of zeros.
    let mut e = Export::parse(&bytes);
    e.set_frame(TAG_SCROLLBACK, scrollback_blob(4096, &zstd_zeros(1 << 30)));
    let started = std::time::Instant::now();
    let err = store
        .import(&e.bytes(), Path::new("liar.aisx"))
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("more than the 4096 bytes"),
        "{err}"
    );
    // Cut off after 4 KiB: nowhere near the time a gibibyte would take.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(entries(dst.path()), before);
}

#[test]
fn the_limit_holds_for_an_import_as_a_whole_and_is_configurable() {
    let src = tempfile::tempdir().unwrap();
    let store = open(src.path());
    let s = store.create_session(config("big")).unwrap();
    // About 600 KiB of scrollback, in the session and in each of four snapshots: every item
    // is under 1 MiB, the whole import is about 3 MiB.
    store.save_scrollback(&s.id, &scrollback(10_000)).unwrap();
    for _ in 0..4 {
        store.snapshot(&s.id, None).unwrap();
    }
    let bytes = store.export(&s.id).unwrap();

    let limited = |max: u64| Options {
        max_unpacked: max,
        ..plain()
    };
    let dst = tempfile::tempdir().unwrap();
    let small = Store::open(dst.path(), limited(1 << 20)).unwrap();
    let before = entries(dst.path());
    let err = small.import(&bytes, Path::new("big.aisx")).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("together"), "{err}");
    assert_eq!(entries(dst.path()), before);
    drop(small);
    // Each item alone is also held to the limit, on the store's own files too.
    let tiny = Store::open(dst.path(), limited(64 * 1024)).unwrap();
    let err = tiny.import(&bytes, Path::new("big.aisx")).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    drop(tiny);
    let err = Store::open(src.path(), limited(64 * 1024))
        .unwrap()
        .load_scrollback(&s.id)
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");

    // With room enough it imports.
    let roomy = Store::open(dst.path(), limited(8 << 20)).unwrap();
    let imported = roomy.import(&bytes, Path::new("big.aisx")).unwrap();
    assert_eq!(imported.snapshots.len(), 4);
}

#[test]
fn truncated_or_garbled_exports_are_bad_input() {
    let (_src, bytes) = exported();
    let dst = tempfile::tempdir().unwrap();
    let store = open(dst.path());
    let before = entries(dst.path());
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let mut garbled_zstd = Export::parse(&bytes);
    garbled_zstd.set_frame(
        TAG_SCROLLBACK,
        scrollback_blob(4096, b"\x28\xb5\x2f\xfdgarbage"),
    );
    for (what, input) in [
        ("empty", Vec::new()),
        ("header only", bytes[..8].to_vec()),
        ("cut", bytes[..bytes.len() / 3].to_vec()),
        ("one bit flipped", flipped),
        ("bad zstd", garbled_zstd.bytes()),
        ("not an export", b"PK\x03\x04 a zip file".to_vec()),
    ] {
        let err = store.import(&input, Path::new("bad.aisx")).unwrap_err();
        assert!(err.is_bad_input(), "{what}: {err} ({err:?})");
    }
    assert_eq!(entries(dst.path()), before);
}
