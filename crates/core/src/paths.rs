//! Where a daemon keeps its socket and its state. The type lives in the protocol crate, which
//! clients share with the daemon, so that a client does not compile the emulator to find the
//! socket; it is re-exported here for the daemon.

pub use ai_session_protocol::paths::{Paths, home};
