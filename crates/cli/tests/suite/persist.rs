//! Persistence end to end: snapshots and restore, resurrection after a clean stop and after
//! SIGKILL, damaged state on disk, export/import between daemons, encryption at rest.

use std::io::Write;
use std::process::Stdio;

use serde_json::Value;

use super::harness::{Env, alive, eventually};

fn workdir(env: &Env) -> String {
    let dir = env.home.path().join("work");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    dir.display().to_string()
}

fn run_json(env: &Env, args: &[&str]) -> Value {
    let out = env.run(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\nstdout: {}\nstderr: {}\ndaemon log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(env.home.path().join("servers/t/daemon.log")).unwrap_or_default()
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn capture(env: &Env, t: &str) -> String {
    env.ok(&["capture", "-t", t, "--scrollback", "2000"])
}

fn session<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["sessions"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
}

fn kill_daemon(env: &Env) {
    let pid = env.daemon_pid();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).expect("pid"),
        rustix::process::Signal::KILL,
    )
    .expect("kill");
    eventually(10, "the daemon to die", || !alive(pid));
}

#[test]
fn snapshot_and_restore_into_a_new_name() {
    let env = Env::new();
    let dir = workdir(&env);
    env.ok(&["new", "-s", "a", "-c", &dir, "-e", "SNAPVAR=kept-env"]);
    assert_eq!(env.exec("a", "cd sub && echo marker-one")["exit_code"], 0);
    assert_eq!(env.exec("a", "echo rerun-$((20+22))")["exit_code"], 0);
    let snap = run_json(&env, &["snapshot", "-t", "a", "--label", "first", "--json"]);
    let id = snap["id"].as_str().expect("id").to_owned();
    assert_eq!(snap["execs"], 2);
    let list = run_json(&env, &["snapshot", "ls", "-t", "a", "--json"]);
    let found = list["snapshots"].as_array().expect("list");
    assert!(
        found.iter().any(|s| s["id"] == id && s["label"] == "first"),
        "{list}"
    );

    // Restore under a new name: the old scrollback, the saved cwd and environment, nothing re-run.
    let r = run_json(&env, &["restore", &id[..10], "-s", "b", "--json"]);
    assert_eq!(r["session"]["name"], "b");
    assert_eq!(r["session"]["restored"], true);
    assert!(r.get("rerun").is_none());
    let screen = capture(&env, "b");
    assert!(screen.contains("marker-one"), "{screen}");
    let out = env.exec("b", "pwd; echo $SNAPVAR");
    let text = out["output"].as_str().expect("output");
    assert!(text.contains(&format!("{dir}/sub")), "{text}");
    assert!(text.contains("kept-env"), "{text}");
    let ls = env.ok(&["ls"]);
    assert!(ls.contains("b: ") && ls.contains("(restored)"), "{ls}");

    // --rerun-last runs the last command again; a taken name is refused.
    let r = run_json(&env, &["restore", &id, "-s", "c", "--rerun-last", "--json"]);
    assert!(
        r["rerun"]["output"]
            .as_str()
            .expect("rerun")
            .contains("rerun-42"),
        "{r}"
    );
    // The rerun went through the same path as any exec: the restored session's context has
    // the snapshot's run of the command and the rerun.
    let ctx = run_json(&env, &["context", "-t", "c", "--budget", "20000", "--json"]);
    let text = ctx["text"].as_str().expect("text");
    assert_eq!(text.matches("echo rerun-").count(), 2, "{text}");
    let taken = env.run(&["restore", &id, "-s", "c"]);
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already exists"));
}

#[test]
fn clean_stop_brings_sessions_back_restored() {
    let env = Env::new();
    let dir = workdir(&env);
    env.ok(&["new", "-s", "a", "-c", &dir, "-e", "KEEP=yes-kept"]);
    env.ok(&["new", "-s", "gone", "-c", &dir]);
    env.ok(&["kill", "-t", "gone"]);
    assert_eq!(env.exec("a", "cd sub && echo before-stop")["exit_code"], 0);
    env.ok(&["daemon", "stop"]);

    let list = run_json(&env, &["ls", "--json"]);
    let a = session(&list, "a").expect("a is back");
    assert_eq!(a["restored"], true);
    assert!(
        session(&list, "gone").is_none(),
        "killed sessions stay dead"
    );
    assert!(capture(&env, "a").contains("before-stop"));
    let out = env.exec("a", "pwd; echo $KEEP");
    let text = out["output"].as_str().expect("output");
    assert!(
        text.contains(&format!("{dir}/sub")) && text.contains("yes-kept"),
        "{text}"
    );
    let status = run_json(&env, &["daemon", "status", "--json"]);
    assert_eq!(status["persist"]["restored"], 1, "{status}");
}

#[test]
fn sigkill_during_output_and_snapshots_loses_nothing_checkpointed() {
    let env = Env::new();
    let dir = workdir(&env);
    env.ok(&["new", "-s", "w", "-c", &dir]);
    env.ok(&["new", "-s", "noisy", "-c", &dir]);
    let mut done = 0u64;
    let mut snapshots = 0usize;
    for round in 0..4 {
        // Heavy output in one session while the other runs commands and takes snapshots.
        env.ok(&["send", "-t", "noisy", "seq 1 3000000", "Enter"]);
        for i in 0..3 {
            let out = env.exec("w", &format!("echo round-{round}-{i}"));
            assert_eq!(out["exit_code"], 0, "{out}");
            done += 1;
        }
        run_json(&env, &["snapshot", "-t", "w", "--json"]);
        snapshots += 1;
        kill_daemon(&env);
        // The next command starts a daemon that brings both sessions back.
        let list = run_json(&env, &["ls", "--json"]);
        for name in ["w", "noisy"] {
            let s = session(&list, name).unwrap_or_else(|| panic!("{name} lost: {list}"));
            assert_eq!(s["restored"], true);
        }
    }
    assert!(capture(&env, "w").contains("round-3-2"));
    // Every snapshot loads; every exec that returned before a kill is in the history.
    let list = run_json(&env, &["snapshot", "ls", "--json"]);
    let all = list["snapshots"].as_array().expect("snapshots");
    assert_eq!(all.len(), snapshots, "{list}");
    for (i, s) in all.iter().enumerate() {
        let name = format!("r{i}");
        let id = s["id"].as_str().expect("id");
        run_json(&env, &["restore", id, "-s", &name, "--json"]);
    }
    let now = run_json(&env, &["snapshot", "-t", "w", "--json"]);
    assert_eq!(now["execs"], done, "{now}");
    let rerun = run_json(
        &env,
        &[
            "restore",
            now["id"].as_str().expect("id"),
            "-s",
            "last",
            "--rerun-last",
            "--json",
        ],
    );
    assert!(
        rerun["rerun"]["output"]
            .as_str()
            .expect("out")
            .contains("round-3-2")
    );
}

#[test]
fn damaged_state_is_named_and_the_rest_comes_back() {
    let env = Env::new();
    let dir = workdir(&env);
    env.ok(&["new", "-s", "good", "-c", &dir]);
    env.ok(&["new", "-s", "bad", "-c", &dir]);
    env.exec("good", "echo good-line");
    env.exec("bad", "echo bad-line");
    env.ok(&["daemon", "stop"]);
    let sessions = env.home.path().join("servers/t/store/sessions");
    let mut damaged = None;
    for entry in std::fs::read_dir(&sessions).expect("sessions") {
        let state = entry.expect("entry").path().join("state.json");
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        if text.contains("\"name\": \"bad\"") {
            std::fs::write(&state, b"{ this is not json").expect("write");
            damaged = Some(state);
        }
    }
    let damaged = damaged.expect("bad's state file");

    let list = run_json(&env, &["ls", "--json"]);
    assert!(session(&list, "good").is_some(), "{list}");
    assert!(session(&list, "bad").is_none(), "{list}");
    assert!(capture(&env, "good").contains("good-line"));
    let status = run_json(&env, &["daemon", "status", "--json"]);
    let errors = status["persist"]["errors"].to_string();
    assert!(errors.contains(&damaged.display().to_string()), "{status}");
    let log = std::fs::read_to_string(env.home.path().join("servers/t/daemon.log")).expect("log");
    assert!(log.contains(&damaged.display().to_string()));
}

#[test]
fn export_from_one_daemon_and_import_into_another() {
    let from = Env::new();
    let dir = workdir(&from);
    from.ok(&["new", "-s", "a", "-c", &dir, "-e", "MOVED=along"]);
    from.exec("a", "echo exported-line");
    run_json(
        &from,
        &["snapshot", "-t", "a", "--label", "travels", "--json"],
    );
    let out = from.run(&["export", "-t", "a"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(b"AISX"));

    let to = Env::new();
    let mut child = to
        .command(&["import", "-s", "moved", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&out.stdout)
        .expect("write");
    let done = child.wait_with_output().expect("import");
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let r: Value = serde_json::from_slice(&done.stdout).expect("json");
    assert_eq!(r["session"]["name"], "moved");
    assert_eq!(r["snapshots"][0]["label"], "travels");
    assert!(capture(&to, "moved").contains("exported-line"));
    let text = to.exec("moved", "echo $MOVED")["output"].to_string();
    assert!(text.contains("along"), "{text}");

    // Garbage is a clear error naming the source.
    let mut bad = to
        .command(&["import"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("import");
    bad.stdin
        .take()
        .expect("stdin")
        .write_all(b"not an export")
        .expect("write");
    let bad = bad.wait_with_output().expect("import");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("<stdin>"));
}

#[test]
fn encrypted_store_and_wrong_passphrase() {
    let env = Env::new();
    let dir = workdir(&env);
    let with = |pass: &str, args: &[&str]| {
        env.command(args)
            .env("AI_SESSION_PASSPHRASE", pass)
            .output()
            .expect("run")
    };
    let out = with(
        "right one",
        &[
            "new",
            "-s",
            "a",
            "-c",
            &dir,
            "-e",
            "SECRETVAR=hunter2-value",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.exec("a", "echo visible-only-decrypted");
    assert_eq!(
        run_json(&env, &["daemon", "status", "--json"])["persist"]["encrypted"],
        true
    );
    env.ok(&["daemon", "stop"]);
    // Nothing readable on disk.
    let store = env.home.path().join("servers/t/store");
    let mut stack = vec![store.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.to_string_lossy().contains("index.db") {
                let bytes = std::fs::read(&p).expect("read");
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains("hunter2-value"),
                    "{} holds plaintext",
                    p.display()
                );
            }
        }
    }

    let wrong = with("wrong", &["ls"]);
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("wrong passphrase") && err.contains("keycheck.json"),
        "{err}"
    );
    let missing = env
        .command(&["ls"])
        .env_remove("AI_SESSION_PASSPHRASE")
        .output()
        .expect("ls");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("AI_SESSION_PASSPHRASE"));

    let right = with("right one", &["ls"]);
    assert!(
        right.status.success(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert!(String::from_utf8_lossy(&right.stdout).contains("(restored)"));
    assert!(capture(&env, "a").contains("visible-only-decrypted"));
}

#[test]
fn the_zstd_level_is_configurable_and_a_bad_one_is_a_clear_error() {
    let env = Env::new();
    let out = env
        .command(&["new", "-s", "z"])
        .env("AI_SESSION_ZSTD_LEVEL", "99")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("AI_SESSION_ZSTD_LEVEL=99"), "{err}");
    let out = env
        .command(&["new", "-s", "z"])
        .env("AI_SESSION_ZSTD_LEVEL", "12")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.exec("z", "echo packed")["exit_code"], 0);
    let snap = run_json(&env, &["snapshot", "-t", "z", "--json"]);
    assert_eq!(snap["execs"], 1);
}
