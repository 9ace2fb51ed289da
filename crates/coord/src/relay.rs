//! The bus beyond this process: a [`Relay`] the daemon installs when it is in a cluster, told of
//! every topic message, broadcast and dead letter made here so that it can carry them to the
//! other nodes. A coordinator without one (a daemon on its own) pays one pointer check.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::deadletter::DeadLetter;
use crate::ids::AgentId;

/// The work of relaying one message: awaited by the publisher, so a slow network slows
/// publishers down instead of piling messages up in memory.
pub type Relaying<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Carries what happens on this coordinator's bus to other nodes.
pub trait Relay: Send + Sync {
    /// A message was published on `topic` here (by `from`, when an agent signed it).
    fn topic<'a>(
        &'a self,
        topic: &'a str,
        from: Option<AgentId>,
        payload: &'a Value,
    ) -> Relaying<'a>;
    /// A message was broadcast to every agent from here.
    fn broadcast<'a>(&'a self, from: Option<AgentId>, payload: &'a Value) -> Relaying<'a>;
    /// Something could not be delivered here and was dead-lettered. Called with the
    /// dead-letter queue locked: queue the work and return at once.
    fn dead_letter(&self, letter: &DeadLetter);
}

/// The relay slot, set at most once.
pub(crate) type Slot = Arc<OnceLock<Arc<dyn Relay>>>;
