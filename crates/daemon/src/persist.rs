//! Persistence: the daemon's session store (`servers/<label>/store`, crate
//! `ai-session-store`). Sessions outlive the daemon: every `new` is recorded, every finished
//! exec is checkpointed before its answer leaves, scrollbacks are saved every two seconds for
//! sessions with new output, and the next daemon brings every live session back (`restored`).
//! Also the `snapshot.*`, `session.export` and `session.import` methods.
//!
//! The store is blocking: one worker thread owns it and runs jobs in order, so a session's
//! record is always created before its execs are appended. A session's record is kept under
//! the session's own immutable id (`SessionInfo.id`), so the id survives a restart and
//! everything here is keyed on it, never on the name a later session may reuse.

use crate::context::Contexts;

pub(crate) mod checkpoint;
mod environment;
mod floods;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ai_session_core::shell::exported::Place;
use ai_session_core::{SessionManager, protocol::methods as m};
use ai_session_protocol::hint::Advice;
use ai_session_protocol::persist::*;
use ai_session_protocol::{ErrorKind, RpcError};
use ai_session_store::{
    Error as StoreError, ExecRecord, Options, Retention, Scrollback, SessionConfig, SessionId,
    SessionState, SessionStatus, SnapshotMeta, Store,
};
use base64::Engine;

use crate::server::Daemon;
use crate::service::{Ack, Event, Observer, Reaction};

/// How often scrollbacks of sessions with new output are saved (and histories fsynced).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);
/// The most a stored item or one import may decompress to, in MiB (`Options::max_unpacked`).
const UNPACK_LIMIT_ENV: &str = "AI_SESSION_UNPACK_LIMIT_MIB";
/// Snapshots kept per session after each snapshot (none removed when unset).
const KEEP_ENV: &str = "AI_SESSION_SNAPSHOT_KEEP";
/// MiB all snapshots may take on disk, the oldest removed after each snapshot past it.
const MAX_MIB_ENV: &str = "AI_SESSION_SNAPSHOT_MAX_MIB";
/// Scrollback lines saved per session (the emulator's own bound).
const SAVED_LINES: usize = ai_session_core::screen::DEFAULT_SCROLLBACK;

/// The store thread's queue.
type Queue = crate::worker::Worker<Worker>;

/// Store jobs that may wait in the queue; a caller finding it full waits for room.
const QUEUE: usize = 4096;

/// The store thread's state.
pub(crate) struct Worker {
    store: Arc<Store>,
    /// Session id → its record (the same id, as the store's type), for sessions recorded.
    ids: HashMap<String, SessionId>,
    /// Session id → the shell's pid, to read its working directory after each exec.
    pids: HashMap<String, i32>,
    /// Session id → why its record could not be written (a full disk at `new`): its execs
    /// are answered `persisted: false` with this reason, never silently unsaved.
    unrecorded: HashMap<String, String>,
    /// Where the shells write what they export.
    place: Place,
    /// The exported environments taken to be saved, shared with the checkpoint's writer.
    envs: Arc<environment::Saves>,
}

impl Worker {
    /// Keeps what the shell of the session with id `sid` (called `name`) exported at its last
    /// prompt, if it wrote anything since the last look and it changed: saved durably before
    /// this returns (an exec's answer waits for it). A failure is logged: the exec or
    /// checkpoint that looked is not failed for it.
    fn keep_environment(&mut self, sid: &str, name: &str) {
        if let Some(taken) = self.take_environment(sid, name) {
            self.envs.save(&self.store, &taken);
        }
    }

    /// What the shell of `sid` exported at its last prompt, when it wrote anything since the
    /// last look and it differs from the text last taken to be saved; for [`Saves::save`]
    /// (here or on the checkpoint's writer).
    ///
    /// [`Saves::save`]: environment::Saves::save
    fn take_environment(&mut self, sid: &str, name: &str) -> Option<environment::Taken> {
        let id = self.ids.get(sid)?.clone();
        let text =
            environment::take(&self.place.file(name)).map(environment::without_last_argument)?;
        // A prompt came after the shell's start: a restore file it was given has been read.
        environment::discard_restore(&self.place.restore_file(name));
        self.envs.taken(sid, name, id, text)
    }

    /// The record of the session with id `id` (called `name`).
    fn id(&self, id: &str, name: &str) -> Result<SessionId, RpcError> {
        self.ids.get(id).cloned().ok_or_else(|| {
            RpcError::new(
                ErrorKind::SessionNotFound,
                format!("session '{name}' has no saved record"),
            )
            .with_hint("sessions are saved from `new` on; one the store could not record (a full disk at its start, or persistence off: `daemon status`) is not")
        })
    }
}

/// The daemon's handle on the store (or on nothing, when it could not be opened).
pub(crate) struct Persist {
    /// The store's thread, behind its bounded queue; `None` when the store could not be opened.
    worker: Option<Queue>,
    /// The store, for its write-failure counters (read by `status` off the store thread).
    store: Option<Arc<Store>>,
    status: Mutex<PersistStatus>,
    /// Set at shutdown: the sessions' exits from then on are the daemon's doing, not theirs.
    stopping: AtomicBool,
    /// Session id → log end at its last saved scrollback.
    saved: Mutex<HashMap<String, u64>>,
    /// Where the shells write what they export; `None` when the store is off.
    place: Option<Place>,
}

/// Opening the store failed in a way the daemon must not start with. Returned by
/// [`serve`](crate::serve) as [`ServeError::Store`](crate::ServeError::Store): the daemon exits,
/// and its starter shows the message (every variant says which setting to fix).
#[derive(Debug, thiserror::Error)]
pub enum StoreOpenError {
    /// `AI_SESSION_ZSTD_LEVEL` holds this text, which is not a level from 1 to 19.
    #[error(
        "AI_SESSION_ZSTD_LEVEL={0} is not a zstd level: give 1 (fastest) to 19 (smallest), or unset it for 3"
    )]
    CompressionLevel(String),
    /// `AI_SESSION_UNPACK_LIMIT_MIB` holds this text, which is not a size from 1 to 1048576 MiB.
    #[error(
        "{UNPACK_LIMIT_ENV}={0} is not a size in MiB: give 1 to 1048576, or unset it for {default}",
        default = ai_session_store::DEFAULT_MAX_UNPACKED >> 20
    )]
    UnpackLimit(String),
    /// `AI_SESSION_SNAPSHOT_KEEP` or `AI_SESSION_SNAPSHOT_MAX_MIB` (named) holds this text,
    /// which is not a positive number.
    #[error(
        "{0}={1} is not a positive number: give the snapshots to keep per session (or MiB of snapshots to keep), or unset it for no limit"
    )]
    Retention(&'static str, String),
    /// The store is encrypted and `AI_SESSION_PASSPHRASE` is missing or wrong (as checked
    /// against `keycheck`). Starting without the sessions would look like losing them.
    #[error(
        "{source} (checked against {}): the session store is encrypted; set {} to its passphrase",
        .keycheck.display(),
        ai_session_store::PASSPHRASE_ENV
    )]
    Passphrase {
        source: StoreError,
        keycheck: PathBuf,
    },
}

impl Persist {
    /// Opens `<data>/store`. A wrong or missing passphrase stops the daemon (starting without
    /// the sessions would look like losing them); any other failure leaves persistence off,
    /// reported by `daemon.status`.
    pub(crate) fn open(data: &Path) -> Result<Self, StoreOpenError> {
        let dir = data.join("store");
        let mut options = Options::from_env();
        // The zstd level of everything the store compresses (1 fastest .. 19 smallest).
        if let Ok(level) = std::env::var("AI_SESSION_ZSTD_LEVEL") {
            match level.trim().parse::<i32>() {
                Ok(n) if (1..=19).contains(&n) => options.compression_level = n,
                _ => {
                    return Err(StoreOpenError::CompressionLevel(level));
                }
            }
        }
        if let Ok(mib) = std::env::var(UNPACK_LIMIT_ENV) {
            match mib.trim().parse::<u64>() {
                Ok(n) if (1..=1 << 20).contains(&n) => options.max_unpacked = n << 20,
                _ => {
                    return Err(StoreOpenError::UnpackLimit(mib));
                }
            }
        }
        // Retention applied after each snapshot (`snapshot prune` applies it by hand).
        for (var, slot) in [(KEEP_ENV, 0), (MAX_MIB_ENV, 1)] {
            if let Ok(text) = std::env::var(var) {
                match text.trim().parse::<u64>() {
                    Ok(n) if n > 0 && slot == 0 => options.snapshots.keep = Some(n as usize),
                    Ok(n) if n > 0 && slot == 1 && n < 1 << 40 => {
                        options.snapshots.max_bytes = Some(n << 20)
                    }
                    _ => return Err(StoreOpenError::Retention(var, text)),
                }
            }
        }
        let mut status = PersistStatus::default();
        let store = match Store::open(&dir, options) {
            Ok(store) => store,
            Err(
                e @ (StoreError::WrongPassphrase { .. } | StoreError::PassphraseRequired { .. }),
            ) => {
                return Err(StoreOpenError::Passphrase {
                    source: e,
                    keycheck: dir.join("metadata").join("keycheck.json"),
                });
            }
            Err(e) => {
                tracing::error!("session store disabled: {e}");
                status.errors.push(format!("store disabled: {e}"));
                return Ok(Self::off(status));
            }
        };
        status.dir = Some(dir.display().to_string());
        status.encrypted = store.is_encrypted();
        for r in store.recovered() {
            tracing::warn!("session store: left by a killed writer: {r}");
            status.recovered.push(r.to_string());
        }
        let store = Arc::new(store);
        let shared = store.clone();
        let place = Place::for_data(data);
        place.sweep();
        let worker = Worker {
            store,
            ids: HashMap::new(),
            pids: HashMap::new(),
            unrecorded: HashMap::new(),
            place: place.clone(),
            envs: Arc::default(),
        };
        let spawned = Queue::start_with_exit("store", QUEUE, worker, |w| {
            if let Err(e) = w.store.sync_final() {
                tracing::warn!("store sync at exit: {e}");
            }
        });
        let queue = match spawned {
            Ok(queue) => queue,
            Err(e) => {
                status
                    .errors
                    .push(format!("cannot start the store thread: {e}"));
                return Ok(Self::off(status));
            }
        };
        Ok(Self {
            worker: Some(queue),
            store: Some(shared),
            status: Mutex::new(status),
            stopping: AtomicBool::new(false),
            saved: Mutex::default(),
            place: Some(place),
        })
    }

    fn off(status: PersistStatus) -> Self {
        Self {
            worker: None,
            store: None,
            status: Mutex::new(status),
            stopping: AtomicBool::new(false),
            saved: Mutex::default(),
            place: None,
        }
    }

    /// The store, when it is open (the decision tracker keeps its database there).
    pub(crate) fn store(&self) -> Option<&Arc<Store>> {
        self.store.as_ref()
    }

    pub(crate) fn status(&self) -> PersistStatus {
        let mut status = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(store) = &self.store {
            let f = store.write_failures();
            status.write_failures = f.count;
            status.disk_full = f.disk_full;
            status.last_failure_ms = f.last_ms;
            status.failures = f.recent;
        }
        status
    }

    fn note_error(&self, msg: String) {
        tracing::error!("{msg}");
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if status.errors.len() < 100 {
            status.errors.push(msg);
        }
    }

    /// Queues a job, waiting for room in the store's queue; nothing when persistence is off.
    async fn submit(&self, job: impl FnOnce(&mut Worker) + Send + 'static) {
        if let Some(queue) = &self.worker {
            if let Err(e) = queue.send(job).await {
                tracing::error!("store job lost: {}", e.message);
            }
        }
    }

    /// Runs a job on the store thread and waits for its answer.
    async fn call<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Worker) -> Result<T, RpcError> + Send + 'static,
    ) -> Result<T, RpcError> {
        let Some(queue) = &self.worker else {
            return Err(RpcError::new(
                ErrorKind::Unsupported,
                "persistence is off: the session store could not be opened",
            )
            .with_advice(
                Advice::new("{0} says why").call("daemon.status", serde_json::Value::Null),
            ));
        };
        queue.call(job).await
    }

    // ---- hooks --------------------------------------------------------------------------

    /// Queues `job` now; the returned future resolves once it ran (at once when persistence
    /// is off) with the job's warning: what could not be saved, for the answer to say.
    fn acked(&self, job: impl FnOnce(&mut Worker) -> Option<String> + Send + 'static) -> Ack {
        let queue = self.worker.as_ref().map(Queue::handle);
        Box::pin(async move {
            let queue = queue?;
            match queue.call(move |w| Ok(job(w))).await {
                Ok(warning) => warning,
                Err(e) => Some(e.message),
            }
        })
    }

    /// [`Persist::acked`] for a job whose warning is known before all its work is done: the
    /// future resolves with the warning, and what the job leaves runs right after, on the
    /// store thread, before any job queued behind it.
    fn acked_then(
        &self,
        job: impl FnOnce(&mut Worker) -> (Option<String>, crate::worker::Then<Worker>) + Send + 'static,
    ) -> Ack {
        let queue = self.worker.as_ref().map(Queue::handle);
        Box::pin(async move {
            let queue = queue?;
            match queue
                .call_then(move |w| {
                    let (warning, then) = job(w);
                    (Ok(warning), then)
                })
                .await
            {
                Ok(warning) => warning,
                Err(e) => Some(e.message),
            }
        })
    }

    /// `session.new` succeeded: record the session before the answer goes out. When the
    /// record cannot be written (a full disk), the answer says so (`persisted: false`), the
    /// failure is counted in `daemon status`, and each of the session's execs says it too.
    fn on_new(&self, info: &m::SessionInfo, params: &m::NewParams) -> Reaction {
        let job = new_job(info, params);
        if self.worker.is_none() {
            return Reaction::default();
        }
        Reaction {
            ack: Some(self.acked_then(move |w| {
                let (recorded, then) = job(w);
                (recorded.err(), then)
            })),
            warning: None,
        }
    }

    /// An exec returned: checkpoint it before the answer goes out. When the record cannot be
    /// written the ack carries why, and the answer says `persisted: false` with it; a session
    /// the store does not keep (persistence off, which `daemon status` says) carries nothing.
    fn on_exec(
        &self,
        target: &str,
        session_id: &str,
        command: &str,
        started_ms: u64,
        result: &m::ExecResult,
    ) -> Reaction {
        if self.worker.is_none() {
            return Reaction::default();
        }
        let (name, sid, command) = (target.to_owned(), session_id.to_owned(), command.to_owned());
        let (exit_code, output_start, output_end) =
            (result.exit_code, result.output_start, result.output_end);
        let known_cwd = result.cwd.clone();
        Reaction {
            ack: Some(self.acked(move |w| {
                let Some(id) = w.ids.get(&sid).cloned() else {
                    return w
                        .unrecorded
                        .get(&sid)
                        .map(|why| format!("the session has no saved record ({why})"));
                };
                // The D mark that ended the exec came after the hooks wrote the file.
                w.keep_environment(&sid, &name);
                let cwd = known_cwd
                    .or_else(|| {
                        w.pids
                            .get(&sid)
                            .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).ok())
                            .map(|p| p.display().to_string())
                    })
                    .or_else(|| w.store.load_state(&id).ok().map(|s| s.cwd))
                    .unwrap_or_default();
                let record = ExecRecord {
                    command,
                    exit_code,
                    cwd,
                    started_ms,
                    ended_ms: now_ms(),
                    output_start,
                    output_end,
                };
                match w.store.append_exec(&id, &record) {
                    Ok(()) => None,
                    Err(e) => {
                        tracing::error!(session = %name, "cannot checkpoint the exec: {e}");
                        Some(e.to_string())
                    }
                }
            })),
            warning: None,
        }
    }

    /// `session.kill` succeeded: the record goes (its snapshots stay).
    fn on_kill(&self, name: &str, sid: &str) -> Ack {
        self.saved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sid);
        let (name, sid) = (name.to_owned(), sid.to_owned());
        self.acked(move |w| {
            w.pids.remove(&sid);
            w.unrecorded.remove(&sid);
            // A checkpoint's writer holding this session's environment skips it from here on.
            w.envs.forget(&sid);
            w.place.forget(&name);
            if let Some(id) = w.ids.remove(&sid) {
                let r = w
                    .store
                    .close_session(&id)
                    .and_then(|()| w.store.delete_session(&id));
                if let Err(e) = r {
                    tracing::error!(session = %name, "cannot delete the record: {e}");
                }
            }
            None
        })
    }

    async fn on_exit(&self, name: String, sid: String, exit_code: Option<i32>) {
        if self.stopping.load(Ordering::Relaxed) {
            return;
        }
        self.submit(move |w| {
            w.place.forget(&name);
            if let Some(id) = w.ids.get(&sid) {
                if let Err(e) = w.store.set_status(id, SessionStatus::Exited, exit_code) {
                    tracing::error!(session = %name, "cannot record the exit: {e}");
                }
            }
        })
        .await;
    }

    /// A session's saved execs, oldest first, and how many there are (`session.history`); the
    /// session is `id`, called `name`.
    pub(crate) async fn history(
        &self,
        id: &str,
        name: &str,
        limit: usize,
    ) -> Result<(Vec<ExecRecord>, usize), RpcError> {
        let (id, name) = (id.to_owned(), name.to_owned());
        self.call(move |w| {
            let id = w.id(&id, &name)?;
            let mut records = w.store.load_history(&id).map_err(|e| store_err(&e))?;
            let total = records.len();
            records.drain(..total.saturating_sub(limit));
            Ok((records, total))
        })
        .await
    }

    /// Before the sessions are killed at shutdown: a last checkpoint of every scrollback with
    /// output since its last save (one fsync each: the others are on disk already), then wait
    /// for the store thread to finish its queue.
    pub(crate) async fn stop(&self, manager: &SessionManager, contexts: &Contexts) {
        self.stopping.store(true, Ordering::Relaxed);
        if self.worker.is_none() {
            return;
        }
        checkpoint(self, manager, contexts, None).await;
        let synced = self
            .call(|w| w.store.sync_final().map_err(|e| store_err(&e)))
            .await;
        if let Err(e) = synced {
            tracing::warn!("store sync at shutdown: {}", e.message);
        }
        // The shells go with the daemon: what they last wrote is in the store now.
        if let Some(place) = &self.place {
            place.sweep();
        }
    }
}

impl Persist {
    /// Before a handover (`daemon upgrade`): every session's context and scrollback saved and
    /// the store synced, so the new daemon opens it whole. Unlike `stop`, exits are still the
    /// sessions' own: a handover that fails goes on serving.
    pub(crate) async fn hand_over(&self, manager: &SessionManager, contexts: &Contexts) {
        if self.worker.is_none() {
            return;
        }
        for name in manager.names() {
            save_context(self, contexts, &name).await;
        }
        checkpoint(self, manager, contexts, None).await;
        let synced = self
            .call(|w| w.store.sync_final().map_err(|e| store_err(&e)))
            .await;
        if let Err(e) = synced {
            tracing::warn!("store sync before the handover: {}", e.message);
        }
    }
}

/// The key session output logs are sealed with when the store is encrypted (a passphrase is
/// set: the store does not open without one once it has a key check), so output is no more in
/// clear on disk than the store's own files. Random and kept only in memory: a log is never
/// read by a later daemon (a resurrected session starts a new one from its sealed scrollback),
/// so the segments a killed daemon leaves behind open for no one, passphrase or not.
pub(crate) fn log_key() -> std::io::Result<Option<ai_session_core::log::LogKey>> {
    match Options::from_env().passphrase {
        Some(_) => ai_session_core::log::LogKey::random().map(Some),
        None => Ok(None),
    }
}

/// The store job recording a new session. A sandboxed session's record keeps its policy, so
/// whatever brings it back (a restart, a restore, another node after a loss) confines it the
/// same way.
fn new_job(
    info: &m::SessionInfo,
    params: &m::NewParams,
) -> impl FnOnce(&mut Worker) -> (Result<(), String>, crate::worker::Then<Worker>) + Send + 'static
{
    let mut env: BTreeMap<String, String> = params
        .env
        .clone()
        .unwrap_or_else(|| std::env::vars().collect());
    ai_session_core::strip_secrets(&mut env);
    env.extend(params.set_env.clone());
    let config = SessionConfig {
        name: info.name.clone(),
        shell: if params.program.is_none() {
            info.program.first().cloned()
        } else {
            None
        },
        argv: info.program.clone(),
        size: size_to_store(info.size),
        env,
        cwd: info.cwd.clone(),
        created_ms: info.created_ms,
        policy: params.policy.clone(),
    };
    let (name, sid, pid) = (info.name.clone(), info.id.clone(), info.pid);
    move |w: &mut Worker| {
        // The record is kept under the session's own id: the same id after a restart. The
        // answer waits for the record to be durable (its journal frame), not for its
        // directory, `state.json` and index row, which follow before any other store job.
        let begun = SessionId::new(sid.clone()).and_then(|id| w.store.begin_session_as(id, config));
        match begun {
            Ok(begun) => {
                w.unrecorded.remove(&sid);
                w.ids.insert(sid.clone(), begun.state().id.clone());
                w.pids.insert(sid.clone(), pid);
                let finish = move |w: &mut Worker| {
                    if let Err(e) = w.store.finish_session(begun) {
                        // The journal keeps the record for the next start; until then its
                        // execs say they could not be saved, and why.
                        tracing::error!(session = %name, "cannot write the session's record: {e}");
                        w.ids.remove(&sid);
                        w.unrecorded
                            .insert(sid, format!("writing its record failed: {e}"));
                    }
                };
                (
                    Ok(()),
                    Some(Box::new(finish) as Box<dyn FnOnce(&mut Worker) + Send>),
                )
            }
            Err(e) => {
                tracing::error!(session = %name, "cannot record the session: {e}");
                let why = format!("recording it failed: {e}");
                w.unrecorded.insert(sid, why.clone());
                (Err(why), None)
            }
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn size_to_store(s: m::Size) -> ai_session_store::Size {
    ai_session_store::Size {
        cols: s.cols,
        rows: s.rows,
    }
}

/// Maps a store error onto the protocol: what a hostile or damaged file caused (a bad id, a
/// bomb, a truncated export, a planted link) is the input's fault, never `internal`.
fn store_err(e: &StoreError) -> RpcError {
    let kind = match e {
        StoreError::NotFound { .. } => ErrorKind::NotFound,
        StoreError::WrongPassphrase { .. } | StoreError::PassphraseRequired { .. } => {
            ErrorKind::PermissionDenied
        }
        StoreError::TooLarge { .. } => ErrorKind::TooLarge,
        e if e.is_bad_input() => ErrorKind::InvalidParams,
        _ => ErrorKind::Internal,
    };
    let err = RpcError::new(kind, e.to_string());
    match e {
        StoreError::TooLarge { .. } => err.with_hint(format!(
            "the daemon's limit comes from {UNPACK_LIMIT_ENV} (MiB, default {}); raise it only for files you trust",
            ai_session_store::DEFAULT_MAX_UNPACKED >> 20
        )),
        _ => err,
    }
}

/// A refused import file: what is wrong (the store's error names the file and the part), and
/// what to do about it.
fn import_err(e: &StoreError) -> RpcError {
    let err = store_err(e);
    match e {
        StoreError::Truncated { .. } => err.with_advice(
            Advice::new(
                "the file ends before the export does (a partial copy or download): export the \
                 session again ({0}) and import the whole file",
            )
            .call("session.export", serde_json::Value::Null),
        ),
        StoreError::Corrupt { .. } | StoreError::InvalidId { .. } | StoreError::Unsafe { .. } => err
            .with_hint(
                "the file is not an intact ai-session export (damaged, edited, or another kind of file): export the session again and import that file",
            ),
        StoreError::NewerVersion { .. } => err.with_hint(
            "the export was written by a newer ai-session: upgrade this one, or export from a matching version",
        ),
        _ => err,
    }
}

fn snapshot_info(meta: &SnapshotMeta) -> SnapshotInfo {
    SnapshotInfo {
        id: meta.id.clone(),
        session: meta.session.to_string(),
        session_name: meta.session_name.clone(),
        label: meta.label.clone(),
        created_ms: meta.created_ms,
        execs: meta.execs,
        scrollback_lines: meta.scrollback_lines,
        bytes: meta.bytes,
        node: None,
    }
}

// ---- background tasks ---------------------------------------------------------------------

/// Starts the checkpoint timer and the exit listener.
pub(crate) fn start(daemon: &Arc<Daemon>) {
    if daemon.persist.worker.is_none() {
        return;
    }
    let d = daemon.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut floods = floods::Floods::default();
        loop {
            tick.tick().await;
            if d.persist.stopping.load(Ordering::Relaxed) {
                return;
            }
            checkpoint(&d.persist, &d.manager, &d.contexts, Some(&mut floods)).await;
        }
    });
    let d = daemon.clone();
    let mut rx = daemon.manager.state_events();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(change) if change.state == "exited" => {
                    // An exited session stays in the manager until killed.
                    if let Some(sid) = d.manager.id_of(&change.session) {
                        d.persist
                            .on_exit(change.session, sid, change.exit_code)
                            .await;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("{n} session state changes missed by the store");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// Saves the scrollback (and context) of every session with output since its last save, then
/// makes the histories durable. The capture runs in the session's actor. The timer's
/// checkpoints pass `floods`: a session pouring out output is captured later (see
/// [`floods`]); shutdown and handover capture every session.
async fn checkpoint(
    persist: &Persist,
    manager: &SessionManager,
    contexts: &Contexts,
    mut floods: Option<&mut floods::Floods>,
) {
    let mut captured = Vec::new();
    let mut live = Vec::new();
    let now = Instant::now();
    for name in manager.names() {
        let Ok(handle) = manager.get(&name) else {
            continue;
        };
        let Ok(info) = handle.info().await else {
            continue;
        };
        live.push(info.id.clone());
        if let Some(f) = floods.as_deref_mut() {
            if f.defer(&info, now) {
                continue;
            }
        }
        let last = persist
            .saved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&info.id)
            .copied();
        if last == Some(info.log_end) {
            continue;
        }
        save_context(persist, contexts, &info.id).await;
        if let Some(scrollback) = capture(&handle).await {
            persist
                .saved
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(info.id.clone(), info.log_end);
            captured.push((info.id, info.name, scrollback));
        }
    }
    if let Some(f) = floods {
        f.retain(&live);
    }
    // The whole-file writes (an fsync each) run beside the store thread, not on it: execs
    // waiting for their checkpoint never queue behind a thousand scrollbacks, nor behind the
    // environments of a thousand new shells' first prompts.
    let resolved = persist
        .call(move |w| {
            // What a shell exported at prompts no exec ended (keys `send` typed), too: taken
            // here, in order with the execs' own, and written by the writer below.
            let envs: Vec<environment::Taken> = captured
                .iter()
                .filter_map(|(sid, name, _)| w.take_environment(sid, name))
                .collect();
            let batch: Vec<(SessionId, Scrollback)> = captured
                .into_iter()
                .filter_map(|(sid, _, s)| w.ids.get(&sid).map(|id| (id.clone(), s)))
                .collect();
            Ok((w.store.clone(), w.envs.clone(), envs, batch))
        })
        .await;
    let Ok((store, saves, envs, batch)) = resolved else {
        return;
    };
    let saved = tokio::task::spawn_blocking(move || {
        for taken in &envs {
            saves.save(&store, taken);
        }
        for (id, scrollback) in &batch {
            if let Err(e) = store.save_scrollback(id, scrollback) {
                tracing::warn!(session = %id, "cannot save the scrollback: {e}");
            }
        }
        if let Err(e) = store.sync() {
            tracing::warn!("store sync: {e}");
        }
    })
    .await;
    if let Err(e) = saved {
        tracing::warn!("scrollback checkpoint failed: {e}");
    }
}

/// Saves the context (history, summary, archive) of the session with id `sid` into its
/// record, if it has one.
async fn save_context(persist: &Persist, contexts: &Contexts, sid: &str) {
    let bytes = match contexts.to_bytes(sid).await {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(session = %sid, "context not saved: {}", e.message);
            return;
        }
    };
    let sid = sid.to_string();
    persist
        .submit(move |w| {
            if let Some(id) = w.ids.get(&sid) {
                if let Err(e) = w.store.save_context(id, &bytes) {
                    tracing::warn!(session = %sid, "cannot save the context: {e}");
                }
            }
        })
        .await;
}

/// The session's scrollback and screen as text.
async fn capture(handle: &ai_session_core::SessionHandle) -> Option<Scrollback> {
    let c = handle
        .capture(m::CaptureParams {
            target: handle.name().to_owned(),
            scrollback: SAVED_LINES,
            ansi: false,
        })
        .await
        .ok()?;
    let mut lines = c.lines;
    let screen = lines.split_off(c.scrollback_lines.min(lines.len()));
    let mut screen = screen.join("\n");
    screen.truncate(screen.trim_end().len());
    Some(Scrollback {
        lines,
        screen,
        replay: Vec::new(),
    })
}

/// What a restored session shows above its new shell's first prompt.
fn prelude(scrollback: Option<&Scrollback>) -> Vec<u8> {
    let Some(s) = scrollback else {
        return Vec::new();
    };
    let mut out = String::new();
    for line in s
        .lines
        .iter()
        .map(String::as_str)
        .chain([s.screen.as_str()])
    {
        if line.is_empty() && out.is_empty() {
            continue;
        }
        out.push_str(&line.replace('\n', "\r\n"));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// `NewParams` that start a saved session again, in `cwd` (the recorded one when it is gone).
fn new_params(state: &SessionState, cwd: &str) -> m::NewParams {
    let c = &state.config;
    let cwd = if Path::new(cwd).is_dir() {
        cwd
    } else {
        tracing::warn!(session = %c.name, "{cwd} is gone; starting in {}", c.cwd);
        c.cwd.as_str()
    };
    let mut params = m::NewParams {
        name: Some(c.name.clone()),
        cwd: Some(cwd.to_owned()),
        env: Some(c.env.clone()),
        size: Some(m::Size {
            cols: c.size.cols,
            rows: c.size.rows,
        }),
        ..Default::default()
    };
    match &c.shell {
        Some(shell) => params.shell = Some(shell.clone()),
        None => params.program = Some(c.argv.clone()),
    }
    params
}

/// Starts a saved session and registers it under its record.
///
/// `policy` is the sandbox it runs in: the record's own for a restart, and for a restore or an
/// import the record's held to the caller's rules (`Access::sandbox_for_saved`), so a session
/// never comes back looser than it ran nor than its caller could create directly. The policy
/// is planned against the record's workspace (the directory the session started in), not the
/// directory it last worked in, and the record says it before the program starts, so a crash
/// at any point brings the session back in the same sandbox. The shell gets back the
/// variables `exported` (what its predecessor's `export -p` printed) before its first prompt.
async fn spawn_with(
    daemon: &Daemon,
    state: &SessionState,
    cwd: &str,
    scrollback: Option<&Scrollback>,
    policy: Option<String>,
    exported: Option<&[u8]>,
) -> Result<m::SessionInfo, RpcError> {
    let mut params = new_params(state, cwd);
    if policy != state.config.policy {
        let (id, kept) = (state.id.clone(), policy.clone());
        daemon
            .persist
            .call(move |w| {
                w.store
                    .set_policy(&id, kept)
                    .map(drop)
                    .map_err(|e| store_err(&e))
            })
            .await?;
    }
    let workspace = policy
        .as_ref()
        .map(|_| std::path::Path::new(&state.config.cwd));
    params.policy = policy;
    let restore = daemon
        .persist
        .place
        .as_ref()
        .zip(exported)
        .map(|(place, text)| {
            let path = place.restore_file(&state.config.name);
            environment::prepare_restore(&path, text).map(|var| (var, path))
        });
    let restore = match restore {
        Some(Ok((var, path))) => {
            params
                .set_env
                .insert(var, path.to_string_lossy().into_owned());
            Some(path)
        }
        Some(Err(e)) => {
            tracing::warn!(session = %state.config.name, "the exported environment is not restored: {e}");
            None
        }
        None => None,
    };
    let created = daemon
        .manager
        // The record's id: a resurrected session keeps its id; a restore or an import made a
        // new record, so a new session gets a new one.
        .create_restored(
            params,
            &prelude(scrollback),
            Some(state.id.to_string()),
            workspace,
        )
        .await
        .map_err(|e| e.to_rpc());
    let info = match created {
        Ok(info) => info,
        Err(e) => {
            if let Some(path) = &restore {
                environment::discard_restore(path);
            }
            return Err(e);
        }
    };
    let (name, pid, id) = (info.name.clone(), info.pid, state.id.clone());
    daemon
        .persist
        .saved
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(info.id.clone(), info.log_end);
    let saved = {
        let id = id.clone();
        daemon
            .persist
            .call(move |w| {
                let context = w.store.load_context(&id).map_err(|e| store_err(&e));
                // A damaged history was logged when the record was loaded.
                let history = w.store.load_history(&id).unwrap_or_default();
                Ok((context, history))
            })
            .await
    };
    match saved {
        Ok((context, history)) => {
            let context = context.unwrap_or_else(|e| {
                tracing::warn!(session = %name, "saved context unreadable: {}", e.message);
                None
            });
            let history = history.iter().map(context_record).collect();
            match daemon.contexts.recover(&info.id, context, history).await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(session = %name, "{n} execs after the last saved context recovered from the history")
                }
                Err(e) => {
                    tracing::warn!(session = %name, "saved context unreadable: {}", e.message)
                }
            }
        }
        Err(e) => tracing::warn!(session = %name, "saved context unreadable: {}", e.message),
    }
    daemon
        .persist
        .submit(move |w| {
            w.pids.insert(id.to_string(), pid);
            w.ids.insert(id.to_string(), id);
        })
        .await;
    Ok(info)
}

/// A history record as the context records an exec (its output is not in the history).
fn context_record(r: &ExecRecord) -> ai_session_context::ExecRecord {
    ai_session_context::ExecRecord::new(r.command.clone(), r.exit_code, r.cwd.clone())
        .duration_ms(r.ended_ms.saturating_sub(r.started_ms))
        .at_ms(r.started_ms)
}

/// A record of a session this daemon adopted from the one it replaced (`daemon upgrade`): the
/// session runs already (at a start without adoption the manager holds no session yet).
fn is_adopted(daemon: &Daemon, state: &SessionState) -> bool {
    daemon.manager.id_of(&state.config.name).is_some()
}

/// Takes up the record of an adopted session as `spawn_with` does for a resurrected one
/// (its context, its checkpoint position, its place in the store thread's maps), without
/// starting anything: the record stays `live`.
async fn adopted(daemon: &Daemon, state: &SessionState) {
    let name = state.config.name.clone();
    let Ok(handle) = daemon.manager.get(&name) else {
        return;
    };
    let Ok(info) = handle.info().await else {
        return;
    };
    daemon
        .persist
        .saved
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(info.id.clone(), info.log_end);
    let id = state.id.clone();
    let context = {
        let id = id.clone();
        daemon
            .persist
            .call(move |w| w.store.load_context(&id).map_err(|e| store_err(&e)))
            .await
    };
    // The context the old daemon saved just before the handover; nothing to catch up.
    match context {
        Ok(context) => {
            if let Err(e) = daemon.contexts.recover(&info.id, context, Vec::new()).await {
                tracing::warn!(session = %name, "saved context unreadable: {}", e.message);
            }
        }
        Err(e) => tracing::warn!(session = %name, "saved context unreadable: {}", e.message),
    }
    let pid = info.pid;
    daemon
        .persist
        .submit(move |w| {
            w.pids.insert(id.to_string(), pid);
            w.ids.insert(id.to_string(), id);
        })
        .await;
}

/// Starts a restored or imported session for `who`, in the sandbox its record kept, held to the
/// rules `who`'s sessions are held to (as `session.new` is), owned by it; on any refusal the
/// record just made is dropped, so nothing is left behind (a record left would come back at
/// the next start). `exported` is what its predecessor's `export -p` printed, when known.
pub(crate) async fn start_for(
    daemon: &Daemon,
    who: &crate::access::Principal,
    state: &SessionState,
    cwd: &str,
    scrollback: Option<&Scrollback>,
    exported: Option<&[u8]>,
) -> Result<m::SessionInfo, RpcError> {
    let started = match daemon.access.sandbox_for_saved(
        who,
        state.config.policy.as_deref(),
        &state.config.cwd,
        &daemon.paths,
    ) {
        Ok(policy) => spawn_with(daemon, state, cwd, scrollback, policy, exported).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(info) => {
            daemon
                .publish(crate::service::Event::SessionCreated {
                    info: &info,
                    params: None,
                    by: who,
                })
                .await;
            Ok(info)
        }
        Err(e) => {
            let id = state.id.clone();
            daemon
                .persist
                .submit(move |w| {
                    w.store.delete_session(&id).ok();
                })
                .await;
            Err(e)
        }
    }
}

/// Daemon start: brings back every session that was live (or restored) when the last daemon
/// stopped. Each damaged record is logged (naming its file) and skipped.
pub(crate) async fn resurrect(daemon: &Arc<Daemon>) {
    let started = Instant::now();
    let loaded = daemon
        .persist
        .call(|w| {
            let all = w.store.load_all_sessions().map_err(|e| store_err(&e))?;
            let mut out = Vec::new();
            for (id, record) in all {
                match record {
                    Ok(r) if matches!(r.state.status, SessionStatus::Live | SessionStatus::Restored) => {
                        if let Some(e) = &r.history_error {
                            tracing::warn!(session = %id, "history unreadable (resurrecting anyway): {e}");
                        }
                        let scrollback = match w.store.load_scrollback(&id) {
                            Ok(s) => s,
                            Err(e) => {
                                out.push(Err(format!("{e}")));
                                None
                            }
                        };
                        let exported = w.store.load_environment(&id).unwrap_or_else(|e| {
                            tracing::warn!(session = %id, "exported environment unreadable: {e}");
                            None
                        });
                        let cwd = r.cwd().to_owned();
                        out.push(Ok((r.state, cwd, scrollback, exported)));
                    }
                    Ok(_) => {}
                    Err(e) => out.push(Err(format!("session {id}: {e}"))),
                }
            }
            Ok(out)
        })
        .await;
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) if e.kind() == Some(ErrorKind::Unsupported) => return,
        Err(e) => {
            daemon
                .persist
                .note_error(format!("cannot list saved sessions: {}", e.message));
            return;
        }
    };
    let mut restored = Vec::new();
    for item in loaded {
        match item {
            Err(msg) => daemon.persist.note_error(msg),
            Ok((state, _, _, _)) if is_adopted(daemon, &state) => adopted(daemon, &state).await,
            Ok((state, cwd, scrollback, exported)) => {
                // The session comes back in the sandbox it ran in.
                let policy = state.config.policy.clone();
                let started = spawn_with(
                    daemon,
                    &state,
                    &cwd,
                    scrollback.as_ref(),
                    policy,
                    exported.as_deref(),
                )
                .await;
                match started {
                    Ok(_) => restored.push(state.id),
                    Err(e) => daemon.persist.note_error(format!(
                        "cannot bring back session '{}' ({}): {}",
                        state.config.name, state.id, e.message
                    )),
                }
            }
        }
    }
    let count = restored.len();
    {
        let mut status = daemon
            .persist
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        status.restored = count;
        status.restore_ms = started.elapsed().as_millis() as u64;
    }
    if count > 0 {
        tracing::info!(
            count,
            ms = started.elapsed().as_millis() as u64,
            "sessions restored"
        );
    }
    daemon
        .persist
        .submit(move |w| {
            for id in restored {
                if let Err(e) = w.store.set_status(&id, SessionStatus::Restored, None) {
                    tracing::warn!(session = %id, "cannot mark the record restored: {e}");
                }
            }
        })
        .await;
}

impl Observer for Persist {
    fn observe(&self, event: &Event<'_>) -> Reaction {
        match event {
            Event::SessionCreated {
                info,
                params: Some(params),
                ..
            } => self.on_new(info, params),
            Event::ExecFinished {
                session,
                session_id,
                command,
                started_ms,
                result,
                ..
            } => self.on_exec(session, session_id, command, *started_ms, result),
            Event::SessionKilled { name, id: Some(id) } => Reaction {
                ack: Some(self.on_kill(name, id)),
                warning: None,
            },
            _ => Reaction::default(),
        }
    }
}

// ---- methods ------------------------------------------------------------------------------

pub(crate) async fn snapshot_create(
    daemon: &Daemon,
    a: SnapshotParams,
) -> Result<SnapshotInfo, RpcError> {
    let persist = &daemon.persist;
    let handle =
        crate::service::session_handle(&daemon.manager, &a.target).map_err(|e| e.to_rpc())?;
    let sid = handle.id().to_owned();
    save_context(persist, &daemon.contexts, &sid).await;
    let scrollback = capture(&handle).await;
    let name = a.target.clone();
    let meta = persist
        .call(move |w| {
            let id = w.id(&sid, &name)?;
            if let Some(s) = &scrollback {
                w.store.save_scrollback(&id, s).map_err(|e| store_err(&e))?;
            }
            w.store.sync_session(&id).map_err(|e| store_err(&e))?;
            w.store
                .snapshot(&id, a.label.as_deref())
                .map_err(|e| store_err(&e))
        })
        .await?;
    Ok(snapshot_info(&meta))
}

pub(crate) async fn snapshot_list(
    daemon: &Daemon,
    who: &crate::access::Principal,
    a: SnapshotListParams,
) -> Result<SnapshotListResult, RpcError> {
    let persist = &daemon.persist;
    let list = persist
        .call(move |w| w.store.list_snapshots(None).map_err(|e| store_err(&e)))
        .await?;
    let snapshots = list
        .iter()
        .filter(|s| a.target.as_ref().is_none_or(|t| *t == s.session_name))
        .filter(|s| {
            let sid = s.session.to_string();
            daemon.access.may_snapshot(who, "list", &sid, None)
        })
        .map(snapshot_info)
        .collect();
    Ok(SnapshotListResult { snapshots })
}

pub(crate) async fn snapshot_restore(
    daemon: &Arc<Daemon>,
    who: &crate::access::Principal,
    a: RestoreParams,
) -> Result<RestoreResult, RpcError> {
    // In a cluster, a snapshot another node took is restored from the cluster's copy.
    if let Some(restored) = checkpoint::snapshots::restore(daemon, who, &a).await {
        return restored;
    }
    let persist = &daemon.persist;
    let manager = daemon.manager.clone();
    let (snap, name) = (a.snapshot.clone(), a.name.clone());
    let (d, caller) = (daemon.clone(), who.clone());
    let restored = persist
        .call(move |w| {
            let (id, session) = w.store.resolve_snapshot(&snap).map_err(|e| store_err(&e))?;
            // Per session: the caller holds snapshot:restore for the snapshot's
            // session (its stable id) or for this very snapshot.
            let sid = session.to_string();
            if !d.access.may_snapshot(&caller, "restore", &sid, Some(&id)) {
                return Err(d.access.snapshot_denied(&caller, "restore", &sid));
            }
            let taken = |n: &str| manager.get(n).is_ok();
            if let Some(n) = &name {
                if taken(n) {
                    return Err(exists(n));
                }
            }
            let r = w
                .store
                .restore(&id, name.as_deref())
                .map_err(|e| store_err(&e))?;
            if taken(&r.state.config.name) {
                w.store.delete_session(&r.state.id).ok();
                return Err(exists(&r.state.config.name));
            }
            Ok(r)
        })
        .await?;
    let state = &restored.state;
    let scrollback = restored.snapshot.scrollback.as_ref();
    let info = start_for(daemon, who, state, &state.cwd, scrollback, None).await?;
    let mut rerun = None;
    if a.rerun_last {
        if let Some(last) = restored.snapshot.history.last() {
            rerun = Some(rerun_last(daemon, who, &info.name, last.command.clone()).await?);
        }
    }
    Ok(RestoreResult {
        session: info,
        snapshot: restored.snapshot.meta.id.clone(),
        rerun,
    })
}

/// `snapshot.prune`: the retention rule given, over the snapshots of every record that went
/// by `target` (snapshots outlive their session), or over all.
pub(crate) async fn snapshot_prune(
    daemon: &Daemon,
    a: PruneParams,
) -> Result<PruneResult, RpcError> {
    if a.keep.is_none() && a.max_bytes.is_none() {
        return Err(RpcError::new(
            ErrorKind::InvalidParams,
            "snapshot.prune needs keep or max_bytes (or both)",
        )
        .with_advice(
            Advice::new("give {0} (how many to keep), {1} (the bytes to keep at most), or both")
                .field("snapshot.prune", "keep")
                .field("snapshot.prune", "max_bytes"),
        ));
    }
    let rule = Retention {
        keep: a.keep,
        max_bytes: a.max_bytes,
    };
    let pruned = daemon
        .persist
        .call(move |w| {
            let store = &w.store;
            let Some(name) = &a.target else {
                return store
                    .prune_snapshots(None, rule, None)
                    .map_err(|e| store_err(&e));
            };
            let mut sessions: Vec<SessionId> = store
                .list_snapshots(None)
                .map_err(|e| store_err(&e))?
                .into_iter()
                .filter(|s| s.session_name == *name)
                .map(|s| s.session)
                .collect();
            sessions.sort();
            sessions.dedup();
            let mut total = ai_session_store::Pruned {
                bytes_total: store.snapshot_bytes().map_err(|e| store_err(&e))?,
                ..Default::default()
            };
            for id in &sessions {
                let one = store
                    .prune_snapshots(Some(id), rule, None)
                    .map_err(|e| store_err(&e))?;
                total.removed.extend(one.removed);
                total.chunks_removed += one.chunks_removed;
                total.bytes_freed += one.bytes_freed;
                total.bytes_total = one.bytes_total;
            }
            Ok(total)
        })
        .await?;
    let removed: Vec<SnapshotInfo> = pruned.removed.iter().map(snapshot_info).collect();
    if let Some(cluster) = &daemon.cluster {
        checkpoint::snapshots::prune(cluster, &removed).await?;
    }
    Ok(PruneResult {
        removed,
        chunks_removed: pruned.chunks_removed,
        bytes_freed: pruned.bytes_freed,
        bytes_total: pruned.bytes_total,
    })
}

/// `session.export`: the first call checkpoints the session and spools its export to a
/// file in the store (streamed, a frame at a time); it and each later call answer one piece
/// of at most `EXPORT_PIECE_BYTES` read from that file at the offset asked. The daemon never
/// holds more than a piece, whatever the size of the session.
pub(crate) async fn export(daemon: &Daemon, a: ExportParams) -> Result<ExportResult, RpcError> {
    let persist = &daemon.persist;
    let handle =
        crate::service::session_handle(&daemon.manager, &a.target).map_err(|e| e.to_rpc())?;
    let sid = handle.id().to_owned();
    let name = a.target.clone();
    let (export, offset) = match a.export {
        Some(export) => (export, a.offset),
        None => {
            save_context(persist, &daemon.contexts, &sid).await;
            let scrollback = capture(&handle).await;
            let sid = sid.clone();
            let spooled = persist
                .call(move |w| {
                    let id = w.id(&sid, &name)?;
                    if let Some(s) = &scrollback {
                        w.store.save_scrollback(&id, s).map_err(|e| store_err(&e))?;
                    }
                    w.store.spool_export(&id).map_err(|e| store_err(&e))
                })
                .await?;
            (spooled.handle, 0)
        }
    };
    let name = a.target.clone();
    let spool = export.clone();
    let max = a.max_bytes.map_or(EXPORT_PIECE_BYTES, |m| {
        m.clamp(1, EXPORT_PIECE_BYTES as u64) as usize
    });
    let (data, total) = persist
        .call(move |w| {
            let id = w.id(&sid, &name)?;
            w.store
                .spool_read(&id, &spool, offset, max)
                .map_err(|e| spool_err(&e, &name))
        })
        .await?;
    if offset > total {
        return Err(RpcError::new(
            ErrorKind::InvalidParams,
            format!("offset {offset} is past the end of the export ({total} bytes)"),
        )
        .with_hint("pass the next_offset of the previous answer"));
    }
    let next_offset = offset + data.len() as u64;
    Ok(ExportResult {
        data_b64: base64::engine::general_purpose::STANDARD.encode(&data),
        bytes: total,
        offset,
        next_offset,
        export: (next_offset < total).then_some(export),
    })
}

/// A piece of an export that cannot be read: a handle that is not (or no longer) there says
/// to start again.
fn spool_err(e: &StoreError, target: &str) -> RpcError {
    match e {
        StoreError::NotFound { .. } => RpcError::new(
            ErrorKind::NotFound,
            format!("no export in progress matches that handle for session '{target}' (finished, abandoned, or from before a restart)"),
        )
        .with_hint("start the export again: session.export without `export`"),
        e => store_err(e),
    }
}

pub(crate) async fn import(
    daemon: &Daemon,
    who: &crate::access::Principal,
    a: ImportParams,
) -> Result<ImportResult, RpcError> {
    let persist = &daemon.persist;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&a.data_b64)
        .map_err(|e| {
            RpcError::new(
                ErrorKind::InvalidParams,
                format!("data_b64 is not base64: {e}"),
            )
        })?;
    let manager = daemon.manager.clone();
    let source = PathBuf::from(a.source.unwrap_or_else(|| "<import>".into()));
    let name = a.name.clone();
    let (mut state, snapshots, scrollback) = persist
        .call(move |w| {
            // Decoded and checked first, the name checked against the live sessions, then
            // written once under its final name and status: a kill at any point never leaves
            // a record under the export's name (`Store::open` rolls back an import cut short).
            let pending = w
                .store
                .decode_import(&bytes, &source)
                .map_err(|e| import_err(&e))?;
            let final_name = name.unwrap_or_else(|| pending.state().config.name.clone());
            if manager.get(&final_name).is_ok() {
                return Err(exists(&final_name));
            }
            let imported = w
                .store
                .commit_import(pending, Some(&final_name), Some(SessionStatus::Restored))
                .map_err(|e| store_err(&e))?;
            let mut state = imported.state;
            let scrollback = w.store.load_scrollback(&state.id).ok().flatten();
            let cwd = w
                .store
                .load_session(&state.id)
                .map(|r| r.cwd().to_owned())
                .unwrap_or_else(|_| state.cwd.clone());
            state.cwd = cwd;
            Ok((state, imported.snapshots, scrollback))
        })
        .await?;
    let cwd = std::mem::take(&mut state.cwd);
    let info = start_for(daemon, who, &state, &cwd, scrollback.as_ref(), None).await?;
    Ok(ImportResult {
        session: info,
        snapshots: snapshots.iter().map(snapshot_info).collect(),
    })
}

fn exists(name: &str) -> RpcError {
    RpcError::new(
        ErrorKind::SessionExists,
        format!("a session named '{name}' already exists"),
    )
    .with_hint("give the new session another name with -s NAME")
}

/// `--rerun-last`: the snapshot's last command, run as the caller through the same path as
/// `session.exec` (so it is checkpointed and fed to the contexts like any other).
async fn rerun_last(
    daemon: &Daemon,
    who: &crate::access::Principal,
    target: &str,
    command: String,
) -> Result<m::ExecResult, RpcError> {
    crate::service::exec(
        daemon,
        who,
        m::ExecParams {
            target: target.to_owned(),
            command,
            timeout_ms: None,
            idle_timeout_ms: None,
            max_output_bytes: None,
            view_budget: None,
            stdin_b64: None,
            view_only: false,
        },
    )
    .await
}
