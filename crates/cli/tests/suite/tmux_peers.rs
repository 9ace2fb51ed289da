//! Peers' own clients against the `tmux` shim: a named subset of libtmux's test suite (run by
//! pytest with the shim first on PATH) and the tmux-mcp MCP server driven by the official
//! Python MCP SDK. `.ci/run` installs both (pinned); a missing one fails the test with the
//! install step to run, never a silent skip.

use std::path::PathBuf;
use std::time::Duration;

use super::tmux::Shim;

/// libtmux's release whose tests run here (`.ci/run` unpacks its source distribution).
const LIBTMUX: &str = "libtmux-0.62.0";

/// The libtmux tests that run against the shim, by file and name. `docs/tmux.md` says why the
/// others are left out: each needs something only tmux's interactive side has (clients,
/// control mode, key bindings, copy and choose modes, popups, prompts), or moves windows and
/// panes between places the daemon names them by (move/swap/break/join, select-layout).
pub const LIBTMUX_SUBSET: &[&str] = &include!("../tmux/libtmux_subset.in");

fn peers_dir() -> PathBuf {
    std::env::var_os("AI_SESSION_PEERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/peers")))
}

#[test]
fn libtmux_suite_subset_passes() {
    let src = peers_dir().join(LIBTMUX);
    assert!(
        src.join("tests").is_dir(),
        "{} is missing: run .ci/run's peer install step (pip download libtmux==0.62.0 --no-binary :all:)",
        src.display()
    );
    let shim = Shim::new();
    // A copy outside the source tree: its .python-version would pick another interpreter.
    let run = shim.env.home.path().join("libtmux");
    copy_dir(&src.join("tests"), &run.join("tests"));
    std::fs::copy(src.join("conftest.py"), run.join("conftest.py")).unwrap();
    let mut cmd = shim.cmd("python3");
    cmd.current_dir(&run)
        .args([
            "-m",
            "pytest",
            "-o",
            "addopts=",
            "-p",
            "no:cacheprovider",
            "-q",
        ])
        .args(LIBTMUX_SUBSET);
    let out = run_with_deadline(cmd, Duration::from_secs(900));
    stop_daemons(&shim);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: String = stdout.lines().rev().take(60).collect::<Vec<_>>().join("\n");
    assert!(
        out.status.success(),
        "libtmux tests failed ({:?}); last lines, newest first:\n{tail}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout.lines().last().unwrap_or("");
    let passed: usize = summary
        .split_whitespace()
        .zip(summary.split_whitespace().skip(1))
        .find(|(_, w)| w.starts_with("passed"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= LIBTMUX_SUBSET.len(),
        "expected every named test to pass, got: {summary}"
    );
}

#[test]
fn tmux_mcp_drives_the_shim() {
    let shim = Shim::new();
    // tmux-mcp 0.3.3 needs the MCP SDK 1.x: it has a venv of its own (.ci/run makes it).
    let python = peers_dir().join("tmux-mcp/bin/python");
    let probe = shim
        .cmd(&python)
        .args(["-c", "import tmux_mcp.server, mcp"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|p| p.status.success()),
        "tmux-mcp is not installed in {}: run .ci/run's peer install step\n{:?}",
        python.display(),
        probe.map(|p| String::from_utf8_lossy(&p.stderr).into_owned())
    );
    // The MCP server runs plain `tmux`: `$TMUX` points it at this test's daemon.
    shim.env.ok(&["daemon", "start"]);
    let socket = shim.env.home.path().join("run/t.sock");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tmux/tmux_mcp_client.py");
    let mut cmd = shim.cmd(&python);
    cmd.arg(script)
        .env("TMUX", format!("{},0,0", socket.display()));
    let out = run_with_deadline(cmd, Duration::from_secs(120));
    assert!(
        out.status.success(),
        "tmux-mcp client failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(out.stdout.trim_ascii()).expect("JSON summary");
    let checked = report["checked"].as_array().unwrap();
    for tool in [
        "tmux_create_session",
        "tmux_send_keys",
        "tmux_read_pane",
        "tmux_split_window",
        "tmux_resize_pane",
        "tmux_create_window",
        "tmux_kill",
    ] {
        assert!(
            checked.iter().any(|c| c == tool),
            "{tool} was not exercised"
        );
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Runs `cmd`, killing it at the deadline (a hung peer must fail the test, not the CI run).
fn run_with_deadline(mut cmd: std::process::Command, limit: Duration) -> std::process::Output {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stdout.read_to_end(&mut v).ok();
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        stderr.read_to_end(&mut v).ok();
        v
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::process::Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// libtmux starts one server (one daemon here) per test socket; stop any left behind.
fn stop_daemons(shim: &Shim) {
    let run = shim.env.home.path().join("run");
    let Ok(entries) = std::fs::read_dir(&run) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "sock") {
            std::process::Command::new(env!("CARGO_BIN_EXE_ai-session"))
                .env("AI_SESSION_HOME", shim.env.home.path())
                .arg("-S")
                .arg(&p)
                .args(["daemon", "stop"])
                .output()
                .ok();
        }
    }
}
