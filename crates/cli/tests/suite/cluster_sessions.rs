//! Sessions across a cluster: execs journaled before they answer (none lost with a node),
//! output subscriptions through any node. A real `nats-server -js` on a loopback port, daemons with their own
//! `AI_SESSION_HOME`.

use serde_json::json;

use super::cluster::{Nats, Node};
use super::coord::Raw;
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

/// Waits until `node` lists session `name` with a checkpoint.
fn checkpointed(node: &Node, name: &str) {
    eventually(15, &format!("a checkpoint of {name}"), || {
        node.json(&["ls"])["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == name && s["checkpoint_ms"].is_u64())
    });
}

/// Waits until `node` lists session `name` as lost; on a timeout, shows the node's last `ls`
/// (where the session is, if anywhere) and its view of the cluster.
fn lost(node: &Node, name: &str) {
    super::harness::eventually_value(
        15,
        &format!("{name} lost"),
        || node.json(&["ls"]),
        |ls| ls["lost"][0]["name"] == name,
        || format!("nodes: {}", node.json(&["nodes"])),
    );
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
    c.ok(&["new", "-s", "w", "--node", "c"]);
    c.ok(&["exec", "-t", "w", "echo first"]);
    checkpointed(&a, "w");
    const N: usize = 12;
    for i in 0..N {
        let r = c.env.exec("w", &format!("echo journal-{i}"));
        assert_eq!(r["exit_code"], 0, "{r}");
    }
    // At once: no heartbeat, no checkpoint after the last answer.
    kill(&mut c);

    lost(&a, "w");
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

/// Session `target`'s log from `since` to its end as `node` reads it (`session.read --raw`).
/// A sandboxed session lost with its node comes back on another in the sandbox it ran in,
/// planned against the workspace it started in.
#[test]
fn a_lost_sandboxed_session_is_restored_elsewhere_in_the_sandbox_it_ran_in() {
    use super::sandbox_saved::{confined, outside, workspace_only_policy};
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let mut c = Node::join(&nats, "c");
    let ws = super::security::workspace(&c.env);
    let policy = workspace_only_policy(&c.env);
    let away = outside(&c.env);
    let made = c.json(&[
        "new", "-s", "box", "--policy", &policy, "-c", &ws, "--node", "c",
    ]);
    assert_eq!(made["sandbox"]["policy"], "custom", "{made}");
    let r = c.env.exec("box", &format!("cd {}", away.display()));
    assert_eq!(r["exit_code"], 0, "{r}");
    checkpointed(&a, "box");
    kill(&mut c);

    lost(&a, "box");
    let info = a.json(&["restore", "--from-lost", "box"]);
    assert_eq!(info["name"], "box", "{info}");
    assert_eq!(info["sandbox"]["policy"], "custom", "{info}");
    let r = a.env.exec("box", "pwd");
    assert_eq!(
        r["output"].as_str().unwrap().trim(),
        away.display().to_string(),
        "{r}"
    );
    confined(&a.env, "box", &ws, &away, "on-a");
}

/// Execs pipelined on one connection to a node that does not own their session run on the
/// owner in the order they were sent.
#[test]
fn pipelined_execs_through_another_node_run_in_the_order_sent() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    a.ok(&["new", "-s", "o", "--node", "a"]);
    eventually(15, "b to see o on a", || {
        b.env.exec("o", "true")["exit_code"] == 0
    });
    let dir = a.env.home.path().join("there");
    std::fs::create_dir(&dir).expect("dir");
    super::exec_queue::pipeline_in_order(&b.env.home.path().join("run/t.sock"), "o", &dir);
}

fn log_from(node: &Node, target: &str, since: u64) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut at = since;
    loop {
        let r = super::store_bounds::rpc(
            &node.env,
            "session.read",
            serde_json::json!({"target": target, "since": at, "raw": true}),
        );
        let r = &r["result"];
        assert_eq!(r["start"].as_u64(), Some(at), "nothing dropped: {r}");
        out.extend_from_slice(r["data"].as_str().expect("data").as_bytes());
        at = r["end"].as_u64().expect("end");
        if r["more"] != true {
            return (out, at);
        }
    }
}

/// The output notifications of `raw` from offset `next` until `want` bytes came, each
/// starting where the one before ended; the bytes and the offset after them.
fn output_until(raw: &mut Raw, target: &str, next: u64, want: usize) -> (Vec<u8>, u64) {
    output_while(raw, target, next, 30, |got| got.len() < want)
}

/// The output notifications of `raw` from offset `next` while `more(bytes so far)`, each
/// starting where the one before ended and waited for up to `secs`; the bytes and the offset
/// after them.
fn output_while(
    raw: &mut Raw,
    target: &str,
    mut next: u64,
    secs: u64,
    more: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, u64) {
    use base64::Engine;
    let mut got = Vec::new();
    while more(&got) {
        let n = raw.notification(secs);
        if n["method"] != "session.output" {
            continue;
        }
        let p = &n["params"];
        assert_eq!(p["target"], target, "{n}");
        assert_eq!(
            p["offset"].as_u64(),
            Some(next),
            "no gap, nothing twice: {n}"
        );
        let data = base64::engine::general_purpose::STANDARD
            .decode(p["data_b64"].as_str().expect("data"))
            .expect("base64");
        next += data.len() as u64;
        got.extend_from_slice(&data);
    }
    (got, next)
}

#[test]
fn a_subscription_through_another_node_is_lossless_across_a_reconnect() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    a.ok(&["new", "-s", "o", "--node", "a"]);
    a.env.exec("o", "true");

    // Through b, of a's session: every byte from the subscription's offset, in order.
    let mut sub = Raw::connect(&b.env);
    let start = sub.ok("session.subscribe", json!({"target": "o"}))["offset"]
        .as_u64()
        .expect("offset");
    let r = a
        .env
        .exec("o", "seq 1 20000 | sed 's/^/line-/'; echo done-1");
    assert_eq!(r["exit_code"], 0, "{r}");
    let (expected, _) = log_from(&a, "o", start);
    assert!(expected.len() > 150_000, "{}", expected.len());
    let (got, last) = output_until(&mut sub, "o", start, expected.len());
    assert!(got == expected, "the relayed bytes are a's log");
    drop(sub);

    // Output while nobody watches, then a reconnect through b from the last offset.
    a.env.exec("o", "seq 1 3000; echo done-2");
    let mut sub = Raw::connect(&b.env);
    let resumed = sub.ok("session.subscribe", json!({"target": "o"}))["offset"]
        .as_u64()
        .expect("offset");
    let (mut missed, at) = log_from(&b, "o", last);
    assert_eq!(
        at, resumed,
        "read through b reaches the subscription's offset"
    );
    a.env.exec("o", "echo done-3");
    let (whole, _) = log_from(&a, "o", last);
    let (rest, _) = output_until(&mut sub, "o", resumed, whole.len() - missed.len());
    missed.extend_from_slice(&rest);
    assert!(
        missed == whole,
        "read --since and the new subscription join without a gap"
    );
    let text = String::from_utf8_lossy(&whole);
    assert!(text.contains("done-2") && text.contains("done-3"), "{text}");
}

#[test]
fn exec_stream_through_another_node_prints_the_output_as_it_comes() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    a.ok(&["new", "-s", "st", "--node", "a"]);
    // `--stream` subscribes (relayed from a) before the exec (forwarded to a).
    let out = b.ok(&[
        "exec",
        "--stream",
        "-t",
        "st",
        "for i in 1 2 3; do echo streamed-$i; done",
    ]);
    for i in 1..=3 {
        assert!(out.contains(&format!("streamed-{i}")), "{out}");
    }
}

fn snapshots(node: &Node, args: &[&str]) -> serde_json::Value {
    let out = node.env.run(args);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn a_snapshot_is_listed_and_restored_on_any_node_even_once_its_node_is_gone() {
    let nats = Nats::start();
    let mut a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    a.ok(&["new", "-s", "sn", "--node", "a"]);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_str().unwrap().to_string();
    a.env.exec("sn", &format!("cd {dir} && export Z=snap-9"));
    a.env.exec("sn", "echo before-the-snapshot");
    let snap = a.json(&["snapshot", "-t", "sn", "--label", "far"]);
    assert!(snap.get("cluster_warning").is_none(), "{snap}");
    let id = snap["id"].as_str().expect("id").to_string();

    // Listed on b, with the node that took it; on a, a's own snapshot says so too.
    let listed = snapshots(&b, &["snapshot", "ls", "--json"]);
    let on_b = listed["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .find(|s| s["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{listed}"))
        .clone();
    assert_eq!(on_b["node"], "a", "{on_b}");
    assert_eq!(on_b["session_name"], "sn", "{on_b}");
    assert!(b.ok(&["snapshot", "ls"]).contains("on node a"));
    let on_a = snapshots(&a, &["snapshot", "ls", "-t", "sn", "--json"]);
    assert_eq!(on_a["snapshots"][0]["node"], "a", "{on_a}");

    // a dies; b restores a's snapshot from the cluster, by a prefix of its id.
    kill(&mut a);
    let restored = b.json(&["restore", &id[..12], "-s", "copy"]);
    assert_eq!(restored["snapshot"], id.as_str(), "{restored}");
    assert_eq!(restored["session"]["name"], "copy", "{restored}");
    let r = b.env.exec("copy", "pwd; echo Z=$Z");
    let out = r["output"].as_str().unwrap();
    assert!(out.contains(&dir) && out.contains("Z=snap-9"), "{r}");
    let history = super::store_bounds::rpc(
        &b.env,
        "session.history",
        json!({"target": "copy", "limit": 50}),
    );
    assert!(
        history.to_string().contains("echo before-the-snapshot"),
        "{history}"
    );
    // The name is the cluster's now: a second restore under it is refused.
    let again = b.env.run(&["restore", &id, "-s", "copy"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("copy"));
    let unknown = b.env.run(&["restore", "ffffffffffff"]);
    assert!(!unknown.status.success());
}

#[test]
fn an_exec_whose_record_the_cluster_cannot_take_says_it_is_not_persisted() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    a.ok(&["new", "-s", "j", "--node", "a"]);
    let r = a.env.exec("j", "echo journaled");
    assert!(r.get("persisted").is_none(), "{r}");
    // The NATS server goes: the exec still answers, saying its record is not in the cluster.
    drop(nats);
    let r = a.env.exec("j", "echo unjournaled");
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["persisted"], false, "{r}");
    assert!(
        r["persist_error"]
            .as_str()
            .is_some_and(|e| e.contains("not in the cluster's journal")),
        "{r}"
    );
}

#[test]
fn a_killed_sessions_journal_goes_with_it() {
    let nats = Nats::start();
    // No checkpoint in the test's few seconds (the first heartbeat has no session yet): the
    // records stay in the journal until the kill.
    let a = Node::join_with(
        &nats,
        "a",
        "[cluster]\nheartbeat_secs = 30\nlease_secs = 60\n",
    );
    let info = a.json(&["new", "-s", "k", "--node", "a"]);
    let id = info["id"].as_str().expect("id").to_string();
    a.env.exec("k", "echo journaled");
    a.env.exec("k", "echo again");
    // The journal as any node reads it.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let probe = runtime.block_on(async {
        let config = ai_session_protocol::config::ClusterConfig {
            heartbeat_secs: 30.0,
            lease_secs: 60.0,
            ..Default::default()
        };
        ai_session_cluster::Cluster::join(&config, &nats.url, "probe")
            .await
            .unwrap()
    });
    let records = || runtime.block_on(probe.journaled_execs(&id)).unwrap().len();
    assert_eq!(records(), 2);
    a.ok(&["kill", "-t", "k"]);
    assert_eq!(records(), 0, "the kill dropped the session's records");
    runtime.block_on(probe.leave());
}

/// The ids of the snapshots `node` lists.
fn snapshot_ids(node: &Node) -> Vec<String> {
    snapshots(node, &["snapshot", "ls", "--json"])["snapshots"]
        .as_array()
        .expect("snapshots")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn snapshot_prune_removes_the_cluster_copies_of_what_it_prunes() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    a.ok(&["new", "-s", "pr", "--node", "a"]);
    a.env.exec("pr", "echo one");
    let old = a.json(&["snapshot", "-t", "pr"])["id"]
        .as_str()
        .expect("id")
        .to_string();
    a.env.exec("pr", "echo two");
    let new = a.json(&["snapshot", "-t", "pr"])["id"]
        .as_str()
        .expect("id")
        .to_string();
    let on_b = snapshot_ids(&b);
    assert!(on_b.contains(&old) && on_b.contains(&new), "{on_b:?}");

    let pruned = snapshots(
        &a,
        &["snapshot", "prune", "-t", "pr", "--keep", "1", "--json"],
    );
    assert_eq!(pruned["removed"][0]["id"], old.as_str(), "{pruned}");
    // Answered: no node lists the pruned one, and its contents are gone from the cluster.
    assert_eq!(snapshot_ids(&b), vec![new.clone()]);
    assert_eq!(snapshot_ids(&a), vec![new.clone()]);
    let gone = b.env.run(&["restore", &old, "-s", "back"]);
    assert!(!gone.status.success(), "a pruned snapshot restored");
    let kept = b.json(&["restore", &new, "-s", "back"]);
    assert_eq!(kept["snapshot"], new.as_str(), "{kept}");
}

/// Session `target`'s log from `since` to its end as `node` reads it, byte for byte
/// (`session.read` with `encoding: base64`).
fn log_bytes(node: &Node, target: &str, since: u64) -> Vec<u8> {
    use base64::Engine;
    let mut out = Vec::new();
    let mut at = since;
    loop {
        let r = super::store_bounds::rpc(
            &node.env,
            "session.read",
            json!({"target": target, "since": at, "encoding": "base64"}),
        );
        let r = &r["result"];
        assert_eq!(r["start"].as_u64(), Some(at), "nothing dropped: {r}");
        assert_eq!(r["data"], "", "the bytes are in data_b64: {r}");
        let data = r["data_b64"].as_str().expect("data_b64");
        out.extend(
            base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("base64"),
        );
        at = r["end"].as_u64().expect("end");
        if r["more"] != true {
            return out;
        }
    }
}

/// A TCP relay between one node and the NATS server that the test can cut, as a network
/// hiccup would: `cut` closes the node's connection (the server forgets its subscriptions)
/// and holds its reconnection until `resume`.
struct Link {
    url: String,
    state: std::sync::Arc<(std::sync::Mutex<LinkState>, std::sync::Condvar)>,
}

#[derive(Default)]
struct LinkState {
    held: bool,
    open: Vec<std::net::TcpStream>,
}

impl Link {
    fn to(upstream: &str) -> Link {
        let upstream = upstream.trim_start_matches("nats://").to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("nats://{}", listener.local_addr().expect("addr"));
        let state = std::sync::Arc::new((
            std::sync::Mutex::new(LinkState::default()),
            std::sync::Condvar::new(),
        ));
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let (lock, resumed) = &*shared;
                let mut st = lock.lock().expect("lock");
                while st.held {
                    st = resumed.wait(st).expect("lock");
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                st.open.push(client.try_clone().expect("clone"));
                st.open.push(server.try_clone().expect("clone"));
                drop(st);
                pump(
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                );
                pump(server, client);
            }
        });
        Link { url, state }
    }

    fn cut(&self) {
        let mut st = self.state.0.lock().expect("lock");
        st.held = true;
        for s in st.open.drain(..) {
            s.shutdown(std::net::Shutdown::Both).ok();
        }
    }

    fn resume(&self) {
        self.state.0.lock().expect("lock").held = false;
        self.state.1.notify_all();
    }
}

/// Copies `from` to `to` on a thread until either closes.
fn pump(mut from: std::net::TcpStream, mut to: std::net::TcpStream) {
    std::thread::spawn(move || {
        std::io::copy(&mut from, &mut to).ok();
        to.shutdown(std::net::Shutdown::Both).ok();
        from.shutdown(std::net::Shutdown::Both).ok();
    });
}

#[test]
fn a_gap_in_a_relayed_subscription_is_filled_with_the_owners_exact_bytes() {
    let nats = Nats::start();
    // The relay's watcher is checked every 3 s: b's short absence below does not end it.
    let config = "[cluster]\nheartbeat_secs = 3\nlease_secs = 30\n";
    let a = Node::join_with(&nats, "a", config);
    let link = Link::to(&nats.url);
    let b = Node::join_at(&link.url, "b", config);
    a.ok(&["new", "-s", "o", "--node", "a"]);
    a.env.exec("o", "true");

    // The client reads through b all along, each line starting where the one before ended.
    let mut sub = Raw::connect(&b.env);
    let start = sub.ok("session.subscribe", json!({"target": "o"}))["offset"]
        .as_u64()
        .expect("offset");
    let reader = std::thread::spawn(move || {
        output_while(&mut sub, "o", start, 60, |got| {
            !got.windows(8).any(|w| w == b"gap-2end")
        })
        .0
    });
    a.env.exec("o", "echo before-the-cut");

    // b is cut off from NATS while a writes bytes that are not UTF-8: their relayed lines
    // are lost on the way.
    link.cut();
    let burst = r#"yes "$(printf 'x\377\376y%.0s' $(seq 1 40))" | head -n 200"#;
    assert_eq!(a.env.exec("o", burst)["exit_code"], 0);
    link.resume();

    // b reconnects; a line after the gap makes it read the gap from a's log.
    eventually(60, "the line after the gap through b", || {
        a.env.exec("o", "echo gap-$((1+1))end");
        reader.is_finished()
    });
    let got = reader.join().expect("the relayed stream is contiguous");
    let log = log_bytes(&a, "o", start);
    assert!(
        got.windows(2).filter(|w| w == b"\xff\xfe").count() >= 200 * 40,
        "the gap's bytes, which are not UTF-8, came through"
    );
    assert!(
        log.starts_with(&got),
        "the relayed bytes are a's log, byte for byte"
    );
}
