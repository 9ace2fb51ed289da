//! The errors of this crate.

/// Everything that can go wrong in the context library.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// `from_bytes` or the archive loader got bytes that do not start with this crate's magic:
    /// the caller handed the wrong file.
    #[error("not an ai-session context blob (bad magic {found:?})")]
    BadMagic {
        /// The first bytes seen.
        found: Vec<u8>,
    },
    /// The bytes were written by a newer version of this crate. Upgrade ai-session to read them;
    /// the file is left untouched.
    #[error(
        "context format version {found} is newer than this build supports ({supported}); upgrade ai-session"
    )]
    UnsupportedVersion {
        /// Version byte in the blob.
        found: u8,
        /// Highest version this build reads.
        supported: u8,
    },
    /// The bytes are truncated or their content does not decode. The blob is damaged.
    #[error("corrupt context data: {0}")]
    Corrupt(String),
    /// A budget smaller than what must always be kept (workspace line, most recent failure,
    /// unresolved errors). Retry with at least `needed` tokens.
    #[error(
        "a budget of {budget} tokens cannot hold the context that must always be kept ({needed} tokens needed)"
    )]
    BudgetTooSmall {
        /// The budget asked for.
        budget: usize,
        /// The tokens the mandatory part takes in its shortest form.
        needed: usize,
    },
    /// A task id that was never created (from `build`, `create_task` with a parent, `set_active_task`).
    #[error("unknown task {0:?}; create it first")]
    UnknownTask(String),
    /// Creating the task would make its parent chain loop.
    #[error("task {0:?} would be its own ancestor")]
    TaskCycle(String),
    /// An invalid configuration value (from `ContextConfig::validate`).
    #[error("invalid context config: {0}")]
    Config(String),
}

impl From<std::io::Error> for ContextError {
    fn from(e: std::io::Error) -> Self {
        ContextError::Corrupt(e.to_string())
    }
}

impl From<serde_json::Error> for ContextError {
    fn from(e: serde_json::Error) -> Self {
        ContextError::Corrupt(e.to_string())
    }
}
