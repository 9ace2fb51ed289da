use ai_session_context::{ContextError, ExecRecord, Role};

use super::small;

fn ctx_with_tasks() -> ai_session_context::SessionContext {
    let mut ctx = small(50_000, 0.8, 64);
    ctx.create_task("root", None, Some("ship 1.0")).unwrap();
    ctx.create_task("child", Some("root"), None).unwrap();
    ctx.create_task("grandchild", Some("child"), None).unwrap();
    ctx.create_task("sibling", Some("root"), None).unwrap();
    ctx.add_message(Role::User, "root goal: ship version one", Some("root"))
        .unwrap();
    ctx.add_message(Role::Note, "child finding: parser is slow", Some("child"))
        .unwrap();
    ctx.add_message(
        Role::Note,
        "grandchild detail: cache the regex",
        Some("grandchild"),
    )
    .unwrap();
    ctx.add_message(
        Role::Note,
        "sibling detail: docs need a table",
        Some("sibling"),
    )
    .unwrap();
    ctx.add_message(Role::Note, "untasked: the machine has 2 cores", None)
        .unwrap();
    ctx
}

#[test]
fn a_task_inherits_its_ancestors_and_not_its_siblings() {
    let ctx = ctx_with_tasks();
    let v = ctx.build(2_000, Some("grandchild")).unwrap();
    assert_eq!(v.lineage, ["grandchild", "child", "root"]);
    for needle in ["root goal", "child finding", "grandchild detail", "2 cores"] {
        assert!(v.text.contains(needle), "{needle} missing:\n{}", v.text);
    }
    assert!(!v.text.contains("sibling detail"));
    // Without a task everything is eligible.
    assert!(
        ctx.build(2_000, None)
            .unwrap()
            .text
            .contains("sibling detail")
    );
}

#[test]
fn sub_task_entries_are_preferred() {
    let ctx = ctx_with_tasks();
    let v = ctx.build(2_000, Some("grandchild")).unwrap();
    let score = |needle: &str| {
        v.entries
            .iter()
            .find(|e| e.text.contains(needle))
            .unwrap()
            .score
    };
    assert!(score("grandchild detail") > score("child finding"));
    assert!(score("child finding") > score("2 cores"));
    // Under the tightest budget that shows the sub-task's entry, the ancestors' are left out.
    let tight = (10..400)
        .filter_map(|b| ctx.build(b, Some("grandchild")).ok())
        .find(|v| v.text.contains("grandchild detail"))
        .unwrap();
    assert!(!tight.text.contains("root goal"), "{}", tight.text);
}

#[test]
fn active_task_scopes_new_entries_and_unknown_tasks_fail() {
    let mut ctx = ctx_with_tasks();
    ctx.set_active_task(Some("sibling")).unwrap();
    let seq = ctx
        .record_exec(ExecRecord::new("make docs", Some(0), "/w"))
        .unwrap();
    assert_eq!(
        ctx.get(seq).unwrap().unwrap().task.as_deref(),
        Some("sibling")
    );
    assert!(matches!(
        ctx.build(1_000, Some("nope")),
        Err(ContextError::UnknownTask(_))
    ));
    assert!(matches!(
        ctx.set_active_task(Some("nope")),
        Err(ContextError::UnknownTask(_))
    ));
    assert!(matches!(
        ctx.create_task("root", Some("grandchild"), None),
        Err(ContextError::TaskCycle(_))
    ));
}
