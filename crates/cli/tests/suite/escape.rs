//! A process inside a session attacks the daemon itself: it looks for the socket (by its
//! path, through `/proc/*/root`), connects, and asks for an unconfined session. Sandboxed
//! sessions, and every session an agent starts, must not get one; a process in another user
//! namespace that does reach the socket is refused by the daemon.

use super::harness::Env;

/// Finds every path to a daemon socket the process can see, connects, and tries `hello` and
/// then `session.new` for an unconfined session named `escaped`. Prints one line per path.
const ATTACK: &str = r#"
import glob, json, os, socket
home = os.environ.get("AI_SESSION_HOME", "")
paths = set(glob.glob(home + "/run/*.sock")) | {home + "/run/t.sock"}
paths |= set(glob.glob("/proc/*/root" + home + "/run/*.sock"))
for p in sorted(paths):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        s.connect(p)
        hello = {"jsonrpc": "2.0", "id": 1, "method": "hello", "params": {"client": "x", "protocol": 1}}
        new = {"jsonrpc": "2.0", "id": 2, "method": "session.new", "params": {"name": "escaped"}}
        s.sendall((json.dumps(hello) + "\n" + json.dumps(new) + "\n").encode())
        data = b""
        while data.count(b"\n") < 2:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        print("CONNECTED", p, data.decode(errors="replace").replace("\n", " "))
    except OSError as e:
        print("BLOCKED", p, type(e).__name__)
print("ATTACK-DONE")
"#;

fn names(env: &Env) -> Vec<String> {
    env.json(&["ls"])["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

/// Runs the attack in session `name` and asserts it got nowhere.
fn attack_from(env: &Env, name: &str, ws: &std::path::Path) {
    std::fs::write(ws.join("attack.py"), ATTACK).unwrap();
    let r = env.exec(name, "/usr/bin/python3 attack.py");
    let out = r["output"].as_str().unwrap();
    assert!(out.contains("ATTACK-DONE"), "the attack did not run: {r}");
    assert!(
        !out.contains("CONNECTED"),
        "reached the daemon from {name}: {out}"
    );
    assert!(
        !names(env).contains(&"escaped".to_string()),
        "the session {name} created a session through the daemon: {out}"
    );
}

#[test]
fn no_sandboxed_session_can_reach_the_daemon() {
    let env = Env::outside_tmp();
    let ws = env.home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let wss = ws.display().to_string();
    for policy in ["default", "read-only", "no-network", "isolated"] {
        let name = format!("box-{policy}");
        env.ok(&["new", "-s", &name, "--policy", policy, "-c", &wss]);
        let list = env.json(&["ls"]);
        let me = list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name.as_str())
            .unwrap()
            .clone();
        let active = me["sandbox"]["active"].to_string();
        assert!(active.contains("daemon socket and state hidden"), "{me}");
        // The state directory is an empty, read-only stand-in; the session's own hooks work.
        let r = env.exec(
            &name,
            "ls -A \"$AI_SESSION_HOME\"/run 2>/dev/null | wc -l; touch \"$AI_SESSION_HOME\"/run/x",
        );
        assert_ne!(r["exit_code"], 0, "{r}");
        assert_eq!(
            r["output"].as_str().unwrap().lines().next(),
            Some("0"),
            "{r}"
        );
        attack_from(&env, &name, &ws);
    }
}

#[test]
fn a_session_an_agent_starts_is_isolated_from_the_daemon() {
    let env = Env::outside_tmp();
    let ws = env.home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let token = env
        .ok(&["agent", "register", "worker", "--keep"])
        .trim()
        .to_string();
    let made = env
        .command(&["new", "-s", "agent-work", "-c", &ws.display().to_string()])
        .env("AI_SESSION_TOKEN", &token)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let list = env.json(&["ls"]);
    let me = &list["sessions"][0];
    assert_eq!(me["sandbox"]["policy"], "isolated", "{list}");
    // The agent's shell still works as an unconfined one would for files and the network
    // policy: it writes its workspace and sees the exit codes.
    let r = env.exec("agent-work", "echo ok > out.txt && cat out.txt; false");
    assert_eq!(r["exit_code"], 1, "{r}");
    assert!(r["output"].as_str().unwrap().contains("ok"), "{r}");
    attack_from(&env, "agent-work", &ws);
}

#[test]
fn a_process_in_another_user_namespace_is_refused_at_the_socket() {
    let env = Env::new();
    env.ok(&["ls"]);
    // `unshare -U -r` keeps the user's uid outside and the socket path reachable: only the
    // daemon's own check stands between it and an owner's connection.
    let out = std::process::Command::new("unshare")
        .args(["-U", "-r", env!("CARGO_BIN_EXE_ai-session"), "-L", "t"])
        .args(["new", "-s", "escaped"])
        .env("AI_SESSION_HOME", env.home.path())
        .env("HOME", env.home.path())
        .output()
        .expect("run unshare (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a foreign user namespace was served: {err}"
    );
    assert!(err.contains("another user namespace"), "{err}");
    assert!(!names(&env).contains(&"escaped".to_string()));
    let audit = env.ok(&["audit", "ls"]);
    assert!(audit.contains("connection.refused"), "{audit}");
    // The daemon is untouched.
    env.ok(&["new", "-s", "fine"]);
}
