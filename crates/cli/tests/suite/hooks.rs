//! `[[hooks]]` end to end: a real daemon reading config.toml, real programs as command hooks,
//! real HTTP receivers on loopback for webhooks (signature, retries, dead letters), and a
//! hanging hook that must not slow anything down.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::harness::{Env, eventually};

fn with_config(config: &str) -> Env {
    let env = Env::new();
    std::fs::write(env.home.path().join("config.toml"), config).unwrap();
    env
}

fn hook_status(env: &Env, name: &str) -> Value {
    let status = env.json(&["daemon", "status"]);
    status["hooks"]
        .as_array()
        .and_then(|hooks| hooks.iter().find(|h| h["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no hook '{name}' in {status:#}"))
}

/// HMAC-SHA256, written out from RFC 2104 so the test does not share the daemon's code.
fn hmac_sha256(key: &[u8], body: &[u8]) -> String {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(body)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// One request a receiver got.
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// An HTTP receiver on a free loopback port, answering the statuses of `script` in turn (the
/// last one for every request after), and passing each request to the test.
fn receiver(script: &'static [u16]) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook?x=1", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { return };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let status = script[n.min(script.len() - 1)];
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
            .unwrap();
            if tx
                .send(Received {
                    path,
                    headers,
                    body,
                })
                .is_err()
            {
                return;
            }
        }
    });
    (url, rx)
}

fn dead_letters(env: &Env) -> Value {
    serde_json::from_str(&env.ok(&["bus", "dead-letters", "--json"])).unwrap()
}

fn next(rx: &mpsc::Receiver<Received>) -> Received {
    rx.recv_timeout(Duration::from_secs(30))
        .expect("the receiver got no request in 30 s")
}

#[test]
fn a_command_hook_gets_each_event_as_json_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let env = with_config(&format!(
        "[[hooks]]\nname = \"log\"\n\
         on = [\"session-created\", \"command-finished\", \"session-terminated\"]\n\
         command = [\"/bin/sh\", \"-c\", \"cat >> '{}'; echo \\\" $AI_SESSION_EVENT\\\" >> '{}'\"]\n",
        out.display(),
        out.display()
    ));
    env.ok(&["new", "-s", "h"]);
    env.exec("h", "echo hooked; false");
    env.ok(&["kill", "-t", "h"]);
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    // A line is whole once the hook's `echo` of the event name has ended it.
    let whole = |l: &str| {
        ["session-created", "command-finished", "session-terminated"]
            .iter()
            .any(|k| l.ends_with(&format!(" {k}")))
    };
    eventually(20, "three events in the hook's file", || {
        read().lines().filter(|l| whole(l)).count() >= 3
    });
    let lines: Vec<(Value, String)> = read()
        .lines()
        .map(|l| {
            let (json, kind) = l.rsplit_once(' ').unwrap();
            (serde_json::from_str(json).unwrap(), kind.to_owned())
        })
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["session-created", "command-finished", "session-terminated"]
    );
    for (event, kind) in &lines {
        assert_eq!(event["event"], *kind, "{event}");
        assert!(event["at_ms"].as_u64().unwrap() > 0, "{event}");
        assert_eq!(event["id"].as_str().unwrap().len(), 24, "{event}");
    }
    assert_eq!(lines[0].0["data"]["name"], "h");
    let done = &lines[1].0["data"];
    assert_eq!(done["command"], "echo hooked; false", "{done}");
    assert_eq!(done["exit_code"], 1, "{done}");
    assert_eq!(done["session"], "h", "{done}");
    assert_eq!(lines[2].0["data"]["killed"], true);
    eventually(10, "the hook's counters", || {
        hook_status(&env, "log")["delivered"] == 3
    });
}

#[test]
fn a_failing_or_slow_command_hook_is_reported_not_fatal() {
    let env = with_config(
        "[[hooks]]\nname = \"fails\"\non = \"command-finished\"\n\
         command = [\"/bin/sh\", \"-c\", \"echo broken >&2; exit 7\"]\n\
         [[hooks]]\nname = \"slow\"\non = \"command-finished\"\ntimeout_secs = 0.3\n\
         command = [\"/bin/sh\", \"-c\", \"sleep 60.25 & wait\"]\n",
    );
    env.ok(&["new", "-s", "f"]);
    let r = env.exec("f", "echo still fine");
    assert_eq!(r["exit_code"], 0);
    eventually(20, "both hooks to fail", || {
        hook_status(&env, "fails")["failed"] == 1 && hook_status(&env, "slow")["failed"] == 1
    });
    let fails = hook_status(&env, "fails");
    let err = fails["last_error"].as_str().unwrap();
    assert!(err.contains("7") && err.contains("broken"), "{fails}");
    let slow = hook_status(&env, "slow");
    assert!(
        slow["last_error"]
            .as_str()
            .unwrap()
            .contains("timeout_secs"),
        "{slow}"
    );
    // The timed-out hook's whole process group is gone, its `sleep` included (a duration no
    // other test sleeps: the suite runs tests side by side and `ps` sees them all).
    let mut left = String::new();
    eventually(10, "the hook's children to be killed", || {
        let ps = std::process::Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .unwrap();
        left = String::from_utf8_lossy(&ps.stdout)
            .lines()
            .filter(|l| l.trim() == "sleep 60.25")
            .map(str::to_owned)
            .collect();
        left.is_empty()
    });
    let log = std::fs::read_to_string(env.home.path().join("servers/t/daemon.log")).unwrap();
    assert!(
        log.contains("hook failed") && log.contains("broken"),
        "{log}"
    );
    assert_eq!(env.exec("f", "echo again")["exit_code"], 0);
}

#[test]
fn a_webhook_signs_its_body_and_names_the_event() {
    let (url, rx) = receiver(&[200]);
    let env = with_config(&format!(
        "[[hooks]]\nname = \"ci\"\non = \"command-finished\"\nurl = \"{url}\"\nsecret = \"s3cret\"\n"
    ));
    env.ok(&["new", "-s", "w"]);
    env.exec("w", "echo signed");
    let req = next(&rx);
    assert_eq!(req.path, "/hook?x=1");
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("x-ai-session-event"), Some("command-finished"));
    let want = format!("sha256={}", hmac_sha256(b"s3cret", &req.body));
    assert_eq!(req.header("x-ai-session-signature"), Some(want.as_str()));
    let event = req.json();
    assert_eq!(event["data"]["command"], "echo signed", "{event}");
    // A tampered body no longer matches.
    let mut tampered = req.body.clone();
    tampered[0] ^= 1;
    assert_ne!(
        format!("sha256={}", hmac_sha256(b"s3cret", &tampered)),
        want
    );
    eventually(10, "delivered", || {
        hook_status(&env, "ci")["delivered"] == 1
    });
}

#[test]
fn a_webhook_retries_with_backoff_until_the_receiver_takes_it() {
    let (url, rx) = receiver(&[503, 500, 204]);
    let env = with_config(&format!(
        "[[hooks]]\nname = \"flaky\"\non = \"session-created\"\nurl = \"{url}\"\n\
         retries = 3\nbackoff_ms = 100\n"
    ));
    env.ok(&["new", "-s", "r"]);
    let (a, b, c) = (next(&rx), next(&rx), next(&rx));
    let t = (Instant::now(), a.json()["id"].clone());
    assert_eq!(b.json()["id"], t.1, "a retry repeats the same event");
    assert_eq!(c.json()["id"], t.1);
    assert!(
        a.header("x-ai-session-signature").is_none(),
        "no secret, no signature"
    );
    eventually(10, "delivered after two failures", || {
        let s = hook_status(&env, "flaky");
        s["delivered"] == 1 && s["failed"] == 0
    });
    let dead = dead_letters(&env);
    assert_eq!(dead["dead_letters"].as_array().unwrap().len(), 0, "{dead}");
}

#[test]
fn an_undeliverable_webhook_event_goes_to_the_dead_letters() {
    // A port nobody listens on: bound, then closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = with_config(&format!(
        "[[hooks]]\nname = \"gone\"\non = \"command-finished\"\n\
         url = \"http://127.0.0.1:{port}/x\"\nretries = 2\nbackoff_ms = 20\n"
    ));
    env.ok(&["new", "-s", "d"]);
    assert_eq!(env.exec("d", "echo lost")["exit_code"], 0);
    let mut dead = Value::Null;
    eventually(20, "a dead letter", || {
        dead = dead_letters(&env);
        !dead["dead_letters"].as_array().unwrap().is_empty()
    });
    let letter = &dead["dead_letters"][0];
    assert_eq!(letter["kind"], "hook_event", "{letter}");
    assert_eq!(letter["recipient"], "gone", "{letter}");
    assert_eq!(letter["reason"], "retries_exhausted", "{letter}");
    assert_eq!(letter["attempts"], 3, "{letter}");
    assert!(
        letter["last_error"].as_str().unwrap().contains("connect"),
        "{letter}"
    );
    assert_eq!(letter["item"]["data"]["command"], "echo lost", "{letter}");
    let s = hook_status(&env, "gone");
    assert_eq!(
        (s["failed"].as_u64(), s["delivered"].as_u64()),
        (Some(1), Some(0)),
        "{s}"
    );
    let metrics = env.ok(&["stats", "--prometheus"]);
    assert!(
        metrics.contains("ai_session_hook_events_total{hook=\"gone\",outcome=\"failed\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_hanging_hook_does_not_slow_exec() {
    let env = with_config(
        "[[hooks]]\nname = \"hang\"\non = \"command-finished\"\ntimeout_secs = 600\n\
         command = [\"/bin/sleep\", \"600\"]\n",
    );
    env.ok(&["new", "-s", "fast"]);
    let started = Instant::now();
    for i in 0..10 {
        let r = env.exec("fast", &format!("echo {i}"));
        assert_eq!(r["exit_code"], 0);
    }
    // Ten execs while the first event's program hangs for ten minutes: none waited for it.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(60), "10 execs took {took:?}");
    let s = hook_status(&env, "hang");
    assert_eq!(
        (s["delivered"].as_u64(), s["queued"].as_u64()),
        (Some(0), Some(9)),
        "{s}"
    );
}

#[test]
fn a_bad_hook_stops_the_daemon_from_starting_with_the_reason() {
    let env = with_config("[[hooks]]\non = \"session-crated\"\ncommand = [\"/bin/true\"]\n");
    let out = env.run(&["ls"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("session-crated") && stderr.contains("line"),
        "{stderr}"
    );
}

#[test]
fn task_done_and_task_failed_fire_their_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tasks.jsonl");
    let env = with_config(&format!(
        "[[hooks]]\non = [\"task-done\", \"task-failed\"]\n\
         command = [\"/bin/sh\", \"-c\", \"cat >> '{}'; echo >> '{}'\"]\n",
        out.display(),
        out.display()
    ));
    let token = env
        .ok(&["agent", "register", "w1", "--keep"])
        .trim()
        .to_owned();
    env.ok(&["task", "submit", "build the docs"]);
    env.ok(&["task", "submit", "lint", "--max-retries", "0"]);
    for (verb, extra) in [("done", "--result"), ("fail", "--reason")] {
        let claimed = env.ok(&["task", "claim", "--token", &token]);
        let id = claimed.split('\t').next().unwrap().to_owned();
        env.ok(&["task", verb, &id, extra, "ok", "--token", &token]);
    }
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    eventually(20, "both task hooks", || read().lines().count() >= 2);
    let events: Vec<Value> = read()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events[0]["event"], "task-done", "{events:?}");
    assert_eq!(events[0]["data"]["description"], "build the docs");
    assert_eq!(events[0]["data"]["state"], "done");
    assert_eq!(events[1]["event"], "task-failed", "{events:?}");
    assert_eq!(events[1]["data"]["description"], "lint");
}

#[test]
fn an_alert_fires_its_hook_with_the_whole_alert() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.jsonl");
    let env = with_config(&format!(
        "[alerts]\nretry_count = 2\nretry_window_secs = 600\n\n\
         [[hooks]]\non = [\"alert\"]\n\
         command = [\"/bin/sh\", \"-c\", \"cat >> '{}'; echo >> '{}'\"]\n",
        out.display(),
        out.display()
    ));
    env.ok(&["new", "-s", "w"]);
    for _ in 0..2 {
        assert_eq!(env.exec("w", "ls /nonexistent-dir")["exit_code"], 2);
    }
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    eventually(20, "the alert hook", || read().lines().count() >= 1);
    let event: Value = serde_json::from_str(read().lines().next().unwrap()).unwrap();
    assert_eq!(event["event"], "alert", "{event}");
    assert_eq!(event["data"]["rule"], "retry_loop", "{event}");
    assert_eq!(event["data"]["session"], "w");
    assert_eq!(
        event["data"]["command"], "ls /nonexistent-dir",
        "the operator's hook gets the command the bus copy leaves out"
    );
}
