//! Execs: queueing them until the prompt, typing them, and answering early (still running,
//! timed out, waiting for input, still starting).

use super::{Actor, MAX_QUEUED};
use crate::error::{Error, Result};
use crate::exec::{self, Pending, Queued};
use crate::session::Reply;
use crate::shell::ShellKind;
use ai_session_protocol::methods::{ExecParams, ExecStatus, Integration, SessionState};

impl Actor {
    pub(super) fn on_exec(&mut self, params: ExecParams, reply: Reply<crate::ExecResult>) {
        if let Err(e) = self.check_exec(&params) {
            reply.send(Err(e)).ok();
            return;
        }
        let queued = Queued::new(params, reply);
        let busy = if self.exec.is_none() && self.queue.is_empty() && self.ready() {
            self.start_exec(queued);
            return;
        } else if self.running && self.exec.is_none() {
            self.busy_detail()
        } else if self.queue.len() >= MAX_QUEUED {
            format!("{} execs already queued", self.queue.len())
        } else {
            self.queue.push_back(queued);
            return;
        };
        let name = self.name.clone();
        queued
            .reply
            .send(Err(Error::Busy { name, detail: busy }))
            .ok();
    }

    pub(super) fn check_exec(&self, params: &ExecParams) -> Result<()> {
        if self.state == SessionState::Exited {
            return Err(Error::Exited {
                name: self.name.clone(),
                code: self.exit_code,
            });
        }
        if self.integration == Integration::None {
            return Err(Error::Unsupported(format!(
                "session '{}' runs '{}', not a shell: drive it with `send` and `wait`",
                self.name,
                self.argv.join(" ")
            )));
        }
        if params.command.trim().is_empty() {
            return Err(Error::InvalidParams("the command is empty".into()));
        }
        Ok(())
    }

    pub(super) fn ready(&self) -> bool {
        self.state == SessionState::Idle && self.at_prompt && !self.running
    }

    pub(super) fn start_queued(&mut self) {
        while self.exec.is_none() && self.ready() {
            let Some(next) = self.queue.pop_front() else {
                return;
            };
            if next.reply.is_closed() {
                continue; // the client went away while queued
            }
            self.start_exec(next);
        }
    }

    pub(super) fn start_exec(&mut self, queued: Queued) {
        self.cmd_seq += 1;
        let prepared = exec::prepare(
            &queued.params.command,
            self.integration,
            &self.dir,
            self.cmd_seq,
            self.log.is_sealed(),
        );
        let line = match prepared {
            Ok(p) => p,
            Err(e) => {
                queued.reply.send(Err(e.into())).ok();
                return;
            }
        };
        let input_offset = self.log.end();
        self.prepare_line();
        self.input.extend(line.text.as_bytes());
        self.input.push_back(b'\r');
        self.last_input = input_offset;
        self.at_prompt = false;
        self.running = true;
        self.state = SessionState::Busy;
        self.exec = Some(Pending::new(queued, line, input_offset));
        self.input_checked = None;
        self.flush_input();
    }

    /// Makes the shell's command line ready for a typed command. A program that left the
    /// terminal raw (`stty raw -echo`, a crashed full-screen program) gets the line discipline
    /// back, as `sh` reads its lines through it (bash and zsh have their own line editors).
    /// Text that `send` left on the line is erased, so that it does not run as part of the
    /// command.
    fn prepare_line(&mut self) {
        if self.kind == ShellKind::Sh {
            self.restore_line_discipline();
        }
        if !std::mem::take(&mut self.line_dirty) {
            return;
        }
        match self.kind {
            // C-e C-u: end of line, then kill back to its start (emacs keys, the default in
            // readline and zle).
            ShellKind::Bash | ShellKind::Zsh => self.input.extend(b"\x05\x15"),
            // The terminal's line-kill character, which the canonical line discipline (and
            // the line editors of other shells) honour.
            ShellKind::Sh | ShellKind::OtherPosix => {
                let (_, kill) = self.master.intr_and_kill();
                self.input.push_back(kill);
            }
            ShellKind::NotShell => {}
        }
    }

    /// Puts back a sane line discipline; true when the terminal needed it.
    pub(super) fn restore_line_discipline(&self) -> bool {
        match self.master.restore_line_discipline() {
            Ok(changed) => {
                if changed {
                    tracing::info!(session = %self.name, "the terminal was left raw; restored its line discipline");
                }
                changed
            }
            Err(e) => {
                tracing::warn!(session = %self.name, "cannot restore the terminal's modes: {e}");
                false
            }
        }
    }

    /// A `^C` sent to `sh` reading in a raw terminal would be read as a character: the line
    /// discipline is put back first, so that it interrupts and the prompt comes back.
    pub(super) fn unwedge_for_interrupt(&self, data: &[u8]) {
        if self.kind != ShellKind::Sh {
            return;
        }
        let (intr, _) = self.master.intr_and_kill();
        if data.contains(&intr) && self.foreground().is_none() {
            self.restore_line_discipline();
        }
    }

    /// `wait --prompt` on `sh` whose input line can never end (read in a raw terminal, Enter
    /// sends a CR that only a sane line discipline turns into the newline sh waits for): the
    /// discipline is put back and the half-read line interrupted, so the prompt comes back.
    pub(super) fn unwedge_for_prompt(&mut self) {
        let typed_since_prompt = self.last_input >= self.last_prompt;
        if self.kind != ShellKind::Sh || !typed_since_prompt || self.foreground().is_some() {
            return;
        }
        if self.restore_line_discipline() {
            let (intr, _) = self.master.intr_and_kill();
            self.input.push_back(intr);
            self.flush_input();
        }
    }

    /// Answers the pending exec early with what it has printed so far.
    pub(super) fn exec_partial(&mut self, status: ExecStatus) {
        let Some(p) = self.exec.take() else { return };
        let foreground = self.foreground();
        let mut result = exec::partial(&p, &self.log, status, self.integration);
        let what = foreground
            .as_ref()
            .map(|f| format!("'{}' (pid {})", f.command, f.pid))
            .unwrap_or_else(|| "the command".into());
        let n = self.name.clone();
        result.hint = Some(if status == ExecStatus::WaitingForInput {
            let (screen, prompt) = self.screen_tail();
            let asks = prompt
                .as_deref()
                .map(|p| format!(" ('{}')", p.trim_end()))
                .unwrap_or_default();
            result.screen = Some(screen);
            result.prompt = prompt;
            format!(
                "{what} is waiting for input{asks}; `ai-session send -t {n} 'TEXT' Enter` answers it, then `ai-session wait -t {n} --prompt` waits for the command to finish; `ai-session send -t {n} C-c` interrupts it"
            )
        } else {
            format!(
                "{what} is still running; `ai-session wait -t {n} --prompt` waits for it, `ai-session read -t {n} --since {}` follows its output, `ai-session send -t {n} C-c` interrupts it",
                result.output_end
            )
        });
        result.foreground = foreground;
        p.reply.send(Ok(result)).ok();
        // The command's file stays until the shell reports the command finished.
        self.running = true;
    }

    /// Answers the pending exec whose line the shell read without starting a command (see
    /// `ran_nothing`). No command ran, so no exit code is claimed: the D the shell printed may
    /// report an earlier command.
    pub(super) fn finish_unstarted(&mut self) {
        let Some(p) = self.exec.take() else { return };
        let end = if self.last_d > p.input_offset {
            self.last_d
        } else {
            self.log.end()
        };
        let mut result = exec::finish(&p, &self.log, None, end, self.integration);
        result.hint = Some(
            "the shell started no command for this line (a comment, or a line it could not parse: see `output`) and is back at its prompt; no exit code was reported".into(),
        );
        p.cleanup();
        p.reply.send(Ok(result)).ok();
        self.running = false;
        self.start_queued();
    }

    /// Answers `queued` (execs never typed) while the shell is still starting: what it printed
    /// so far and, when its startup is `waiting` for input, the screen that asks.
    pub(super) fn answer_starting(&mut self, queued: Vec<Queued>, waiting: bool) {
        if queued.is_empty() {
            return;
        }
        let (screen, _) = self.screen_tail();
        let n = self.name.clone();
        let secs = self.created.elapsed().as_secs_f64();
        let hint = if waiting {
            format!(
                "the shell's startup is waiting for input (see `screen`): a startup file asks a question, or started a program without ai-session's hooks, so the command was not run; answer with `ai-session send -t {n} 'TEXT' Enter` and run the command again, or `ai-session kill -t {n}`"
            )
        } else {
            format!(
                "the shell has not shown its first prompt after {secs:.1} s (its startup files are still running), so the command was not run; `ai-session wait -t {n} --prompt` waits for the prompt, `ai-session capture -t {n}` shows the screen; then run the command again"
            )
        };
        for q in queued {
            let mut result =
                exec::starting(&self.log, self.startup_offset, q.arrived, self.integration);
            result.hint = Some(hint.clone());
            result.screen = Some(screen.clone());
            result.foreground = self.foreground();
            q.reply.send(Ok(result)).ok();
        }
    }

    pub(super) fn busy_detail(&self) -> String {
        match self.foreground() {
            Some(f) => format!("'{}' (pid {}) is running", f.command, f.pid),
            None => "a command is running".into(),
        }
    }
}
