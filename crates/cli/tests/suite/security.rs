//! Sandboxed sessions attacked from inside, and the socket attacked from outside: each
//! attempt must fail, the daemon and other sessions must not notice.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

use super::harness::{Env, alive, eventually};

pub(super) fn session<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no session {name} in {list}"))
}

fn active(env: &Env, name: &str) -> Vec<String> {
    let list = env.json(&["ls"]);
    session(&list, name)["sandbox"]["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

fn has(active: &[String], needle: &str) -> bool {
    active.iter().any(|a| a.contains(needle))
}

/// A workspace with a file, and a fake private key in the (temporary) home outside it.
pub(super) fn workspace(env: &Env) -> String {
    let ws = env.home.path().join("ws");
    std::fs::create_dir_all(ws.join("sub")).unwrap();
    std::fs::write(ws.join("notes.txt"), "workspace-content\n").unwrap();
    std::fs::create_dir_all(env.home.path().join(".ssh")).unwrap();
    std::fs::write(
        env.home.path().join(".ssh/id_ed25519"),
        "FAKE-PRIVATE-KEY\n",
    )
    .unwrap();
    ws.display().to_string()
}

#[test]
fn a_sandboxed_session_keeps_to_its_policy_and_ls_says_what_is_enforced() {
    let env = Env::outside_tmp();
    let ws = workspace(&env);
    let created = env.json(&["new", "-s", "box", "--policy", "default", "-c", &ws]);
    assert_eq!(created["sandbox"]["policy"], "default", "{created}");
    let active = active(&env, "box");
    assert!(!active.is_empty());
    let human = env.ok(&["ls"]);
    assert!(human.contains("sandbox 'default'"), "{human}");

    // The shell works as usual: exit codes, cwd carried over.
    let r = env.exec("box", "cat notes.txt && cd sub");
    assert_eq!(r["exit_code"], 0, "{r}");
    assert!(r["output"].as_str().unwrap().contains("workspace-content"));
    let r = env.exec("box", "pwd");
    assert!(
        r["output"].as_str().unwrap().trim().ends_with("/ws/sub"),
        "{r}"
    );

    let home = env.home.path().display().to_string();
    if has(&active, "landlock file-system") {
        let r = env.exec("box", &format!("cat {home}/.ssh/id_ed25519"));
        assert_eq!(r["exit_code"], 1, "{r}");
        let out = r["output"].as_str().unwrap();
        assert!(!out.contains("FAKE-PRIVATE-KEY"), "{r}");
        assert!(out.contains("Permission denied"), "{r}");
        let r = env.exec("box", &format!("echo x > {home}/escaped.txt"));
        assert_ne!(r["exit_code"], 0, "{r}");
        assert!(!env.home.path().join("escaped.txt").exists());
    }
    if has(&active, "pid namespace") {
        let r = env.exec("box", "echo $$; ls /proc | grep -c '^[0-9]'");
        let out = r["output"].as_str().unwrap().to_string();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("2"), "the shell is pid 2 inside: {out}");
        let procs: usize = lines.next().unwrap().trim().parse().unwrap();
        assert!(procs < 10, "the session sees {procs} processes");
    }
    if has(&active, "network namespace") || has(&active, "seccomp") {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let r = env.exec(
            "box",
            &format!("(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>&1 && echo CONNECTED"),
        );
        assert!(
            !r["output"].as_str().unwrap().contains("CONNECTED"),
            "reached the host's loopback: {r}"
        );
    }
    // An unconfined session beside it is unaffected, and says it is unconfined.
    env.ok(&["new", "-s", "free"]);
    let r = env.exec("free", &format!("cat {home}/.ssh/id_ed25519"));
    assert!(r["output"].as_str().unwrap().contains("FAKE-PRIVATE-KEY"));
    assert!(env.ok(&["ls"]).contains("free:") && env.ok(&["ls"]).contains("(unconfined)"));
}

/// A policy file confining a session to its workspace with `network` and these limits; its
/// path.
fn limits_policy(env: &Env, network: &str, processes: u32, memory_bytes: u64) -> String {
    let policy = env.home.path().join("limits.toml");
    std::fs::write(
        &policy,
        format!(
            r#"
allow_degrade = true
network = "{network}"
[fs]
read = ["/usr", "/bin", "/lib", "/lib64", "/etc", "/proc", "/dev", "{{workspace}}"]
write = ["{{workspace}}", "/dev/null", "/dev/tty", "/dev/pts"]
execute = ["/usr", "/bin", "/lib", "/lib64"]
[limits]
processes = {processes}
memory_bytes = {memory_bytes}
"#
        ),
    )
    .unwrap();
    policy.display().to_string()
}

#[test]
fn a_fork_bomb_and_a_memory_hog_are_contained_and_killing_leaves_nothing() {
    let env = Env::outside_tmp();
    let ws = workspace(&env);
    let policy = limits_policy(&env, "none", 40, 64 << 20);
    env.ok(&["new", "-s", "bomb", "--policy", &policy, "-c", &ws]);
    env.ok(&["new", "-s", "other"]);
    let active = active(&env, "bomb");
    let bounded = has(&active, "process limit") || has(&active, "RLIMIT_NPROC");
    // A bounded fork bomb: 200 sleeping children against a limit of 40 processes (in
    // Python: bash retries a failed fork for seconds).
    let bomb = "/usr/bin/python3 -c '
import os, time
kids = []
try:
    for i in range(200):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        kids.append(pid)
    print(\"FORKED ALL\")
except OSError as e:
    print(\"refused after\", len(kids), \"errno\", e.errno)
for pid in kids:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
'";
    let r = env.exec("bomb", bomb);
    assert_eq!(r["status"], "exited", "{r}");
    if bounded {
        let out = r["output"].as_str().unwrap();
        assert!(out.contains("refused after"), "{r}");
        assert!(!out.contains("FORKED ALL"), "{r}");
    }
    // The daemon and the other session answer at once.
    let r = env.exec("other", "echo still-here");
    assert_eq!(r["output"], "still-here\n");

    if has(&active, "memory limit") || has(&active, "RLIMIT_DATA") {
        let r = env.exec(
            "bomb",
            "/usr/bin/python3 -c 'x = bytearray(512 * 1024 * 1024); print(\"ALLOCATED\")'",
        );
        assert_ne!(r["exit_code"], 0, "{r}");
        assert!(!r["output"].as_str().unwrap().contains("ALLOCATED"), "{r}");
        let r = env.exec("other", "echo alive");
        assert_eq!(r["output"], "alive\n");
    }

    // Killing the session leaves none of its processes behind (keeper, init, shell, jobs).
    let tag = format!("{}.{}", std::process::id(), 4242);
    env.ok(&["send", "-t", "bomb", &format!("sleep {tag} &"), "Enter"]);
    let sleeper = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&tag))
                .unwrap_or(false)
                && e.file_name()
                    .to_str()
                    .and_then(|p| p.parse().ok())
                    .is_some_and(alive)
        })
    };
    eventually(10, "the sleeper to start", sleeper);
    let shell: i32 = session(&env.json(&["ls"]), "bomb")["pid"].as_i64().unwrap() as i32;
    env.ok(&["kill", "-t", "bomb"]);
    eventually(10, "every process of the session to end", || {
        !sleeper() && !alive(shell)
    });
}

#[test]
fn policy_check_explains_and_bad_policies_are_clear_errors() {
    let env = Env::outside_tmp();
    let out = env.run(&["policy", "check", "--json", "read-only"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true, "{report}");
    assert!(report["explanation"].as_str().unwrap().contains("network"));
    assert!(report["active"].is_array() && report["missing"].is_array());
    let human = env.ok(&["policy", "check", "default"]);
    assert!(
        human.contains("active:") || human.contains("NOT active:"),
        "{human}"
    );

    let bad = env.home.path().join("bad.toml");
    std::fs::write(&bad, "network = \"sideways\"\n[fs]\n").unwrap();
    let out = env.run(&["policy", "check", &bad.display().to_string()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("network") || err.contains("sideways"), "{err}");

    let out = env.run(&["new", "--policy", "no-such-profile"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("read-only"),
        "the error lists the profiles: {err}"
    );
    // Nothing was created, the daemon is fine.
    env.ok(&["new", "-s", "fine"]);
}

#[test]
fn a_sandbox_that_would_hide_the_state_directory_is_refused_clearly() {
    // This daemon's state is under /tmp; the default profile's private /tmp would hide it.
    let env = Env::new();
    if !env.home.path().starts_with("/tmp") {
        return;
    }
    let out = env.run(&["new", "--policy", "default"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AI_SESSION_HOME"), "{err}");
}

#[test]
fn another_local_user_cannot_use_the_socket() {
    if rustix::process::geteuid().as_raw() != 0 {
        return; // needs root to become another user
    }
    let env = Env::new();
    env.ok(&["new", "-s", "mine"]);
    let sock = env.home.path().join("run/t.sock");
    let try_connect = || {
        std::process::Command::new("python3")
            .args([
                "-c",
                "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(sys.argv[1]); s.sendall(b'{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"session.list\"}\\n'); d=s.recv(65536); print('REPLY', d.decode(errors='replace'))\nexcept OSError as e:\n print('REFUSED', e)\n",
                &sock.display().to_string(),
            ])
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap()
    };
    // The run directory is private (0700): the path cannot even be reached.
    let out = try_connect();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("REFUSED"), "{text}");
    // Open the directory and the socket to everyone: the daemon's peer check still refuses.
    for p in [env.home.path(), &env.home.path().join("run")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = try_connect();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("\"sessions\""),
        "another user listed sessions: {text}"
    );
    assert!(!text.contains("mine"), "{text}");
    // The owner is still served.
    assert!(env.ok(&["ls"]).contains("mine"));
}

#[test]
fn a_session_stopped_by_a_limit_says_why_and_the_audit_log_records_it() {
    let env = Env::outside_tmp();
    let ws = workspace(&env);
    let policy = env.home.path().join("cpu.toml");
    std::fs::write(
        &policy,
        "allow_degrade = true\nnetwork = \"none\"\n[fs]\nread = [\"/usr\", \"/bin\", \"/lib\", \"/lib64\", \"/etc\", \"/dev\", \"{workspace}\"]\nexecute = [\"/usr\", \"/bin\", \"/lib\", \"/lib64\"]\n[limits]\ncpu_seconds = 1\n",
    )
    .unwrap();
    let policy = policy.display().to_string();
    env.ok(&[
        "new",
        "-s",
        "spin",
        "--policy",
        &policy,
        "-c",
        &ws,
        "--",
        "/bin/sh",
        "-c",
        "while :; do :; done",
    ]);
    let mut reason = String::new();
    eventually(20, "the CPU limit to stop the spinner", || {
        let list = env.json(&["ls"]);
        reason = session(&list, "spin")["stop_reason"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        !reason.is_empty()
    });
    assert!(reason.contains("CPU time limit"), "{reason}");
    assert!(env.ok(&["ls"]).contains("CPU time limit"));
    let entries = env.run(&["audit", "ls", "--json", "-t", "spin"]);
    let entries: serde_json::Value = serde_json::from_slice(&entries.stdout).unwrap();
    let hit = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "limit_hit")
        .unwrap_or_else(|| panic!("no limit_hit in {entries}"));
    assert_eq!(hit["actor"]["kind"], "daemon");
    assert!(hit["risk"].as_u64().unwrap() >= 20);
}

/// The session cgroup directories named `name` under `/sys/fs/cgroup` (v2, or a v1 hierarchy).
fn cgroup_dirs(name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut level = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    for _ in 0..3 {
        let mut next = Vec::new();
        for dir in level {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                if entry.file_name() == name {
                    found.push(path);
                } else if !entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("ai-session-")
                {
                    next.push(path);
                }
            }
        }
        level = next;
    }
    found
}

/// A daemon with one session `first` confined by limits that take session cgroups: the env, the
/// workspace, the policy file, the daemon's pid and the cgroup bases its group was made under.
fn first_limited_session() -> (Env, String, String, i32, Vec<std::path::PathBuf>) {
    let env = Env::outside_tmp();
    let ws = workspace(&env);
    let policy = limits_policy(&env, "all", 64, 256 << 20);
    env.ok(&["new", "-s", "first", "--policy", &policy, "-c", &ws]);
    let pid = env.daemon_pid();
    let bases: Vec<std::path::PathBuf> = cgroup_dirs(&format!("ai-session-{pid}-0"))
        .iter()
        .filter_map(|d| d.parent().map(std::path::Path::to_path_buf))
        .collect();
    assert!(
        !bases.is_empty(),
        "the policy's limits made no session cgroup (the suite runs as root with cgroups)"
    );
    (env, ws, policy, pid, bases)
}

#[test]
fn a_dead_daemons_leftover_cgroups_of_the_same_name_do_not_stop_a_sandboxed_session() {
    // A daemon killed before it removed its sessions' groups leaves `ai-session-PID-N`; a later
    // daemon given the same process id names its groups the same way.
    let (env, ws, policy, pid, bases) = first_limited_session();
    // The names the next two sessions would take: an empty leftover, and one that still holds
    // a process (which must be left alone).
    let mut left = Leftovers {
        busy: std::process::Command::new("sleep")
            .arg("300.5")
            .spawn()
            .unwrap(),
        dirs: Vec::new(),
        empty: Vec::new(),
    };
    for base in &bases {
        // Taken over by the daemon once it removed it (then its own session's group, which
        // goes with the session); left behind only if the daemon failed.
        let empty = base.join(format!("ai-session-{pid}-1"));
        std::fs::create_dir(&empty).unwrap();
        left.empty.push(empty);
        let held = base.join(format!("ai-session-{pid}-2"));
        std::fs::create_dir(&held).unwrap();
        left.dirs.push(held.clone());
        std::fs::write(held.join("cgroup.procs"), left.busy.id().to_string()).unwrap();
    }
    env.ok(&["new", "-s", "second", "--policy", &policy, "-c", &ws]);
    env.ok(&["new", "-s", "third", "--policy", &policy, "-c", &ws]);
    for name in ["second", "third"] {
        assert_eq!(env.exec(name, "echo up")["output"], "up\n");
    }
    for base in &bases {
        let held = base.join(format!("ai-session-{pid}-2"));
        let procs = std::fs::read_to_string(held.join("cgroup.procs")).unwrap();
        assert!(procs.contains(&left.busy.id().to_string()), "{procs}");
    }
}

/// Groups a test made to stand for a dead daemon's, and the process it put in one: gone
/// with the test, whether it passed or not.
struct Leftovers {
    busy: std::process::Child,
    /// The groups holding `busy`.
    dirs: Vec<std::path::PathBuf>,
    /// Empty groups (removed if still empty).
    empty: Vec<std::path::PathBuf>,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        self.busy.kill().ok();
        self.busy.wait().ok();
        for dir in &self.empty {
            std::fs::remove_dir(dir).ok();
        }
        for dir in &self.dirs {
            // The kernel empties a group shortly after its last process is reaped.
            eventually(10, "the leftover group to go", || {
                std::fs::remove_dir(dir).is_ok() || !dir.exists()
            });
        }
    }
}

#[test]
fn a_new_daemon_removes_the_empty_session_cgroups_of_daemons_no_longer_running() {
    let (env, _, _, pid, bases) = first_limited_session();
    // A group of a process that has exited (a killed daemon's), and one named after a live
    // process (this test's), which a new daemon must leave alone.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let dead = bases
        .iter()
        .map(|b| b.join(format!("ai-session-{}-0", gone.id())))
        .collect::<Vec<_>>();
    let live = bases
        .iter()
        .map(|b| b.join(format!("ai-session-{}-9999", std::process::id())))
        .collect::<Vec<_>>();
    for dir in dead.iter().chain(&live) {
        std::fs::create_dir(dir).unwrap();
    }
    let later = Env::outside_tmp();
    later.ok(&["ls"]);
    eventually(10, "the dead daemon's groups to be removed", || {
        dead.iter().all(|d| !d.exists())
    });
    for dir in &live {
        assert!(dir.exists(), "{} was removed", dir.display());
        std::fs::remove_dir(dir).unwrap();
    }
    // The running daemon's own group is untouched.
    assert_eq!(env.exec("first", "echo up")["output"], "up\n");
    assert!(!cgroup_dirs(&format!("ai-session-{pid}-0")).is_empty());
}
