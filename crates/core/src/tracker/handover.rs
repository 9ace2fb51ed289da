//! The tracker's state as a session carries it to the daemon that adopts it: what the shell is
//! doing (starting, at its prompt, running a command), its secret and marks so far. Execs and
//! waits in progress are not carried: the old daemon answers them before it lets go.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::CommandTracker;
use crate::marker::Scanner;
use crate::shell::ShellKind;
use ai_session_protocol::methods::{Integration, SessionState};

/// A [`CommandTracker`] without its replies (see the module).
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct TrackerState {
    name: String,
    secret: String,
    kind: ShellKind,
    integration: Integration,
    startup_offset: u64,
    end: u64,
    state: SessionState,
    exit_code: Option<i32>,
    secret_unread: bool,
    at_prompt: bool,
    /// The offset of a prompt's `A` mark whose `B` has not come yet.
    prompt_a: Option<u64>,
    line_dirty: bool,
    running: bool,
    last_exit: Option<i32>,
    last_prompt: u64,
    last_d: u64,
    last_input: u64,
    cmd_seq: u64,
}

impl CommandTracker {
    /// The state to carry; the tracker must hold no exec, queue or waiter (`take_all`).
    pub(crate) fn export(&self) -> TrackerState {
        TrackerState {
            name: self.name.clone(),
            secret: self.secret.clone(),
            kind: self.kind,
            integration: self.integration,
            startup_offset: self.startup_offset,
            end: self.end,
            state: self.state,
            exit_code: self.exit_code,
            secret_unread: self.secret_unread,
            at_prompt: self.at_prompt,
            prompt_a: self.prompt_a.map(|(offset, _)| offset),
            line_dirty: self.line_dirty,
            running: self.running,
            last_exit: self.last_exit,
            last_prompt: self.last_prompt,
            last_d: self.last_d,
            last_input: self.last_input,
            cmd_seq: self.cmd_seq,
        }
    }

    /// A tracker that goes on from a carried state; times restart at `now`.
    pub(crate) fn resume(s: TrackerState, now: Instant) -> Self {
        Self {
            name: s.name,
            secret: s.secret,
            kind: s.kind,
            integration: s.integration,
            scanner: Scanner::default(),
            created: now,
            startup_offset: s.startup_offset,
            end: s.end,
            last_output: now,
            state: s.state,
            exit_code: s.exit_code,
            secret_unread: s.secret_unread,
            at_prompt: s.at_prompt,
            prompt_a: s.prompt_a.map(|offset| (offset, now)),
            line_dirty: s.line_dirty,
            held_marks: Vec::new(),
            running: s.running,
            exec: None,
            queue: Default::default(),
            waiters: Vec::new(),
            last_exit: s.last_exit,
            last_prompt: s.last_prompt,
            last_d: s.last_d,
            last_input: s.last_input,
            input_checked: None,
            cmd_seq: s.cmd_seq,
            events: Default::default(),
        }
    }
}
