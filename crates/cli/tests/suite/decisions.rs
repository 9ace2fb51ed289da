//! The decision tracker end to end: `decide` records, the session's next execs set the outcome,
//! `decide outcome` sets it by hand, `decisions stats` computes success rates and calibration,
//! the MCP tool `decision_record` (through the real `ai-session mcp`) records as an agent
//! would, and an encrypted store keeps the decisions' text sealed on disk.

use serde_json::{Value, json};

use super::harness::Env;
use super::tracing::Mcp;

fn decide(env: &Env, args: &[&str]) -> u64 {
    let mut all = vec!["decide"];
    all.extend_from_slice(args);
    env.ok(&all).trim().parse().expect("an id")
}

fn show(env: &Env, id: u64) -> Value {
    env.json(&["decisions", "show", &id.to_string()])
}

#[test]
fn execs_set_the_outcome_and_stats_score_the_confidence() {
    let env = Env::new();
    env.ok(&["new", "-s", "w"]);
    let first = decide(
        &env,
        &[
            "run the failing test alone",
            "--rationale",
            "the suite is flaky",
            "--confidence",
            "0.8",
            "--alternative",
            "rerun everything",
            "-t",
            "w",
        ],
    );
    let d = show(&env, first);
    assert_eq!(d["outcome"], "unknown");
    assert_eq!(d["alternatives"], json!(["rerun everything"]));

    env.exec("w", "true");
    let d = show(&env, first);
    assert_eq!(
        (d["outcome"].clone(), d["execs"].clone()),
        (json!("success"), json!(1))
    );
    env.exec("w", "false");
    let d = show(&env, first);
    assert_eq!(d["outcome"], "failure");
    assert_eq!(d["failed_execs"], 1);

    // Set by hand: it stops following the execs.
    let d = env.json(&[
        "decide",
        "outcome",
        &first.to_string(),
        "success",
        "--note",
        "fixed",
    ]);
    assert_eq!(d["explicit"], true);
    assert_eq!(d["note"], "fixed");
    env.exec("w", "false");
    assert_eq!(show(&env, first)["outcome"], "success");

    let second = decide(
        &env,
        &["delete the cache", "--confidence", "0.3", "-t", "w"],
    );
    env.exec("w", "false");
    assert_eq!(show(&env, second)["outcome"], "failure");

    let s = env.json(&["decisions", "stats"]);
    assert_eq!(
        (s["decisions"].clone(), s["decided"].clone()),
        (json!(2), json!(2))
    );
    // ((0.8 - 1)^2 + (0.3 - 0)^2) / 2
    let brier = s["brier"].as_f64().expect("brier");
    assert!((brier - 0.065).abs() < 1e-9, "{s}");
    let owner = &s["by_agent"][0];
    assert_eq!(owner["agent"], "(owner)");
    assert_eq!(owner["success_rate"], 0.5);
    assert_eq!(s["bins"].as_array().expect("bins").len(), 2);

    let listed = env.json(&["decisions", "ls"]);
    let ids: Vec<u64> = listed["decisions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, [first, second]);
}

#[test]
fn bad_decisions_are_refused_with_what_to_do() {
    let env = Env::new();
    env.ok(&["new", "-s", "w"]);
    let out = env.run(&["decide", "x", "--confidence", "1.5"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("confidence") && err.contains("between 0 and 1"),
        "{err}"
    );
    let out = env.run(&["decide", "x", "--confidence", "0.5", "-t", "nope"]);
    assert!(!out.status.success());
    let out = env.run(&["decisions", "show", "999"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("decisions ls"));
    // The daemon is still there.
    env.exec("w", "true");
}

#[test]
fn the_mcp_tool_records_a_decision() {
    let env = Env::new();
    env.ok(&["new", "-s", "w"]);
    let mut mcp = Mcp::start(&env);
    let r = mcp.call(
        3,
        "tools/call",
        json!({"name": "decision_record",
               "arguments": {"decision": "bisect the regression", "rationale": "two known-good tags",
                             "confidence": 0.6, "session": "w"}}),
    );
    let text = r["result"]["content"][0]["text"].as_str().expect("text");
    let d: Value = serde_json::from_str(text).expect("json");
    let id = d["id"].as_u64().expect("id");
    env.exec("w", "true");
    assert_eq!(show(&env, id)["outcome"], "success");
}

#[test]
fn an_encrypted_store_seals_the_decisions_text() {
    let env = Env::new();
    let out = env
        .command(&["new", "-s", "w"])
        .env("AI_SESSION_PASSPHRASE", "correct horse")
        .output()
        .expect("new");
    assert!(out.status.success(), "{out:?}");
    decide(
        &env,
        &[
            "rotate the key",
            "--rationale",
            "plaintext-canary-7731",
            "--confidence",
            "0.9",
        ],
    );
    let metadata = env.home.path().join("servers/t/store/metadata");
    let mut seen = 0;
    for entry in std::fs::read_dir(&metadata).expect("metadata") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("decisions.db") {
            seen += 1;
            let bytes = std::fs::read(&path).expect("read");
            assert!(
                !String::from_utf8_lossy(&bytes).contains("plaintext-canary-7731"),
                "{name} holds the rationale in clear"
            );
        }
    }
    assert!(seen >= 1, "no decisions database in {}", metadata.display());
    let listed = env.json(&["decisions", "ls"]);
    assert_eq!(listed["decisions"][0]["rationale"], "plaintext-canary-7731");
}

fn as_agent(env: &Env, token: &str, args: &[&str]) -> String {
    let out = env
        .command(args)
        .env("AI_SESSION_TOKEN", token)
        .output()
        .expect("run");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A decision made for a task follows the commands of the agent running the task, in any of
/// its sessions, until the task ends; its kind groups the stats.
#[test]
fn a_task_decision_follows_the_agent_running_the_task() {
    let env = Env::new();
    let token = env
        .ok(&["agent", "register", "w1", "--keep"])
        .trim()
        .to_owned();
    as_agent(&env, &token, &["new", "-s", "mine"]);
    env.ok(&["task", "submit", "fix the build"]);
    let claimed = env.ok(&["task", "claim", "--token", &token]);
    let task = claimed.split('\t').next().expect("task id").to_owned();
    let id: u64 = as_agent(
        &env,
        &token,
        &[
            "decide",
            "pin the compiler version",
            "--confidence",
            "0.6",
            "--task",
            &task,
            "--kind",
            "fix",
        ],
    )
    .trim()
    .parse()
    .expect("an id");
    let d = show(&env, id);
    assert_eq!(
        (d["kind"].clone(), d["agent"].clone()),
        (json!("fix"), json!("w1"))
    );
    assert!(
        d["task"]
            .as_str()
            .expect("task")
            .ends_with(task.trim_start_matches("task-"))
    );

    let failed = env
        .command(&["exec", "-t", "mine", "false"])
        .env("AI_SESSION_TOKEN", &token)
        .status()
        .expect("exec");
    assert_eq!(failed.code(), Some(1));
    let d = show(&env, id);
    assert_eq!(
        (d["outcome"].clone(), d["execs"].clone()),
        (json!("failure"), json!(1)),
        "{d}"
    );
    // Another agent's commands, and the owner's, are not this task's.
    env.ok(&["new", "-s", "other"]);
    env.exec("other", "true");
    assert_eq!(show(&env, id)["execs"], 1);

    env.ok(&["task", "done", &task, "--result", "ok", "--token", &token]);
    as_agent(&env, &token, &["exec", "-t", "mine", "true"]);
    let d = show(&env, id);
    assert_eq!(
        (d["outcome"].clone(), d["execs"].clone()),
        (json!("failure"), json!(1)),
        "a command after the task ended is not linked: {d}"
    );

    let s = env.json(&["decisions", "stats"]);
    let fix = s["by_kind"]
        .as_array()
        .expect("by_kind")
        .iter()
        .find(|k| k["kind"] == "fix")
        .expect("the fix kind")
        .clone();
    assert_eq!(
        (fix["decisions"].clone(), fix["failure"].clone()),
        (json!(1), json!(1))
    );
    let listed = env.json(&["decisions", "ls", "--kind", "fix"]);
    assert_eq!(listed["decisions"].as_array().expect("list").len(), 1);

    for (args, says) in [
        (["--kind", "Not A Label"], "kind"),
        (["--task", "task-999"], "no task"),
    ] {
        let mut all = vec!["decide", "x", "--confidence", "0.5"];
        all.extend(args);
        let out = env.run(&all);
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success() && text.contains(says), "{text}");
    }
}

/// A session decision keys on the session's id: a new session under the name does not
/// inherit it.
#[test]
fn a_session_decision_does_not_pass_to_a_later_session_with_its_name() {
    let env = Env::new();
    env.ok(&["new", "-s", "w"]);
    let id = decide(
        &env,
        &["retry with a clean cache", "--confidence", "0.5", "-t", "w"],
    );
    env.ok(&["kill", "-t", "w"]);
    env.ok(&["new", "-s", "w"]);
    env.exec("w", "false");
    let d = show(&env, id);
    assert_eq!(
        (d["outcome"].clone(), d["execs"].clone()),
        (json!("unknown"), json!(0)),
        "{d}"
    );
}
