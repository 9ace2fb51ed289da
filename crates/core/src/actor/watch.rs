//! Looking at a silent session: is the program holding the terminal blocked reading it? The
//! answer settles three things: an exec whose command waits for an answer returns at once
//! (`waiting_for_input`) instead of at its timeout; a shell whose startup files ask a question
//! is reported (`starting`); and a prompt whose end mark (`B`) never came is known to be ready
//! once the shell's line editor reads keys.

use std::time::{Duration, Instant};

use super::Actor;
use crate::input_wait::{self, Modes};
use ai_session_protocol::methods::{ExecStatus, SessionState};
use rustix::termios::LocalModes;

/// Silence after which a program may be waiting for input. A program that prints a question
/// and reads the answer goes silent at once; 300 ms covers a loaded machine's scheduling.
const INPUT_SILENCE: Duration = Duration::from_millis(300);
/// How often a silent session is looked at again, at first and after `SLOW_AFTER`.
const RECHECK: Duration = Duration::from_millis(300);
const RECHECK_SLOW: Duration = Duration::from_secs(1);
const SLOW_AFTER: Duration = Duration::from_secs(3);
/// Lines of the screen returned with a program that waits for input.
const SCREEN_TAIL: usize = 10;

impl Actor {
    /// Since when the session has been watched for a program waiting for input, if it is.
    fn watched_since(&self) -> Option<Instant> {
        if let Some(p) = &self.exec {
            return Some(p.started);
        }
        if let Some((_, at)) = self.prompt_a {
            return Some(at);
        }
        if self.state == SessionState::Starting && !self.queue.is_empty() {
            return Some(self.created);
        }
        None
    }

    /// When to look next: after `INPUT_SILENCE` without output, then again while it lasts.
    pub(super) fn input_check_due(&self) -> Option<Instant> {
        let since = self.watched_since()?;
        let silent_from = self.last_output.max(since);
        let first = silent_from + INPUT_SILENCE;
        Some(match self.input_checked {
            Some(at) if at >= silent_from => {
                let every = if at - silent_from > SLOW_AFTER {
                    RECHECK_SLOW
                } else {
                    RECHECK
                };
                first.max(at + every)
            }
            _ => first,
        })
    }

    pub(super) fn check_input(&mut self, now: Instant) {
        if self.input_check_due().is_none_or(|due| now < due) {
            return;
        }
        self.input_checked = Some(now);
        if !self.reading_terminal() {
            return;
        }
        // What the program printed before it blocked may not have been read yet (the timer can
        // fire before the PTY's readiness is served): it is read first, and any output (the
        // command's end, the prompt) supersedes the verdict.
        let end = self.log.end();
        self.drain();
        if self.log.end() != end {
            return;
        }
        if let Some((offset, _)) = self.prompt_a {
            tracing::warn!(session = %self.name, "a prompt without its end mark; the line editor is reading keys");
            self.prompt_ready(offset);
        } else if self.exec.is_some() && self.ran_nothing() {
            self.finish_unstarted();
        } else if self.exec.is_some() {
            self.exec_partial(ExecStatus::WaitingForInput);
        } else if self.state == SessionState::Starting {
            let queued = self.queue.drain(..).collect();
            self.answer_starting(queued, true);
        }
    }

    /// The shell, reading keys at a prompt it showed after the exec's line was typed, never
    /// marked the command's start: it read the line and started nothing (a comment, a line it
    /// could not parse). Bash and zsh only; sh has no start mark and finishes at its D.
    fn ran_nothing(&self) -> bool {
        let unstarted = self.exec.as_ref().is_some_and(|p| {
            p.out_start.is_none() && p.nonce.is_none() && self.last_prompt > p.input_offset
        });
        unstarted && self.at_prompt && self.foreground().is_none()
    }

    /// Whether the leader of the terminal's foreground process group is blocked reading it.
    fn reading_terminal(&self) -> bool {
        let Some(pgrp) = self.master.foreground_pgrp() else {
            return false;
        };
        // In a private pid namespace the shell's group is led by its keeper.
        let leader = if pgrp == self.pid {
            self.shell_pid
        } else {
            pgrp
        };
        let modes = self.master.termios().map_or(
            Modes {
                raw: false,
                no_echo: false,
            },
            |t| Modes {
                raw: !t.local_modes.contains(LocalModes::ICANON),
                no_echo: !t.local_modes.contains(LocalModes::ECHO),
            },
        );
        input_wait::group_reading_terminal(leader, self.shell_pid, self.master.slave_rdev(), modes)
    }

    /// The screen's last non-empty lines (up to the cursor's) and the text before the cursor
    /// on its line: what a program waiting for input shows.
    pub(super) fn screen_tail(&mut self) -> (Vec<String>, Option<String>) {
        let rendered = self.screen.render(0, false);
        let cursor = rendered
            .cursor_row
            .min(rendered.lines.len().saturating_sub(1));
        let prompt = rendered.lines.get(cursor).map(|line| {
            // Lines are right-trimmed: the spaces up to the cursor are part of the prompt.
            let mut text: String = line.chars().take(rendered.cursor_col).collect();
            let width = text.chars().count();
            text.extend(std::iter::repeat_n(
                ' ',
                rendered.cursor_col.saturating_sub(width),
            ));
            text
        });
        let mut lines: Vec<String> = rendered.lines.into_iter().take(cursor + 1).collect();
        while lines.last().is_some_and(|l| l.trim().is_empty()) {
            lines.pop();
        }
        let skip = lines.len().saturating_sub(SCREEN_TAIL);
        lines.drain(..skip);
        (lines, prompt.filter(|p| !p.trim().is_empty()))
    }
}
