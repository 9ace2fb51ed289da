//! A `serve` that cannot start answers its client with an error, at once: a port another
//! program holds (for the API, then for `/metrics`), over the CLI and its `--json`. The daemon
//! then serves as if nothing happened, and a later `serve` starts. (A router that panics while
//! it is built is the same error: `http::tests::a_router_that_panics_while_built_is_an_error`.)

use std::process::Output;
use std::time::{Duration, Instant};

use super::harness::Env;

/// Runs `args`, failing the test past 20 s (a start that hangs would leave it waiting).
fn within_deadline(env: &Env, args: &[&str]) -> Output {
    let started = Instant::now();
    let mut child = env
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().ok();
            panic!("{args:?} got no answer within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_serve_that_cannot_listen_answers_with_an_error() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();

    let out = within_deadline(&env, &["serve", "--listen", &port]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(err.contains(&format!("cannot listen on {port}")), "{err}");
    assert!(err.contains("--listen"), "{err}");

    let out = within_deadline(
        &env,
        &[
            "serve",
            "--json",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            &port,
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["exit_code"].as_i64()),
        (Some("internal"), Some(125)),
        "{v}"
    );
    assert!(
        v["hint"]
            .as_str()
            .is_some_and(|h| h.contains("--metrics-listen")),
        "{v}"
    );

    // Nothing was left half started: the next serve starts, and the session is still there.
    drop(taken);
    let v = env.json(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(v["started"], true, "{v}");
    assert!(env.ok(&["ls"]).contains("s:"));
}
