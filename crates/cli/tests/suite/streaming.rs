//! Output as it arrives: `exec` on a real terminal (the CLI run inside a session) and with
//! `--stream` into a pipe prints the command's output while it runs, once; `read --follow`
//! follows a session until SIGINT (130) or the session's end (0).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;

use super::harness::{Env, eventually};

/// A named pipe the session's command blocks on until the test writes a line into it.
fn gate(env: &Env) -> std::path::PathBuf {
    let path = env.home.path().join("gate");
    let st = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .unwrap();
    assert!(st.success());
    path
}

fn open_gate(path: &std::path::Path) {
    // Opening for writing waits for the command to open it for reading.
    let mut w = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    w.write_all(b"go\n").unwrap();
}

fn screen(env: &Env, session: &str) -> Vec<String> {
    env.json(&["capture", "-t", session])["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().trim_end().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn exec_on_a_terminal_prints_output_as_it_arrives_and_once() {
    let env = Env::new();
    env.ok(&["new", "-s", "work"]);
    let gate = gate(&env);
    let command = format!(
        "echo first-line; read x < '{}'; echo second-line; (exit 3)",
        gate.display()
    );
    let exe = env!("CARGO_BIN_EXE_ai-session");
    env.ok(&[
        "new", "-s", "viewer", "--", exe, "-L", "t", "exec", "-t", "work", &command,
    ]);
    env.ok(&[
        "wait",
        "-t",
        "viewer",
        "--for",
        "first-line",
        "--since",
        "0",
        "--timeout",
        "20",
    ]);
    // The command is still blocked: only its first line has arrived.
    assert_eq!(screen(&env, "viewer"), ["first-line"]);
    open_gate(&gate);
    eventually(20, "the viewer's exec to exit", || {
        let ls = env.json(&["ls"]);
        ls["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "viewer" && s["state"] == "exited")
    });
    let ls = env.json(&["ls"]);
    let viewer = ls["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "viewer")
        .unwrap()
        .clone();
    assert_eq!(viewer["exit_code"], 3, "{viewer}");
    // Each line once; no prompt, no echoed command line, no mark.
    assert_eq!(screen(&env, "viewer"), ["first-line", "second-line"]);
}

#[test]
fn stream_into_a_pipe_gives_plain_lines_as_they_come() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let gate = gate(&env);
    let command = format!(
        "printf '\\033[31mred\\033[0m\\n'; read x < '{}'; echo after; (exit 4)",
        gate.display()
    );
    let mut child = env
        .command(&["exec", "-t", "s", "--stream", &command])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "red\n");
    open_gate(&gate);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "after\n");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(4));
    // --stream with --view compact: the output as it came, then the view.
    let out = env.run(&[
        "exec", "-t", "s", "--stream", "--view", "compact", "echo one",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("one\n--- compact view ---\n"), "{text}");
}

#[test]
fn read_follow_follows_until_sigint_or_the_end() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    env.exec("s", "echo before-follow");
    let mut child = env
        .command(&["read", "-t", "s", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut until = |needle: &str| {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "EOF before {needle}");
            if line.trim_end() == needle {
                return;
            }
        }
    };
    until("before-follow");
    env.exec("s", "echo after-follow");
    until("after-follow");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(130), "{done:?}");
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(!err.contains("panicked"), "{err}");

    // The session ends: the follower ends with 0.
    let child = env
        .command(&["read", "-t", "s", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    env.ok(&["send", "-t", "s", "exit", "Enter"]);
    let done = child.wait_with_output().unwrap();
    assert_eq!(done.status.code(), Some(0), "{done:?}");
}
