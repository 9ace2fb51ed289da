//! What the benchmark binaries share: a blocking client of the daemon's socket (the same
//! `ai-session-client` the CLI uses) and percentiles.

#![forbid(unsafe_code)]

use std::path::Path;

use ai_session_client::{Options, Selector, blocking};
use serde_json::{Value, json};

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
