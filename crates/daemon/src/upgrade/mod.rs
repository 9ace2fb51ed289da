//! `daemon upgrade`: the running daemon hands its sessions to a newly started binary, and the
//! programs in them never notice.
//!
//! The old daemon (`old`) starts `ai-session daemon run --adopt FD` with one end of a socket
//! pair; once the new one says hello, it stops taking requests (new connections wait in the
//! listening socket's backlog, new requests on open connections wait at [`Upgrade::gate`]),
//! lets the requests in flight finish, checkpoints the store, lets go of the audit log and
//! detaches every session. Over the socket (`wire`) go the listening socket and the daemon
//! lock, then each session's PTY master and pidfd with its state (`SCM_RIGHTS` and JSON). The
//! new daemon (`new`) adopts them all and confirms; the old one then becomes the reaper of the
//! programs it started (`reaper`), which stay its children. If the new binary fails at any
//! point before confirming, the old daemon takes everything back and serves on.

mod new;
mod old;
mod reaper;
mod wire;

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;

use ai_session_core::SessionManager;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use tokio::sync::watch;

pub(crate) use new::{Incoming, Verdict, receive};
pub(crate) use old::upgrade;
pub use reaper::reap;

/// Where the daemon is in an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Serving,
    /// Handing over: nothing new is accepted or started.
    Pausing,
    /// Handed over: the new daemon serves; this one stops and becomes the reaper.
    HandedOver,
}

/// What the daemon becomes once it has handed over: the reaper of `pids`, reporting on
/// `report`, run from `binary`.
pub(crate) struct Reap {
    pub(crate) binary: PathBuf,
    pub(crate) report: UnixStream,
    pub(crate) pids: Vec<i32>,
}

/// The daemon's upgrade state.
pub(crate) struct Upgrade {
    /// Held for a whole upgrade: one at a time.
    busy: tokio::sync::Mutex<()>,
    phase: watch::Sender<Phase>,
    /// Report sockets of the reapers of earlier daemons whose programs this one adopted.
    reapers: Mutex<Vec<reaper::Link>>,
    /// The listening socket and the daemon lock (duplicates), to hand over; `None` once
    /// handed over (see [`Upgrade::release`]).
    handles: Mutex<Option<(OwnedFd, OwnedFd)>>,
    then: Mutex<Option<Reap>>,
}

impl Upgrade {
    pub(crate) fn new(listener: BorrowedFd<'_>, lock: BorrowedFd<'_>) -> std::io::Result<Self> {
        Ok(Self {
            busy: tokio::sync::Mutex::new(()),
            phase: watch::channel(Phase::Serving).0,
            reapers: Mutex::new(Vec::new()),
            handles: Mutex::new(Some((
                listener.try_clone_to_owned()?,
                lock.try_clone_to_owned()?,
            ))),
            then: Mutex::new(None),
        })
    }

    fn handles(&self) -> std::io::Result<(OwnedFd, OwnedFd)> {
        let handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        let (listener, lock) = handles
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the socket and lock were handed over"))?;
        Ok((
            listener.as_fd().try_clone_to_owned()?,
            lock.as_fd().try_clone_to_owned()?,
        ))
    }

    pub(crate) fn phase(&self) -> watch::Receiver<Phase> {
        self.phase.subscribe()
    }

    /// Returns at once unless an upgrade is handing over; then when it is done (answered
    /// `shutting_down` after it if it succeeded: the daemon's cancellation is set first).
    pub(crate) async fn gate(&self) {
        if *self.phase.borrow() != Phase::Pausing {
            return;
        }
        let mut rx = self.phase.subscribe();
        // An error means the sender is gone with the daemon: nothing to wait for.
        rx.wait_for(|p| *p != Phase::Pausing).await.ok();
    }

    /// Starts reading a reaper's reports into the manager's registry.
    pub(crate) fn add_reaper(&self, sock: UnixStream, manager: &SessionManager) {
        match reaper::Link::start(sock, manager.reaped()) {
            Ok(link) => self.lock_reapers().push(link),
            Err(e) => tracing::error!("cannot read a reaper's reports: {e}"),
        }
    }

    fn lock_reapers(&self) -> std::sync::MutexGuard<'_, Vec<reaper::Link>> {
        self.reapers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops reading every reaper's reports and returns the sockets still open.
    async fn stop_reapers(&self) -> Vec<UnixStream> {
        let links = std::mem::take(&mut *self.lock_reapers());
        let mut socks = Vec::new();
        for link in links {
            socks.extend(link.stop().await);
        }
        socks
    }

    fn restart_reapers(&self, socks: Vec<UnixStream>, manager: &SessionManager) {
        for sock in socks {
            self.add_reaper(sock, manager);
        }
    }

    /// Closes this process's duplicates of the socket and the lock once the new daemon has
    /// them: the reaper this process becomes (or reaps as, if the exec fails) must not keep
    /// the lock, which would refuse the next daemon if the new one died.
    pub(crate) fn release(&self) {
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// Set once the sessions are handed over: what the daemon becomes when its server stops.
    pub(crate) fn take_reap(&self) -> Option<Reap> {
        self.then.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Replaces this process with the reaper (`ai-session daemon reap`), keeping its pid and so
/// its children; if that exec fails, reaps in this process. Never returns.
pub(crate) fn become_reaper(r: Reap) -> ! {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let report: OwnedFd = r.report.into();
    if !r.pids.is_empty() {
        let pids: Vec<String> = r.pids.iter().map(i32::to_string).collect();
        if let Err(e) = rustix::io::fcntl_setfd(&report, rustix::io::FdFlags::empty()) {
            tracing::warn!("the report socket would not survive exec: {e}");
        } else {
            let fd = report.as_raw_fd().to_string();
            let err = std::process::Command::new(&r.binary)
                .args([
                    "daemon",
                    "reap",
                    "--report-fd",
                    &fd,
                    "--pids",
                    &pids.join(","),
                ])
                .exec();
            tracing::warn!(
                "cannot exec {} as the reaper ({err}); reaping in this process",
                r.binary.display()
            );
        }
        reap(report, &r.pids);
    }
    tracing::info!("handed over; exiting");
    std::process::exit(0)
}
