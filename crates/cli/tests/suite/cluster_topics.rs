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

#[test]
fn a_node_that_joins_later_has_the_recent_messages_from_before() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let mut raw = a.raw();
    for n in 0..60 {
        raw.ok(
            "bus.publish",
            json!({"topic": "history", "message": {"n": n}}),
        );
    }
    raw.ok(
        "bus.publish",
        json!({"topic": "a.b c", "message": {"n": "odd"}}),
    );

    // Node b starts after all of them: it has the newest 50 of each topic all the same.
    let b = Node::join(&nats, "b", SECRET);
    let mut raw = b.raw();
    let ns = |v: &Value| -> Vec<u64> {
        v["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["payload"]["n"].as_u64().unwrap_or(u64::MAX))
            .collect()
    };
    eventually(15, "node b has node a's topic messages", || {
        let v = raw.ok("bus.recent", json!({"topic": "history", "limit": 5}));
        ns(&v) == vec![55, 56, 57, 58, 59]
    });
    let v = raw.ok("bus.recent", json!({"topic": "history"}));
    assert_eq!(ns(&v), (10..60).collect::<Vec<u64>>(), "{v}");
    let messages = v["messages"].as_array().expect("messages");
    assert!(
        messages.iter().all(|m| m["kind"] == "topic"
            && m["topic"] == "history"
            && m["sent_at_ms"].as_u64() > Some(0)),
        "{v}"
    );
    let ids: Vec<u64> = messages
        .iter()
        .map(|m| m["id"].as_u64().expect("id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let kept: Vec<(String, u64)> = v["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .map(|t| {
            (
                t["topic"].as_str().expect("topic").to_owned(),
                t["kept"].as_u64().expect("kept"),
            )
        })
        .collect();
    assert_eq!(
        kept,
        vec![("a.b c".to_owned(), 1), ("history".to_owned(), 50)],
        "{v}"
    );
    let v = raw.ok("bus.recent", json!({"topic": "a.b c"}));
    assert_eq!(v["messages"][0]["payload"]["n"], "odd", "{v}");
}
