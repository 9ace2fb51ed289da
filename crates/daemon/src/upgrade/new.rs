//! The new daemon's side of an upgrade: say hello, receive the listening socket, the daemon
//! lock, every session and every earlier reaper's socket, and confirm once every session is
//! adopted (or say why not, so the old daemon takes them back).

use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use ai_session_core::handover::Handover;
use rustix::fd::OwnedFd;

use super::wire::{Msg, VERSION, Wire};

/// How long the old daemon may take between our hello and its last session: it lets the
/// requests in flight finish first (5 s at most) and checkpoints the store.
const RECEIVE: Duration = Duration::from_secs(60);

/// What the old daemon handed over.
pub(crate) struct Incoming {
    pub(crate) old_pid: u32,
    pub(crate) listener: UnixListener,
    pub(crate) lock: std::fs::File,
    pub(crate) sessions: Vec<Handover>,
    pub(crate) reapers: Vec<UnixStream>,
}

fn bad(what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.into())
}

/// Says hello on `fd` (the handover socket `--adopt` named) and receives everything.
pub(crate) fn receive(fd: OwnedFd) -> std::io::Result<(Verdict, Incoming)> {
    let mut wire = Wire::new(UnixStream::from(fd));
    wire.set_timeout(Some(RECEIVE))?;
    let hello = Msg::Hello {
        version: VERSION,
        pid: std::process::id(),
    };
    wire.send(&hello, &[])?;
    let (header, fds) = wire.recv()?;
    let Msg::Header {
        version,
        old_pid,
        sessions,
        reapers,
    } = header
    else {
        return Err(bad("the old daemon sent no header"));
    };
    if version != VERSION {
        return Err(bad(format!(
            "the old daemon speaks handover version {version}, this one {VERSION}"
        )));
    }
    let [listener, lock]: [OwnedFd; 2] = fds
        .try_into()
        .map_err(|_| bad("the header must carry the listener and the lock"))?;
    let mut incoming = Incoming {
        old_pid,
        listener: UnixListener::from(listener),
        lock: std::fs::File::from(lock),
        sessions: Vec::with_capacity(sessions),
        reapers: Vec::with_capacity(reapers),
    };
    for _ in 0..sessions {
        let (msg, fds) = wire.recv()?;
        let Msg::Session(state) = msg else {
            return Err(bad("expected a session"));
        };
        let mut fds = fds.into_iter();
        let master = fds
            .next()
            .ok_or_else(|| bad("a session came without its terminal"))?;
        incoming.sessions.push(Handover {
            state: *state,
            master,
            pidfd: fds.next(),
        });
    }
    for _ in 0..reapers {
        let (msg, fds) = wire.recv()?;
        let (Msg::Reaper, Some(fd)) = (msg, fds.into_iter().next()) else {
            return Err(bad("expected a reaper's socket"));
        };
        incoming.reapers.push(UnixStream::from(fd));
    }
    Ok((Verdict { wire }, incoming))
}

/// The handover channel once everything was received: the verdict goes back on it, and
/// then the old daemon's reaper reports on it.
pub(crate) struct Verdict {
    wire: Wire,
}

impl Verdict {
    /// Every session is adopted: the old daemon lets go. Returns the socket its reaper will
    /// report on.
    pub(crate) fn adopted(mut self, sessions: Vec<String>) -> std::io::Result<UnixStream> {
        let msg = Msg::Adopted {
            pid: std::process::id(),
            sessions,
        };
        self.wire.send(&msg, &[])?;
        self.wire.set_timeout(None)?;
        Ok(self.wire.into_inner())
    }

    /// Adoption failed: the old daemon takes its sessions back.
    pub(crate) fn failed(mut self, error: String) {
        if let Err(e) = self.wire.send(&Msg::Failed { error }, &[]) {
            tracing::warn!("cannot tell the old daemon that adoption failed: {e}");
        }
    }
}
