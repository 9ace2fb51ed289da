//! Connecting, the handshake retry, and what happens to notifications nobody reads.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;

use ai_session_client::{Client, Error, Notifications, Options, Selector};
use serde_json::{Value, json};

/// A peer that plays the daemon's part of a script on each connection it accepts.
struct Peer {
    _dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Peer {
    /// Listens on a fresh socket; `script` runs once per accepted connection, in order.
    fn start(scripts: Vec<fn(UnixStream)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("peer.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        std::thread::spawn(move || {
            for script in scripts {
                let (stream, _) = listener.accept().unwrap();
                script(stream);
            }
        });
        Self { _dir: dir, socket }
    }

    fn selector(&self) -> Selector {
        Selector::socket(&self.socket)
    }
}

/// Reads one request line and returns it.
fn request(r: &mut BufReader<UnixStream>) -> Value {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap()
}

fn send(w: &mut UnixStream, v: Value) {
    writeln!(w, "{v}").unwrap();
}

/// Answers `hello`, checking what the client says about itself.
fn answer_hello(w: &mut UnixStream, r: &mut BufReader<UnixStream>) {
    let hello = request(r);
    assert_eq!(hello["method"], "hello");
    assert_eq!(hello["params"]["client"], "test-client");
    assert_eq!(hello["params"]["protocol"], 1);
    send(
        w,
        json!({"jsonrpc": "2.0", "id": hello["id"], "result": {"server": "peer", "protocol": 1, "pid": 1}}),
    );
}

fn note(n: u64) -> Value {
    json!({"jsonrpc": "2.0", "method": "session.output", "params": {"n": n}})
}

/// Answers `hello`, then, to the next request, three notifications and only then its answer.
fn three_notifications_then_answer(mut w: UnixStream) {
    let mut r = BufReader::new(w.try_clone().unwrap());
    answer_hello(&mut w, &mut r);
    let req = request(&mut r);
    for n in 1..=3 {
        send(&mut w, note(n));
    }
    send(
        &mut w,
        json!({"jsonrpc": "2.0", "id": req["id"], "result": {"ok": true}}),
    );
    // Hold the connection until the client closes it.
    let mut rest = String::new();
    r.read_line(&mut rest).ok();
}

fn opts(notifications: Notifications) -> Options {
    Options::new("test-client").notifications(notifications)
}

#[tokio::test]
async fn no_daemon_and_no_start_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let err = Client::connect(&Selector::socket(&socket), &opts(Notifications::Discard))
        .await
        .err()
        .unwrap();
    match err {
        Error::NotRunning(path) => assert_eq!(path, socket),
        other => panic!("expected NotRunning, got {other:?}"),
    }
}

#[tokio::test]
async fn a_handshake_dropped_by_a_dying_daemon_is_retried() {
    let peer = Peer::start(vec![
        // A daemon on its way out: accepts, then closes without answering.
        |stream| drop(stream),
        |mut w| {
            let mut r = BufReader::new(w.try_clone().unwrap());
            answer_hello(&mut w, &mut r);
            let req = request(&mut r);
            assert_eq!(req["method"], "daemon.status");
            send(
                &mut w,
                json!({"jsonrpc": "2.0", "id": req["id"], "result": {"answered": "second"}}),
            );
        },
    ]);
    let client = Client::connect(&peer.selector(), &opts(Notifications::Discard))
        .await
        .unwrap();
    let v: Value = client.call("daemon.status", json!({})).await.unwrap();
    assert_eq!(v["answered"], "second");
}

#[tokio::test]
async fn an_error_answer_is_the_daemons_error() {
    let peer = Peer::start(vec![|mut w| {
        let mut r = BufReader::new(w.try_clone().unwrap());
        answer_hello(&mut w, &mut r);
        let req = request(&mut r);
        send(
            &mut w,
            json!({"jsonrpc": "2.0", "id": req["id"], "error": {
                "code": -32001, "message": "no session named x",
                "data": {"kind": "session_not_found", "hint": "run `ai-session ls`"}}}),
        );
    }]);
    let client = Client::connect(&peer.selector(), &opts(Notifications::Discard))
        .await
        .unwrap();
    let err = client
        .call::<_, Value>("session.exec", json!({"target": "x"}))
        .await
        .err()
        .unwrap();
    let rpc = err.rpc().expect("an rpc error");
    assert_eq!(
        rpc.kind(),
        Some(ai_session_protocol::ErrorKind::SessionNotFound)
    );
    assert_eq!(
        err.to_string(),
        "no session named x\nhint: run `ai-session ls`"
    );
}

#[tokio::test]
async fn a_client_that_lags_behind_close_when_full_loses_the_connection() {
    let peer = Peer::start(vec![three_notifications_then_answer]);
    let client = Client::connect(&peer.selector(), &opts(Notifications::CloseWhenFull(2)))
        .await
        .unwrap();
    // The third notification finds the queue full: the connection ends before the answer.
    let err = client
        .call::<_, Value>("session.subscribe", json!({}))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, Error::Closed), "{err:?}");
    assert!(client.is_closed());
    // What was queued is still delivered, in order, then the end.
    assert_eq!(client.notification().await.unwrap().params["n"], 1);
    assert_eq!(client.notification().await.unwrap().params["n"], 2);
    assert!(client.notification().await.is_none());
    let again = client.call::<_, Value>("daemon.status", json!({})).await;
    assert!(matches!(again, Err(Error::Closed)));
}

#[tokio::test]
async fn drop_newest_keeps_the_connection_and_the_oldest_notifications() {
    let peer = Peer::start(vec![three_notifications_then_answer]);
    let client = Client::connect(&peer.selector(), &opts(Notifications::DropNewest(2)))
        .await
        .unwrap();
    let v: Value = client.call("session.subscribe", json!({})).await.unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(client.notification().await.unwrap().params["n"], 1);
    assert_eq!(client.try_notification().unwrap().params["n"], 2);
    assert!(client.try_notification().is_none());
    assert!(!client.is_closed());
}

#[tokio::test]
async fn discarded_notifications_do_not_block_calls() {
    let peer = Peer::start(vec![three_notifications_then_answer]);
    let client = Client::connect(&peer.selector(), &opts(Notifications::Discard))
        .await
        .unwrap();
    let v: Value = client.call("session.subscribe", json!({})).await.unwrap();
    assert_eq!(v["ok"], true);
    assert!(client.notification().await.is_none());
}

#[test]
fn the_blocking_client_calls_through_the_same_connection() {
    let peer = Peer::start(vec![three_notifications_then_answer]);
    let client = ai_session_client::blocking::Client::connect(
        &peer.selector(),
        &opts(Notifications::DropNewest(8)),
    )
    .unwrap();
    let v: Value = client.call("session.subscribe", json!({})).unwrap();
    assert_eq!(v["ok"], true);
    for n in 1..=3 {
        assert_eq!(client.notification().unwrap().params["n"], n);
    }
}

static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

#[tokio::test]
async fn an_audit_warning_reaches_the_callers_hook_and_the_result_stays() {
    let peer = Peer::start(vec![|mut w| {
        let mut r = BufReader::new(w.try_clone().unwrap());
        answer_hello(&mut w, &mut r);
        let req = request(&mut r);
        send(
            &mut w,
            json!({"jsonrpc": "2.0", "id": req["id"], "result": {
                "killed": true, "audit_warning": "not recorded: the audit log is read-only"}}),
        );
    }]);
    let opts =
        opts(Notifications::Discard).on_warning(|w| WARNED.lock().unwrap().push(w.to_owned()));
    let client = Client::connect(&peer.selector(), &opts).await.unwrap();
    let v: Value = client.call("session.kill", json!({})).await.unwrap();
    assert_eq!(v["killed"], true);
    assert_eq!(
        *WARNED.lock().unwrap(),
        vec!["not recorded: the audit log is read-only".to_owned()]
    );
}
