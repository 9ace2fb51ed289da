//! What a SIGKILLed daemon's successor gets back: every acknowledged session, and every
//! acknowledged exec in the session's context (the history has them; the context's own
//! checkpoint runs every two seconds).

use super::harness::{Env, alive, eventually};

fn sigkill(pid: i32) {
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
