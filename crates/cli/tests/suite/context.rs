//! `ai-session context`: every exec feeds the session's context; the budgeted view keeps what
//! must be kept; compression past the threshold loses nothing; tasks inherit.

use super::harness::Env;

fn view(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["context", "--json"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn execs_and_messages_feed_a_budgeted_context_that_keeps_failures_cwd_and_branch() {
    let env = Env::new();
    let repo = env.home.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let st = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("HOME", env.home.path())
            .output()
            .unwrap();
        assert!(st.status.success(), "git {args:?}");
    };
    git(&["init", "-q", "-b", "feature-x"]);
    env.ok(&["new", "-s", "w", "-c", &repo.display().to_string()]);
    env.exec("w", "echo hello > a.txt && mkdir -p sub");
    let r = env.exec("w", "ls /no/such/dir");
    assert_ne!(r["exit_code"], 0);
    env.exec("w", "cd sub");
    env.ok(&[
        "context", "add", "-t", "w", "--role", "user", "please", "list", "the", "dir",
    ]);

    let v = view(&env, &["-t", "w", "--budget", "2000"]);
    assert!(v["tokens_used"].as_u64().unwrap() <= 2000, "{v}");
    assert_eq!(v["workspace"]["git_branch"], "feature-x", "{v}");
    assert!(
        v["workspace"]["cwd"]
            .as_str()
            .unwrap()
            .ends_with("/repo/sub"),
        "{v}"
    );
    assert!(
        v["last_failure"].to_string().contains("ls /no/such/dir"),
        "{v}"
    );
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("please list the dir"), "{text}");
    // The human form is the rendered text.
    let human = env.ok(&["context", "-t", "w"]);
    assert!(human.contains("ls /no/such/dir"), "{human}");

    // Unknown sessions and bad input are clear errors.
    let out = env.run(&["context", "-t", "nope"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("w"),
        "lists sessions"
    );
    let out = env.run(&["context", "add", "-t", "w", "--role", "boss", "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("user, assistant or note"));
}

fn view_of(env: &Env, args: &[&str]) -> serde_json::Value {
    view(env, args)
}

#[test]
fn past_the_threshold_old_entries_are_folded_and_archived_but_nothing_is_lost() {
    let env = Env::new();
    env.ok(&["new", "-s", "c"]);
    let out = env.ok(&[
        "context",
        "config",
        "-t",
        "c",
        "--max-tokens",
        "1500",
        "--threshold",
        "0.5",
        "--window",
        "4",
        "--json",
    ]);
    let cfg: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cfg["config"]["max_tokens"], 1500);
    for i in 0..40 {
        env.exec("c", &format!("seq {i} {}; echo step-{i}", i + 30));
    }
    // The first command comes back whole from the archive.
    let first = env.ok(&["context", "show", "-t", "c", "1", "--json"]);
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["body"]["command"], "seq 0 30; echo step-0", "{first}");
    assert!(first["body"]["output"].as_str().unwrap().contains("step-0"));
    let stats = env.ok(&["context", "config", "-t", "c", "--json"]);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    assert!(
        stats["stats"]["compressions"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert!(
        stats["stats"]["entries_archived"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    let v = view_of(&env, &["-t", "c", "--budget", "4000"]);
    // The window keeps the most recent in full; older ones are summarised.
    assert!(v["text"].as_str().unwrap().contains("step-39"), "{v}");
    assert!(!v["summary"].as_array().unwrap().is_empty(), "{v}");
}

#[test]
fn a_sub_task_inherits_its_parents_context() {
    let env = Env::new();
    env.ok(&["new", "-s", "t"]);
    env.ok(&[
        "context",
        "task",
        "-t",
        "t",
        "release",
        "--title",
        "cut the release",
    ]);
    env.ok(&[
        "context",
        "add",
        "-t",
        "t",
        "--role",
        "note",
        "--task",
        "release",
        "the changelog lives in NOTES.md",
    ]);
    env.ok(&[
        "context",
        "task",
        "-t",
        "t",
        "tests",
        "--parent",
        "release",
        "--activate",
    ]);
    env.exec("t", "echo running-the-tests");
    let v = view_of(&env, &["-t", "t", "--task", "tests"]);
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("NOTES.md"),
        "the parent's note is inherited: {text}"
    );
    assert!(text.contains("running-the-tests"), "{text}");
    let out = env.run(&["context", "-t", "t", "--task", "no-such-task"]);
    assert!(!out.status.success());
}

#[test]
fn the_context_survives_a_snapshot_restore_and_a_daemon_restart() {
    let env = Env::new();
    env.ok(&["new", "-s", "k"]);
    env.exec("k", "echo remembered-output");
    env.ok(&[
        "context", "add", "-t", "k", "--role", "note", "keep", "this", "decision",
    ]);
    let snap = env.ok(&["snapshot", "-t", "k", "--label", "ctx", "--json"]);
    let snap: serde_json::Value = serde_json::from_str(&snap).unwrap();
    env.ok(&["restore", snap["id"].as_str().unwrap(), "-s", "k2"]);
    let text = env.ok(&["context", "-t", "k2"]);
    assert!(text.contains("keep this decision"), "{text}");
    assert!(text.contains("echo remembered-output"), "{text}");
    // A clean stop and the next daemon: the session comes back with its context.
    env.ok(&["daemon", "stop"]);
    let text = env.ok(&["context", "-t", "k"]);
    assert!(text.contains("keep this decision"), "{text}");
}

#[test]
fn an_agent_has_its_own_context_fed_by_its_execs() {
    let env = Env::new();
    let alice = env
        .ok(&["agent", "register", "alice", "--keep"])
        .trim()
        .to_string();
    let bob = env
        .ok(&["agent", "register", "bob", "--keep"])
        .trim()
        .to_string();
    let as_agent = |token: &str, args: &[&str]| {
        env.command(args)
            .env("AI_SESSION_TOKEN", token)
            .output()
            .unwrap()
    };
    assert!(as_agent(&alice, &["new", "-s", "a1"]).status.success());
    assert!(
        as_agent(&alice, &["exec", "-t", "a1", "echo from-alice"])
            .status
            .success()
    );
    let r = as_agent(
        &alice,
        &[
            "context",
            "add",
            "-t",
            "agent:alice",
            "--role",
            "note",
            "prefers",
            "small",
            "commits",
        ],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let mine = as_agent(&alice, &["context", "-t", "agent:alice"]);
    let text = String::from_utf8_lossy(&mine.stdout);
    assert!(text.contains("echo from-alice"), "{text}");
    assert!(text.contains("prefers small commits"), "{text}");
    // Bob may not read Alice's context; an unknown agent lists the registered ones.
    let r = as_agent(&bob, &["context", "-t", "agent:alice"]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("only agent 'alice'"));
    let r = env.run(&["context", "-t", "agent:nobody"]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("alice"));
}
