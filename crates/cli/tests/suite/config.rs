//! The configuration file, end to end: every key changes what the daemon does, a bad file
//! keeps the daemon from starting with an error naming the key and its line, and `daemon
//! status` says which file was used.

use super::harness::Env;

fn with_config(text: &str) -> Env {
    let env = Env::new();
    std::fs::write(env.home.path().join("config.toml"), text).expect("write config.toml");
    env
}

#[test]
fn a_bad_file_keeps_the_daemon_from_starting_and_names_key_and_line() {
    let env = with_config("[exec]\ntimeout_secs = 5\nidle_timout = 1\n");
    let out = env.run(&["ls"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{err}");
    assert!(
        err.contains("config.toml") && err.contains("line 3") && err.contains("idle_timout"),
        "{err}"
    );
    let status = env.run(&["daemon", "status"]);
    assert_eq!(status.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&status.stdout).contains("not running"));
    // A value out of range is as bad as an unknown key.
    std::fs::write(
        env.home.path().join("config.toml"),
        "[exec]\ntimeout_secs = -3\n",
    )
    .unwrap();
    let err = String::from_utf8_lossy(&env.run(&["ls"]).stderr).into_owned();
    assert!(
        err.contains("line 2") && err.contains("timeout_secs"),
        "{err}"
    );
}

#[test]
fn daemon_status_names_the_file_used() {
    let env = Env::new();
    let s = env.json(&["daemon", "start"]);
    let path = env.home.path().join("config.toml");
    assert_eq!(s["config"]["path"], path.display().to_string(), "{s}");
    assert_eq!(s["config"]["loaded"], false, "{s}");
    env.ok(&["daemon", "stop"]);
    std::fs::write(&path, "[exec]\ntimeout_secs = 60\n").unwrap();
    let text = env.ok(&["daemon", "start"]);
    assert!(
        text.contains(&format!("config: {}", path.display())),
        "{text}"
    );
    assert_eq!(env.json(&["daemon", "status"])["config"]["loaded"], true);
    // $AI_SESSION_CONFIG points elsewhere.
    env.ok(&["daemon", "stop"]);
    let other = env.home.path().join("other.toml");
    std::fs::write(&other, "").unwrap();
    let out = env
        .command(&["daemon", "start", "--json"])
        .env("AI_SESSION_CONFIG", &other)
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["config"]["path"], other.display().to_string(), "{s}");
}

#[test]
fn exec_defaults_apply_when_a_call_gives_none() {
    let env = with_config("[exec]\ntimeout_secs = 1.5\n");
    env.ok(&["new", "-s", "s"]);
    // No --timeout: the file's 1.5 s, not the built-in 120 s.
    let r = env.json(&["exec", "-t", "s", "sleep 20"]);
    assert_eq!(r["status"], "timeout", "{r}");
    assert!(r["duration_ms"].as_f64().unwrap() < 10_000.0, "{r}");
    env.ok(&["send", "-t", "s", "C-c"]);
    env.ok(&["wait", "-t", "s", "--prompt", "--timeout", "20"]);
    // A call that gives its own timeout keeps it.
    let r = env.json(&["exec", "-t", "s", "--timeout", "30", "sleep 2; echo done"]);
    assert_eq!(r["status"], "exited", "{r}");

    let env = with_config("[exec]\nidle_timeout_secs = 0.5\n");
    env.ok(&["new", "-s", "s"]);
    let r = env.json(&["exec", "-t", "s", "echo first; sleep 20"]);
    assert_eq!(r["status"], "running", "{r}");
    assert!(r["output"].as_str().unwrap().contains("first"), "{r}");
}

/// The defaults are applied by the daemon's service, so the HTTP API (and MCP) get them too.
#[test]
fn exec_defaults_apply_over_http_and_http_listen_is_used() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let env = with_config(&format!(
        "[exec]\ntimeout_secs = 1\n[http]\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    let r = env.json(&["serve"]);
    assert_eq!(r["listen"], format!("127.0.0.1:{port}"), "{r}");
    let token = std::fs::read_to_string(r["token_file"].as_str().unwrap()).unwrap();
    env.ok(&["new", "-s", "h"]);
    let (status, body) = post(
        &format!("127.0.0.1:{port}"),
        token.trim(),
        "/v1/sessions/h/exec",
        r#"{"command":"sleep 20"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["status"], "timeout", "{r}");
}

fn post(addr: &str, token: &str, path: &str, body: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    let a = super::harness::http(addr, "POST", path, &[("Authorization", &auth)], body);
    (a.status, a.body)
}

#[test]
fn session_env_applies_under_new_e_and_pagers_follow_no_pager() {
    let env = with_config("[session]\nenv = { GREETING = \"from-config\", PAGER = \"more\" }\n");
    env.ok(&["new", "-s", "a"]);
    env.ok(&["new", "-s", "b", "-e", "GREETING=from-e"]);
    let r = env.exec("a", "echo \"$GREETING $PAGER $GIT_PAGER\"");
    assert_eq!(r["output"], "from-config more cat\n", "{r}");
    let r = env.exec("b", "echo \"$GREETING\"");
    assert_eq!(r["output"], "from-e\n", "{r}");

    // no_pager = false: the pager variables are left as the caller's environment has them.
    let env = with_config("[session]\nno_pager = false\n");
    let out = env
        .command(&["new", "-s", "c"])
        .env_remove("PAGER")
        .env_remove("GIT_PAGER")
        .env("MANPAGER", "less")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r = env.exec("c", "echo \"${PAGER-unset} ${GIT_PAGER-unset} $MANPAGER\"");
    assert_eq!(r["output"], "unset unset less\n", "{r}");

    // Without the file, pagers are off.
    let env = Env::new();
    let out = env
        .command(&["new", "-s", "d"])
        .env_remove("PAGER")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(env.exec("d", "echo \"$PAGER\"")["output"], "cat\n");
}
