//! What a SIGKILLed daemon's successor gets back: every acknowledged session, and every
//! acknowledged exec in the session's context (the history has them; the context's own
//! checkpoint runs every two seconds).

use super::harness::{Env, alive, eventually};

pub(super) fn sigkill(pid: i32) {
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill");
    eventually(10, "the daemon to die", || !alive(pid));
}

/// An exec answered just before a SIGKILL is in the context after the restart: the context
/// saved at the last checkpoint is caught up from the history at start.
#[test]
fn the_context_gets_back_the_execs_after_its_last_checkpoint() {
    let env = Env::new();
    env.ok(&["new", "-s", "w"]);
    let pid = env.daemon_pid();
    for i in 0..3 {
        let out = env.exec("w", &format!("echo acknowledged-{i}"));
        assert_eq!(out["exit_code"], 0, "{out}");
    }
    sigkill(pid);
    let ctx = env.ok(&["context", "-t", "w"]);
    for i in 0..3 {
        assert!(ctx.contains(&format!("echo acknowledged-{i}")), "{ctx}");
    }
    // Recorded once: a second restart replays nothing twice.
    let before = ctx.matches("echo acknowledged-").count();
    env.ok(&["daemon", "stop"]);
    let again = env.ok(&["context", "-t", "w"]);
    assert_eq!(
        again.matches("echo acknowledged-").count(),
        before,
        "{again}"
    );
}

/// `session.new` is recorded before its answer: a SIGKILL right after it (0 ms), 20 times in
/// a row, loses none of the 20 sessions.
#[test]
fn every_acknowledged_session_survives_a_sigkill_right_after_its_answer() {
    let env = Env::new();
    for i in 0..20 {
        // Started (or brought back) before the clock starts: the pid to kill.
        env.ok(&["ls"]);
        let pid = env.daemon_pid();
        let made = env.json(&["new", "-s", &format!("s{i}")]);
        assert_eq!(made["name"], format!("s{i}"), "{made}");
        assert!(made.get("persisted").is_none(), "{made}");
        sigkill(pid);
    }
    let list = env.json(&["ls"]);
    let names: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    for i in 0..20 {
        assert!(
            names.contains(&format!("s{i}").as_str()),
            "s{i} lost: {names:?}"
        );
    }
}

/// A raw client of the daemon's socket, past its `hello`.
fn raw_client(sock: &std::path::Path) -> std::io::BufReader<std::os::unix::net::UnixStream> {
    use std::io::{BufRead, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect");
    s.write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\",\"params\":{\"client\":\"raw\",\"protocol\":1}}\n")
        .expect("hello");
    let mut r = std::io::BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("hello answer");
    assert!(line.contains("\"result\""), "{line}");
    r
}

/// When the daemon closes the connection of the client that asked it to stop (which is how
/// `daemon stop` knows it is gone), its lock is free, even with other clients connected: the
/// lock's open file is shared with a duplicate kept for `daemon upgrade`, which lived on until
/// the last connection was dropped with the runtime, up to tens of milliseconds later, long
/// enough for the next start to be refused as "another daemon is already running".
#[test]
fn the_lock_is_free_when_the_stopping_client_sees_the_daemon_close() {
    use std::io::{Read, Write};
    let env = Env::new();
    for i in 0..3 {
        env.ok(&["new", "-s", &format!("s{i}")]);
    }
    let lock_path = env.home.path().join("servers/t/daemon.lock");
    let sock = env.home.path().join("run/t.sock");
    for round in 0..3 {
        env.ok(&["ls"]);
        let idle: Vec<_> = (0..30).map(|_| raw_client(&sock)).collect();
        let mut stopper = raw_client(&sock).into_inner();
        stopper
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"daemon.stop\",\"params\":{}}\n")
            .expect("stop");
        let mut rest = Vec::new();
        stopper.read_to_end(&mut rest).expect("read until closed");
        let lock = std::fs::File::open(&lock_path).expect("lock");
        let free = rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive);
        assert!(
            free.is_ok(),
            "round {round}: the stopped daemon's lock is still held"
        );
        drop(lock);
        drop(idle);
    }
}
