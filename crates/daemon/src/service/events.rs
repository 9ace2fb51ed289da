//! What happened, as typed events, and the observers that act on them.
//!
//! The service performs an operation and publishes what it did; it does not call the audit log,
//! the store or the contexts by hand. Each observer sees every event in the order the daemon
//! registered them (access and audit, contexts, store, telemetry) and answers
//! with a [`Reaction`]: an acknowledgement the answer must wait for (the store makes an exec
//! durable before the client hears of it) and a warning for the caller (the audit log could not
//! be written).

use std::future::Future;
use std::pin::Pin;

use ai_session_protocol::RpcError;
use ai_session_protocol::methods::{ExecResult, NewParams, SessionInfo};
use ai_session_protocol::registry::MethodSpec;
use serde_json::Value;

use crate::access::Principal;

/// Something the daemon did.
pub(crate) enum Event<'a> {
    /// A session started (`session.new`, a restore, an import, a resurrection at start).
    SessionCreated {
        info: &'a SessionInfo,
        /// The settings it was started with; `None` for one brought back from the store.
        params: Option<&'a NewParams>,
        by: &'a Principal,
    },
    /// An exec finished (or stopped waiting) with this result.
    ExecFinished {
        session: &'a str,
        /// The session's immutable id: what its context and record are keyed on.
        session_id: &'a str,
        command: &'a str,
        started_ms: u64,
        result: &'a ExecResult,
        /// The caller's own context (`agent:NAME`) when an agent ran it.
        agent_context: Option<&'a str>,
        /// That agent's id: its own context is kept under it, never under the name.
        agent_id: Option<u64>,
    },
    /// A session was killed: everything keyed on it goes.
    SessionKilled {
        name: &'a str,
        /// Its id (`None` only if it vanished before it could be read).
        id: Option<&'a str>,
    },
    /// An agent left for good (unregistered, or its connection closed): its grants and its
    /// own context go.
    AgentLeft { agent: u64 },
    /// A request was handled (or refused): the audit trail's event.
    Handled {
        who: &'a Principal,
        spec: Option<&'static MethodSpec>,
        method: &'a str,
        detail: &'a str,
        session: Option<&'a str>,
        /// The session's immutable id (`SessionInfo.id`), when the request named one.
        session_id: Option<&'a str>,
        result: &'a Result<Value, RpcError>,
        /// From the request's arrival in the service to its result.
        elapsed: std::time::Duration,
    },
}

/// What the caller must wait for before answering; it may end with a warning known only then
/// (the store's: a record it could not write).
pub(crate) type Ack = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// An observer's answer to an event. A warning on `SessionCreated` or `ExecFinished` is the
/// store's: the record was not written, and the answer says `persisted: false` with it.
#[derive(Default)]
pub(crate) struct Reaction {
    pub ack: Option<Ack>,
    pub warning: Option<String>,
}

impl Reaction {
    pub(crate) fn ack(ack: impl Future<Output = ()> + Send + 'static) -> Self {
        Reaction {
            ack: Some(Box::pin(async move {
                ack.await;
                None
            })),
            warning: None,
        }
    }

    pub(crate) fn warning(warning: Option<String>) -> Self {
        Reaction { ack: None, warning }
    }
}

/// Sees every event. Must not block: slow work goes to the observer's own worker and comes
/// back as an [`Ack`] when the answer has to wait for it.
pub(crate) trait Observer: Send + Sync {
    fn observe(&self, event: &Event<'_>) -> Reaction;
}

/// Waits for every acknowledgement; returns the warnings.
pub(crate) async fn settle(reactions: Vec<Reaction>) -> Vec<String> {
    let mut warnings = Vec::new();
    for r in reactions {
        if let Some(ack) = r.ack {
            warnings.extend(ack.await);
        }
        warnings.extend(r.warning);
    }
    warnings
}
