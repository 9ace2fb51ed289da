//! `ls` says where each session's shell is now and what it is doing.

use super::harness::{Env, eventually};

fn session(env: &Env, name: &str) -> serde_json::Value {
    env.json(&["ls"])["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no session {name}"))
        .clone()
}

#[test]
fn ls_shows_the_current_directory_and_the_state() {
    let env = Env::new();
    let start = env.home.path().canonicalize().unwrap();
    env.ok(&["new", "-s", "s", "-c", start.to_str().unwrap()]);
    env.ok(&["wait", "-t", "s", "--prompt", "--timeout", "20"]);
    let s = session(&env, "s");
    assert_eq!(s["state"], "idle", "{s}");
    assert_eq!(s["cwd"], start.display().to_string(), "{s}");
    // A cd through exec, then one typed by hand: ls follows both.
    env.exec("s", "cd /tmp");
    assert_eq!(session(&env, "s")["cwd"], "/tmp");
    env.ok(&["send", "-t", "s", "cd /", "Enter"]);
    env.ok(&["wait", "-t", "s", "--prompt", "--timeout", "20"]);
    assert_eq!(session(&env, "s")["cwd"], "/");
    let line = env.ok(&["ls"]);
    assert!(line.contains("s: idle") && line.contains(" in /"), "{line}");

    // A command running: busy, with what runs.
    let r = env.json(&["exec", "-t", "s", "--idle-timeout", "0.3", "sleep 30"]);
    assert_eq!(r["status"], "running", "{r}");
    let s = session(&env, "s");
    assert_eq!(s["state"], "busy", "{s}");
    assert_eq!(s["foreground"]["command"], "sleep", "{s}");
    let line = env.ok(&["ls"]);
    assert!(line.contains("s: busy running sleep"), "{line}");

    // Interrupted: idle again, and the last command's status shows.
    env.ok(&["send", "-t", "s", "C-c"]);
    env.ok(&["wait", "-t", "s", "--prompt", "--timeout", "20"]);
    assert_eq!(session(&env, "s")["state"], "idle");
    let line = env.ok(&["ls"]);
    assert!(line.contains("last command exited 130"), "{line}");

    // The shell exits: exited, with its code.
    env.ok(&["send", "-t", "s", "exit 6", "Enter"]);
    eventually(20, "the shell to exit", || {
        session(&env, "s")["state"] == "exited"
    });
    assert_eq!(session(&env, "s")["exit_code"], 6);
    assert!(env.ok(&["ls"]).contains("s: exited(6)"));
}
