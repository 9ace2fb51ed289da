//! Bad input of every kind: the daemon answers with a clear error or a bounded result, stays up,
//! and other sessions are untouched.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use super::harness::Env;

struct Raw {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Raw {
    fn connect(env: &Env) -> Self {
        env.ok(&["daemon", "start"]);
        let stream = UnixStream::connect(env.home.path().join("run/t.sock")).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Self { stream, reader }
    }

    fn send(&mut self, bytes: &[u8]) -> serde_json::Value {
        // The daemon may answer and close before taking all of an oversized request.
        if let Err(e) = self.stream.write_all(bytes) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad reply {line:?}: {e}"))
    }
}

#[test]
fn malformed_requests_get_json_rpc_errors() {
    let env = Env::new();
    env.ok(&["new", "-s", "keep"]);
    let mut raw = Raw::connect(&env);
    let r = raw.send(b"{not json\n");
    assert_eq!(r["error"]["code"], -32700);
    assert_eq!(r["id"], serde_json::Value::Null);
    let r = raw.send(b"\xff\xfe\x00garbage\n");
    assert_eq!(r["error"]["code"], -32700);
    let r = raw.send(b"{\"id\":3,\"hello\":1}\n");
    assert_eq!(r["error"]["code"], -32600);
    assert_eq!(r["id"], 3);
    let r = raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"session.fly\"}\n");
    assert_eq!(r["error"]["data"]["kind"], "method_not_found");
    assert!(
        r["error"]["data"]["hint"]
            .as_str()
            .unwrap()
            .contains("session.exec")
    );
    let r = raw.send(
        b"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"session.exec\",\"params\":{\"target\":7}}\n",
    );
    assert_eq!(r["error"]["data"]["kind"], "invalid_params");
    let r = raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"session.wait\",\"params\":{\"target\":\"keep\",\"condition\":{\"kind\":\"regex\",\"pattern\":\"(\"}}}\n");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid regex")
    );
    // The same connection still works.
    let r = raw.send(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"session.list\"}\n");
    assert_eq!(r["result"]["sessions"][0]["name"], "keep");
}

#[test]
fn oversized_request_closes_only_that_connection() {
    let env = Env::new();
    env.ok(&["new", "-s", "keep"]);
    let mut raw = Raw::connect(&env);
    let mut big = vec![b'x'; 17 * 1024 * 1024];
    big.push(b'\n');
    let r = raw.send(&big);
    assert_eq!(r["error"]["data"]["kind"], "too_large");
    assert_eq!(
        env.exec("keep", "echo still-here")["output"],
        "still-here\n"
    );
}

#[test]
fn client_disconnecting_mid_exec_leaves_the_session_working() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let mut raw = Raw::connect(&env);
    raw.stream
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"session.exec\",\"params\":{\"target\":\"s\",\"command\":\"sleep 0.5; echo late\"}}\n")
        .unwrap();
    drop(raw);
    env.ok(&[
        "wait",
        "-t",
        "s",
        "--for",
        "^late",
        "--since",
        "0",
        "--timeout",
        "20",
    ]);
    env.ok(&["wait", "-t", "s", "--prompt", "--timeout", "20"]);
    assert_eq!(env.exec("s", "echo next")["output"], "next\n");
}

#[test]
fn binary_output_huge_lines_and_escape_floods_are_bounded() {
    let env = Env::new();
    env.ok(&["new", "-s", "s", "--shell", "/bin/sh"]);
    env.ok(&["new", "-s", "other", "--shell", "/bin/sh"]);
    let r = env.exec("s", "head -c 200000 /dev/urandom; echo");
    assert_eq!(r["exit_code"], 0);
    // A 100 MB single line: the result keeps head and tail, bounded, and says so.
    let r = env.exec("s", "head -c 100000000 /dev/zero | tr '\\0' x; echo");
    assert_eq!(r["exit_code"], 0);
    assert_eq!(r["truncated"], true);
    let out = r["output"].as_str().unwrap();
    assert!(out.len() < 9 << 20, "{} bytes", out.len());
    assert!(out.contains("bytes omitted"));
    // An escape-sequence flood.
    let r = env.exec("s", "i=0; while [ $i -lt 20000 ]; do printf '\\033[31m\\033]0;t\\007\\033[2J\\033]133;D;9\\007'; i=$((i+1)); done; echo done");
    assert_eq!(r["exit_code"], 0);
    assert!(r["output"].as_str().unwrap().ends_with("done\n"));
    let read = env.json(&["read", "-t", "s", "--since", "0", "--max-bytes", "1000"]);
    // The 100 MB pushed the oldest output out of the bounded log, and the read says so.
    let sessions = env.json(&["ls"]);
    let s = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "s")
        .unwrap();
    let log_start = s["log_start"].as_u64().unwrap();
    assert!(log_start > 0);
    assert_eq!(read["dropped"].as_u64().unwrap(), log_start);
    assert_eq!(read["start"].as_u64().unwrap(), log_start);
    assert!(read["more"].as_bool().unwrap());
    assert_eq!(env.exec("other", "echo untouched")["output"], "untouched\n");
}

#[test]
fn read_since_never_loses_or_repeats() {
    let env = Env::new();
    env.ok(&["new", "-s", "s", "--shell", "/bin/sh"]);
    env.exec("s", "seq 1 5000");
    let mut since = 0u64;
    let mut all = String::new();
    loop {
        let r = env.json(&[
            "read",
            "-t",
            "s",
            "--since",
            &since.to_string(),
            "--max-bytes",
            "777",
            "--raw",
        ]);
        all.push_str(r["data"].as_str().unwrap());
        assert_eq!(r["start"].as_u64().unwrap(), since);
        since = r["end"].as_u64().unwrap();
        if !r["more"].as_bool().unwrap() {
            break;
        }
    }
    let numbers: Vec<u32> = all
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .filter(|n| *n >= 1)
        .collect();
    let seq: Vec<u32> = (1..=5000).collect();
    assert!(
        numbers.windows(5000).any(|w| w == seq.as_slice()),
        "the sequence is not intact"
    );
    let beyond = env.run(&["read", "-t", "s", "--since", "999999999"]);
    assert!(String::from_utf8_lossy(&beyond.stderr).contains("beyond the end"));
}

/// At its descriptor limit the daemon answers a new client with an error saying so (and logs it
/// at most once a second) instead of leaving it waiting; once descriptors are free it serves
/// again.
#[test]
fn out_of_descriptors_a_new_client_gets_an_error_not_a_hang() {
    let env = Env::new();
    // A daemon whose hard limit is 64 descriptors (`daemon start` passes its limit on).
    let mut start = std::process::Command::new("sh");
    start
        .arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_ai-session"))
        .args(["-L", "t", "daemon", "start"])
        .env("AI_SESSION_HOME", env.home.path())
        .env("HOME", env.home.path());
    assert!(start.status().unwrap().success());
    let sock = env.home.path().join("run/t.sock");
    let hello = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\",\"params\":{\"client\":\"t\",\"protocol\":1}}\n";
    let mut open = Vec::new();
    let mut refused = 0;
    for _ in 0..100 {
        let mut s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        // A refused client may find the connection already closed, its answer waiting.
        if let Err(e) = s.write_all(hello) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
        let mut line = String::new();
        let mut r = BufReader::new(s.try_clone().unwrap());
        r.read_line(&mut line)
            .unwrap_or_else(|e| panic!("no answer after {} connections: {e}", open.len()));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v.get("error").is_some() {
            assert_eq!(v["error"]["data"]["kind"], "overloaded", "{v}");
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains("file descriptors"), "{msg}");
            refused += 1;
        }
        open.push(s);
    }
    assert!(refused > 0, "the limit was never reached");
    drop(open);
    super::harness::eventually(10, "the daemon to serve again", || {
        env.run(&["ls"]).status.success()
    });
    env.ok(&["new", "-s", "after"]);
    assert_eq!(env.exec("after", "echo ok")["output"], "ok\n");
}

fn peak_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// A client that pipelines 200 reads of 4 MiB and never reads an answer: the daemon computes
/// answers only up to its per-connection budget, stops reading that client, and its memory stays
/// small (it grew by gigabytes until the kernel killed it); other clients are served meanwhile.
#[test]
fn a_client_that_never_reads_its_answers_cannot_grow_the_daemon() {
    let env = Env::new();
    env.ok(&["new", "-s", "big"]);
    // 4 MiB of output in the log, in 80-column lines, typed rather than exec'd (no view to
    // build).
    env.ok(&[
        "send",
        "-t",
        "big",
        "yes $(printf %079d 0) | head -c 4194304; echo; echo all-$((6*7))",
        "Enter",
    ]);
    env.ok(&[
        "wait",
        "-t",
        "big",
        "--for",
        "^all-42",
        "--since",
        "0",
        "--timeout",
        "120",
    ]);
    env.ok(&["wait", "-t", "big", "--prompt", "--timeout", "60"]);
    let pid = env.daemon_pid();
    let before = peak_kib(pid);
    let mut raw = Raw::connect(&env);
    let mut batch = String::new();
    for id in 0..200 {
        batch.push_str(&format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"session.read\",\"params\":{{\"target\":\"big\",\"since\":0,\"max_bytes\":4194304}}}}\n"
        ));
    }
    raw.stream.write_all(batch.as_bytes()).unwrap();
    // An exec from another client queues behind every read the daemon took on: when it is
    // answered, whatever the daemon was going to compute for the silent client is in memory.
    assert_eq!(env.exec("big", "echo other")["output"], "other\n");
    let peak = peak_kib(pid);
    eprintln!("daemon peak RSS {before} -> {peak} KiB");
    assert!(
        peak - before < 400 * 1024,
        "peak RSS grew by {} MiB",
        (peak - before) >> 10
    );
    drop(raw);
    assert_eq!(env.exec("big", "echo after")["output"], "after\n");
}
