use ai_session_context::{ExecRecord, Role, SessionContext};
use ai_session_output::{Encoding, count_tokens};
use proptest::prelude::*;

use super::small;

#[derive(Debug, Clone)]
enum Op {
    Exec(String, i32, String),
    Msg(u8, String),
}

fn text() -> impl Strategy<Value = String> {
    // Leading spaces, slashes, newlines, brackets and non-ASCII: what could join tokens across
    // blocks if a block boundary were sloppy.
    proptest::string::string_regex("[ /\\[\\]\n\ta-zA-Z0-9:._é✓-]{0,120}").unwrap()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (text(), prop_oneof![Just(0), Just(1), Just(101)], text())
            .prop_map(|(c, e, o)| Op::Exec(c, e, o)),
        (0u8..3, text()).prop_map(|(r, t)| Op::Msg(r, t)),
    ]
}

fn apply(ctx: &mut SessionContext, ops: &[Op]) {
    for o in ops {
        match o {
            Op::Exec(c, e, out) => {
                ctx.record_exec(ExecRecord::new(c.clone(), Some(*e), "/w").output(out.clone()))
                    .unwrap();
            }
            Op::Msg(r, t) => {
                let role = [Role::User, Role::Assistant, Role::Note][*r as usize];
                ctx.add_message(role, t.clone(), None).unwrap();
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn views_count_exactly_and_fit(ops in proptest::collection::vec(op(), 1..80), budget in 50usize..3_000) {
        let mut ctx = small(1_000, 0.6, 6);
        apply(&mut ctx, &ops);
        if let Ok(v) = ctx.build(budget, None) {
            prop_assert!(v.tokens_used <= budget);
            prop_assert_eq!(count_tokens(&v.text, Encoding::O200kBase), v.tokens_used);
        }
        prop_assert!(ctx.tokens() <= ctx.config().threshold_tokens());
    }

    #[test]
    fn everything_survives_bytes(ops in proptest::collection::vec(op(), 1..60)) {
        let mut ctx = small(800, 0.5, 4);
        apply(&mut ctx, &ops);
        let back = SessionContext::from_bytes(&ctx.to_bytes().unwrap()).unwrap();
        for seq in 1..=ops.len() as u64 {
            let e = back.get(seq).unwrap();
            prop_assert!(e.is_some());
            prop_assert_eq!(e, ctx.get(seq).unwrap());
        }
    }
}
