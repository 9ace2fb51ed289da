//! Waits, in the tracker: a prompt, a pattern in the output, silence, each with a timeout.

use std::time::{Duration, Instant};

use super::{CommandTracker, Event, PROMPT_SILENCE, Waiter, ms_since};
use crate::error::Error;
use crate::session::{Reply, WaitCondition};
use ai_session_protocol::methods::{Integration, SessionState, WaitResult};

impl CommandTracker {
    // ---- waits --------------------------------------------------------------------------

    /// A wait was asked for; returns true when it is a regex wait whose owner must look at
    /// the output so far ([`CommandTracker::check_regex`]).
    pub fn wait(
        &mut self,
        cond: WaitCondition,
        timeout_ms: Option<u64>,
        since: Option<u64>,
        reply: Reply<WaitResult>,
        now: Instant,
    ) -> bool {
        let since = since.unwrap_or(self.last_input);
        let waiter = Waiter {
            cond,
            since,
            scanned: since,
            deadline: timeout_ms.map(|ms| now + Duration::from_millis(ms)),
            started: now,
            reply,
        };
        let prompt_now = matches!(waiter.cond, WaitCondition::Prompt)
            && self.integration == Integration::Osc133
            && self.at_prompt
            && self.last_prompt > self.last_input;
        if prompt_now {
            let result = WaitResult {
                matched: None,
                offset: self.end,
                exit_code: self.last_exit,
                waited_ms: 0.0,
            };
            self.events.push_back(Event::WaitDone {
                reply: waiter.reply,
                result: Ok(result),
            });
            return false;
        }
        let regex = matches!(waiter.cond, WaitCondition::Regex(_));
        if self.state == SessionState::Exited && !regex {
            let result = Err(self.exited_error());
            self.events.push_back(Event::WaitDone {
                reply: waiter.reply,
                result,
            });
            return false;
        }
        self.waiters.push(waiter);
        regex
    }

    /// Looks for each regex wait's pattern in the output it has not seen; `text(from, to)`
    /// gives the plain text of log offsets `from..to`.
    pub fn check_regex(&mut self, now: Instant, text: &mut dyn FnMut(u64, u64) -> String) {
        /// Window looked at again before new output, so a match split across reads is found.
        const OVERLAP: u64 = 4096;
        let end = self.end;
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &mut self.waiters[i];
            let WaitCondition::Regex(re) = &w.cond else {
                i += 1;
                continue;
            };
            let from = w.scanned.saturating_sub(OVERLAP).max(w.since);
            let found = re.find(&text(from, end)).map(|m| m.as_str().to_owned());
            w.scanned = end;
            if let Some(matched) = found {
                let w = self.waiters.swap_remove(i);
                let result = WaitResult {
                    matched: Some(matched),
                    offset: end,
                    exit_code: None,
                    waited_ms: ms_since(w.started, now),
                };
                self.events.push_back(Event::WaitDone {
                    reply: w.reply,
                    result: Ok(result),
                });
            } else {
                i += 1;
            }
        }
        if self.state == SessionState::Exited {
            self.fail_waiters();
        }
    }

    pub(super) fn resolve_waiters(
        &mut self,
        pred: impl Fn(&Waiter) -> bool,
        exit_code: Option<i32>,
        now: Instant,
    ) {
        let mut i = 0;
        while i < self.waiters.len() {
            if pred(&self.waiters[i]) {
                let w = self.waiters.swap_remove(i);
                let result = WaitResult {
                    matched: None,
                    offset: self.end,
                    exit_code,
                    waited_ms: ms_since(w.started, now),
                };
                self.events.push_back(Event::WaitDone {
                    reply: w.reply,
                    result: Ok(result),
                });
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn fail_waiters(&mut self) {
        for w in std::mem::take(&mut self.waiters) {
            let result = Err(self.exited_error());
            self.events.push_back(Event::WaitDone {
                reply: w.reply,
                result,
            });
        }
    }

    pub(super) fn exited_error(&self) -> Error {
        Error::Exited {
            name: self.name.clone(),
            code: self.exit_code,
        }
    }

    /// Ends idle waits and prompt waits on shells without hooks, and waits whose timeout
    /// passed. `shell_holds_terminal` is asked only for prompt waits on shells without hooks.
    pub fn expire_waiters(&mut self, now: Instant, shell_holds_terminal: &mut dyn FnMut() -> bool) {
        let end = self.end;
        let no_hooks_prompt = self.integration != Integration::Osc133
            && self
                .waiters
                .iter()
                .any(|w| matches!(w.cond, WaitCondition::Prompt));
        let fg_is_shell = no_hooks_prompt && shell_holds_terminal();
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &self.waiters[i];
            let done = match w.cond {
                WaitCondition::Idle(d) => now >= self.idle_deadline(w.started, d),
                WaitCondition::Prompt if self.integration != Integration::Osc133 => {
                    fg_is_shell
                        && end > w.since
                        && now >= self.idle_deadline(w.started, PROMPT_SILENCE)
                }
                _ => false,
            };
            if done {
                let w = self.waiters.swap_remove(i);
                let result = WaitResult {
                    matched: None,
                    offset: end,
                    exit_code: None,
                    waited_ms: ms_since(w.started, now),
                };
                self.events.push_back(Event::WaitDone {
                    reply: w.reply,
                    result: Ok(result),
                });
            } else if w.deadline.is_some_and(|t| now >= t) {
                let w = self.waiters.swap_remove(i);
                let ms = now.saturating_duration_since(w.started).as_millis() as u64;
                let what = match &w.cond {
                    WaitCondition::Regex(re) => format!("/{}/", re.as_str()),
                    WaitCondition::Idle(d) => format!("{} ms of silence", d.as_millis()),
                    WaitCondition::Prompt => "the prompt".into(),
                };
                self.events.push_back(Event::WaitDone {
                    reply: w.reply,
                    result: Err(Error::Timeout { ms, what }),
                });
            } else {
                i += 1;
            }
        }
    }
}
