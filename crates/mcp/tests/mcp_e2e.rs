//! `ai-session mcp` driven over stdio by the official Python MCP SDK (`mcp_client.py`).
//!
//! The `ai-session` binary is another crate's, so it is found next to this test's own binary
//! (`target/<profile>/ai-session`); `cargo nextest run --workspace` builds it first. Without the
//! Python SDK the test fails, naming the install step (`.ci/run` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(240);

fn ai_session_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/mcp_e2e-HASH -> target/<profile>/ai-session
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = profile_dir.join("ai-session");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p ai-session, or cargo nextest run --workspace)",
        bin.display()
    );
    bin
}

fn python_has_mcp() -> bool {
    Command::new("python3")
        .args(["-c", "import mcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Stops the test's private daemon even when the test fails.
struct StopDaemon<'a> {
    bin: &'a PathBuf,
    home: &'a std::path::Path,
    label: &'a str,
}

impl Drop for StopDaemon<'_> {
    fn drop(&mut self) {
        let status = Command::new(self.bin)
            .args(["-L", self.label, "daemon", "stop"])
            .env("AI_SESSION_HOME", self.home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("could not stop the test daemon: {status:?}");
        }
    }
}

#[test]
fn python_sdk_drives_the_stdio_server() {
    assert!(
        python_has_mcp(),
        "the Python MCP SDK is missing: run .ci/run's install step (python3 -m pip install mcp)"
    );
    let bin = ai_session_binary();
    let home = tempfile::tempdir().unwrap();
    let label = format!("mcp-e2e-{}", std::process::id());
    let _stop = StopDaemon {
        bin: &bin,
        home: home.path(),
        label: &label,
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py");
    let child = Command::new("python3")
        .arg(&script)
        .arg(&bin)
        .arg(&label)
        .env("AI_SESSION_HOME", home.path())
        // Shells read no rc files of the user's (a slow ~/.bashrc would slow every session).
        .env("HOME", home.path())
        .env_remove("AI_SESSION_AGENT_TOKEN")
        .current_dir(home.path())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    finish(child, "mcp_client.py");
}

/// Waits for the client script `name` to succeed within [`DEADLINE`]; kills it past that.
fn finish(mut child: std::process::Child, name: &str) {
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            child.kill().ok();
            child.wait().ok();
            panic!("{name} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{name} failed: {status}");
}

/// Where `.ci/run` installs the TypeScript SDK (`@modelcontextprotocol/client` 2.x and
/// `@modelcontextprotocol/sdk` 1.x).
fn ts_sdk_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.ci/peers/mcp-ts");
    for package in ["client", "sdk"] {
        assert!(
            dir.join("node_modules/@modelcontextprotocol")
                .join(package)
                .is_dir(),
            "the TypeScript MCP SDK is missing from {}: run .ci/run's install step (npm install \
             @modelcontextprotocol/client@2.4.0 @modelcontextprotocol/sdk@1.32.2 there)",
            dir.display()
        );
    }
    dir
}

/// Also the regression test of a listen stream that missed the output of a command the client
/// ran right after the acknowledgement (the session was followed only after it): the script
/// runs `session_exec` as soon as `subscriptions/listen` is acknowledged.
#[test]
fn typescript_sdk_drives_the_stdio_server_at_both_protocol_versions() {
    let sdk = ts_sdk_dir();
    let bin = ai_session_binary();
    let home = tempfile::tempdir().unwrap();
    let label = format!("mcp-ts-{}", std::process::id());
    let _stop = StopDaemon {
        bin: &bin,
        home: home.path(),
        label: &label,
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_ts_client.mjs");
    let child = Command::new("node")
        .arg(&script)
        .arg(&sdk)
        .arg("stdio")
        .arg(&bin)
        .arg(&label)
        .env("AI_SESSION_HOME", home.path())
        .env("HOME", home.path())
        .current_dir(home.path())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    finish(child, "mcp_ts_client.mjs");
}
