use super::{run, small};

#[test]
fn below_threshold_nothing_is_compressed() {
    let mut ctx = small(4_000, 0.5, 8);
    let mut i = 0;
    // Add while the next entry still keeps the total at or under the threshold.
    loop {
        let before = ctx.tokens();
        ctx.record_exec(run(i, 0)).unwrap();
        if ctx.stats().compressions > 0 {
            // The entry that crossed the threshold is the one that triggered compression.
            assert!(before <= 2_000);
            break;
        }
        assert!(ctx.tokens() <= 2_000);
        assert!(ctx.archive().is_empty());
        assert_eq!(
            ctx.live().count(),
            i + 1,
            "every entry stays live below the threshold"
        );
        i += 1;
    }
    assert!(
        i > 8,
        "more entries than the window stayed live below the threshold"
    );
}

#[test]
fn above_threshold_compresses_below_it() {
    let mut ctx = small(4_000, 0.5, 8);
    let mut compressions = 0;
    for i in 0..400 {
        ctx.record_exec(run(i, i32::from(i % 10 == 3))).unwrap();
        assert!(
            ctx.tokens() <= 2_000,
            "total {} over the threshold",
            ctx.tokens()
        );
        if ctx.stats().compressions > compressions {
            compressions = ctx.stats().compressions;
            assert!(
                ctx.live().count() <= 8,
                "the window keeps at most 8 entries in full"
            );
            assert!(ctx.tokens() <= ctx.config().target_tokens());
        }
    }
    let s = ctx.stats();
    assert!(s.compressions > 0);
    assert_eq!(s.entries_archived + ctx.live().count() as u64, 400);
    assert!(!ctx.summary().lines.is_empty());
}

#[test]
fn repeated_commands_fold_into_one_line() {
    let mut ctx = small(2_000, 0.5, 4);
    for i in 0..12 {
        let code = if i == 3 { 101 } else { 0 };
        ctx.record_exec(
            ai_session_context::ExecRecord::new("cargo check", Some(code), "/w").output(
                if code == 0 {
                    "Finished dev"
                } else {
                    "error[E0425]: cannot find value `x`"
                },
            ),
        )
        .unwrap();
    }
    // Push them out of the window with other work.
    for i in 0..200 {
        ctx.record_exec(run(i, 0)).unwrap();
    }
    let lines: Vec<&str> = ctx
        .summary()
        .lines
        .iter()
        .map(|l| l.text.as_str())
        .filter(|t| t.contains("cargo check"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains("$ cargo check x12 (1 failed), last exit 0"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("E0425"), "{}", lines[0]);
}

#[test]
fn a_single_huge_entry_still_ends_under_the_threshold() {
    let mut ctx = small(1_000, 0.8, 4);
    let big: String = (0..3_000).map(|i| format!("w{i} ")).collect();
    ctx.record_exec(ai_session_context::ExecRecord::new("cat big", Some(0), "/w").output(big))
        .unwrap();
    assert!(ctx.tokens() <= 800);
    assert!(ctx.get(1).unwrap().is_some());
}
