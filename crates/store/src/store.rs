//! `Store`: the state directory as a whole. Opening it checks the layout version (migrating
//! older layouts), unlocks the key when the store is encrypted, sweeps temporary files of
//! killed writers and opens the index. Session files are handled here; snapshots in
//! `snapshot`, export and import in `archive`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::crypt::{Cipher, KdfParams, KeyCheck};
use crate::error::{Error, Result};
use crate::file;
use crate::history::{self, HistoryWriter};
use crate::index::{ExecRow, ExecStats, Index};
use crate::record::{
    ExecRecord, Scrollback, SessionConfig, SessionId, SessionState, SessionStatus, now_ms,
};
use crate::retention::Retention;
use crate::seal::{self, DEFAULT_MAX_UNPACKED, Kind, Packer, SCHEMA_VERSION, Unpacker};

/// The environment variable the daemon reads the passphrase from.
pub const PASSPHRASE_ENV: &str = "AI_SESSION_PASSPHRASE";
/// Open history files kept between appends; past this, the least recently opened is closed.
const MAX_OPEN_HISTORIES: usize = 256;

/// A new record made durable by [`Store::begin_session_as`], its `state.json` and index row
/// still to write ([`Store::finish_session`]).
#[derive(Debug)]
#[must_use = "the record has no state.json until finish_session writes it"]
pub struct BegunSession {
    state: SessionState,
    /// The `state.json` bytes, journaled; `None` when the record is already whole (a store
    /// that is not durable writes it at once).
    bytes: Option<Vec<u8>>,
}

impl BegunSession {
    /// The record as it will be saved.
    pub fn state(&self) -> &SessionState {
        &self.state
    }
}

/// How to open a store.
#[derive(Clone)]
pub struct Options {
    /// zstd level for everything the store compresses (1..=22; 3 is zstd's default).
    pub compression_level: i32,
    /// Encrypts the store with a key derived from this passphrase. A store that has a key
    /// check (`metadata/keycheck.json`) cannot be opened without it.
    pub passphrase: Option<String>,
    /// Argon2id costs used when the store's key check is created.
    pub kdf: KdfParams,
    /// fsync whole-file writes (state, scrollback, context, snapshots) before renaming them
    /// into place, and their directory after. Off, they survive a process kill but not a power
    /// loss. History appends are never fsynced one by one (see `Store::sync`).
    pub durable: bool,
    /// The most bytes one stored item (a scrollback, a context, a history frame, a JSON file)
    /// may decompress to, and one import as a whole. A larger declared size is refused before
    /// anything is decompressed; an item that expands past its declared size is cut off at
    /// that size. 256 MiB by default; the daemon reads `AI_SESSION_UNPACK_LIMIT_MIB`.
    pub max_unpacked: u64,
    /// Retention applied after each snapshot (see `Retention`); none by default.
    pub snapshots: Retention,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            compression_level: 3,
            passphrase: None,
            kdf: KdfParams::default(),
            durable: true,
            max_unpacked: DEFAULT_MAX_UNPACKED,
            snapshots: Retention::default(),
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("compression_level", &self.compression_level)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "<set>"))
            .field("kdf", &self.kdf)
            .field("durable", &self.durable)
            .field("max_unpacked", &self.max_unpacked)
            .field("snapshots", &self.snapshots)
            .finish()
    }
}

impl Options {
    /// The defaults, with the passphrase from `AI_SESSION_PASSPHRASE` when set and not empty.
    pub fn from_env() -> Self {
        Self {
            passphrase: std::env::var(PASSPHRASE_ENV).ok().filter(|p| !p.is_empty()),
            ..Self::default()
        }
    }
}

/// `metadata/layout.json`: the layout version of the directory as a whole.
#[derive(Serialize, Deserialize)]
struct Layout {
    schema: u32,
}

/// Failed writes kept in `WriteFailures::recent`.
const RECENT_FAILURES: usize = 16;

/// Writes that failed because of the machine since the store was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteFailures {
    /// Failed writes in all.
    pub count: u64,
    /// Of which the file system was full.
    pub disk_full: u64,
    /// When the last one failed (Unix ms).
    pub last_ms: Option<u64>,
    /// The latest failures, oldest first (at most 16): what was written, for which session,
    /// and the error naming the file.
    pub recent: Vec<String>,
}

/// A session as `load_all_sessions` returns it: its state and its last checkpoint.
#[derive(Debug)]
pub struct SessionRecord {
    pub state: SessionState,
    /// Number of execs in the history.
    pub execs: u64,
    /// The last exec recorded (the last checkpoint); `None` for a fresh session.
    pub last_exec: Option<ExecRecord>,
    pub has_scrollback: bool,
    pub has_context: bool,
    /// Bytes of a torn last history frame that were ignored (a killed writer).
    pub torn_bytes: u64,
    /// The history could not be read (corruption in its middle, wrong key): the state is
    /// still good, so the session can be resurrected without its history.
    pub history_error: Option<Error>,
}

impl SessionRecord {
    /// The directory to resurrect the session in: the last exec's, else the recorded one.
    pub fn cwd(&self) -> &str {
        self.last_exec
            .as_ref()
            .map_or(self.state.cwd.as_str(), |e| e.cwd.as_str())
    }
}

/// The state directory. `Send + Sync`: share it behind an `Arc`; every method is blocking
/// (call it from a blocking thread in an async daemon).
pub struct Store {
    pub(crate) root: PathBuf,
    pub(crate) level: i32,
    pub(crate) durable: bool,
    pub(crate) max_unpacked: u64,
    pub(crate) cipher: Option<Cipher>,
    /// Kept to open export files sealed under another store's salt.
    pub(crate) passphrase: Option<String>,
    pub(crate) retention: Retention,
    /// Held while chunks are written and until the manifest referencing them is committed,
    /// and while unreferenced chunks are collected.
    chunks: Mutex<()>,
    index: Mutex<Index>,
    /// Exec rows not yet in the index (locked after `index` when both are held).
    queued: Mutex<crate::index_queue::Queue>,
    writers: Mutex<HashMap<SessionId, HistoryWriter>>,
    /// New records appended durably, their `state.json` not yet (see `journal.rs`).
    journal: Mutex<crate::journal::Journal>,
    /// What `open` found of killed writers and removed.
    recovered: Vec<crate::recover::Recovered>,
    failures: Mutex<WriteFailures>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root)
            .field("encrypted", &self.cipher.is_some())
            .finish()
    }
}

/// A store closed on purpose (not a killed process) leaves no index marker: the queued rows go
/// in, and the next open does not rebuild the index.
impl Drop for Store {
    fn drop(&mut self) {
        let index = self.index.get_mut().unwrap_or_else(|p| p.into_inner());
        let queue = self.queued.get_mut().unwrap_or_else(|p| p.into_inner());
        // Nothing is lost on a failure: the marker stays, and the next open rebuilds.
        queue.close(index).ok();
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>, options: Options) -> Result<Self> {
        let root = root.into();
        file::create_dir(&root)?;
        for dir in ["sessions", "snapshots", "metadata", "chunks"] {
            file::dir_beneath(&root, &root.join(dir), true)?;
        }
        let cipher = unlock(&root, &options)?;
        let migrated = crate::migrate::run(&root, cipher.as_ref(), options.compression_level)?;
        let index_path = root.join("metadata").join("index.db");
        // SQLite follows links: a planted `index.db` link would have it write elsewhere.
        for name in ["index.db", "index.db-wal", "index.db-shm"] {
            let path = root.join("metadata").join(name);
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::unsafe_path(
                    path,
                    "it is a symbolic link, and the store never follows links below its root",
                ));
            }
        }
        let fresh_index = !index_path.exists();
        let (index, rebuilt) = open_index(&index_path, cipher.is_some())?;
        let created_journal = !root.join("metadata").join(crate::journal::JOURNAL).exists();
        let journal = crate::journal::Journal::open(&root)?;
        let metadata = root.join("metadata");
        // A process killed while exec rows waited for the index: they are in the histories.
        let fresh_index =
            fresh_index || rebuilt || crate::index_queue::Queue::left_behind(&metadata);
        let mut store = Self {
            root,
            level: options.compression_level,
            durable: options.durable,
            max_unpacked: options.max_unpacked,
            cipher,
            passphrase: options.passphrase,
            retention: options.snapshots,
            chunks: Mutex::new(()),
            index: Mutex::new(index),
            queued: Mutex::new(crate::index_queue::Queue::new(&metadata)),
            writers: Mutex::new(HashMap::new()),
            journal: Mutex::new(journal),
            recovered: Vec::new(),
            failures: Mutex::new(WriteFailures::default()),
        };
        if created_journal {
            file::sync_dir(&store.root.join("metadata"))?;
        }
        store.replay_journal()?;
        store.recovered = store.recover()?;
        if fresh_index || migrated {
            store.reindex()?;
        } else {
            store.reconcile()?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn is_encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// What `open` found of writers killed half-way (temporary files, imports cut short,
    /// uncommitted sessions and snapshots, unreferenced chunks) and removed, one item each.
    pub fn recovered(&self) -> &[crate::recover::Recovered] {
        &self.recovered
    }

    /// The index, with every exec row queued so far written into it first.
    pub(crate) fn index(&self) -> MutexGuard<'_, Index> {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let drained = self.queue().drain_into(&mut index);
        if let Err(e) = drained {
            self.note_failure("index exec", None, &e);
        }
        index
    }

    fn queue(&self) -> MutexGuard<'_, crate::index_queue::Queue> {
        self.queued.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn chunk_lock(&self) -> MutexGuard<'_, ()> {
        self.chunks.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn journal(&self) -> MutexGuard<'_, crate::journal::Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn writers(&self) -> MutexGuard<'_, HashMap<SessionId, HistoryWriter>> {
        self.writers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn session_dir(&self, id: &SessionId) -> PathBuf {
        self.root.join("sessions").join(id.as_str())
    }

    /// `session_dir`, checked to be a real directory below the root (created with `create`).
    pub(crate) fn session_dir_checked(&self, id: &SessionId, create: bool) -> Result<PathBuf> {
        let dir = self.session_dir(id);
        file::dir_beneath(&self.root, &dir, create)?;
        Ok(dir)
    }

    /// A decompressor bounded by this store's limit, item by item.
    pub(crate) fn unpacker(&self) -> Unpacker {
        Unpacker::new(self.max_unpacked)
    }

    /// Records a new session (status `Live`) under a fresh id.
    pub fn create_session(&self, config: SessionConfig) -> Result<SessionState> {
        let id = new_id(&self.root)?;
        self.create_session_as(id, config)
    }

    /// Records a new session (status `Live`) under the id its owner gave it (the daemon's
    /// session id, so a session keeps one id in memory, on disk and after a restart). An id
    /// that already has a record is refused (`Exists`), never overwritten.
    pub fn create_session_as(&self, id: SessionId, config: SessionConfig) -> Result<SessionState> {
        let begun = self.begin_session_as(id, config)?;
        self.finish_session(begun)
    }

    /// The first half of [`Store::create_session_as`]: returns once the record would survive a
    /// power loss (in a durable store, its journal frame is fdatasynced, see `journal.rs`), so
    /// a caller may answer its own caller now and run [`Store::finish_session`] after. Until
    /// then the record has no `state.json` (nothing appends to it or reads it); a store that
    /// opens before it did writes it back from the journal.
    pub fn begin_session_as(&self, id: SessionId, config: SessionConfig) -> Result<BegunSession> {
        if self.session_dir(&id).join("state.json").exists() {
            return Err(Error::Exists {
                what: "session record",
                id: id.to_string(),
            });
        }
        let now = now_ms();
        let state = SessionState {
            schema: SCHEMA_VERSION,
            id,
            cwd: config.cwd.clone(),
            config,
            status: SessionStatus::Live,
            exit_code: None,
            updated_ms: now,
            restored_from: None,
        };
        if !self.durable {
            // Nothing is fsynced: the whole record costs what its journal frame would.
            self.noted(
                "record new session",
                Some(&state.id),
                self.write_state(&state),
            )?;
            return Ok(BegunSession { state, bytes: None });
        }
        let journaled = (|| {
            let path = self.session_dir(&state.id).join("state.json");
            let bytes = encode_json(&state, Kind::State, self.cipher.as_ref(), self.level, &path)?;
            self.journal().append(&state.id, &bytes)?;
            Ok(bytes)
        })();
        let bytes = self.noted("record new session", Some(&state.id), journaled)?;
        Ok(BegunSession {
            state,
            bytes: Some(bytes),
        })
    }

    /// The second half of [`Store::create_session_as`]: the record's directory, its
    /// `state.json` (no fsync: the journal holds it until the next [`Store::sync`]) and its
    /// index row.
    pub fn finish_session(&self, begun: BegunSession) -> Result<SessionState> {
        let BegunSession { state, bytes } = begun;
        let Some(bytes) = bytes else {
            return Ok(state);
        };
        let written = self.write_encoded_state(&state, &bytes, false);
        self.noted("record new session", Some(&state.id), written)?;
        Ok(state)
    }

    /// Writes `sessions/{id}/state.json` (atomically) and updates the index.
    pub fn save_state(&self, state: &SessionState) -> Result<()> {
        self.noted("save state", Some(&state.id), self.write_state(state))
    }

    fn write_state(&self, state: &SessionState) -> Result<()> {
        let path = self.session_dir(&state.id).join("state.json");
        let bytes = encode_json(state, Kind::State, self.cipher.as_ref(), self.level, &path)?;
        self.write_encoded_state(state, &bytes, self.durable)
    }

    /// `state`'s `state.json` (`bytes`, already encoded; fsynced when `sync`), its directory
    /// made when missing, and its index row.
    fn write_encoded_state(&self, state: &SessionState, bytes: &[u8], sync: bool) -> Result<()> {
        let dir = self.session_dir_checked(&state.id, true)?;
        file::write_atomic(&dir.join("state.json"), bytes, sync)?;
        self.index().upsert_session(state)
    }

    pub fn load_state(&self, id: &SessionId) -> Result<SessionState> {
        let path = self.session_dir_checked(id, false)?.join("state.json");
        let bytes =
            file::read_bounded(&path, self.max_unpacked)?.ok_or_else(|| Error::NotFound {
                what: "session",
                id: id.to_string(),
            })?;
        let state: SessionState = decode_json(
            &bytes,
            Kind::State,
            self.cipher.as_ref(),
            &path,
            &mut self.unpacker(),
        )?;
        if &state.id != id {
            return Err(Error::corrupt(
                &path,
                format!("holds session '{}'", state.id),
            ));
        }
        Ok(state)
    }

    /// Sets the status (and exit code) and saves the state: on exit, on kill, on restore.
    pub fn set_status(
        &self,
        id: &SessionId,
        status: SessionStatus,
        exit_code: Option<i32>,
    ) -> Result<SessionState> {
        let mut state = self.load_state(id)?;
        state.status = status;
        state.exit_code = exit_code;
        state.updated_ms = now_ms();
        self.noted("record status", Some(id), self.write_state(&state))?;
        Ok(state)
    }

    /// Records the sandbox a session runs in from now on (a restore for a principal bound to a
    /// policy, or an agent's, confines a session its record kept unconfined): written before
    /// the session's program starts, so a crash never brings it back looser.
    pub fn set_policy(&self, id: &SessionId, policy: Option<String>) -> Result<SessionState> {
        let mut state = self.load_state(id)?;
        state.config.policy = policy;
        state.updated_ms = now_ms();
        self.noted("record policy", Some(id), self.write_state(&state))?;
        Ok(state)
    }

    /// Checkpoints one exec: appends a frame to `history.log` (no fsync) and a row to the
    /// analytics table.
    pub fn append_exec(&self, id: &SessionId, record: &ExecRecord) -> Result<()> {
        self.append_execs(id, std::slice::from_ref(record))
    }

    /// Checkpoints several execs as one frame.
    pub fn append_execs(&self, id: &SessionId, records: &[ExecRecord]) -> Result<()> {
        let appended = self.append_inner(id, records);
        self.noted("append exec", Some(id), appended)
    }

    /// `append_exec`, then an fsync of the history: when this returns `Ok` the record is on
    /// disk, and a file system that accepts writes it cannot place (delayed allocation, a
    /// full disk found at writeback) says so here instead of losing it silently.
    pub fn append_exec_synced(&self, id: &SessionId, record: &ExecRecord) -> Result<()> {
        self.append_exec(id, record)?;
        let synced = self.sync_session(id);
        self.noted("sync history", Some(id), synced)
    }

    fn append_inner(&self, id: &SessionId, records: &[ExecRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        {
            let mut writers = self.writers();
            if !writers.contains_key(id) {
                let dir = self.session_dir_checked(id, false)?;
                if !file::present(&dir.join("state.json")) {
                    return Err(Error::NotFound {
                        what: "session",
                        id: id.to_string(),
                    });
                }
                if writers.len() >= MAX_OPEN_HISTORIES {
                    evict_one(&mut writers)?;
                }
                let w = HistoryWriter::open(
                    &dir.join("history.log"),
                    self.cipher.as_ref(),
                    self.level,
                    self.max_unpacked,
                )?;
                writers.insert(id.clone(), w);
            }
            if let Some(w) = writers.get_mut(id) {
                w.append(records, self.cipher.as_ref())?;
            }
        }
        // The history is the record; the index is derived (rebuilt by `reindex`, and at the
        // next open if rows were still queued when the process died). Its rows queue and go
        // in as one transaction (`index_queue`). A failure to index (SQLite's WAL on a full
        // disk) is counted, not the append's failure.
        let full = self.queue().push(id, records);
        match full {
            Ok(true) => drop(self.index()),
            Ok(false) => {}
            Err(e) => self.note_failure("index exec", Some(id), &e),
        }
        Ok(())
    }

    pub fn load_history(&self, id: &SessionId) -> Result<Vec<ExecRecord>> {
        let path = self.session_dir_checked(id, false)?.join("history.log");
        Ok(history::read(&path, self.cipher.as_ref(), self.max_unpacked)?.records)
    }

    /// Checkpoints the screen and scrollback (`sessions/{id}/scrollback`, replaced atomically).
    pub fn save_scrollback(&self, id: &SessionId, scrollback: &Scrollback) -> Result<()> {
        let saved = self.save_blob(id, "scrollback", Kind::Scrollback, &scrollback.encode());
        self.noted("save scrollback", Some(id), saved)
    }

    pub fn load_scrollback(&self, id: &SessionId) -> Result<Option<Scrollback>> {
        let path = self.session_dir_checked(id, false)?.join("scrollback");
        match self.load_blob(&path, Kind::Scrollback)? {
            Some(raw) => Scrollback::decode(&raw, &path).map(Some),
            None => Ok(None),
        }
    }

    /// Stores the context layer's bytes (`sessions/{id}/context.bin`, compressed, replaced
    /// atomically).
    pub fn save_context(&self, id: &SessionId, context: &[u8]) -> Result<()> {
        let saved = self.save_blob(id, "context.bin", Kind::Context, context);
        self.noted("save context", Some(id), saved)
    }

    pub fn load_context(&self, id: &SessionId) -> Result<Option<Vec<u8>>> {
        let dir = self.session_dir_checked(id, false)?;
        self.load_blob(&dir.join("context.bin"), Kind::Context)
    }

    /// Stores what the session's shell exported at its last prompt, as the shell printed it
    /// (`sessions/{id}/environment`, sealed like the rest in an encrypted store, replaced
    /// atomically). The store does not read it: the shell that comes back sources it.
    pub fn save_environment(&self, id: &SessionId, exported: &[u8]) -> Result<()> {
        let saved = self.save_blob(id, "environment", Kind::Environment, exported);
        self.noted("save environment", Some(id), saved)
    }

    pub fn load_environment(&self, id: &SessionId) -> Result<Option<Vec<u8>>> {
        let dir = self.session_dir_checked(id, false)?;
        self.load_blob(&dir.join("environment"), Kind::Environment)
    }

    fn save_blob(&self, id: &SessionId, name: &str, kind: Kind, raw: &[u8]) -> Result<()> {
        let dir = self.session_dir_checked(id, false)?;
        if !file::present(&dir.join("state.json")) {
            return Err(Error::NotFound {
                what: "session",
                id: id.to_string(),
            });
        }
        let path = dir.join(name);
        let bytes = seal::encode_blob(
            &mut Packer::new(self.level),
            kind,
            raw,
            self.cipher.as_ref(),
            &path,
        )?;
        file::write_atomic(&path, &bytes, self.durable)
    }

    /// Reads and decodes a blob in a checked directory; a file longer than the limit is refused
    /// before it is read.
    pub(crate) fn load_blob(&self, path: &Path, kind: Kind) -> Result<Option<Vec<u8>>> {
        match file::read_bounded(path, self.max_unpacked)? {
            Some(bytes) => seal::decode_blob(
                &mut self.unpacker(),
                kind,
                &bytes,
                self.cipher.as_ref(),
                path,
            )
            .map(Some),
            None => Ok(None),
        }
    }

    /// One session's state and last checkpoint.
    pub fn load_session(&self, id: &SessionId) -> Result<SessionRecord> {
        let state = self.load_state(id)?;
        let dir = self.session_dir_checked(id, false)?;
        file::sweep_tmp(&dir)?;
        let hist_path = dir.join("history.log");
        let (execs, last_exec, torn_bytes, history_error) =
            match history::read_last(&hist_path, self.cipher.as_ref(), self.max_unpacked) {
                Ok((n, last, torn)) => (n, last, torn, None),
                Err(e) => (0, None, 0, Some(e)),
            };
        Ok(SessionRecord {
            state,
            execs,
            last_exec,
            has_scrollback: dir.join("scrollback").exists(),
            has_context: dir.join("context.bin").exists(),
            torn_bytes,
            history_error,
        })
    }

    /// Every session in the store, each with its own result: a damaged session is an `Err`
    /// naming its file and never stops the others. Ordered by id (creation time for ids made
    /// by `create_session`).
    pub fn load_all_sessions(&self) -> Result<Vec<(SessionId, Result<SessionRecord>)>> {
        let names = file::list_names(&self.root.join("sessions"))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let Ok(id) = SessionId::new(name) else {
                continue;
            };
            // A directory without a state is a restore or import killed before its commit.
            let dir = self.session_dir(&id);
            if !file::present(&dir.join("state.json")) && file::is_real_dir(&dir) {
                continue;
            }
            let record = self.load_session(&id);
            out.push((id, record));
        }
        Ok(out)
    }

    /// Ids of the sessions named `name`, newest first.
    pub fn find_sessions(&self, name: &str) -> Result<Vec<SessionId>> {
        self.index().sessions_named(name)
    }

    /// Deletes a session's record (its snapshots stay until deleted).
    pub fn delete_session(&self, id: &SessionId) -> Result<()> {
        // A record still in the journal would come back at the next open without this.
        self.journal().deleted(id)?;
        self.writers().remove(id);
        let dir = self.session_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove", &dir, e)),
        }
        self.index().remove_session(id)
    }

    /// Makes every history append so far durable (fsync) and checkpoints the index's WAL.
    /// Call it every few seconds and at shutdown; a process kill loses nothing without it,
    /// a power loss loses what came after the last call.
    pub fn sync(&self) -> Result<()> {
        let synced = (|| {
            self.settle_journal()?;
            for w in self.writers().values_mut() {
                w.sync()?;
            }
            self.index().checkpoint()
        })();
        self.noted("sync", None, synced)
    }

    /// [`Store::sync`] for the last time in this process (shutdown, handover): the marker of
    /// exec rows waiting for the index goes at once rather than a minute after the last row
    /// (`index_queue`), so the next open does not rebuild the index.
    pub fn sync_final(&self) -> Result<()> {
        self.sync()?;
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let closed = self.queue().close(&mut index);
        self.noted("sync", None, closed)
    }

    /// Writes that failed for a reason of the machine (a full disk, an I/O error), since open:
    /// what the daemon reports in its status.
    pub fn write_failures(&self) -> WriteFailures {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts a failed write (not a refusal of bad input or of an unknown id) and passes the
    /// result on.
    pub(crate) fn noted<T>(&self, op: &str, id: Option<&SessionId>, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.note_failure(op, id, e);
        }
        r
    }

    /// Counts `e` when it is a failure of the machine.
    fn note_failure(&self, op: &str, id: Option<&SessionId>, e: &Error) {
        let machine = matches!(
            e,
            Error::Io { .. } | Error::DiskFull { .. } | Error::Index { .. } | Error::Codec { .. }
        );
        if machine {
            self.record_failure(op, id, e);
        }
    }

    /// Counts `e` whatever it is: for work done after the call's own effect succeeded
    /// (retention after a snapshot, chunk collection after a delete), whose failure does not
    /// fail the call but must not pass unseen.
    pub(crate) fn record_failure(&self, op: &str, id: Option<&SessionId>, e: &Error) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.count += 1;
        if matches!(e, Error::DiskFull { .. }) {
            f.disk_full += 1;
        }
        f.last_ms = Some(now_ms());
        if f.recent.len() >= RECENT_FAILURES {
            f.recent.remove(0);
        }
        f.recent.push(match id {
            Some(id) => format!("{op} (session {id}): {e}"),
            None => format!("{op}: {e}"),
        });
    }

    /// fsyncs one session's history (before a snapshot, at kill).
    pub fn sync_session(&self, id: &SessionId) -> Result<()> {
        match self.writers().get_mut(id) {
            Some(w) => w.sync(),
            None => Ok(()),
        }
    }

    /// Closes a session's history file (after a kill; the next append reopens it).
    pub fn close_session(&self, id: &SessionId) -> Result<()> {
        match self.writers().remove(id) {
            Some(mut w) => w.sync(),
            None => Ok(()),
        }
    }

    pub fn exec_stats(&self, session: Option<&SessionId>) -> Result<ExecStats> {
        self.index().exec_stats(session)
    }

    pub fn slowest_execs(&self, session: Option<&SessionId>, limit: usize) -> Result<Vec<ExecRow>> {
        self.index().slowest_execs(session, limit)
    }

    /// Rebuilds the index from the files (after a migration, or if `index.db` was lost).
    /// Damaged sessions and snapshots are left out of it.
    pub fn reindex(&self) -> Result<()> {
        let sessions = self.load_all_sessions()?;
        let snapshots = self.scan_snapshots()?;
        let mut index = self.index();
        index.rebuild(|ix| {
            for (id, record) in &sessions {
                let Ok(record) = record else { continue };
                ix.upsert_session(&record.state)?;
                if record.execs > 0 {
                    let path = self.session_dir(id).join("history.log");
                    if let Ok(h) = history::read(&path, self.cipher.as_ref(), self.max_unpacked) {
                        ix.add_execs_raw(id, &h.records)?;
                    }
                }
            }
            for meta in &snapshots {
                ix.add_snapshot(meta)?;
            }
            Ok(())
        })
    }
}

impl Store {
    /// Brings the index in line with the files after a crash between a file's commit and
    /// its index update (a session or snapshot created, or deleted, just before a kill).
    fn reconcile(&self) -> Result<()> {
        let (indexed_sessions, indexed_snapshots) = self.index().ids()?;
        let indexed: std::collections::HashSet<String> = indexed_sessions.into_iter().collect();
        let mut on_disk = std::collections::HashSet::new();
        for name in file::list_names(&self.root.join("sessions"))? {
            let Ok(id) = SessionId::new(name.clone()) else {
                continue;
            };
            on_disk.insert(name.clone());
            if !indexed.contains(&name) {
                if let Ok(state) = self.load_state(&id) {
                    self.index().upsert_session(&state)?;
                }
            }
        }
        for gone in indexed.difference(&on_disk) {
            if let Ok(id) = SessionId::new(gone.clone()) {
                self.index().remove_session(&id)?;
            }
        }
        let snapshots = self.scan_snapshots()?;
        let indexed: std::collections::HashSet<String> = indexed_snapshots.into_iter().collect();
        let on_disk: std::collections::HashSet<String> =
            snapshots.iter().map(|m| m.id.clone()).collect();
        for meta in &snapshots {
            if !indexed.contains(&meta.id) {
                self.index().add_snapshot(meta)?;
            }
        }
        for gone in indexed.difference(&on_disk) {
            self.index().remove_snapshot(gone)?;
        }
        Ok(())
    }
}

/// Opens the index; a damaged one (it is derived data) is moved aside and rebuilt.
fn open_index(path: &Path, redact: bool) -> Result<(Index, bool)> {
    match Index::open(path, redact) {
        Ok(index) => Ok((index, false)),
        Err(Error::Index { .. }) => {
            let aside = path.with_extension(format!("db.damaged-{}", now_ms()));
            std::fs::rename(path, &aside).map_err(|e| Error::io("move aside", path, e))?;
            for ext in ["db-wal", "db-shm"] {
                std::fs::remove_file(path.with_extension(ext)).ok();
            }
            Ok((Index::open(path, redact)?, true))
        }
        Err(e) => Err(e),
    }
}

fn evict_one(writers: &mut HashMap<SessionId, HistoryWriter>) -> Result<()> {
    let Some(id) = writers.keys().next().cloned() else {
        return Ok(());
    };
    if let Some(mut w) = writers.remove(&id) {
        w.sync()?;
    }
    Ok(())
}

/// A fresh time-ordered id: 12 hex digits of milliseconds, '-', 6 random hex digits. The
/// millisecond part never repeats within a process (it runs ahead of the clock under bursts),
/// so ids sort in creation order.
pub(crate) fn new_id(root: &Path) -> Result<SessionId> {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = now_ms();
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
            Some(now.max(last + 1))
        })
        .unwrap_or(now);
    let ms = now.max(prev + 1);
    let mut r = [0u8; 3];
    crate::crypt::random(&mut r, root)?;
    SessionId::new(format!("{ms:012x}-{}", crate::crypt::hex(&r)))
}

/// Reads the key check, or creates it when a passphrase is given to a store without one.
fn unlock(root: &Path, options: &Options) -> Result<Option<Cipher>> {
    let path = root.join("metadata").join("keycheck.json");
    match (file::read_optional(&path)?, &options.passphrase) {
        (Some(bytes), Some(pass)) => {
            let check: KeyCheck = serde_json::from_slice(&bytes)
                .map_err(|e| Error::corrupt(&path, format!("bad key check: {e}")))?;
            check.unlock(pass.as_bytes(), &path, root).map(Some)
        }
        (Some(_), None) => Err(Error::PassphraseRequired {
            path: root.to_owned(),
        }),
        (None, Some(pass)) => {
            let (check, cipher) = KeyCheck::create(pass.as_bytes(), options.kdf, &path)?;
            let bytes = serde_json::to_vec_pretty(&check)
                .map_err(|e| Error::corrupt(&path, e.to_string()))?;
            file::write_atomic(&path, &bytes, true)?;
            Ok(Some(cipher))
        }
        (None, None) => Ok(None),
    }
}

/// JSON files: plain JSON in a plaintext store (readable with any tool), a sealed blob in an
/// encrypted one.
pub(crate) fn encode_json<T: Serialize>(
    value: &T,
    kind: Kind,
    cipher: Option<&Cipher>,
    level: i32,
    path: &Path,
) -> Result<Vec<u8>> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| Error::Codec {
        path: path.to_owned(),
        detail: format!("encode: {e}"),
    })?;
    match cipher {
        Some(c) => seal::encode_blob(&mut Packer::new(level), kind, &json, Some(c), path),
        None => Ok(json),
    }
}

#[derive(Deserialize)]
struct Versioned {
    schema: Option<u32>,
}

pub(crate) fn decode_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    kind: Kind,
    cipher: Option<&Cipher>,
    path: &Path,
    unpacker: &mut Unpacker,
) -> Result<T> {
    let opened;
    let json = if seal::is_blob(bytes) {
        opened = seal::decode_blob(unpacker, kind, bytes, cipher, path)?;
        &opened[..]
    } else {
        bytes
    };
    let v: Versioned = serde_json::from_slice(json).map_err(|e| json_error(path, json, e))?;
    match v.schema {
        Some(found) if found > SCHEMA_VERSION => {
            return Err(Error::NewerVersion {
                path: path.to_owned(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        None => return Err(Error::corrupt(path, "no schema version")),
        Some(_) => {}
    }
    serde_json::from_slice(json).map_err(|e| json_error(path, json, e))
}

fn json_error(path: &Path, json: &[u8], e: serde_json::Error) -> Error {
    if e.is_eof() {
        Error::truncated(path, format!("JSON ends early ({} bytes)", json.len()))
    } else {
        Error::corrupt(path, format!("bad JSON: {e}"))
    }
}

pub(crate) fn read_layout(root: &Path) -> Result<Option<u32>> {
    let path = root.join("metadata").join("layout.json");
    match file::read_optional(&path)? {
        Some(bytes) => {
            let layout: Layout =
                serde_json::from_slice(&bytes).map_err(|e| json_error(&path, &bytes, e))?;
            if layout.schema > SCHEMA_VERSION {
                return Err(Error::NewerVersion {
                    path,
                    found: layout.schema,
                    supported: SCHEMA_VERSION,
                });
            }
            Ok(Some(layout.schema))
        }
        None => Ok(None),
    }
}

pub(crate) fn write_layout(root: &Path, schema: u32) -> Result<()> {
    let path = root.join("metadata").join("layout.json");
    let bytes =
        serde_json::to_vec(&Layout { schema }).map_err(|e| Error::corrupt(&path, e.to_string()))?;
    file::write_atomic(&path, &bytes, true)
}
