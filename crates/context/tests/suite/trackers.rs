use ai_session_context::{ContextError, ExecRecord};

use super::{run, small};

#[test]
fn an_error_is_resolved_only_by_a_run_that_covers_it() {
    let mut ctx = small(20_000, 0.8, 64);
    ctx.record_exec(
        ExecRecord::new("cargo test -p a", Some(101), "/w").output("error: test failed"),
    )
    .unwrap();
    ctx.record_exec(ExecRecord::new("cargo test -p b", Some(0), "/w"))
        .unwrap();
    assert_eq!(
        ctx.unresolved().len(),
        1,
        "another package passing resolves nothing"
    );
    ctx.record_exec(ExecRecord::new(
        "cargo test -p a some_filter",
        Some(0),
        "/w",
    ))
    .unwrap();
    assert_eq!(ctx.unresolved().len(), 1, "a narrower run resolves nothing");
    ctx.record_exec(ExecRecord::new("cd /w && cargo test", Some(0), "/w"))
        .unwrap();
    assert!(ctx.unresolved().is_empty());
    let lf = ctx.last_failure().unwrap();
    assert_eq!((lf.seq, lf.resolved_by), (1, Some(4)));
}

#[test]
fn must_keep_items_survive_any_budget_that_fits_them() {
    let mut ctx = small(3_000, 0.5, 8);
    ctx.record_exec(
        ExecRecord::new("cargo clippy -- -D warnings", Some(101), "/w/p")
            .output("error: unneeded `return` statement\n --> src/lib.rs:3:5"),
    )
    .unwrap();
    for i in 0..300 {
        ctx.record_exec(run(i, 0)).unwrap();
    }
    ctx.record_exec(
        ExecRecord::new("pytest tests/test_a.py", Some(1), "/w/p/py")
            .output("FAILED tests/test_a.py::test_x - assert 1 == 2"),
    )
    .unwrap();
    for i in 0..40 {
        ctx.record_exec(run(i, 0)).unwrap();
    }
    assert!(ctx.get(1).unwrap().is_some() && ctx.archive().len() > 100);
    let mut smallest = None;
    for budget in (0..2_000).step_by(7) {
        match ctx.build(budget, None) {
            Ok(v) => {
                smallest.get_or_insert(budget);
                assert!(v.tokens_used <= budget);
                let real = ai_session_output::count_tokens(
                    &v.text,
                    ai_session_output::Encoding::O200kBase,
                );
                assert_eq!(real, v.tokens_used, "{}", v.text);
                for needle in [
                    "unneeded `return` statement",
                    "pytest tests/test_a.py",
                    "test_x",
                    "cwd /w/p",
                    "[last failure",
                ] {
                    assert!(
                        v.text.contains(needle),
                        "{needle} missing at {budget}:\n{}",
                        v.text
                    );
                }
            }
            Err(ContextError::BudgetTooSmall { needed, .. }) => assert!(needed > budget),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(smallest.unwrap() < 200);
}
