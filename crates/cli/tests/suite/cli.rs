//! The CLI's commands against real bash and sh sessions.

use super::harness::{Env, alive, eventually};

fn exit_code(v: &serde_json::Value) -> i64 {
    assert_eq!(v["status"], "exited", "{v}");
    v["exit_code"].as_i64().expect("exit code")
}

#[test]
fn cwd_and_env_persist_across_execs_in_bash_and_sh() {
    let env = Env::new();
    for shell in ["/bin/bash", "/bin/sh"] {
        let name = env.ok(&["new", "--shell", shell]).trim().to_owned();
        let r = env.exec(&name, "cd /tmp && export GREETING=hello");
        assert_eq!(exit_code(&r), 0);
        let r = env.exec(&name, "pwd; echo $GREETING");
        assert_eq!(r["output"], "/tmp\nhello\n", "{shell}");
        assert_eq!(r["completion"], "osc133");
    }
}

#[test]
fn exit_codes_and_clean_output() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    assert_eq!(exit_code(&env.exec("s", "true")), 0);
    assert_eq!(exit_code(&env.exec("s", "false")), 1);
    assert_eq!(
        exit_code(&env.exec("s", "exit_with() { return 42; }; exit_with")),
        42
    );
    let r = env.exec("s", "no_such_command_xyz");
    assert_eq!(exit_code(&r), 127);
    assert!(r["output"].as_str().unwrap().contains("not found"), "{r}");
    // The echoed command line and the prompt are not part of the output.
    let r = env.exec("s", "echo one; echo two");
    assert_eq!(r["output"], "one\ntwo\n");
    let start = r["output_start"].as_u64().unwrap();
    let end = r["output_end"].as_u64().unwrap();
    let read = env.json(&[
        "read",
        "-t",
        "s",
        "--since",
        &start.to_string(),
        "--max-bytes",
        &(end - start).to_string(),
    ]);
    assert_eq!(read["data"], "one\ntwo\n");
    // The CLI exits with the command's code.
    let out = env.run(&["exec", "-t", "s", "(exit 7)"]);
    assert_eq!(out.status.code(), Some(7));
}

#[test]
fn multiline_and_quoted_commands() {
    let env = Env::new();
    env.ok(&["new", "-s", "s", "--shell", "/bin/sh"]);
    let r = env.exec("s", "for i in 1 2; do\n  echo \"it's $i\"\ndone\nfalse");
    assert_eq!(r["output"], "it's 1\nit's 2\n");
    assert_eq!(exit_code(&r), 1);
    let r = env.exec("s", "printf '%s\\t%s\\n' a b");
    assert_eq!(r["output"], "a\tb\n");
}

#[test]
fn ctrl_c_gives_130() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let exec = env
        .command(&["exec", "-t", "s", "--json", "echo started; sleep 30"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    env.ok(&["wait", "-t", "s", "--for", "^started", "--timeout", "20"]);
    env.ok(&["send", "-t", "s", "C-c"]);
    let out = exec.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(exit_code(&v), 130);
    assert_eq!(out.status.code(), Some(130));
}

#[test]
fn large_output_is_intact() {
    let env = Env::new();
    env.ok(&["new", "-s", "s", "--shell", "/bin/sh"]);
    // 1.5 MB of numbered lines.
    let r = env.exec("s", "seq 1 200000");
    assert_eq!(exit_code(&r), 0);
    let expected: String = (1..=200000).map(|i| format!("{i}\n")).collect();
    assert!(expected.len() > 1_000_000);
    assert_eq!(r["truncated"], false);
    assert!(r["output"].as_str().unwrap() == expected, "output differs");
}

#[test]
fn back_to_back_execs_do_not_mix() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    for i in 0..30 {
        let r = env.exec("s", &format!("echo out{i}"));
        assert_eq!(r["output"], format!("out{i}\n"));
    }
}

#[test]
fn timeouts_keep_partial_output_and_the_command() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let r = env.json(&[
        "exec",
        "-t",
        "s",
        "--idle-timeout",
        "0.3",
        "echo begin; sleep 2; echo end",
    ]);
    assert_eq!(r["status"], "running", "{r}");
    assert_eq!(r["output"], "begin\n");
    assert!(r["hint"].as_str().unwrap().contains("wait -t s --prompt"));
    // A second exec is refused while the first command runs.
    let busy = env.run(&["exec", "-t", "s", "echo no"]);
    assert_eq!(busy.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&busy.stderr).contains("busy"));
    let w = env.json(&["wait", "-t", "s", "--prompt", "--timeout", "20"]);
    assert_eq!(w["exit_code"], 0);
    let read = env.json(&["read", "-t", "s", "--since", &r["output_end"].to_string()]);
    assert!(read["data"].as_str().unwrap().contains("end"));
    let t = env.json(&["exec", "-t", "s", "--timeout", "0.3", "sleep 1"]);
    assert_eq!(t["status"], "timeout");
    env.ok(&["wait", "-t", "s", "--prompt", "--timeout", "20"]);
}

#[test]
fn python_repl_with_send_and_wait() {
    let env = Env::new();
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
    env.ok(&["send", "-t", "py", "print(6 * 7)", "Enter"]);
    let m = env.json(&["wait", "-t", "py", "--for", "^42$", "--timeout", "20"]);
    assert_eq!(m["matched"], "42");
    let screen = env.ok(&["capture", "-t", "py"]);
    assert!(screen.contains(">>> print(6 * 7)\n42\n>>>"), "{screen}");
    // exec is refused for a program that is not a shell, with a hint.
    let out = env.run(&["exec", "-t", "py", "1+1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("send"));
    env.ok(&["send", "-t", "py", "exit()", "Enter"]);
    eventually(20, "python to exit", || {
        env.json(&["ls"])["sessions"][0]["state"] == "exited"
    });
    assert_eq!(env.json(&["ls"])["sessions"][0]["exit_code"], 0);
}

#[test]
fn resize_is_seen_by_the_program() {
    let env = Env::new();
    env.ok(&["new", "-s", "s", "--size", "100x30"]);
    assert_eq!(
        env.exec("s", "tput cols; tput lines")["output"],
        "100\n30\n"
    );
    env.ok(&["resize", "-t", "s", "132x40"]);
    assert_eq!(
        env.exec("s", "tput cols; tput lines")["output"],
        "132\n40\n"
    );
    let c = env.json(&["capture", "-t", "s"]);
    assert_eq!(c["size"]["cols"], 132);
    let bad = env.run(&["resize", "-t", "s", "0x0"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("columns must be"));
}

#[test]
fn kill_leaves_no_process() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let shell = env.json(&["ls"])["sessions"][0]["pid"].as_i64().unwrap() as i32;
    // A background job in its own process group, and one that ignores SIGHUP.
    let r = env.exec(
        "s",
        "sleep 300 & echo $!; (trap '' HUP; exec sleep 301) & echo $!",
    );
    let pids: Vec<i32> = r["output"]
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(pids.len(), 2, "{r}");
    assert!(pids.iter().all(|p| alive(*p)));
    let fds_before = std::fs::read_dir(format!("/proc/{}/fd", env.daemon_pid()))
        .unwrap()
        .count();
    env.ok(&["kill", "-t", "s"]);
    for pid in pids.iter().chain([&shell]) {
        eventually(10, "session processes to die", || !alive(*pid));
    }
    let fds_after = std::fs::read_dir(format!("/proc/{}/fd", env.daemon_pid()))
        .unwrap()
        .count();
    assert!(
        fds_after < fds_before,
        "descriptors leaked: {fds_before} -> {fds_after}"
    );
    let out = env.run(&["exec", "-t", "s", "true"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no session named 's'"));
}

#[test]
fn unknown_session_lists_existing_ones() {
    let env = Env::new();
    env.ok(&["new", "-s", "alpha"]);
    env.ok(&["new", "-s", "beta"]);
    let out = env.run(&["capture", "-t", "gamma"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no session named 'gamma'") && err.contains("alpha, beta"),
        "{err}"
    );
    let dup = env.run(&["new", "-s", "alpha"]);
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let bad = env.run(&["new", "-s", "../x"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid session name"));
}

#[test]
fn program_exit_keeps_the_session_until_killed() {
    let env = Env::new();
    env.ok(&["new", "-s", "s", "--", "sh", "-c", "echo bye; exit 3"]);
    eventually(20, "the program to exit", || {
        env.json(&["ls"])["sessions"][0]["state"] == "exited"
    });
    let s = &env.json(&["ls"])["sessions"][0];
    assert_eq!(s["exit_code"], 3);
    assert!(env.ok(&["read", "-t", "s"]).contains("bye"));
    let out = env.run(&["send", "-t", "s", "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has exited"));
    env.ok(&["kill", "-t", "s"]);
}

#[test]
fn daemon_killed_then_next_command_recovers() {
    let env = Env::new();
    env.ok(&["new", "-s", "s"]);
    let pid = env.daemon_pid();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    eventually(10, "the daemon to die", || !alive(pid));
    let status = env.json(&["daemon", "status"]);
    assert_eq!(status["running"], false);
    // The next command cleans the stale socket and starts a fresh daemon.
    env.ok(&["new", "-s", "fresh"]);
    let new_pid = env.daemon_pid();
    assert_ne!(new_pid, pid);
    assert_eq!(env.exec("fresh", "echo ok")["output"], "ok\n");
}

#[test]
fn concurrent_first_commands_start_one_daemon_in_a_session_of_its_own() {
    let env = Env::new();
    let starters: Vec<_> = (0..6)
        .map(|_| {
            env.command(&["daemon", "start", "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut pids = std::collections::BTreeSet::new();
    for child in starters {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        pids.insert(s["pid"].as_i64().unwrap());
    }
    // The start lock lets one client start the daemon; the others wait and find it.
    assert_eq!(pids.len(), 1, "one daemon for every starter: {pids:?}");
    let pid = *pids.first().unwrap();
    // Started with --notify-ready, the daemon leads a session of its own: no terminal of the
    // client's reaches it.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After the command name: state, ppid, pgrp, session.
    assert_eq!(
        fields[3],
        pid.to_string(),
        "session id of the daemon: {stat}"
    );
}

#[test]
fn daemon_status_and_stop() {
    let env = Env::new();
    let s = env.json(&["daemon", "start"]);
    assert!(s["pid"].as_i64().unwrap() > 0);
    assert!(s["socket"].as_str().unwrap().ends_with("t.sock"));
    assert!(s["uptime_ms"].is_u64());
    assert_eq!(s["sessions"], 0);
    let run_dir = env.home.path().join("run");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&run_dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    env.ok(&["new"]);
    env.ok(&["daemon", "stop"]);
    assert_eq!(env.json(&["daemon", "status"])["running"], false);
}

#[test]
fn zsh_integration() {
    assert!(
        std::path::Path::new("/usr/bin/zsh").exists() || std::path::Path::new("/bin/zsh").exists(),
        "zsh is not installed: .ci/run installs it (apt-get install zsh)"
    );
    let env = Env::new();
    env.ok(&["new", "-s", "z", "--shell", "zsh"]);
    let r = env.exec("z", "cd /tmp; print -r -- $PWD");
    assert_eq!(r["output"], "/tmp\n");
    assert_eq!(exit_code(&env.exec("z", "false")), 1);
}

#[test]
fn attach_shows_the_session_and_detaches() {
    let env = Env::new();
    env.ok(&["new", "-s", "target"]);
    env.exec("target", "echo marker-in-target");
    // Attach from inside another session: a real terminal for the attaching client.
    let exe = env!("CARGO_BIN_EXE_ai-session");
    env.ok(&[
        "new", "-s", "viewer", "--", exe, "-L", "t", "attach", "-t", "target",
    ]);
    env.ok(&[
        "wait",
        "-t",
        "viewer",
        "--for",
        "marker-in-target",
        "--since",
        "0",
        "--timeout",
        "20",
    ]);
    env.ok(&["send", "-t", "viewer", "-l", "echo typed-through-attach"]);
    env.ok(&["send", "-t", "viewer", "Enter"]);
    env.ok(&[
        "wait",
        "-t",
        "target",
        "--for",
        "^typed-through-attach",
        "--since",
        "0",
        "--timeout",
        "20",
    ]);
    env.ok(&["send", "-t", "viewer", "C-\\"]);
    env.ok(&[
        "wait",
        "-t",
        "viewer",
        "--for",
        "detached from target",
        "--since",
        "0",
        "--timeout",
        "20",
    ]);
    let sessions = env.json(&["ls"]);
    let target = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "target")
        .unwrap()
        .clone();
    assert_ne!(target["state"], "exited");
}

#[test]
fn exec_results_carry_parsed_output_and_a_compact_view() {
    let env = Env::new();
    env.ok(&["new", "-s", "s", "--shell", "/bin/sh"]);
    let script = "printf 'error[E0308]: mismatched types\\n --> src/main.rs:2:18\\nerror: could not compile `x` (bin \"x\") due to 1 previous error\\n'; (exit 101)";
    let r = env.exec("s", script);
    assert_eq!(r["exit_code"], 101);
    let compact = &r["compact"];
    let text = compact["text"].as_str().unwrap();
    assert!(
        text.contains("E0308") && text.contains("src/main.rs:2:18"),
        "{text}"
    );
    assert!(compact["raw_tokens"].as_u64().unwrap() > 0);
    assert!(r["parsed"].is_object());
    // The CLI prints the compact view on request.
    let out = env.run(&["exec", "-t", "s", "--view", "compact", "seq 1 3000"]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.len() < 3000, "{} bytes", shown.len());
    assert!(shown.contains("ai-session read -t s --since"), "{shown}");
}

#[test]
fn parse_reads_saved_output_from_stdin() {
    let env = Env::new();
    let out = super::harness::with_stdin(
        &mut env.command(&["parse", "--json", "--command", "git status"]),
        b"On branch main\nYou have unmerged paths.\n\nUnmerged paths:\n\tboth modified:   src/lib.rs\n",
    )
    .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["compact"]["text"]
            .as_str()
            .unwrap()
            .contains("src/lib.rs"),
        "{v}"
    );
    // No daemon was needed.
    assert!(!env.home.path().join("run/t.sock").exists());
}

#[test]
fn parse_prints_the_view_json_holds_for_large_files_and_pipes() {
    // Outputs past the exact count's limit (1 MiB), given as a file on stdin (the view alone
    // is written without loading the tokenizer) and through a pipe: the default view is the
    // text `--json` holds. Cargo output whose view fits by its bytes, and a log whose ERROR
    // lines fill the budget (its lines are counted).
    let env = Env::new();
    let mut cargo = String::from("   Compiling shop v0.1.0 (/work/shop)\n");
    for k in 0..9000 {
        cargo.push_str(&format!(
            "warning: unused variable: `item_{k}`\n  --> src/module_{}.rs:{}:13\n   |\n\
             {} |         let item_{k} = load(id);\n   |             ^^^^^^^^\n\n",
            k % 40,
            10 + k % 900,
            10 + k % 900
        ));
    }
    cargo.push_str(
        "error[E0425]: cannot find value `rate` in this scope\n  --> src/tax.rs:14:9\n\n\
         error: could not compile `shop` (lib) due to 1 previous error\n",
    );
    let log: String = (0..40_000)
        .map(|i| {
            let level = if i % 50 == 0 { "ERROR" } else { "INFO" };
            // Each ERROR line its own words (lines equal but for numbers are grouped).
            let name: String = (i / 50)
                .to_string()
                .bytes()
                .map(|d| char::from(d - b'0' + b'a'))
                .collect();
            format!(
                "2026-12-01 10:00:{:02} {level} [w{}] job {name} ended\n",
                i % 60,
                i % 7
            )
        })
        .collect();
    for (command, text) in [("cargo build", &cargo), ("app.log", &log)] {
        assert!(text.len() > 1 << 20);
        let file = env.home.path().join("saved.txt");
        std::fs::write(&file, text).unwrap();
        let json = env
            .command(&["parse", "--json", "--command", command])
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        assert!(json.status.success());
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        let expected = format!("{}\n", v["compact"]["text"].as_str().unwrap());
        let from_file = env
            .command(&["parse", "--command", command])
            .stdin(std::fs::File::open(&file).unwrap())
            .output()
            .unwrap();
        assert!(from_file.status.success());
        assert_eq!(String::from_utf8_lossy(&from_file.stdout), expected);
        let piped = super::harness::with_stdin(
            &mut env.command(&["parse", "--command", command]),
            text.as_bytes(),
        )
        .unwrap();
        assert!(piped.status.success());
        assert_eq!(String::from_utf8_lossy(&piped.stdout), expected);
        if command == "cargo build" {
            assert!(expected.starts_with("cargo: FAILED"), "{expected}");
            assert!(expected.contains("src/tax.rs:14:9"), "{expected}");
        } else {
            assert!(expected.matches("ERROR").count() > 10, "{expected}");
        }
    }
}

#[test]
fn parse_reads_a_large_file_from_stdins_offset() {
    // A file of more than 1 MiB on stdin is read by two threads, each a half: what is read is
    // the file from stdin's offset on, as a pipe of the same bytes gives it. Lines of varied
    // lengths, so the halves cut lines and characters (`é`) at no chosen place.
    let env = Env::new();
    let mut text = String::new();
    for k in 0..30_000 {
        text.push_str(&format!(
            "warning: unused variable: `é_{k}`\n  --> src/m{}.rs:{}:13\n{}\n",
            k % 40,
            10 + k % 900,
            "x".repeat(k % 37)
        ));
    }
    assert!(text.len() > 1 << 20);
    let file = env.home.path().join("saved.txt");
    std::fs::write(&file, &text).unwrap();
    for offset in [0, 1, 4097, text.len() / 2 + 3] {
        let rest = &text.as_bytes()[offset..];
        let mut stdin = std::fs::File::open(&file).unwrap();
        std::io::Seek::seek(&mut stdin, std::io::SeekFrom::Start(offset as u64)).unwrap();
        let from_file = env
            .command(&["parse", "--json", "--command", "cargo build"])
            .stdin(stdin)
            .output()
            .unwrap();
        assert!(from_file.status.success());
        let piped = super::harness::with_stdin(
            &mut env.command(&["parse", "--json", "--command", "cargo build"]),
            rest,
        )
        .unwrap();
        assert!(piped.status.success());
        let v: serde_json::Value = serde_json::from_slice(&from_file.stdout).unwrap();
        assert_eq!(v["parsed"]["bytes"], rest.len(), "offset {offset}");
        assert_eq!(from_file.stdout, piped.stdout, "offset {offset}");
    }
}

#[test]
fn bad_programs_and_directories_are_clear_errors() {
    let env = Env::new();
    let out = env.run(&["new", "-s", "x", "--", "no-such-program-xyz"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot start 'no-such-program-xyz'") && err.contains("not in PATH"),
        "{err}"
    );
    let out = env.run(&["new", "-s", "y", "-c", "/no/such/dir"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    // The daemon is still up and the names are still free.
    env.ok(&["new", "-s", "x"]);
    assert_eq!(env.exec("x", "echo fine")["output"], "fine\n");
}
