//! One connection to the daemon: newline-delimited JSON-RPC frames written by callers, read by
//! one task that routes each response to its caller and each notification to the owner's queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ai_session_protocol::methods::{HelloParams, HelloResult};
use ai_session_protocol::registry::{Hello, Method};
use ai_session_protocol::trace::TraceContext;
use ai_session_protocol::{Notification, PROTOCOL_VERSION, Request, Response, ServerMessage};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{Error, Notifications, Options, Selector, Start};

/// The field of a successful result in which the daemon says the action could not be audited
/// (`crates/daemon/src/access.rs`).
const AUDIT_WARNING: &str = "audit_warning";

/// How long `connect` keeps retrying a handshake that a dying daemon dropped.
const HANDSHAKE_RETRY: Duration = Duration::from_secs(5);

/// Bytes the reader takes from the socket at a time: an exec's answer can be megabytes on one
/// line, read 8 KiB a call (the default) it costs a thousand calls per 8 MiB.
const READ_BUFFER: usize = 256 << 10;

/// The callers waiting for a response, by request id.
type Pending = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Response>>>>;

/// A connection to the daemon after a successful `hello`. Calls may run concurrently from
/// several tasks; responses are matched by id. Dropping it closes the connection, which ends
/// its subscriptions on the daemon's side.
pub struct Client {
    writer: Mutex<OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    notifications: Mutex<mpsc::Receiver<Notification>>,
    closed: Arc<AtomicBool>,
    reader: tokio::task::AbortHandle,
    on_warning: Option<fn(&str)>,
    /// Sent with every request that does not carry its own (`Options::trace`).
    trace: Option<TraceContext>,
}

impl Drop for Client {
    fn drop(&mut self) {
        // The read half lives in the reader task: ending it closes the socket for good, so the
        // daemon sees the connection end and stops forwarding to it.
        self.reader.abort();
    }
}

impl Client {
    /// Connects to the selected daemon, starting it first when none listens and `opts.start`
    /// allows it, and says `hello`.
    ///
    /// A daemon that was just killed can still accept a connection for a moment (its socket
    /// closes when its last thread has exited, which an fsync in flight delays) and then drop
    /// it unanswered: such a handshake is retried, so a later attempt finds the socket dead
    /// and starts a fresh daemon.
    pub async fn connect(sel: &Selector, opts: &Options) -> Result<Self, Error> {
        let deadline = tokio::time::Instant::now() + HANDSHAKE_RETRY;
        loop {
            match Self::connect_once(sel, opts).await {
                Err(Error::Closed) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }

    async fn connect_once(sel: &Selector, opts: &Options) -> Result<Self, Error> {
        let paths = sel.paths();
        let stream = match UnixStream::connect(&paths.socket).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!("connect {}: {e}", paths.socket.display());
                let program = match &opts.start {
                    Start::Never => return Err(Error::NotRunning(paths.socket)),
                    Start::CurrentExe => None,
                    Start::Program(p) => Some(p.as_path()),
                };
                crate::start::start(sel, &paths, program).await?
            }
        };
        Self::handshake(stream, opts).await
    }

    async fn handshake(stream: UnixStream, opts: &Options) -> Result<Self, Error> {
        let mut client = Self::open(stream, opts.notifications);
        client.on_warning = opts.on_warning;
        client.trace = opts.trace.clone();
        let hello = HelloParams {
            client: opts.name.clone(),
            protocol: PROTOCOL_VERSION,
            // An agent started with a token acts with that token's capabilities only.
            token: std::env::var("AI_SESSION_TOKEN")
                .ok()
                .filter(|t| !t.is_empty()),
        };
        let _: HelloResult = client.call(Hello::NAME, hello).await?;
        Ok(client)
    }

    fn open(stream: UnixStream, notifications: Notifications) -> Self {
        let (read, write) = stream.into_split();
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        let (capacity, close_when_full) = match notifications {
            // The sender is dropped at once: `notification()` ends immediately.
            Notifications::Discard => (1, false),
            Notifications::DropNewest(n) => (n.max(1), false),
            Notifications::CloseWhenFull(n) => (n.max(1), true),
        };
        let (tx, rx) = mpsc::channel(capacity);
        let queue = match notifications {
            Notifications::Discard => None,
            _ => Some(Queue {
                tx,
                close_when_full,
            }),
        };
        let reader = tokio::spawn(read_loop(
            BufReader::with_capacity(READ_BUFFER, read),
            pending.clone(),
            closed.clone(),
            queue,
        ))
        .abort_handle();
        Self {
            writer: Mutex::new(write),
            pending,
            next_id: AtomicU64::new(1),
            notifications: Mutex::new(rx),
            closed,
            reader,
            on_warning: None,
            trace: None,
        }
    }

    /// Whether the connection has ended (every call would fail with [`Error::Closed`]).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Calls the registry's method `M` with its typed params; its typed result.
    pub async fn invoke<M: ai_session_protocol::registry::Method>(
        &self,
        params: &M::Params,
    ) -> Result<M::Result, Error> {
        self.call(M::NAME, params).await
    }

    /// Calls `method` and decodes its result as `R`.
    pub async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, Error> {
        let value = self.call_value(method, params).await?;
        serde_json::from_value(value).map_err(|source| Error::Decode {
            method: method.to_owned(),
            source,
        })
    }

    /// Calls `method` and returns its result as JSON.
    pub async fn call_value<P: Serialize>(
        &self,
        method: &str,
        params: P,
    ) -> Result<serde_json::Value, Error> {
        self.call_value_traced(method, params, None).await
    }

    /// [`Client::call_value`] as part of the caller's trace `trace` (the daemon's span joins
    /// it); `None` sends the connection's own, if [`Options::trace`] set one.
    pub async fn call_value_traced<P: Serialize>(
        &self,
        method: &str,
        params: P,
        trace: Option<&TraceContext>,
    ) -> Result<serde_json::Value, Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let encode = |source| Error::Encode {
            method: method.to_owned(),
            source,
        };
        let mut req = Request::new(id, method, params).map_err(encode)?;
        req.trace = trace.or(self.trace.as_ref()).cloned();
        let mut line = serde_json::to_vec(&req).map_err(encode)?;
        line.push(b'\n');
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = lock(&self.pending);
            // The reader marks the connection closed before it empties the map under this
            // lock: a caller that comes after that would wait forever.
            if self.is_closed() {
                return Err(Error::Closed);
            }
            pending.insert(id, tx);
        }
        let written = self.writer.lock().await.write_all(&line).await;
        if let Err(e) = written {
            // A write fails only when the daemon is gone (EPIPE, ECONNRESET).
            tracing::debug!("{method}: write to the daemon failed: {e}");
            lock(&self.pending).remove(&id);
            self.closed.store(true, Ordering::Relaxed);
            return Err(Error::Closed);
        }
        let resp = rx.await.map_err(|_| Error::Closed)?;
        match (resp.result, resp.error) {
            (_, Some(err)) => Err(Error::Rpc(err)),
            (Some(result), None) => {
                if let (Some(warn), Some(warning)) = (
                    self.on_warning,
                    result.get(AUDIT_WARNING).and_then(|w| w.as_str()),
                ) {
                    warn(warning);
                }
                Ok(result)
            }
            (None, None) => Err(Error::EmptyResponse {
                method: method.to_owned(),
            }),
        }
    }

    /// The next notification, or `None` once the connection is closed (and at once with
    /// [`Notifications::Discard`]).
    pub async fn notification(&self) -> Option<Notification> {
        self.notifications.lock().await.recv().await
    }

    /// A notification already received, without waiting: `None` when there is none yet (or
    /// another task is waiting for one).
    pub fn try_notification(&self) -> Option<Notification> {
        self.notifications.try_lock().ok()?.try_recv().ok()
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where the reader puts notifications, and what it does when the owner lags.
struct Queue {
    tx: mpsc::Sender<Notification>,
    close_when_full: bool,
}

/// Reads frames until the connection ends, then wakes every waiting caller with "closed".
async fn read_loop(
    mut reader: BufReader<OwnedReadHalf>,
    pending: Pending,
    closed: Arc<AtomicBool>,
    queue: Option<Queue>,
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
                let waiter = resp.id.as_u64().and_then(|id| lock(&pending).remove(&id));
                if let Some(tx) = waiter {
                    // The caller may have given up (its future was dropped): nothing to do.
                    tx.send(resp).ok();
                }
            }
            Ok(ServerMessage::Notification(n)) => {
                let Some(q) = &queue else { continue };
                match q.tx.try_send(n) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) if !q.close_when_full => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!("notifications not read in time: closing the connection");
                        break;
                    }
                    // The owner stopped listening: the connection has no purpose left.
                    Err(mpsc::error::TrySendError::Closed(_)) => break,
                }
            }
            Err(e) => tracing::warn!("unreadable message from the daemon: {e}"),
        }
    }
    closed.store(true, Ordering::Relaxed);
    // Dropping the senders wakes every caller with "connection closed".
    lock(&pending).clear();
}
