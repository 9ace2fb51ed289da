//! A small async client of the daemon: one connection, opened on first use (starting the daemon
//! when its socket is absent) and reopened when the daemon closed it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ai_session_core::paths::Paths;
use ai_session_protocol::methods::{
    HELLO, HelloParams, HelloResult, SESSION_SUBSCRIBE, SubscribeResult, Target,
};
use ai_session_protocol::{
    Notification, PROTOCOL_VERSION, Request, Response, RpcError, ServerMessage,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, mpsc, oneshot};

/// How long `ai-session daemon start` may take.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// Notifications queued for a subscriber before newer ones are dropped (a subscriber only needs
/// to know that something changed, so dropping under load loses nothing it acts on).
const NOTIFY_QUEUE: usize = 256;

/// Why a call failed.
#[derive(Debug)]
pub enum CallError {
    /// The daemon answered with an error (message, kind, hint).
    Rpc(RpcError),
    /// The daemon could not be reached or started, or answered something unreadable.
    Transport(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rpc(e) => write!(f, "{e}"),
            Self::Transport(m) => f.write_str(m),
        }
    }
}

/// Which daemon to talk to: `-L NAME` or `-S SOCKET`.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub label: Option<String>,
    pub socket: Option<PathBuf>,
}

impl Selector {
    fn paths(&self) -> Paths {
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

type Pending = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Response>>>>;

struct Conn {
    writer: Mutex<OwnedWriteHalf>,
    pending: Pending,
    closed: Arc<AtomicBool>,
    reader: tokio::task::AbortHandle,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // Closes the socket's read half too: the daemon sees the connection end and stops
        // forwarding to it.
        self.reader.abort();
    }
}

/// A session followed on a connection of its own (`session.subscribe`): the daemon's
/// notifications for it (`session.output`, `session.state`, `session.command`,
/// `session.closed`) arrive on `events`, which ends when the connection does. Dropping it closes
/// the connection, which ends the subscription.
pub struct Subscription {
    pub events: mpsc::Receiver<Notification>,
    _conn: Arc<Conn>,
}

/// The daemon, as the MCP server sees it.
pub struct Daemon {
    sel: Selector,
    conn: Mutex<Option<Arc<Conn>>>,
    next_id: AtomicU64,
}

impl Daemon {
    pub fn new(sel: Selector) -> Self {
        Self {
            sel,
            conn: Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    /// Calls a method and decodes its result.
    pub async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, CallError> {
        let conn = self.connection().await?;
        let value = self.call_on(&conn, method, params).await?;
        serde_json::from_value(value)
            .map_err(|e| CallError::Transport(format!("unexpected result for {method}: {e}")))
    }

    async fn call_on<P: Serialize>(
        &self,
        conn: &Conn,
        method: &str,
        params: P,
    ) -> Result<serde_json::Value, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let req =
            Request::new(id, method, params).map_err(|e| CallError::Transport(e.to_string()))?;
        let mut line = serde_json::to_vec(&req).map_err(|e| CallError::Transport(e.to_string()))?;
        line.push(b'\n');
        let (tx, rx) = oneshot::channel();
        conn.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        if let Err(e) = conn.writer.lock().await.write_all(&line).await {
            conn.closed.store(true, Ordering::Relaxed);
            return Err(CallError::Transport(format!(
                "lost the connection to the daemon: {e}"
            )));
        }
        let resp = rx.await.map_err(|_| {
            CallError::Transport(
                "the daemon closed the connection (it may have been stopped); retry to reconnect"
                    .into(),
            )
        })?;
        match (resp.result, resp.error) {
            (_, Some(err)) => Err(CallError::Rpc(err)),
            (Some(result), None) => Ok(result),
            (None, None) => Err(CallError::Transport(
                "the daemon sent a response without result or error".into(),
            )),
        }
    }

    /// The open connection, or a new one (starting the daemon when needed).
    async fn connection(&self) -> Result<Arc<Conn>, CallError> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref()
            && !conn.closed.load(Ordering::Relaxed)
        {
            return Ok(conn.clone());
        }
        let stream = self.connect_or_start().await?;
        let conn = Arc::new(open(stream, None));
        self.hello(&conn).await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Follows a session on a new connection until the returned subscription is dropped.
    pub async fn subscribe(&self, target: &str) -> Result<Subscription, CallError> {
        let stream = self.connect_or_start().await?;
        let (tx, rx) = mpsc::channel(NOTIFY_QUEUE);
        let conn = Arc::new(open(stream, Some(tx)));
        self.hello(&conn).await?;
        let params = Target {
            target: target.to_owned(),
        };
        let _: SubscribeResult =
            serde_json::from_value(self.call_on(&conn, SESSION_SUBSCRIBE, params).await?)
                .map_err(|e| CallError::Transport(format!("unexpected subscribe result: {e}")))?;
        Ok(Subscription {
            events: rx,
            _conn: conn,
        })
    }

    async fn hello(&self, conn: &Conn) -> Result<(), CallError> {
        let hello = HelloParams {
            client: format!("ai-session-mcp {}", env!("CARGO_PKG_VERSION")),
            protocol: PROTOCOL_VERSION,
            // An agent started with a token acts with that token's capabilities only.
            token: std::env::var("AI_SESSION_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        };
        let _: HelloResult = serde_json::from_value(self.call_on(conn, HELLO, hello).await?)
            .map_err(|e| CallError::Transport(format!("unexpected hello result: {e}")))?;
        Ok(())
    }

    async fn connect_or_start(&self) -> Result<UnixStream, CallError> {
        let paths = self.sel.paths();
        if let Ok(stream) = UnixStream::connect(&paths.socket).await {
            return Ok(stream);
        }
        // `ai-session daemon start` serialises concurrent starters and returns once the daemon
        // listens. Its stdout must not reach ours: that is the MCP channel.
        let exe = std::env::current_exe()
            .map_err(|e| CallError::Transport(format!("cannot find the ai-session binary: {e}")))?;
        let mut child = tokio::process::Command::new(exe)
            .args(self.sel.args())
            .args(["daemon", "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| CallError::Transport(format!("cannot start the daemon: {e}")))?;
        let mut stderr = String::new();
        let waited = tokio::time::timeout(START_DEADLINE, async {
            if let Some(err) = child.stderr.take() {
                BufReader::new(err).read_to_string(&mut stderr).await.ok();
            }
            child.wait().await
        })
        .await;
        match waited {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => {
                return Err(CallError::Transport(format!(
                    "`ai-session daemon start` failed ({status}): {}",
                    stderr.trim()
                )));
            }
            Ok(Err(e)) => {
                return Err(CallError::Transport(format!(
                    "cannot start the daemon: {e}"
                )));
            }
            Err(_) => {
                return Err(CallError::Transport(format!(
                    "the daemon did not start within {}s; see its log in {}",
                    START_DEADLINE.as_secs(),
                    paths.data.display()
                )));
            }
        }
        UnixStream::connect(&paths.socket).await.map_err(|e| {
            CallError::Transport(format!(
                "cannot connect to the daemon on {}: {e}",
                paths.socket.display()
            ))
        })
    }
}

fn open(stream: UnixStream, notify: Option<mpsc::Sender<Notification>>) -> Conn {
    let (read, write) = stream.into_split();
    let pending: Pending = Arc::default();
    let closed = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_loop(
        BufReader::new(read),
        pending.clone(),
        closed.clone(),
        notify,
    ))
    .abort_handle();
    Conn {
        writer: Mutex::new(write),
        pending,
        closed,
        reader,
    }
}

async fn read_loop(
    mut reader: BufReader<OwnedReadHalf>,
    pending: Pending,
    closed: Arc<AtomicBool>,
    notify: Option<mpsc::Sender<Notification>>,
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
                if let Some(tx) = &notify {
                    match tx.try_send(n) {
                        Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
            }
            Err(e) => tracing::warn!("unreadable message from the daemon: {e}"),
        }
    }
    closed.store(true, Ordering::Relaxed);
    // Dropping the senders wakes every caller with "connection closed".
    pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
}
