//! A client may send its command right behind its `hello`, without waiting for the hello's
//! answer (the small CLI does, one round trip for both): the daemon handles a hello before it
//! reads the next request, so the command runs as the identity the hello set, and nothing
//! runs behind a hello it refused.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{Value, json};

use super::harness::Env;

/// Writes `requests` in one write on a fresh connection; the answers, in the order read.
fn pipelined(env: &Env, requests: &[Value]) -> Vec<Value> {
    let stream = UnixStream::connect(env.home.path().join("run/t.sock")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut bytes = Vec::new();
    for r in requests {
        bytes.extend(serde_json::to_vec(r).expect("json"));
        bytes.push(b'\n');
    }
    (&stream).write_all(&bytes).expect("send");
    let mut reader = BufReader::new(&stream);
    (0..requests.len())
        .map(|_| {
            let mut line = String::new();
            reader.read_line(&mut line).expect("answer");
            serde_json::from_str(&line).expect("json answer")
        })
        .collect()
}

fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[test]
fn a_command_sent_behind_a_refused_hello_never_runs() {
    let env = Env::new();
    env.ok(&["new", "-s", "h"]);
    let marker = env.home.path().join("ran-behind-a-refused-hello");
    let answers = pipelined(
        &env,
        &[
            request(1, "hello", json!({"client": "test", "protocol": 999})),
            request(
                2,
                "session.exec",
                json!({"target": "h", "command": format!("touch '{}'", marker.display())}),
            ),
        ],
    );
    let by_id = |id: u64| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no answer {id}: {answers:?}"))
    };
    assert!(by_id(1)["error"].is_object(), "{answers:?}");
    let refused = &by_id(2)["error"];
    assert_eq!(refused["data"]["kind"], "permission_denied", "{answers:?}");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("hello was refused")),
        "{answers:?}"
    );
    // The session is idle and answers: had the exec run, its file would be there by now.
    env.exec("h", "true");
    assert!(!marker.exists(), "the command ran behind a refused hello");
}

#[test]
fn a_token_hello_sent_ahead_decides_who_runs_the_command_behind_it() {
    let env = Env::new();
    env.ok(&["new", "-s", "mine"]);
    let token = env
        .ok(&["agent", "register", "reader", "--keep"])
        .trim()
        .to_string();
    let marker = env.home.path().join("ran-as-the-owner");
    // Twenty tries: with the hello and the exec on tasks of their own, the exec would
    // sometimes run before the hello set the agent's identity, as the owner.
    for round in 0..20 {
        let answers = pipelined(
            &env,
            &[
                request(
                    1,
                    "hello",
                    json!({"client": "test", "protocol": 1, "token": token}),
                ),
                request(
                    2,
                    "session.exec",
                    json!({"target": "mine", "command": format!("touch '{}'", marker.display())}),
                ),
            ],
        );
        let exec = answers
            .iter()
            .find(|a| a["id"] == 2)
            .unwrap_or_else(|| panic!("no exec answer: {answers:?}"));
        assert!(
            exec["error"].is_object(),
            "round {round}: the agent's exec of the owner's session ran: {answers:?}"
        );
        assert!(!marker.exists(), "round {round}");
    }
}

#[test]
fn the_small_cli_sends_its_command_with_the_hello_and_still_reports_a_refusal() {
    let env = Env::new();
    env.ok(&["new", "-s", "c"]);
    let r = env.json(&["exec", "-t", "c", "echo together"]);
    assert_eq!(r["exit_code"], 0, "{r}");
    assert_eq!(r["output"], "together\n", "{r}");
    // With a token the hello is answered first; an unknown token is refused and nothing runs.
    let marker = env.home.path().join("ran-with-a-forged-token");
    let out = env
        .command(&["exec", "-t", "c", &format!("touch '{}'", marker.display())])
        .env("AI_SESSION_TOKEN", "12345.forged")
        .output()
        .expect("run");
    assert!(!out.status.success(), "{out:?}");
    assert!(!marker.exists());
}
