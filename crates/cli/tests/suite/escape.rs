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

/// What a viewer session running `attach` received on its terminal (its raw log).
fn viewer_bytes(env: &Env, viewer: &str) -> Vec<u8> {
    env.run(&["read", "-t", viewer, "--raw", "--since", "0"])
        .stdout
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn attach_passes_no_clipboard_writes_or_terminal_queries_unless_allowed() {
    let env = Env::new();
    env.ok(&["new", "-s", "target"]);
    let exe = env!("CARGO_BIN_EXE_ai-session");
    env.ok(&[
        "new", "-s", "viewer", "--", exe, "-L", "t", "attach", "-t", "target",
    ]);
    env.ok(&[
        "new",
        "-s",
        "viewer-clip",
        "--",
        exe,
        "-L",
        "t",
        "attach",
        "-t",
        "target",
        "--allow-clipboard",
    ]);
    for v in ["viewer", "viewer-clip"] {
        env.ok(&["wait", "-t", v, "--idle", "300", "--timeout", "20"]);
    }
    // A hostile program: sets the clipboard, asks for the cursor position, the device
    // attributes and the window title (answers would be typed into the session).
    env.exec(
        "target",
        r"printf '\033]52;c;ZXZpbA==\007\033[6n\033[c\033[21t\033]11;?\007after-the-attack\n'",
    );
    for v in ["viewer", "viewer-clip"] {
        env.ok(&[
            "wait",
            "-t",
            v,
            "--for",
            "after-the-attack",
            "--since",
            "0",
            "--timeout",
            "20",
        ]);
    }
    let plain = viewer_bytes(&env, "viewer");
    let clip = viewer_bytes(&env, "viewer-clip");
    for (name, bytes) in [("viewer", &plain), ("viewer-clip", &clip)] {
        for query in [&b"\x1b[6n"[..], b"\x1b[c", b"\x1b[21t", b"\x1b]11;?"] {
            assert!(!contains(bytes, query), "{name} got {query:?}");
        }
    }
    assert!(
        !contains(&plain, b"\x1b]52;"),
        "the clipboard write reached the terminal"
    );
    assert!(
        contains(&clip, b"\x1b]52;c;ZXZpbA=="),
        "--allow-clipboard passes OSC 52"
    );
}

#[test]
fn a_sandboxed_shell_sees_no_other_terminal_no_host_shm_and_no_secrets() {
    let env = Env::outside_tmp();
    let ws = env.home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let wss = ws.display().to_string();
    // The daemon starts with the store's passphrase in its environment, and the client that
    // creates the sessions has it (and a token variable) too.
    let out = env
        .command(&["new", "-s", "host"])
        .env("AI_SESSION_PASSPHRASE", "pass-phrase-secret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let host_tty = env.exec("host", "tty")["output"]
        .as_str()
        .unwrap()
        .trim()
        .to_string();
    assert!(host_tty.starts_with("/dev/pts/"), "{host_tty}");
    let out = env
        .command(&["new", "-s", "box", "--policy", "default", "-c", &wss])
        .env("AI_SESSION_PASSPHRASE", "pass-phrase-secret")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // Another session's terminal: not there to write to or resize.
    let r = env.exec(
        "box",
        &format!("ls /dev/pts; printf 'INJECTED' > {host_tty}; stty -F {host_tty} cols 20"),
    );
    assert_ne!(r["exit_code"], 0, "{r}");
    assert_eq!(
        r["output"].as_str().unwrap().lines().next(),
        Some("ptmx"),
        "{r}"
    );
    let screen = env.ok(&["capture", "-t", "host"]);
    assert!(!screen.contains("INJECTED"), "{screen}");
    // Its own terminals still work (a program that opens a pty).
    let r = env.exec(
        "box",
        "/usr/bin/python3 -c 'import os; m, s = os.openpty(); print(os.ttyname(s))'",
    );
    assert_eq!(r["exit_code"], 0, "{r}");

    // /dev/shm is private and bounded; nothing left on the host's.
    let r = env.exec(
        "box",
        "echo x > /dev/shm/ais-escape-probe && df -k /dev/shm /tmp | tail -2",
    );
    assert_eq!(r["exit_code"], 0, "{r}");
    for line in r["output"].as_str().unwrap().lines() {
        let size: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert_eq!(size, 1024 * 1024, "{line}");
    }
    assert!(!std::path::Path::new("/dev/shm/ais-escape-probe").exists());

    // A CPU-time limit by default.
    let r = env.exec("box", "ulimit -t");
    assert_eq!(r["output"].as_str().unwrap().trim(), "3600", "{r}");

    // No session inherits the passphrase (sandboxed or not, environment or /proc).
    for name in ["host", "box"] {
        let r = env.exec(
            name,
            "env | grep -c AI_SESSION_PASSPHRASE; tr '\\0' '\\n' < /proc/$$/environ | grep -c pass-phrase-secret",
        );
        assert_eq!(r["output"], "0\n0\n", "{name}: {r}");
    }
    // Unless given explicitly.
    env.ok(&[
        "new",
        "-s",
        "given",
        "-e",
        "AI_SESSION_PASSPHRASE=on-purpose",
    ]);
    let r = env.exec("given", "echo $AI_SESSION_PASSPHRASE");
    assert_eq!(r["output"], "on-purpose\n");
}

#[test]
fn an_agents_workspace_is_one_its_policy_allows_never_root_home_or_state() {
    let env = Env::outside_tmp();
    let home = env.home.path();
    std::fs::create_dir_all(home.join("work/project")).unwrap();
    std::fs::create_dir_all(home.join("elsewhere")).unwrap();
    let token = env
        .ok(&["agent", "register", "builder", "--keep"])
        .trim()
        .to_string();
    let id = token.split('.').next().unwrap().to_string();
    let as_agent = |dir: &str| {
        env.command(&["new", "-c", dir])
            .env("AI_SESSION_TOKEN", &token)
            .output()
            .unwrap()
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    // Bound to `default`: write access to the workspace must never be `/` or the home.
    env.ok(&["access", "policy", &format!("agent:{id}"), "default"]);
    for dir in ["/", &home.display().to_string()] {
        let out = as_agent(dir);
        assert!(!out.status.success(), "{dir} was accepted");
        assert!(
            stderr(&out).contains("cannot be an agent's workspace"),
            "{}",
            stderr(&out)
        );
    }
    let out = as_agent(&home.join("servers").display().to_string());
    assert!(!out.status.success());
    // A policy that names its workspaces: only directories under them.
    let policy = home.join("work-only.toml");
    std::fs::write(
        &policy,
        "network = \"loopback\"\nworkspaces = [\"{home}/work\"]\n[fs]\nread = [\"/usr\", \"/bin\", \"/lib\", \"/lib64\", \"/etc\", \"{workspace}\"]\nwrite = [\"{workspace}\"]\nexecute = [\"/usr\", \"/bin\"]\n",
    )
    .unwrap();
    env.ok(&[
        "access",
        "policy",
        &format!("agent:{id}"),
        &policy.display().to_string(),
    ]);
    let out = as_agent(&home.join("elsewhere").display().to_string());
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("outside the workspaces") && err.contains("/work"),
        "{err}"
    );
    let out = as_agent(&home.join("work/project").display().to_string());
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_import_by_a_policy_bound_agent_runs_in_its_policy() {
    let env = Env::outside_tmp();
    let ws = env.home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let wss = ws.display().to_string();
    env.ok(&["new", "-s", "free", "-c", &wss]);
    env.exec("free", "echo before-export");
    let export = env.home.path().join("free.export");
    let out = env.run(&["export", "-t", "free"]);
    assert!(out.status.success(), "{out:?}");
    std::fs::write(&export, &out.stdout).unwrap();
    let token = env
        .ok(&["agent", "register", "importer", "--keep"])
        .trim()
        .to_string();
    let id = token.split('.').next().unwrap().to_string();
    env.ok(&["access", "policy", &format!("agent:{id}"), "read-only"]);
    let out = env
        .command(&["import", "-s", "mine", "--json"])
        .env("AI_SESSION_TOKEN", &token)
        .stdin(std::fs::File::open(&export).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let list = env.json(&["ls"]);
    let mine = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "mine")
        .unwrap()
        .clone();
    assert_eq!(mine["sandbox"]["policy"], "read-only", "{mine}");
    let r = env.exec("mine", "echo x > written.txt");
    assert_ne!(r["exit_code"], 0, "{r}");
    assert!(!ws.join("written.txt").exists());
}

#[test]
fn a_sandboxed_shell_cannot_read_root_only_files() {
    let env = Env::outside_tmp();
    let ws = env.home.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    let wss = ws.display().to_string();
    // The daemon runs as root here: an unconfined shell reads /etc/shadow, as root may.
    env.ok(&["new", "-s", "plain", "-c", &wss]);
    let r = env.exec(
        "plain",
        "id -u; head -c 5 /etc/shadow >/dev/null && echo readable",
    );
    let root = r["output"].as_str().unwrap().starts_with("0\n");
    if root {
        assert!(r["output"].as_str().unwrap().contains("readable"), "{r}");
    }
    for policy in ["default", "no-network", "isolated"] {
        let name = format!("box-{policy}");
        env.ok(&["new", "-s", &name, "--policy", policy, "-c", &wss]);
        let r = env.exec(&name, "cat /etc/shadow");
        assert_ne!(r["exit_code"], 0, "{policy}: {r}");
        assert!(
            r["output"].as_str().unwrap().contains("Permission denied"),
            "{policy}: {r}"
        );
        // The rest of /etc is there as before.
        let r = env.exec(&name, "head -1 /etc/passwd && ls /etc | grep -c passwd");
        assert_eq!(r["exit_code"], 0, "{policy}: {r}");
    }
}
