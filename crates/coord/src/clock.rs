//! The coordinator's clock task: fires heartbeat deadlines, task timeouts and retry backoffs.
//!
//! One task per coordinator sleeps until the earliest deadline any component has armed. It holds
//! only a weak reference, so it ends when the last coordinator handle is dropped.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tokio::time::{Instant, sleep_until};

/// Wakes the clock when a deadline earlier than the one it sleeps towards is armed.
pub(crate) struct Alarm {
    /// The deadline the clock sleeps towards. `None` while it is awake (ticking) or has nothing
    /// to wait for; every arming then notifies, so nothing armed during a tick is missed.
    next: Mutex<Option<Instant>>,
    notify: Notify,
}

impl Alarm {
    pub(crate) fn new() -> Self {
        Self {
            next: Mutex::new(None),
            notify: Notify::new(),
        }
    }

    pub(crate) fn arm(&self, at: Instant) {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        if next.is_none_or(|n| at < n) {
            *next = Some(at);
            self.notify.notify_one();
        }
    }

    /// Wakes the clock unconditionally (used on shutdown).
    pub(crate) fn ring(&self) {
        self.notify.notify_one();
    }

    fn clear(&self) {
        *self.next.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Records what the clock will sleep towards, without waking it. If something earlier was
    /// armed during the tick, that stays, and its notification is already pending.
    fn settle(&self, at: Instant) {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        if next.is_none_or(|n| at < n) {
            *next = Some(at);
        }
    }
}

/// Something with deadlines the clock drives.
pub(crate) trait Ticking: Send + Sync + 'static {
    /// Handles everything due at `now`; returns the next deadline.
    fn tick(&self, now: Instant) -> Option<Instant>;
}

/// Runs until `target` is dropped.
pub(crate) async fn run<T: Ticking>(target: std::sync::Weak<T>, alarm: Arc<Alarm>) {
    loop {
        alarm.clear();
        let next = {
            let Some(target) = target.upgrade() else {
                return;
            };
            target.tick(Instant::now())
        };
        let notified = alarm.notify.notified();
        match next {
            Some(at) => {
                alarm.settle(at);
                tokio::select! {
                    () = sleep_until(at) => {}
                    () = notified => {}
                }
            }
            None => notified.await,
        }
    }
}
