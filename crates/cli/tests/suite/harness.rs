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

/// Polls `cond` every 20 ms until it holds (true) or `secs` pass first (false).
fn poll(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Polls `cond` every 20 ms until it holds; fails the test when `secs` pass first.
pub fn eventually(secs: u64, what: &str, cond: impl FnMut() -> bool) {
    assert!(poll(secs, cond), "timed out waiting for {what}");
}

/// Polls `probe` until `done` holds for what it returned, for up to `secs`; on a timeout the
/// panic shows the last value and `also()` (the state around it).
pub fn eventually_value(
    secs: u64,
    what: &str,
    mut probe: impl FnMut() -> serde_json::Value,
    done: impl Fn(&serde_json::Value) -> bool,
    also: impl FnOnce() -> String,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    if !poll(secs, || {
        last = probe();
        done(&last)
    }) {
        panic!("timed out waiting for {what}; last seen {last}; {}", also());
    }
    last
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

/// An HTTP answer: the status (0 when the connection closed without one), the head's header
/// lines and the body (de-chunked).
pub struct HttpAnswer {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl HttpAnswer {
    /// The body as JSON, or as a JSON string when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::String(self.body.clone()))
    }

    /// The value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`), with `headers` added to
/// the head, waiting at most a minute for the answer.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpAnswer {
    use std::io::{Read, Write};
    let mut s =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut answer = HttpAnswer {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    };
    if answer
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        answer.body = dechunk(body);
    }
    answer
}

/// A chunked body's data.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    out
}

/// Runs `cmd` with its output captured, killed after `secs`: whether it succeeded, and its
/// standard output then standard error.
pub fn run_with_deadline(cmd: &mut Command, secs: u64) -> (bool, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `cmd` with `input` on its standard input (a pipe, closed once written) and its
/// output captured; an error when it cannot be started.
pub fn with_stdin(cmd: &mut Command, input: &[u8]) -> std::io::Result<Output> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input)?;
    }
    child.wait_with_output()
}
