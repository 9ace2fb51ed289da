//! Looking at a silent session: is the program holding the terminal blocked reading it? The
//! answer settles three things: an exec whose command waits for an answer returns at once
//! (`waiting_for_input`) instead of at its timeout; a shell whose startup files ask a question
//! is reported (`starting`); and a prompt whose end mark (`B`) never came is known to be ready
//! once the shell's line editor reads keys.

use std::time::Instant;

use super::{Actor, foreground};
use crate::input_wait::{self, Modes};
use rustix::termios::LocalModes;

/// Lines of the screen returned with a program that waits for input.
const SCREEN_TAIL: usize = 10;

impl Actor {
    /// Looks at a silent session when the tracker says it is time: a program blocked reading
    /// the terminal ends an exec early, a prompt without its end mark, or a startup that
    /// waits for input (see `CommandTracker::input_blocked`).
    pub(super) fn check_input(&mut self, now: Instant) {
        if !self.tracker.input_check(now) || !self.reading_terminal() {
            return;
        }
        // What the program printed before it blocked may not have been read yet (the timer can
        // fire before the PTY's readiness is served): it is read first, and any output (the
        // command's end, the prompt) supersedes the verdict.
        let end = self.out.log.end();
        self.drain_drawn();
        if self.out.log.end() != end {
            return;
        }
        let (pty, id) = (&self.pty, &self.id);
        let kind = self.tracker.kind();
        let mut holds = || foreground(pty, id, kind).is_some();
        self.tracker.input_blocked(now, &mut holds);
        self.carry_out();
    }

    /// Whether the leader of the terminal's foreground process group is blocked reading it.
    fn reading_terminal(&self) -> bool {
        let Some(pgrp) = self.pty.master.foreground_pgrp() else {
            return false;
        };
        // In a private pid namespace the shell's group is led by its keeper.
        let leader = if pgrp == self.id.pid {
            self.id.shell_pid
        } else {
            pgrp
        };
        let modes = self.pty.master.termios().map_or(
            Modes {
                raw: false,
                no_echo: false,
            },
            |t| Modes {
                raw: !t.local_modes.contains(LocalModes::ICANON),
                no_echo: !t.local_modes.contains(LocalModes::ECHO),
            },
        );
        let rdev = self.pty.master.slave_rdev();
        input_wait::group_reading_terminal(leader, self.id.shell_pid, rdev, modes)
    }

    /// The screen's last non-empty lines (up to the cursor's) and the text before the cursor
    /// on its line: what a program waiting for input shows.
    pub(super) fn screen_tail(&mut self) -> (Vec<String>, Option<String>) {
        let rendered = self.out.screen.render(0, false);
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
