//! The CLI's error: the daemon client's, or one the CLI finds itself before or after a call.

use ai_session_protocol::RpcError;

/// Why a command failed; `main` prints it after `error: ` and picks the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Connecting to the daemon or a call failed, or the daemon refused the request.
    #[error(transparent)]
    Client(#[from] ai_session_client::Error),
    /// The CLI refused the command itself (a malformed argument, no terminal for `attach`), in
    /// the daemon's words: a kind, a message and a hint.
    #[error("{0}")]
    Refused(#[from] RpcError),
    /// Reading or writing a local file or the terminal failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Local data could not be made or read (JSON to print, base64 from the daemon, token
    /// counts, a stream that ended).
    #[error("{0}")]
    Local(String),
}

impl CliError {
    /// The daemon's or the CLI's own structured error, if that is what this is.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            Self::Client(e) => e.rpc(),
            Self::Refused(e) => Some(e),
            _ => None,
        }
    }
}
