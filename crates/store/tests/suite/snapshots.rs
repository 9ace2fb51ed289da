//! Chunked snapshots: sharing, retention, collection, keyed ids, old bundles.

use std::path::{Path, PathBuf};

use ai_session_store::{Error, Options, Retention, Scrollback, SessionId, Store};

use super::common::*;

/// A scrollback of `lines` lines starting at line `first` (a bounded scrollback scrolled by
/// `first` lines).
fn scrolled(first: usize, lines: usize) -> Scrollback {
    Scrollback {
        lines: (first..first + lines)
            .map(|i| {
                // Output that compresses like real build logs do, not like a repeated line.
                let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d;
                format!(
                    "line {i}: case_{h:016x} ... ok (/work/secret-path) {:x}",
                    h >> 7
                )
            })
            .collect(),
        screen: format!("$ make\nbuilt {first}\n$ "),
        replay: Vec::new(),
    }
}

fn chunk_files(root: &Path) -> Vec<PathBuf> {
    let dir = root.join("chunks");
    if !dir.is_dir() {
        return Vec::new();
    }
    let mut out = files(&dir);
    out.sort();
    out
}

fn session(store: &Store, name: &str) -> SessionId {
    store.create_session(config(name)).unwrap().id
}

#[test]
fn many_snapshots_of_a_mostly_unchanged_session_cost_little_more_than_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = session(&store, "big");
    store.save_scrollback(&id, &scrolled(0, 5_000)).unwrap();
    store.append_exec(&id, &exec(0)).unwrap();
    store.snapshot(&id, Some("first")).unwrap();
    let one = store.snapshot_bytes().unwrap();
    for n in 1..50 {
        store.append_exec(&id, &exec(n)).unwrap();
        store
            .save_scrollback(&id, &scrolled(n as usize * 5, 5_000))
            .unwrap();
        store.snapshot(&id, None).unwrap();
    }
    let fifty = store.snapshot_bytes().unwrap();
    // Full copies would take 50 times `one`.
    assert!(one > 100_000, "one snapshot takes {one} bytes");
    // Each further snapshot costs a small fraction of a full copy: its metadata, its
    // manifest and the chunks at the two ends of what changed.
    let further = (fifty - one) / 49;
    assert!(
        further * 10 < one,
        "50 snapshots take {fifty} bytes, one took {one}"
    );
    let list = store.list_snapshots(Some(&id)).unwrap();
    assert_eq!(list.len(), 50);
    for (n, meta) in list.iter().enumerate().step_by(7) {
        let snap = store.load_snapshot(&meta.id).unwrap();
        assert_eq!(snap.scrollback.unwrap(), scrolled(n * 5, 5_000));
        assert_eq!(snap.history.len(), n + 1);
        assert_eq!(snap.history.last().unwrap(), &exec(n as u64));
    }
}

#[test]
fn retention_keeps_the_newest_per_session_and_collects_unreferenced_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (a, b) = (session(&store, "a"), session(&store, "b"));
    for n in 0..6 {
        store
            .save_scrollback(&a, &scrolled(n * 100, 2_000))
            .unwrap();
        store
            .save_scrollback(&b, &scrolled(50_000 + n * 100, 2_000))
            .unwrap();
        store.snapshot(&a, None).unwrap();
        store.snapshot(&b, None).unwrap();
    }
    let before = chunk_files(dir.path()).len();
    let kept_a: Vec<String> = store.list_snapshots(Some(&a)).unwrap()[4..]
        .iter()
        .map(|m| m.id.clone())
        .collect();
    let pruned = store
        .prune_snapshots(
            Some(&a),
            Retention {
                keep: Some(2),
                max_bytes: None,
            },
            None,
        )
        .unwrap();
    assert_eq!(pruned.removed.len(), 4);
    assert!(pruned.removed.iter().all(|m| m.session == a));
    assert!(pruned.chunks_removed > 0, "{pruned:?}");
    assert_eq!(
        chunk_files(dir.path()).len() as u64,
        before as u64 - pruned.chunks_removed
    );
    let left: Vec<String> = store
        .list_snapshots(Some(&a))
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, kept_a);
    assert_eq!(store.list_snapshots(Some(&b)).unwrap().len(), 6);
    // Everything left still loads: no chunk it needs was collected.
    for m in store.list_snapshots(None).unwrap() {
        store.load_snapshot(&m.id).unwrap();
    }
    // A byte bound removes the oldest, across sessions, down to the bound.
    let total = store.snapshot_bytes().unwrap();
    let pruned = store
        .prune_snapshots(
            None,
            Retention {
                keep: None,
                max_bytes: Some(total / 2),
            },
            None,
        )
        .unwrap();
    assert!(!pruned.removed.is_empty());
    assert!(pruned.bytes_total <= total / 2, "{pruned:?}");
    assert_eq!(pruned.bytes_total, store.snapshot_bytes().unwrap());
    // Deleting every snapshot leaves no chunk behind.
    for m in store.list_snapshots(None).unwrap() {
        store.delete_snapshot(&m.id).unwrap();
    }
    assert_eq!(chunk_files(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn configured_retention_applies_after_each_snapshot_and_spares_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        snapshots: Retention {
            keep: Some(2),
            max_bytes: Some(1),
        },
        ..plain()
    };
    let store = Store::open(dir.path(), options).unwrap();
    let id = session(&store, "s");
    let mut last = String::new();
    for n in 0..5 {
        store.save_scrollback(&id, &scrolled(n * 10, 500)).unwrap();
        last = store.snapshot(&id, None).unwrap().id;
    }
    // max_bytes of 1 cannot be met: everything but the newest goes, the newest stays.
    let left = store.list_snapshots(Some(&id)).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, last);
    store.load_snapshot(&last).unwrap();
}

#[test]
fn encrypted_chunk_ids_are_keyed_and_chunks_sealed() {
    let ids = |options: Options| {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), options).unwrap();
        let id = session(&store, "s");
        store.save_scrollback(&id, &scrolled(0, 3_000)).unwrap();
        store.snapshot(&id, None).unwrap();
        let names: Vec<String> = chunk_files(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        (dir, names)
    };
    let (_p1, plain1) = ids(plain());
    let (_p2, plain2) = ids(plain());
    assert_eq!(plain1, plain2, "plaintext ids are content hashes");
    let (e1, enc1) = ids(encrypted("one"));
    let (_e2, enc2) = ids(encrypted("two"));
    assert!(!enc1.is_empty());
    assert!(
        enc1.iter()
            .all(|n| !plain1.contains(n) && !enc2.contains(n))
    );
    // Sealed: no chunk holds the text in clear, nor as a zstd frame of it.
    for f in chunk_files(e1.path()) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!bytes.windows(11).any(|w| w == b"secret-path"));
        assert!(zstd::decode_all(&bytes[20..]).is_err());
    }
}

#[test]
fn a_chunk_swapped_or_edited_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = session(&store, "s");
    store.save_scrollback(&id, &scrolled(0, 3_000)).unwrap();
    let snap = store.snapshot(&id, None).unwrap();
    let chunks = chunk_files(dir.path());
    assert!(chunks.len() >= 2);
    let (x, y) = (
        std::fs::read(&chunks[0]).unwrap(),
        std::fs::read(&chunks[1]).unwrap(),
    );
    std::fs::write(&chunks[0], &y).unwrap();
    std::fs::write(&chunks[1], &x).unwrap();
    let err = store.load_snapshot(&snap.id).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("does not match its id"), "{err}");
    std::fs::remove_file(&chunks[0]).unwrap();
    let err = store.load_snapshot(&snap.id).unwrap_err();
    assert!(err.is_bad_input(), "{err}");
}

/// The self-contained bundle snapshots were written in before chunks: built by hand from the
/// session's files, as the older store wrote it.
fn write_old_snapshot(root: &Path, id: &SessionId, snap: &str, state_json: &serde_json::Value) {
    fn frame(tag: u32, body: &[u8], out: &mut Vec<u8>) {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&tag.to_le_bytes());
        crc.update(body);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        out.extend_from_slice(body);
    }
    let sdir = root.join("sessions").join(id.as_str());
    let mut bundle = b"AISN\x01\x00\x00\x00".to_vec();
    let mut n = 0u32;
    for (tag, name) in [(2, "history.log"), (3, "scrollback"), (4, "context.bin")] {
        if let Ok(bytes) = std::fs::read(sdir.join(name)) {
            frame(tag, &bytes, &mut bundle);
            n += 1;
        }
    }
    frame(u32::MAX, &n.to_le_bytes(), &mut bundle);
    let dir = root.join("snapshots").join(id.as_str());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{snap}.blob")), &bundle).unwrap();
    let mut doc = serde_json::json!({
        "schema": 1, "id": snap, "session": id.as_str(), "session_name": "old",
        "label": "v1 bundle", "created_ms": 1_700_000_000_000u64, "execs": 3,
        "scrollback_lines": 0, "bytes": bundle.len(),
    });
    doc["state"] = state_json.clone();
    std::fs::write(
        dir.join(format!("{snap}.json")),
        serde_json::to_vec_pretty(&doc).unwrap(),
    )
    .unwrap();
}

#[test]
fn snapshots_in_the_old_bundle_format_still_load_restore_export_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = open(dir.path());
        let id = session(&store, "old");
        store
            .append_execs(&id, &[exec(1), exec(2), exec(3)])
            .unwrap();
        store.save_scrollback(&id, &scrollback(200)).unwrap();
        store.save_context(&id, b"context bytes").unwrap();
        id
    };
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.path()
                .join("sessions")
                .join(id.as_str())
                .join("state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    write_old_snapshot(dir.path(), &id, "0000000000aa-old001", &state);
    let store = open(dir.path());
    let snap = store.load_snapshot("0000000000aa-old001").unwrap();
    assert_eq!(snap.history, vec![exec(1), exec(2), exec(3)]);
    assert_eq!(snap.scrollback.as_ref().unwrap(), &scrollback(200));
    assert_eq!(snap.context.as_deref(), Some(&b"context bytes"[..]));
    let restored = store.restore("0000000000aa", Some("again")).unwrap();
    assert_eq!(store.load_history(&restored.state.id).unwrap().len(), 3);
    // A chunked snapshot beside it; the export carries both, self-contained.
    store.snapshot(&id, None).unwrap();
    let export = store.export(&id).unwrap();
    let other = tempfile::tempdir().unwrap();
    let imported = open(other.path()).import(&export, Path::new("x")).unwrap();
    assert_eq!(imported.snapshots.len(), 2);
    let there = open(other.path());
    for m in &imported.snapshots {
        let s = there.load_snapshot(&m.id).unwrap();
        assert_eq!(s.history.len(), 3);
        assert_eq!(s.scrollback.unwrap(), scrollback(200));
    }
    // Retention counts and removes old bundles like the rest.
    let pruned = store
        .prune_snapshots(
            Some(&id),
            Retention {
                keep: Some(1),
                max_bytes: None,
            },
            None,
        )
        .unwrap();
    assert_eq!(pruned.removed.len(), 1);
    assert_eq!(pruned.removed[0].id, "0000000000aa-old001");
    assert!(
        !dir.path()
            .join("snapshots")
            .join(id.as_str())
            .join("0000000000aa-old001.blob")
            .exists()
    );
}

#[test]
fn a_damaged_manifest_does_not_fail_other_snapshots_and_keeps_its_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        snapshots: Retention {
            keep: Some(1),
            max_bytes: None,
        },
        ..plain()
    };
    let store = Store::open(dir.path(), options).unwrap();
    let (a, b) = (session(&store, "a"), session(&store, "b"));
    store.save_scrollback(&a, &scrolled(0, 2_000)).unwrap();
    store.save_scrollback(&b, &scrolled(0, 2_000)).unwrap();
    let damaged = store.snapshot(&a, None).unwrap();
    let manifest = dir
        .path()
        .join("snapshots")
        .join(a.as_str())
        .join(format!("{}.blob", damaged.id));
    let mut bytes = std::fs::read(&manifest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&manifest, &bytes).unwrap();
    let chunks = chunk_files(dir.path()).len();
    // b's snapshots are taken, and its retention runs into a's manifest: counted, not fatal,
    // and no chunk is collected while a manifest cannot be read.
    store.snapshot(&b, None).unwrap();
    let newest = store.snapshot(&b, None).unwrap();
    let f = store.write_failures();
    assert!(
        f.recent
            .iter()
            .any(|r| r.contains("snapshot retention") && r.contains(&damaged.id)),
        "{f:?}"
    );
    assert!(chunk_files(dir.path()).len() >= chunks);
    store.load_snapshot(&newest.id).unwrap();
    // Deleting the damaged one succeeds and lets the collection run again.
    store.delete_snapshot(&damaged.id).unwrap();
    store
        .prune_snapshots(
            None,
            Retention {
                keep: Some(1),
                max_bytes: None,
            },
            None,
        )
        .unwrap();
    assert_eq!(store.list_snapshots(None).unwrap().len(), 1);
    store.load_snapshot(&newest.id).unwrap();
}
