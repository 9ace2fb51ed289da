//! `bus.topics` and `bus.recent` across a cluster: every node's subscribers counted, whichever
//! node is asked, a node that does not answer named; the recent messages of every node's
//! topics kept on every node (three daemons on a real `nats-server -js`).

use serde_json::{Value, json};

use super::cluster::Nats;
use super::cluster_bus::{Node, SECRET};
use super::harness::eventually;

fn topics(v: &Value) -> Vec<(String, u64)> {
    v["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| {
            let name = t["topic"].as_str().expect("topic").to_string();
            (name, t["subscribers"].as_u64().expect("subscribers"))
        })
        .filter(|(t, _)| !t.starts_with('$'))
        .collect()
}

#[test]
fn topics_and_recent_messages_are_the_clusters() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let b = Node::join(&nats, "b", SECRET);
    let c = Node::join(&nats, "c", SECRET);
    let mut subs = Vec::new();
    for (node, topic) in [(&a, "news"), (&a, "news"), (&b, "news"), (&c, "only-c")] {
        let mut raw = node.raw();
        raw.ok("bus.subscribe", json!({"topic": topic}));
        subs.push(raw);
    }
    for node in [&a, &b, &c] {
        let v = node.raw().ok("bus.topics", json!({}));
        assert_eq!(
            topics(&v),
            vec![("news".to_string(), 3), ("only-c".to_string(), 1)],
            "{v}"
        );
        assert!(v.get("unanswered").is_none(), "{v}");
    }

    // A message nobody subscribes to, published through node a, is among node b's recent
    // messages, with its topic.
    a.raw().ok(
        "bus.publish",
        json!({"topic": "quiet", "message": {"n": 1}}),
    );
    eventually(15, "node b keeps node a's message", || {
        let v = b
            .raw()
            .ok("bus.recent", json!({"topic": "quiet", "limit": 10}));
        v["messages"]
            .as_array()
            .is_some_and(|m| m.len() == 1 && m[0]["payload"]["n"] == 1)
            && v["topics"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["topic"] == "quiet" && t["kept"] == 1))
    });

    // Node c killed: until its lease expires it is live but silent, and named.
    let pid = c.env.daemon_pid();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill node c");
    let v = a.raw().ok("bus.topics", json!({}));
    assert_eq!(topics(&v), vec![("news".to_string(), 3)], "{v}");
    let unanswered = v["unanswered"].as_array().expect("unanswered");
    assert_eq!(unanswered.len(), 1, "{v}");
    assert_eq!(unanswered[0]["node"], "c", "{v}");
    assert!(
        unanswered[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no answer")),
        "{v}"
    );
}
