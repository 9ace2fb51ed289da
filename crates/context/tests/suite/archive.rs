use ai_session_context::Role;

use super::{run, small};

#[test]
fn every_archived_entry_comes_back_byte_identical() {
    let mut ctx = small(3_000, 0.5, 6);
    let mut originals = Vec::new();
    for i in 0..1_500 {
        let seq = if i % 5 == 0 {
            ctx.add_message(
                Role::Note,
                format!("note {i}: ünïcode ✓ and \"quotes\"\n  indented"),
                None,
            )
            .unwrap()
        } else {
            ctx.record_exec(run(i, i32::from(i % 11 == 0))).unwrap()
        };
        // The entry as it was added, from the live window.
        originals.push(ctx.get(seq).unwrap().unwrap());
    }
    assert!(ctx.archive().len() > 1_400, "most entries are archived");
    for e in &originals {
        let back = ctx.get(e.seq).unwrap().unwrap();
        assert_eq!(&back, e);
        assert_eq!(
            serde_json::to_vec(&back).unwrap(),
            serde_json::to_vec(e).unwrap()
        );
    }
    assert!(ctx.get(1_501).unwrap().is_none());
    // The whole history, in order, through a walk of all frames.
    let mut seqs = Vec::new();
    ctx.archive().for_each(|e| seqs.push(e.seq)).unwrap();
    let live: Vec<u64> = ctx.live().map(|e| e.seq).collect();
    seqs.extend(live);
    assert_eq!(seqs, (1..=1_500).collect::<Vec<_>>());
}

#[test]
fn frames_are_appended_never_rewritten() {
    let mut ctx = small(2_000, 0.5, 4);
    let mut file = Vec::new();
    let mut snapshot = Vec::new();
    for i in 0..4_000 {
        ctx.record_exec(run(i, 0)).unwrap();
        if i % 500 == 499 {
            file.extend(ctx.take_archive_frames());
            // What was handed out before is a prefix of everything there is now.
            assert!(ctx.archive().bytes().starts_with(&snapshot));
            snapshot = ctx.archive().bytes().to_vec();
        }
    }
    ctx.seal_archive().unwrap();
    file.extend(ctx.take_archive_frames());
    assert_eq!(file, ctx.archive().bytes());
    assert!(ctx.take_archive_frames().is_empty());
    assert!(
        ctx.archive().frames().len() > 1,
        "several frames were sealed"
    );
    let loaded = ai_session_context::Archive::from_bytes(&file).unwrap();
    assert_eq!(loaded.len(), ctx.archive().len());
    assert_eq!(loaded.get(7).unwrap(), ctx.get(7).unwrap());
}
