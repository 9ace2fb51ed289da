//! The manager's side of `daemon upgrade`: letting go of every session at once, and adopting
//! sessions another daemon let go of (see [`crate::handover`]).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::SessionManager;
use crate::actor::Actor;
use crate::actor::handover::Attach;
use crate::error::{Error, Result};
use crate::handover::{Handover, Reaped};
use crate::session::SessionHandle;

impl SessionManager {
    /// Stops every session's actor without touching its program and returns each session's
    /// descriptors and state, in name order. All or nothing: when one session cannot be handed
    /// over (sandboxed, or a sealed log), the ones already detached are adopted back and the
    /// error names it.
    pub async fn detach_all(&self) -> Result<Vec<Handover>> {
        let handles: Vec<SessionHandle> = self.sessions().values().cloned().collect();
        let mut out = Vec::with_capacity(handles.len());
        for handle in handles {
            match handle.detach().await {
                Ok(h) => {
                    self.forget(handle.name());
                    out.push(h);
                }
                // Killed meanwhile: nothing to hand over.
                Err(Error::Killed(_)) => {}
                Err(refused) => {
                    if let Err(e) = self.adopt_all(out) {
                        tracing::error!(
                            "sessions detached for an upgrade could not be taken back: {e}"
                        );
                    }
                    return Err(refused);
                }
            }
        }
        Ok(out)
    }

    /// Adopts sessions another daemon (or this one, taking back a failed handover) let go of.
    /// Every actor is built before any starts, so a failure leaves no session half-served:
    /// the caller keeps its own descriptors and nothing was read from the terminals.
    pub fn adopt_all(&self, sessions: Vec<Handover>) -> Result<Vec<String>> {
        let mut actors = Vec::with_capacity(sessions.len());
        for h in sessions {
            let name = h.state.name().to_owned();
            if self.sessions().contains_key(&name) {
                return Err(Error::Exists(name));
            }
            let attach = Attach {
                reaped: self.inner.reaped.clone(),
                health: self.inner.degraded.clone(),
                state_tx: self.inner.state_tx.clone(),
                integrations: self.inner.integrations.clone(),
            };
            actors.push(Actor::adopt(h, self.inner.config.scrollback, attach)?);
        }
        self.start_trimming();
        let mut names = Vec::with_capacity(actors.len());
        for actor in actors {
            let (name, id, pid) = (actor.id.name.clone(), actor.id.sid.clone(), actor.id.pid);
            let (tx, rx) = mpsc::channel(32);
            tokio::spawn(actor.run(rx));
            let handle = SessionHandle::new(&name, &id, tx, self.inner.integrations.clone());
            self.sessions().insert(name.clone(), handle);
            self.inner
                .pids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.clone(), pid);
            tracing::info!(session = %name, pid, "session adopted");
            names.push(name);
        }
        Ok(names)
    }

    /// Where the previous daemon's reaper reports the exit statuses of adopted programs.
    pub fn reaped(&self) -> Reaped {
        self.inner.reaped.clone()
    }

    fn forget(&self, name: &str) {
        self.sessions().remove(name);
        self.inner
            .pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    fn start_trimming(&self) {
        if !self
            .inner
            .trimming
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            let weak = Arc::downgrade(&self.inner);
            tokio::spawn(crate::memory::trim_loop(move || weak.strong_count() > 0));
        }
    }
}
