//! The tmux layer against the real tmux: the same commands through the `tmux` shim (a symlink
//! to ai-session on PATH) and through tmux itself must print the same and exit the same; the
//! Terminal-Bench loop; wait-for across processes; pipe-pane; migrate-tmux from a live tmux
//! server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::harness::{Env, eventually};

/// A daemon (label `t`, as [`Env`]) driven through a `tmux` symlink first on PATH, and a real
/// tmux server on its own socket in the same temporary home.
pub struct Shim {
    pub env: Env,
    pub bin: PathBuf,
    pub real_label: String,
}

impl Shim {
    pub fn new() -> Self {
        let env = Env::new();
        let bin = env.home.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ai-session"), bin.join("tmux")).unwrap();
        let real_label = format!("real{}", std::process::id());
        Self {
            env,
            bin,
            real_label,
        }
    }

    /// PATH with the shim first.
    pub fn path(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// A command with the shim first on PATH and the private home.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("AI_SESSION_HOME", self.env.home.path())
            .env("HOME", self.env.home.path())
            .env("TMUX_TMPDIR", self.env.home.path())
            .env("PATH", self.path())
            .env("SHELL", "/bin/bash")
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .env_remove("PROMPT_COMMAND")
            .current_dir(self.env.home.path())
            .stdin(Stdio::null());
        c
    }

    /// `tmux -L t ARGS` through the shim.
    pub fn tmux(&self, args: &[&str]) -> Output {
        self.cmd("tmux")
            .args(["-L", "t"])
            .args(args)
            .output()
            .unwrap()
    }

    /// The same through the real tmux, on its own socket.
    pub fn real(&self, args: &[&str]) -> Output {
        self.cmd(real_tmux())
            .args(["-L", &self.real_label, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.tmux(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {:?}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        self.real(&["kill-server"]);
    }
}

/// tmux itself: the system's, which the shim must never shadow here.
pub fn real_tmux() -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join("tmux");
        if p.is_file() {
            return p;
        }
    }
    panic!("tmux is not installed: .ci/run installs it (apt-get install tmux)");
}

fn text(o: &Output) -> (String, String, Option<i32>) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.code(),
    )
}

/// Replaces the socket paths (which differ) so the rest can be compared.
fn normalise(s: &str, shim: &Shim) -> String {
    let ours = shim.env.home.path().join("run/t.sock");
    let theirs = shim.env.home.path().join(format!(
        "tmux-{}/{}",
        rustix::process::geteuid().as_raw(),
        shim.real_label
    ));
    s.replace(&ours.display().to_string(), "SOCKET")
        .replace(&theirs.display().to_string(), "SOCKET")
}

/// Waits (at most 5 s) until the real tmux has renamed each new window after its shell: for a
/// moment after `new-session` a window is named after tmux's own forked process ("tmux"), a
/// state the shim never shows, which a loaded machine makes long enough to be seen.
fn settle_real_names(shim: &Shim) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let out = shim.real(&["list-windows", "-a", "-F", "#{window_name}"]);
        let names = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success()
            || !names.lines().any(|n| n == "tmux")
            || std::time::Instant::now() > deadline
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn prints_and_exits_as_tmux_does() {
    let shim = Shim::new();
    // Each step runs on both; stdout, stderr and the exit status must match.
    let steps: &[&[&str]] = &[
        &["has-session", "-t", "work"],
        &[
            "new-session",
            "-d",
            "-s",
            "work",
            "-x",
            "100",
            "-y",
            "30",
            "-P",
            "-F",
            "#{session_id} #{window_id} #{pane_id} #{session_name}",
        ],
        &["new-session", "-d", "-s", "work"],
        &["has-session", "-t", "work"],
        &["has-session", "-t", "=wor"],
        &["has-session", "-t", "nope"],
        &["list-windows", "-t", "work"],
        &[
            "split-window",
            "-t",
            "work",
            "-P",
            "-F",
            "#{pane_id} #{pane_index}",
        ],
        &[
            "list-panes",
            "-t",
            "work",
            "-F",
            "#{pane_index} #{pane_id} #{pane_width}x#{pane_height} #{pane_top} #{pane_active}",
        ],
        &["split-window", "-h", "-t", "work:0.1", "-d", "-P"],
        &[
            "list-panes",
            "-t",
            "work",
            "-F",
            "#{pane_index} #{pane_width}x#{pane_height}+#{pane_left}+#{pane_top} #{pane_active}",
        ],
        &[
            "new-window",
            "-t",
            "work",
            "-n",
            "logs",
            "-P",
            "-F",
            "#{window_index} #{window_name} #{window_id}",
        ],
        &["new-window", "-t", "work:1"],
        &[
            "list-windows",
            "-t",
            "work",
            "-F",
            "#{window_index} #{window_name} #{window_active} #{window_panes} #{window_flags}",
        ],
        &["select-window", "-t", "work:0"],
        &[
            "display-message",
            "-p",
            "-t",
            "work",
            "#{session_name}:#{window_index}.#{pane_index} #{window_name} #{?window_active,yes,no} #{==:#{window_index},0}",
        ],
        &["select-window", "-l", "-t", "work"],
        &[
            "display-message",
            "-p",
            "-t",
            "work",
            "#{window_index} #{window_last_flag}",
        ],
        &["rename-window", "-t", "work:logs", "tail"],
        &["list-windows", "-t", "work", "-F", "#{window_name}"],
        &["kill-pane", "-t", "work:0.9"],
        &["kill-window", "-t", "work:7"],
        &["send-keys", "-t", "nope", "x"],
        &["capture-pane", "-p", "-t", "work:0.5"],
        &["set-option", "-g", "history-limit", "5000"],
        &["show-options", "-g", "history-limit"],
        &["show-options", "-gv", "history-limit"],
        &["set-option", "-g", "no-such-option", "1"],
        &["set-option", "-t", "work", "@mine", "value with spaces"],
        &["show-options", "-t", "work", "@mine"],
        &["set-environment", "-t", "work", "FOO", "bar"],
        &["show-environment", "-t", "work", "FOO"],
        &["show-environment", "-t", "work", "MISSING"],
        &["wait-for", "-U", "chan"],
        &["no-such-command"],
        &["new-session", "-d", "-s", "other"],
        &["list-sessions", "-F", "#{session_name} #{session_windows}"],
        &["rename-session", "-t", "other", "work"],
        &["kill-session", "-t", "other"],
        &["kill-session", "-t", "work"],
        &["list-sessions"],
        &["kill-server"],
    ];
    for step in steps {
        let ours = text(&shim.tmux(step));
        settle_real_names(&shim);
        let theirs = text(&shim.real(step));
        assert_eq!(
            (normalise(&ours.0, &shim), normalise(&ours.1, &shim), ours.2),
            (
                normalise(&theirs.0, &shim),
                normalise(&theirs.1, &shim),
                theirs.2
            ),
            "tmux {step:?}: the shim (left) and tmux (right) differ"
        );
    }
}

#[test]
fn sessions_show_as_daemon_sessions() {
    let shim = Shim::new();
    shim.ok(&[
        "new-session",
        "-d",
        "-s",
        "my build",
        "-x",
        "90",
        "-y",
        "20",
    ]);
    shim.ok(&["split-window", "-t", "my build"]);
    let ls = shim.env.json(&["ls"]);
    let mut names: Vec<String> = ls["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["my-20build.0.0", "my-20build.0.1"]);
    // `ai-session [-L NAME] tmux ARGS` is the same layer as the symlink.
    assert_eq!(
        shim.env
            .ok(&["tmux", "list-panes", "-t", "my build", "-F", "#{pane_id}"]),
        "%0\n%1\n"
    );
    // A pane killed behind tmux's back is gone for tmux too.
    shim.env.ok(&["kill", "-t", "my-20build.0.1"]);
    assert_eq!(
        shim.ok(&["list-panes", "-t", "my build", "-F", "#{pane_index}"]),
        "0\n"
    );
}

/// A capture right after `new-window` shows what the pane's program drew first, even when it
/// draws a moment after its start (a shell slow to print its prompt); a pane that stays
/// silent is captured empty without a long wait.
#[test]
fn a_capture_of_a_new_pane_waits_for_its_first_draw() {
    let shim = Shim::new();
    shim.ok(&["new-session", "-d", "-s", "w", "-x", "80", "-y", "10"]);
    shim.ok(&["new-window", "-t", "w", "sleep 0.3; echo drawn; sleep 30"]);
    let screen = shim.ok(&["capture-pane", "-p", "-t", "w:1"]);
    assert_eq!(screen.trim_end(), "drawn", "{screen:?}");
    shim.ok(&["new-window", "-t", "w", "sleep 30"]);
    let started = std::time::Instant::now();
    let screen = shim.ok(&["capture-pane", "-p", "-t", "w:2"]);
    assert_eq!(screen.trim(), "", "{screen:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "a silent pane's capture took {:?}",
        started.elapsed()
    );
}

/// Terminal-Bench's loop: `send-keys 'cmd; tmux wait -S done' Enter`, `tmux wait done`,
/// `capture-pane -p -S -`, with the exact exit code on top.
#[test]
fn terminal_bench_loop() {
    let shim = Shim::new();
    shim.ok(&["new-session", "-d", "-s", "tb", "-x", "120", "-y", "40"]);
    for round in 0..3 {
        let marker = format!("round-{round}-output");
        let cmd = format!("echo {marker}; (exit {round}); tmux wait -S done{round}");
        shim.ok(&["send-keys", "-t", "tb", &cmd, "Enter"]);
        let started = Instant::now();
        let out = shim
            .cmd("timeout")
            .args(["30", "tmux", "-L", "t", "wait", &format!("done{round}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "wait done{round}: {:?}", out.status);
        assert!(started.elapsed() < Duration::from_secs(30));
        let screen = shim.ok(&["capture-pane", "-p", "-S", "-", "-t", "tb"]);
        assert!(
            screen.lines().any(|l| l == marker),
            "no {marker} line in:\n{screen}"
        );
    }
    // `tmux wait -S done` was the pane's last command: status 0.
    assert_eq!(
        shim.ok(&[
            "display-message",
            "-p",
            "-t",
            "tb",
            "#{pane_command_status}"
        ]),
        "0\n"
    );
    // wait-for -E returns when the command finishes, with its exit code.
    shim.ok(&["send-keys", "-t", "tb", "sleep 0.5; (exit 7)", "Enter"]);
    let out = shim.tmux(&["wait-for", "-E", "-t", "tb"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        shim.ok(&[
            "display-message",
            "-p",
            "-t",
            "tb",
            "#{pane_command_status}"
        ]),
        "7\n"
    );
}

#[test]
fn wait_for_across_processes() {
    let shim = Shim::new();
    shim.ok(&["new-session", "-d", "-s", "w"]);
    // A signal nobody waits for is kept: the next wait returns at once (tmux's rule).
    shim.ok(&["wait-for", "-S", "early"]);
    shim.ok(&["wait-for", "early"]);
    // A waiter in another process is woken by a signal from a third.
    let mut waiter = shim
        .cmd("tmux")
        .args(["-L", "t", "wait-for", "late"])
        .spawn()
        .unwrap();
    eventually(10, "the waiter to subscribe", || {
        topics(&shim)
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["topic"] == "tmux.wait.late"))
    });
    assert!(
        waiter.try_wait().unwrap().is_none(),
        "returned before the signal"
    );
    shim.ok(&["wait-for", "-S", "late"]);
    let status = wait_child(&mut waiter, 10);
    assert!(status.success());
    // Locks: a second -L blocks until -U.
    shim.ok(&["wait-for", "-L", "lock"]);
    let mut second = shim
        .cmd("tmux")
        .args(["-L", "t", "wait-for", "-L", "lock"])
        .spawn()
        .unwrap();
    eventually(10, "the second locker to wait", || {
        topics(&shim)
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["topic"] == "tmux.lock.lock"))
    });
    assert!(second.try_wait().unwrap().is_none(), "took a held lock");
    shim.ok(&["wait-for", "-U", "lock"]);
    assert!(wait_child(&mut second, 10).success());
    shim.ok(&["wait-for", "-U", "lock"]);
    assert_eq!(
        shim.tmux(&["wait-for", "-U", "lock"]).status.code(),
        Some(1)
    );
}

fn topics(shim: &Shim) -> serde_json::Value {
    let out = shim.env.run(&["bus", "topics", "--json"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["topics"].clone()
}

fn wait_child(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("child did not finish within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pipe_pane_writes_output_without_marks() {
    let shim = Shim::new();
    let log = shim.env.home.path().join("pane.log");
    shim.ok(&["new-session", "-d", "-s", "p"]);
    shim.ok(&["send-keys", "-t", "p", "true", "Enter"]);
    shim.ok(&["wait-for", "-E", "-t", "p"]);
    shim.ok(&["pipe-pane", "-t", "p", &format!("cat >> {}", log.display())]);
    shim.ok(&["send-keys", "-t", "p", "echo piped-$((6*7))", "Enter"]);
    shim.ok(&["wait-for", "-E", "-t", "p"]);
    eventually(10, "the pipe to write", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("piped-42"))
    });
    let written = std::fs::read(&log).unwrap();
    assert!(
        !String::from_utf8_lossy(&written).contains("133;"),
        "a shell-integration mark (with its secret) reached the pipe"
    );
    assert_eq!(
        shim.ok(&["display-message", "-p", "-t", "p", "#{pane_pipe}"]),
        "1\n"
    );
    shim.ok(&["pipe-pane", "-t", "p"]);
    assert_eq!(
        shim.ok(&["display-message", "-p", "-t", "p", "#{pane_pipe}"]),
        "0\n"
    );
}

#[test]
fn migrate_tmux_copies_panes() {
    let shim = Shim::new();
    let dir = shim.env.home.path().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    let dir_s = dir.display().to_string();
    shim.real(&[
        "new-session",
        "-d",
        "-s",
        "old",
        "-x",
        "100",
        "-y",
        "30",
        "-c",
        &dir_s,
    ]);
    shim.real(&["set-environment", "-t", "old", "MIGRATED_VAR", "kept"]);
    shim.real(&["split-window", "-t", "old", "-c", &dir_s]);
    let marker = format!(
        "printf '\\033[31mred-line\\033[0m\\n'; seq 1 300 | sed s/^/hist-/; {} wait -S m",
        real_tmux().display()
    );
    let out = shim
        .cmd(real_tmux())
        .args([
            "-L",
            &shim.real_label,
            "send-keys",
            "-t",
            "old:0.0",
            &marker,
            "Enter",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    // The pane's `tmux` is the real one (its $TMUX names the real server).
    let waited = shim
        .cmd("timeout")
        .args([
            "30",
            real_tmux().to_str().unwrap(),
            "-L",
            &shim.real_label,
            "wait-for",
            "m",
        ])
        .output()
        .unwrap();
    assert!(waited.status.success(), "the real tmux pane did not finish");
    shim.real(&["send-keys", "-t", "old:0.1", "sleep 300", "Enter"]);
    eventually(10, "sleep to run", || {
        String::from_utf8_lossy(
            &shim
                .real(&[
                    "display-message",
                    "-p",
                    "-t",
                    "old:0.1",
                    "#{pane_current_command}",
                ])
                .stdout,
        )
        .trim()
            == "sleep"
    });
    let out = shim
        .env
        .command(&["migrate-tmux", "-L", &shim.real_label, "--kill", "--json"])
        .env("PATH", shim.path())
        .env("TMUX_TMPDIR", shim.env.home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let panes = report["panes"].as_array().unwrap();
    assert_eq!(panes.len(), 2);
    assert_eq!(panes[0]["session"], "old.0.0");
    assert_eq!(panes[1]["session"], "old.0.1");
    assert_eq!(panes[1]["left_running"], "sleep");
    assert!(panes.iter().all(|p| p["killed"] == true));
    // tmux closed the panes (its server exits with its last one).
    assert!(!shim.real(&["has-session", "-t", "old"]).status.success());
    // The copy: same names for the shim, the directory, the size, the environment, the
    // history with its colours above a fresh prompt.
    assert_eq!(
        shim.ok(&[
            "list-panes",
            "-t",
            "old",
            "-F",
            "#{pane_index} #{pane_width}x#{pane_height}"
        ]),
        "0 100x15\n1 100x14\n"
    );
    let history = shim.ok(&["capture-pane", "-p", "-e", "-S", "-", "-t", "old:0.0"]);
    assert!(history.contains("\x1b[31mred-line"), "{history}");
    assert!(history.contains("hist-300"));
    shim.ok(&[
        "send-keys",
        "-t",
        "old:0.0",
        "echo \"$MIGRATED_VAR $PWD\"; tmux wait -S env",
        "Enter",
    ]);
    let waited = shim
        .cmd("timeout")
        .args(["30", "tmux", "-L", "t", "wait-for", "env"])
        .output()
        .unwrap();
    assert!(waited.status.success());
    let screen = shim.ok(&["capture-pane", "-p", "-t", "old:0.0"]);
    assert!(
        screen.lines().any(|l| l == format!("kept {dir_s}")),
        "{screen}"
    );
}
