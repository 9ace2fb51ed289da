//! The handover channel between the old daemon and the new one: a Unix socket pair carrying
//! JSON messages, each with the descriptors it hands over attached as `SCM_RIGHTS`. Blocking
//! I/O: both ends run it on a thread of their own, with timeouts.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::unix::net::UnixStream;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

/// Incompatible changes to the messages bump this; both sides check it first.
pub(crate) const VERSION: u32 = 1;
/// Descriptors one message may carry (the kernel's `SCM_MAX_FD`).
const MAX_FDS: usize = 253;
/// The largest message body: a session's state is its screen (scrollback included) and a few
/// hundred bytes more.
const MAX_BODY: usize = 256 << 20;

/// What the two daemons say to each other, in order (see `docs/upgrade.md`).
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Msg {
    /// New → old: started, and speaks this version.
    Hello { version: u32, pid: u32 },
    /// Old → new: the listening socket and the daemon lock follow attached; then `sessions`
    /// `Session` messages and `reapers` `Reaper` messages.
    Header {
        version: u32,
        old_pid: u32,
        sessions: usize,
        reapers: usize,
    },
    /// Old → new: one session; its master (and its leader's pidfd while it runs) attached.
    Session(Box<ai_session_core::handover::Carried>),
    /// Old → new: the report socket of an earlier daemon's reaper, attached.
    Reaper,
    /// New → old: every session adopted; the new daemon serves from now on.
    Adopted { pid: u32, sessions: Vec<String> },
    /// New → old: adoption failed; the old daemon keeps its sessions.
    Failed { error: String },
}

/// One end of the handover channel.
pub(crate) struct Wire {
    sock: UnixStream,
}

impl Wire {
    pub(crate) fn new(sock: UnixStream) -> Self {
        Self { sock }
    }

    pub(crate) fn set_timeout(&self, t: Option<std::time::Duration>) -> std::io::Result<()> {
        self.sock.set_read_timeout(t)?;
        self.sock.set_write_timeout(t)
    }

    pub(crate) fn into_inner(self) -> UnixStream {
        self.sock
    }

    /// Sends `msg` with `fds` attached.
    pub(crate) fn send(&mut self, msg: &Msg, fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
        let body = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
        let mut head = [0u8; 8];
        head[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
        head[4..].copy_from_slice(&(fds.len() as u32).to_le_bytes());
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(std::io::Error::other(
                "too many descriptors for one message",
            ));
        }
        // The descriptors travel with the first byte; the rest of the header may follow.
        let sent = rustix::net::sendmsg(
            self.sock.as_fd(),
            &[IoSlice::new(&head)],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
        self.sock.write_all(&head[sent..])?;
        self.sock.write_all(&body)
    }

    /// Receives the next message and the descriptors attached to it.
    pub(crate) fn recv(&mut self) -> std::io::Result<(Msg, Vec<OwnedFd>)> {
        let mut head = [0u8; 8];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            self.sock.as_fd(),
            &mut [IoSliceMut::new(&mut head)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        if got.bytes == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the other daemon closed the handover channel",
            ));
        }
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        self.sock.read_exact(&mut head[got.bytes..])?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let count = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if len > MAX_BODY || count != fds.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "malformed handover message ({len} bytes, {count} descriptors announced, {} received)",
                    fds.len()
                ),
            ));
        }
        let mut body = vec![0u8; len];
        self.sock.read_exact(&mut body)?;
        let msg = serde_json::from_slice(&body).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("handover message: {e}"),
            )
        })?;
        Ok((msg, fds))
    }
}
