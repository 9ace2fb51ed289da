//! The 2-second checkpoint leaves a session alone while its command pours out output (capturing
//! it stops the PTY being read), and saves its scrollback once the flood is over.

use std::time::{Duration, Instant, SystemTime};

use super::harness::{Env, eventually, files_under};

/// The saved scrollback file of the env's only session, and when it was last written.
fn saved(env: &Env) -> Option<SystemTime> {
    let store = env.home.path().join("servers/t/store/sessions");
    files_under(&store)
        .into_iter()
        .find(|p| p.ends_with("scrollback"))
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
}

#[test]
fn a_flooding_exec_is_checkpointed_after_it_ends_not_during_it() {
    let env = Env::new();
    env.ok(&["new", "-s", "f"]);
    env.ok(&["exec", "-t", "f", "echo before"]);
    // The first checkpoint saves what the session printed so far.
    eventually(20, "a first scrollback checkpoint", || {
        saved(&env).is_some()
    });
    // About 6 to 7 seconds of output at several MB/s. Watched from 1.5 to 5 seconds, with a checkpoint
    // tick every 2 seconds: at least one tick sees it flooding.
    let file = env.home.path().join("chunk.txt");
    std::fs::write(&file, "0123456789abcdef".repeat(32 << 10)).expect("write");
    let flood = format!(
        "end=$(($(date +%s) + 7)); while [ $(date +%s) -lt $end ]; do cat '{}'; echo; sleep 0.05; done",
        file.display()
    );
    let started = Instant::now();
    let mut child = env
        .command(&[
            "exec",
            "-t",
            "f",
            "--timeout",
            "60",
            "--view",
            "compact",
            &flood,
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn exec");
    // A tick just before the output got going may still save the typed line: the watch
    // starts once the flood is well under way.
    std::thread::sleep(Duration::from_millis(1500));
    let before = saved(&env);
    while started.elapsed() < Duration::from_secs(5) {
        assert_eq!(
            saved(&env),
            before,
            "the scrollback was checkpointed while the flood ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
    // Once it is over, the next tick saves it.
    eventually(10, "the scrollback saved after the flood", || {
        saved(&env) != before
    });
    let capture = env.ok(&["capture", "-t", "f"]);
    assert!(capture.contains("0123456789abcdef"), "{capture}");
}
