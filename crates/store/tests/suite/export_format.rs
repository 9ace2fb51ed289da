//! The chunk-once export format: each chunk written once however many snapshots share it,
//! every chunk checked against its id at import (changed, missing, or reached for outside the
//! export: refused, nothing written), and exports of the previous format still imported.

use std::path::Path;

use ai_session_store::{Error, Store};

use super::common::*;

const TAG_CHUNK: u32 = 8;

impl Export {
    fn chunks(&self) -> Vec<usize> {
        (0..self.frames.len())
            .filter(|i| self.frames[*i].0 == TAG_CHUNK)
            .collect()
    }
}

/// The plaintext of a blob (header 8 bytes, body length u64, CRC u32, then the packed body:
/// method u8 (0 stored, 1 zstd), length u32, data).
fn unpack(blob: &[u8]) -> Vec<u8> {
    let body = &blob[20..];
    match body[0] {
        0 => body[5..].to_vec(),
        1 => zstd::decode_all(&body[5..]).unwrap(),
        m => panic!("method {m}"),
    }
}

/// A blob with `header` holding `plain` stored as is.
fn blob_of(header: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend_from_slice(&(plain.len() as u32).to_le_bytes());
    body.extend_from_slice(plain);
    let mut out = header.to_vec();
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A session with a large scrollback and `snapshots` snapshots, one exec between each.
fn session_with(store: &Store, snapshots: u64) -> ai_session_store::SessionId {
    let s = store.create_session(config("many")).unwrap();
    store.save_scrollback(&s.id, &scrollback(4000)).unwrap();
    for n in 0..snapshots {
        store.append_exec(&s.id, &exec(n)).unwrap();
        store.snapshot(&s.id, None).unwrap();
    }
    s.id
}

fn entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = files(dir);
    // The index's write-ahead files change with reads; what an import leaves is elsewhere.
    all.retain(|p| !p.to_string_lossy().contains("metadata/index.db"));
    all.sort();
    all
}

#[test]
fn shared_chunks_are_written_once_however_many_snapshots_reference_them() {
    let d = tempfile::tempdir().unwrap();
    let store = open(d.path());
    let one = store.export(&session_with(&store, 1)).unwrap();
    let many_id = session_with(&store, 40);
    let many = store.export(&many_id).unwrap();
    // Forty snapshots of a 4,000-line scrollback (about 20 KB once compressed): each adds
    // its metadata, its manifest and its history's new chunk, not the scrollback again.
    let per_snapshot = (many.len() - one.len()) / 39;
    assert!(
        one.len() > 15_000 && per_snapshot < 3_000,
        "1 snapshot: {} bytes, 40 snapshots: {} bytes",
        one.len(),
        many.len()
    );
    let frames = Export::parse(&many);
    let chunks = frames.chunks();
    let mut ids: Vec<&[u8]> = chunks.iter().map(|i| &frames.frames[*i].1[..32]).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), chunks.len(), "a chunk written twice");

    let to = tempfile::tempdir().unwrap();
    let dst = open(to.path());
    let imported = dst.import(&many, Path::new("many.aisx")).unwrap();
    assert_eq!(imported.snapshots.len(), 40);
    let last = imported.snapshots.last().unwrap();
    let snap = dst.load_snapshot(&last.id).unwrap();
    assert_eq!(snap.history.len(), 40);
    assert_eq!(snap.scrollback, Some(scrollback(4000)));
}

#[test]
fn the_streamed_export_is_the_export() {
    let d = tempfile::tempdir().unwrap();
    let store = open(d.path());
    let id = session_with(&store, 3);
    let mut streamed = Vec::new();
    let n = store
        .export_to(&id, &mut streamed, Path::new("out.aisx"))
        .unwrap();
    assert_eq!(n, streamed.len() as u64);
    let to = tempfile::tempdir().unwrap();
    let imported = open(to.path())
        .import(&streamed, Path::new("out.aisx"))
        .unwrap();
    assert_eq!(imported.snapshots.len(), 3);
}

#[test]
fn a_chunk_changed_missing_or_reached_outside_the_export_refuses_the_import() {
    let d = tempfile::tempdir().unwrap();
    let store = open(d.path());
    let id = session_with(&store, 2);
    let bytes = store.export(&id).unwrap();
    let to = tempfile::tempdir().unwrap();
    let dst = open(to.path());
    let before = entries(to.path());

    // Changed: one byte of a chunk's content, re-encoded and checksummed as a writer would,
    // under its old id and with its old length.
    let mut changed = Export::parse(&bytes);
    let at = changed.chunks()[0];
    let body = &mut changed.frames[at].1;
    let (id, blob) = body.split_at(32);
    let mut plain = unpack(blob);
    plain[10] ^= 0x01;
    *body = [id, &blob_of(&blob[..8], &plain)].concat();
    let err = dst
        .import(&changed.bytes(), Path::new("changed.aisx"))
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("does not match its id"), "{err}");

    // Missing: a chunk's frame left out (the end frame's count fixed to match).
    let mut missing = Export::parse(&bytes);
    missing.frames.remove(missing.chunks()[0]);
    let err = dst
        .import(&missing.bytes(), Path::new("missing.aisx"))
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("which the export does not carry"),
        "{err}"
    );

    // Outside: the same export imported into the store that made it, where the left-out
    // chunk is on disk. The manifest reaches only the export's own chunks.
    let err = store
        .import(&missing.bytes(), Path::new("missing.aisx"))
        .unwrap_err();
    assert!(
        err.to_string().contains("which the export does not carry"),
        "{err}"
    );

    // A cut file.
    let err = dst
        .import(&bytes[..bytes.len() / 2], Path::new("cut.aisx"))
        .unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");

    assert_eq!(entries(to.path()), before, "a refused import left files");
    // The untouched export imports.
    dst.import(&bytes, Path::new("fine.aisx")).unwrap();
}

#[test]
fn an_end_frame_counting_other_frames_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let store = open(d.path());
    let bytes = store.export(&session_with(&store, 2)).unwrap();
    let mut e = Export::parse(&bytes);
    e.frames.remove(e.chunks()[0]);
    // Put back together with the original count.
    let mut out = e.bytes();
    let end = out.len() - 16;
    out.truncate(end);
    let count = ((e.frames.len() + 1) as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&TAG_END.to_le_bytes());
    crc.update(&count);
    out.extend_from_slice(&4u32.to_le_bytes());
    out.extend_from_slice(&TAG_END.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&count);
    let to = tempfile::tempdir().unwrap();
    let err = open(to.path())
        .import(&out, Path::new("recount.aisx"))
        .unwrap_err();
    assert!(err.to_string().contains("frames dropped or added"), "{err}");
}

#[test]
fn an_export_of_the_previous_format_still_imports() {
    // Written by the format-1 exporter: a session named old-format with four execs, a
    // 20-line scrollback and two snapshots, each carrying all its data.
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/export-v1.aisx"
    ))
    .unwrap();
    assert_eq!(&bytes[4..6], &1u16.to_le_bytes());
    let to = tempfile::tempdir().unwrap();
    let dst = open(to.path());
    let imported = dst.import(&bytes, Path::new("export-v1.aisx")).unwrap();
    assert_eq!(imported.state.config.name, "old-format");
    assert_eq!(
        dst.load_history(&imported.state.id).unwrap(),
        (0..4).map(exec).collect::<Vec<_>>()
    );
    assert_eq!(
        dst.load_scrollback(&imported.state.id).unwrap(),
        Some(scrollback(20))
    );
    assert_eq!(imported.snapshots.len(), 2);
    let first = dst.load_snapshot(&imported.snapshots[0].id).unwrap();
    assert_eq!(first.meta.label.as_deref(), Some("first"));
    assert_eq!(first.history, (0..3).map(exec).collect::<Vec<_>>());
    // And it is exported again in the current format.
    let again = dst.export(&imported.state.id).unwrap();
    assert_eq!(&again[4..6], &2u16.to_le_bytes());
}

#[test]
fn a_spooled_export_is_read_in_pieces_and_removed_when_read() {
    let d = tempfile::tempdir().unwrap();
    let store = open(d.path());
    let id = session_with(&store, 3);
    let spooled = store.spool_export(&id).unwrap();
    let mut whole = Vec::new();
    while (whole.len() as u64) < spooled.bytes {
        let (piece, total) = store
            .spool_read(&id, &spooled.handle, whole.len() as u64, 4096)
            .unwrap();
        assert_eq!(total, spooled.bytes);
        assert!(!piece.is_empty() && piece.len() <= 4096);
        whole.extend_from_slice(&piece);
    }
    assert_eq!(whole.len() as u64, spooled.bytes);
    // Read to the end: gone.
    let err = store.spool_read(&id, &spooled.handle, 0, 4096).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(files(&d.path().join("exports")).is_empty());
    let to = tempfile::tempdir().unwrap();
    let imported = open(to.path())
        .import(&whole, Path::new("pieces.aisx"))
        .unwrap();
    assert_eq!(imported.snapshots.len(), 3);

    // A handle is only a spool's own name: nothing else can be read through it.
    for handle in ["../../metadata/keycheck", "", "zz", &"a".repeat(31)] {
        let err = store.spool_read(&id, handle, 0, 10).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{handle:?}: {err}");
    }

    // A spool whose client never came back is removed at the next open, and said.
    let left = store.spool_export(&id).unwrap();
    drop(store);
    let store = open(d.path());
    assert!(
        store
            .recovered()
            .iter()
            .any(|r| r.to_string().contains(&left.handle)),
        "{:?}",
        store.recovered()
    );
    assert!(files(&d.path().join("exports")).is_empty());
}
