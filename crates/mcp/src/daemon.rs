//! The daemon as the MCP server sees it: one shared connection of `ai-session-client`, opened on
//! first use (starting the daemon when none listens) and reopened when the daemon closed it,
//! plus one connection per followed session.

use std::sync::Arc;

use ai_session_client::{Client, Error, Notifications, Options, Selector, Start};
use ai_session_protocol::Notification;
use ai_session_protocol::methods::{SubscribeResult, Target};
use ai_session_protocol::registry::{Method, SessionSubscribe};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

/// Notifications queued for a subscriber before newer ones are dropped (a subscriber only needs
/// to know that something changed, so dropping under load loses nothing it acts on).
const NOTIFY_QUEUE: usize = 256;

/// A session followed on a connection of its own (`session.subscribe`): the daemon's
/// notifications for it (`session.output`, `session.state`, `session.command`,
/// `session.closed`) come from [`Subscription::next`], which ends when the connection does.
/// Dropping it closes the connection, which ends the subscription.
pub struct Subscription {
    client: Client,
}

impl Subscription {
    /// The next notification, or `None` once the connection has ended.
    pub async fn next(&self) -> Option<Notification> {
        self.client.notification().await
    }

    /// A notification that already arrived, without waiting.
    pub fn try_next(&self) -> Option<Notification> {
        self.client.try_notification()
    }
}

/// The daemon, as the MCP server sees it.
pub struct Daemon {
    sel: Selector,
    conn: Mutex<Option<Arc<Client>>>,
}

impl Daemon {
    pub fn new(sel: Selector) -> Self {
        Self {
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
        let conn = self.connection().await?;
        conn.call(method, params).await
    }

    /// The open connection, or a new one (starting the daemon when needed).
    async fn connection(&self) -> Result<Arc<Client>, Error> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref()
            && !conn.is_closed()
        {
            return Ok(conn.clone());
        }
        let conn =
            Arc::new(Client::connect(&self.sel, &Self::options(Notifications::Discard)).await?);
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Follows a session on a new connection until the returned subscription is dropped.
    pub async fn subscribe(&self, target: &str) -> Result<Subscription, Error> {
        let opts = Self::options(Notifications::DropNewest(NOTIFY_QUEUE));
        let client = Client::connect(&self.sel, &opts).await?;
        let params = Target {
            target: target.to_owned(),
        };
        let _: SubscribeResult = client.call(SessionSubscribe::NAME, params).await?;
        Ok(Subscription { client })
    }
}
