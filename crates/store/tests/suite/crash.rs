//! A child process (this test binary, re-invoked) writes checkpoints and snapshots in a loop;
//! the parent SIGKILLs it at random moments and checks that everything the child had
//! reported done is still there and that every session and snapshot loads.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ai_session_store::{Options, SessionId, Store};

use super::common::*;

const ROOT_ENV: &str = "AI_SESSION_STORE_CRASH_ROOT";
const PASS_ENV: &str = "AI_SESSION_STORE_CRASH_PASS";

fn options() -> Options {
    match std::env::var(PASS_ENV) {
        Ok(p) => Options {
            durable: true,
            ..encrypted(&p)
        },
        Err(_) => Options::default(),
    }
}

/// The child's loop. Only does anything when re-invoked by `kill_at_random_moments`.
#[test]
#[ignore = "run by kill_at_random_moments as a child process"]
fn crash_child() {
    let Ok(root) = std::env::var(ROOT_ENV) else {
        return;
    };
    let store = Store::open(&root, options()).unwrap();
    let mut sessions: Vec<(SessionId, u64)> = store
        .load_all_sessions()
        .unwrap()
        .into_iter()
        .map(|(id, r)| (id, r.unwrap().execs))
        .collect();
    while sessions.len() < 3 {
        let s = store
            .create_session(config(&format!("s{}", sessions.len())))
            .unwrap();
        sessions.push((s.id, 0));
    }
    let mut out = std::io::stdout().lock();
    for round in 0u64.. {
        for (id, count) in sessions.iter_mut() {
            store.append_exec(id, &exec(*count)).unwrap();
            *count += 1;
            writeln!(out, "exec {id} {count}").unwrap();
            if round % 7 == 0 {
                store
                    .save_scrollback(id, &scrollback(200 + *count as usize))
                    .unwrap();
                writeln!(out, "scroll {id}").unwrap();
            }
            if round % 13 == 5 {
                let snap = store.snapshot(id, Some("crash")).unwrap();
                writeln!(out, "snap {} {}", snap.id, snap.execs).unwrap();
            }
            out.flush().unwrap();
        }
        if round % 50 == 49 {
            store.sync().unwrap();
        }
    }
}

fn run_rounds(root: &Path, pass: Option<&str>, rounds: u32) {
    let exe = std::env::current_exe().unwrap();
    let mut done: HashMap<String, u64> = HashMap::new();
    let mut snaps: Vec<(String, u64)> = Vec::new();
    let mut seed = Instant::now().elapsed().as_nanos() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    for round in 0..rounds {
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--exact",
            "suite::crash::crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROOT_ENV, root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
        if let Some(p) = pass {
            cmd.env(PASS_ENV, p);
        }
        let mut child = cmd.spawn().unwrap();
        // xorshift: a different moment each round, from 20 to 140 ms after start.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(20 + seed % 120));
        child.kill().unwrap(); // SIGKILL
        let stdout = child.stdout.take().unwrap();
        child.wait().unwrap();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["exec", id, n] => {
                    done.insert(id.to_string(), n.parse().unwrap());
                }
                ["snap", id, n] => snaps.push((id.to_string(), n.parse().unwrap())),
                _ => {}
            }
        }
        check(root, pass, &done, &snaps, round);
    }
    assert!(!done.is_empty(), "the child never got to write");
}

fn check(
    root: &Path,
    pass: Option<&str>,
    done: &HashMap<String, u64>,
    snaps: &[(String, u64)],
    round: u32,
) {
    let options = match pass {
        Some(p) => encrypted(p),
        None => plain(),
    };
    let store = Store::open(root, options).unwrap();
    for (id, record) in store.load_all_sessions().unwrap() {
        let record = record.unwrap_or_else(|e| panic!("round {round}: session {id}: {e}"));
        assert!(
            record.history_error.is_none(),
            "round {round}: {:?}",
            record.history_error
        );
        let history = store.load_history(&id).unwrap();
        let reported = done.get(id.as_str()).copied().unwrap_or(0);
        assert!(
            history.len() as u64 >= reported,
            "round {round}: session {id} lost execs: {} < {reported}",
            history.len()
        );
        // In order, none missing, none twice.
        for (n, rec) in history.iter().enumerate() {
            assert_eq!(rec, &exec(n as u64), "round {round}: session {id}");
        }
        if record.has_scrollback {
            store.load_scrollback(&id).unwrap();
        }
    }
    for (id, execs) in snaps {
        let snap = store
            .load_snapshot(id)
            .unwrap_or_else(|e| panic!("round {round}: snapshot {id}: {e}"));
        assert_eq!(snap.history.len() as u64, *execs);
    }
    assert!(store.list_snapshots(None).unwrap().len() >= snaps.len());
}

#[test]
fn kill_at_random_moments() {
    let tmp = tempfile::tempdir().unwrap();
    run_rounds(tmp.path(), None, 25);
}

#[test]
fn kill_at_random_moments_encrypted() {
    let tmp = tempfile::tempdir().unwrap();
    run_rounds(tmp.path(), Some("crash pass"), 10);
}
