//! The client of the ai-session daemon, shared by the CLI, `ai-session mcp` and the benchmarks.
//!
//! [`Client::connect`] finds the daemon's socket from a [`Selector`] (`-L NAME`, `-S SOCKET`),
//! starts the daemon when none listens and [`Options::start`] allows it (one rule for every
//! client: take `run/<label>.lock`, run `ai-session daemon run --notify-ready`, wait for its
//! `ready` line), says `hello` with `$AI_SESSION_TOKEN`, and then carries typed calls
//! ([`Client::call`]) and the notifications of subscriptions ([`Client::notification`]) over one
//! connection. [`blocking::Client`] is the same client for programs without a runtime.
//!
//! Only the protocol crate is needed: a client does not compile the emulator, the sandbox or
//! the tokenizer.

#![forbid(unsafe_code)]

pub mod blocking;
mod connection;
mod error;
mod start;

use std::path::PathBuf;

pub use ai_session_protocol::paths::Paths;
pub use connection::Client;
pub use error::Error;

/// Which daemon to talk to: `-L NAME` or `-S SOCKET` (label `default` when neither is given).
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub label: Option<String>,
    pub socket: Option<PathBuf>,
}

impl Selector {
    /// The daemon listening on `socket`.
    pub fn socket(socket: impl Into<PathBuf>) -> Self {
        Self {
            label: None,
            socket: Some(socket.into()),
        }
    }

    /// The daemon's socket and state directory.
    pub fn paths(&self) -> Paths {
        Paths::resolve(self.label.as_deref(), self.socket.as_deref())
    }

    /// The command-line options that select the same daemon, for the one being started.
    fn args(&self) -> Vec<String> {
        match (&self.socket, &self.label) {
            (Some(s), _) => vec!["-S".into(), s.display().to_string()],
            (None, Some(l)) => vec!["-L".into(), l.clone()],
            (None, None) => Vec::new(),
        }
    }
}

/// Whether [`Client::connect`] starts the daemon when none listens, and with which binary.
#[derive(Debug, Clone)]
pub enum Start {
    /// Never: `connect` fails with [`Error::NotRunning`].
    Never,
    /// With the running executable, which must be the `ai-session` binary (the CLI, and
    /// `ai-session mcp`, which is the same binary).
    CurrentExe,
    /// With this `ai-session` binary.
    Program(PathBuf),
}

/// What a connection does with the notifications the daemon pushes (`session.output`,
/// `session.state`, bus messages...) that its owner has not read yet. Every choice is bounded:
/// a client that stops reading cannot make this process grow.
#[derive(Debug, Clone, Copy)]
pub enum Notifications {
    /// Discards them: a connection used only for calls.
    Discard,
    /// Keeps up to this many and drops newer ones while the queue is full: for a follower that
    /// only needs to know that something changed.
    DropNewest(usize),
    /// Keeps up to this many and closes the connection when one more arrives: for a follower
    /// that must see every notification in order (`attach` draws output as it comes). Calls
    /// then fail with [`Error::Closed`] and [`Client::notification`] ends.
    CloseWhenFull(usize),
}

/// How [`Client::connect`] connects.
#[derive(Debug, Clone)]
pub struct Options {
    /// Who is calling, sent in `hello` (the daemon logs it), for example `ai-session-cli 0.1.0`.
    pub name: String,
    /// Whether to start the daemon when none listens.
    pub start: Start,
    /// What to do with notifications.
    pub notifications: Notifications,
    /// Called with each warning the daemon attaches to a successful result (`audit_warning`:
    /// the action was carried out but could not be recorded in the audit log, which the user
    /// must know). `None` ignores them.
    pub on_warning: Option<fn(&str)>,
    /// The caller's trace, sent with every request (the CLI's `TRACEPARENT`): the daemon's
    /// spans join it.
    pub trace: Option<ai_session_protocol::trace::TraceContext>,
}

impl Options {
    /// A client named `name` that does not start the daemon and discards notifications.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            start: Start::Never,
            notifications: Notifications::Discard,
            on_warning: None,
            trace: None,
        }
    }

    /// Sends `trace` with every request, so the daemon's spans join the caller's trace.
    pub fn trace(mut self, trace: Option<ai_session_protocol::trace::TraceContext>) -> Self {
        self.trace = trace;
        self
    }

    /// Starts the daemon as `start` says when none listens.
    pub fn start(mut self, start: Start) -> Self {
        self.start = start;
        self
    }

    /// Calls `on_warning` with each warning the daemon attaches to a result.
    pub fn on_warning(mut self, on_warning: fn(&str)) -> Self {
        self.on_warning = Some(on_warning);
        self
    }

    /// Keeps notifications as `notifications` says.
    pub fn notifications(mut self, notifications: Notifications) -> Self {
        self.notifications = notifications;
        self
    }
}
