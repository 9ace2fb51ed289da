//! ai-session's session library: real shells in real PTYs, a terminal emulator per session, an
//! append-only output log with absolute offsets, and `exec` that returns a command's own output
//! and exit code. The daemon serves this library over a socket; programs can also use it
//! in-process through [`SessionManager`].

mod actor;
pub mod error;
mod exec;
pub mod handover;
mod input_wait;
pub mod integration;
pub mod keys;
pub mod log;
mod manager;
pub mod marker;
mod memory;
pub mod paths;
mod problems;
pub mod pty;
pub mod sandbox;
pub mod screen;
mod session;
pub mod shell;
mod spare;
mod spawn;
pub mod text;
mod tracker;

pub use ai_session_protocol as protocol;
pub use ai_session_protocol::methods::{ExecParams, ExecResult, ExecStatus, SessionInfo, Size};
pub use error::{Error, Result};
pub use exec::{DEFAULT_MAX_OUTPUT, DEFAULT_TIMEOUT, MAX_INLINE};
pub use integration::{ExternalIntegration, IntegrationError, IntegrationEvent, Integrations};
pub use manager::{ManagerConfig, SECRET_VARS, SessionManager, strip_secrets};
pub use session::{SessionEvent, SessionHandle, StateChange, WaitCondition};

/// Checks a terminal size is one the emulator can hold.
pub fn check_size(size: Size) -> Result<()> {
    if (2..=1000).contains(&size.cols) && (1..=1000).contains(&size.rows) {
        Ok(())
    } else {
        Err(Error::InvalidParams(format!(
            "invalid size {}x{}: columns must be 2-1000 and rows 1-1000",
            size.cols, size.rows
        )))
    }
}

/// `n` random bytes from the OS, as lowercase hex.
pub(crate) fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    if getrandom::fill(&mut bytes).is_err() {
        // The OS generator failing is not recoverable in any useful way; fall back to the
        // clock so marks still differ between sessions.
        let t = actor::now_ms().to_le_bytes();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = t[i % t.len()] ^ (i as u8);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
