//! Placement by sandbox policy: a session started without `--node` goes only to a node that
//! runs its sandbox policy (`[cluster] sandbox_policies`, published in each node record), two
//! daemons of different abilities on a real `nats-server -js`.

use serde_json::Value;

use super::cluster::Nats;
use super::harness::Env;

/// A node whose state lives outside `/tmp` (a sandboxed session has a private `/tmp`).
fn node(nats: &Nats, name: &str, extra: &str) -> Env {
    let env = Env::outside_tmp();
    let config = format!(
        "[cluster]\nurl = \"{}\"\nnode = \"{name}\"\nheartbeat_secs = 0.5\nlease_secs = 3\n{extra}",
        nats.url
    );
    std::fs::write(env.home.path().join("config.toml"), config).expect("config");
    env.ok(&["daemon", "start"]);
    env
}

/// The node a session of `ls --json` runs on.
fn node_of(env: &Env, session: &str) -> String {
    let v = env.json(&["ls"]);
    let sessions = v["sessions"].as_array().expect("sessions");
    let s = sessions
        .iter()
        .find(|s| s["name"] == session)
        .unwrap_or_else(|| panic!("{session} not listed: {v}"));
    s["node"].as_str().expect("node").to_string()
}

#[test]
fn a_session_goes_only_to_a_node_that_runs_its_sandbox() {
    let nats = Nats::start();
    // Node a takes no sandboxed session by placement; node b takes read-only and custom.
    let a = node(&nats, "a", "sandbox_policies = []\n");
    let b = node(
        &nats,
        "b",
        "sandbox_policies = [\"read-only\", \"custom\"]\n",
    );
    let nodes = a.json(&["nodes"]);
    let record = |name: &str| -> Value {
        nodes["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["node"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: {nodes}"))
    };
    assert_eq!(record("a")["sandbox"]["policies"], serde_json::json!([]));
    assert_eq!(
        record("b")["sandbox"]["policies"],
        serde_json::json!(["read-only", "custom"])
    );
    // Unconfined: equal nodes keep the session on the node asked.
    a.ok(&["new", "-s", "plain", "--shell", "/bin/sh"]);
    assert_eq!(node_of(&a, "plain"), "a");
    // Sandboxed, through node a: on node b, the only one that runs it.
    a.ok(&[
        "new",
        "-s",
        "boxed",
        "--policy",
        "read-only",
        "--shell",
        "/bin/sh",
    ]);
    assert_eq!(node_of(&a, "boxed"), "b");
    let shown = b.json(&["ls"]);
    let boxed = shown["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["name"] == "boxed")
        .cloned()
        .expect("boxed");
    assert_eq!(boxed["sandbox"]["policy"], "read-only", "{boxed}");
    // A policy given in TOML counts as `custom`.
    let policy = a.home.path().join("p.toml");
    std::fs::write(
        &policy,
        "allow_degrade = true\nnetwork = \"none\"\n[fs]\n\
         read = [\"/usr\", \"/bin\", \"/lib\", \"/lib64\", \"/etc\", \"/proc\", \"/dev\"]\n\
         write = [\"/dev/null\", \"/dev/tty\", \"/dev/pts\"]\n\
         execute = [\"/usr\", \"/bin\", \"/lib\", \"/lib64\"]\n",
    )
    .expect("policy");
    a.ok(&[
        "new",
        "-s",
        "custom",
        "--policy",
        policy.to_str().expect("path"),
        "--shell",
        "/bin/sh",
    ]);
    assert_eq!(node_of(&a, "custom"), "b");
    // No node runs no-network: refused, each node's offer named.
    let out = a.run(&[
        "new",
        "-s",
        "nowhere",
        "--policy",
        "no-network",
        "--shell",
        "/bin/sh",
    ]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no live node runs sandbox policy 'no-network'"),
        "{said}"
    );
    assert!(said.contains("b: read-only custom"), "{said}");
    assert!(said.contains("sandbox_policies"), "{said}");
    // `--node` places it where it is told.
    a.ok(&[
        "new",
        "-s",
        "told",
        "--policy",
        "no-network",
        "--node",
        "a",
        "--shell",
        "/bin/sh",
    ]);
    assert_eq!(node_of(&b, "told"), "a");
}

#[test]
fn an_unknown_policy_name_in_the_settings_stops_the_node() {
    let nats = Nats::start();
    let env = Env::new();
    let config = format!(
        "[cluster]\nurl = \"{}\"\nnode = \"x\"\nsandbox_policies = [\"read-only\", \"strict\"]\n",
        nats.url
    );
    std::fs::write(env.home.path().join("config.toml"), config).expect("config");
    let out = env.run(&["daemon", "run"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("sandbox_policies names 'strict'") && said.contains("no-network"),
        "{said}"
    );
}
