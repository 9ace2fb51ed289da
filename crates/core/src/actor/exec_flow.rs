//! Execs, the I/O side: typing them when the tracker says the shell is ready, and building
//! their answers from the log (finished, still running, timed out, waiting for input, still
//! starting, refused as busy).

use std::time::Instant;

use super::Actor;
use crate::error::{Error, Result};
use crate::exec::{self, Pending, Queued};
use crate::session::Reply;
use crate::shell::ShellKind;
use crate::tracker::{Busy, Finished};
use ai_session_protocol::hint::Advice;
use ai_session_protocol::methods::{ExecParams, ExecResult, ExecStatus, Integration, SessionState};
use serde_json::{Value, json};

impl Actor {
    pub(super) fn on_exec(&mut self, params: ExecParams, reply: Reply<crate::ExecResult>) {
        if let Err(e) = self.check_exec(&params) {
            reply.send(Err(e)).ok();
            return;
        }
        let queued = Queued::new(params, reply, Instant::now());
        if let Some(now) = self.tracker.exec(queued) {
            self.start_exec(now);
        }
    }

    pub(super) fn check_exec(&self, params: &ExecParams) -> Result<()> {
        if self.tracker.state() == SessionState::Exited {
            return Err(Error::Exited {
                name: self.id.name.clone(),
                code: self.tracker.exit_code(),
            });
        }
        if self.tracker.integration() == Integration::None {
            return Err(Error::Unsupported(format!(
                "session '{}' runs '{}', not a shell: drive it with `send` and `wait`",
                self.id.name,
                self.id.argv.join(" ")
            )));
        }
        if params.command.trim().is_empty() {
            return Err(Error::InvalidParams("the command is empty".into()));
        }
        Ok(())
    }

    /// Types queued execs while the shell is ready for them.
    pub(super) fn start_queued(&mut self) {
        while let Some(next) = self.tracker.next_exec() {
            self.start_exec(next);
        }
    }

    pub(super) fn start_exec(&mut self, queued: Queued) {
        // Checked by `SessionHandle::exec` before it got here.
        let stdin = match queued.params.stdin_b64.as_deref().map(exec::decode_stdin) {
            Some(Err(e)) => {
                queued.reply.send(Err(e)).ok();
                return;
            }
            Some(Ok(bytes)) => Some(bytes),
            None => None,
        };
        let prepared = exec::prepare(
            &queued.params.command,
            stdin.as_deref(),
            self.tracker.integration(),
            &self.id.dir,
            self.tracker.next_seq(),
            self.out.log.is_sealed(),
        );
        let line = match prepared {
            Ok(p) => p,
            Err(e) => {
                queued.reply.send(Err(e.into())).ok();
                return;
            }
        };
        let input_offset = self.out.log.end();
        self.prepare_line();
        self.pty.input.extend(line.text.as_bytes());
        self.pty.input.push_back(b'\r');
        self.tracker
            .typed(queued, line, input_offset, Instant::now());
        // An output longer than the log keeps still has its problems in the answer.
        self.out.log.watch_from(input_offset, 1);
        self.flush_input();
    }

    /// Makes the shell's command line ready for a typed command. A program that left the
    /// terminal raw (`stty raw -echo`, a crashed full-screen program) gets the line discipline
    /// back, as `sh` reads its lines through it (bash and zsh have their own line editors).
    /// Text that `send` left on the line is erased, so that it does not run as part of the
    /// command.
    fn prepare_line(&mut self) {
        let kind = self.tracker.kind();
        if kind == ShellKind::Sh {
            self.restore_line_discipline();
        }
        if !self.tracker.take_line_dirty() {
            return;
        }
        match kind {
            // C-e C-u: end of line, then kill back to its start (emacs keys, the default in
            // readline and zle).
            ShellKind::Bash | ShellKind::Zsh => self.pty.input.extend(b"\x05\x15"),
            // The terminal's line-kill character, which the canonical line discipline (and
            // the line editors of other shells) honour.
            ShellKind::Sh | ShellKind::OtherPosix => {
                let (_, kill) = self.pty.master.intr_and_kill();
                self.pty.input.push_back(kill);
            }
            ShellKind::NotShell => {}
        }
    }

    /// Puts back a sane line discipline; true when the terminal needed it.
    pub(super) fn restore_line_discipline(&self) -> bool {
        match self.pty.master.restore_line_discipline() {
            Ok(changed) => {
                if changed {
                    tracing::info!(session = %self.id.name, "the terminal was left raw; restored its line discipline");
                }
                changed
            }
            Err(e) => {
                tracing::warn!(session = %self.id.name, "cannot restore the terminal's modes: {e}");
                false
            }
        }
    }

    /// A `^C` sent to `sh` reading in a raw terminal would be read as a character: the line
    /// discipline is put back first, so that it interrupts and the prompt comes back.
    pub(super) fn unwedge_for_interrupt(&self, data: &[u8]) {
        if self.tracker.kind() != ShellKind::Sh {
            return;
        }
        let (intr, _) = self.pty.master.intr_and_kill();
        if data.contains(&intr) && self.foreground().is_none() {
            self.restore_line_discipline();
        }
    }

    /// `wait --prompt` on `sh` whose input line can never end (read in a raw terminal, Enter
    /// sends a CR that only a sane line discipline turns into the newline sh waits for): the
    /// discipline is put back and the half-read line interrupted, so the prompt comes back.
    pub(super) fn unwedge_for_prompt(&mut self) {
        if self.tracker.kind() != ShellKind::Sh
            || !self.tracker.typed_since_prompt()
            || self.foreground().is_some()
        {
            return;
        }
        if self.restore_line_discipline() {
            let (intr, _) = self.pty.master.intr_and_kill();
            self.pty.input.push_back(intr);
            self.flush_input();
        }
    }

    /// Answers an exec that is over, with its output up to `end`.
    pub(super) fn answer_finished(
        &mut self,
        p: Pending,
        code: Option<i32>,
        end: u64,
        how: Finished,
    ) {
        let via = self.tracker.integration();
        let mut result = exec::finish(&p, &mut self.out.log, code, end, via);
        match how {
            // The shell is at its prompt: its directory is where the next command will run.
            Finished::Marked => {
                result.cwd = std::fs::read_link(format!("/proc/{}/cwd", self.id.shell_pid))
                    .ok()
                    .map(|d| d.to_string_lossy().into_owned());
            }
            Finished::Unstarted => {
                result.hint = Some(
                    "the shell started no command for this line (a comment, or a line it could not parse: see `output`) and is back at its prompt; no exit code was reported".into(),
                );
            }
            Finished::ProgramExited => {}
        }
        p.cleanup();
        p.reply.send(Ok(result)).ok();
    }

    /// Answers an exec early with what it has printed so far; the command goes on.
    pub(super) fn answer_partial(&mut self, p: Pending, status: ExecStatus) {
        let foreground = self.foreground();
        let via = self.tracker.integration();
        // The command runs with its input open already: the file can go.
        p.cleanup_input();
        let mut result = exec::partial(&p, &mut self.out.log, status, via);
        let what = foreground
            .as_ref()
            .map(|f| format!("'{}' (pid {})", f.command, f.pid))
            .unwrap_or_else(|| "the command".into());
        let n = self.id.name.clone();
        let advice = if status == ExecStatus::WaitingForInput {
            let (screen, prompt) = self.screen_tail();
            let asks = prompt
                .as_deref()
                .map(|p| format!(" ('{}')", p.trim_end()))
                .unwrap_or_default();
            result.screen = Some(screen);
            result.prompt = prompt;
            Advice::new(format!(
                "{what} is waiting for input{asks}; {{0}} answers it, then {{1}} waits for the command to finish; {{2}} interrupts it"
            ))
            .call("session.send", json!({"target": n, "keys": ["TEXT", "Enter"]}))
            .call("session.wait", prompt_wait(&n))
            .call("session.send", json!({"target": n, "keys": ["C-c"]}))
        } else {
            Advice::new(format!(
                "{what} is still running; {{0}} waits for it, {{1}} follows its output, {{2}} interrupts it"
            ))
            .call("session.wait", prompt_wait(&n))
            .call("session.read", json!({"target": n, "since": result.output_end}))
            .call("session.send", json!({"target": n, "keys": ["C-c"]}))
        };
        advise(&mut result, advice);
        result.foreground = foreground;
        p.reply.send(Ok(result)).ok();
    }

    /// Answers `queued` (execs never typed) while the shell is still starting: what it printed
    /// so far and, when its startup is `waiting` for input, the screen that asks.
    pub(super) fn answer_starting(&mut self, queued: Vec<Queued>, waiting: bool) {
        if queued.is_empty() {
            return;
        }
        let (screen, _) = self.screen_tail();
        let n = self.id.name.clone();
        let secs = self.tracker.created().elapsed().as_secs_f64();
        let advice = if waiting {
            Advice::new(
                "the shell's startup is waiting for input (see `screen`): a startup file asks a question, or started a program without ai-session's hooks, so the command was not run; answer with {0} and run the command again, or kill the session ({1})",
            )
            .call("session.send", json!({"target": n, "keys": ["TEXT", "Enter"]}))
            .call("session.kill", json!({ "target": n }))
        } else {
            Advice::new(format!(
                "the shell has not shown its first prompt after {secs:.1} s (its startup files are still running), so the command was not run; {{0}} waits for the prompt, {{1}} shows the screen; then run the command again"
            ))
            .call("session.wait", prompt_wait(&n))
            .call("session.capture", json!({ "target": n }))
        };
        let (via, from) = (self.tracker.integration(), self.tracker.startup_offset());
        for q in queued {
            let mut result = exec::starting(&self.out.log, from, q.arrived, via);
            advise(&mut result, advice.clone());
            result.screen = Some(screen.clone());
            result.foreground = self.foreground();
            q.reply.send(Ok(result)).ok();
        }
    }

    /// Refuses an exec the busy session cannot take.
    pub(super) fn refuse_busy(&mut self, q: Queued, why: &Busy) {
        let name = self.id.name.clone();
        let detail = match why {
            Busy::Running => self.busy_detail(),
            Busy::QueueFull(queued) => {
                let queued = *queued;
                q.reply.send(Err(Error::QueueFull { name, queued })).ok();
                return;
            }
            Busy::TimedOut => format!(
                "still busy when the exec's timeout ran out; {}",
                self.busy_detail()
            ),
        };
        q.reply.send(Err(Error::Busy { name, detail })).ok();
    }

    fn busy_detail(&self) -> String {
        match self.foreground() {
            Some(f) => format!("'{}' (pid {}) is running", f.command, f.pid),
            None => "a command is running".into(),
        }
    }
}

/// Sets an exec result's hint: phrased for the CLI in `hint`, unphrased in `advice` for the
/// front ends that phrase it their own way.
fn advise(result: &mut ExecResult, advice: Advice) {
    result.hint = Some(advice.render(&ai_session_protocol::hint::Cli::default()));
    result.advice = Some(advice);
}

/// The params of a wait for `name`'s prompt.
fn prompt_wait(name: &str) -> Value {
    json!({"target": name, "condition": {"kind": "prompt"}})
}
