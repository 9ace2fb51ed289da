//! The command state machine of a session, without I/O: what the shell is doing (starting, at
//! its prompt, running a command), which exec runs and which wait, and which waits are done.
//!
//! A [`CommandTracker`] is fed what happened: output chunks (in which it finds the OSC 133
//! marks), execs and waits asked for, keys typed, the passing of time, a program found blocked
//! reading the terminal, the program's exit. It answers with [`Event`]s: type this exec, this
//! exec finished (its output's range and exit code), answer this exec early, this wait is
//! satisfied. It reads no clock (every call that needs the time is given `now`), touches no
//! file, terminal or log. The one fact it cannot know from the byte stream, whether a program
//! other than the shell holds the terminal, it asks for through a closure, and only when a mark
//! depends on it. The session actor (`actor.rs`) owns the I/O around it: the PTY, the log, the
//! emulator, and the replies built from the log.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::exec::{Line, Pending, Queued};
use crate::marker::{Mark, Scanner};
use crate::session::{Reply, WaitCondition};
use crate::shell::ShellKind;
use ai_session_protocol::methods::{ExecStatus, Integration, SessionState, WaitResult};

/// Execs that may wait for a busy session before new ones are refused.
pub(crate) const MAX_QUEUED: usize = 64;
/// Silence after which a program may be waiting for input. A program that prints a question
/// and reads the answer goes silent at once; 300 ms covers a loaded machine's scheduling.
const INPUT_SILENCE: Duration = Duration::from_millis(300);
/// How often a silent session is looked at again, at first and after `SLOW_AFTER`.
const RECHECK: Duration = Duration::from_millis(300);
const RECHECK_SLOW: Duration = Duration::from_secs(1);
const SLOW_AFTER: Duration = Duration::from_secs(3);
/// Silence after which a shell without hooks is taken to be at its prompt (`wait --prompt`).
const PROMPT_SILENCE: Duration = Duration::from_millis(150);

/// What the tracker asks its owner to do, in order.
pub(crate) enum Event {
    /// The shell printed its first mark: it has read the secret, whose file can go.
    SecretRead,
    /// The shell started a command (C): its output starts at `offset`.
    CommandStarted { offset: u64 },
    /// A command finished (D): its output ended at `offset`.
    CommandFinished { offset: u64, exit_code: Option<i32> },
    /// The shell is at its prompt and may take the next queued exec ([`CommandTracker::next_exec`]).
    Ready,
    /// The exec is over: answer it with its output up to `end`.
    ExecFinished {
        exec: Pending,
        exit_code: Option<i32>,
        end: u64,
        how: Finished,
    },
    /// Answer the exec now with its output so far; the command goes on.
    ExecPartial { exec: Pending, status: ExecStatus },
    /// Execs never typed because the shell is still starting; `waiting`: its startup waits for
    /// input.
    Starting { execs: Vec<Queued>, waiting: bool },
    /// An exec refused because the session is busy.
    Busy { exec: Queued, why: Busy },
    /// An exec refused for another reason (the program exited).
    ExecFailed {
        reply: Reply<crate::ExecResult>,
        error: Error,
    },
    /// A wait is over, satisfied or not.
    WaitDone {
        reply: Reply<WaitResult>,
        result: Result<WaitResult, Error>,
    },
}

/// How an exec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finished {
    /// Its D mark: the shell is back at its prompt.
    Marked,
    /// The shell read its line and showed its prompt without starting a command.
    Unstarted,
    /// The program (the shell) exited.
    ProgramExited,
}

/// Why an exec is refused as busy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Busy {
    /// A command the exec did not start is running.
    Running,
    /// Too many execs already wait.
    QueueFull(usize),
    /// Its timeout ran out while it waited for the running command.
    TimedOut,
}

/// A `wait` in progress.
pub(crate) struct Waiter {
    pub cond: WaitCondition,
    pub since: u64,
    /// How far a regex waiter has looked.
    pub scanned: u64,
    pub deadline: Option<Instant>,
    pub started: Instant,
    pub reply: Reply<WaitResult>,
}

/// The fixed facts a tracker starts from.
pub(crate) struct Setup {
    pub name: String,
    pub secret: String,
    pub kind: ShellKind,
    pub integration: Integration,
    /// Where the program's own output starts in the log (after a restored scrollback).
    pub start: u64,
    pub now: Instant,
}

pub(crate) struct CommandTracker {
    name: String,
    secret: String,
    kind: ShellKind,
    integration: Integration,
    scanner: Scanner,
    created: Instant,
    /// Where the program's own output starts in the log.
    startup_offset: u64,
    /// One past the last byte of output seen.
    end: u64,
    last_output: Instant,
    state: SessionState,
    exit_code: Option<i32>,
    /// The shell has not printed a mark of ours yet.
    secret_unread: bool,
    /// The shell showed its prompt and no command has started since.
    at_prompt: bool,
    /// A prompt started (`A`, with its offset and time) and its end (`B`) has not come yet.
    /// The line editor takes the terminal between the two: a command typed before `B` would
    /// be echoed twice (by the terminal, then by the editor) or lost.
    prompt_a: Option<(u64, Instant)>,
    /// Keys were sent since the last exec was typed: text may be waiting on the command line.
    line_dirty: bool,
    /// D and A marks read while a program held the terminal (see `hold_mark`).
    held_marks: Vec<Mark>,
    /// A command is running (started by exec or typed by send).
    running: bool,
    exec: Option<Pending>,
    queue: VecDeque<Queued>,
    waiters: Vec<Waiter>,
    last_exit: Option<i32>,
    last_prompt: u64,
    /// Where the last D mark applied starts.
    last_d: u64,
    last_input: u64,
    /// When the session was last looked at for a program waiting for input.
    input_checked: Option<Instant>,
    /// Execs typed so far (numbers their command files).
    cmd_seq: u64,
    events: VecDeque<Event>,
}

impl CommandTracker {
    pub fn new(setup: Setup) -> Self {
        let state = match setup.integration {
            Integration::Osc133 => SessionState::Starting,
            Integration::Nonce => SessionState::Idle,
            Integration::None => SessionState::Busy,
        };
        Self {
            name: setup.name,
            secret: setup.secret,
            kind: setup.kind,
            integration: setup.integration,
            scanner: Scanner::default(),
            created: setup.now,
            startup_offset: setup.start,
            end: setup.start,
            last_output: setup.now,
            state,
            exit_code: None,
            secret_unread: setup.kind.has_hooks(),
            at_prompt: setup.integration == Integration::Nonce,
            prompt_a: None,
            line_dirty: false,
            held_marks: Vec::new(),
            running: false,
            exec: None,
            queue: VecDeque::new(),
            waiters: Vec::new(),
            last_exit: None,
            last_prompt: setup.start,
            last_d: setup.start,
            last_input: setup.start,
            input_checked: None,
            cmd_seq: 0,
            events: VecDeque::new(),
        }
    }

    // ---- what the owner reads -----------------------------------------------------------

    /// The next thing to do, oldest first.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.exit_code
    }

    pub fn integration(&self) -> Integration {
        self.integration
    }

    pub fn kind(&self) -> ShellKind {
        self.kind
    }

    pub fn created(&self) -> Instant {
        self.created
    }

    pub fn startup_offset(&self) -> u64 {
        self.startup_offset
    }

    pub fn last_output(&self) -> Instant {
        self.last_output
    }

    /// An exec's command is typed and has not been answered.
    pub fn exec_pending(&self) -> bool {
        self.exec.is_some()
    }

    /// True when no event waiting reads or changes the screen when carried out: marks seen, a
    /// finished exec answered from the log, the prompt back with no exec queued to type. The
    /// owner may then carry them out before it draws the output that came with them.
    pub fn events_skip_screen(&self) -> bool {
        self.events.iter().all(|e| match e {
            Event::SecretRead
            | Event::CommandStarted { .. }
            | Event::CommandFinished { .. }
            | Event::ExecFinished { .. } => true,
            Event::Ready => self.queue.is_empty(),
            Event::ExecPartial { .. }
            | Event::Starting { .. }
            | Event::Busy { .. }
            | Event::ExecFailed { .. }
            | Event::WaitDone { .. } => false,
        })
    }

    /// True when an exec's answer is among the events waiting.
    pub fn answers_exec(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::ExecFinished { .. }))
    }

    /// Keys were typed since the shell last showed its prompt.
    pub fn typed_since_prompt(&self) -> bool {
        self.last_input >= self.last_prompt
    }

    pub fn has_regex_waiters(&self) -> bool {
        self.waiters
            .iter()
            .any(|w| matches!(w.cond, WaitCondition::Regex(_)))
    }

    // ---- output -------------------------------------------------------------------------

    /// Output `data` arrived at log offset `offset` at `now`. `program_holds_terminal` says
    /// whether a program other than the shell holds the terminal; it is asked only for marks
    /// that depend on it.
    pub fn on_output(
        &mut self,
        data: &[u8],
        offset: u64,
        now: Instant,
        program_holds_terminal: &mut dyn FnMut() -> bool,
    ) {
        self.end = offset + data.len() as u64;
        self.last_output = now;
        let mut marks = Vec::new();
        self.scanner.feed(data, offset, &mut marks);
        for mark in marks {
            self.on_mark(mark, now, program_holds_terminal);
        }
    }

    fn mark_is_ours(&self, mark: &Mark) -> bool {
        if mark.field("aid") == Some(self.secret.as_str()) {
            return true;
        }
        matches!((&self.exec, mark.field("n")), (Some(p), Some(n)) if p.nonce.as_deref() == Some(n))
    }

    fn on_mark(&mut self, mark: Mark, now: Instant, holds: &mut dyn FnMut() -> bool) {
        if !self.mark_is_ours(&mark) {
            return;
        }
        if std::mem::take(&mut self.secret_unread) {
            self.events.push_back(Event::SecretRead);
        }
        // A prompt or a finished command is the shell's own report only while the shell holds
        // the terminal: it prints them after taking the terminal back and then waits at its
        // prompt. Printed by a program still in the foreground, they are forged. (C is not
        // checked: the shell prints it just before handing the terminal to the command.)
        if matches!(mark.kind, b'A' | b'B' | b'D') && self.state != SessionState::Exited && holds()
        {
            self.hold_mark(mark);
            return;
        }
        match mark.kind {
            // The prompt's end is printed by the shell's line editor, holding the terminal:
            // held D and A marks were the shell's own, read late (see `hold_mark`).
            b'B' => {
                for held in std::mem::take(&mut self.held_marks) {
                    self.apply_mark(held, now);
                }
            }
            b'C' | b'D' => self.held_marks.clear(),
            _ => {}
        }
        self.apply_mark(mark, now);
    }

    /// Keeps a D or A mark read while a program held the terminal. The foreground is known
    /// when the mark is read, not when it was printed: the shell prints D and A before its
    /// prompt hooks run (`PROMPT_COMMAND`, zsh's `precmd`), and a program a hook starts (a
    /// prompt theme, `direnv`) may already hold the terminal when the daemon reads them. Such
    /// marks count only if the shell then shows its prompt (B, read while the shell holds the
    /// terminal) with no D of its own in between: the shell prints its own D in every prompt
    /// cycle, after everything a forging command printed, so a forged D is always superseded
    /// and only the last D before B, the shell's, is applied.
    fn hold_mark(&mut self, mark: Mark) {
        match mark.kind {
            b'D' => {
                self.held_marks.clear();
                self.held_marks.push(mark);
            }
            b'A' if self.held_marks.len() < 2 => self.held_marks.push(mark),
            _ => {
                tracing::warn!(session = %self.name, kind = %char::from(mark.kind), "ignored a mark printed while a program held the terminal");
            }
        }
    }

    fn apply_mark(&mut self, mark: Mark, now: Instant) {
        match mark.kind {
            b'A' => {
                self.last_prompt = mark.end;
                self.prompt_a = Some((mark.end, now));
            }
            b'B' => {
                self.prompt_a = None;
                self.last_prompt = mark.end;
                self.prompt_ready(mark.end, now);
            }
            b'C' => {
                self.prompt_a = None;
                self.events
                    .push_back(Event::CommandStarted { offset: mark.end });
                self.running = true;
                self.at_prompt = false;
                self.state = SessionState::Busy;
                if let Some(p) = &mut self.exec {
                    if p.out_start.is_none() && mark.start >= p.input_offset {
                        p.out_start = Some(mark.end);
                    }
                }
            }
            b'D' => self.apply_d(mark, now),
            _ => {}
        }
    }

    fn apply_d(&mut self, mark: Mark, now: Instant) {
        let code = mark.params.first().and_then(|c| c.parse::<i32>().ok());
        // The shell reports a status before its first prompt and after an empty line too:
        // only a command that ran (an exec, or a C mark) finishes.
        if self.running {
            self.events.push_back(Event::CommandFinished {
                offset: mark.start,
                exit_code: code,
            });
        }
        self.last_exit = code;
        self.last_d = mark.start;
        self.running = false;
        // Where the shell marks each command's start (bash, zsh), the exec finishes only after
        // its own C: a D before it reports an earlier command (one that printed a forged
        // prompt, letting this exec be typed while it still ran).
        let needs_c = self.integration == Integration::Osc133 && self.kind != ShellKind::Sh;
        let finished = self
            .exec
            .as_ref()
            .is_some_and(|p| mark.start >= p.input_offset && (!needs_c || p.out_start.is_some()));
        if finished {
            if let Some(exec) = self.exec.take() {
                self.events.push_back(Event::ExecFinished {
                    exec,
                    exit_code: code,
                    end: mark.start,
                    how: Finished::Marked,
                });
            }
        }
        if self.integration == Integration::Nonce {
            // Nonce marks come from the command line itself: the prompt follows at once.
            self.prompt_ready(mark.end, now);
        }
    }

    /// The shell is at its prompt: wake prompt waiters; the next queued exec may start.
    fn prompt_ready(&mut self, offset: u64, now: Instant) {
        self.prompt_a = None;
        self.at_prompt = true;
        self.running = false;
        if self.state != SessionState::Exited {
            self.state = SessionState::Idle;
        }
        let last_input = self.last_input;
        let exit = self.last_exit;
        self.resolve_waiters(
            // A prompt ending where the input was written was shown before it: the prompt's
            // own bytes always come after the input they answer.
            |w| matches!(w.cond, WaitCondition::Prompt) && offset > last_input,
            exit,
            now,
        );
        self.events.push_back(Event::Ready);
    }

    // ---- execs --------------------------------------------------------------------------

    fn ready(&self) -> bool {
        self.state == SessionState::Idle && self.at_prompt && !self.running
    }

    /// An exec was asked for: returns it when it can be typed now; otherwise it is queued
    /// or refused (an [`Event::Busy`]).
    pub fn exec(&mut self, queued: Queued) -> Option<Queued> {
        if self.exec.is_none() && self.queue.is_empty() && self.ready() {
            return Some(queued);
        }
        let why = if self.running && self.exec.is_none() {
            Busy::Running
        } else if self.queue.len() >= MAX_QUEUED {
            Busy::QueueFull(self.queue.len())
        } else {
            self.queue.push_back(queued);
            return None;
        };
        self.events.push_back(Event::Busy { exec: queued, why });
        None
    }

    /// The next queued exec to type, while the shell is ready for one.
    pub fn next_exec(&mut self) -> Option<Queued> {
        while self.exec.is_none() && self.ready() {
            let next = self.queue.pop_front()?;
            if !next.reply.is_closed() {
                return Some(next);
            }
            // The client went away while it was queued.
        }
        None
    }

    /// The number of the next exec typed.
    pub fn next_seq(&mut self) -> u64 {
        self.cmd_seq += 1;
        self.cmd_seq
    }

    /// Whether text `send` left on the command line must be erased before typing an exec;
    /// the line counts as clean from here on.
    pub fn take_line_dirty(&mut self) -> bool {
        std::mem::take(&mut self.line_dirty)
    }

    /// The exec's `line` was typed at log offset `input_offset`.
    pub fn typed(&mut self, queued: Queued, line: Line, input_offset: u64, now: Instant) {
        self.last_input = input_offset;
        self.at_prompt = false;
        self.running = true;
        self.state = SessionState::Busy;
        self.exec = Some(Pending::new(queued, line, input_offset, now));
        self.input_checked = None;
    }

    /// Keys were typed (`send`); returns the log offset they were typed at.
    pub fn keys_typed(&mut self) -> u64 {
        self.last_input = self.end;
        self.line_dirty = true;
        self.end
    }

    // ---- time ---------------------------------------------------------------------------

    fn idle_deadline(&self, since: Instant, idle: Duration) -> Instant {
        self.last_output.max(since) + idle
    }

    /// The earliest time the tracker has something to do ([`CommandTracker::on_timer`]).
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if let Some(t) = self.input_check_due() {
            consider(t);
        }
        if let Some(p) = &self.exec {
            if let Some(t) = p.deadline {
                consider(t);
            }
            if let Some(idle) = p.idle {
                consider(self.idle_deadline(p.started, idle));
            }
        }
        for q in &self.queue {
            if let Some(t) = q.deadline {
                consider(t);
            }
        }
        for w in &self.waiters {
            if let Some(t) = w.deadline {
                consider(t);
            }
            match w.cond {
                WaitCondition::Idle(d) => consider(self.idle_deadline(w.started, d)),
                WaitCondition::Prompt if self.integration != Integration::Osc133 => {
                    consider(self.idle_deadline(w.started, PROMPT_SILENCE));
                }
                _ => {}
            }
        }
        next
    }

    /// Answers the exec whose timeout (status `timeout`) or idle timeout (`running`) passed.
    pub fn expire_exec(&mut self, now: Instant) {
        let Some(p) = &self.exec else { return };
        let status = if p.deadline.is_some_and(|t| now >= t) {
            ExecStatus::Timeout
        } else if p
            .idle
            .is_some_and(|idle| now >= self.idle_deadline(p.started, idle))
        {
            ExecStatus::Running
        } else {
            return;
        };
        self.answer_early(status);
    }

    /// Takes the exec out to be answered with its output so far: the command goes on.
    fn answer_early(&mut self, status: ExecStatus) {
        if let Some(exec) = self.exec.take() {
            self.events.push_back(Event::ExecPartial { exec, status });
            // The command's file stays until the shell reports the command finished.
            self.running = true;
        }
    }

    /// Refuses or answers queued execs whose timeout passed.
    pub fn expire_queue(&mut self, now: Instant) {
        let (expired, kept): (Vec<_>, Vec<_>) = self
            .queue
            .drain(..)
            .partition(|q| q.deadline.is_some_and(|t| now >= t));
        self.queue = kept.into();
        if expired.is_empty() {
            return;
        }
        if self.state == SessionState::Starting {
            // Nothing was typed: the answer says the shell is still starting.
            self.events.push_back(Event::Starting {
                execs: expired,
                waiting: false,
            });
            return;
        }
        for exec in expired {
            self.events.push_back(Event::Busy {
                exec,
                why: Busy::TimedOut,
            });
        }
    }

    // ---- waiting for input --------------------------------------------------------------

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

    /// When to look next for a program waiting for input: after `INPUT_SILENCE` without
    /// output, then again while the silence lasts.
    pub fn input_check_due(&self) -> Option<Instant> {
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

    /// Whether the owner should look now; notes the look.
    pub fn input_check(&mut self, now: Instant) -> bool {
        if self.input_check_due().is_none_or(|due| now < due) {
            return false;
        }
        self.input_checked = Some(now);
        true
    }

    /// The program holding the terminal was found blocked reading it, with no output since
    /// the look began. `program_holds_terminal` is asked only when an exec's line may have
    /// started nothing.
    pub fn input_blocked(
        &mut self,
        now: Instant,
        program_holds_terminal: &mut dyn FnMut() -> bool,
    ) {
        if let Some((offset, _)) = self.prompt_a {
            tracing::warn!(session = %self.name, "a prompt without its end mark; the line editor is reading keys");
            self.prompt_ready(offset, now);
        } else if self.exec.is_some() && self.ran_nothing(program_holds_terminal) {
            self.finish_unstarted();
        } else if self.exec.is_some() {
            self.answer_early(ExecStatus::WaitingForInput);
        } else if self.state == SessionState::Starting {
            let execs = self.queue.drain(..).collect();
            self.events.push_back(Event::Starting {
                execs,
                waiting: true,
            });
        }
    }

    /// The shell, reading keys at a prompt it showed after the exec's line was typed, never
    /// marked the command's start: it read the line and started nothing (a comment, a line it
    /// could not parse). Bash and zsh only; sh has no start mark and finishes at its D.
    fn ran_nothing(&self, program_holds_terminal: &mut dyn FnMut() -> bool) -> bool {
        let unstarted = self.exec.as_ref().is_some_and(|p| {
            p.out_start.is_none() && p.nonce.is_none() && self.last_prompt > p.input_offset
        });
        unstarted && self.at_prompt && !program_holds_terminal()
    }

    /// Answers the exec whose line started no command. No command ran, so no exit code is
    /// claimed: the D the shell printed may report an earlier command.
    fn finish_unstarted(&mut self) {
        let Some(exec) = self.exec.take() else { return };
        let end = if self.last_d > exec.input_offset {
            self.last_d
        } else {
            self.end
        };
        self.events.push_back(Event::ExecFinished {
            exec,
            exit_code: None,
            end,
            how: Finished::Unstarted,
        });
        self.running = false;
        self.events.push_back(Event::Ready);
    }

    // ---- the end ------------------------------------------------------------------------

    /// The program exited with `code` and its output is all read.
    pub fn exited(&mut self, code: i32) {
        self.exit_code = Some(code);
        self.state = SessionState::Exited;
        self.running = false;
        if let Some(exec) = self.exec.take() {
            self.events.push_back(Event::ExecFinished {
                exec,
                exit_code: Some(code),
                end: self.end,
                how: Finished::ProgramExited,
            });
        }
        for q in std::mem::take(&mut self.queue) {
            let error = self.exited_error();
            self.events.push_back(Event::ExecFailed {
                reply: q.reply,
                error,
            });
        }
    }

    /// Everything waiting for an answer, taken out: the session is killed.
    pub fn take_all(&mut self) -> (Option<Pending>, VecDeque<Queued>, Vec<Waiter>) {
        (
            self.exec.take(),
            std::mem::take(&mut self.queue),
            std::mem::take(&mut self.waiters),
        )
    }
}

fn ms_since(start: Instant, now: Instant) -> f64 {
    now.saturating_duration_since(start).as_secs_f64() * 1000.0
}

mod handover;
mod waits;

pub(crate) use handover::TrackerState;

#[cfg(test)]
mod tests;
