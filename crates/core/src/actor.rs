//! The session actor: the one task that owns a session's PTY master, emulator and log, and
//! serves the handle's requests between reads of the program's output. The command state
//! machine (marks, execs, waits) is the [`CommandTracker`], which does no I/O: the actor feeds
//! it what happened and carries out the [`Event`]s it answers with (typing a command, building
//! an exec's result from the log, replying).
//!
//! Completion of `exec` is detected in layers: OSC 133 marks from the injected hooks (exact,
//! with exit code); nonce marks written around the command for other POSIX shells; the
//! terminal's foreground process group (to say what is still running); and an idle timeout that
//! returns partial output with status `running`.

mod exec_flow;
pub(crate) mod handover;
mod waits;
mod watch;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

use crate::error::{Error, Result};
use crate::keys::{self, KeyModes};
use crate::log::OutputLog;
use crate::pty::{Master, ReadOutcome};
use crate::screen::Screen;
use crate::session::{Cmd, SessionEvent};
use crate::text;
use crate::tracker::{CommandTracker, Event};
use ai_session_protocol::methods::{
    CaptureParams, CaptureResult, Foreground, ReadEncoding, ReadParams, ReadResult, SendResult,
    SessionInfo, SessionState, Size, SubscribeResult,
};

/// Bytes read from the PTY before the actor serves its queue again.
const READ_BUDGET: usize = 1 << 20;
/// Room left in the read buffer below which its bytes are processed before the next read (a
/// PTY read returns at most about 4 KiB).
const READ_ROOM: usize = 8 * 1024;
/// Default and largest `read` sizes.
const DEFAULT_READ: usize = 1 << 20;
const MAX_READ: usize = 16 << 20;
/// Silence after which an unwatched screen is put to sleep (see `Screen::hibernate`).
const HIBERNATE_AFTER: Duration = Duration::from_millis(500);
/// Input waiting for the program to read it beyond which the emulator's answers to terminal
/// queries are dropped: a program that floods queries and never reads the answers must not
/// grow the daemon.
const MAX_PENDING_REPLIES: usize = 64 * 1024;

pub(crate) struct Actor {
    pub id: Identity,
    pub pty: Pty,
    pub out: Output,
    pub life: Life,
    /// Marks, execs, waits: the command state machine.
    pub tracker: CommandTracker,
}

/// What names the session and its program; fixed at spawn.
pub(crate) struct Identity {
    /// The immutable session id (`SessionInfo.id`).
    pub sid: String,
    pub name: String,
    /// The session leader (the shell, or its keeper in a private pid namespace): the session
    /// id and process group the daemon signals.
    pub pid: i32,
    /// The shell itself, whose process group holds the terminal when it is at its prompt.
    pub shell_pid: i32,
    pub argv: Vec<String>,
    pub cwd: String,
    /// The session's directory (log, command files, the secret's file).
    pub dir: PathBuf,
    pub created_ms: u64,
    /// Brought back from a saved record (its old scrollback is at the top of the log).
    pub restored: bool,
    /// The file that handed the mark secret to the hooks, removed at the shell's first mark.
    pub mark_file: Option<PathBuf>,
}

/// The terminal and the program on it.
pub(crate) struct Pty {
    pub master: Master,
    pub child: Option<crate::pty::Process>,
    /// Bytes waiting for the terminal's input queue to take them.
    pub input: VecDeque<u8>,
    pub hung_up: bool,
    /// The last drain stopped at its budget with output still waiting.
    pub more_to_read: bool,
    /// The child exited; finish once the PTY drains (or after a short grace).
    pub exit_pending: Option<(i32, Instant)>,
}

/// Where the program's output goes: the log, the screen, subscribers.
pub(crate) struct Output {
    pub log: OutputLog,
    pub screen: Screen,
    pub events: Option<broadcast::Sender<SessionEvent>>,
    /// Why the output log is missing output right now (see `log_failed`).
    pub degraded: Option<String>,
    /// The manager's list of degraded sessions, which this session's entry is kept in.
    pub health: crate::manager::Degraded,
    /// When the running command's C mark arrived.
    pub command_started: Option<Instant>,
    /// The last command that finished (C then D), for `SessionInfo.last_command`.
    pub last_command: Option<ai_session_protocol::methods::LastCommand>,
}

/// The session's confinement and who hears of its state.
pub(crate) struct Life {
    /// The sandbox the session runs in; it owns the session's cgroup, so it lives as long as
    /// the session.
    pub sandbox: Option<crate::sandbox::Sandboxed>,
    /// Why the program stopped, when a resource limit stopped it.
    pub stop_reason: Option<String>,
    pub state_tx: broadcast::Sender<crate::session::StateChange>,
    /// The state last announced on `state_tx`.
    pub announced: Option<SessionState>,
    /// Told, in the actor's own order, of the session's end.
    pub integrations: crate::integration::Integrations,
    /// Whether the integrations have heard of the end already: `exited` and a later `killed`
    /// of the same session are one end.
    pub end_told: bool,
}

impl Life {
    /// Announces `change` to state listeners and, the first time the session ends, to the
    /// integrations, before the actor does anything else (so a `kill` that returned has queued
    /// its end ahead of whatever the caller does next).
    fn announce(&mut self, change: crate::session::StateChange) {
        if matches!(change.state, "exited" | "killed") && !self.end_told {
            self.end_told = true;
            if !self.integrations.is_empty() {
                self.integrations
                    .fire(crate::integration::IntegrationEvent::SessionTerminated(
                        crate::integration::SessionEnd {
                            killed: change.state == "killed",
                            exit_code: change.exit_code,
                            session: change.session.clone(),
                        },
                    ));
            }
        }
        // No listener is fine: the announcement is for whoever cares.
        self.state_tx.send(change).ok();
    }
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
            if self.out.screen.holds() {
                // An exec was answered from a read whose end is not drawn yet. Its caller was
                // woken on this thread, in the slot no other thread takes a task from: it only
                // goes on (to build the answer's views on another thread) once this task
                // yields, so the drawing waits for that, not the other way round.
                tokio::task::yield_now().await;
                self.draw_held();
            }
            let deadline = self.next_deadline();
            let want_write = !self.pty.input.is_empty() && !self.pty.hung_up;
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Kill { scan, done }) => {
                        self.shutdown(scan).await;
                        // The requester may have gone away; the session is dead either way.
                        done.send(()).ok();
                        return;
                    }
                    Some(Cmd::Detach(reply)) => {
                        if let Some(refused) = self.cannot_hand_over() {
                            reply.send(Err(refused)).ok();
                            continue;
                        }
                        let name = self.id.name.clone();
                        if reply.send(Ok(self.hand_over())).is_err() {
                            tracing::error!(session = %name, "handed over to no one: its terminal is closed");
                        }
                        return;
                    }
                    Some(cmd) => self.handle(cmd),
                    None => {
                        self.shutdown(true).await;
                        return;
                    }
                },
                ready = self.pty.master.readable(), if !self.pty.hung_up => match ready {
                    Ok(()) => self.drain(),
                    Err(e) => {
                        tracing::warn!(session = %self.id.name, "PTY readiness failed: {e}");
                        self.pty.hung_up = true;
                    }
                },
                ready = self.pty.master.writable(), if want_write => {
                    if ready.is_ok() {
                        self.flush_input();
                    }
                },
                status = wait_child(&mut self.pty.child) => {
                    self.pty.child = None;
                    let code = match status {
                        Ok(status) => self.exit_status(status),
                        Err(_) => -1,
                    };
                    self.pty.exit_pending = Some((code, Instant::now() + Duration::from_millis(200)));
                    if self.pty.hung_up {
                        self.finish_exit();
                    }
                },
                () = std::future::ready(()), if self.pty.more_to_read => self.drain(),
                () = sleep_until(deadline), if deadline.is_some() => self.on_timer(),
            }
            self.announce();
        }
    }

    /// Tells state-change listeners when the session's state differs from the last announced.
    fn announce(&mut self) {
        let state = self.tracker.state();
        if self.life.announced == Some(state) {
            return;
        }
        self.life.announced = Some(state);
        let name = match state {
            SessionState::Starting => "starting",
            SessionState::Idle => "idle",
            SessionState::Busy => "busy",
            SessionState::Exited => "exited",
        };
        let exit_code = self.tracker.exit_code();
        let change = crate::session::StateChange {
            session: self.id.name.clone(),
            state: name,
            exit_code,
            stop_reason: self.life.stop_reason.clone(),
        };
        self.life.announce(change);
        self.emit(SessionEvent::State { state, exit_code });
    }

    /// Sends an event to the session's subscribers, if it has any.
    fn emit(&self, event: SessionEvent) {
        if let Some(tx) = &self.out.events {
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
                    .out
                    .events
                    .get_or_insert_with(|| broadcast::channel(1024).0);
                let rx = tx.subscribe();
                let result = SubscribeResult {
                    screen_ansi: self.out.screen.redraw_ansi(),
                    size: self.out.screen.size(),
                    offset: self.out.log.end(),
                };
                reply.send(Ok((result, rx))).ok();
            }
            Cmd::Kill { .. } | Cmd::Detach(_) => {}
        }
        self.carry_out();
    }

    /// Carries out what the tracker asked for, in order, until it asks nothing more.
    fn carry_out(&mut self) {
        while let Some(event) = self.tracker.next_event() {
            match event {
                Event::SecretRead => {
                    if let Some(file) = self.id.mark_file.take() {
                        // The hooks have read the secret: no command may find it on disk.
                        if let Err(e) = std::fs::remove_file(&file) {
                            tracing::warn!(session = %self.id.name, "cannot remove {}: {e}", file.display());
                        }
                    }
                }
                Event::CommandStarted { offset } => {
                    self.out.command_started = Some(Instant::now());
                    self.emit(SessionEvent::CommandStarted { offset });
                }
                Event::CommandFinished { offset, exit_code } => {
                    if let Some(started) = self.out.command_started.take() {
                        self.out.last_command = Some(ai_session_protocol::methods::LastCommand {
                            exit_code,
                            duration_ms: started.elapsed().as_millis() as u64,
                            finished_ms: now_ms(),
                        });
                    }
                    self.emit(SessionEvent::CommandFinished { offset, exit_code });
                }
                Event::Ready => self.start_queued(),
                Event::ExecFinished {
                    exec,
                    exit_code,
                    end,
                    how,
                } => self.answer_finished(exec, exit_code, end, how),
                Event::ExecPartial { exec, status } => self.answer_partial(exec, status),
                Event::Starting { execs, waiting } => self.answer_starting(execs, waiting),
                Event::Busy { exec, why } => self.refuse_busy(exec, &why),
                Event::ExecFailed { reply, error } => {
                    reply.send(Err(error)).ok();
                }
                Event::WaitDone { reply, result } => {
                    reply.send(result).ok();
                }
            }
        }
    }

    // ---- output -------------------------------------------------------------------------

    /// Reads what the PTY has (up to the budget) and processes it.
    fn drain(&mut self) {
        // On the stack of this call, not in the task's state: idle sessions keep no buffer. A
        // PTY read gives at most a few KiB: reads fill the buffer before its bytes go to the
        // log, the screen and the tracker, so a flood costs one log write per buffer, not per
        // read.
        let mut buf = [0u8; 64 * 1024];
        let mut filled = 0;
        self.pty.more_to_read = false;
        let mut total = 0;
        while total < READ_BUDGET {
            match self.pty.master.try_read(&mut buf[filled..]) {
                Ok(ReadOutcome::Data(n)) => {
                    total += n;
                    filled += n;
                    if buf.len() - filled < READ_ROOM {
                        self.process_output(&buf[..filled]);
                        filled = 0;
                        if self.out.screen.holds() {
                            // The loop yields, draws what is held, and comes back to read.
                            self.pty.more_to_read = true;
                            return;
                        }
                    }
                }
                Ok(ReadOutcome::WouldBlock) => {
                    self.process_filled(&buf[..filled]);
                    return;
                }
                Ok(ReadOutcome::HungUp) => {
                    self.process_filled(&buf[..filled]);
                    // The end reads the screen (a regex wait, a partial answer).
                    self.draw_held();
                    self.pty.hung_up = true;
                    if self.pty.exit_pending.is_some() {
                        self.finish_exit();
                    }
                    return;
                }
                Err(e) => {
                    self.process_filled(&buf[..filled]);
                    tracing::warn!(session = %self.id.name, "PTY read failed: {e}");
                    self.pty.hung_up = true;
                    return;
                }
            }
        }
        self.process_filled(&buf[..filled]);
        // Budget spent with data left. Readiness was cleared before reading, so no new edge
        // will come for it: the loop comes back here after serving the command queue.
        self.pty.more_to_read = true;
    }

    /// [`drain`](Self::drain) for a caller that looks at the screen next: what a read held
    /// back is drawn now, and reading goes on where holding it stopped.
    pub(super) fn drain_drawn(&mut self) {
        self.drain();
        while self.out.screen.holds() {
            self.draw_held();
            if self.pty.more_to_read {
                self.drain();
            }
        }
    }

    fn process_filled(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.process_output(data);
        }
    }

    fn process_output(&mut self, data: &[u8]) {
        self.draw_held();
        // The bytes are processed whether or not they reached the disk: a mark in them still
        // finishes its exec, and the screen still shows them.
        let offset = match self.out.log.append(data) {
            Ok(offset) => {
                if self.out.degraded.is_some() {
                    self.log_recovered();
                }
                offset
            }
            Err(lost) => {
                self.log_failed(&lost);
                lost.offset
            }
        };
        // Output of an exec'd command is not interactive: a query found in it (a `cat` of a
        // binary file is full of them) must not type its answer into the shell's next line.
        let exec_output = self.tracker.exec_pending();
        let queued = self.out.screen.queue_plain(data);
        let mut undrawn = Some(&data[queued..]);
        if !exec_output {
            self.draw(undrawn.take(), exec_output);
        }
        let now = Instant::now();
        if let Some(tx) = &self.out.events {
            if tx.receiver_count() > 0 {
                tx.send(SessionEvent::Output {
                    offset,
                    data: Bytes::copy_from_slice(data),
                })
                .ok();
            } else {
                self.out.events = None;
            }
        }
        let (pty, id) = (&self.pty, &self.id);
        let kind = self.tracker.kind();
        let mut holds = || foreground(pty, id, kind).is_some();
        self.tracker.on_output(data, offset, now, &mut holds);
        if self.tracker.has_regex_waiters() {
            self.check_regex(now);
        }
        // A command's output ends with its D mark and the prompt, escapes that make the
        // emulator draw the flood's last screen and scrollback first (10,000 lines): a finished
        // exec is answered before that when nothing else waiting looks at the screen.
        if !self.tracker.events_skip_screen() {
            self.draw(undrawn.take(), exec_output);
        }
        let answers = undrawn.is_some() && self.tracker.answers_exec();
        self.carry_out();
        match undrawn {
            // The exec's caller goes on before the drawing (see `run`). Output of an exec, so
            // its replies are dropped when drawn, as here.
            Some(rest) if answers && exec_output && !rest.is_empty() => {
                self.out.screen.hold(rest);
            }
            rest => self.draw(rest, exec_output),
        }
    }

    /// Draws what [`process_output`](Self::process_output) held back for after an exec's
    /// answer: output of that exec, whose queries are not answered.
    fn draw_held(&mut self) {
        if self.out.screen.holds() {
            let rest = self.out.screen.take_held();
            self.draw(Some(&rest), true);
        }
    }

    /// Gives the emulator the output that [`crate::screen::Screen::queue_plain`] left
    /// (`None`: already given), and types its answers to queries unless it is an exec's.
    fn draw(&mut self, rest: Option<&[u8]>, exec_output: bool) {
        let Some(rest) = rest else { return };
        self.out.screen.feed_unqueued(rest);
        let replies = self.out.screen.take_replies();
        if !replies.is_empty() && !exec_output {
            if self.pty.input.len() + replies.len() <= MAX_PENDING_REPLIES {
                self.pty.input.extend(replies);
            }
            self.flush_input();
        }
    }

    /// A write to the output log failed (a full or failing disk): the session is degraded
    /// until a write succeeds again. Said once per outage, not per lost chunk.
    fn log_failed(&mut self, lost: &crate::log::Lost) {
        if self.out.degraded.is_some() {
            return;
        }
        let reason = format!(
            "the output log cannot be written ({}); output from log offset {} on is lost until a write succeeds",
            lost.error, lost.range.start
        );
        tracing::error!(session = %self.id.name, "{reason}");
        self.set_health(Some(reason));
    }

    fn log_recovered(&mut self) {
        tracing::info!(session = %self.id.name, "the output log is written again");
        self.set_health(None);
    }

    fn set_health(&mut self, reason: Option<String>) {
        let mut map = self.out.health.lock().unwrap_or_else(|p| p.into_inner());
        match &reason {
            Some(r) => map.insert(self.id.name.clone(), r.clone()),
            None => map.remove(&self.id.name),
        };
        drop(map);
        self.out.degraded = reason;
    }

    // ---- input --------------------------------------------------------------------------

    fn encode_keys(&self, keys: &[String], literal: bool, paste: bool) -> Vec<u8> {
        let modes = KeyModes {
            app_cursor: self.out.screen.app_cursor(),
        };
        let mut out = Vec::new();
        let bracket = paste && self.out.screen.bracketed_paste();
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
        if self.tracker.state() == SessionState::Exited || self.pty.hung_up {
            return Err(Error::Exited {
                name: self.id.name.clone(),
                code: self.tracker.exit_code(),
            });
        }
        self.unwedge_for_interrupt(data);
        let offset = self.tracker.keys_typed();
        self.pty.input.extend(data);
        self.flush_input();
        Ok(SendResult {
            bytes: data.len(),
            offset,
        })
    }

    fn flush_input(&mut self) {
        while !self.pty.input.is_empty() {
            let (front, _) = self.pty.input.as_slices();
            match self.pty.master.try_write(front) {
                Ok(0) => return, // the terminal's input queue is full: wait for writability
                Ok(n) => {
                    self.pty.input.drain(..n);
                }
                Err(e) => {
                    tracing::warn!(session = %self.id.name, "PTY write failed: {e}");
                    self.pty.input.clear();
                    return;
                }
            }
        }
    }

    // ---- queries ------------------------------------------------------------------------

    fn read(&self, params: &ReadParams) -> Result<ReadResult> {
        let max = params.max_bytes.unwrap_or(DEFAULT_READ).clamp(1, MAX_READ);
        let since = params.since.unwrap_or(self.out.log.start());
        if since > self.out.log.end() {
            return Err(Error::InvalidParams(format!(
                "offset {since} is beyond the end of the log ({}); use an offset from a previous result",
                self.out.log.end()
            )));
        }
        let chunk = self.out.log.read(since, max)?;
        let (data, data_b64, used) = if params.encoding == ReadEncoding::Base64 {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD;
            (
                String::new(),
                Some(b64.encode(&chunk.data)),
                chunk.data.len(),
            )
        } else {
            let used = text::complete_utf8_len(&chunk.data);
            let bytes = &chunk.data[..used];
            let data = if params.raw {
                String::from_utf8_lossy(bytes).into_owned()
            } else {
                text::clean(bytes)
            };
            (data, None, used)
        };
        let end = chunk.start + used as u64;
        Ok(ReadResult {
            data,
            data_b64,
            start: chunk.start,
            end,
            dropped: chunk.start.saturating_sub(since),
            more: end < self.out.log.end() && used > 0,
        })
    }

    fn capture(&mut self, params: &CaptureParams) -> CaptureResult {
        let r = self.out.screen.render(params.scrollback, params.ansi);
        CaptureResult {
            lines: r.lines,
            size: self.out.screen.size(),
            cursor_row: r.cursor_row,
            cursor_col: r.cursor_col,
            alternate_screen: self.out.screen.alternate_screen(),
            title: self.out.screen.title(),
            scrollback_lines: r.scrollback_lines,
        }
    }

    fn resize(&mut self, size: Size) -> Result<()> {
        crate::check_size(size)?;
        self.pty.master.resize(size)?;
        self.out.screen.resize(size);
        Ok(())
    }

    fn foreground(&self) -> Option<Foreground> {
        if self.tracker.state() == SessionState::Exited {
            return None;
        }
        foreground(&self.pty, &self.id, self.tracker.kind())
    }

    fn info(&self) -> SessionInfo {
        SessionInfo {
            id: self.id.sid.clone(),
            name: self.id.name.clone(),
            pid: self.id.shell_pid,
            program: self.id.argv.clone(),
            cwd: self.current_dir().unwrap_or_else(|| self.id.cwd.clone()),
            size: self.out.screen.size(),
            state: self.tracker.state(),
            exit_code: self.tracker.exit_code(),
            integration: self.tracker.integration(),
            created_ms: self.id.created_ms,
            log_end: self.out.log.end(),
            log_start: self.out.log.start(),
            foreground: self.foreground(),
            sandbox: self.life.sandbox.as_ref().map(crate::sandbox::info),
            stop_reason: self.life.stop_reason.clone(),
            restored: self.id.restored,
            degraded: self.out.degraded.clone(),
            last_command: self.out.last_command,
            node: None,
            checkpoint_ms: None,
        }
    }

    /// The shell's working directory now (a `cd` typed by anyone moves it), while it runs.
    fn current_dir(&self) -> Option<String> {
        if self.tracker.state() == SessionState::Exited {
            return None;
        }
        std::fs::read_link(format!("/proc/{}/cwd", self.id.shell_pid))
            .ok()
            .map(|d| d.to_string_lossy().into_owned())
    }

    // ---- time ---------------------------------------------------------------------------

    fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.tracker.next_deadline();
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if self.may_hibernate() {
            consider(self.tracker.last_output() + HIBERNATE_AFTER);
        }
        if let Some((_, t)) = self.pty.exit_pending {
            consider(t);
        }
        next
    }

    /// An awake screen nobody watches, not on the alternate screen, can sleep.
    fn may_hibernate(&self) -> bool {
        let screen = &self.out.screen;
        !screen.is_dormant() && self.out.events.is_none() && !screen.alternate_screen()
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if self.may_hibernate()
            && now >= self.tracker.last_output() + HIBERNATE_AFTER
            && self.out.screen.hibernate()
        {
            self.out.log.release();
            crate::memory::freed();
        }
        if self.pty.exit_pending.is_some_and(|(_, t)| now >= t) {
            self.finish_exit();
        }
        self.tracker.expire_exec(now);
        self.carry_out();
        self.check_input(now);
        self.tracker.expire_queue(now);
        let (pty, id) = (&self.pty, &self.id);
        let kind = self.tracker.kind();
        let mut shell_holds = || foreground(pty, id, kind).is_none();
        self.tracker.expire_waiters(now, &mut shell_holds);
        self.carry_out();
    }

    // ---- exit and kill ------------------------------------------------------------------

    /// The shell convention for how the program ended (its code, or 128 + the signal), and
    /// the limit that stopped it, if one did.
    fn exit_status(&mut self, status: std::process::ExitStatus) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sandbox) = &self.life.sandbox {
            let reason = sandbox.prepared.stop_reason(status);
            if reason.is_limit() {
                tracing::warn!(session = %self.id.name, "{}", reason.describe());
                self.life.stop_reason = Some(reason.describe());
            }
        }
        status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1)
    }

    fn finish_exit(&mut self) {
        let Some((code, _)) = self.pty.exit_pending.take() else {
            return;
        };
        self.tracker.exited(code);
        self.carry_out();
        self.check_regex(Instant::now());
        self.carry_out();
        self.emit(SessionEvent::Closed {
            exit_code: Some(code),
        });
        tracing::info!(session = %self.id.name, code, "program exited");
    }

    /// Kills every process of the session, reaps the shell and removes the session's files.
    /// With `scan` false the caller (daemon shutdown) has already signalled the session's
    /// members from one scan of /proc for all sessions, and scans once more afterwards.
    async fn shutdown(&mut self, scan: bool) {
        use rustix::process::Signal;
        let pid = self.id.pid;
        if let Some(mut child) = self.pty.child.take() {
            // The shell leads its own process group; the foreground job may have another.
            crate::pty::signal_group(pid, Signal::HUP);
            if let Some(fg) = self.pty.master.foreground_pgrp().filter(|fg| *fg != pid) {
                crate::pty::signal_group(fg, Signal::HUP);
                crate::pty::signal_group(fg, Signal::CONT);
            }
            if tokio::time::timeout(Duration::from_millis(300), child.wait())
                .await
                .is_err()
            {
                crate::pty::signal_group(pid, Signal::KILL);
                if let Err(e) = child.wait().await {
                    tracing::warn!(session = %self.id.name, "reaping the shell failed: {e}");
                }
            }
        }
        if scan {
            // Jobs in other process groups, and any that ignore SIGHUP.
            crate::pty::signal_session(pid, Signal::KILL);
        }
        let killed = || Error::Killed(self.id.name.clone());
        let (exec, queue, waiters) = self.tracker.take_all();
        if let Some(p) = exec {
            p.cleanup();
            p.reply.send(Err(killed())).ok();
        }
        for q in queue {
            q.reply.send(Err(killed())).ok();
        }
        for w in waiters {
            w.reply.send(Err(killed())).ok();
        }
        self.emit(SessionEvent::Closed {
            exit_code: self.tracker.exit_code(),
        });
        let change = crate::session::StateChange {
            session: self.id.name.clone(),
            state: "killed",
            exit_code: self.tracker.exit_code(),
            stop_reason: None,
        };
        self.life.announce(change);
        self.set_health(None);
        if let Err(e) = std::fs::remove_dir_all(&self.id.dir) {
            tracing::warn!(session = %self.id.name, "cannot remove {}: {e}", self.id.dir.display());
        }
        tracing::info!(session = %self.id.name, "killed");
    }
}

/// The process group holding the terminal when it is not the shell's.
fn foreground(pty: &Pty, id: &Identity, kind: crate::shell::ShellKind) -> Option<Foreground> {
    let pgrp = pty.master.foreground_pgrp()?;
    if (pgrp == id.pid || pgrp == id.shell_pid) && kind.is_posix() {
        return None; // the shell itself (or, before it takes the terminal, its keeper)
    }
    Some(Foreground {
        pid: pgrp,
        command: crate::pty::process_name(pgrp).unwrap_or_default(),
    })
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
