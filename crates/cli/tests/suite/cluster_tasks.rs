//! Tasks across a cluster: submitted on any node, claimed by agents of any node by
//! capability and priority, released along their dependencies, redelivered when the node
//! holding one dies, and never lost nor done twice under many agents on three nodes.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::cluster::Nats;
use super::cluster_bus::{Node, SECRET};
use super::coord::Raw;
use super::harness::alive;

fn agent(raw: &mut Raw, name: &str, caps: &[&str]) -> String {
    let reg = raw.ok(
        "agent.register",
        json!({"name": name, "capabilities": caps, "keep": true}),
    );
    reg["token"].as_str().expect("token").to_string()
}

fn submit(raw: &mut Raw, description: &str, needs: &[&str], after: &[u64]) -> u64 {
    let t = raw.ok(
        "task.submit",
        json!({"description": description, "needs": needs, "after": after}),
    );
    t["id"].as_u64().expect("id")
}

/// Claims as the agent, waiting up to `wait_ms`; the task, if any.
fn claim(raw: &mut Raw, token: &str, wait_ms: u64) -> Option<Value> {
    let r = raw.ok("task.claim", json!({"token": token, "wait_ms": wait_ms}));
    let task = r["task"].clone();
    (!task.is_null()).then_some(task)
}

fn done(raw: &mut Raw, token: &str, id: u64, result: Value) -> Value {
    raw.ok(
        "task.done",
        json!({"token": token, "id": id, "result": result}),
    )["task"]
        .clone()
}

#[test]
fn a_task_dag_runs_across_two_nodes_by_capability() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let b = Node::join(&nats, "b", SECRET);
    let mut on_a = a.raw();
    let mut on_b = b.raw();
    let builder = agent(&mut on_a, "builder", &["rust"]);
    let tester = agent(&mut on_b, "tester", &["test"]);
    let build = submit(&mut on_a, "build", &["rust"], &[]);
    let check = submit(&mut on_b, "test", &["test"], &[build]);
    let ship = submit(&mut on_a, "ship", &["rust"], &[check]);
    // The tester cannot take the build, nor its own task before the build is done.
    assert_eq!(claim(&mut on_b, &tester, 300), None);
    let t = claim(&mut on_a, &builder, 5000).expect("the build");
    assert_eq!(t["id"], build);
    // Held: no one else claims it, and only its holder reports it.
    let err = on_b
        .call(
            "task.done",
            json!({"token": tester, "id": build, "result": 1}),
        )
        .expect_err("not the holder");
    assert_eq!(err["data"]["reason"], "not_task_holder", "{err}");
    assert_eq!(
        done(&mut on_a, &builder, build, json!("built"))["state"],
        "done"
    );
    let t = claim(&mut on_b, &tester, 5000).expect("the test, released by the build");
    assert_eq!(t["id"], check);
    // The builder's next task waits for the test.
    assert_eq!(claim(&mut on_a, &builder, 300), None);
    done(&mut on_b, &tester, check, json!("passed"));
    let t = claim(&mut on_a, &builder, 5000).expect("the ship");
    assert_eq!(t["id"], ship);
    done(&mut on_a, &builder, ship, json!("shipped"));
    // Every node sees the same tasks, all done once.
    for raw in [&mut on_a, &mut on_b] {
        let list = raw.ok("task.list", json!({}));
        let tasks = list["tasks"].as_array().expect("tasks");
        assert_eq!(tasks.len(), 3, "{list}");
        for t in tasks {
            assert_eq!(t["state"], "done", "{list}");
            assert_eq!(t["attempts"], 1, "{list}");
        }
    }
    // Priority: the more urgent of two ready tasks is claimed first.
    let low = on_a.ok(
        "task.submit",
        json!({"description": "low", "needs": ["rust"], "priority": 1}),
    )["id"]
        .clone();
    let high = on_b.ok(
        "task.submit",
        json!({"description": "high", "needs": ["rust"], "priority": 9}),
    )["id"]
        .clone();
    // Node a's view has both (a claim chooses from the node's view, milliseconds behind the
    // cluster; `task.list` answers once it holds every change made before it).
    let listed = on_a.ok("task.list", json!({"state": "queued"}));
    assert_eq!(
        listed["tasks"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
    let t = claim(&mut on_a, &builder, 5000).expect("a task");
    assert_eq!(t["id"], high, "low is {low}");
    // The builder (of node a) reports through node b, and claims there too.
    assert_eq!(
        done(&mut on_b, &builder, t["id"].as_u64().expect("id"), json!(1))["state"],
        "done"
    );
    let t = claim(&mut on_b, &builder, 5000).expect("the low task, through node b");
    assert_eq!(t["id"], low);
}

#[test]
fn a_task_of_a_killed_node_is_redelivered_and_done_once() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let b = Node::join(&nats, "b", SECRET);
    let mut on_a = a.raw();
    let mut on_b = b.raw();
    let doomed = agent(&mut on_a, "doomed", &["work"]);
    let survivor = agent(&mut on_b, "survivor", &["work"]);
    let id = submit(&mut on_b, "job", &["work"], &[]);
    let t = claim(&mut on_a, &doomed, 5000).expect("the job");
    assert_eq!(t["id"], id);
    let pid = a.env.daemon_pid();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    super::harness::eventually(10, "node a to die", || !alive(pid));
    // Redelivered once the lease (3 s) lapses.
    let t = claim(&mut on_b, &survivor, 15_000).expect("the job, redelivered");
    assert_eq!(t["id"], id);
    assert_eq!(t["attempts"], 2, "{t}");
    let t = done(&mut on_b, &survivor, id, json!("ok"));
    assert_eq!(t["state"], "done");
    let survivor_id: u64 = survivor
        .split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("id");
    assert_eq!(t["agent"], survivor_id, "{t}");
    let list = on_b.ok("task.list", json!({"state": "done"}));
    assert_eq!(list["tasks"].as_array().expect("tasks").len(), 1, "{list}");
    drop(on_a);
}

#[test]
fn many_agents_on_three_nodes_do_every_task_once() {
    const TASKS: u64 = 10_000;
    const AGENTS: usize = 100;
    let nats = Nats::start();
    let nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| Node::join(&nats, n, SECRET))
        .collect();
    // Submitted through the three nodes at once.
    std::thread::scope(|s| {
        for (i, node) in nodes.iter().enumerate() {
            s.spawn(move || {
                let mut raw = node.raw();
                for n in 0..TASKS / 3 + u64::from(i == 0) * (TASKS % 3) {
                    submit(&mut raw, &format!("t{i}-{n}"), &["work"], &[]);
                }
            });
        }
    });
    let done_ids: Vec<Vec<u64>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..AGENTS)
            .map(|n| {
                let node = &nodes[n % 3];
                s.spawn(move || {
                    let mut raw = node.raw();
                    let token = agent(&mut raw, &format!("w{n}"), &["work"]);
                    let mut mine = Vec::new();
                    while let Some(t) = claim_work(&mut raw, &token) {
                        let id = t["id"].as_u64().expect("id");
                        done(&mut raw, &token, id, json!(n));
                        mine.push(id);
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("worker"))
            .collect()
    });
    let all: Vec<u64> = done_ids.iter().flatten().copied().collect();
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len() as u64, TASKS, "each task done once");
    assert_eq!(unique.len() as u64, TASKS, "no task done twice");
    let list = nodes[1].raw().ok("task.list", json!({"state": "done"}));
    assert_eq!(list["tasks"].as_array().expect("tasks").len() as u64, TASKS);
}

/// The next task for a worker, waiting a little: none once every task is taken.
fn claim_work(raw: &mut Raw, token: &str) -> Option<Value> {
    claim(raw, token, Duration::from_millis(1500).as_millis() as u64)
}

#[test]
fn a_failing_task_retries_on_any_node_then_is_dead_lettered() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let b = Node::join(&nats, "b", SECRET);
    let mut on_a = a.raw();
    let mut on_b = b.raw();
    let flaky_a = agent(&mut on_a, "flaky-a", &["work"]);
    let flaky_b = agent(&mut on_b, "flaky-b", &["work"]);
    let t = on_a.ok(
        "task.submit",
        json!({"description": "doomed", "needs": ["work"], "max_retries": 1}),
    );
    let id = t["id"].as_u64().expect("id");
    let child = submit(&mut on_b, "after doomed", &["work"], &[id]);
    // First attempt on node a fails; the retry (after the backoff) goes to node b's agent.
    assert_eq!(
        claim(&mut on_a, &flaky_a, 5000).expect("attempt 1")["id"],
        id
    );
    let t = on_a.ok(
        "task.fail",
        json!({"token": flaky_a, "id": id, "reason": "boom"}),
    )["task"]
        .clone();
    assert_eq!(t["state"], "queued", "{t}");
    assert_eq!(
        claim(&mut on_a, &flaky_a, 0),
        None,
        "held back by the backoff"
    );
    let t = claim(&mut on_b, &flaky_b, 10_000).expect("attempt 2");
    assert_eq!(
        (t["id"].as_u64(), t["attempts"].as_u64()),
        (Some(id), Some(2))
    );
    let t = on_b.ok(
        "task.fail",
        json!({"token": flaky_b, "id": id, "reason": "boom again"}),
    )["task"]
        .clone();
    assert_eq!(t["state"], "dead_lettered", "{t}");
    let c = on_a.ok("task.show", json!({"id": child}))["task"].clone();
    assert_eq!(c["state"], "failed", "{c}");
    super::harness::eventually(15, "the task in the cluster's dead letters", || {
        let v = on_a.ok("bus.dead_letters", json!({}));
        v["cluster"].as_array().is_some_and(|l| {
            l.iter().any(|x| {
                x["letter"]["reason"] == "retries_exhausted" && x["letter"]["item"]["id"] == id
            })
        })
    });
}
