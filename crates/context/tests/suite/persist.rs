use ai_session_context::{ContextError, Role, SessionContext};

use super::{run, small};

fn busy() -> SessionContext {
    let mut ctx = small(3_000, 0.6, 8);
    ctx.create_task("root", None, Some("the goal")).unwrap();
    ctx.create_task("sub", Some("root"), None).unwrap();
    ctx.set_active_task(Some("sub")).unwrap();
    ctx.add_message(Role::User, "fix the build", Some("root"))
        .unwrap();
    for i in 0..300 {
        ctx.record_exec(run(i, i32::from(i % 17 == 4))).unwrap();
    }
    ctx.record_exec(
        ai_session_context::ExecRecord::new("cargo test", Some(101), "/w/proj")
            .output("error: test failed"),
    )
    .unwrap();
    ctx.record_exec(ai_session_context::ExecRecord::new(
        "cargo test --features x",
        Some(0),
        "/w/proj",
    ))
    .unwrap();
    ctx
}

#[test]
fn round_trip_keeps_everything() {
    let ctx = busy();
    let bytes = ctx.to_bytes().unwrap();
    let back = SessionContext::from_bytes(&bytes).unwrap();
    for budget in [500, 2_000, 8_000] {
        for task in [None, Some("sub")] {
            assert_eq!(
                back.build(budget, task).unwrap(),
                ctx.build(budget, task).unwrap()
            );
        }
    }
    for seq in 1..=302 {
        assert_eq!(back.get(seq).unwrap(), ctx.get(seq).unwrap());
    }
    assert_eq!(back.agent(), ctx.agent());
    assert_eq!(back.workspace(), ctx.workspace());
    assert_eq!(back.unresolved(), ctx.unresolved());
    assert_eq!(back.stats(), ctx.stats());
    assert_eq!(back.to_bytes().unwrap(), bytes);
}

#[test]
fn state_and_incremental_frames_load_together() {
    let mut ctx = busy();
    ctx.seal_archive().unwrap();
    let mut archive_file = ctx.take_archive_frames();
    for i in 0..200 {
        ctx.record_exec(run(1_000 + i, 0)).unwrap();
    }
    ctx.seal_archive().unwrap();
    archive_file.extend(ctx.take_archive_frames());
    for i in 0..50 {
        ctx.record_exec(run(2_000 + i, 0)).unwrap();
    }
    // The open tail travels in the state.
    assert!(ctx.archive().last_seq() > ctx.archive().sealed_last_seq());
    let state = ctx.state_bytes().unwrap();
    let back = SessionContext::from_parts(&state, &archive_file).unwrap();
    assert_eq!(
        back.build(4_000, None).unwrap(),
        ctx.build(4_000, None).unwrap()
    );
    assert_eq!(back.get(3).unwrap(), ctx.get(3).unwrap());
    for seq in 1..=ctx.stats().entries_added {
        assert_eq!(back.get(seq).unwrap(), ctx.get(seq).unwrap());
    }
    // A missing tail of the archive file is caught, not silently accepted.
    let short = &archive_file[..ctx.archive().frames()[0].len];
    assert!(matches!(
        SessionContext::from_parts(&state, short),
        Err(ContextError::Corrupt(_))
    ));
    // Frames appended after the state was saved are left out; their entries are in the state.
    let early_state = state.clone();
    for i in 0..300 {
        ctx.record_exec(run(3_000 + i, 0)).unwrap();
    }
    ctx.seal_archive().unwrap();
    archive_file.extend(ctx.take_archive_frames());
    let early = SessionContext::from_parts(&early_state, &archive_file).unwrap();
    assert_eq!(
        early.build(4_000, None).unwrap(),
        back.build(4_000, None).unwrap()
    );
    assert_eq!(early.archive().bytes().len(), back.archive().bytes().len());
}

#[test]
fn bad_and_newer_blobs_are_refused_clearly() {
    let ctx = busy();
    let mut bytes = ctx.to_bytes().unwrap();
    assert!(matches!(
        SessionContext::from_bytes(b"PK\x03\x04junk"),
        Err(ContextError::BadMagic { .. })
    ));
    bytes[4] = 9;
    let err = SessionContext::from_bytes(&bytes).unwrap_err();
    assert!(matches!(
        err,
        ContextError::UnsupportedVersion {
            found: 9,
            supported: 1
        }
    ));
    assert!(err.to_string().contains("upgrade"));
    bytes[4] = 1;
    let cut = &bytes[..bytes.len() / 2];
    assert!(matches!(
        SessionContext::from_bytes(cut),
        Err(ContextError::Corrupt(_))
    ));
}
