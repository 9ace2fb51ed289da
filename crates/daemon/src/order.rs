//! Requests that type into a session (`session.exec`, `session.send`, `session.write`) reach it
//! in the order one connection sent them.
//!
//! Each request runs on a task of its own, so two pipelined execs could otherwise reach the
//! session's actor in either order: `cd build` then `make` would run `make` first. A connection
//! hands each typing request a [`Turn`] in the order it read them; the service waits for the
//! previous turn to be queued at its session before queueing its own, and lets the next one go
//! as soon as its own is queued (not when it is answered: later execs still queue behind it in
//! the session, and other methods never wait). A request that ends before it reaches a session
//! (an error) lets the next one go when its turn is dropped, once the one before it is queued:
//! the chain never skips a link.
//!
//! A request for a session on another node keeps its place too: its turn passes once the
//! request is sent on (requests sent one after another over the node's NATS connection reach
//! the owner in that order), and the owner queues the requests of one connection on one
//! [`Line`] of its own ([`Lines`]), by the entry node's name and the connection's number.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::oneshot;

tokio::task_local! {
    static TURN: RefCell<Option<Turn>>;
}

/// Whether `method` types into a session: the requests a connection keeps in order.
pub(crate) fn types(method: &str) -> bool {
    use ai_session_protocol::registry::{Method, SessionExec, SessionSend, SessionWrite};
    [SessionExec::NAME, SessionSend::NAME, SessionWrite::NAME].contains(&method)
}

/// One connection's order of typing requests.
pub(crate) struct Line {
    /// The connection's number in this daemon, which the requests it forwards carry.
    id: u64,
    last: Option<oneshot::Receiver<()>>,
}

impl Default for Line {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Line {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            last: None,
        }
    }
}

impl Line {
    /// The turn of the next typing request read from the connection.
    pub(crate) fn next(&mut self) -> Turn {
        let (done, next) = oneshot::channel();
        Turn {
            line: self.id,
            after: self.last.replace(next),
            done: Some(done),
        }
    }

    /// Whether its last turn is still held (not yet queued, nor given up).
    fn pending(&mut self) -> bool {
        self.last
            .as_mut()
            .is_some_and(|r| matches!(r.try_recv(), Err(oneshot::error::TryRecvError::Empty)))
    }
}

/// The lines of connections on other nodes whose typing requests were forwarded here, by the
/// entry node's name and the connection's number there.
#[derive(Default)]
pub(crate) struct Lines {
    lines: HashMap<(String, u64), Line>,
}

impl Lines {
    /// How many lines are kept before those with no request in flight are let go.
    const KEEP: usize = 1024;

    /// The turn of the next request forwarded from connection `line` of node `node`.
    pub(crate) fn next(&mut self, node: &str, line: u64) -> Turn {
        if self.lines.len() >= Self::KEEP {
            self.lines.retain(|_, l| l.pending());
        }
        self.lines
            .entry((node.to_owned(), line))
            .or_default()
            .next()
    }
}

/// A request's place in its connection's [`Line`].
pub(crate) struct Turn {
    /// The number of its connection's line.
    line: u64,
    /// Fires (or is dropped) once the previous request is queued at its session.
    after: Option<oneshot::Receiver<()>>,
    /// Dropped once this request is queued: the next may go.
    done: Option<oneshot::Sender<()>>,
}

impl Drop for Turn {
    /// A turn given up unused still lets the next request go only after the previous one.
    fn drop(&mut self) {
        let (Some(after), Some(done)) = (self.after.take(), self.done.take()) else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                after.await.ok();
                drop(done);
            });
        }
    }
}

/// Runs `work` (a request's handling) holding `turn`, if it has one.
pub(crate) fn holding<F: std::future::Future>(
    turn: Option<Turn>,
    work: F,
) -> impl std::future::Future<Output = F::Output> {
    // Not an `async fn`, which would hold `work` twice (see `telemetry::with_caller_trace`).
    TURN.scope(RefCell::new(turn), work)
}

/// Waits until the requests sent before this one on its connection are queued at their
/// sessions; the request queues its own while it holds what this returns, then drops it.
/// Requests without a turn (other front ends, forwarded requests) go at once.
pub(crate) async fn my_turn() -> Option<oneshot::Sender<()>> {
    let mut turn = TURN.try_with(|t| t.borrow_mut().take()).ok().flatten()?;
    if let Some(after) = turn.after.take() {
        // Fired or dropped: either way the one before is out of the way.
        after.await.ok();
    }
    turn.done.take()
}

/// For a request forwarded to another node: once the requests sent before it on its connection
/// are queued (or sent on), its connection's line number and what to drop once it is sent on.
/// `None` for a request without a turn.
pub(crate) async fn forwarding() -> Option<(u64, oneshot::Sender<()>)> {
    let mut turn = TURN.try_with(|t| t.borrow_mut().take()).ok().flatten()?;
    if let Some(after) = turn.after.take() {
        after.await.ok();
    }
    Some((turn.line, turn.done.take()?))
}
