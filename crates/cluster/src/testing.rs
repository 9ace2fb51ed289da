//! A private `nats-server -js` for tests (feature `test-server`): on a port the server picks
//! itself (`-p -1`) and reports in its ports file, so two tests never race for one port and a
//! test never talks to another test's server; stopped and its store removed when dropped.

pub mod credentials;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `nats-server` with JetStream.
pub struct NatsServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl NatsServer {
    /// Starts `nats-server -js` on loopback with `extra` arguments (TLS settings ...), and
    /// waits until it has written the port it listens on.
    pub fn start<S: AsRef<OsStr>>(extra: &[S]) -> std::io::Result<NatsServer> {
        let dir = tempfile::Builder::new().prefix("ais-nats").tempdir()?;
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", "-1", "--ports_file_dir"])
            .arg(dir.path())
            .arg("-sd")
            .arg(dir.path().join("store"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot run nats-server (`apt-get install nats-server`): {e}"),
                )
            })?;
        let mut server = NatsServer {
            child,
            port: 0,
            dir,
        };
        server.port = server.wait_for_port()?;
        Ok(server)
    }

    fn ports_file(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("nats-server_{}.ports", self.child.id()))
    }

    /// The client port from the ports file, which the server writes once it listens.
    fn wait_for_port(&mut self) -> std::io::Result<u16> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(port) = std::fs::read_to_string(self.ports_file())
                .ok()
                .and_then(|text| client_port(&text))
            {
                return Ok(port);
            }
            if let Some(status) = self.child.try_wait()? {
                return Err(std::io::Error::other(format!(
                    "nats-server exited before listening: {status}"
                )));
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(
                    "nats-server did not report its port within 20 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `scheme://127.0.0.1:PORT`.
    pub fn url(&self, scheme: &str) -> String {
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// The port of the first client URL in a ports file (`{"nats":["nats://127.0.0.1:4222"]}`).
fn client_port(ports: &str) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_str(ports).ok()?;
    let url = value.get("nats")?.get(0)?.as_str()?;
    url.rsplit(':').next()?.parse().ok()
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_client_port_is_read_from_the_ports_file() {
        assert_eq!(
            super::client_port(r#"{"nats":["nats://127.0.0.1:40703"]}"#),
            Some(40703)
        );
        assert_eq!(super::client_port("{}"), None);
    }
}
