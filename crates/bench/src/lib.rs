//! What the benchmark binaries share: a blocking client of the daemon's socket (the same
//! `ai-session-client` the CLI uses), the command line of a private daemon, and percentiles.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ai_session_client::{Options, Selector, blocking};
use serde_json::{Value, json};

/// `utime + stime` of process `pid` (with its waited-for children's when `children`), in
/// clock ticks (1/100 s on Linux, `getconf CLK_TCK`).
pub fn cpu_ticks(pid: u64, children: bool) -> Result<u64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: no field {i}"))
    };
    // utime, stime, cutime, cstime are fields 14-17 of proc(5): 11-14 counted from the state.
    let own = field(11)? + field(12)?;
    Ok(if children {
        own + field(13)? + field(14)?
    } else {
        own
    })
}

/// Waits until process `pid` has used no CPU for `quiet` (its work after a flood: the log,
/// the store, the emulator), so that a latency phase measures a daemon at rest and not the
/// tail of the phase before it. Gives up after `deadline`; returns how long it waited.
pub fn wait_quiet(
    pid: u64,
    quiet: std::time::Duration,
    deadline: std::time::Duration,
) -> Result<std::time::Duration, String> {
    let start = std::time::Instant::now();
    let mut ticks = cpu_ticks(pid, false)?;
    let mut since = std::time::Instant::now();
    while since.elapsed() < quiet && start.elapsed() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = cpu_ticks(pid, false)?;
        if now != ticks {
            ticks = now;
            since = std::time::Instant::now();
        }
    }
    Ok(start.elapsed())
}

/// A connection to the daemon, one request at a time.
pub struct Rpc {
    client: blocking::Client,
}

impl Rpc {
    /// Connects to the daemon on `sock` and says `hello` as `ai-session-bench`.
    pub fn connect(sock: &Path) -> Result<Self, String> {
        Self::hello(sock, "ai-session-bench")
    }

    /// Connects to the daemon on `sock` and says `hello` as `client`; never starts a daemon.
    pub fn hello(sock: &Path, client: &str) -> Result<Self, String> {
        let client = blocking::Client::connect(&Selector::socket(sock), &Options::new(client))
            .map_err(|e| format!("connect {}: {e}", sock.display()))?;
        Ok(Self { client })
    }

    /// Calls `method` and returns its result; an error response is an `Err` naming the method.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.client
            .call_value(method, params)
            .map_err(|e| format!("{method}: {e}"))
    }

    /// `session.exec` of `command`, which must finish (10 minutes at most).
    pub fn exec(&mut self, target: &str, command: &str) -> Result<Value, String> {
        let r = self.call(
            "session.exec",
            json!({"target": target, "command": command, "timeout_ms": 600_000}),
        )?;
        if r["status"] != "exited" {
            return Err(format!("exec {command}: {r}"));
        }
        Ok(r)
    }
}

/// The command line of a private daemon: `bin -L label` with `AI_SESSION_HOME=home`.
pub struct Cli {
    bin: PathBuf,
    home: PathBuf,
    label: String,
    env: Vec<(String, PathBuf)>,
}

impl Cli {
    pub fn new(bin: &Path, home: &Path, label: &str) -> Self {
        Self {
            bin: bin.to_owned(),
            home: home.to_owned(),
            label: label.to_owned(),
            env: Vec::new(),
        }
    }

    /// One more variable in every command's environment.
    pub fn with_env(mut self, key: &str, value: &Path) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Runs `args`; its standard output, or an `Err` holding its standard error.
    pub fn run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .env("AI_SESSION_HOME", &self.home)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(["-L", &self.label])
            .args(args)
            .output()
            .map_err(|e| format!("{}: {e}", self.bin.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The daemon's socket.
    pub fn socket(&self) -> PathBuf {
        self.home.join(format!("run/{}.sock", self.label))
    }
}

/// The `p` quantile (0..=1) of sorted samples, nearest rank; NaN when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Sorts `samples` and returns their `p` quantile.
pub fn pct(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    percentile(samples, p)
}

/// tmux's figures from the shared baseline script (`$TMUX_BASELINE`, else
/// `../shared/bench/tmux-baseline.sh`) with `sessions` sessions and `mb` MB for its throughput
/// part: the JSON of its last line.
pub fn tmux_baseline(sessions: usize, mb: usize) -> Result<Value, String> {
    let script = std::env::var("TMUX_BASELINE")
        .unwrap_or_else(|_| "../shared/bench/tmux-baseline.sh".into());
    let out = Command::new("bash")
        .arg(&script)
        .arg(sessions.to_string())
        .arg(mb.to_string())
        .output()
        .map_err(|e| format!("{script}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().ok_or_else(|| {
        format!(
            "{script} printed nothing: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    serde_json::from_str(line).map_err(|e| format!("{script}: {e}: {line}"))
}

/// A fresh PTY: its master, and its slave opened for a child's standard streams.
pub fn open_pty() -> Result<(std::fs::File, std::fs::File), String> {
    use rustix::fs::OFlags;
    let err = |e: rustix::io::Errno| format!("pty: {e}");
    let master =
        rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY)
            .map_err(err)?;
    rustix::pty::grantpt(&master).map_err(err)?;
    rustix::pty::unlockpt(&master).map_err(err)?;
    let name = rustix::pty::ptsname(&master, Vec::new()).map_err(err)?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY,
        rustix::fs::Mode::empty(),
    )
    .map_err(err)?;
    Ok((std::fs::File::from(master), std::fs::File::from(slave)))
}
