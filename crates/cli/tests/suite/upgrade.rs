//! `daemon upgrade` end to end: the running daemon hands its sessions to a new daemon process;
//! programs keep their pids, their state and their output, exit codes still arrive, and a new
//! binary that fails leaves the old daemon serving.

use serde_json::Value;

use super::harness::{Env, alive, eventually};

fn session<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["sessions"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no session {name} in {list}"))
}

fn pids(env: &Env) -> Vec<(String, i64)> {
    let list = env.json(&["ls"]);
    let mut out: Vec<(String, i64)> = list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_owned(),
                s["pid"].as_i64().expect("pid"),
            )
        })
        .collect();
    out.sort();
    out
}

fn daemon_log(env: &Env) -> String {
    std::fs::read_to_string(env.home.path().join("servers/t/daemon.log")).unwrap_or_default()
}

fn upgrade(env: &Env) -> Value {
    let out = env.run(&["daemon", "upgrade", "--json"]);
    assert!(
        out.status.success(),
        "upgrade failed:\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        daemon_log(env)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The whole raw log of a session from `since`, read in pieces until its end.
fn read_all(env: &Env, t: &str, since: u64) -> (String, u64) {
    let mut data = String::new();
    let mut at = since;
    loop {
        let r = env.json(&["read", "-t", t, "--raw", "--since", &at.to_string()]);
        assert_eq!(
            r["start"].as_u64(),
            Some(at),
            "bytes dropped from the log: {r}"
        );
        data.push_str(r["data"].as_str().expect("data"));
        at = r["end"].as_u64().expect("end");
        if r["more"] != true {
            return (data, at);
        }
    }
}

/// Every complete `tick-N` line in `text`, in order (a last line without its newline is
/// still being written).
fn ticks(text: &str) -> Vec<u64> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines.pop();
    lines
        .iter()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("tick-"))
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[test]
fn upgrade_keeps_programs_their_pids_state_and_output() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-s",
        "counter",
        "--",
        "sh",
        "-c",
        "i=0; while :; do echo tick-$i; i=$((i+1)); sleep 0.01; done",
    ]);
    env.ok(&["new", "-s", "sh"]);
    assert_eq!(env.exec("sh", "export X=1")["exit_code"], 0);
    env.ok(&["new", "-s", "py", "--", "python3", "-q"]);
    env.ok(&[
        "wait",
        "-t",
        "py",
        "--for",
        ">>> $",
        "--since",
        "0",
        "--timeout",
        "20",
    ]);
    env.ok(&["send", "-t", "py", "v = 41 + 1", "Enter"]);
    env.ok(&["new", "-s", "short", "--", "sh", "-c", "read x; exit 7"]);
    env.ok(&[
        "wait",
        "-t",
        "counter",
        "--for",
        "^tick-20$",
        "--since",
        "0",
        "--timeout",
        "20",
    ]);
    let before = pids(&env);
    let old_pid = env.daemon_pid();
    let (first, mid) = read_all(&env, "counter", 0);

    let up = upgrade(&env);
    assert_eq!(up["old_pid"], old_pid);
    let new_pid = env.daemon_pid();
    assert_eq!(up["new_pid"], new_pid);
    assert_ne!(new_pid, old_pid);
    assert_eq!(up["sessions"].as_array().map(Vec::len), Some(4), "{up}");
    // Same programs, same pids, all alive.
    assert_eq!(pids(&env), before);
    for (_, pid) in &before {
        assert!(alive(*pid as i32), "pid {pid} died in the upgrade");
    }

    // The shell kept its exported variable, and exit codes are right.
    let x = env.exec("sh", "echo \"X=$X\"");
    assert_eq!(x["output"], "X=1\n", "{x}");
    assert_eq!(x["exit_code"], 0);
    assert_eq!(env.exec("sh", "(exit 3)")["exit_code"], 3);
    assert_eq!(env.exec("sh", "false")["exit_code"], 1);
    // The REPL kept its variable.
    env.ok(&["send", "-t", "py", "print(v)", "Enter"]);
    env.ok(&["wait", "-t", "py", "--for", "^42$", "--timeout", "20"]);

    // The counter's output: what was read before and after the upgrade is one unbroken run,
    // no line lost or repeated, and reading from offset 0 again gives the same bytes.
    let target = ticks(&first).last().copied().unwrap_or(0) + 100;
    env.ok(&[
        "wait",
        "-t",
        "counter",
        "--for",
        &format!("^tick-{target}$"),
        "--since",
        &mid.to_string(),
        "--timeout",
        "30",
    ]);
    let (rest, end) = read_all(&env, "counter", mid);
    let (whole, whole_end) = read_all(&env, "counter", 0);
    assert!(whole_end >= end);
    assert!(
        whole.starts_with(&format!("{first}{rest}")),
        "the log changed under the upgrade"
    );
    let all = ticks(&whole);
    assert!(all.len() > 120, "{} ticks", all.len());
    for (i, n) in all.iter().enumerate() {
        assert_eq!(
            *n,
            i as u64,
            "tick {i} lost or repeated: {:?}",
            &all[i.saturating_sub(3)..(i + 3).min(all.len())]
        );
    }

    // A second upgrade: the first daemon's reaper still reports to whoever serves now.
    let again = upgrade(&env);
    assert_eq!(again["old_pid"], new_pid);
    assert_eq!(pids(&env), before);
    env.ok(&["send", "-t", "short", "go", "Enter"]);
    eventually(
        20,
        "the program started before both upgrades to exit",
        || session(&env.json(&["ls"]), "short")["state"] == "exited",
    );
    assert_eq!(session(&env.json(&["ls"]), "short")["exit_code"], 7);
    // The reapers leave once their programs are gone.
    env.ok(&["kill", "-t", "counter"]);
    env.ok(&["kill", "-t", "py"]);
    env.ok(&["kill", "-t", "sh"]);
    eventually(20, "the first daemon's reaper to exit", || !alive(old_pid));
    eventually(20, "the second daemon's reaper to exit", || !alive(new_pid));
    // New sessions after the upgrade work as ever.
    env.ok(&["new", "-s", "after"]);
    assert_eq!(env.exec("after", "echo fresh")["output"], "fresh\n");
}

#[test]
fn a_failing_new_binary_leaves_the_old_daemon_serving() {
    let env = Env::new();
    env.ok(&["new", "-s", "sh"]);
    assert_eq!(env.exec("sh", "export X=kept")["exit_code"], 0);
    let old_pid = env.daemon_pid();
    let before = pids(&env);
    let broken = env.home.path().join("broken-ai-session");
    std::fs::write(
        &broken,
        "#!/bin/sh\necho 'this build is broken' >&2\nexit 1\n",
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = env.run(&[
        "daemon",
        "upgrade",
        "--binary",
        broken.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not take over") && err.contains("this build is broken"),
        "{err}"
    );
    assert!(err.contains("keeps serving"), "{err}");
    // The same daemon serves the same sessions.
    assert_eq!(env.daemon_pid(), old_pid);
    assert_eq!(pids(&env), before);
    assert_eq!(env.exec("sh", "echo $X")["output"], "kept\n");
    env.ok(&["new", "-s", "other"]);
    // And a good upgrade still works after a failed one.
    upgrade(&env);
    assert_eq!(env.exec("sh", "echo $X")["output"], "kept\n");
}

#[test]
fn upgrade_refuses_a_path_that_is_not_a_binary() {
    let env = Env::new();
    env.ok(&["new", "-s", "sh"]);
    let out = env.run(&["daemon", "upgrade", "--binary", "/nonexistent/ai-session"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot upgrade to"));
    assert_eq!(env.exec("sh", "echo ok")["output"], "ok\n");
}

/// When the old daemon cannot exec the reaper (the new binary is gone by then) it reaps in
/// its own process; it must not keep the daemon lock or the listening socket, or a restart
/// after the new daemon dies would be refused (or hang on a socket nobody serves).
#[test]
fn a_reaper_that_could_not_exec_holds_neither_the_lock_nor_the_socket() {
    let env = Env::new();
    env.ok(&["new", "-s", "sh"]);
    // A program that outlives its terminal keeps the reaper waiting after the new daemon dies.
    env.ok(&[
        "new",
        "-s",
        "stays",
        "--",
        "sh",
        "-c",
        "trap '' HUP; sleep 60",
    ]);
    let stays = session(&env.json(&["ls"]), "stays")["pid"]
        .as_i64()
        .expect("pid") as i32;
    let old_pid = env.daemon_pid();
    // A new binary that removes itself once started: the old daemon's exec of it as the
    // reaper fails, and it reaps in-process.
    let vanishing = env.home.path().join("vanishing-ai-session");
    std::fs::write(
        &vanishing,
        format!(
            "#!/bin/sh\nrm -f \"$0\"\nexec {} \"$@\"\n",
            env!("CARGO_BIN_EXE_ai-session")
        ),
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&vanishing, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = env.run(&[
        "daemon",
        "upgrade",
        "--binary",
        vanishing.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let new_pid = env.daemon_pid();
    assert_ne!(new_pid, old_pid);
    eventually(10, "the old daemon to give up its exec", || {
        daemon_log(&env).contains("reaping in this process")
    });
    assert!(alive(old_pid), "the in-process reaper is gone");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(new_pid).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill");
    eventually(10, "the new daemon to die", || !alive(new_pid));
    // The lock is let go of as the killed daemon's descriptors close, which can come a moment
    // after its pid stops answering; the reaper, which lives as long as `sleep 60`, must not
    // keep it.
    let lock = std::fs::File::open(env.home.path().join("servers/t/daemon.lock")).expect("lock");
    eventually(
        10,
        "the daemon lock to be free while the reaper waits",
        || rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok(),
    );
    drop(lock);
    let listed = env.command(&["new", "-s", "after"]).output().expect("new");
    assert!(listed.status.success(), "{listed:?}");
    // The program's whole session (it leads one), then its reaper.
    rustix::process::kill_process_group(
        rustix::process::Pid::from_raw(stays).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .ok();
    eventually(10, "the reaper to finish", || !alive(old_pid));
}
