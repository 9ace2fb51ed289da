//! What the benchmark binaries share: a blocking JSON-RPC client of the daemon's socket and
//! percentiles.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::{Value, json};

/// A connection to the daemon, one request at a time.
pub struct Rpc {
    w: UnixStream,
    r: BufReader<UnixStream>,
    id: u64,
}

impl Rpc {
    /// Connects without a `hello` (the daemon does not require one).
    pub fn connect(sock: &Path) -> Result<Self, String> {
        let w =
            UnixStream::connect(sock).map_err(|e| format!("connect {}: {e}", sock.display()))?;
        let r = BufReader::new(w.try_clone().map_err(|e| e.to_string())?);
        Ok(Self { w, r, id: 0 })
    }

    /// Connects and says `hello` as `client`.
    pub fn hello(sock: &Path, client: &str) -> Result<Self, String> {
        let mut rpc = Self::connect(sock)?;
        rpc.call("hello", json!({"client": client, "protocol": 1}))?;
        Ok(rpc)
    }

    /// Calls `method` and returns its result; an error response is an `Err` naming the method.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.id += 1;
        let mut line = json!({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params})
            .to_string();
        line.push('\n');
        self.w
            .write_all(line.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut resp = String::new();
        self.r.read_line(&mut resp).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&resp).map_err(|e| e.to_string())?;
        match v.get("error") {
            Some(err) => Err(format!("{method}: {err}")),
            None => Ok(v["result"].clone()),
        }
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
