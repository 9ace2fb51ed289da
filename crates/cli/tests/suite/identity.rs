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

fn api_token(env: &Env, caps: &[&str]) -> String {
    let mut args = vec!["access", "token", "--json"];
    for c in caps {
        args.extend(["--cap", c]);
    }
    let made: serde_json::Value = serde_json::from_str(&env.ok(&args)).unwrap();
    made["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {made}"))
        .to_owned()
}

fn session_id(env: &Env, name: &str) -> Option<String> {
    let list = env.json(&["ls"]);
    list["sessions"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)?["id"]
        .as_str()
        .map(str::to_owned)
}

/// The session's shell exits by itself (no `kill`: nothing revokes anything).
fn exit_shell(env: &Env, name: &str) {
    env.ok(&["send", "-t", name, "exit", "Enter"]);
    super::harness::eventually(20, "the shell to exit", || {
        env.json(&["ls"])["sessions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == name && s["state"] == "exited")
    });
}

/// What an import a SIGKILL cut between writing its record and starting its shell leaves: a
/// `restored` record named `name` that the next daemon brings back (no `session.new`, no
/// import answered: nothing revoked on the name). Written with the store crate while no
/// daemon runs, from an export file.
fn leave_cut_import(env: &Env, export: &[u8], name: &str) {
    let store = ai_session_store::Store::open(
        env.home.path().join("servers/t/store"),
        ai_session_store::Options::default(),
    )
    .expect("open the store");
    let pending = store
        .decode_import(export, std::path::Path::new("deploy.export"))
        .expect("decode");
    store
        .commit_import(
            pending,
            Some(name),
            Some(ai_session_store::SessionStatus::Restored),
        )
        .expect("commit");
}

/// A capability granted on `deploy` is bound to that session's id: it keeps working when the
/// same session comes back after a restart (same id), and does not reach another `deploy` that
/// a later daemon brings back from its store, a path on which nothing revokes on the name.
#[test]
fn a_grant_binds_to_the_session_id_across_restarts_and_cut_imports() {
    let env = Env::new();
    let first = env.json(&["new", "-s", "deploy"]);
    let first_id = first["id"].as_str().unwrap().to_owned();
    let token = api_token(&env, &["session:exec:deploy", "session:list"]);
    let r = as_token(&env, &token, &["exec", "-t", "deploy", "echo granted-one"]);
    assert!(r.status.success(), "{r:?}");
    let export = env.run(&["export", "-t", "deploy"]).stdout;
    assert!(!export.is_empty());

    // The same session after a restart: same id, the grant still reaches it.
    env.ok(&["daemon", "stop"]);
    let kept_id = session_id(&env, "deploy");
    let r = as_token(&env, &token, &["exec", "-t", "deploy", "echo granted-two"]);
    assert!(r.status.success(), "{r:?}");

    // The session ends on its own; a later daemon brings back another `deploy`.
    exit_shell(&env, "deploy");
    env.ok(&["daemon", "stop"]);
    leave_cut_import(&env, &export, "deploy");
    let second = session_id(&env, "deploy").expect("the other deploy came back");
    assert_ne!(second, first_id);
    let r = as_token(&env, &token, &["exec", "-t", "deploy", "echo stolen"]);
    assert!(
        !r.status.success(),
        "a grant for one deploy reached another: {r:?}"
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("lacks the capability session:exec:deploy"),
        "{err}"
    );
    // Listing: the token sees only the sessions it may read (none now).
    let listed = as_token(&env, &token, &["ls"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("deploy"));
    assert_eq!(
        kept_id.as_deref(),
        Some(first_id.as_str()),
        "a session brought back by a restart keeps its id"
    );
}

/// A capability naming a session that does not exist has nothing to bind to: refused, with
/// what to do, for grants and for new tokens alike. `access ls` shows what a capability is
/// bound to: the session's name and its id.
#[test]
fn a_grant_for_a_missing_session_is_refused_and_access_ls_shows_ids() {
    let env = Env::new();
    let (_, id) = agent(&env, "planner");
    let who = format!("agent:{id}");
    let r = env.run(&["access", "grant", &who, "session:exec:ghost"]);
    assert!(!r.status.success(), "{r:?}");
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("no session 'ghost'"), "{err}");
    assert!(err.contains("new -s ghost"), "{err}");
    let r = env.run(&["access", "token", "--cap", "session:read:ghost"]);
    assert!(!r.status.success(), "{r:?}");
    // Wildcards bind to nothing and are fine; so is a snapshot capability naming an id.
    env.ok(&["access", "grant", &who, "session:read:*"]);

    let made = env.json(&["new", "-s", "ghost"]);
    let ghost_id = made["id"].as_str().unwrap();
    env.ok(&["access", "grant", &who, "session:exec:ghost"]);
    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["access", "ls", "--json"])).unwrap();
    let me = listed["principals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["principal"] == who.as_str())
        .unwrap_or_else(|| panic!("{listed}"))
        .clone();
    assert!(
        me["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "session:exec:ghost"),
        "{me}"
    );
    assert_eq!(me["sessions"][0]["session"], "ghost", "{me}");
    assert_eq!(me["sessions"][0]["session_id"], ghost_id, "{me}");
    let text = env.ok(&["access", "ls"]);
    assert!(
        text.contains(&format!("session:exec:ghost (session id {ghost_id})")),
        "{text}"
    );
    // Revoked by the name it was granted with.
    env.ok(&["access", "revoke", &who, "session:exec:ghost"]);
    assert!(!env.ok(&["access", "ls"]).contains("session:exec:ghost"));
}

/// An agent's own context is keyed on its id, never its name: a later agent registering
/// under the same name starts with an empty one.
#[test]
fn an_agent_context_does_not_pass_to_a_later_agent_with_its_name() {
    let env = Env::new();
    let (first, _) = agent(&env, "worker");
    let r = as_token(&env, &first, &["new", "-s", "w1"]);
    assert!(r.status.success(), "{r:?}");
    let r = as_token(
        &env,
        &first,
        &["exec", "-t", "w1", "echo first-agent-secret"],
    );
    assert!(r.status.success(), "{r:?}");
    let mine = as_token(&env, &first, &["context", "-t", "agent:worker"]);
    assert!(String::from_utf8_lossy(&mine.stdout).contains("first-agent-secret"));
    let r = env
        .command(&["agent", "unregister"])
        .env("AI_SESSION_AGENT_TOKEN", &first)
        .output()
        .unwrap();
    assert!(r.status.success(), "{r:?}");

    let (second, _) = agent(&env, "worker");
    let theirs = as_token(&env, &second, &["context", "-t", "agent:worker"]);
    assert!(theirs.status.success(), "{theirs:?}");
    let text = String::from_utf8_lossy(&theirs.stdout);
    assert!(!text.contains("first-agent-secret"), "{text}");
}

/// A session's context is keyed on its id: it comes back with the session after a restart,
/// and a new session under the same name starts empty.
#[test]
fn a_session_context_follows_its_id() {
    let env = Env::new();
    env.ok(&["new", "-s", "deploy"]);
    env.exec("deploy", "echo context-of-the-first");
    env.ok(&["daemon", "stop"]);
    let ctx = env.ok(&["context", "-t", "deploy"]);
    assert!(ctx.contains("context-of-the-first"), "{ctx}");
    env.ok(&["kill", "-t", "deploy"]);
    env.ok(&["new", "-s", "deploy"]);
    let ctx = env.ok(&["context", "-t", "deploy"]);
    assert!(!ctx.contains("context-of-the-first"), "{ctx}");
}
