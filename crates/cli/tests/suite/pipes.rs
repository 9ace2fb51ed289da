//! A closed standard output ends every command quietly: status 0 or 141 (as SIGPIPE would),
//! nothing on stderr, no panic.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use super::harness::Env;

/// Runs `args` with standard output a pipe whose reading end is closed before the command
/// starts, so its first write fails (closing it after the spawn would race a fast command that
/// writes before the close, such as a usage error).
fn closed_stdout(env: &Env, args: &[&str], stdin: Option<&[u8]>) {
    let (reader, writer) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    drop(reader);
    let mut cmd = env.command(args);
    cmd.stdout(Stdio::from(writer)).stderr(Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = stdin {
        let mut w = child.stdin.take().unwrap();
        w.write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 141)),
        "{args:?}: {:?}\n{err}",
        out.status
    );
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe") && !err.contains("backtrace"),
        "{args:?}: {err}"
    );
}

#[test]
fn every_command_ends_quietly_on_a_closed_pipe() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    env.exec("s", "seq 1 2000");
    for args in [
        &["ls"][..],
        &["ls", "--json"],
        &["read", "-t", "s", "--since", "0"],
        &["read", "-t", "s", "--json"],
        &["capture", "-t", "s", "--scrollback", "100"],
        &["exec", "-t", "s", "seq 1 100"],
        &["exec", "-t", "s", "--json", "seq 1 100"],
        &["context", "-t", "s"],
        &["audit", "ls"],
        &["audit", "verify"],
        &["daemon", "status"],
        &["stats"],
        &["access", "ls"],
        &["snapshot", "ls"],
        &["export", "-t", "s"],
        &["--help"],
        &["exec", "--json", "true"],
        &["capture", "-t", "nope", "--json"],
        &["alerts"],
        &["decisions", "ls"],
        &["decisions", "stats"],
        &["completions", "bash"],
        &["man"],
    ] {
        closed_stdout(&env, args, None);
    }
    closed_stdout(
        &env,
        &["parse", "--command", "cargo build"],
        Some(b"error: x\n"),
    );
}

/// `ai-session exec ... | head -1`, as a user types it: one line, status 0 or 141.
#[test]
fn exec_into_head_prints_one_line() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let exe = env!("CARGO_BIN_EXE_ai-session");
    for sub in [
        "exec -t s 'seq 1 300000'",
        "read -t s --since 0",
        "capture -t s --scrollback 5000",
    ] {
        let script = format!("'{exe}' -L t {sub} | head -1; echo \"status=${{PIPESTATUS[0]}}\"");
        let mut child = std::process::Command::new("bash")
            .args(["-c", &script])
            .env("AI_SESSION_HOME", env.home.path())
            .env("HOME", env.home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            lines.push(line.unwrap());
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(lines.len(), 2, "{sub}: {lines:?}\n{err}");
        assert!(
            lines[1] == "status=0" || lines[1] == "status=141",
            "{sub}: {lines:?}\n{err}"
        );
        assert!(!err.contains("panicked"), "{sub}: {err}");
    }
}

/// The tmux layer's commands too (`ai-session tmux list-sessions | head -0` panicked before).
#[test]
fn tmux_commands_end_quietly_on_a_closed_pipe() {
    let env = Env::new();
    for name in ["x", "y"] {
        env.ok(&["tmux", "new-session", "-d", "-s", name]);
    }
    for args in [
        &["tmux", "list-sessions"][..],
        &["tmux", "list-windows", "-a"],
        &["tmux", "list-panes", "-a"],
        &["tmux", "show-options", "-g"],
        &["tmux", "capture-pane", "-p", "-t", "x"],
        &["tmux", "display-message", "-p", "#{session_name}"],
        &["tmux", "-V"],
    ] {
        closed_stdout(&env, args, None);
    }
    env.ok(&["tmux", "kill-server"]);
}
