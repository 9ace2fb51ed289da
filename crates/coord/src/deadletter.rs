//! The dead-letter queue: messages that could not be delivered and tasks that ran out of retries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::ids::AgentId;
use crate::message::{Message, now_ms};
use crate::task::Task;

/// Why something was dead-lettered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum DeadReason {
    /// A subscriber's or inbox's queue was full and the policy is to drop.
    QueueFull,
    /// A subscriber's or inbox's queue stayed full for the whole backpressure wait.
    WaitTimedOut,
    /// The addressed agent does not exist or is gone.
    NoSuchAgent { agent: AgentId },
    /// The agent left with this message still unread in its inbox.
    AgentLeft { agent: AgentId },
    /// A reply arrived after its request timed out, or the requester went away.
    RequestExpired,
    /// The task failed on every attempt it was allowed.
    RetriesExhausted { attempts: u32, last_error: String },
}

/// What was dead-lettered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "item", rename_all = "snake_case")]
pub enum DeadItem {
    Message(Arc<Message>),
    Task(Box<Task>),
    /// An event a webhook could not deliver (the daemon's `[[hooks]]`), as it would have
    /// been POSTed; the recipient is the hook's name.
    HookEvent(Box<serde_json::Value>),
}

/// One entry of the dead-letter queue.
///
/// JSON shape: `{"seq":7,"at_ms":..,"reason":"queue_full","kind":"message","item":{..message..}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Position in the dead-letter stream, increasing from 1.
    pub seq: u64,
    pub at_ms: u64,
    /// The subscriber or agent it was meant for, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    #[serde(flatten)]
    pub reason: DeadReason,
    #[serde(flatten)]
    pub item: DeadItem,
}

/// A bounded queue of dead letters. When full, the oldest entry is discarded and counted.
pub(crate) struct DeadLetters {
    inner: Mutex<Inner>,
    /// Where dead letters also go when the daemon is in a cluster.
    relay: crate::relay::Slot,
}

struct Inner {
    entries: VecDeque<DeadLetter>,
    capacity: usize,
    next_seq: u64,
    discarded: u64,
}

impl DeadLetters {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: VecDeque::new(),
                capacity: capacity.max(1),
                next_seq: 1,
                discarded: 0,
            }),
            relay: crate::relay::Slot::default(),
        }
    }

    pub(crate) fn relay(&self) -> &crate::relay::Slot {
        &self.relay
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The queue stays consistent even if a holder panicked: every mutation is a single push/pop.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, recipient: Option<String>, reason: DeadReason, item: DeadItem) {
        let mut inner = self.lock();
        if inner.entries.len() >= inner.capacity {
            inner.entries.pop_front();
            inner.discarded += 1;
        }
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let letter = DeadLetter {
            seq,
            at_ms: now_ms(),
            recipient,
            reason,
            item,
        };
        if let Some(relay) = self.relay.get() {
            relay.dead_letter(&letter);
        }
        inner.entries.push_back(letter);
    }

    pub(crate) fn list(&self) -> Vec<DeadLetter> {
        self.lock().entries.iter().cloned().collect()
    }

    pub(crate) fn drain(&self) -> Vec<DeadLetter> {
        self.lock().entries.drain(..).collect()
    }

    pub(crate) fn stats(&self) -> DeadLetterStats {
        let inner = self.lock();
        DeadLetterStats {
            queued: inner.entries.len(),
            total: inner.next_seq - 1,
            discarded: inner.discarded,
        }
    }
}

/// Counters of the dead-letter queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterStats {
    /// Entries currently held.
    pub queued: usize,
    /// Entries ever added.
    pub total: u64,
    /// Oldest entries discarded because the queue was at capacity.
    pub discarded: u64,
}
