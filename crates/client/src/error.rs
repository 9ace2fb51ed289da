//! Why a connection or a call failed: one error type for every client of the daemon.

use std::path::PathBuf;

use ai_session_protocol::RpcError;

/// Why [`Client::connect`](crate::Client::connect) or a call failed.
///
/// Each variant says who returns it and how a caller reacts to it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The daemon carried out the request and refused it: unknown session, invalid params,
    /// denied capability, timeout... Returned by every call, and by `connect` when the daemon
    /// refuses the handshake (a protocol version it does not speak, an unknown token).
    ///
    /// Show its message and hint to the user, or act on [`RpcError::kind`] (for example exit
    /// with 124 on [`ErrorKind::Timeout`](ai_session_protocol::ErrorKind::Timeout)). Retrying
    /// the same request gets the same answer.
    #[error("{0}")]
    Rpc(#[from] RpcError),

    /// No daemon listens on the socket, and the connection was opened with [`Start::Never`].
    /// Returned by `connect` only.
    ///
    /// Report that the daemon is not running (`daemon status` exits 1, `daemon stop` is done),
    /// or connect again with a [`Start`] that starts it.
    ///
    /// [`Start::Never`]: crate::Start::Never
    /// [`Start`]: crate::Start
    #[error("no daemon is running on {}", .0.display())]
    NotRunning(PathBuf),

    /// The daemon was started but exited before it was ready, with its error on stderr (a store
    /// it cannot open, a wrong passphrase, a state directory it cannot create). Returned by
    /// `connect` when it had to start the daemon.
    ///
    /// Show the message: it is the daemon's own. Retrying fails the same way until the cause is
    /// fixed.
    #[error("the daemon failed to start: {stderr}")]
    StartFailed { stderr: String },

    /// The daemon was started but did not say it was ready within the deadline. Returned by
    /// `connect` when it had to start the daemon.
    ///
    /// Show the message, which names the daemon's log; the daemon may still come up, so a later
    /// `connect` can succeed.
    #[error("the daemon did not start within {}s; see its log in {}", .secs, .log.display())]
    StartTimeout { secs: u64, log: PathBuf },

    /// The connection ended before the daemon answered: it stopped, crashed or was restarted,
    /// or this client did not read its notifications in time
    /// ([`Notifications::CloseWhenFull`](crate::Notifications::CloseWhenFull)). Returned by
    /// every call on that connection from then on, and by `connect` when daemons kept dying
    /// during the handshake for five seconds.
    ///
    /// The request may or may not have been carried out. Connect again (which starts a fresh
    /// daemon if needed) and retry what is safe to repeat.
    #[error("the daemon closed the connection")]
    Closed,

    /// The parameters could not be encoded as JSON (a map with non-string keys, a serializer
    /// that failed). Returned by calls, before anything is sent: a bug in the caller.
    #[error("cannot encode the parameters of {method}: {source}")]
    Encode {
        method: String,
        source: serde_json::Error,
    },

    /// The daemon's answer does not decode as the result type the caller asked for (a client
    /// and a daemon of different versions, or the wrong type at the call site). Returned by
    /// calls; the request was carried out.
    ///
    /// Report it; restarting the daemon (`ai-session daemon stop`) after an upgrade fixes a
    /// version mismatch.
    #[error("unexpected result for {method}: {source}")]
    Decode {
        method: String,
        source: serde_json::Error,
    },

    /// The daemon answered with neither a result nor an error, which the protocol forbids.
    /// Returned by calls; report it as a daemon bug.
    #[error("the daemon answered {method} with neither a result nor an error")]
    EmptyResponse { method: String },

    /// The operating system refused something the client needs: creating the state
    /// directories, the start lock, connecting to a socket that exists, spawning the daemon, a
    /// runtime for the blocking client. Returned by `connect`.
    ///
    /// Show it; it names the system's reason (permissions, a full disk, a missing binary).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The daemon's error, when the daemon answered with one.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            Self::Rpc(e) => Some(e),
            _ => None,
        }
    }
}
