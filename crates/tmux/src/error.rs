//! The error of a tmux command: a message printed on stderr as tmux prints it, and the status.

/// Why a tmux command failed.
#[derive(Debug, thiserror::Error)]
pub enum TmuxError {
    /// tmux's own kind of refusal (`can't find session: x`, `unknown command: foo`): printed
    /// as is, exit status 1.
    #[error("{0}")]
    Msg(String),
    /// No daemon runs for the selected socket: `no server running on SOCKET`, exit status 1.
    #[error("no server running on {0}")]
    NoServer(String),
    /// No socket at all: `error connecting to SOCKET (No such file or directory)`, status 1.
    #[error("error connecting to {0} (No such file or directory)")]
    NoSocket(String),
    /// A call to the daemon failed; its message, exit status 1.
    #[error("{0}")]
    Client(#[from] ai_session_client::Error),
    /// A local file (the layer's state, a config file) could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Exit silently with this status (`has-session`, `wait-for -E` with the command's code).
    #[error("")]
    Status(i32),
}

impl TmuxError {
    /// A refusal in tmux's words.
    pub fn msg(m: impl Into<String>) -> Self {
        Self::Msg(m.into())
    }

    /// The exit status the process ends with.
    pub fn status(&self) -> i32 {
        match self {
            Self::Status(code) => *code,
            _ => 1,
        }
    }
}
