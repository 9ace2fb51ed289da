//! The client side of the protocol: connecting (and starting the daemon on first use), calling
//! methods, and receiving notifications.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ai_session_core::paths::Paths;
use ai_session_protocol::methods::{HELLO, HelloParams, HelloResult};
use ai_session_protocol::{
    Notification, PROTOCOL_VERSION, Request, Response, RpcError, ServerMessage,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{Mutex, mpsc, oneshot};

/// How long a freshly started daemon may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon answered with an error.
    #[error("{0}")]
    Rpc(#[from] RpcError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No daemon runs for this socket and none was to be started.
    #[error("no daemon is running on {0}")]
    NotRunning(String),
    /// The daemon closed the connection or sent something unreadable.
    #[error("{0}")]
    Protocol(String),
    /// The connection closed before the daemon answered the handshake (a dying daemon).
    #[error("the daemon closed the connection before answering")]
    Closed,
}

/// Which daemon to talk to (`-L NAME` / `-S SOCKET`).
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub label: Option<String>,
    pub socket: Option<PathBuf>,
}

impl Selector {
    pub fn paths(&self) -> Paths {
        Paths::resolve(self.label.as_deref(), self.socket.as_deref())
    }

    fn args(&self) -> Vec<String> {
        match (&self.socket, &self.label) {
            (Some(s), _) => vec!["-S".into(), s.display().to_string()],
            (None, Some(l)) => vec!["-L".into(), l.clone()],
            (None, None) => Vec::new(),
        }
    }
}

type PendingMap = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Response>>>>;

pub struct Client {
    writer: Mutex<OwnedWriteHalf>,
    pending: PendingMap,
    next_id: AtomicU64,
    notifications: Mutex<mpsc::UnboundedReceiver<Notification>>,
}

impl Client {
    /// Connects to the selected daemon, starting it first when `autostart` is set and none runs.
    ///
    /// A daemon that was just killed can still accept a connection for a moment (its socket
    /// closes when its last thread has exited, which an fsync in flight delays) and then drop
    /// it unanswered: such a handshake is retried, so the next attempt finds the socket dead
    /// and starts a fresh daemon.
    pub async fn connect(sel: &Selector, autostart: bool) -> Result<Self, ClientError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match Self::connect_once(sel, autostart).await {
                Err(ClientError::Closed) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(ClientError::Closed) => {
                    return Err(ClientError::Protocol(
                        "the daemon closed the connection".into(),
                    ));
                }
                other => return other,
            }
        }
    }

    async fn connect_once(sel: &Selector, autostart: bool) -> Result<Self, ClientError> {
        let paths = sel.paths();
        match UnixStream::connect(&paths.socket).await {
            Ok(stream) => return Self::handshake(stream).await,
            Err(e) if !autostart => {
                tracing::debug!("connect failed: {e}");
                return Err(ClientError::NotRunning(paths.socket.display().to_string()));
            }
            Err(_) => {}
        }
        paths.create_dirs()?;
        // One starter at a time: the others wait here, then find the daemon running.
        let lock_path = paths.socket.with_extension("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        let lock = tokio::task::spawn_blocking(move || {
            rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
                .map(|()| lock)
                .map_err(std::io::Error::from)
        })
        .await
        .map_err(|e| ClientError::Protocol(format!("lock task failed: {e}")))??;
        if let Ok(stream) = UnixStream::connect(&paths.socket).await {
            drop(lock);
            return Self::handshake(stream).await;
        }
        start_daemon(sel).await?;
        drop(lock);
        let stream = UnixStream::connect(&paths.socket).await?;
        Self::handshake(stream).await
    }

    async fn handshake(stream: UnixStream) -> Result<Self, ClientError> {
        let (read, write) = stream.into_split();
        let pending: PendingMap = Arc::default();
        let (ntx, nrx) = mpsc::unbounded_channel();
        tokio::spawn(read_loop(BufReader::new(read), pending.clone(), ntx));
        let client = Self {
            writer: Mutex::new(write),
            pending,
            next_id: AtomicU64::new(1),
            notifications: Mutex::new(nrx),
        };
        let hello = HelloParams {
            client: format!("ai-session-cli {}", env!("CARGO_PKG_VERSION")),
            protocol: PROTOCOL_VERSION,
            // An agent started with a token acts with that token's capabilities only.
            token: std::env::var("AI_SESSION_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        };
        let _: HelloResult = client.call(HELLO, hello).await?;
        Ok(client)
    }

    /// Calls a method and decodes its result.
    pub async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, ClientError> {
        let value = self.call_value(method, params).await?;
        // The daemon could not record this action in its audit log: the user must know.
        if let Some(warning) = value.get("audit_warning").and_then(|w| w.as_str()) {
            eprintln!("ai-session: warning: {warning}");
        }
        serde_json::from_value(value)
            .map_err(|e| ClientError::Protocol(format!("unexpected result for {method}: {e}")))
    }

    pub async fn call_value<P: Serialize>(
        &self,
        method: &str,
        params: P,
    ) -> Result<serde_json::Value, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let req =
            Request::new(id, method, params).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let mut line =
            serde_json::to_vec(&req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        let written = self.writer.lock().await.write_all(&line).await;
        match written {
            Err(e) if method == HELLO => {
                tracing::debug!("handshake write failed: {e}");
                return Err(ClientError::Closed);
            }
            other => other?,
        }
        let resp = rx.await.map_err(|_| {
            if method == HELLO {
                ClientError::Closed
            } else {
                ClientError::Protocol("the daemon closed the connection".into())
            }
        })?;
        match (resp.result, resp.error) {
            (_, Some(err)) => Err(ClientError::Rpc(err)),
            (Some(result), None) => Ok(result),
            (None, None) => Err(ClientError::Protocol(
                "response without result or error".into(),
            )),
        }
    }

    /// The next notification, or `None` once the connection is closed.
    pub async fn notification(&self) -> Option<Notification> {
        self.notifications.lock().await.recv().await
    }
}

async fn read_loop(
    mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    pending: PendingMap,
    notifications: mpsc::UnboundedSender<Notification>,
) {
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        match serde_json::from_str::<ServerMessage>(&line) {
            Ok(ServerMessage::Response(resp)) => {
                let id = resp.id.as_u64().unwrap_or(0);
                let waiter = pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                if let Some(tx) = waiter {
                    tx.send(resp).ok();
                }
            }
            Ok(ServerMessage::Notification(n)) => {
                notifications.send(n).ok();
            }
            Err(e) => tracing::warn!("unreadable message from the daemon: {e}"),
        }
    }
    // Dropping the senders wakes every caller with "connection closed".
    pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
}

/// Starts `ai-session daemon run` detached from this terminal and waits until it says it is
/// listening.
async fn start_daemon(sel: &Selector) -> Result<(), ClientError> {
    let exe = std::env::current_exe()?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.args(sel.args())
        .args(["daemon", "run", "--notify-ready"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| ClientError::Protocol("daemon stdout missing".into()))?;
    let mut line = String::new();
    let read =
        tokio::time::timeout(START_DEADLINE, BufReader::new(stdout).read_line(&mut line)).await;
    match read {
        Ok(Ok(_)) if line.trim() == "ready" => {
            // The daemon keeps running on its own; reap it later is not our job (it is
            // reparented when this client exits).
            Ok(())
        }
        Ok(_) => {
            let mut err = String::new();
            if let Some(stderr) = child.stderr.take() {
                let mut r = BufReader::new(stderr);
                tokio::time::timeout(Duration::from_secs(1), r.read_line(&mut err))
                    .await
                    .ok();
            }
            Err(ClientError::Protocol(format!(
                "the daemon failed to start: {}",
                err.trim()
            )))
        }
        Err(_) => Err(ClientError::Protocol(format!(
            "the daemon did not start within {}s; see its log in {}",
            START_DEADLINE.as_secs(),
            sel.paths().data.display()
        ))),
    }
}
