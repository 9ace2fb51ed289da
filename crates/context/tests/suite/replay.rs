use ai_session_context::ContextConfig;
use ai_session_output::{Encoding, count_tokens};

use crate::fixture;

#[test]
fn recorded_session_keeps_its_must_keep_facts_at_every_budget() {
    let facts = fixture::facts();
    assert!(facts.execs >= 200, "the fixture has hundreds of execs");
    let ctx = fixture::replay(ContextConfig {
        max_tokens: 16_000,
        ..ContextConfig::default()
    })
    .unwrap();
    assert!(
        ctx.stats().compressions > 0,
        "the replay passes the threshold"
    );
    for task in [None, Some("t-py")] {
        for budget in [1_000, 4_000, 16_000] {
            let v = ctx.build(budget, task).unwrap();
            assert!(v.tokens_used <= budget);
            assert_eq!(count_tokens(&v.text, Encoding::O200kBase), v.tokens_used);
            for (fact, kept) in fixture::kept(&facts, &v.text) {
                assert!(
                    !fact.must || kept,
                    "{} lost at {budget}:\n{}",
                    fact.id,
                    v.text
                );
            }
        }
    }
    let v = ctx.build(4_000, None).unwrap();
    assert_eq!(v.workspace.git_branch.as_deref(), Some("fix/unicode-slugs"));
    assert!(
        v.learned
            .iter()
            .any(|p| p.text == "`cargo test` needs `--features unicode`")
    );
    let lf = v.last_failure.unwrap();
    assert!(
        lf.command
            .starts_with("python -m pytest -q tests/test_slug.py")
    );
}

#[test]
fn json_view_has_the_structured_parts() {
    let ctx = fixture::replay(ContextConfig::default()).unwrap();
    let v = ctx.build(4_000, Some("t-rust")).unwrap();
    let json = serde_json::to_value(&v).unwrap();
    for key in [
        "owner",
        "task",
        "lineage",
        "budget",
        "tokens_used",
        "workspace",
        "last_failure",
        "entries",
        "text",
    ] {
        assert!(json.get(key).is_some(), "{key} missing");
    }
    assert_eq!(json["lineage"], serde_json::json!(["t-rust", "t-root"]));
}
