//! `exec` reports only what it observed (issue 15, "exec tells the truth"): a shell whose startup
//! files are slow, text left on the command line, a terminal left in raw mode, pagers, and
//! programs that wait for someone to type.

use std::process::Command;
use std::time::{Duration, Instant};

use super::harness::Env;
use serde_json::Value;

const PAGER_VARS: [&str; 4] = ["PAGER", "GIT_PAGER", "MANPAGER", "SYSTEMD_PAGER"];

/// `--json` output of a command run with `tweak` applied to its process.
fn json_with(env: &Env, args: &[&str], tweak: impl FnOnce(&mut Command)) -> Value {
    let mut all = args.to_vec();
    all.insert(1, "--json");
    let mut cmd = env.command(&all);
    tweak(&mut cmd);
    let out = cmd.output().expect("run ai-session");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not JSON ({e}):\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn new_shell(env: &Env, name: &str, shell: &str, extra: &[&str]) {
    let mut args = vec!["new", "-s", name, "--shell", shell];
    args.extend_from_slice(extra);
    env.ok(&args);
}

fn screen_text(env: &Env, name: &str) -> String {
    let c = env.json(&["capture", "-t", name]);
    c["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l.as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

fn integration(env: &Env, name: &str) -> String {
    let list = env.json(&["ls"]);
    let session = list["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .find(|s| s["name"] == name)
        .expect("listed");
    session["integration"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

const SLOW_RC: &str = "echo rc-start\nsleep 12\necho rc-done\n";

#[test]
fn a_slow_shell_start_is_waited_for_and_never_guessed() {
    let env = Env::new();
    let home = env.home.path();
    for rc in [".bashrc", ".zshrc", ".shrc"] {
        std::fs::write(home.join(rc), SLOW_RC).unwrap();
    }
    let sh_env = format!("ENV={}", home.join(".shrc").display());
    new_shell(&env, "bash", "bash", &[]);
    new_shell(&env, "zsh", "zsh", &[]);
    new_shell(&env, "sh", "sh", &["-e", &sh_env]);
    // While the startup files run, an exec whose time runs out says so: nothing was typed.
    let r = env.json(&["exec", "-t", "bash", "--timeout", "1", "echo never-typed"]);
    assert_eq!(r["status"], "starting", "{r}");
    assert_eq!(r["exit_code"], Value::Null, "{r}");
    assert!(r["output"].as_str().unwrap().contains("rc-start"), "{r}");
    assert!(r["hint"].as_str().unwrap().contains("not run"), "{r}");
    // Execs sent during the start run after the first prompt and report their own result,
    // past the ten seconds after which the daemon used to guess.
    let started = Instant::now();
    let results: Vec<(String, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = ["bash", "zsh", "sh"]
            .into_iter()
            .map(|name| {
                let env = &env;
                s.spawn(move || {
                    let r = env.json(&[
                        "exec",
                        "-t",
                        name,
                        "--timeout",
                        "60",
                        "echo real-output; (exit 4)",
                    ]);
                    (name.to_owned(), r)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "the rc files sleep 12 s"
    );
    for (name, r) in results {
        assert_eq!(r["status"], "exited", "{name}: {r}");
        assert_eq!(r["exit_code"], 4, "{name}: {r}");
        assert_eq!(r["output"], "real-output\n", "{name}: {r}");
        // The session kept its completion mode: no silent switch to another.
        assert_eq!(integration(&env, &name), "osc133", "{name}");
        let r = env.exec(&name, "echo next; (exit 3)");
        assert_eq!(
            (&r["exit_code"], &r["output"]),
            (&Value::from(3), &Value::from("next\n")),
            "{name}: {r}"
        );
        let screen = screen_text(&env, &name);
        assert!(
            !screen.contains("never-typed"),
            "{name}: typed anyway:\n{screen}"
        );
        assert!(
            !screen.contains("133;"),
            "{name}: mark wrappers on screen:\n{screen}"
        );
    }
}

#[test]
fn a_startup_file_asking_a_question_is_reported_as_starting() {
    let env = Env::new();
    std::fs::write(
        env.home.path().join(".bashrc"),
        "read -p 'Proceed with setup? ' answer\necho setup-$answer\n",
    )
    .unwrap();
    new_shell(&env, "q", "bash", &[]);
    let started = Instant::now();
    let r = env.json(&["exec", "-t", "q", "--timeout", "30", "echo mine"]);
    assert!(started.elapsed() < Duration::from_secs(10), "{r}");
    assert_eq!(r["status"], "starting", "{r}");
    let screen: Vec<&str> = r["screen"]
        .as_array()
        .expect("screen")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        screen.iter().any(|l| l.contains("Proceed with setup?")),
        "{r}"
    );
    assert!(
        r["hint"].as_str().unwrap().contains("waiting for input"),
        "{r}"
    );
    // Answered, the shell finishes starting and the next exec is an ordinary one.
    env.ok(&["send", "-t", "q", "yes", "Enter"]);
    let r = env.exec("q", "echo mine");
    assert_eq!(r["output"], "mine\n", "{r}");
    assert!(screen_text(&env, "q").contains("setup-yes"));
}

#[test]
fn the_first_command_of_a_new_session_is_echoed_once() {
    let env = Env::new();
    // Prompt hooks that take a moment widen the gap between the prompt's start (A) and the
    // line editor taking the terminal (B): a command typed in it is echoed by the terminal,
    // then again by the line editor.
    let home = env.home.path();
    std::fs::write(home.join(".bashrc"), "PROMPT_COMMAND='sleep 0.5'\n").unwrap();
    std::fs::write(
        home.join(".zshrc"),
        "slow() { sleep 0.5 }\nprecmd_functions+=(slow)\n",
    )
    .unwrap();
    for shell in ["bash", "zsh"] {
        let name = format!("first-{shell}");
        new_shell(&env, &name, shell, &[]);
        let r = env.exec(&name, "echo first-command");
        assert_eq!(r["output"], "first-command\n", "{shell}: {r}");
        let screen = screen_text(&env, &name);
        let echoes = screen.matches("echo first-command").count();
        assert_eq!(echoes, 1, "{shell}: echoed {echoes} times:\n{screen}");
        // The hook's program holds the terminal when the daemon reads the shell's D mark: the
        // exit code still comes through.
        let r = env.exec(&name, "echo second; (exit 6)");
        assert_eq!(r["exit_code"], 6, "{shell}: {r}");
        assert_eq!(r["output"], "second\n", "{shell}: {r}");
    }
}

#[test]
fn a_line_that_starts_no_command_returns_at_once_without_an_exit_code() {
    let env = Env::new();
    new_shell(&env, "nothing", "bash", &[]);
    for line in ["if then fi", "# only a comment"] {
        let started = Instant::now();
        let r = env.json(&["exec", "-t", "nothing", "--timeout", "30", line]);
        assert!(started.elapsed() < Duration::from_secs(10), "{line}: {r}");
        assert_eq!(r["status"], "exited", "{line}: {r}");
        assert_eq!(r["exit_code"], Value::Null, "{line}: {r}");
        assert!(
            r["hint"].as_str().unwrap().contains("no command"),
            "{line}: {r}"
        );
        let r = env.exec("nothing", "echo ready");
        assert_eq!(r["output"], "ready\n", "{line}: {r}");
    }
    let r = env.json(&["exec", "-t", "nothing", "--timeout", "30", "if then fi"]);
    assert!(
        r["output"].as_str().unwrap().contains("syntax error"),
        "{r}"
    );
}

#[test]
fn text_left_on_the_command_line_is_not_run_with_the_exec() {
    let env = Env::new();
    for shell in ["bash", "zsh", "sh"] {
        let name = format!("pending-{shell}");
        new_shell(&env, &name, shell, &[]);
        env.exec(&name, "true");
        env.ok(&["send", "-t", &name, "echo PENDING"]);
        let r = env.exec(&name, "echo x");
        assert_eq!(r["output"], "x\n", "{shell}: {r}");
        assert_eq!(r["exit_code"], 0, "{shell}: {r}");
        // The next exec is clean too: nothing of the pending text came back.
        let r = env.exec(&name, "echo y");
        assert_eq!(r["output"], "y\n", "{shell}: {r}");
    }
}

#[test]
fn a_terminal_left_in_raw_mode_does_not_wedge_the_shell() {
    let env = Env::new();
    for shell in ["sh", "bash", "zsh"] {
        let name = format!("raw-{shell}");
        new_shell(&env, &name, shell, &[]);
        let r = env.exec(&name, "stty raw -echo");
        assert_eq!(r["exit_code"], 0, "{shell}: {r}");
        let r = json_with(
            &env,
            &["exec", "-t", &name, "--timeout", "10", "echo after-raw"],
            |_| {},
        );
        assert_eq!(r["status"], "exited", "{shell}: {r}");
        assert_eq!(r["output"], "after-raw\n", "{shell}: {r}");
    }
    // A line typed with `send` into a raw terminal never ends (no newline): `send C-c`
    // restores the line discipline, so the interrupt reaches the shell.
    let name = "raw-sh";
    env.ok(&["send", "-t", name, "stty raw -echo", "Enter"]);
    env.ok(&["wait", "-t", name, "--prompt", "--timeout", "10"]);
    env.ok(&["send", "-t", name, "echo stuck-line", "Enter"]);
    env.ok(&["send", "-t", name, "C-c"]);
    env.ok(&["wait", "-t", name, "--prompt", "--timeout", "10"]);
    let r = env.exec(name, "echo recovered");
    assert_eq!(r["output"], "recovered\n", "{r}");
    // `wait --prompt` alone recovers it as well.
    env.ok(&["send", "-t", name, "stty raw -echo", "Enter"]);
    env.ok(&["wait", "-t", name, "--prompt", "--timeout", "10"]);
    env.ok(&["send", "-t", name, "echo stuck-again", "Enter"]);
    env.ok(&["wait", "-t", name, "--prompt", "--timeout", "10"]);
    let r = env.exec(name, "echo recovered-again");
    assert_eq!(r["output"], "recovered-again\n", "{r}");
}

#[test]
fn new_sessions_page_to_cat_unless_told_otherwise() {
    let env = Env::new();
    let bare = |cmd: &mut Command| {
        for var in PAGER_VARS {
            cmd.env_remove(var);
        }
    };
    json_with(&env, &["new", "-s", "plain"], bare);
    let show = r#"echo "$PAGER|$GIT_PAGER|$MANPAGER|${SYSTEMD_PAGER-unset}""#;
    let r = env.exec("plain", show);
    assert_eq!(r["output"], "cat|cat|cat|\n", "{r}");
    // The caller's own environment and -e win over the defaults.
    json_with(&env, &["new", "-s", "mine", "-e", "PAGER=less"], |cmd| {
        bare(cmd);
        cmd.env("GIT_PAGER", "more");
    });
    let r = env.exec("mine", show);
    assert_eq!(r["output"], "less|more|cat|\n", "{r}");
    // A history longer than the screen comes back whole, not stuck in a pager.
    let repo = env.home.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let git = "git init -q && for i in $(seq 60); do git -c user.name=t -c user.email=t@t commit -q --allow-empty -m commit-$i; done";
    let setup = env.json(&[
        "exec",
        "-t",
        "plain",
        "--timeout",
        "60",
        &format!("cd {} && {git}", repo.display()),
    ]);
    assert_eq!(setup["exit_code"], 0, "{setup}");
    let r = json_with(
        &env,
        &[
            "exec",
            "-t",
            "plain",
            "--timeout",
            "20",
            "git log --oneline",
        ],
        |_| {},
    );
    assert_eq!(r["status"], "exited", "{r}");
    assert_eq!(r["output"].as_str().unwrap().lines().count(), 60, "{r}");
}

/// Runs `command`, which asks for input; checks the early answer, answers with `keys` and
/// returns what the command printed after the answer.
fn answer(env: &Env, name: &str, command: &str, asks: &str, keys: &[&str]) -> String {
    let started = Instant::now();
    let r = env.json(&["exec", "-t", name, "--timeout", "30", command]);
    let took = started.elapsed();
    assert_eq!(r["status"], "waiting_for_input", "{command}: {r}");
    assert!(took < Duration::from_secs(10), "{command}: took {took:?}");
    assert!(
        r["prompt"].as_str().unwrap_or_default().contains(asks),
        "{command}: {r}"
    );
    let screen = r["screen"].as_array().expect("screen");
    // Screen lines are right-trimmed; the prompt keeps its spaces up to the cursor.
    assert!(
        screen
            .last()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .contains(asks.trim()),
        "{command}: {r}"
    );
    assert!(
        r["hint"].as_str().unwrap().contains("send"),
        "{command}: {r}"
    );
    // Until answered, the session is busy.
    let busy = env.run(&["exec", "-t", name, "echo no"]);
    assert!(!busy.status.success(), "{command}");
    let mut send = vec!["send", "-t", name];
    send.extend_from_slice(keys);
    env.ok(&send);
    let w = env.json(&["wait", "-t", name, "--prompt", "--timeout", "20"]);
    assert_eq!(w["exit_code"], 0, "{command}: {w}");
    let read = env.json(&["read", "-t", name, "--since", &r["output_end"].to_string()]);
    read["data"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn programs_waiting_for_input_are_reported_at_once() {
    let env = Env::new();
    new_shell(&env, "in", "bash", &[]);
    let after = answer(
        &env,
        "in",
        "read -p 'Name? ' name; echo hello-$name",
        "Name? ",
        &["bob", "Enter"],
    );
    assert!(after.contains("hello-bob"), "{after}");
    let yes_no = r#"python3 -c 'a = input("Delete everything? [y/N] "); print("answer-" + a)'"#;
    let after = answer(&env, "in", yes_no, "[y/N] ", &["n", "Enter"]);
    assert!(after.contains("answer-n"), "{after}");
    let password = "python3 -c 'import getpass; print(\"length\", len(getpass.getpass()))'";
    let after = answer(&env, "in", password, "Password: ", &["s3cret", "Enter"]);
    assert!(after.contains("length 6"), "{after}");
    assert!(
        !after.contains("s3cret"),
        "the password was echoed: {after}"
    );
    answer(&env, "in", "python3", ">>> ", &["exit()", "Enter"]);
    answer(&env, "in", "seq 500 | less", ":", &["q"]);
    // Silent commands that do not read the terminal run to their end.
    let r = env.exec("in", "sleep 1.5; echo slept");
    assert_eq!(
        (&r["status"], &r["output"]),
        (&Value::from("exited"), &Value::from("slept\n")),
        "{r}"
    );
    let server = r#"python3 -c 'import socket, select; s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); p = socket.socket(); select.select([s, p], [], [], 1.5); print("served")'"#;
    let r = env.exec("in", server);
    assert_eq!(
        (&r["status"], &r["output"]),
        (&Value::from("exited"), &Value::from("served\n")),
        "{r}"
    );
}
