//! An agent's own calls made through another node than the one it registered on: `hello` with
//! its token, `bus.inbox`, `bus.reply`, `agent.heartbeat` and `agent.unregister` reach its
//! node (two daemons on a real `nats-server -js`).

use serde_json::{Value, json};

use super::cluster::Nats;
use super::cluster_bus::{Node, SECRET, register};
use super::coord::Raw;
use super::harness::eventually;

#[test]
fn an_agent_works_through_a_node_it_did_not_register_on() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let b = Node::join(&nats, "b", SECRET);
    // The agent registers on node a, then works only through node b.
    let mut home = a.raw();
    let (id, token) = register(&mut home, "roamer");
    let mut far = b.raw();
    let hello = far.ok(
        "hello",
        json!({"client": "test", "protocol": 1, "token": token}),
    );
    assert!(hello.is_object(), "{hello}");
    far.ok("agent.heartbeat", json!({"token": token}));
    far.ok(
        "agent.heartbeat",
        json!({"token": token, "agent": "roamer"}),
    );
    let inbox = far.ok("bus.inbox", json!({"token": token}));
    assert!(inbox["subscription"].as_u64().is_some(), "{inbox}");

    // Direct messages sent through either node arrive on node b's connection, in order.
    let mut sender_a = a.raw();
    let mut sender_b = b.raw();
    for n in 0..5 {
        sender_a.ok("bus.send", json!({"to": "roamer", "message": {"a": n}}));
        sender_b.ok("bus.send", json!({"to": "roamer", "message": {"b": n}}));
    }
    let mut got = Vec::new();
    for _ in 0..10 {
        let m = far.notification(20);
        assert_eq!(m["method"], "bus.inbox_message", "{m}");
        got.push(m["params"]["message"]["payload"].clone());
    }
    for origin in ["a", "b"] {
        let seq: Vec<u64> = got.iter().filter_map(|p| p[origin].as_u64()).collect();
        assert_eq!(seq, (0..5).collect::<Vec<_>>(), "from {origin}: {got:?}");
    }

    // A request made on node a is answered through node b.
    let asker = std::thread::spawn({
        let mut client = a.raw();
        move || {
            client.call(
                "bus.request",
                json!({"to": "roamer", "message": "2+2", "timeout_ms": 20000}),
            )
        }
    });
    let m = far.notification(20);
    assert_eq!(m["params"]["message"]["kind"], "request", "{m}");
    let correlation = m["params"]["message"]["correlation_id"].clone();
    far.ok(
        "bus.reply",
        json!({"token": token, "correlation": correlation, "message": 4}),
    );
    let reply = asker.join().expect("asker").expect("reply");
    assert_eq!(reply["reply"]["payload"], 4, "{reply}");
    assert_eq!(reply["reply"]["from"], id, "{reply}");

    // A forged token is refused on node b for each of these calls.
    let forged = format!("{id}.{}", "ab".repeat(32));
    for (method, params) in [
        ("agent.heartbeat", json!({"token": forged})),
        ("bus.inbox", json!({"token": forged})),
        (
            "bus.reply",
            json!({"token": forged, "correlation": 1, "message": 0}),
        ),
        ("agent.unregister", json!({"token": forged})),
    ] {
        let err = sender_b.call(method, params).expect_err(method);
        assert_eq!(err["data"]["reason"], "unauthorized", "{method}: {err}");
    }
    let err = b
        .raw()
        .call(
            "hello",
            json!({"client": "t", "protocol": 1, "token": forged}),
        )
        .expect_err("a forged hello");
    assert_eq!(err["data"]["reason"], "unauthorized", "{err}");

    // Leaving through node b: node a's agent is gone, and the relayed inbox says so.
    far.ok("agent.unregister", json!({"token": token}));
    let m = far.notification(20);
    assert_eq!(m["method"], "bus.closed", "{m}");
    assert_eq!(m["params"]["reason"], "the agent left", "{m}");
    let list = home.ok("agent.list", json!({}));
    let me = list["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|x| x["id"] == id)
        .cloned()
        .expect("roamer listed as departed on its node");
    assert_ne!(me["status"], "active", "{me}");
    eventually(15, "roamer gone from node b's list", || {
        let list = b.raw().ok("agent.list", json!({}));
        !list["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .any(|x| x["id"] == id)
    });
}

/// Whether `principal` holds anything in the node's `access.list`.
fn granted(raw: &mut Raw, principal: &str) -> bool {
    let list = raw.ok("access.list", json!({}));
    list["principals"]
        .as_array()
        .expect("principals")
        .iter()
        .any(|p| p["principal"] == principal)
}

#[test]
fn unregistering_through_another_node_takes_the_grants_at_once() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let b = Node::join(&nats, "b", SECRET);
    // Tied to its connection on node a (no `keep`), which stays open throughout.
    let mut home = a.raw();
    let reg = home.ok("agent.register", json!({"name": "temp"}));
    let (id, token) = (reg["agent"].clone(), reg["token"].clone());
    let principal = format!("agent:{id}");
    let mut owner_a = a.raw();
    let mut owner_b = b.raw();
    for owner in [&mut owner_a, &mut owner_b] {
        owner.ok(
            "access.grant",
            json!({"principal": principal, "capability": "session:read:*"}),
        );
        assert!(granted(owner, &principal));
    }
    let answer: Value = b.raw().ok("agent.unregister", json!({"token": token}));
    assert!(answer.is_object(), "{answer}");
    // Answered: neither node holds a grant for it any more, while its connection is open.
    assert!(!granted(&mut owner_a, &principal), "node a kept the grants");
    assert!(!granted(&mut owner_b, &principal), "node b kept the grants");
    home.ok("agent.list", json!({}));

    // An agent registered with `keep` keeps its grants when it unregisters, as on one node.
    let (kept, kept_token) = register(&mut home, "stays");
    let kept = format!("agent:{kept}");
    owner_a.ok(
        "access.grant",
        json!({"principal": kept, "capability": "session:read:*"}),
    );
    b.raw().ok("agent.unregister", json!({"token": kept_token}));
    assert!(granted(&mut owner_a, &kept));
}
