//! A session actor letting go of its session for `daemon upgrade`, and one rebuilt from what
//! another daemon let go of: the program, its terminal and its log carry on untouched.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Actor, Identity, Life, Output, Pty};
use crate::error::{Error, Result};
use crate::handover::{Carried, Handover, Reaped};
use crate::log::OutputLog;
use crate::pty::{Master, Process};
use crate::screen::Screen;
use crate::tracker::CommandTracker;

/// What an adopted actor is attached to in its new daemon.
pub(crate) struct Attach {
    pub reaped: Reaped,
    pub health: crate::manager::Degraded,
    pub state_tx: tokio::sync::broadcast::Sender<crate::session::StateChange>,
    pub integrations: crate::integration::Integrations,
}

impl Actor {
    /// Why this session cannot be handed over, if it cannot (checked before the actor lets go).
    pub(super) fn cannot_hand_over(&self) -> Option<Error> {
        if self.life.sandbox.is_some() {
            return Some(Error::Unsupported(format!(
                "session '{}' is sandboxed: its cgroup and pid namespace keeper cannot be handed over",
                self.id.name
            )));
        }
        if self.out.log.is_sealed() {
            return Some(Error::Unsupported(format!(
                "session '{}' has a sealed output log (the store is encrypted): its key lives only in this daemon",
                self.id.name
            )));
        }
        None
    }

    /// Stops serving the session and returns its descriptors and state. Output the terminal
    /// holds now is read into the log first; requests still waiting are answered
    /// [`Error::HandedOver`] (their commands keep running). [`Actor::cannot_hand_over`] was
    /// asked first.
    pub(super) fn hand_over(mut self) -> Handover {
        if !self.pty.hung_up {
            self.drain_drawn();
        }
        let over = || Error::HandedOver(self.id.name.clone());
        let (exec, queue, waiters) = self.tracker.take_all();
        if let Some(p) = exec {
            // Its command file stays: the shell may still be reading it.
            p.reply.send(Err(over())).ok();
        }
        for q in queue {
            q.reply.send(Err(over())).ok();
        }
        for w in waiters {
            w.reply.send(Err(over())).ok();
        }
        let mut screen = self.out.screen.replay_bytes();
        if let Some(title) = self.out.screen.title() {
            screen.extend_from_slice(format!("\x1b]0;{title}\x07").as_bytes());
        }
        let tracker = self.tracker.export();
        let log = self.out.log.hand_over();
        let (master, baseline) = self.pty.master.into_parts();
        let (pidfd, reported) = match self.pty.child {
            Some(child) => {
                let reported = child.take_reported();
                (Some(child.into_pidfd()), reported)
            }
            None => (None, None),
        };
        let state = Carried {
            id: self.id.sid,
            name: self.id.name,
            pid: self.id.pid,
            shell_pid: self.id.shell_pid,
            argv: self.id.argv,
            cwd: self.id.cwd,
            dir: self.id.dir,
            created_ms: self.id.created_ms,
            restored: self.id.restored,
            mark_file: self.id.mark_file,
            size: self.out.screen.size(),
            baseline,
            log,
            screen,
            tracker,
            input: self.pty.input.into_iter().collect(),
            hung_up: self.pty.hung_up,
            exit_pending: self.pty.exit_pending.map(|(code, _)| code),
            stop_reason: self.life.stop_reason,
            degraded: self.out.degraded,
            last_command: self.out.last_command,
            command_ms: self
                .out
                .command_started
                .map(|t| t.elapsed().as_millis() as u64),
            reported,
        };
        Handover {
            state,
            master,
            pidfd,
        }
    }

    /// An actor for a session another daemon handed over.
    pub(crate) fn adopt(h: Handover, scrollback: usize, attach: Attach) -> Result<Self> {
        let s = h.state;
        let now = Instant::now();
        let master = Master::adopt(h.master, s.baseline)?;
        if let Some(raw) = s.reported {
            attach.reaped.report(s.pid, raw);
        }
        let child = match h.pidfd {
            Some(fd) => Some(Process::adopt(s.pid, s.shell_pid, fd, attach.reaped)?),
            None => None,
        };
        let mut screen = Screen::new(s.size, scrollback);
        screen.feed(&s.screen);
        // Answers to queries in the replayed bytes were given long ago.
        screen.take_replies();
        if let Some(reason) = &s.degraded {
            let mut map = attach.health.lock().unwrap_or_else(|p| p.into_inner());
            map.insert(s.name.clone(), reason.clone());
        }
        Ok(Actor {
            id: Identity {
                sid: s.id,
                name: s.name,
                pid: s.pid,
                shell_pid: s.shell_pid,
                argv: s.argv,
                cwd: s.cwd,
                dir: s.dir,
                created_ms: s.created_ms,
                restored: s.restored,
                mark_file: s.mark_file,
            },
            pty: Pty {
                master,
                child,
                input: VecDeque::from(s.input),
                hung_up: s.hung_up,
                // Nothing read yet: whatever arrived during the handover is read at once.
                more_to_read: !s.hung_up,
                exit_pending: s
                    .exit_pending
                    .map(|code| (code, now + Duration::from_millis(200))),
            },
            out: Output {
                log: OutputLog::resume(s.log),
                screen,
                events: None,
                degraded: s.degraded,
                health: attach.health,
                command_started: s
                    .command_ms
                    .map(|ms| now.checked_sub(Duration::from_millis(ms)).unwrap_or(now)),
                last_command: s.last_command,
            },
            life: Life {
                sandbox: None,
                stop_reason: s.stop_reason,
                state_tx: attach.state_tx,
                announced: None,
                integrations: attach.integrations,
                end_told: false,
            },
            tracker: CommandTracker::resume(s.tracker, now),
        })
    }
}
