//! The CLI's exit statuses: the command's own passes through; the CLI's own failures are 125
//! ("could not run") and 124 (a timeout); `--json` failures are JSON on stdout; hints name
//! CLI commands with the user's `-L`.

use super::harness::Env;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_stdout(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

#[test]
fn the_commands_own_status_passes_through() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    for code in [0, 1, 2, 7, 124, 125, 255] {
        let out = env.run(&["exec", "-t", "s", &format!("(exit {code})")]);
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    }
}

#[test]
fn could_not_run_is_125_with_a_hint() {
    let env = Env::new();
    env.ok(&["new", "-s", "alpha"]);
    let out = env.run(&["exec", "-t", "nope", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(
        err.contains("error: no session named 'nope'")
            && err.contains("hint: ")
            && err.contains("alpha"),
        "{err}"
    );
    // Bad usage: clap's message, 125 rather than clap's 2.
    let out = env.run(&["exec", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(stderr(&out).contains("-t <NAME>"), "{}", stderr(&out));
    let out = env.run(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(125));
    // A daemon that cannot start (its socket's directory cannot be made).
    let out = env
        .command(&["ls"])
        .args(["-S", "/proc/self/nonexistent/sock"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    // Help and version are no failure.
    let out = env.run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Exit status:") && help.contains("125"),
        "{help}"
    );
    assert_eq!(env.run(&["--version"]).status.code(), Some(0));
}

#[test]
fn timeouts_are_124() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let out = env.run(&["exec", "-t", "s", "--timeout", "0.5", "sleep 30"]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("[timeout]"), "{}", stderr(&out));
    env.ok(&["send", "-t", "s", "C-c"]);
    let out = env.run(&[
        "wait",
        "-t",
        "s",
        "--for",
        "never-printed",
        "--timeout",
        "0.5",
    ]);
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
}

#[test]
fn json_errors_are_json_on_stdout() {
    let env = Env::new();
    env.ok(&["new", "-s", "alpha"]);
    let out = env.run(&["capture", "-t", "nope", "--json"]);
    assert_eq!(out.status.code(), Some(125));
    let v = json_stdout(&out);
    assert_eq!(v["kind"], "session_not_found", "{v}");
    assert_eq!(v["message"], "no session named 'nope'", "{v}");
    assert!(v["hint"].as_str().unwrap().contains("alpha"), "{v}");
    assert_eq!(v["sessions"], serde_json::json!(["alpha"]), "{v}");
    assert_eq!(v["exit_code"], 125);
    // A usage error with --json.
    let out = env.run(&["exec", "--json", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let v = json_stdout(&out);
    assert_eq!(v["kind"], "usage", "{v}");
    assert!(v["message"].as_str().unwrap().contains("-t <NAME>"), "{v}");
    assert!(v["hint"].as_str().unwrap().contains("--help"), "{v}");
    // A timeout with --json is the exec result itself, with 124.
    env.ok(&["new", "-s", "s"]);
    let out = env.run(&["exec", "-t", "s", "--json", "--timeout", "0.5", "sleep 30"]);
    assert_eq!(out.status.code(), Some(124));
    assert_eq!(json_stdout(&out)["status"], "timeout");
}

#[test]
fn hints_name_cli_commands_with_the_users_label() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let out = env.run(&["exec", "-t", "s", "--idle-timeout", "0.3", "sleep 30"]);
    assert_eq!(out.status.code(), Some(124));
    let err = stderr(&out);
    assert!(err.contains("ai-session -L t wait -t s --prompt"), "{err}");
    // The session is busy: the refusal's hint too.
    let out = env.run(&["exec", "-t", "s", "--json", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let v = json_stdout(&out);
    assert_eq!(v["kind"], "session_busy", "{v}");
    let hint = v["hint"].as_str().unwrap();
    assert!(hint.contains("ai-session -L t "), "{hint}");
    for foreign in ["session_", "/v1/", "timeout_ms", "session.", "tools/"] {
        assert!(!hint.contains(foreign), "{foreign} in {hint}");
    }
}
