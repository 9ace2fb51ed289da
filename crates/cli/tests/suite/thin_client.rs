//! The small `ai-session` client (`src/thin`): it runs `exec` and `new` itself and hands every
//! other command line to `ai-session-full` beside it. What a user sees must not depend on which
//! binary ran the command: the same output, errors, JSON shapes and exit statuses.

use std::process::{Command, Output, Stdio};

use super::harness::Env;

const FULL: &str = env!("CARGO_BIN_EXE_ai-session-full");

/// `args` run by `bin` against `env`'s daemon, as `Env::run` runs `ai-session`.
fn run_with(bin: &str, env: &Env, args: &[&str]) -> Output {
    Command::new(bin)
        .env("AI_SESSION_HOME", env.home.path())
        .env("HOME", env.home.path())
        .env_remove("PROMPT_COMMAND")
        .env("SHELL", "/bin/bash")
        .args(["-L", "t"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `args` through both binaries; asserts the same status, stdout and stderr, and returns
/// the small client's output.
fn same(env: &Env, args: &[&str]) -> Output {
    let thin = env.run(args);
    let full = run_with(FULL, env, args);
    assert_eq!(thin.status.code(), full.status.code(), "{args:?}: status");
    assert_eq!(text(&thin.stdout), text(&full.stdout), "{args:?}: stdout");
    assert_eq!(text(&thin.stderr), text(&full.stderr), "{args:?}: stderr");
    thin
}

/// The keys of a JSON object, sorted.
fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn exec_and_new_answer_alike_through_either_binary() {
    let env = Env::new();
    env.ok(&["new", "-s", "a", "--shell", "sh"]);
    // Output, the command's own status, views.
    let out = same(&env, &["exec", "-t", "a", "printf 'x\\ny\\n'"]);
    assert_eq!(text(&out.stdout), "x\ny\n");
    let out = same(&env, &["exec", "-t", "a", "sh -c 'echo err >&2; exit 7'"]);
    assert_eq!(out.status.code(), Some(7));
    same(&env, &["exec", "-t", "a", "--view", "compact", "seq 1 3"]);
    same(&env, &["exec", "-t", "a", "--view", "both", "echo both"]);
    same(
        &env,
        &[
            "exec",
            "-t",
            "a",
            "--view",
            "diagnostics",
            "echo 'src/a.rs:1:2: error: no'",
        ],
    );
    // Errors in words and in JSON, with the user's -L in the hints.
    let out = same(&env, &["exec", "-t", "nosuch", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).starts_with("error: "),
        "{}",
        text(&out.stderr)
    );
    let out = same(&env, &["exec", "-t", "nosuch", "--json", "true"]);
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["kind"], "session_not_found");
    assert_eq!(err["exit_code"], 125);
    same(&env, &["new", "-s", "a", "--shell", "sh"]);
    same(&env, &["new", "-s", "a", "--json", "--shell", "sh"]);
    let out = same(&env, &["new", "-s", "bad", "-e", "NOEQUALS"]);
    assert_eq!(out.status.code(), Some(125));
    same(&env, &["new", "--size", "wide", "--json"]);
    // `ls`, and the version.
    same(&env, &["ls"]);
    same(&env, &["--version"]);
    // JSON answers: the same fields (their values, times and ids, differ between two calls).
    let thin = env.json(&["exec", "-t", "a", "echo j"]);
    let full: serde_json::Value = serde_json::from_slice(
        &run_with(FULL, &env, &["exec", "--json", "-t", "a", "echo j"]).stdout,
    )
    .unwrap();
    assert_eq!(keys(&thin), keys(&full));
    assert_eq!(thin["output"], "j\n");
    assert_eq!(full["output"], "j\n");
    let thin = env.json(&["new", "-s", "n1", "--shell", "sh"]);
    let full: serde_json::Value = serde_json::from_slice(
        &run_with(FULL, &env, &["new", "--json", "-s", "n2", "--shell", "sh"]).stdout,
    )
    .unwrap();
    assert_eq!(keys(&thin), keys(&full));
    assert_eq!(thin["name"], "n1");
    // A command that outlives its timeout: 124 and the same hint, from either binary.
    for (bin, name) in [(env!("CARGO_BIN_EXE_ai-session"), "t1"), (FULL, "t2")] {
        env.ok(&["new", "-s", name, "--shell", "sh"]);
        let out = run_with(
            bin,
            &env,
            &["exec", "-t", name, "--timeout", "300ms", "sleep 5"],
        );
        assert_eq!(out.status.code(), Some(124), "{bin}");
        let hint = text(&out.stderr).replace(name, "T");
        assert!(hint.starts_with("[timeout] "), "{bin}: {hint}");
        assert!(hint.contains("ai-session -L t "), "{bin}: {hint}");
    }
}

#[test]
fn the_small_client_hands_everything_else_to_the_whole_cli() {
    let env = Env::new();
    // No daemon yet: `new` goes to the whole CLI, which starts one.
    assert_eq!(env.ok(&["new", "-s", "s", "--shell", "sh"]), "s\n");
    // Other commands, help and usage errors.
    assert!(env.ok(&["ls"]).starts_with("s: "), "ls");
    assert!(
        env.json(&["daemon", "status"])["pid"].is_u64(),
        "daemon status"
    );
    let help = env.ok(&["exec", "--help"]);
    assert!(help.contains("Usage: ai-session exec"), "{help}");
    let out = env.run(&["exec", "-t", "s", "--timeout", "soon", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("soon"), "{}", text(&out.stderr));
    // Run as `tmux` (a symlink to the client), `-V` is tmux's, not ai-session's.
    let bin = env.home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ai-session"), bin.join("tmux")).unwrap();
    let out = Command::new(bin.join("tmux")).arg("-V").output().unwrap();
    assert!(
        text(&out.stdout).starts_with("tmux "),
        "{}",
        text(&out.stdout)
    );
    // Data on stdin reaches the command, through the small client.
    let mut child = env
        .command(&["exec", "-t", "s", "wc -c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"12345").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout).trim(), "5");
}

#[test]
fn the_small_client_alone_runs_exec_new_and_ls_and_names_what_it_lacks() {
    let env = Env::new();
    env.ok(&["daemon", "start"]);
    let dir = tempfile::tempdir().unwrap();
    let alone = dir.path().join("ai-session");
    std::fs::copy(env!("CARGO_BIN_EXE_ai-session"), &alone).unwrap();
    let alone = alone.to_str().unwrap();
    // exec, new and ls need nothing beside it.
    assert_eq!(
        text(&run_with(alone, &env, &["new", "-s", "x", "--shell", "sh"]).stdout),
        "x\n"
    );
    let out = run_with(alone, &env, &["exec", "-t", "x", "echo hi"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "hi\n".into())
    );
    assert!(text(&run_with(alone, &env, &["ls"]).stdout).starts_with("x: "));
    // Anything else needs the whole CLI: a plain error, exit 125, JSON with --json.
    let out = run_with(alone, &env, &["daemon", "status"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("ai-session-full"),
        "{}",
        text(&out.stderr)
    );
    let out = run_with(alone, &env, &["daemon", "status", "--json"]);
    assert_eq!(out.status.code(), Some(125));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["exit_code"], 125);
    assert!(err["message"].as_str().unwrap().contains("ai-session-full"));
}
