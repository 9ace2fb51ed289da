//! The per-session exec queue is bounded: past 64 waiting execs, a new one is refused with a
//! typed, documented error (`overloaded`, reason `exec_queue_full`) saying what to do; the
//! queued ones still run. Execs pipelined on one connection run in the order they were sent.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::Env;

#[test]
fn the_65th_queued_exec_is_refused_with_a_typed_error_and_the_rest_run() {
    let env = Env::new();
    env.ok(&["new", "-s", "q"]);
    // At its prompt, so the first exec is typed at once and the next ones queue behind it.
    assert_eq!(env.exec("q", "true")["exit_code"], 0);
    env.ok(&["wait", "-t", "q", "--prompt"]);
    let stream = UnixStream::connect(env.home.path().join("run/t.sock")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    // One exec holds the shell until the test opens its gate (once the refusal came back, so
    // however slowly the others arrive they all find it busy). It is sent alone and seen
    // running first: each request runs on a task of its own, so sent together a quick one
    // could be typed before it and the queue drain as fast as it fills. Then 64 wait behind
    // it and the 66th finds the queue full.
    let gate = env.home.path().join("gate");
    let first = format!(
        "printf 'gate-%s\\n' up; until [ -e '{}' ]; do sleep 0.05; done",
        gate.display()
    );
    let exec = |id: u64, command: &str| {
        let req = json!({"jsonrpc": "2.0", "id": id, "method": "session.exec",
            "params": {"target": "q", "command": command, "timeout_ms": 110_000,
                // Small answers: the connection's answer budget holds all 66 at once.
                "max_output_bytes": 4096}});
        let mut line = serde_json::to_vec(&req).expect("json");
        line.push(b'\n');
        line
    };
    (&stream).write_all(&exec(0, &first)).expect("send");
    env.ok(&["wait", "-t", "q", "--for", "gate-up", "--timeout", "60s"]);
    let mut out = Vec::new();
    for id in 1..66u64 {
        out.extend(exec(id, &format!("echo queued-{id}")));
    }
    (&stream).write_all(&out).expect("send");
    let mut reader = BufReader::new(&stream);
    let mut refused = Vec::new();
    let mut ran = 0;
    for _ in 0..66 {
        let mut line = String::new();
        reader.read_line(&mut line).expect("answer");
        let answer: Value = serde_json::from_str(&line).expect("json answer");
        if let Some(err) = answer.get("error") {
            refused.push((answer["id"].clone(), err.clone()));
            std::fs::write(&gate, b"").expect("open the gate");
        } else {
            assert_eq!(answer["result"]["exit_code"], 0, "{answer}");
            ran += 1;
        }
    }
    // Exactly the one exec past 64 waiting.
    assert_eq!(refused.len(), 1, "{refused:?}");
    // Each request runs on a task of its own, so which of the last ones reaches the full queue
    // first is not fixed; one of the queued ones (never the first, which holds the shell) is.
    let (id, err) = refused.last().expect("one refused");
    assert!(id.as_u64().is_some_and(|id| id > 0), "{err}");
    assert_eq!(err["data"]["kind"], "overloaded", "{err}");
    assert_eq!(err["data"]["reason"], "exec_queue_full", "{err}");
    let msg = err["message"].as_str().unwrap_or_default();
    assert!(msg.contains("64 execs waiting"), "{msg}");
    let hint = err["data"]["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("ai-session wait -t q --prompt"), "{hint}");
    assert_eq!(ran, 66 - refused.len());
}

#[test]
fn pipelined_execs_on_one_connection_run_in_the_order_sent() {
    let env = Env::new();
    env.ok(&["new", "-s", "o"]);
    let dir = env.home.path().join("there");
    std::fs::create_dir(&dir).expect("dir");
    pipeline_in_order(&env.home.path().join("run/t.sock"), "o", &dir);
}

/// Writes a `cd DIR`, a `pwd` and 40 `echo`s for session `target` at once on one connection to
/// `sock`, and checks they ran in the order sent: the `pwd` after the `cd`, the outputs' offsets
/// rising with the request ids.
pub(super) fn pipeline_in_order(sock: &std::path::Path, target: &str, dir: &std::path::Path) {
    let stream = UnixStream::connect(sock).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    // A `cd` then the commands that rely on it, all written at once as an agent pipelines them.
    let mut commands = vec![format!("cd '{}'", dir.display()), "pwd".to_owned()];
    commands.extend((0..40).map(|i| format!("echo n{i}")));
    let mut out = Vec::new();
    for (id, command) in commands.iter().enumerate() {
        let req = json!({"jsonrpc": "2.0", "id": id, "method": "session.exec",
            "params": {"target": target, "command": command, "timeout_ms": 30_000}});
        out.extend(serde_json::to_vec(&req).expect("json"));
        out.push(b'\n');
    }
    (&stream).write_all(&out).expect("send");
    let mut reader = BufReader::new(&stream);
    let mut answers = vec![Value::Null; commands.len()];
    for _ in 0..commands.len() {
        let mut line = String::new();
        reader.read_line(&mut line).expect("answer");
        let answer: Value = serde_json::from_str(&line).expect("json answer");
        let id = answer["id"].as_u64().expect("id") as usize;
        answers[id] = answer["result"].clone();
    }
    assert_eq!(
        answers[1]["output"].as_str().map(str::trim),
        Some(dir.to_str().expect("utf-8 path")),
        "pwd ran before the cd sent ahead of it: {}",
        answers[1]
    );
    let starts: Vec<u64> = answers
        .iter()
        .map(|a| a["output_start"].as_u64().expect("output_start"))
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] < w[1]),
        "execs ran out of the order sent (output offsets by request id): {starts:?}"
    );
    for (i, a) in answers.iter().skip(2).enumerate() {
        assert_eq!(
            a["output"].as_str().map(str::trim),
            Some(format!("n{i}").as_str())
        );
    }
}
