//! The session actor: the one task that owns a session's PTY master, emulator, log and
//! command-tracking state, and serves the handle's requests between reads of the program's
//! output.
//!
//! Completion of `exec` is detected in layers: OSC 133 marks from the injected hooks (exact,
//! with exit code); nonce marks written around the command for other POSIX shells; the
//! terminal's foreground process group (to say what is still running); and an idle timeout that
//! returns partial output with status `running`.

mod exec_flow;
mod waits;
mod watch;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

use crate::error::{Error, Result};
use crate::exec::{self, Pending, Queued};
use crate::keys::{self, KeyModes};
use crate::log::OutputLog;
use crate::marker::{Mark, Scanner};
use crate::pty::{Master, ReadOutcome};
use crate::screen::Screen;
use crate::session::{Cmd, Reply, SessionEvent, WaitCondition};
use crate::shell::ShellKind;
use crate::text;
use ai_session_protocol::methods::{
    CaptureParams, CaptureResult, Foreground, Integration, ReadParams, ReadResult, SendResult,
    SessionInfo, SessionState, Size, SubscribeResult, WaitResult,
};

/// Bytes read from the PTY before the actor serves its queue again.
const READ_BUDGET: usize = 1 << 20;
/// Default and largest `read` sizes.
const DEFAULT_READ: usize = 1 << 20;
const MAX_READ: usize = 16 << 20;
/// Execs that may wait for a busy session before new ones are refused.
const MAX_QUEUED: usize = 64;
/// Silence after which an unwatched screen is put to sleep (see `Screen::hibernate`).
const HIBERNATE_AFTER: Duration = Duration::from_millis(500);

pub(crate) struct Actor {
    pub name: String,
    /// The session leader (the shell, or its keeper in a private pid namespace): the session
    /// id and process group the daemon signals.
    pub pid: i32,
    /// The shell itself, whose process group holds the terminal when it is at its prompt.
    pub shell_pid: i32,
    /// The sandbox the session runs in; it owns the session's cgroup, so it lives as long as
    /// the session.
    pub sandbox: Option<crate::sandbox::Sandboxed>,
    /// Why the program stopped, when a resource limit stopped it.
    pub stop_reason: Option<String>,
    pub argv: Vec<String>,
    pub cwd: String,
    pub dir: PathBuf,
    pub master: Master,
    pub child: Option<crate::pty::Process>,
    pub screen: Screen,
    pub log: OutputLog,
    pub scanner: Scanner,
    pub secret: String,
    /// The file that handed `secret` to the hooks, removed at the shell's first mark.
    pub mark_file: Option<std::path::PathBuf>,
    pub kind: ShellKind,
    pub integration: Integration,
    pub created: Instant,
    pub created_ms: u64,
    pub state: SessionState,
    pub exit_code: Option<i32>,
    /// The shell showed its prompt and no command has started since.
    pub at_prompt: bool,
    /// A prompt started (`A`, with its offset and time) and its end (`B`) has not come yet.
    /// The line editor takes the terminal between the two: a command typed before `B` would
    /// be echoed twice (by the terminal, then by the editor) or lost.
    pub prompt_a: Option<(u64, Instant)>,
    /// Where the program's own output starts in the log (after a restored scrollback).
    pub startup_offset: u64,
    /// Keys were sent since the last exec was typed: text may be waiting on the command line.
    pub line_dirty: bool,
    /// D and A marks read while a program held the terminal (see `hold_mark`).
    pub held_marks: Vec<Mark>,
    /// When the session was last looked at for a program waiting for input.
    pub input_checked: Option<Instant>,
    /// A command is running (started by exec or typed by send).
    pub running: bool,
    pub exec: Option<Pending>,
    pub queue: VecDeque<Queued>,
    pub last_exit: Option<i32>,
    /// When the running command's C mark arrived.
    pub command_started: Option<Instant>,
    /// The last command that finished (C then D), for `SessionInfo.last_command`.
    pub last_command: Option<ai_session_protocol::methods::LastCommand>,
    pub last_prompt: u64,
    /// Where the last D mark applied starts.
    pub last_d: u64,
    pub last_input: u64,
    pub last_output: Instant,
    pub waiters: Vec<Waiter>,
    pub input: VecDeque<u8>,
    pub events: Option<broadcast::Sender<SessionEvent>>,
    pub hung_up: bool,
    /// The last drain stopped at its budget with output still waiting.
    pub more_to_read: bool,
    /// The child exited; finish once the PTY drains (or after a short grace).
    pub exit_pending: Option<(i32, Instant)>,
    pub cmd_seq: u64,
    pub state_tx: broadcast::Sender<crate::session::StateChange>,
    /// The state last announced on `state_tx`.
    pub announced: Option<SessionState>,
    /// Brought back from a saved record (its old scrollback is at the top of the log).
    pub restored: bool,
}

pub(crate) struct Waiter {
    cond: WaitCondition,
    since: u64,
    scanned: u64,
    deadline: Option<Instant>,
    started: Instant,
    reply: Reply<WaitResult>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Actor {
    pub async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        // The state the session starts in is a change too (it did not exist before).
        self.announce();
        loop {
            let deadline = self.next_deadline();
            let want_write = !self.input.is_empty() && !self.hung_up;
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Kill { scan, done }) => {
                        self.shutdown(scan).await;
                        // The requester may have gone away; the session is dead either way.
                        done.send(()).ok();
                        return;
                    }
                    Some(cmd) => self.handle(cmd),
                    None => {
                        self.shutdown(true).await;
                        return;
                    }
                },
                ready = self.master.readable(), if !self.hung_up => match ready {
                    Ok(()) => self.drain(),
                    Err(e) => {
                        tracing::warn!(session = %self.name, "PTY readiness failed: {e}");
                        self.hung_up = true;
                    }
                },
                ready = self.master.writable(), if want_write => {
                    if ready.is_ok() {
                        self.flush_input();
                    }
                },
                status = wait_child(&mut self.child) => {
                    self.child = None;
                    let code = match status {
                        Ok(status) => self.exit_status(status),
                        Err(_) => -1,
                    };
                    self.exit_pending = Some((code, Instant::now() + Duration::from_millis(200)));
                    if self.hung_up {
                        self.finish_exit();
                    }
                },
                () = std::future::ready(()), if self.more_to_read => self.drain(),
                () = sleep_until(deadline), if deadline.is_some() => self.on_timer(),
            }
            self.announce();
        }
    }

    /// Tells state-change listeners when the session's state differs from the last announced.
    fn announce(&mut self) {
        if self.announced == Some(self.state) {
            return;
        }
        self.announced = Some(self.state);
        let state = match self.state {
            SessionState::Starting => "starting",
            SessionState::Idle => "idle",
            SessionState::Busy => "busy",
            SessionState::Exited => "exited",
        };
        let change = crate::session::StateChange {
            session: self.name.clone(),
            state,
            exit_code: self.exit_code,
            stop_reason: self.stop_reason.clone(),
        };
        // No listener is fine: the announcement is for whoever cares.
        self.state_tx.send(change).ok();
        self.emit(SessionEvent::State {
            state: self.state,
            exit_code: self.exit_code,
        });
    }

    /// Sends an event to the session's subscribers, if it has any.
    fn emit(&self, event: SessionEvent) {
        if let Some(tx) = &self.events {
            tx.send(event).ok();
        }
    }

    fn handle(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Exec(params, reply) => self.on_exec(params, reply),
            Cmd::Write(data, reply) => {
                reply.send(self.write_input(&data)).ok();
            }
            Cmd::Keys {
                keys,
                literal,
                paste,
                reply,
            } => {
                let data = self.encode_keys(&keys, literal, paste);
                reply.send(self.write_input(&data)).ok();
            }
            Cmd::Read(params, reply) => {
                reply.send(self.read(&params)).ok();
            }
            Cmd::Capture(params, reply) => {
                reply.send(Ok(self.capture(&params))).ok();
            }
            Cmd::Wait {
                cond,
                timeout_ms,
                since,
                reply,
            } => self.on_wait(cond, timeout_ms, since, reply),
            Cmd::Resize(size, reply) => {
                reply.send(self.resize(size)).ok();
            }
            Cmd::Info(reply) => {
                reply.send(self.info()).ok();
            }
            Cmd::Subscribe(reply) => {
                let tx = self
                    .events
                    .get_or_insert_with(|| broadcast::channel(1024).0);
                let rx = tx.subscribe();
                let result = SubscribeResult {
                    screen_ansi: self.screen.redraw_ansi(),
                    size: self.screen.size(),
                    offset: self.log.end(),
                };
                reply.send(Ok((result, rx))).ok();
            }
            Cmd::Kill { .. } => {}
        }
    }

    // ---- output -------------------------------------------------------------------------

    /// Reads what the PTY has (up to the budget) and processes it.
    fn drain(&mut self) {
        // On the stack of this call, not in the task's state: idle sessions keep no buffer.
        let mut buf = [0u8; 32 * 1024];
        self.more_to_read = false;
        let mut total = 0;
        while total < READ_BUDGET {
            match self.master.try_read(&mut buf) {
                Ok(ReadOutcome::Data(n)) => {
                    total += n;
                    self.process_output(&buf[..n]);
                }
                Ok(ReadOutcome::WouldBlock) => return,
                Ok(ReadOutcome::HungUp) => {
                    self.hung_up = true;
                    if self.exit_pending.is_some() {
                        self.finish_exit();
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(session = %self.name, "PTY read failed: {e}");
                    self.hung_up = true;
                    return;
                }
            }
        }
        // Budget spent with data left. Readiness was cleared before reading, so no new edge
        // will come for it: the loop comes back here after serving the command queue.
        self.more_to_read = true;
    }

    fn process_output(&mut self, data: &[u8]) {
        let offset = match self.log.append(data) {
            Ok(offset) => offset,
            Err(e) => {
                tracing::error!(session = %self.name, "cannot append to the output log: {e}");
                return;
            }
        };
        self.screen.feed(data);
        let replies = self.screen.take_replies();
        // Output of an exec'd command is not interactive: a query found in it (a `cat` of a
        // binary file is full of them) must not type its answer into the shell's next line.
        if !replies.is_empty() && self.exec.is_none() {
            self.input.extend(replies);
            self.flush_input();
        }
        self.last_output = Instant::now();
        if let Some(tx) = &self.events {
            if tx.receiver_count() > 0 {
                tx.send(SessionEvent::Output {
                    offset,
                    data: Bytes::copy_from_slice(data),
                })
                .ok();
            } else {
                self.events = None;
            }
        }
        let mut marks = Vec::new();
        self.scanner.feed(data, offset, &mut marks);
        for mark in marks {
            self.on_mark(mark);
        }
        if self
            .waiters
            .iter()
            .any(|w| matches!(w.cond, WaitCondition::Regex(_)))
        {
            self.check_regex_waiters();
        }
    }

    fn mark_is_ours(&self, mark: &Mark) -> bool {
        if mark.field("aid") == Some(self.secret.as_str()) {
            return true;
        }
        matches!((&self.exec, mark.field("n")), (Some(p), Some(n)) if p.nonce.as_deref() == Some(n))
    }

    fn on_mark(&mut self, mark: Mark) {
        if !self.mark_is_ours(&mark) {
            return;
        }
        if let Some(file) = self.mark_file.take() {
            // The hooks have read the secret: no command may find it on disk.
            if let Err(e) = std::fs::remove_file(&file) {
                tracing::warn!(session = %self.name, "cannot remove {}: {e}", file.display());
            }
        }
        // A prompt or a finished command is the shell's own report only while the shell holds
        // the terminal: it prints them after taking the terminal back and then waits at its
        // prompt. Printed by a program still in the foreground, they are forged. (C is not
        // checked: the shell prints it just before handing the terminal to the command.)
        if matches!(mark.kind, b'A' | b'B' | b'D') && self.foreground().is_some() {
            self.hold_mark(mark);
            return;
        }
        match mark.kind {
            // The prompt's end is printed by the shell's line editor, holding the terminal:
            // held D and A marks were the shell's own, read late (see `hold_mark`).
            b'B' => {
                for held in std::mem::take(&mut self.held_marks) {
                    self.apply_mark(held);
                }
            }
            b'C' | b'D' => self.held_marks.clear(),
            _ => {}
        }
        self.apply_mark(mark);
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

    fn apply_mark(&mut self, mark: Mark) {
        match mark.kind {
            b'A' => {
                self.last_prompt = mark.end;
                self.prompt_a = Some((mark.end, Instant::now()));
            }
            b'B' => {
                self.prompt_a = None;
                self.last_prompt = mark.end;
                self.prompt_ready(mark.end);
            }
            b'C' => {
                self.prompt_a = None;
                self.emit(SessionEvent::CommandStarted { offset: mark.end });
                self.running = true;
                self.command_started = Some(Instant::now());
                self.at_prompt = false;
                self.state = SessionState::Busy;
                if let Some(p) = &mut self.exec {
                    if p.out_start.is_none() && mark.start >= p.input_offset {
                        p.out_start = Some(mark.end);
                    }
                }
            }
            b'D' => {
                let code = mark.params.first().and_then(|c| c.parse::<i32>().ok());
                // The shell reports a status before its first prompt and after an empty line
                // too: only a command that ran (an exec, or a C mark) finishes.
                if self.running {
                    self.emit(SessionEvent::CommandFinished {
                        offset: mark.start,
                        exit_code: code,
                    });
                    if let Some(started) = self.command_started.take() {
                        self.last_command = Some(ai_session_protocol::methods::LastCommand {
                            exit_code: code,
                            duration_ms: started.elapsed().as_millis() as u64,
                            finished_ms: now_ms(),
                        });
                    }
                }
                self.last_exit = code;
                self.last_d = mark.start;
                self.running = false;
                // Where the shell marks each command's start (bash, zsh), the exec finishes
                // only after its own C: a D before it reports an earlier command (one that
                // printed a forged prompt, letting this exec be typed while it still ran).
                let needs_c = self.integration == Integration::Osc133 && self.kind != ShellKind::Sh;
                let finished = self.exec.as_ref().is_some_and(|p| {
                    mark.start >= p.input_offset && (!needs_c || p.out_start.is_some())
                });
                if finished {
                    if let Some(p) = self.exec.take() {
                        let mut result =
                            exec::finish(&p, &self.log, code, mark.start, self.integration);
                        // The shell is at its prompt: its directory is where the next command
                        // will run.
                        result.cwd = std::fs::read_link(format!("/proc/{}/cwd", self.shell_pid))
                            .ok()
                            .map(|d| d.to_string_lossy().into_owned());
                        p.cleanup();
                        p.reply.send(Ok(result)).ok();
                    }
                }
                if self.integration == Integration::Nonce {
                    // Nonce marks come from the command line itself: the prompt follows at once.
                    self.prompt_ready(mark.end);
                }
            }
            _ => {}
        }
    }

    /// The shell is at its prompt: wake prompt waiters and start the next queued exec.
    fn prompt_ready(&mut self, offset: u64) {
        self.prompt_a = None;
        self.at_prompt = true;
        self.running = false;
        if self.state != SessionState::Exited {
            self.state = SessionState::Idle;
        }
        let last_input = self.last_input;
        let exit = self.last_exit;
        let end = self.log.end();
        self.resolve_waiters(
            // A prompt ending where the input was written was shown before it: the prompt's
            // own bytes always come after the input they answer.
            |w| matches!(w.cond, WaitCondition::Prompt) && offset > last_input,
            end,
            exit,
        );
        self.start_queued();
    }

    // ---- input --------------------------------------------------------------------------

    fn encode_keys(&self, keys: &[String], literal: bool, paste: bool) -> Vec<u8> {
        let modes = KeyModes {
            app_cursor: self.screen.app_cursor(),
        };
        let mut out = Vec::new();
        let bracket = paste && self.screen.bracketed_paste();
        if bracket {
            out.extend_from_slice(b"\x1b[200~");
        }
        for key in keys {
            if literal || paste {
                out.extend_from_slice(key.as_bytes());
            } else {
                out.extend(keys::encode(key, modes));
            }
        }
        if bracket {
            out.extend_from_slice(b"\x1b[201~");
        }
        out
    }

    fn write_input(&mut self, data: &[u8]) -> Result<SendResult> {
        if self.state == SessionState::Exited || self.hung_up {
            return Err(Error::Exited {
                name: self.name.clone(),
                code: self.exit_code,
            });
        }
        self.unwedge_for_interrupt(data);
        let offset = self.log.end();
        self.last_input = offset;
        self.line_dirty = true;
        self.input.extend(data);
        self.flush_input();
        Ok(SendResult {
            bytes: data.len(),
            offset,
        })
    }

    fn flush_input(&mut self) {
        while !self.input.is_empty() {
            let (front, _) = self.input.as_slices();
            match self.master.try_write(front) {
                Ok(0) => return, // the terminal's input queue is full: wait for writability
                Ok(n) => {
                    self.input.drain(..n);
                }
                Err(e) => {
                    tracing::warn!(session = %self.name, "PTY write failed: {e}");
                    self.input.clear();
                    return;
                }
            }
        }
    }

    // ---- queries ------------------------------------------------------------------------

    fn read(&self, params: &ReadParams) -> Result<ReadResult> {
        let max = params.max_bytes.unwrap_or(DEFAULT_READ).clamp(1, MAX_READ);
        let since = params.since.unwrap_or(self.log.start());
        if since > self.log.end() {
            return Err(Error::InvalidParams(format!(
                "offset {since} is beyond the end of the log ({}); use an offset from a previous result",
                self.log.end()
            )));
        }
        let chunk = self.log.read(since, max)?;
        let used = text::complete_utf8_len(&chunk.data);
        let bytes = &chunk.data[..used];
        let data = if params.raw {
            String::from_utf8_lossy(bytes).into_owned()
        } else {
            text::clean(bytes)
        };
        let end = chunk.start + used as u64;
        Ok(ReadResult {
            data,
            start: chunk.start,
            end,
            dropped: chunk.start.saturating_sub(since),
            more: end < self.log.end() && used > 0,
        })
    }

    fn capture(&mut self, params: &CaptureParams) -> CaptureResult {
        let r = self.screen.render(params.scrollback, params.ansi);
        CaptureResult {
            lines: r.lines,
            size: self.screen.size(),
            cursor_row: r.cursor_row,
            cursor_col: r.cursor_col,
            alternate_screen: self.screen.alternate_screen(),
            title: self.screen.title(),
            scrollback_lines: r.scrollback_lines,
        }
    }

    fn resize(&mut self, size: Size) -> Result<()> {
        crate::check_size(size)?;
        self.master.resize(size)?;
        self.screen.resize(size);
        Ok(())
    }

    fn foreground(&self) -> Option<Foreground> {
        if self.state == SessionState::Exited {
            return None;
        }
        let pgrp = self.master.foreground_pgrp()?;
        if (pgrp == self.pid || pgrp == self.shell_pid) && self.kind.is_posix() {
            return None; // the shell itself (or, before it takes the terminal, its keeper)
        }
        Some(Foreground {
            pid: pgrp,
            command: crate::pty::process_name(pgrp).unwrap_or_default(),
        })
    }

    fn info(&self) -> SessionInfo {
        SessionInfo {
            name: self.name.clone(),
            pid: self.shell_pid,
            program: self.argv.clone(),
            cwd: self.cwd.clone(),
            size: self.screen.size(),
            state: self.state,
            exit_code: self.exit_code,
            integration: self.integration,
            created_ms: self.created_ms,
            log_end: self.log.end(),
            log_start: self.log.start(),
            foreground: self.foreground(),
            sandbox: self.sandbox.as_ref().map(crate::sandbox::info),
            stop_reason: self.stop_reason.clone(),
            restored: self.restored,
            last_command: self.last_command,
        }
    }

    // ---- time ---------------------------------------------------------------------------

    fn idle_deadline(&self, since: Instant, idle: Duration) -> Instant {
        self.last_output.max(since) + idle
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if self.may_hibernate() {
            consider(self.last_output + HIBERNATE_AFTER);
        }
        if let Some(t) = self.input_check_due() {
            consider(t);
        }
        if let Some((_, t)) = self.exit_pending {
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
                    consider(self.idle_deadline(w.started, Duration::from_millis(150)));
                }
                _ => {}
            }
        }
        next
    }

    /// An awake screen nobody watches, not on the alternate screen, can sleep.
    fn may_hibernate(&self) -> bool {
        !self.screen.is_dormant() && self.events.is_none() && !self.screen.alternate_screen()
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.may_hibernate()
            && now >= self.last_output + HIBERNATE_AFTER
            && self.screen.hibernate()
        {
            self.log.release();
            crate::memory::freed();
        }
        if self.exit_pending.is_some_and(|(_, t)| now >= t) {
            self.finish_exit();
        }
        if let Some(p) = &self.exec {
            use ai_session_protocol::methods::ExecStatus;
            if p.deadline.is_some_and(|t| now >= t) {
                self.exec_partial(ExecStatus::Timeout);
            } else if p
                .idle
                .is_some_and(|idle| now >= self.idle_deadline(p.started, idle))
            {
                self.exec_partial(ExecStatus::Running);
            }
        }
        self.check_input(now);
        self.expire_queue(now);
        self.expire_waiters(now);
    }

    fn expire_queue(&mut self, now: Instant) {
        let (expired, kept): (Vec<_>, Vec<_>) = self
            .queue
            .drain(..)
            .partition(|q| q.deadline.is_some_and(|t| now >= t));
        self.queue = kept.into();
        if self.state == SessionState::Starting {
            // Nothing was typed: the answer says the shell is still starting, with what it
            // printed so far.
            self.answer_starting(expired, false);
            return;
        }
        for q in expired {
            let detail = format!(
                "still busy when the exec's timeout ran out; {}",
                self.busy_detail()
            );
            q.reply
                .send(Err(Error::Busy {
                    name: self.name.clone(),
                    detail,
                }))
                .ok();
        }
    }

    // ---- exit and kill ------------------------------------------------------------------

    /// The shell convention for how the program ended (its code, or 128 + the signal), and
    /// the limit that stopped it, if one did.
    fn exit_status(&mut self, status: std::process::ExitStatus) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sandbox) = &self.sandbox {
            let reason = sandbox.prepared.stop_reason(status);
            if reason.is_limit() {
                tracing::warn!(session = %self.name, "{}", reason.describe());
                self.stop_reason = Some(reason.describe());
            }
        }
        status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1)
    }

    fn finish_exit(&mut self) {
        let Some((code, _)) = self.exit_pending.take() else {
            return;
        };
        self.exit_code = Some(code);
        self.state = SessionState::Exited;
        self.running = false;
        if let Some(p) = self.exec.take() {
            let result = exec::finish(&p, &self.log, Some(code), self.log.end(), self.integration);
            p.cleanup();
            p.reply.send(Ok(result)).ok();
        }
        for q in self.queue.drain(..) {
            q.reply
                .send(Err(Error::Exited {
                    name: self.name.clone(),
                    code: Some(code),
                }))
                .ok();
        }
        self.check_regex_waiters();
        self.fail_waiters();
        if let Some(tx) = &self.events {
            tx.send(SessionEvent::Closed {
                exit_code: Some(code),
            })
            .ok();
        }
        tracing::info!(session = %self.name, code, "program exited");
    }

    /// Kills every process of the session, reaps the shell and removes the session's files.
    /// With `scan` false the caller (daemon shutdown) has already signalled the session's
    /// members from one scan of /proc for all sessions, and scans once more afterwards.
    async fn shutdown(&mut self, scan: bool) {
        use rustix::process::Signal;
        if let Some(mut child) = self.child.take() {
            // The shell leads its own process group; the foreground job may have another.
            crate::pty::signal_group(self.pid, Signal::HUP);
            if let Some(fg) = self.master.foreground_pgrp().filter(|fg| *fg != self.pid) {
                crate::pty::signal_group(fg, Signal::HUP);
                crate::pty::signal_group(fg, Signal::CONT);
            }
            if tokio::time::timeout(Duration::from_millis(300), child.wait())
                .await
                .is_err()
            {
                crate::pty::signal_group(self.pid, Signal::KILL);
                if let Err(e) = child.wait().await {
                    tracing::warn!(session = %self.name, "reaping the shell failed: {e}");
                }
            }
        }
        if scan {
            // Jobs in other process groups, and any that ignore SIGHUP.
            crate::pty::signal_session(self.pid, Signal::KILL);
        }
        if let Some(p) = self.exec.take() {
            p.cleanup();
            p.reply.send(Err(Error::Killed(self.name.clone()))).ok();
        }
        for q in self.queue.drain(..) {
            q.reply.send(Err(Error::Killed(self.name.clone()))).ok();
        }
        for w in self.waiters.drain(..) {
            w.reply.send(Err(Error::Killed(self.name.clone()))).ok();
        }
        if let Some(tx) = &self.events {
            tx.send(SessionEvent::Closed {
                exit_code: self.exit_code,
            })
            .ok();
        }
        let change = crate::session::StateChange {
            session: self.name.clone(),
            state: "killed",
            exit_code: self.exit_code,
            stop_reason: None,
        };
        self.state_tx.send(change).ok();
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(session = %self.name, "cannot remove {}: {e}", self.dir.display());
        }
        tracing::info!(session = %self.name, "killed");
    }
}

async fn wait_child(
    child: &mut Option<crate::pty::Process>,
) -> std::io::Result<std::process::ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
