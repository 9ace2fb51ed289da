//! Who is calling, and what their connection owns: the principal it acts as, the agents it
//! registered (they leave with it), its stream ids, and where notifications for it go.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use ai_session_coord::AgentId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::access::Principal;
use crate::server::Daemon;

/// One front-end connection (a socket client, an HTTP request or WebSocket, an MCP session).
pub(crate) struct Caller {
    /// `None` once the connection has closed: an agent registered after that is disconnected
    /// at once instead of outliving its connection.
    agents: Mutex<Option<Vec<AgentId>>>,
    next_stream: AtomicU64,
    /// Who the connection acts as (the owner until a `hello` presents a token).
    principal: Mutex<Principal>,
    /// Notification lines for this connection (subscriptions write here); `None` once the
    /// connection has closed, so the writer can finish.
    notify: Mutex<Option<mpsc::Sender<String>>>,
    /// Lines written with a receipt ([`Caller::deliver`]): the socket connection's writer
    /// answers each once the socket has it. `None` for other front ends and once closed.
    receipts: Mutex<Option<mpsc::Sender<Receipted>>>,
    /// Cancelled by `close`: nothing is written to the connection any more.
    closed: CancellationToken,
}

/// A line and who waits to know it reached the client's socket.
pub(crate) type Receipted = (String, tokio::sync::oneshot::Sender<()>);

impl Caller {
    pub(crate) fn new(principal: Principal, notify: mpsc::Sender<String>) -> Arc<Self> {
        Arc::new(Self {
            agents: Mutex::new(Some(Vec::new())),
            next_stream: AtomicU64::new(1),
            principal: Mutex::new(principal),
            notify: Mutex::new(Some(notify)),
            receipts: Mutex::new(None),
            closed: CancellationToken::new(),
        })
    }

    /// A caller whose connection's writer also takes lines with a receipt.
    pub(crate) fn with_receipts(
        principal: Principal,
        notify: mpsc::Sender<String>,
        receipts: mpsc::Sender<Receipted>,
    ) -> Arc<Self> {
        let caller = Self::new(principal, notify);
        *caller
            .receipts
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(receipts);
        caller
    }

    /// Hands `line` to the client; true once it is written to the connection's socket (a
    /// client that half-closed but still reads gets it), false when it never will be (the
    /// connection closed, or the write failed: the client is gone). A front end without
    /// receipts (HTTP, MCP) counts a line queued for it as written.
    pub(crate) async fn deliver(&self, line: String) -> bool {
        let receipts = self
            .receipts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(receipts) = receipts else {
            if self.closed.is_cancelled() {
                return false;
            }
            return self.notifier().send(line).await.is_ok();
        };
        let (done, written) = tokio::sync::oneshot::channel();
        if receipts.send((line, done)).await.is_err() {
            return false;
        }
        written.await.is_ok()
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Resolves once the connection is closed (nothing more is written to it).
    pub(crate) fn closed(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.closed.clone().cancelled_owned()
    }

    /// A caller whose notifications go nowhere (a one-shot HTTP request).
    pub(crate) fn detached(principal: Principal) -> Arc<Self> {
        let (tx, _) = mpsc::channel(1);
        Self::new(principal, tx)
    }

    pub(crate) fn principal(&self) -> Principal {
        self.principal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_principal(&self, principal: Principal) {
        *self
            .principal
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = principal;
    }

    /// Where this caller's notifications go; a closed sender once the connection closed
    /// (so a stream started then ends at once).
    pub(crate) fn notifier(&self) -> mpsc::Sender<String> {
        match &*self.notify.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(tx) => tx.clone(),
            None => mpsc::channel(1).0,
        }
    }

    /// Records an agent bound to this connection; false if the connection is already closed.
    pub(crate) fn track(&self, daemon: &Daemon, agent: AgentId) -> bool {
        let mut agents = self.agents.lock().unwrap_or_else(PoisonError::into_inner);
        match agents.as_mut() {
            Some(list) => {
                list.push(agent);
                daemon.tethers.tie(agent);
                true
            }
            None => false,
        }
    }

    /// The connection closed: every agent it registered (without `keep`) leaves, and its
    /// running tasks go back to the queue.
    pub(crate) fn close(&self, daemon: &Daemon) {
        self.notify
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.receipts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.closed.cancel();
        let agents = self
            .agents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_default();
        for agent in agents {
            // One that unregistered already left (and took its grants then).
            if !daemon.tethers.release(agent) {
                continue;
            }
            if let Err(e) = daemon.coord.disconnect(agent) {
                tracing::debug!("disconnecting {agent}: {e}");
            }
            daemon.observe(&super::Event::AgentLeft { agent: agent.0 });
        }
    }

    pub(crate) fn stream_id(&self) -> u64 {
        self.next_stream.fetch_add(1, Ordering::Relaxed)
    }
}

/// The agents registered without `keep`, whichever connection registered them: they leave for
/// good (grants and bound policy with them) when they unregister, wherever the unregister
/// entered (another connection, another node), or when their connection closes.
#[derive(Default)]
pub(crate) struct Tethers(Mutex<HashSet<AgentId>>);

impl Tethers {
    fn tie(&self, agent: AgentId) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(agent);
    }

    /// Unties `agent`; true when it was tied to a connection.
    fn release(&self, agent: AgentId) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&agent)
    }

    /// `agent` unregistered: one tied to a connection leaves for good now (its grants go),
    /// not when that connection closes. One registered with `keep` keeps them.
    /// Returns whether it left for good.
    pub(crate) fn unregistered(&self, daemon: &Daemon, agent: AgentId) -> bool {
        let left = self.release(agent);
        if left {
            daemon.observe(&super::Event::AgentLeft { agent: agent.0 });
        }
        left
    }
}
