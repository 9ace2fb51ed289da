//! The tracker replayed against PTY output recorded from real bash, zsh and sh sessions with
//! ai-session's hooks (`tests/tracker/record.sh`): each recording holds execs that finish with
//! codes 0, 1 and 3 (the last one printing a forged D mark with a wrong secret), a nested
//! interactive shell answered with keys (it exits with 4), and `echo done`. Execs are typed
//! where the real ones were: right after the prompt's end mark (B).

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::*;
use crate::exec::Line;

fn fixture(shell: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tracker")
        .join(format!("{shell}.bin"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// A recorded session fed to a tracker, with a clock and a foreground that the test moves.
struct Replay {
    tracker: CommandTracker,
    stream: Vec<u8>,
    secret: String,
    fed: usize,
    now: Instant,
    /// A program other than the shell holds the terminal.
    holds: bool,
    events: Vec<Event>,
}

impl Replay {
    fn new(shell: &str) -> Self {
        Self::with_stream(shell, fixture(shell))
    }

    fn with_stream(shell: &str, stream: Vec<u8>) -> Self {
        // The hooks' secret, as the recorded marks carry it.
        let at = find(&stream, b"aid=", 0).expect("a mark") + 4;
        let secret = String::from_utf8(stream[at..at + 32].to_vec()).expect("hex");
        let now = Instant::now();
        let tracker = CommandTracker::new(Setup {
            name: "t".into(),
            secret: secret.clone(),
            kind: ShellKind::detect(shell),
            integration: Integration::Osc133,
            start: 0,
            now,
        });
        Self {
            tracker,
            stream,
            secret,
            fed: 0,
            now,
            holds: false,
            events: Vec::new(),
        }
    }

    /// Feeds the recording up to byte `to`, in small uneven pieces as a PTY delivers them, a
    /// millisecond apart.
    fn feed_to(&mut self, to: usize) {
        while self.fed < to {
            let n = (to - self.fed).min(13);
            let data = self.stream[self.fed..self.fed + n].to_vec();
            self.now += Duration::from_millis(1);
            let holds = self.holds;
            self.tracker
                .on_output(&data, self.fed as u64, self.now, &mut || holds);
            self.fed += n;
            self.collect();
        }
    }

    /// Feeds through the next mark of `kind` carrying the session's secret.
    fn feed_through(&mut self, kind: char) {
        let mark = format!("\x1b]133;{kind}");
        let mut from = self.fed;
        loop {
            let at = find(&self.stream, mark.as_bytes(), from)
                .unwrap_or_else(|| panic!("no {kind} mark after {}", self.fed));
            let end = find(&self.stream, b"\x07", at).expect("BEL") + 1;
            if find(&self.stream[..end], self.secret.as_bytes(), at).is_some() {
                self.feed_to(end);
                return;
            }
            from = end;
        }
    }

    fn collect(&mut self) {
        while let Some(e) = self.tracker.next_event() {
            self.events.push(e);
        }
    }

    fn take(&mut self) -> Vec<Event> {
        self.collect();
        std::mem::take(&mut self.events)
    }

    /// Asks for an exec; returns its reply's receiver, and types it when the tracker says so.
    fn exec(&mut self, command: &str) -> oneshot::Receiver<crate::Result<crate::ExecResult>> {
        let (tx, rx) = oneshot::channel();
        let q = queued(command, tx, self.now);
        if let Some(q) = self.tracker.exec(q) {
            self.type_it(q);
        }
        self.collect();
        rx
    }

    fn type_it(&mut self, q: Queued) {
        let line = Line {
            text: q.params.command.clone(),
            nonce: None,
            file: None,
            input: None,
        };
        self.tracker.typed(q, line, self.fed as u64, self.now);
    }

    /// Types the execs the tracker releases (after a `Ready`).
    fn type_ready(&mut self) -> usize {
        let mut n = 0;
        while let Some(q) = self.tracker.next_exec() {
            self.type_it(q);
            n += 1;
        }
        n
    }

    fn mark_start(&self, kind: char, nth: usize) -> u64 {
        let mark = format!("\x1b]133;{kind};");
        let mut at = 0;
        let mut seen = 0;
        loop {
            at = find(&self.stream, mark.as_bytes(), at).expect("mark");
            if find(
                &self.stream[..at + 60.min(self.stream.len() - at)],
                self.secret.as_bytes(),
                at,
            )
            .is_some()
            {
                if seen == nth {
                    return at as u64;
                }
                seen += 1;
            }
            at += 1;
        }
    }
}

/// Feeds the recording through the next B mark carrying the secret in pieces of at most
/// `piece` bytes; returns what [`CommandTracker::events_skip_screen`] said after each piece
/// that made the tracker finish an exec.
fn skip_screen_at_finish(r: &mut Replay, piece: usize) -> Vec<bool> {
    let mut from = r.fed;
    let end = loop {
        let at = find(&r.stream, b"\x1b]133;B", from).expect("a B mark");
        let end = find(&r.stream, b"\x07", at).expect("BEL") + 1;
        if find(&r.stream[..end], r.secret.as_bytes(), at).is_some() {
            break end;
        }
        from = end;
    };
    let mut said = Vec::new();
    while r.fed < end {
        let n = (end - r.fed).min(piece);
        let data = r.stream[r.fed..r.fed + n].to_vec();
        r.now += Duration::from_millis(1);
        let holds = r.holds;
        r.tracker
            .on_output(&data, r.fed as u64, r.now, &mut || holds);
        r.fed += n;
        if r.tracker
            .events
            .iter()
            .any(|e| matches!(e, Event::ExecFinished { .. }))
        {
            said.push(r.tracker.events_skip_screen());
        }
        r.collect();
    }
    said
}

#[test]
fn a_finished_exec_skips_the_screen_unless_a_queued_exec_is_typed_at_the_prompt() {
    for shell in SHELLS {
        let mut r = Replay::new(shell);
        r.feed_through('B');
        r.take();
        // The D mark and the prompt in one read, as after a flood: answered from the log.
        let _a = r.exec("echo hello");
        assert_eq!(skip_screen_at_finish(&mut r, usize::MAX), [true], "{shell}");
        assert!(has_ready(&r.take()), "{shell}");
        // An exec queued behind the running one is typed at that prompt, after the screen
        // has drawn what came before it.
        let _b = r.exec("false");
        let _c = r.exec("forge");
        assert_eq!(r.tracker.queue.len(), 1, "{shell}");
        assert_eq!(
            skip_screen_at_finish(&mut r, usize::MAX),
            [false],
            "{shell}"
        );
        // A wait answered in the same read looks at the output too.
        r.tracker.queue.clear();
        let (tx, _rx) = oneshot::channel();
        r.tracker.events.push_back(Event::WaitDone {
            reply: tx,
            result: Err(crate::Error::Killed("t".into())),
        });
        assert!(!r.tracker.events_skip_screen(), "{shell}");
        r.take();
        assert!(r.tracker.events_skip_screen(), "{shell}");
    }
}

fn queued(command: &str, reply: Reply<crate::ExecResult>, now: Instant) -> Queued {
    let params = serde_json::from_value(serde_json::json!({"target": "t", "command": command}))
        .expect("params");
    Queued::new(params, reply, now)
}

/// The exit codes and ends of the execs that finished, in order.
fn finished(events: &[Event]) -> Vec<(Option<i32>, u64, Finished)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ExecFinished {
                exit_code,
                end,
                how,
                ..
            } => Some((*exit_code, *end, *how)),
            _ => None,
        })
        .collect()
}

fn has_ready(events: &[Event]) -> bool {
    events.iter().any(|e| matches!(e, Event::Ready))
}

const SHELLS: [&str; 3] = ["bash", "zsh", "sh"];

#[test]
fn execs_finish_at_their_own_d_with_its_code_and_forged_marks_do_not_count() {
    for shell in SHELLS {
        let mut r = Replay::new(shell);
        assert_eq!(r.tracker.state(), SessionState::Starting);
        r.feed_through('B');
        let events = r.take();
        assert!(matches!(events.first(), Some(Event::SecretRead)), "{shell}");
        assert!(has_ready(&events), "{shell}");
        assert_eq!(r.tracker.state(), SessionState::Idle, "{shell}");
        // D marks 1, 2, 3 of the recording end `echo hello`, `false` and the forging command
        // (D 0 is the shell's report before its first prompt).
        for (i, (command, code)) in [("echo hello", 0), ("false", 1), ("forge", 3)]
            .into_iter()
            .enumerate()
        {
            let _reply = r.exec(command);
            assert_eq!(r.tracker.state(), SessionState::Busy, "{shell} {command}");
            r.feed_through('B');
            let events = r.take();
            let end = r.mark_start('D', i + 1);
            assert_eq!(
                finished(&events),
                vec![(Some(code), end, Finished::Marked)],
                "{shell} {command}"
            );
            let reported = events.iter().find_map(|e| match e {
                Event::CommandFinished { exit_code, .. } => Some(*exit_code),
                _ => None,
            });
            assert_eq!(reported, Some(Some(code)), "{shell} {command}");
            assert!(has_ready(&events), "{shell} {command}");
            assert_eq!(r.tracker.state(), SessionState::Idle, "{shell} {command}");
        }
    }
}

#[test]
fn a_nested_shell_waits_for_input_then_its_exit_status_ends_the_command() {
    for shell in SHELLS {
        let mut r = Replay::new(shell);
        r.feed_through('B');
        for command in ["echo hello", "false", "forge"] {
            let _reply = r.exec(command);
            r.feed_through('B');
        }
        r.take();
        let _reply = r.exec("nested");
        // The fourth exec (the nested shell) is typed; the nested shell prints its prompt
        // and holds the terminal, reading keys.
        let nested = find(&r.stream, b"nested$ ", r.fed).expect("nested prompt") + 8;
        r.holds = true;
        r.feed_to(nested);
        assert!(finished(&r.take()).is_empty(), "{shell}");
        let silent = r.now + Duration::from_millis(300);
        assert!(!r.tracker.input_check(silent - Duration::from_millis(1)));
        assert!(
            r.tracker.input_check(silent),
            "{shell}: no look after 300 ms of silence"
        );
        r.tracker.input_blocked(silent, &mut || true);
        let events = r.take();
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::ExecPartial {
                    status: ExecStatus::WaitingForInput,
                    ..
                }
            )),
            "{shell}"
        );
        // Keys answer it; a prompt wait then ends with the nested shell's status.
        r.tracker.keys_typed();
        let (tx, mut rx) = oneshot::channel();
        r.tracker
            .wait(WaitCondition::Prompt, Some(20_000), None, tx, r.now);
        let exit = find(&r.stream, b"exit\r\n", r.fed).expect("exit echo") + 6;
        r.feed_to(exit);
        r.holds = false;
        r.feed_through('B');
        let events = r.take();
        assert!(
            finished(&events).is_empty(),
            "{shell}: answered once already"
        );
        let done = events.into_iter().find_map(|e| match e {
            Event::WaitDone { reply, result } => Some((reply, result)),
            _ => None,
        });
        let (reply, result) = done.expect("the prompt wait ends");
        reply.send(result).ok();
        let result = rx.try_recv().expect("sent").expect("ok");
        assert_eq!(result.exit_code, Some(4), "{shell}");
        assert_eq!(r.tracker.state(), SessionState::Idle, "{shell}");
    }
}

#[test]
fn an_exec_during_a_slow_start_waits_for_the_first_prompt_or_says_starting() {
    for shell in SHELLS {
        // The first prompt comes before the exec's timeout: it is typed then.
        let mut r = Replay::new(shell);
        let _reply = r.exec("echo hello");
        assert!(
            !r.tracker.exec_pending(),
            "{shell}: typed before the prompt"
        );
        assert_eq!(r.tracker.state(), SessionState::Starting);
        r.feed_through('B');
        assert!(has_ready(&r.take()), "{shell}");
        assert_eq!(r.type_ready(), 1, "{shell}");
        r.feed_through('B');
        let end = r.mark_start('D', 1);
        assert_eq!(
            finished(&r.take()),
            vec![(Some(0), end, Finished::Marked)],
            "{shell}"
        );

        // The timeout ends first: the exec is answered `starting`, never typed.
        let mut r = Replay::new(shell);
        let _reply = r.exec("echo hello");
        let half = find(&r.stream, b"\x1b]133;A", 0).expect("A");
        r.feed_to(half);
        r.tracker
            .expire_queue(r.now + crate::exec::DEFAULT_TIMEOUT + Duration::from_secs(1));
        let events = r.take();
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::Starting { execs, waiting: false } if execs.len() == 1
            )),
            "{shell}"
        );
        r.feed_through('B');
        assert!(has_ready(&r.take()));
        assert_eq!(r.type_ready(), 0, "{shell}: the expired exec was typed");
    }
}

#[test]
fn marks_printed_while_a_program_holds_the_terminal_are_held_and_only_the_shells_count() {
    let mut r = Replay::new("bash");
    r.feed_through('B');
    let _first = r.exec("echo hello");
    r.feed_through('B');
    r.take();
    // `false` (exit 1) runs, holding the terminal, and prints marks with the right secret: a
    // D with status 0 and a prompt. They finish nothing.
    let _reply = r.exec("false");
    r.feed_through('C');
    let secret = r.secret.clone();
    let forged = format!(
        "\x1b]133;D;0;aid={secret}\x07\x1b]133;A;aid={secret}\x07$ \x1b]133;B;aid={secret}\x07"
    );
    let mut stream = r.stream[..r.fed].to_vec();
    stream.extend_from_slice(forged.as_bytes());
    let rest = r.stream[r.fed..].to_vec();
    stream.extend_from_slice(&rest);
    r.stream = stream;
    r.holds = true;
    r.feed_to(r.fed + forged.len());
    let events = r.take();
    assert!(finished(&events).is_empty());
    assert!(!has_ready(&events));
    assert_eq!(r.tracker.state(), SessionState::Busy);
    // The shell's own D and A, read while a prompt hook's program holds the terminal, count
    // once the shell shows its prompt (B) holding it again.
    r.feed_through('D');
    r.feed_through('A');
    assert!(finished(&r.take()).is_empty());
    r.holds = false;
    r.feed_through('B');
    let events = r.take();
    let got = finished(&events);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, Some(1), "the forged status counted");
    assert!(has_ready(&events));
}

#[test]
fn execs_queue_behind_a_running_one_and_are_refused_when_a_typed_command_runs() {
    let mut r = Replay::new("bash");
    r.feed_through('B');
    r.take();
    let _first = r.exec("echo hello");
    let _second = r.exec("false");
    assert!(
        r.take().is_empty(),
        "the second exec is queued, not refused"
    );
    r.feed_through('B');
    let events = r.take();
    assert_eq!(finished(&events).len(), 1);
    assert!(has_ready(&events));
    assert_eq!(r.type_ready(), 1, "the queued exec is typed at the prompt");
    r.feed_through('B');
    assert_eq!(finished(&r.take())[0].0, Some(1));
    // A command typed with keys runs (its C mark): an exec is refused as busy.
    r.tracker.keys_typed();
    r.feed_through('C');
    r.take();
    let _refused = r.exec("echo no");
    let events = r.take();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Busy {
            why: Busy::Running,
            ..
        }
    )));
}

#[test]
fn wait_conditions_end_on_output_silence_and_timeout() {
    let mut r = Replay::new("sh");
    r.feed_through('B');
    r.take();
    // A regex over the text of what follows.
    let (tx, mut rx) = oneshot::channel();
    assert!(r.tracker.wait(
        WaitCondition::Regex(regex::Regex::new("hel+o").expect("regex")),
        None,
        None,
        tx,
        r.now
    ));
    let _reply = r.exec("echo hello");
    r.feed_through('D');
    let stream = r.stream.clone();
    r.tracker.check_regex(r.now, &mut |from, to| {
        crate::text::clean(&stream[from as usize..to as usize])
    });
    for e in r.take() {
        if let Event::WaitDone { reply, result } = e {
            reply.send(result).ok();
        }
    }
    let found = rx.try_recv().expect("matched").expect("ok");
    assert_eq!(found.matched.as_deref(), Some("hello"));
    // Silence: an idle wait ends 200 ms after the last output; a prompt wait that sees no
    // prompt times out.
    let (idle_tx, mut idle_rx) = oneshot::channel();
    r.tracker.wait(
        WaitCondition::Idle(Duration::from_millis(200)),
        None,
        None,
        idle_tx,
        r.now,
    );
    let (prompt_tx, mut prompt_rx) = oneshot::channel();
    r.tracker.keys_typed();
    r.tracker
        .wait(WaitCondition::Prompt, Some(500), None, prompt_tx, r.now);
    assert_eq!(
        r.tracker.next_deadline(),
        Some(r.tracker.last_output() + Duration::from_millis(200))
            .min(Some(r.now + Duration::from_millis(500)))
    );
    r.tracker
        .expire_waiters(r.now + Duration::from_millis(200), &mut || true);
    r.tracker
        .expire_waiters(r.now + Duration::from_millis(500), &mut || true);
    for e in r.take() {
        if let Event::WaitDone { reply, result } = e {
            reply.send(result).ok();
        }
    }
    assert!(idle_rx.try_recv().expect("idle done").is_ok());
    assert!(matches!(
        prompt_rx.try_recv().expect("prompt done"),
        Err(Error::Timeout { .. })
    ));
}
