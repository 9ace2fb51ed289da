//! A private daemon per test: its own `AI_SESSION_HOME` and label, stopped on drop.

use std::process::{Command, Output, Stdio};

pub struct Env {
    pub home: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self {
            home: tempfile::Builder::new()
                .prefix("ais")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// A daemon whose state lives outside `/tmp`, for sandboxed sessions (a private `/tmp`
    /// would hide a state directory under it).
    pub fn outside_tmp() -> Self {
        let base = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(base).expect("target tmpdir");
        Self {
            home: tempfile::Builder::new()
                .prefix("ais")
                .tempdir_in(base)
                .expect("tempdir"),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ai-session"));
        cmd.env("AI_SESSION_HOME", self.home.path())
            .env("HOME", self.home.path())
            .env_remove("PROMPT_COMMAND")
            .env("SHELL", "/bin/bash")
            .args(["-L", "t"])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run ai-session")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        // Right after the subcommand: exec takes everything after its first free word as the
        // command line.
        let mut all = args.to_vec();
        let at = if all.first() == Some(&"daemon") { 2 } else { 1 };
        all.insert(at.min(all.len()), "--json");
        let out = self.run(&all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{args:?}: not JSON ({e}):\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// `exec --json` in session `t`.
    pub fn exec(&self, t: &str, command: &str) -> serde_json::Value {
        self.json(&["exec", "-t", t, "--timeout", "30", command])
    }

    pub fn daemon_pid(&self) -> i32 {
        self.json(&["daemon", "status"])["pid"]
            .as_i64()
            .expect("pid") as i32
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Best effort: a test that already stopped or killed the daemon is fine.
        self.command(&["daemon", "stop"]).output().ok();
    }
}

/// True while process `pid` exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

/// Polls `cond` every 20 ms until it holds; fails the test when `secs` pass first.
pub fn eventually(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Every file under `dir`, sorted (none when it cannot be read).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
