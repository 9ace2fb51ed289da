//! The daemon's audit trail: the open log (`ai_session_sandbox::audit`), what happens when it
//! cannot be written, and the record of refused HTTP requests.
//!
//! A daemon that cannot audit says so: `daemon.status` carries the problem, and every request
//! that would change something is refused with `audit_unavailable` until the owner runs
//! `audit.repair` (or, with `AI_SESSION_AUDIT=best-effort`, goes through with an
//! `audit_warning` in its result). Reads stay available: the owner needs them to look around.
//! Once a second the file is checked (deleted or replaced: recreated from the daemon's own
//! descriptor with a gap entry; cut short or written by someone else: broken), fsynced, and its
//! signed head updated.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ai_session_protocol::methods::{AuditRepairResult, AuditStatus};
use ai_session_protocol::registry::Effect;
use ai_session_protocol::{ErrorKind, RpcError};
use ai_session_sandbox::audit::{Actor, AuditLog, DetailCipher, Record};

/// The environment variable that lets a daemon act without auditing (`best-effort`).
pub(crate) const MODE_ENV: &str = "AI_SESSION_AUDIT";
/// MiB the live log file holds before it rotates into a sealed segment (default 64).
const SEGMENT_MIB_ENV: &str = "AI_SESSION_AUDIT_SEGMENT_MIB";
/// Sealed segments kept (opt-in; all are kept when unset). Each removal is an entry.
const KEEP_SEGMENTS_ENV: &str = "AI_SESSION_AUDIT_KEEP_SEGMENTS";

/// The rotation settings from the environment: (segment bytes, segments kept). A value that
/// is not a positive number is ignored with a warning (the default is the safe side: rotate at
/// 64 MiB, keep everything).
fn rotation_settings() -> (u64, Option<usize>) {
    let read = |var: &str| {
        std::env::var(var)
            .ok()
            .and_then(|v| match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    tracing::warn!("{var}={v} is not a positive number; ignored");
                    None
                }
            })
    };
    let bytes = read(SEGMENT_MIB_ENV).map_or(
        ai_session_sandbox::audit::segment::DEFAULT_SEGMENT_BYTES,
        |mib| mib.saturating_mul(1 << 20),
    );
    (bytes, read(KEEP_SEGMENTS_ENV).map(|n| n as usize))
}

/// Opens the log with the daemon's rotation settings.
fn open_log(path: &std::path::Path) -> Result<AuditLog, ai_session_sandbox::audit::AuditError> {
    let mut log = AuditLog::open(path)?;
    let (bytes, keep) = rotation_settings();
    log.set_max_segment(bytes);
    log.set_keep_segments(keep);
    Ok(log)
}

/// Refused HTTP requests recorded one by one per window; the rest are counted in one entry.
const UNAUTHORIZED_PER_WINDOW: u32 = 20;
const UNAUTHORIZED_WINDOW: Duration = Duration::from_secs(60);

/// The trail's problem once the log is handed over to an upgraded daemon.
const HANDED_OVER: &str = "handed over to the upgraded daemon";

enum State {
    Open(AuditLog),
    Broken { problem: String, last_seq: u64 },
}

struct Window {
    started: Instant,
    recorded: u32,
    suppressed: u32,
}

pub(crate) struct Trail {
    path: PathBuf,
    /// Seals entries' details when the daemon has a passphrase.
    cipher: Option<DetailCipher>,
    state: Mutex<State>,
    /// Writes are refused while the log is broken (the default).
    required: bool,
    /// Mirrors `state` for the request path's check without the lock.
    healthy: AtomicBool,
    /// Entries were appended since the last sync.
    unsynced: AtomicBool,
    /// Held for a whole sync: two syncs at once (the timer's and the shutdown's) would write
    /// the same temporary head file.
    syncing: Mutex<()>,
    unauthorized: Mutex<Window>,
}

impl Trail {
    /// Opens the log; a log that fails verification or cannot be opened leaves the trail
    /// broken (said in `daemon.status`), not the daemon stopped: the owner must be able to
    /// reach it to look and repair.
    pub(crate) fn open(path: PathBuf) -> Self {
        let required = std::env::var(MODE_ENV).map_or(true, |v| v.trim() != "best-effort");
        // With a passphrase the details (commands, keys typed) are sealed like the store.
        let cipher = std::env::var(ai_session_store::PASSPHRASE_ENV)
            .ok()
            .filter(|p| !p.is_empty())
            .map(|p| DetailCipher::for_log(&path, &p, true))
            .transpose();
        let broken = |e: ai_session_sandbox::audit::AuditError| {
            tracing::error!(
                "audit log unusable: {e}; writes are refused until `ai-session audit repair`"
            );
            State::Broken {
                problem: e.to_string(),
                last_seq: 0,
            }
        };
        let (state, cipher) = match cipher {
            Err(e) => (broken(e), None),
            Ok(cipher) => match open_log(&path) {
                Ok(mut log) => {
                    if let Some(c) = &cipher {
                        log.seal_details(c.clone());
                    }
                    (State::Open(log), cipher)
                }
                Err(e) => (broken(e), cipher),
            },
        };
        let healthy = matches!(state, State::Open(_));
        Trail {
            path,
            cipher,
            state: Mutex::new(state),
            required,
            healthy: AtomicBool::new(healthy),
            unsynced: AtomicBool::new(false),
            syncing: Mutex::new(()),
            unauthorized: Mutex::new(Window {
                started: Instant::now(),
                recorded: 0,
                suppressed: 0,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn problem(&self) -> Option<String> {
        match &*self.state() {
            State::Open(_) => None,
            State::Broken { problem, .. } => Some(problem.clone()),
        }
    }

    /// Refuses a call that would change something while the log cannot record it (the
    /// registry says which calls change nothing, and which are the way out).
    pub(crate) fn gate(&self, effect: Effect) -> Result<(), RpcError> {
        if self.healthy.load(Ordering::Relaxed) || !self.required || effect != Effect::Write {
            return Ok(());
        }
        let problem = self.problem().unwrap_or_default();
        Err(unavailable(&problem))
    }

    /// Appends a record; on failure the trail breaks and the warning for the caller's client
    /// comes back (also when the trail was already broken in best-effort mode).
    pub(crate) fn record(&self, record: Record) -> Option<String> {
        let mut state = self.state();
        let appended = match &mut *state {
            State::Open(log) => log.append_unsynced(record),
            // The new daemon writes the log, and records the upgrade itself.
            State::Broken { problem, .. } if problem == HANDED_OVER => return None,
            State::Broken { problem, .. } => {
                return Some(format!("this action was not audited: {problem}"));
            }
        };
        match appended {
            Ok(_) => {
                self.unsynced.store(true, Ordering::Relaxed);
                None
            }
            Err(e) => {
                let problem = e.to_string();
                self.break_with(&mut state, problem.clone());
                Some(format!("this action was not audited: {problem}"))
            }
        }
    }

    /// The once-a-second work: the file is still ours and whole, entries are durable, the head
    /// is signed, and refused HTTP requests beyond the window's quota are summed up. The fsyncs
    /// run without the log's lock, so requests appending meanwhile do not wait for the disk.
    pub(crate) fn sync(&self) {
        self.flush_unauthorized();
        let _one_at_a_time = self.syncing.lock().unwrap_or_else(PoisonError::into_inner);
        let point = {
            let mut state = self.state();
            let State::Open(log) = &mut *state else {
                return;
            };
            match log.check_file() {
                Ok(Some(gap)) => tracing::warn!("audit log: {}", gap.detail),
                Ok(None) => {}
                Err(e) => return self.break_with(&mut state, e.to_string()),
            }
            if !self.unsynced.swap(false, Ordering::Relaxed) {
                return;
            }
            match log.sync_point() {
                Ok(point) => point,
                Err(e) => return self.break_with(&mut state, e.to_string()),
            }
        };
        let Some(point) = point else { return };
        let committed = point.commit();
        let mut state = self.state();
        match (committed, &mut *state) {
            (Ok(seq), State::Open(log)) => log.synced(seq),
            (Err(e), State::Open(_)) => self.break_with(&mut state, e.to_string()),
            // Repaired or broken meanwhile: nothing to record.
            (_, State::Broken { .. }) => {}
        }
    }

    /// Lets go of the log for a handover (`daemon upgrade`): synced, then closed to this
    /// daemon, so the new one is the only writer of the chain. Records from here on are not
    /// written (the new daemon records the upgrade). `take_back` undoes it.
    pub(crate) fn hand_over(&self) -> Option<AuditLog> {
        self.sync();
        let mut state = self.state();
        let last_seq = match &*state {
            State::Open(log) => log.last_seq(),
            State::Broken { .. } => return None,
        };
        let problem = HANDED_OVER.to_owned();
        self.healthy.store(false, Ordering::Relaxed);
        match std::mem::replace(&mut *state, State::Broken { problem, last_seq }) {
            State::Open(log) => Some(log),
            State::Broken { .. } => None,
        }
    }

    /// Takes the log back after a handover that failed.
    pub(crate) fn take_back(&self, log: Option<AuditLog>) {
        if let Some(log) = log {
            *self.state() = State::Open(log);
            self.healthy.store(true, Ordering::Relaxed);
        }
    }

    fn break_with(&self, state: &mut State, problem: String) {
        tracing::error!("audit log: {problem}; writes are refused until `ai-session audit repair`");
        let last_seq = match &*state {
            State::Open(log) => log.last_seq(),
            State::Broken { last_seq, .. } => *last_seq,
        };
        *state = State::Broken { problem, last_seq };
        self.healthy.store(false, Ordering::Relaxed);
    }

    pub(crate) fn status(&self) -> AuditStatus {
        let (ok, problem, last_seq) = match &*self.state() {
            State::Open(log) => (true, None, log.last_seq()),
            State::Broken { problem, last_seq } => (false, Some(problem.clone()), *last_seq),
        };
        AuditStatus {
            log: self.path.display().to_string(),
            ok,
            problem,
            writes_refused: !ok && self.required,
            last_seq,
        }
    }

    /// `audit.repair`: a broken log (or one whose file turns out damaged now) is moved aside
    /// and a new segment starts with an entry recording the problem; an intact log is left as
    /// it is.
    pub(crate) fn repair(&self, actor: Actor) -> Result<AuditRepairResult, RpcError> {
        let mut state = self.state();
        let problem = match &mut *state {
            State::Open(log) => match log.check_file() {
                Ok(_) => {
                    return Ok(AuditRepairResult {
                        repaired: false,
                        problem: None,
                        moved_to: None,
                        seq: log.last_seq(),
                    });
                }
                Err(e) => e.to_string(),
            },
            State::Broken { problem, .. } => problem.clone(),
        };
        // Close the old descriptor before the file is moved.
        *state = State::Broken {
            problem: problem.clone(),
            last_seq: 0,
        };
        let internal = |e: ai_session_sandbox::audit::AuditError| {
            RpcError::new(ErrorKind::Internal, format!("audit repair failed: {e}"))
                .with_hint("fix what the message names (space, permissions), then repair again")
        };
        let repaired = AuditLog::repair(&self.path, actor, &problem).map_err(internal)?;
        let mut log = open_log(&self.path).map_err(internal)?;
        if let Some(c) = &self.cipher {
            log.seal_details(c.clone());
        }
        *state = State::Open(log);
        self.healthy.store(true, Ordering::Relaxed);
        tracing::warn!("audit log repaired: {}", repaired.entry.detail);
        Ok(AuditRepairResult {
            repaired: true,
            problem: Some(problem),
            moved_to: repaired.moved_to.map(|p| p.display().to_string()),
            seq: repaired.entry.seq,
        })
    }

    /// Entry `seq`'s sealed detail in clear: `None` when the daemon has no passphrase,
    /// `Some(None)` when it does not open under this one.
    pub(crate) fn open_detail(&self, seq: u64, detail: &str) -> Option<Option<String>> {
        self.cipher.as_ref().map(|c| c.open(seq, detail))
    }

    /// Records an HTTP request refused for want of valid credentials: one entry each up to
    /// the window's quota, then one entry counting the rest, so a flood cannot fill the disk.
    pub(crate) fn unauthorized(&self, detail: String) {
        self.flush_unauthorized();
        {
            let mut w = self
                .unauthorized
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if w.recorded >= UNAUTHORIZED_PER_WINDOW {
                w.suppressed += 1;
                return;
            }
            w.recorded += 1;
        }
        self.record(Record::new(
            Actor::Anonymous,
            "http.unauthorized",
            detail,
            "denied",
        ));
    }

    /// Ends an expired window: its suppressed count becomes one entry.
    fn flush_unauthorized(&self) {
        let suppressed = {
            let mut w = self
                .unauthorized
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if w.started.elapsed() < UNAUTHORIZED_WINDOW {
                return;
            }
            let n = w.suppressed;
            *w = Window {
                started: Instant::now(),
                recorded: 0,
                suppressed: 0,
            };
            n
        };
        if suppressed > 0 {
            self.record(Record::new(
                Actor::Anonymous,
                "http.unauthorized",
                format!(
                    "{suppressed} more HTTP requests without valid credentials in {} s (not recorded one by one)",
                    UNAUTHORIZED_WINDOW.as_secs()
                ),
                "denied",
            ));
        }
    }
}

fn unavailable(problem: &str) -> RpcError {
    RpcError::new(
        ErrorKind::AuditUnavailable,
        format!("the daemon cannot write its audit log, so it refuses to act: {problem}"),
    )
    .with_advice(
        ai_session_protocol::hint::Advice::new(
            "the daemon's owner repairs it with {0}, which moves the log aside and starts a new segment recording the break",
        )
        .call("audit.repair", serde_json::json!({})),
    )
}
