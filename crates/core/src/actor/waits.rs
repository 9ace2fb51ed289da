//! `wait`, the I/O side: the tracker keeps the waits and says when they are done; the actor
//! unwedges a raw `sh` for a prompt wait and gives regex waits the log's text.

use std::time::Instant;

use super::Actor;
use crate::session::{Reply, WaitCondition};
use crate::text;
use ai_session_protocol::methods::WaitResult;

impl Actor {
    pub(super) fn on_wait(
        &mut self,
        cond: WaitCondition,
        timeout_ms: Option<u64>,
        since: Option<u64>,
        reply: Reply<WaitResult>,
    ) {
        if matches!(cond, WaitCondition::Prompt) {
            self.unwedge_for_prompt();
        }
        let now = Instant::now();
        if self.tracker.wait(cond, timeout_ms, since, reply, now) {
            self.check_regex(now);
        }
    }

    /// Lets regex waits look at the output they have not seen.
    pub(super) fn check_regex(&mut self, now: Instant) {
        let log = &self.out.log;
        // Runs of stored output (a full disk may have lost bytes between them).
        let mut text_of = |from: u64, to: u64| match log.runs(from, to) {
            Ok(runs) => runs.iter().map(|run| text::clean(&run.data)).collect(),
            Err(_) => String::new(),
        };
        self.tracker.check_regex(now, &mut text_of);
    }
}
