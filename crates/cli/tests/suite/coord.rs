//! Agents, the bus and tasks through the daemon, with several real client processes: `ai-session`
//! binaries and raw socket clients speaking the protocol directly.
//!
//! Each test runs twice: against one daemon on its own, and against two nodes of a cluster
//! (a real `nats-server -js`, a shared secret) with its actors spread over both, so the fan-out,
//! isolation and task rules of one daemon are shown to hold across nodes.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::harness::{Env, eventually};

/// The daemons a coordination test runs against: one on its own (`a` and `b` are the same
/// daemon), or nodes `a` and `b` of a cluster, agents' tokens good on both.
pub(super) struct Daemons {
    a: Env,
    b: Option<Env>,
    // Dropped last: the nodes stop before their server.
    _nats: Option<super::cluster::Nats>,
}

impl Daemons {
    fn single() -> Daemons {
        Daemons {
            a: Env::new(),
            b: None,
            _nats: None,
        }
    }

    fn cluster() -> Daemons {
        use super::cluster_bus::{Node, SECRET};
        let nats = super::cluster::Nats::start();
        let a = Node::join(&nats, "a", SECRET).env;
        let b = Node::join(&nats, "b", SECRET).env;
        Daemons {
            a,
            b: Some(b),
            _nats: Some(nats),
        }
    }

    fn a(&self) -> &Env {
        &self.a
    }

    /// The other node (the same daemon when there is one).
    fn b(&self) -> &Env {
        self.b.as_ref().unwrap_or(&self.a)
    }

    /// The daemon actor `i` of a test uses: `a` and `b` in turn.
    fn at(&self, i: usize) -> &Env {
        if i % 2 == 0 { self.a() } else { self.b() }
    }

    /// How many of actors `0..n` use the daemon `a` ([`Self::at`]): the copies of a message
    /// published through `a` that `a` delivers itself, its `delivered`.
    fn on_a(&self, n: usize) -> usize {
        (0..n)
            .filter(|i| std::ptr::eq(self.at(*i), self.a()))
            .count()
    }
}

/// Each test `name(&Daemons)` as two tests: `on_one_daemon::name` and `in_a_cluster::name`.
macro_rules! on_one_daemon_and_in_a_cluster {
    ($($test:ident),* $(,)?) => {
        mod on_one_daemon {
            $(#[test]
            fn $test() {
                super::$test(&super::Daemons::single());
            })*
        }
        mod in_a_cluster {
            $(#[test]
            fn $test() {
                super::$test(&super::Daemons::cluster());
            })*
        }
    };
}

on_one_daemon_and_in_a_cluster!(
    fan_out_every_subscriber_gets_every_message,
    request_reply_between_processes,
    tasks_run_in_dependency_order,
    tasks_go_to_agents_with_the_capabilities,
    failed_tasks_retry_then_land_in_dead_letters,
    a_crashed_agent_process_gives_its_tasks_back,
    an_agent_token_acts_only_as_its_agent,
    session_state_changes_reach_event_subscribers,
    broadcast_reaches_every_agent_inbox,
    a_reader_that_half_closes_gets_each_inbox_message_once,
    an_inbox_message_waits_for_the_next_reader_after_one_disconnects,
);

/// A protocol client on its own connection: what an agent program embedding ai-session does.
pub(super) struct Raw {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
    notifications: VecDeque<Value>,
}

impl Raw {
    pub(super) fn connect(env: &Env) -> Self {
        env.ok(&["daemon", "start"]);
        let sock = env.home.path().join("run").join("t.sock");
        let writer = UnixStream::connect(sock).expect("connect");
        let reader = BufReader::new(writer.try_clone().expect("clone"));
        let mut raw = Self {
            writer,
            reader,
            next_id: 1,
            notifications: VecDeque::new(),
        };
        raw.call("hello", json!({"client": "test", "protocol": 1}))
            .expect("hello");
        raw
    }

    fn read_message(&mut self, deadline: Instant) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for the daemon");
        self.reader
            .get_ref()
            .set_read_timeout(Some(left))
            .expect("timeout");
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read a line");
        assert!(n > 0, "the daemon closed the connection");
        serde_json::from_str(&line).expect("JSON line")
    }

    /// Sends a request and returns its result, or its error object.
    pub(super) fn call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(self.writer, "{req}").expect("write");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let msg = self.read_message(deadline);
            if msg.get("id").and_then(Value::as_u64) == Some(id) {
                return match msg.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(msg["result"].clone()),
                };
            }
            if msg.get("id").is_none() {
                self.notifications.push_back(msg);
            }
        }
    }

    /// Sends a request without waiting for its answer.
    pub(super) fn send(&mut self, method: &str, params: Value) {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(self.writer, "{req}").expect("write");
    }

    /// Shuts the write side of the connection: the daemon reads its end, the client still reads.
    pub(super) fn half_close(&mut self) {
        self.writer
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
    }

    pub(super) fn ok(&mut self, method: &str, params: Value) -> Value {
        self.call(method, params.clone())
            .unwrap_or_else(|e| panic!("{method} {params}: {e}"))
    }

    pub(super) fn notification(&mut self, secs: u64) -> Value {
        if let Some(n) = self.notifications.pop_front() {
            return n;
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let msg = self.read_message(deadline);
            if msg.get("id").is_none() {
                return msg;
            }
        }
    }
}

/// `--json` goes last: none of these commands takes trailing arguments.
fn json_out(env: &Env, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = env.run(&all);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&out.stdout)))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Registers an agent that outlives the command; returns its token.
fn keep_agent(env: &Env, name: &str, caps: &[&str]) -> String {
    let mut args = vec!["agent", "register", name, "--keep"];
    for c in caps {
        args.extend(["--capability", c]);
    }
    env.ok(&args).trim().to_string()
}

fn submit(env: &Env, args: &[&str]) -> String {
    let mut all = vec!["task", "submit"];
    all.extend_from_slice(args);
    env.ok(&all).trim().to_string()
}

fn task(env: &Env, id: &str) -> Value {
    let out = env.ok(&["task", "show", id]);
    serde_json::from_str(&out).expect("task JSON")
}

/// Claims as the agent; the claimed task's id, or None when nothing is assigned (exit 3).
fn claim(env: &Env, token: &str, wait: Option<&str>) -> Option<String> {
    let mut args = vec!["task", "claim", "--token", token];
    if let Some(w) = wait {
        args.extend(["--wait", w]);
    }
    let out = env.run(&args);
    match out.status.code() {
        Some(0) => Some(
            text(&out.stdout)
                .split('\t')
                .next()
                .expect("id")
                .to_string(),
        ),
        Some(3) => None,
        other => panic!("claim failed ({other:?}): {}", text(&out.stderr)),
    }
}

/// Waits for a child with a deadline, then collects its output.
fn finish(mut child: Child, secs: u64, what: &str) -> Output {
    let mut status = None;
    eventually(secs, what, || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    child.wait_with_output().expect("output")
}

fn subscribers(env: &Env, topic: &str) -> u64 {
    json_out(env, &["bus", "topics"])["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .find(|t| t["topic"] == topic)
        .map_or(0, |t| t["subscribers"].as_u64().expect("count"))
}

fn fan_out_every_subscriber_gets_every_message(d: &Daemons) {
    let env = d.a();
    env.ok(&["daemon", "start"]);
    const N: usize = 4;
    const MESSAGES: u64 = 50;
    let subs: Vec<Child> = (0..N)
        .map(|i| {
            d.at(i)
                .command(&["bus", "subscribe", "news", "--count", "50", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn subscriber")
        })
        .collect();
    eventually(20, "4 subscribers on news", || {
        subscribers(env, "news") == N as u64
    });
    // One message from a CLI process, the rest from a raw client; `delivered` counts the
    // copies the daemon it entered through delivered itself.
    let here = d.on_a(N);
    let sent = json_out(env, &["bus", "publish", "news", r#"{"n":0}"#]);
    assert_eq!(sent["delivered"], here, "{sent}");
    let mut raw = Raw::connect(env);
    for n in 1..MESSAGES {
        let sent = raw.ok("bus.publish", json!({"topic": "news", "message": {"n": n}}));
        assert_eq!(sent["delivered"], here, "{sent}");
    }
    for child in subs {
        let out = finish(child, 20, "a subscriber to receive 50 messages");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let got: Vec<u64> = text(&out.stdout)
            .lines()
            .map(|l| {
                let m: Value = serde_json::from_str(l).expect("message JSON");
                assert_eq!(m["kind"], "topic");
                assert_eq!(m["topic"], "news");
                m["payload"]["n"].as_u64().expect("n")
            })
            .collect();
        assert_eq!(got, (0..MESSAGES).collect::<Vec<_>>());
    }
    // Plain text MESSAGE arguments travel as JSON strings.
    let mut sub = Raw::connect(d.b());
    let s = sub.ok("bus.subscribe", json!({"topic": "words"}));
    env.ok(&["bus", "publish", "words", "hello world"]);
    let n = sub.notification(10);
    assert_eq!(n["method"], "bus.message");
    assert_eq!(n["params"]["subscription"], s["subscription"]);
    assert_eq!(n["params"]["message"]["payload"], "hello world");
}

fn request_reply_between_processes(d: &Daemons) {
    let env = d.a();
    let mut responder = Raw::connect(d.b());
    let reg = responder.ok(
        "agent.register",
        json!({"name": "oracle", "capabilities": ["answers"]}),
    );
    let token = reg["token"].as_str().expect("token").to_string();
    responder.ok("bus.inbox", json!({"token": token}));
    let asker = env
        .command(&[
            "bus",
            "request",
            "oracle",
            r#"{"question":"2+2"}"#,
            "--timeout",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn asker");
    let n = responder.notification(20);
    assert_eq!(n["method"], "bus.inbox_message", "{n}");
    let req = &n["params"]["message"];
    assert_eq!(req["kind"], "request");
    assert_eq!(req["payload"]["question"], "2+2");
    let correlation = req["correlation_id"].as_u64().expect("correlation");
    responder.ok(
        "bus.reply",
        json!({"token": token, "correlation": correlation, "message": {"answer": 4}}),
    );
    let out = finish(asker, 20, "the asker to get its reply");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), r#"{"answer":4}"#);

    // Nobody answers: the request times out (exit 124) and a late reply is refused.
    let out = env.run(&["bus", "request", "oracle", "ping", "--timeout", "0.2"]);
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    let late = responder.notification(10);
    let correlation = late["params"]["message"]["correlation_id"].clone();
    let err = responder
        .call(
            "bus.reply",
            json!({"token": token, "correlation": correlation, "message": "pong"}),
        )
        .expect_err("late reply");
    assert_eq!(err["data"]["kind"], "not_found", "{err}");

    // A direct message from a CLI process lands in the inbox too.
    env.ok(&["bus", "send", "oracle", "fyi"]);
    let n = responder.notification(10);
    assert_eq!(n["params"]["message"]["kind"], "direct");
    assert_eq!(n["params"]["message"]["payload"], "fyi");
}

fn tasks_run_in_dependency_order(d: &Daemons) {
    let env = d.a();
    env.ok(&["daemon", "start"]);
    let token = keep_agent(d.b(), "builder", &["rust"]);
    // Submitted in reverse of the order they may run.
    let first = submit(env, &["compile", "--needs", "rust"]);
    let second = submit(env, &["test", "--needs", "rust", "--after", &first]);
    let third = submit(
        env,
        &[
            "release", "--needs", "rust", "--after", &second, "--after", &first,
        ],
    );
    assert_eq!(task(env, &third)["state"], "queued");
    assert_eq!(
        task(env, &second)["waiting_on"],
        json!([first.parse::<u64>().unwrap()])
    );
    let mut order = Vec::new();
    for _ in 0..3 {
        let id = claim(d.b(), &token, Some("5")).expect("a task");
        // Nothing else is ready while it runs.
        assert_eq!(claim(d.b(), &token, None), None);
        d.b().ok(&[
            "task",
            "done",
            &id,
            "--result",
            &format!(r#"{{"step":{id}}}"#),
            "--token",
            &token,
        ]);
        order.push(id);
    }
    assert_eq!(order, vec![first.clone(), second, third.clone()]);
    let t = task(env, &third);
    assert_eq!(t["state"], "done");
    assert_eq!(t["result"]["step"], third.parse::<u64>().unwrap());
    let ls = json_out(env, &["task", "ls", "--state", "done"]);
    assert_eq!(ls["tasks"].as_array().expect("tasks").len(), 3);
}

fn tasks_go_to_agents_with_the_capabilities(d: &Daemons) {
    let env = d.a();
    env.ok(&["daemon", "start"]);
    let rusty = keep_agent(env, "rusty", &["rust", "tests"]);
    let snake = keep_agent(d.b(), "snake", &["python"]);
    let py = submit(env, &["lint the scripts", "--needs", "python"]);
    let rs = submit(env, &["cargo test", "--needs", "rust", "--needs", "tests"]);
    let go = submit(env, &["go vet", "--needs", "go"]);
    assert_eq!(claim(env, &rusty, Some("5")), Some(rs.clone()));
    assert_eq!(claim(d.b(), &snake, Some("5")), Some(py.clone()));
    // Nobody can do Go: it stays queued.
    assert_eq!(task(env, &go)["state"], "queued");
    assert!(task(env, &go).get("agent").is_none());
    let agents = json_out(env, &["agent", "ls"]);
    let rusty_info = agents["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["name"] == "rusty")
        .expect("rusty")
        .clone();
    assert_eq!(rusty_info["load"], 1);
    assert_eq!(task(env, &rs)["agent"], rusty_info["id"]);
    // A Go agent arrives and gets it.
    let gopher = keep_agent(d.b(), "gopher", &["go"]);
    assert_eq!(claim(d.b(), &gopher, Some("5")), Some(go));
}

fn failed_tasks_retry_then_land_in_dead_letters(d: &Daemons) {
    let env = d.a();
    env.ok(&["daemon", "start"]);
    let token = keep_agent(d.b(), "flaky", &["sh"]);
    let id = submit(env, &["doomed", "--needs", "sh", "--max-retries", "1"]);
    assert_eq!(claim(d.b(), &token, Some("5")), Some(id.clone()));
    let out = d
        .b()
        .ok(&["task", "fail", &id, "--reason", "boom 1", "--token", &token]);
    assert_eq!(out.trim(), "queued");
    let t = task(env, &id);
    assert_eq!(t["attempts"], 1);
    assert_eq!(t["last_error"], "boom 1");
    // The retry comes after a backoff (1 s).
    assert_eq!(claim(d.b(), &token, Some("10")), Some(id.clone()));
    let out = d
        .b()
        .ok(&["task", "fail", &id, "--reason", "boom 2", "--token", &token]);
    assert_eq!(out.trim(), "dead_lettered");
    // In a cluster the node that dead-lettered it lists it as its own, and every node in
    // `cluster` once the cluster's dead-letter stream has it.
    let mut entry = Value::Null;
    eventually(15, "the task in the dead letters", || {
        let dead = json_out(env, &["bus", "dead-letters"]);
        let mut letters: Vec<Value> = dead["dead_letters"].as_array().expect("list").clone();
        if let Some(cluster) = dead["cluster"].as_array() {
            letters.extend(cluster.iter().map(|d| d["letter"].clone()));
        }
        match letters.into_iter().find(|d| d["kind"] == "task") {
            Some(found) => {
                entry = found;
                true
            }
            None => false,
        }
    });
    assert_eq!(entry["item"]["id"], id.parse::<u64>().unwrap());
    assert_eq!(entry["reason"], "retries_exhausted");
    assert_eq!(entry["last_error"], "boom 2");
    let human = env.ok(&["bus", "dead-letters"]);
    assert!(human.contains("doomed"), "{human}");
    // A task after it can never run.
    let after = env.run(&["task", "submit", "next", "--needs", "sh", "--after", &id]);
    assert!(!after.status.success());
    assert!(text(&after.stderr).contains("could never run"));
}

fn a_crashed_agent_process_gives_its_tasks_back(d: &Daemons) {
    let env = d.a();
    env.ok(&["daemon", "start"]);
    // The agent lives as long as this process's connection.
    let mut holder = d
        .b()
        .command(&["agent", "register", "crashy", "--capability", "rust"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn agent");
    let mut token = String::new();
    BufReader::new(holder.stdout.as_mut().expect("stdout"))
        .read_line(&mut token)
        .expect("token line");
    let token = token.trim().to_string();
    let id = submit(env, &["long job", "--needs", "rust"]);
    assert_eq!(claim(env, &token, Some("5")), Some(id.clone()));
    assert_eq!(task(env, &id)["state"], "running");

    holder.kill().expect("kill the agent process");
    holder.wait().expect("reap");
    eventually(20, "the task to go back to the queue", || {
        task(env, &id)["state"] == "queued"
    });
    // A gone agent is listed by the node it was registered on (other nodes list live agents).
    let agents = json_out(d.b(), &["agent", "ls"]);
    let crashy = agents["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["name"] == "crashy")
        .expect("crashy listed")
        .clone();
    assert_eq!(crashy["status"], "gone");
    assert_eq!(crashy["reason"], "disconnected");
    // Its token is dead; a new agent picks the task up, without a retry used.
    let out = env.run(&["task", "claim", "--token", &token]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("register again"),
        "{}",
        text(&out.stderr)
    );
    let rescuer = keep_agent(env, "rescuer", &["rust"]);
    assert_eq!(claim(env, &rescuer, Some("5")), Some(id.clone()));
    // One daemon counts the failed attempts (none: a crash uses no retry); a cluster counts
    // deliveries, as a JetStream work queue does (docs/cluster.md): the crashed agent's claim
    // and the rescuer's.
    let attempts = if d.b.is_some() { 2 } else { 0 };
    assert_eq!(task(env, &id)["attempts"], attempts);

    // A raw client's agent leaves with its connection, too; Ctrl-C on a holder unregisters.
    let mut raw = Raw::connect(env);
    raw.ok("agent.register", json!({"name": "ephemeral"}));
    drop(raw);
    eventually(20, "ephemeral to be gone", || {
        json_out(env, &["agent", "ls"])["agents"]
            .as_array()
            .expect("agents")
            .iter()
            .any(|a| a["name"] == "ephemeral" && a["status"] == "gone")
    });
    let mut polite = env
        .command(&["agent", "register", "polite"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn agent");
    let mut line = String::new();
    BufReader::new(polite.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("token line");
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&polite),
        rustix::process::Signal::INT,
    )
    .expect("SIGINT");
    let out = finish(polite, 20, "the agent process to exit on SIGINT");
    assert!(out.status.success());
    let agents = json_out(env, &["agent", "ls"]);
    let polite = agents["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["name"] == "polite")
        .expect("polite")
        .clone();
    assert_eq!(polite["reason"], "unregistered");
}

fn an_agent_token_acts_only_as_its_agent(d: &Daemons) {
    let env = d.a();
    env.ok(&["daemon", "start"]);
    let alice = keep_agent(env, "alice", &["rust"]);
    let bob = keep_agent(d.b(), "bob", &["rust"]);
    let id = submit(env, &["alice's job", "--needs", "rust"]);
    // Whoever got it claims it; the other one is the intruder.
    let (holder, intruder) = match claim(env, &alice, Some("5")) {
        Some(got) => {
            assert_eq!(got, id);
            (alice, bob)
        }
        None => {
            assert_eq!(claim(d.b(), &bob, Some("5")), Some(id.clone()));
            (bob, alice)
        }
    };
    // A token names its agent: `<agent id>.<secret>`.
    let holder_name = holder.split('.').next().expect("agent id").to_string();
    assert_eq!(task(env, &id)["agent"].to_string(), holder_name);
    // The intruder's token cannot complete or fail the holder's task ...
    let out = env.run(&["task", "done", &id, "--token", &intruder]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("may not complete"),
        "{}",
        text(&out.stderr)
    );
    let out = env.run(&[
        "task", "fail", &id, "--reason", "sabotage", "--token", &intruder,
    ]);
    assert!(!out.status.success());
    // ... nor pass itself off as the holder.
    let out = env.run(&[
        "task",
        "done",
        &id,
        "--agent",
        &holder_name,
        "--token",
        &intruder,
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("token rejected"),
        "{}",
        text(&out.stderr)
    );
    // On the wire: permission_denied with the coordinator's reason.
    let mut raw = Raw::connect(env);
    let err = raw
        .call(
            "task.done",
            json!({"id": id.parse::<u64>().unwrap(), "token": intruder}),
        )
        .expect_err("refused");
    assert_eq!(err["data"]["kind"], "permission_denied", "{err}");
    assert_eq!(err["data"]["reason"], "not_task_holder");
    let err = raw
        .call(
            "bus.inbox",
            json!({"agent": holder_name, "token": intruder}),
        )
        .expect_err("another agent's inbox");
    assert_eq!(err["data"]["kind"], "permission_denied");
    let err = raw
        .call("task.claim", json!({"token": "1.00"}))
        .expect_err("malformed");
    assert_eq!(err["data"]["kind"], "permission_denied");
    assert_eq!(task(env, &id)["state"], "running");
    // The holder can.
    env.ok(&["task", "done", &id, "--token", &holder]);
    assert_eq!(task(env, &id)["state"], "done");
    // And the events stream saw it all.
    let mut events = Raw::connect(env);
    events.ok("events.subscribe", json!({}));
    env.ok(&["agent", "unregister", "--token", &holder]);
    let n = events.notification(10);
    assert_eq!(n["method"], "events.event");
    assert_eq!(n["params"]["message"]["payload"]["event"], "agent_left");
}

fn session_state_changes_reach_event_subscribers(d: &Daemons) {
    let env = d.a();
    let mut events = Raw::connect(env);
    events.ok("events.subscribe", json!({}));
    env.ok(&["new", "-s", "watched", "--shell", "/bin/sh"]);
    env.ok(&["exec", "-t", "watched", "true"]);
    env.ok(&["kill", "-t", "watched"]);
    let mut states = Vec::new();
    while !states.contains(&"killed".to_owned()) {
        let n = events.notification(20);
        let payload = &n["params"]["message"]["payload"];
        if payload["event"] == "session_state_changed" && payload["session"] == "watched" {
            states.push(payload["state"].as_str().unwrap_or_default().to_owned());
        }
    }
    for expected in ["starting", "idle", "killed"] {
        assert!(
            states.iter().any(|s| s == expected),
            "{expected} missing from {states:?}"
        );
    }
}

fn broadcast_reaches_every_agent_inbox(d: &Daemons) {
    let env = d.a();
    let mut agents = Vec::new();
    for (i, name) in ["a1", "a2", "a3"].into_iter().enumerate() {
        let mut raw = Raw::connect(d.at(i));
        let reg = raw.ok(
            "agent.register",
            json!({"name": name, "capabilities": ["x"]}),
        );
        let token = reg["token"].as_str().expect("token").to_string();
        raw.ok("bus.inbox", json!({"token": token}));
        agents.push(raw);
    }
    let out = json_out(env, &["bus", "broadcast", r#"{"stop":"now"}"#]);
    assert_eq!(out["delivered"], d.on_a(3), "{out}");
    for raw in &mut agents {
        let n = raw.notification(20);
        assert_eq!(n["method"], "bus.inbox_message", "{n}");
        assert_eq!(n["params"]["message"]["payload"]["stop"], "now");
    }
}

fn a_reader_that_half_closes_gets_each_inbox_message_once(d: &Daemons) {
    let env = d.a();
    let token = keep_agent(env, "listener", &[]);
    env.ok(&["new", "-s", "w"]);
    let mut first = Raw::connect(env);
    first.ok("bus.inbox", json!({"token": token}));
    // A request still running when the client shuts its write side: the connection stays until
    // it is answered, and the client still reads.
    first.send("session.exec", json!({"target": "w", "command": "sleep 4"}));
    first.half_close();
    for n in 0..5 {
        env.ok(&["bus", "send", "listener", &format!("m{n}")]);
    }
    for n in 0..5 {
        let m = first.notification(20);
        assert_eq!(m["method"], "bus.inbox_message", "{m}");
        assert_eq!(m["params"]["message"]["payload"], format!("m{n}"), "{m}");
    }
    drop(first);

    // The next reader gets none of them again.
    let mut second = Raw::connect(env);
    eventually(20, "the first reader's connection to close", || {
        second.ok("daemon.stats", json!({}))["connections"] == 1
    });
    second.ok("bus.inbox", json!({"token": token}));
    env.ok(&["bus", "send", "listener", "after"]);
    let n = second.notification(20);
    assert_eq!(n["params"]["message"]["payload"], "after", "{n}");
}

fn an_inbox_message_waits_for_the_next_reader_after_one_disconnects(d: &Daemons) {
    let env = d.a();
    let token = keep_agent(env, "listener", &[]);
    let mut first = Raw::connect(d.b());
    first.ok("bus.inbox", json!({"token": token}));
    env.ok(&["bus", "send", "listener", "one"]);
    let n = first.notification(20);
    assert_eq!(n["params"]["message"]["payload"], "one", "{n}");
    drop(first);

    // The daemon has seen the first reader go once only this connection is left.
    let mut second = Raw::connect(d.b());
    eventually(20, "the first reader's connection to close", || {
        second.ok("daemon.stats", json!({}))["connections"] == 1
    });
    env.ok(&["bus", "send", "listener", "two"]);
    second.ok("bus.inbox", json!({"token": token}));
    let n = second.notification(20);
    assert_eq!(n["method"], "bus.inbox_message", "{n}");
    assert_eq!(n["params"]["message"]["payload"], "two", "{n}");

    // A message sent while a reader is attached goes to it as before.
    env.ok(&["bus", "send", "listener", "three"]);
    let n = second.notification(20);
    assert_eq!(n["params"]["message"]["payload"], "three", "{n}");
}
