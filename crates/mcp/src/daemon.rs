//! The daemon as the MCP server sees it: either the daemon's socket through
//! `ai-session-client` (one shared connection, opened on first use, starting the daemon when
//! none listens, reopened when the daemon closed it, plus one connection per followed session),
//! or, for `/mcp` inside the daemon, the daemon's own service called in-process through a
//! [`Backend`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use ai_session_client::{Client, Error, Notifications, Options, Selector, Start};
use ai_session_protocol::methods::{SubscribeResult, Target};
use ai_session_protocol::registry::SessionSubscribe;
use ai_session_protocol::{Notification, RpcError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};

/// Notifications queued for a subscriber before newer ones are dropped (a subscriber only needs
/// to know that something changed, so dropping under load loses nothing it acts on).
const NOTIFY_QUEUE: usize = 256;

/// A boxed future, for the object-safe [`Backend`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The daemon's service, called in-process (the daemon implements it for `/mcp`): a method with
/// its params, and a session's notifications as JSON-RPC lines on a channel. A call made for a
/// tool runs inside the tool call's trace ([`crate::current_trace`]).
pub trait Backend: Send + Sync + 'static {
    fn call<'a>(&'a self, method: &'a str, params: Value)
    -> BoxFuture<'a, Result<Value, RpcError>>;
    /// Follows `target` (`session.subscribe`); the lines end when the session does or the
    /// receiver is dropped.
    fn subscribe<'a>(
        &'a self,
        target: &'a str,
    ) -> BoxFuture<'a, Result<mpsc::Receiver<String>, RpcError>>;
}

/// A session followed on a connection of its own (`session.subscribe`): the daemon's
/// notifications for it (`session.output`, `session.state`, `session.command`,
/// `session.closed`) come from [`Subscription::next`], which ends when the connection does.
/// Dropping it closes the connection, which ends the subscription.
pub struct Subscription {
    source: Source,
}

enum Source {
    Socket(Client),
    Lines(Mutex<mpsc::Receiver<String>>),
}

fn parse(line: &str) -> Option<Notification> {
    serde_json::from_str(line.trim_end()).ok()
}

impl Subscription {
    /// The next notification, or `None` once the stream has ended.
    pub async fn next(&self) -> Option<Notification> {
        match &self.source {
            Source::Socket(client) => client.notification().await,
            Source::Lines(rx) => {
                let mut rx = rx.lock().await;
                loop {
                    let line = rx.recv().await?;
                    if let Some(n) = parse(&line) {
                        return Some(n);
                    }
                }
            }
        }
    }

    /// A notification that already arrived, without waiting.
    pub fn try_next(&self) -> Option<Notification> {
        match &self.source {
            Source::Socket(client) => client.try_notification(),
            Source::Lines(rx) => {
                let mut rx = rx.try_lock().ok()?;
                loop {
                    let line = rx.try_recv().ok()?;
                    if let Some(n) = parse(&line) {
                        return Some(n);
                    }
                }
            }
        }
    }
}

/// The daemon, as the MCP server sees it.
pub enum Daemon {
    Socket {
        sel: Selector,
        conn: Mutex<Option<Arc<Client>>>,
    },
    InProcess(Arc<dyn Backend>),
}

impl Daemon {
    pub fn new(sel: Selector) -> Self {
        Daemon::Socket {
            sel,
            conn: Mutex::new(None),
        }
    }

    fn options(notifications: Notifications) -> Options {
        // `ai-session mcp` is the `ai-session` binary: it starts the daemon as the CLI does.
        Options::new(format!("ai-session-mcp {}", env!("CARGO_PKG_VERSION")))
            .start(Start::CurrentExe)
            .notifications(notifications)
    }

    /// Calls a method and decodes its result.
    pub async fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, Error> {
        match self {
            Daemon::Socket { sel, conn } => {
                let conn = Self::connection(sel, conn).await?;
                let trace = crate::trace::current();
                let value = conn
                    .call_value_traced(method, params, trace.as_ref())
                    .await?;
                serde_json::from_value(value).map_err(|source| Error::Decode {
                    method: method.to_owned(),
                    source,
                })
            }
            Daemon::InProcess(backend) => {
                let params = serde_json::to_value(params).map_err(|source| Error::Encode {
                    method: method.to_owned(),
                    source,
                })?;
                let value = backend.call(method, params).await?;
                serde_json::from_value(value).map_err(|source| Error::Decode {
                    method: method.to_owned(),
                    source,
                })
            }
        }
    }

    /// The open connection, or a new one (starting the daemon when needed).
    async fn connection(
        sel: &Selector,
        conn: &Mutex<Option<Arc<Client>>>,
    ) -> Result<Arc<Client>, Error> {
        let mut slot = conn.lock().await;
        if let Some(conn) = slot.as_ref()
            && !conn.is_closed()
        {
            return Ok(conn.clone());
        }
        let conn = Arc::new(Client::connect(sel, &Self::options(Notifications::Discard)).await?);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Follows a session on a new connection until the returned subscription is dropped.
    pub async fn subscribe(&self, target: &str) -> Result<Subscription, Error> {
        match self {
            Daemon::Socket { sel, .. } => {
                let opts = Self::options(Notifications::DropNewest(NOTIFY_QUEUE));
                let client = Client::connect(sel, &opts).await?;
                let params = Target {
                    target: target.to_owned(),
                };
                let _: SubscribeResult = client.invoke::<SessionSubscribe>(&params).await?;
                Ok(Subscription {
                    source: Source::Socket(client),
                })
            }
            Daemon::InProcess(backend) => Ok(Subscription {
                source: Source::Lines(Mutex::new(backend.subscribe(target).await?)),
            }),
        }
    }
}
