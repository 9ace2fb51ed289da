//! `wait`: prompt, regex and idle conditions, resolved as output and marks arrive.

use std::time::{Duration, Instant};

use super::{Actor, Waiter};
use crate::error::Error;
use crate::session::{Reply, WaitCondition};
use crate::text;
use ai_session_protocol::methods::{Integration, SessionState, WaitResult};

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
                offset: self.log.end(),
                exit_code: self.last_exit,
                waited_ms: 0.0,
            };
            waiter.reply.send(Ok(result)).ok();
            return;
        }
        if self.state == SessionState::Exited && !matches!(waiter.cond, WaitCondition::Regex(_)) {
            let err = Error::Exited {
                name: self.name.clone(),
                code: self.exit_code,
            };
            waiter.reply.send(Err(err)).ok();
            return;
        }
        self.waiters.push(waiter);
        if matches!(
            self.waiters.last().map(|w| &w.cond),
            Some(WaitCondition::Regex(_))
        ) {
            self.check_regex_waiters();
            if self.state == SessionState::Exited {
                self.fail_waiters();
            }
        }
    }

    /// Window re-scanned before new output, so a match split across reads is still found.
    pub(super) const OVERLAP: u64 = 4096;

    pub(super) fn check_regex_waiters(&mut self) {
        let end = self.log.end();
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &mut self.waiters[i];
            let WaitCondition::Regex(re) = &w.cond else {
                i += 1;
                continue;
            };
            let from = w.scanned.saturating_sub(Self::OVERLAP).max(w.since);
            // Runs of stored output (a full disk may have lost bytes between them).
            let found = match self.log.runs(from, end) {
                Ok(runs) => runs.iter().find_map(|run| {
                    let text = text::clean(&run.data);
                    re.find(&text).map(|m| m.as_str().to_owned())
                }),
                Err(_) => None,
            };
            w.scanned = end;
            if let Some(matched) = found {
                let w = self.waiters.swap_remove(i);
                let result = WaitResult {
                    matched: Some(matched),
                    offset: end,
                    exit_code: None,
                    waited_ms: w.started.elapsed().as_secs_f64() * 1000.0,
                };
                w.reply.send(Ok(result)).ok();
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn resolve_waiters(
        &mut self,
        pred: impl Fn(&Waiter) -> bool,
        offset: u64,
        exit_code: Option<i32>,
    ) {
        let mut i = 0;
        while i < self.waiters.len() {
            if pred(&self.waiters[i]) {
                let w = self.waiters.swap_remove(i);
                let waited_ms = w.started.elapsed().as_secs_f64() * 1000.0;
                w.reply
                    .send(Ok(WaitResult {
                        matched: None,
                        offset,
                        exit_code,
                        waited_ms,
                    }))
                    .ok();
            } else {
                i += 1;
            }
        }
    }

    pub(super) fn fail_waiters(&mut self) {
        for w in self.waiters.drain(..) {
            w.reply
                .send(Err(Error::Exited {
                    name: self.name.clone(),
                    code: self.exit_code,
                }))
                .ok();
        }
    }

    pub(super) fn expire_waiters(&mut self, now: Instant) {
        let end = self.log.end();
        // Asking the kernel (and /proc) who holds the terminal only matters to prompt waits on
        // shells without hooks; other timer ticks skip it.
        let fg_is_shell = self.integration != Integration::Osc133
            && self
                .waiters
                .iter()
                .any(|w| matches!(w.cond, WaitCondition::Prompt))
            && self.foreground().is_none();
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &self.waiters[i];
            let done = match w.cond {
                WaitCondition::Idle(d) => now >= self.idle_deadline(w.started, d),
                WaitCondition::Prompt if self.integration != Integration::Osc133 => {
                    fg_is_shell
                        && end > w.since
                        && now >= self.idle_deadline(w.started, Duration::from_millis(150))
                }
                _ => false,
            };
            if done {
                let w = self.waiters.swap_remove(i);
                let result = WaitResult {
                    matched: None,
                    offset: end,
                    exit_code: None,
                    waited_ms: w.started.elapsed().as_secs_f64() * 1000.0,
                };
                w.reply.send(Ok(result)).ok();
            } else if w.deadline.is_some_and(|t| now >= t) {
                let w = self.waiters.swap_remove(i);
                let ms = w.started.elapsed().as_millis() as u64;
                let what = match &w.cond {
                    WaitCondition::Regex(re) => format!("/{}/", re.as_str()),
                    WaitCondition::Idle(d) => format!("{} ms of silence", d.as_millis()),
                    WaitCondition::Prompt => "the prompt".into(),
                };
                w.reply.send(Err(Error::Timeout { ms, what })).ok();
            } else {
                i += 1;
            }
        }
    }
}
