//! Sessions across a cluster, the parts that must survive a node: execs journaled before they
//! answer. A real `nats-server -js` on a loopback port, daemons with their own
//! `AI_SESSION_HOME`.

use super::cluster::{Nats, Node};
use super::harness::eventually;

/// SIGKILLs the node's daemon and reaps it.
fn kill(node: &mut Node) {
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(node.pid()).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill");
    if let Some(mut child) = node.child.take() {
        child.wait().ok();
    }
}

#[test]
fn every_exec_answered_before_a_sigkill_is_in_the_restored_history() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    // c checkpoints every 1.5 s: the execs below all answer within one interval of the kill.
    let mut c = Node::join_with(
        &nats,
        "c",
        "[cluster]\nheartbeat_secs = 1.5\nlease_secs = 3\n",
    );
    c.ok(&["new", "-s", "w"]);
    c.ok(&["exec", "-t", "w", "echo first"]);
    eventually(15, "a first checkpoint of w", || {
        a.json(&["ls"])["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "w" && s["checkpoint_ms"].is_u64())
    });
    const N: usize = 12;
    for i in 0..N {
        let r = c.env.exec("w", &format!("echo journal-{i}"));
        assert_eq!(r["exit_code"], 0, "{r}");
    }
    // At once: no heartbeat, no checkpoint after the last answer.
    kill(&mut c);

    eventually(15, "w lost", || a.json(&["ls"])["lost"][0]["name"] == "w");
    let info = a.json(&["restore", "--from-lost", "w"]);
    assert_eq!(info["name"], "w", "{info}");
    let history = super::store_bounds::rpc(
        &a.env,
        "session.history",
        serde_json::json!({"target": "w", "limit": 200}),
    );
    let commands: Vec<&str> = history["result"]["execs"]
        .as_array()
        .unwrap_or_else(|| panic!("{history}"))
        .iter()
        .map(|e| e["command"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = std::iter::once("echo first".to_string())
        .chain((0..N).map(|i| format!("echo journal-{i}")))
        .collect();
    assert_eq!(commands, expected, "each exec once, in order: {history}");
    // The restored session goes on: its next exec follows the replayed ones.
    let r = a.env.exec("w", "echo after");
    assert_eq!(r["exit_code"], 0, "{r}");
}
