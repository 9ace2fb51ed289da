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

/// Answers may come in any order: a server that answers the command before the hello sent
/// ahead of it still gets the command's answer used (the small CLI once dropped it, waiting
/// for the hello's, and then waited for an answer already read).
#[test]
fn the_small_cli_takes_the_commands_answer_when_it_comes_before_the_hellos() {
    use std::os::unix::net::UnixListener;
    let env = Env::new();
    let run = env.home.path().join("run");
    std::fs::create_dir_all(&run).expect("run dir");
    let listener = UnixListener::bind(run.join("t.sock")).expect("bind");
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut reader = BufReader::new(&stream);
        let mut methods = Vec::new();
        while methods.len() < 2 {
            let mut line = String::new();
            if reader.read_line(&mut line).expect("request") == 0 {
                break;
            }
            let req: Value = serde_json::from_str(&line).expect("json request");
            methods.push((
                req["id"].clone(),
                req["method"].as_str().unwrap_or("").to_owned(),
            ));
        }
        let mut out = String::new();
        for (id, method) in methods.iter().rev() {
            let result = match method.as_str() {
                "hello" => json!({"server": "out-of-order", "protocol": 1, "pid": 1}),
                _ => json!({"sessions": [], "unanswered": [], "lost": []}),
            };
            out.push_str(&json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string());
            out.push('\n');
        }
        (&stream).write_all(out.as_bytes()).expect("answers");
        methods
    });
    let (ok, text) = super::harness::run_with_deadline(&mut env.command(&["ls"]), 30);
    let methods = server.join().expect("server");
    assert_eq!(
        methods.iter().map(|(_, m)| m.as_str()).collect::<Vec<_>>(),
        ["hello", "session.list"],
        "the hello and the command were sent together"
    );
    assert!(
        ok,
        "the command's answer, read before the hello's, was lost: {text}"
    );
}
