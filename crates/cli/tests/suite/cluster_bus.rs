//! The coordination bus and agents across a cluster: two daemons with their own
//! `AI_SESSION_HOME` joining a real `nats-server -js`, protocol clients on each, and messages,
//! agents and tokens crossing from one node to the other.

use serde_json::{Value, json};

use super::cluster::Nats;
use super::coord::Raw;
use super::harness::{Env, eventually};

/// A daemon of the cluster, started as clients start it: `[cluster]` in its config file.
pub(super) struct Node {
    pub(super) env: Env,
}

impl Node {
    pub(super) fn join(nats: &Nats, name: &str, secret: &str) -> Node {
        Self::join_with(nats, name, secret, "")
    }

    /// [`Node::join`] with more `[cluster]` settings (`key = value` lines).
    pub(super) fn join_with(nats: &Nats, name: &str, secret: &str, extra: &str) -> Node {
        let env = Env::new();
        let secret_file = env.home.path().join("cluster.secret");
        std::fs::write(&secret_file, secret).expect("secret");
        let config = format!(
            "[cluster]\nurl = \"{}\"\nnode = \"{name}\"\nsecret_file = \"{}\"\n\
             heartbeat_secs = 0.5\nlease_secs = 3\n{extra}",
            nats.url,
            secret_file.display()
        );
        std::fs::write(env.home.path().join("config.toml"), config).expect("config");
        env.ok(&["daemon", "start"]);
        Node { env }
    }

    pub(super) fn raw(&self) -> Raw {
        Raw::connect(&self.env)
    }
}

pub(super) const SECRET: &str = "8Qe3vT0rY2uXo9zq4mK7pL1sN6dB5wHcJfRgAaZe0Uk=";

/// Registers an agent that stays registered; its id and token.
pub(super) fn register(raw: &mut Raw, name: &str) -> (u64, String) {
    let reg = raw.ok("agent.register", json!({"name": name, "keep": true}));
    let id = reg["agent"].as_u64().expect("id");
    (id, reg["token"].as_str().expect("token").to_string())
}

/// The next `bus.message` payloads, `n` of them.
fn payloads(raw: &mut Raw, n: usize) -> Vec<Value> {
    (0..n)
        .map(|_| {
            let m = raw.notification(20);
            assert_eq!(m["method"], "bus.message", "{m}");
            m["params"]["message"]["payload"].clone()
        })
        .collect()
}

#[test]
fn topic_messages_reach_every_node_exactly_once() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let b = Node::join(&nats, "b", SECRET);
    let mut sub_a = a.raw();
    let mut sub_b = b.raw();
    sub_a.ok("bus.subscribe", json!({"topic": "news"}));
    sub_b.ok("bus.subscribe", json!({"topic": "news"}));
    let mut pub_a = a.raw();
    let mut pub_b = b.raw();
    for n in 0..20 {
        pub_a.ok("bus.publish", json!({"topic": "news", "message": {"a": n}}));
        pub_b.ok("bus.publish", json!({"topic": "news", "message": {"b": n}}));
    }
    // A last message from each node: a duplicate would arrive before it.
    pub_a.ok(
        "bus.publish",
        json!({"topic": "news", "message": {"a": 20}}),
    );
    pub_b.ok(
        "bus.publish",
        json!({"topic": "news", "message": {"b": 20}}),
    );
    for sub in [&mut sub_a, &mut sub_b] {
        let got = payloads(sub, 42);
        for origin in ["a", "b"] {
            let seq: Vec<u64> = got.iter().filter_map(|p| p[origin].as_u64()).collect();
            assert_eq!(seq, (0..=20).collect::<Vec<_>>(), "from {origin}: {got:?}");
        }
    }
    // Another topic's subscribers get nothing of it.
    let mut other = b.raw();
    other.ok("bus.subscribe", json!({"topic": "other"}));
    pub_a.ok(
        "bus.publish",
        json!({"topic": "news", "message": "not for other"}),
    );
    pub_a.ok(
        "bus.publish",
        json!({"topic": "other", "message": "for other"}),
    );
    assert_eq!(payloads(&mut other, 1), vec![json!("for other")]);
    // Topics that are not subject tokens travel too.
    sub_b.ok("bus.subscribe", json!({"topic": "builds.rust *"}));
    pub_a.ok(
        "bus.publish",
        json!({"topic": "builds.rust *", "message": "odd"}),
    );
    assert_eq!(
        payloads(&mut sub_b, 2),
        vec![json!("not for other"), json!("odd")]
    );
}

#[test]
fn agents_are_listed_addressed_and_trusted_on_every_node() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let b = Node::join(&nats, "b", SECRET);
    let mut alpha = a.raw();
    let mut beta = b.raw();
    let (alpha_id, alpha_token) = register(&mut alpha, "alpha");
    let (beta_id, beta_token) = register(&mut beta, "beta");
    assert_ne!(alpha_id, beta_id, "agent ids are unique in the cluster");
    alpha.ok("bus.inbox", json!({"token": alpha_token}));
    beta.ok("bus.inbox", json!({"token": beta_token}));

    // Every node lists every node's agents, with their node.
    for node in [&a, &b] {
        let list = node.raw().ok("agent.list", json!({}));
        let agents: Vec<(u64, String, String)> = list["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .map(|x| {
                let s = |k: &str| x[k].as_str().expect(k).to_string();
                (x["id"].as_u64().expect("id"), s("name"), s("node"))
            })
            .collect();
        assert!(
            agents.contains(&(alpha_id, "alpha".into(), "a".into())),
            "{list}"
        );
        assert!(
            agents.contains(&(beta_id, "beta".into(), "b".into())),
            "{list}"
        );
    }

    // A direct message from node a to beta, by name, signed by alpha.
    let mut client_a = a.raw();
    let d = client_a.ok(
        "bus.send",
        json!({"to": "beta", "message": "hi", "token": alpha_token}),
    );
    assert_eq!(d["delivered"], 1, "{d}");
    let m = beta.notification(20);
    assert_eq!(m["method"], "bus.inbox_message", "{m}");
    assert_eq!(m["params"]["message"]["payload"], "hi");
    assert_eq!(m["params"]["message"]["from"], alpha_id);

    // A request from node a answered by beta on node b.
    let asker = std::thread::spawn({
        let mut client = a.raw();
        move || {
            client.call(
                "bus.request",
                json!({"to": "beta", "message": "2+2", "timeout_ms": 20000}),
            )
        }
    });
    let m = beta.notification(20);
    assert_eq!(m["params"]["message"]["kind"], "request", "{m}");
    let correlation = m["params"]["message"]["correlation_id"].clone();
    beta.ok(
        "bus.reply",
        json!({"token": beta_token, "correlation": correlation, "message": 4}),
    );
    let reply = asker.join().expect("asker").expect("reply");
    assert_eq!(reply["reply"]["payload"], 4, "{reply}");
    assert_eq!(reply["reply"]["from"], beta_id, "{reply}");

    // A broadcast from node b reaches the agents of both nodes.
    b.raw().ok("bus.broadcast", json!({"message": "all"}));
    for inbox in [&mut alpha, &mut beta] {
        let m = inbox.notification(20);
        assert_eq!(m["params"]["message"]["kind"], "broadcast", "{m}");
        assert_eq!(m["params"]["message"]["payload"], "all");
    }

    // alpha's token works on node b: its message is signed as alpha.
    let mut sub = b.raw();
    sub.ok("bus.subscribe", json!({"topic": "signed"}));
    let mut client_b = b.raw();
    client_b.ok(
        "bus.publish",
        json!({"topic": "signed", "message": "x", "token": alpha_token}),
    );
    let m = sub.notification(20);
    assert_eq!(m["params"]["message"]["from"], alpha_id, "{m}");

    // A forged token for alpha is refused on node b, and nothing is published.
    let forged = format!("{alpha_id}.{}", "ab".repeat(32));
    let err = client_b
        .call(
            "bus.publish",
            json!({"topic": "signed", "message": "forged", "token": forged}),
        )
        .expect_err("a forged token");
    assert_eq!(err["data"]["reason"], "unauthorized", "{err}");

    // A token another cluster issued for the same id is refused too.
    let other_nats = Nats::start();
    let other = Node::join(
        &other_nats,
        "elsewhere",
        "another secret of 32 bytes or more!!",
    );
    let mut stranger = other.raw();
    let (mut id, mut token) = register(&mut stranger, "stranger");
    while id < alpha_id {
        (id, token) = register(&mut stranger, &format!("stranger{id}"));
    }
    assert_eq!(id, alpha_id);
    let err = client_b
        .call(
            "bus.publish",
            json!({"topic": "signed", "message": "stranger", "token": token}),
        )
        .expect_err("another cluster's token");
    assert_eq!(err["data"]["reason"], "unauthorized", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not issued by this cluster"),
        "{err}"
    );
    client_b.ok(
        "bus.publish",
        json!({"topic": "signed", "message": "after"}),
    );
    assert_eq!(
        sub.notification(20)["params"]["message"]["payload"],
        "after"
    );

    // An agent that leaves is gone from every node's list.
    alpha.ok("agent.unregister", json!({"token": alpha_token}));
    eventually(15, "alpha gone from node b's list", || {
        let list = b.raw().ok("agent.list", json!({}));
        !list["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .any(|x| x["id"] == alpha_id)
    });
}

#[test]
fn dead_letters_of_every_node_are_in_the_cluster_stream() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let b = Node::join(&nats, "b", SECRET);
    let mut ghost = b.raw();
    let (id, token) = register(&mut ghost, "ghost");
    ghost.ok("agent.unregister", json!({"token": token}));
    let d = b.raw().ok(
        "bus.send",
        json!({"to": format!("agent-{id}"), "message": "lost"}),
    );
    assert_eq!(d["dead_lettered"], 1, "{d}");
    eventually(15, "b's dead letter seen from a", || {
        let v = a.raw().ok("bus.dead_letters", json!({}));
        v["cluster"].as_array().is_some_and(|l| {
            l.iter().any(|x| {
                x["node"] == "b"
                    && x["letter"]["item"]["payload"] == "lost"
                    && x["letter"]["reason"] == "no_such_agent"
            })
        })
    });
}

#[test]
fn a_relayed_inbox_keeps_what_its_gone_reader_did_not_get() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a", SECRET);
    let b = Node::join(&nats, "b", SECRET);
    let mut home = a.raw();
    let (_, token) = register(&mut home, "far");
    // Read through b, the agent's node being a.
    let mut first = b.raw();
    first.ok("bus.inbox", json!({"token": token}));
    a.env.ok(&["bus", "send", "far", "one"]);
    let n = first.notification(20);
    assert_eq!(n["params"]["message"]["payload"], "one", "{n}");
    drop(first);

    // Sent once b has seen its reader go: kept for the next reader, once.
    let mut second = b.raw();
    eventually(20, "the first reader's connection to close", || {
        second.ok("daemon.stats", json!({}))["connections"] == 1
    });
    a.env.ok(&["bus", "send", "far", "two"]);
    second.ok("bus.inbox", json!({"token": token}));
    let n = second.notification(20);
    assert_eq!(n["params"]["message"]["payload"], "two", "{n}");
    a.env.ok(&["bus", "send", "far", "three"]);
    let n = second.notification(20);
    assert_eq!(n["params"]["message"]["payload"], "three", "{n}");
}
