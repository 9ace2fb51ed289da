//! The cluster's task changes as events on every node (`$system` through `events.subscribe`,
//! `$results`), each once per subscriber, and finished tasks pruned after
//! `[cluster] task_retention_secs`, a DAG's parent kept while its child needs it.

use serde_json::{Value, json};

use super::cluster::Nats;
use super::cluster_bus::{Node, SECRET};
use super::coord::Raw;
use super::harness::eventually;

fn agent(raw: &mut Raw, name: &str, caps: &[&str]) -> String {
    let reg = raw.ok(
        "agent.register",
        json!({"name": name, "capabilities": caps, "keep": true}),
    );
    reg["token"].as_str().expect("token").to_string()
}

fn submit(raw: &mut Raw, needs: &[&str], after: &[u64]) -> u64 {
    let t = raw.ok(
        "task.submit",
        json!({"description": "t", "needs": needs, "after": after}),
    );
    t["id"].as_u64().expect("id")
}

fn claim(raw: &mut Raw, token: &str) -> u64 {
    let r = raw.ok("task.claim", json!({"token": token, "wait_ms": 5000}));
    r["task"]["id"].as_u64().expect("a task")
}

/// The task events a subscriber gets until one for task `until`, as (task, state).
fn task_events(raw: &mut Raw, until: u64) -> Vec<(u64, String, Value)> {
    let mut out = Vec::new();
    loop {
        let n = raw.notification(20);
        let p = n["params"]["message"]["payload"].clone();
        if p["event"] != "task_state_changed" {
            continue;
        }
        let task = p["task"].as_u64().expect("task");
        out.push((task, p["state"].as_str().expect("state").to_string(), p));
        if task == until {
            return out;
        }
    }
}

#[test]
fn task_changes_reach_event_subscribers_on_every_node_once() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let b = Node::join(&nats, "b", SECRET);
    let mut events_a = a.raw();
    let mut events_b = b.raw();
    events_a.ok("events.subscribe", json!({}));
    events_b.ok("events.subscribe", json!({}));
    let mut results_a = a.raw();
    results_a.ok("bus.subscribe", json!({"topic": "$results"}));
    let mut on_a = a.raw();
    let mut on_b = b.raw();
    let worker = agent(&mut on_b, "worker", &["rust"]);
    let id = submit(&mut on_a, &["rust"], &[]);
    assert_eq!(claim(&mut on_b, &worker), id);
    on_a.ok(
        "task.fail",
        json!({"token": worker, "id": id, "reason": "flaky"}),
    );
    assert_eq!(claim(&mut on_b, &worker), id);
    on_b.ok(
        "task.done",
        json!({"token": worker, "id": id, "result": "built"}),
    );
    // A last task: an event given twice would come before its own.
    let last = submit(&mut on_b, &["other"], &[]);
    for events in [&mut events_a, &mut events_b] {
        let got = task_events(events, last);
        let states: Vec<(u64, &str)> = got.iter().map(|(t, s, _)| (*t, s.as_str())).collect();
        assert_eq!(
            states,
            vec![
                (id, "queued"),
                (id, "running"),
                (id, "queued"),
                (id, "running"),
                (id, "done"),
                (last, "queued"),
            ],
            "{got:?}"
        );
        assert_eq!(got[2].2["reason"], "flaky", "{got:?}");
        assert_eq!(got[4].2["result"], "built", "{got:?}");
        assert!(got[4].2["agent"].as_u64().is_some(), "{got:?}");
    }
    let n = results_a.notification(20);
    let p = &n["params"]["message"]["payload"];
    assert_eq!(
        (p["task"].as_u64(), &p["result"]),
        (Some(id), &json!("built")),
        "{n}"
    );
}

fn listed(node: &Node, id: u64) -> bool {
    let list = node.raw().ok("task.list", json!({}));
    list["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .any(|t| t["id"] == id)
}

#[test]
fn finished_tasks_are_pruned_after_the_retention_and_parents_kept_for_their_children() {
    let nats = Nats::start();
    let retention = "task_retention_secs = 1\n";
    let a = Node::join_with(&nats, "a", SECRET, retention);
    let b = Node::join_with(&nats, "b", SECRET, retention);
    let mut on_a = a.raw();
    let mut on_b = b.raw();
    let worker = agent(&mut on_a, "worker", &["rust"]);
    let parent = submit(&mut on_a, &["rust"], &[]);
    let alone = submit(&mut on_b, &["rust"], &[]);
    let child = submit(&mut on_b, &["later"], &[parent]);
    for _ in 0..2 {
        let id = claim(&mut on_a, &worker);
        on_a.ok(
            "task.done",
            json!({"token": worker, "id": id, "result": id}),
        );
    }
    // The task alone goes after the retention, on every node; the parent finished with it
    // stays while its child waits.
    eventually(20, "the finished task pruned on both nodes", || {
        !listed(&a, alone) && !listed(&b, alone)
    });
    let err = on_b
        .call("task.show", json!({"id": alone}))
        .expect_err("pruned");
    assert_eq!(err["data"]["reason"], "unknown_task", "{err}");
    for node in [&a, &b] {
        assert!(listed(node, parent), "the parent is kept for its child");
        assert!(listed(node, child));
    }
    // Once the child is done, both go.
    let finisher = agent(&mut on_b, "finisher", &["later"]);
    assert_eq!(claim(&mut on_b, &finisher), child);
    on_b.ok(
        "task.done",
        json!({"token": finisher, "id": child, "result": 0}),
    );
    eventually(20, "the parent and the child pruned", || {
        [&a, &b]
            .iter()
            .all(|n| !listed(n, parent) && !listed(n, child))
    });
    // The cluster goes on: new tasks get new ids.
    let next = submit(&mut on_a, &["rust"], &[]);
    assert!(next > child, "{next} after {child}");
}
