//! Session directories made ahead of time (`crates/core/src/spare.rs`): a `new` renames one
//! into place instead of creating its files, each with a secret of its own, and a daemon that
//! stops leaves none behind.

use std::path::Path;

use super::harness::{Env, eventually};

fn spares(sessions: &Path) -> Vec<String> {
    std::fs::read_dir(sessions)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".spare-"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn new_sessions_take_directories_made_ahead_and_each_keeps_its_own_marks() {
    let env = Env::new();
    let sessions = env.home.path().join("servers/t/sessions");
    env.ok(&["new", "-s", "first"]);
    // The first `new` makes spares for the next ones.
    eventually(20, "spare directories made", || {
        spares(&sessions).len() == 2
    });
    let ready = spares(&sessions);
    env.ok(&["new", "-s", "second"]);
    let left = spares(&sessions);
    assert!(
        ready.iter().any(|s| !left.contains(s)),
        "the second session took a spare: before {ready:?}, after {left:?}"
    );
    for s in ["first", "second"] {
        let r = env.exec(s, &format!("echo from-{s}"));
        assert_eq!(r["exit_code"], 0, "{r}");
        assert_eq!(r["output"], format!("from-{s}\n"), "{r}");
        assert_eq!(r["completion"], "osc133", "{r}");
        assert!(sessions.join(s).join("log").is_dir());
    }
    env.ok(&["daemon", "stop"]);
    assert!(
        spares(&sessions).is_empty(),
        "a stopped daemon leaves spares: {:?}",
        spares(&sessions)
    );
}
