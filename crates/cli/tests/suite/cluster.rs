//! Several daemons as one cluster: a real `nats-server -js` on a loopback port, daemons with
//! their own `AI_SESSION_HOME` joining it, and requests for a session going to the node that
//! owns it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use ai_session_cluster::testing::NatsServer;

use super::harness::{Env, alive, eventually};

/// A NATS server with JetStream, on a loopback port it picks, its store in a temporary
/// directory.
pub(super) struct Nats {
    pub(super) url: String,
    _server: NatsServer,
}

impl Nats {
    pub(super) fn start() -> Nats {
        let server = NatsServer::start::<&str>(&[]).expect("nats-server (installed by .ci/run)");
        Nats {
            url: server.url("nats"),
            _server: server,
        }
    }
}

/// A daemon of the cluster: its own state directory, started as clients start it
/// (`daemon run --notify-ready`), with `--cluster` and `--node`.
pub(super) struct Node {
    pub(super) env: Env,
    name: String,
    pub(super) child: Option<Child>,
    /// The network namespace the daemon runs in (`Partition`), if any.
    netns: Option<String>,
}

impl Node {
    pub(super) fn join(nats: &Nats, name: &str) -> Node {
        Self::join_with(
            nats,
            name,
            "[cluster]\nheartbeat_secs = 0.5\nlease_secs = 3\n",
        )
    }

    pub(super) fn join_with(nats: &Nats, name: &str, config: &str) -> Node {
        Self::join_in(&nats.url, name, config, None)
    }

    /// A node joining through `url` (a relay in front of the server, say).
    pub(super) fn join_at(url: &str, name: &str, config: &str) -> Node {
        Self::join_in(url, name, config, None)
    }

    fn join_in(url: &str, name: &str, config: &str, netns: Option<&str>) -> Node {
        let env = Env::new();
        std::fs::write(env.home.path().join("config.toml"), config).expect("config");
        let mut node = Node {
            env,
            name: name.into(),
            child: None,
            netns: netns.map(str::to_owned),
        };
        let (child, line) = node.start(&["--cluster", url, "--node", name]);
        assert_eq!(line.trim(), "ready", "node {name} did not start");
        node.child = Some(child);
        node
    }

    /// Starts `daemon run --notify-ready ARGS`; its first line of output (or its error).
    fn start(&self, args: &[&str]) -> (Child, String) {
        let mut all = vec!["daemon", "run", "--notify-ready"];
        all.extend_from_slice(args);
        let mut command = self.env.command(&all);
        if let Some(ns) = &self.netns {
            // `ip netns exec NS PROGRAM ...`: the same process, in the namespace.
            let mut wrapped = std::process::Command::new("ip");
            wrapped
                .args(["netns", "exec", ns])
                .arg(command.get_program());
            wrapped.args(command.get_args());
            for (k, v) in command.get_envs() {
                match v {
                    Some(v) => wrapped.env(k, v),
                    None => wrapped.env_remove(k),
                };
            }
            wrapped.stdin(Stdio::null());
            command = wrapped;
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the daemon");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        // The first non-empty of: its first line of output ("ready"), or all it wrote on
        // stderr (an error). Either pipe may close first.
        let (tx, rx) = std::sync::mpsc::channel();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).ok();
            tx.send(line).ok();
        });
        std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text).ok();
            tx2.send(text).ok();
        });
        let mut line = String::new();
        for _ in 0..2 {
            line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the daemon said nothing in 30 s");
            if !line.trim().is_empty() {
                break;
            }
        }
        (child, line)
    }

    pub(super) fn ok(&self, args: &[&str]) -> String {
        self.env.ok(args)
    }

    pub(super) fn json(&self, args: &[&str]) -> serde_json::Value {
        self.env.json(args)
    }

    /// The sessions this node runs (`ls` lists the whole cluster's).
    fn session_names(&self) -> Vec<String> {
        self.json(&["ls"])["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .filter(|s| s["node"] == self.name.as_str())
            .map(|s| s["name"].as_str().expect("name").to_string())
            .collect()
    }

    /// The node list as this node sees it: name to sessions.
    fn nodes(&self) -> Vec<(String, Vec<String>)> {
        let v = self.json(&["nodes"]);
        v["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .map(|n| {
                let sessions = n["sessions"]
                    .as_array()
                    .expect("sessions")
                    .iter()
                    .map(|s| s.as_str().expect("name").to_string())
                    .collect();
                (n["node"].as_str().expect("node").to_string(), sessions)
            })
            .collect()
    }

    fn audit(&self) -> Vec<serde_json::Value> {
        let out = self.env.run(&["audit", "ls", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    pub(super) fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }
}

impl Drop for Node {
    /// Stops the node; one that has not exited 20 s after `daemon stop` is killed and fails
    /// the test (rather than hanging it).
    fn drop(&mut self) {
        self.env.command(&["daemon", "stop"]).output().ok();
        let Some(mut child) = self.child.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while matches!(child.try_wait(), Ok(None)) {
            if Instant::now() > deadline {
                child.kill().ok();
                child.wait().ok();
                if !std::thread::panicking() {
                    panic!(
                        "node {} did not exit within 20 s of `daemon stop`",
                        self.name
                    );
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn nodes_lists_every_node_with_its_sessions_load_and_heartbeat() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    a.ok(&["new", "-s", "build", "--node", "a"]);
    eventually(15, "both nodes, a with its session, seen from b", || {
        let nodes = b.nodes();
        nodes.len() == 2
            && nodes[0] == ("a".to_string(), vec!["build".to_string()])
            && nodes[1].0 == "b"
    });
    let v = b.json(&["nodes"]);
    assert_eq!(v["node"], "b");
    let a_info = &v["nodes"][0];
    assert_eq!(a_info["pid"].as_i64(), Some(a.pid() as i64));
    assert!(a_info["load"].as_f64().is_some(), "{v}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let age = now.saturating_sub(a_info["heartbeat_ms"].as_u64().unwrap());
    assert!(age < 3_000, "a's heartbeat is {age} ms old: {v}");
    let text = a.ok(&["nodes"]);
    assert!(
        text.contains("a*") && text.contains("build") && text.lines().count() == 3,
        "{text}"
    );
}

#[test]
fn exec_send_read_capture_wait_reach_a_session_on_another_node() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    a.ok(&["new", "-s", "work", "--node", "a"]);
    assert!(b.session_names().is_empty(), "the session lives on a only");

    let r = b.env.exec("work", "echo cross-$((6*7))");
    assert_eq!(r["exit_code"], 0, "{r}");
    assert!(r["output"].as_str().unwrap().contains("cross-42"), "{r}");
    let r = b.env.exec("work", "(exit 3)");
    assert_eq!(r["exit_code"], 3, "{r}");
    let out = b.env.run(&["exec", "-t", "work", "echo plain; (exit 7)"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "the CLI exits with the remote exit code"
    );

    // The log's offsets are the owner's: a read through b is a read through a.
    let via_b = b.json(&["read", "-t", "work", "--since", "0"]);
    let via_a = a.json(&["read", "-t", "work", "--since", "0"]);
    assert_eq!(via_b, via_a);
    let end = via_b["end"].as_u64().expect("end offset");
    b.ok(&["send", "-t", "work", "echo typed-$((2+3))", "Enter"]);
    let w = b.json(&[
        "wait",
        "-t",
        "work",
        "--for",
        "typed-5",
        "--since",
        &end.to_string(),
        "--timeout",
        "20",
    ]);
    assert!(w["offset"].as_u64().unwrap() >= end, "{w}");
    let more = b.json(&["read", "-t", "work", "--since", &end.to_string()]);
    assert!(more["data"].as_str().unwrap().contains("typed-5"), "{more}");
    let screen = b.ok(&["capture", "-t", "work"]);
    assert!(screen.contains("typed-5"), "{screen}");

    b.ok(&["kill", "-t", "work"]);
    assert!(a.session_names().is_empty(), "killed on its owner");
    let out = b.env.run(&["exec", "-t", "work", "true"]);
    assert!(!out.status.success());
}

#[test]
fn new_places_a_session_on_a_named_node_and_names_are_cluster_wide() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    let info = a.json(&["new", "-s", "far", "--node", "b"]);
    assert_eq!(info["name"], "far", "{info}");
    assert_eq!(b.session_names(), vec!["far".to_string()]);
    assert!(a.session_names().is_empty());
    let r = a.env.exec("far", "echo on-$((1+1))");
    assert!(r["output"].as_str().unwrap().contains("on-2"), "{r}");

    let out = a.env.run(&["new", "-s", "far"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("far") && err.contains("node 'b'"), "{err}");

    // Unnamed sessions get the lowest number free in the whole cluster.
    let first = a.json(&["new"])["name"].as_str().unwrap().to_string();
    let second = b.json(&["new"])["name"].as_str().unwrap().to_string();
    assert_ne!(first, second);

    let out = a.env.run(&["new", "-s", "x", "--node", "nowhere"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nowhere"), "{err}");
}

#[test]
fn a_forwarded_exec_is_audited_on_both_nodes_under_one_request_id() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    b.ok(&["new", "-s", "s", "--node", "b"]);
    a.env.exec("s", "echo audited");
    let find = |node: &Node, needle: &str| {
        node.audit().into_iter().find(|e| {
            e["action"] == "session.exec"
                && e["detail"].as_str().unwrap_or_default().contains(needle)
        })
    };
    let mut entry = None;
    eventually(10, "the entry node's audit entry", || {
        entry = find(&a, "echo audited");
        entry.is_some()
    });
    let detail = entry.unwrap()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("node=b"), "{detail}");
    let request = detail
        .split_whitespace()
        .find_map(|w| w.strip_prefix("request="))
        .expect("a request id")
        .to_string();
    let needle = format!("from=a request={request}");
    eventually(
        10,
        "the owner's audit entry with the same request id",
        || find(&b, &needle).is_some_and(|e| e["result"] == "ok (exit 0)" && e["session"] == "s"),
    );
}

#[test]
fn a_node_that_stops_or_dies_leaves_the_cluster() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    let c = Node::join(&nats, "c");
    b.ok(&["new", "-s", "on-b", "--node", "b"]);
    c.ok(&["new", "-s", "on-c", "--node", "c"]);
    eventually(15, "three nodes", || a.nodes().len() == 3);

    // A clean stop leaves at once: the node and its leases are gone.
    eprintln!("step: stop b");
    b.ok(&["daemon", "stop"]);
    eventually(10, "b gone", || a.nodes().iter().all(|(n, _)| n != "b"));
    eprintln!("step: exec on b's session after b stopped");
    let out = a.env.run(&["exec", "-t", "on-b", "true"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("on-b"), "{err}");

    // A SIGKILL leaves nothing behind but the lease, which expires (3 s here).
    eprintln!("step: SIGKILL c");
    let pid = c.pid();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    eventually(10, "c dead", || !alive(pid));
    eventually(15, "c's record expired", || {
        a.nodes().iter().all(|(n, _)| n != "c")
    });
    eprintln!("step: exec on c's session until its lease expires");
    eventually(15, "c's session lease expired", || {
        let out = a.env.run(&["exec", "-t", "on-c", "true"]);
        String::from_utf8_lossy(&out.stderr).contains("no session")
    });
    eprintln!("step: drop the nodes");
}

#[test]
fn a_node_name_is_held_by_one_live_daemon() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let other = Env::new();
    std::fs::copy(
        a.env.home.path().join("config.toml"),
        other.home.path().join("config.toml"),
    )
    .unwrap();
    let twin = Node {
        env: other,
        name: "a".into(),
        child: None,
        netns: None,
    };
    let (mut child, said) = twin.start(&["--cluster", &nats.url, "--node", "a"]);
    assert!(
        said.contains("node name 'a' is already in the cluster") && said.contains("--node"),
        "{said}"
    );
    assert!(!child.wait().unwrap().success());
    assert_eq!(a.nodes().len(), 1, "{}", a.name);
}

#[test]
fn the_config_file_joins_an_auto_started_daemon() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let env = Env::new();
    std::fs::write(
        env.home.path().join("config.toml"),
        format!(
            "[cluster]\nurl = \"{}\"\nnode = \"from-config\"\nheartbeat_secs = 0.5\nlease_secs = 3\n",
            nats.url
        ),
    )
    .unwrap();
    // The first client starts the daemon, which reads [cluster] and joins.
    env.ok(&["new", "-s", "cfg", "--node", "from-config"]);
    eventually(15, "the configured node", || {
        a.nodes()
            .iter()
            .any(|(n, s)| n == "from-config" && s == &vec!["cfg".to_string()])
    });
    let r = a.env.exec("cfg", "echo via-config");
    assert!(r["output"].as_str().unwrap().contains("via-config"), "{r}");
}

#[test]
fn bad_cluster_settings_stop_the_daemon_with_what_to_fix() {
    let env = Env::new();
    let node = Node {
        env,
        name: "x".into(),
        child: None,
        netns: None,
    };
    std::fs::write(
        node.env.home.path().join("config.toml"),
        "[cluster]\nheartbeat_secs = 2\nlease_secs = 3\n",
    )
    .unwrap();
    let (_, said) = node.start(&["--cluster", "nats://127.0.0.1:1", "--node", "x"]);
    assert!(said.contains("lease_secs"), "{said}");

    std::fs::write(node.env.home.path().join("config.toml"), "").unwrap();
    let (_, said) = node.start(&["--cluster", "nats://127.0.0.1:1", "--node", "bad.name"]);
    assert!(said.contains("invalid node name"), "{said}");
    let (_, said) = node.start(&["--cluster", "nats://127.0.0.1:1", "--node", "x"]);
    assert!(
        said.contains("cannot join the cluster") && said.contains("nats-server"),
        "{said}"
    );
}

#[test]
fn a_daemon_on_its_own_says_it_is_not_in_a_cluster() {
    let env = Env::new();
    let out = env.run(&["nodes"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not in a cluster") && err.contains("[cluster]"),
        "{err}"
    );
    let out = env.run(&["new", "-s", "x", "--node", "b"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in a cluster"));
    assert!(env.json(&["ls"])["sessions"].as_array().unwrap().is_empty());
}

#[test]
fn ls_lists_every_nodes_sessions_and_names_a_node_that_does_not_answer() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    let c = Node::join(&nats, "c");
    a.ok(&["new", "-s", "one", "--node", "a"]);
    b.ok(&["new", "-s", "two", "--node", "b"]);
    c.ok(&["new", "-s", "three", "--node", "c"]);
    let listed = |node: &Node| -> Vec<(String, String)> {
        node.json(&["ls"])["sessions"]
            .as_array()
            .expect("sessions")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().into(),
                    s["node"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let all = vec![
        ("one".to_string(), "a".to_string()),
        ("three".to_string(), "c".to_string()),
        ("two".to_string(), "b".to_string()),
    ];
    assert_eq!(listed(&a), all);
    assert_eq!(listed(&b), all);
    let text = b.ok(&["ls"]);
    assert!(
        text.contains("one: ") && text.contains("on node a"),
        "{text}"
    );

    // A node that is still in the cluster but does not answer is named, not left out.
    let pid = rustix::process::Pid::from_raw(c.pid()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::STOP).unwrap();
    eventually(10, "c stopped", || {
        std::fs::read_to_string(format!("/proc/{}/stat", c.pid())).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('T')
        })
    });
    let started = Instant::now();
    let out = a.env.run(&["ls", "--json"]);
    rustix::process::kill_process(pid, rustix::process::Signal::CONT).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "ls waited {:?}",
        started.elapsed()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["unanswered"][0]["node"], "c", "{v}");
    let names: Vec<&str> = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["one", "two"], "{v}");
}

#[test]
fn new_without_a_node_goes_to_the_least_loaded_node_and_a_tie_stays_here() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    let on = |name: &str| -> String {
        let owner = a
            .nodes()
            .into_iter()
            .find(|(_, s)| s.iter().any(|s| s == name))
            .map(|(n, _)| n);
        owner.unwrap_or_default()
    };
    let settled = |name: &str| {
        let mut node = String::new();
        eventually(15, "the session in its node's record", || {
            node = on(name);
            !node.is_empty()
        });
        node
    };
    // Same host, same load: the fewest sessions, then the entry node on a tie.
    a.ok(&["new", "-s", "first"]);
    assert_eq!(settled("first"), "a", "a tie stays on the entry node");
    a.ok(&["new", "-s", "second"]);
    assert_eq!(settled("second"), "b", "b has fewer sessions");
    b.ok(&["new", "-s", "third"]);
    assert_eq!(settled("third"), "b", "a tie stays on the entry node");
    b.ok(&["new", "-s", "fourth"]);
    assert_eq!(settled("fourth"), "a");
    let r = b.env.exec("fourth", "echo placed-$((3*3))");
    assert!(r["output"].as_str().unwrap().contains("placed-9"), "{r}");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn a_killed_nodes_session_is_lost_and_restored_on_another_node_from_its_checkpoint() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    let mut c = Node::join(&nats, "c");
    c.ok(&["new", "-s", "w", "--node", "c"]);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().to_str().unwrap().to_string();
    let r = a.env.exec("w", &format!("cd {dir} && export X=kept-42"));
    assert_eq!(r["exit_code"], 0, "{r}");
    let r = a.env.exec("w", "echo acked-before-kill");
    assert_eq!(r["exit_code"], 0, "{r}");
    let answered = now_ms();
    // The checkpoint follows the exec within a heartbeat, off the exec's path.
    eventually(15, "a checkpoint taken after the exec", || {
        a.json(&["ls"])["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "w" && s["checkpoint_ms"].as_u64().is_some_and(|t| t >= answered))
    });

    let pid = c.pid();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    if let Some(mut child) = c.child.take() {
        child.wait().ok();
    }
    eventually(15, "w lost, in ls and nodes", || {
        let ls = a.json(&["ls"]);
        let nodes = b.json(&["nodes"]);
        ls["lost"][0]["name"] == "w"
            && ls["lost"][0]["node"] == "c"
            && nodes["lost"][0]["name"] == "w"
    });
    let text = a.ok(&["ls"]);
    assert!(
        text.contains("w: lost with node c") && text.contains("--from-lost w"),
        "{text}"
    );

    // Two nodes restoring at once: one gets it.
    let (ra, rb) = std::thread::scope(|s| {
        let ra = s.spawn(|| a.env.run(&["restore", "--from-lost", "w", "--json"]));
        let rb = s.spawn(|| b.env.run(&["restore", "--from-lost", "w", "--json"]));
        (ra.join().unwrap(), rb.join().unwrap())
    });
    assert!(
        ra.status.success() != rb.status.success(),
        "exactly one restore wins:\na: {}\nb: {}",
        String::from_utf8_lossy(&ra.stderr),
        String::from_utf8_lossy(&rb.stderr)
    );
    let (winner, loser, out) = if ra.status.success() {
        ("a", &rb, &ra)
    } else {
        ("b", &ra, &rb)
    };
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["name"], "w", "{info}");
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&loser.stdout),
        String::from_utf8_lossy(&loser.stderr)
    );
    assert!(
        err.contains("'w'") && err.contains(&format!("node '{winner}'")),
        "{err}"
    );

    // From any node, the session is back on the winner with its cwd, variable and history.
    let r = b.env.exec("w", "pwd; echo X=$X");
    let output = r["output"].as_str().unwrap();
    assert!(output.contains(&dir) && output.contains("X=kept-42"), "{r}");
    let history = super::store_bounds::rpc(
        &a.env,
        "session.history",
        serde_json::json!({"target": "w"}),
    );
    assert!(
        history.to_string().contains("echo acked-before-kill"),
        "{history}"
    );
    let ls = a.json(&["ls"]);
    assert!(ls.get("lost").is_none(), "restored, no longer lost: {ls}");
    let owner = ls["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "w")
        .unwrap()["node"]
        .clone();
    assert_eq!(owner, winner);

    // Nothing lost to restore any more; a name that never existed neither.
    let out = a.env.run(&["restore", "--from-lost", "w"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not lost"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = a.env.run(&["restore", "--from-lost", "nothing-here"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no lost session named 'nothing-here'"));
}

#[test]
fn restore_from_lost_starts_the_session_on_the_node_named_and_a_stopped_node_loses_nothing() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    let mut c = Node::join(&nats, "c");
    let d = Node::join(&nats, "d");
    c.ok(&["new", "-s", "gone", "--node", "c"]);
    d.ok(&["new", "-s", "kept", "--node", "d"]);
    c.ok(&["exec", "-t", "gone", "export Y=snap-7"]);
    // A snapshot writes the checkpoint before it answers.
    c.ok(&["snapshot", "-t", "gone"]);
    d.ok(&["exec", "-t", "kept", "true"]);
    eventually(15, "kept checkpointed", || {
        a.json(&["ls"])["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "kept" && s["checkpoint_ms"].is_u64())
    });
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(c.pid()).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    if let Some(mut child) = c.child.take() {
        child.wait().ok();
    }
    d.ok(&["daemon", "stop"]);
    eventually(15, "gone lost", || {
        a.json(&["ls"])["lost"][0]["name"] == "gone"
    });
    let ls = a.json(&["ls"]);
    assert_eq!(
        ls["lost"].as_array().unwrap().len(),
        1,
        "a stopped node's sessions are not lost: {ls}"
    );
    let info = a.json(&["restore", "--from-lost", "gone", "--node", "b"]);
    assert_eq!(info["name"], "gone", "{info}");
    assert_eq!(b.session_names(), vec!["gone".to_string()]);
    let r = a.env.exec("gone", "echo Y=$Y");
    assert!(r["output"].as_str().unwrap().contains("Y=snap-7"), "{r}");
}

/// A network namespace joined to this one by a veth pair: a daemon run in it reaches the
/// NATS server only through the pair, so taking the host end down is a real partition.
/// Only the namespace, the pair and their two addresses are created; all go when dropped.
struct Partition {
    ns: String,
    host_end: String,
    host_ip: String,
}

fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Partition {
    fn new() -> Partition {
        let id = std::process::id() % 50_000;
        let (ns, host_end, ns_end) = (
            format!("ais-part-{id}"),
            format!("aish{id}"),
            format!("aisn{id}"),
        );
        // A /30 of 10.200.0.0/16 picked by the pid, so parallel tests do not collide.
        let net = (id % 16_000) * 4;
        let host_ip = format!("10.200.{}.{}", net / 256, net % 256 + 1);
        let ns_ip = format!("10.200.{}.{}", net / 256, net % 256 + 2);
        ip(&["netns", "add", &ns]);
        let p = Partition {
            ns: ns.clone(),
            host_end: host_end.clone(),
            host_ip: host_ip.clone(),
        };
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", &ns_end,
        ]);
        ip(&["link", "set", &ns_end, "netns", &ns]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_end]);
        ip(&["link", "set", &host_end, "up"]);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{ns_ip}/30"),
            "dev",
            &ns_end,
        ]);
        ip(&["-n", &ns, "link", "set", &ns_end, "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        p
    }

    fn cut(&self) {
        ip(&["link", "set", &self.host_end, "down"]);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        // Deleting the namespace deletes the pair's end in it, and with it the pair.
        std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .output()
            .ok();
        std::process::Command::new("ip")
            .args(["link", "del", &self.host_end])
            .output()
            .ok();
    }
}

#[test]
fn a_partitioned_nodes_sessions_are_lost_and_restored_elsewhere() {
    let part = Partition::new();
    // NATS listens on the pair's host address only: the partitioned node reaches it through
    // the pair, the others locally.
    let server = NatsServer::start(&["-a", &part.host_ip]).expect("nats-server");
    let nats = Nats {
        url: format!("nats://{}:{}", part.host_ip, server.port()),
        _server: server,
    };
    let config = "[cluster]\nheartbeat_secs = 0.5\nlease_secs = 3\n";
    let a = Node::join(&nats, "a");
    let mut cut_off = Node::join_in(&nats.url, "island", config, Some(&part.ns));
    cut_off.ok(&["new", "-s", "p", "--node", "island"]);
    let r = a.env.exec("p", "export Z=across-the-cut");
    assert_eq!(r["exit_code"], 0, "{r}");
    cut_off.ok(&["snapshot", "-t", "p"]);

    part.cut();
    eventually(20, "the island's session lost", || {
        let ls = a.json(&["ls"]);
        ls["lost"][0]["name"] == "p" && ls["lost"][0]["node"] == "island"
    });
    assert!(
        a.nodes().iter().all(|(n, _)| n != "island"),
        "the island left the node list"
    );
    let info = a.json(&["restore", "--from-lost", "p"]);
    assert_eq!(info["name"], "p", "{info}");
    let r = a.env.exec("p", "echo Z=$Z");
    assert!(
        r["output"].as_str().unwrap().contains("Z=across-the-cut"),
        "{r}"
    );
    // The island itself still runs its copy, unreachable: stopped with the test.
    if let Some(mut child) = cut_off.child.take() {
        child.kill().ok();
        child.wait().ok();
    }
}

#[test]
fn snapshots_and_context_of_a_session_on_another_node_are_forwarded() {
    let nats = Nats::start();
    let a = Node::join(&nats, "a");
    let b = Node::join(&nats, "b");
    b.ok(&["new", "-s", "far", "--node", "b"]);
    let snap = a.json(&["snapshot", "-t", "far"]);
    let id = snap["id"].as_str().expect("a snapshot id").to_string();
    let on_b = b.ok(&["snapshot", "ls"]);
    assert!(on_b.contains(&id), "the snapshot is in b's store: {on_b}");
    a.ok(&[
        "context",
        "add",
        "-t",
        "far",
        "--role",
        "user",
        "remember the blue door",
    ]);
    let ctx = b.json(&["context", "-t", "far"]).to_string();
    assert!(ctx.contains("remember the blue door"), "{ctx}");
    let via_a = a.json(&["context", "-t", "far"]).to_string();
    assert!(via_a.contains("remember the blue door"), "{via_a}");
}
