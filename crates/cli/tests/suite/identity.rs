//! A grant names one session and one agent, for as long as they exist: a later session with
//! the same name, or a later agent, never inherits it.

use std::process::Output;

use super::harness::Env;

fn as_token(env: &Env, token: &str, args: &[&str]) -> Output {
    env.command(args)
        .env("AI_SESSION_TOKEN", token)
        .output()
        .unwrap()
}

fn agent(env: &Env, name: &str) -> (String, String) {
    let token = env
        .ok(&["agent", "register", name, "--keep"])
        .trim()
        .to_string();
    let id = token.split('.').next().unwrap().to_string();
    (token, id)
}

#[test]
fn a_grant_for_a_killed_session_does_not_reach_its_namesake() {
    let env = Env::new();
    env.ok(&["new", "-s", "deploy"]);
    env.exec("deploy", "echo first-deploy");
    let (token, id) = agent(&env, "reader");
    env.ok(&[
        "access",
        "grant",
        &format!("agent:{id}"),
        "session:read:deploy",
    ]);
    let r = as_token(&env, &token, &["read", "-t", "deploy", "--since", "0"]);
    assert!(r.status.success(), "{r:?}");
    env.ok(&["kill", "-t", "deploy"]);
    env.ok(&["new", "-s", "deploy"]);
    env.exec("deploy", "echo second-deploy-secret");
    let r = as_token(&env, &token, &["read", "-t", "deploy", "--since", "0"]);
    assert!(
        !r.status.success(),
        "the old grant reached the new session: {r:?}"
    );
    assert!(!String::from_utf8_lossy(&r.stdout).contains("second-deploy-secret"));
    assert!(!env.ok(&["access", "ls"]).contains("session:read:deploy"));
}

#[test]
fn an_agent_registered_after_a_restart_gets_a_new_id_and_nothing_of_the_old_one() {
    let env = Env::new();
    env.ok(&["new", "-s", "private"]);
    let (_, old_id) = agent(&env, "first");
    env.ok(&[
        "access",
        "grant",
        &format!("agent:{old_id}"),
        "session:read:private",
    ]);
    env.ok(&["daemon", "stop"]);
    // A fresh daemon (started by the next command) hands out ids after the old ones.
    env.ok(&["ls"]);
    let (token, new_id) = agent(&env, "second");
    assert_ne!(new_id, old_id, "agent ids were reused across a restart");
    assert!(new_id.parse::<u64>().unwrap() > old_id.parse::<u64>().unwrap());
    let r = as_token(&env, &token, &["read", "-t", "private"]);
    assert!(!r.status.success(), "{r:?}");
}

#[test]
fn an_agent_that_leaves_takes_its_grants_with_it() {
    let env = Env::new();
    env.ok(&["new", "-s", "work"]);
    // Registered without --keep: the agent lives while `agent register` runs.
    let mut child = env
        .command(&["agent", "register", "temp"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let id = line.trim().split('.').next().unwrap().to_string();
    assert!(id.parse::<u64>().is_ok(), "no token: {line:?}");
    env.ok(&[
        "access",
        "grant",
        &format!("agent:{id}"),
        "session:read:work",
    ]);
    assert!(env.ok(&["access", "ls"]).contains("session:read:work"));
    child.kill().unwrap();
    child.wait().unwrap();
    super::harness::eventually(20, "the grant to go", || {
        !env.ok(&["access", "ls"]).contains("session:read:work")
    });
}

/// Every session has an immutable id: a new session under an old name gets a new one, and
/// the audit log names the session by it, so entries about two sessions that shared a name
/// are told apart. A policy-bound agent choosing its workspace scores as a workspace change.
#[test]
fn sessions_have_ids_names_do_not_and_the_audit_log_says_which() {
    let env = Env::outside_tmp();
    let first = env.json(&["new", "-s", "w"]);
    let first_id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(first_id.len(), 32, "{first}");
    env.exec("w", "echo one");
    env.ok(&["kill", "-t", "w"]);
    let second = env.json(&["new", "-s", "w"]);
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_ne!(first_id, second_id);
    env.exec("w", "echo two");

    let ws = env.home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let token = env
        .ok(&["agent", "register", "mover", "--keep"])
        .trim()
        .to_string();
    let agent = token.split('.').next().unwrap().to_string();
    env.ok(&["access", "policy", &format!("agent:{agent}"), "read-only"]);
    let out = env
        .command(&["new", "-s", "moved", "-c", ws.to_str().unwrap(), "--json"])
        .env("AI_SESSION_TOKEN", &token)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let out = env.run(&["audit", "ls", "--json"]);
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = entries.as_array().unwrap();
    let exec_of = |marker: &str| {
        entries
            .iter()
            .find(|e| e["action"] == "session.exec" && e["detail"] == marker)
            .unwrap_or_else(|| panic!("no exec {marker} in {entries:?}"))
            .clone()
    };
    assert_eq!(exec_of("echo one")["session_id"], first_id.as_str());
    assert_eq!(exec_of("echo two")["session_id"], second_id.as_str());
    let moved = entries
        .iter()
        .find(|e| e["action"] == "session.new" && e["session"] == "moved")
        .unwrap_or_else(|| panic!("no session.new of moved in {entries:?}"));
    assert!(
        moved["session_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{moved}"
    );
    assert!(moved["risk"].as_u64().unwrap() >= 20, "{moved}");
}
