//! `metadata/index.db`: an SQLite index of sessions and snapshots and a table of per-exec
//! analytics. It is derived from the files (`Store::reindex` rebuilds it), so the files stay
//! the source of truth; WAL journal, `synchronous=NORMAL`: a commit is a WAL append, fsynced
//! at WAL checkpoints, and a killed process never leaves a half-applied transaction.
//!
//! In an encrypted store the index holds no command text and no working directories: only
//! ids, names, labels, times, durations and exit codes.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};

use crate::error::{Error, Result};
use crate::record::{ExecRecord, SessionId, SessionState, SessionStatus};
use crate::snapshot::SnapshotMeta;

const INDEX_SCHEMA: u32 = 1;

pub(crate) struct Index {
    conn: Connection,
    path: PathBuf,
    /// Keep command text out of the index (encrypted stores).
    redact: bool,
}

/// Aggregates over finished execs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecStats {
    pub count: u64,
    /// Execs with a non-zero exit code.
    pub failed: u64,
    /// Execs without an exit code (timed out or still running when recorded).
    pub unfinished: u64,
    pub total_ms: u64,
    pub mean_ms: f64,
    pub max_ms: u64,
}

/// One row of the exec analytics table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRow {
    pub session: SessionId,
    /// `None` in an encrypted store.
    pub command: Option<String>,
    pub exit_code: Option<i32>,
    pub started_ms: u64,
    pub duration_ms: u64,
}

impl Index {
    pub fn open(path: &Path, redact: bool) -> Result<Self> {
        let conn = Connection::open(path).map_err(|e| index_err(path, e))?;
        let mut index = Self {
            conn,
            path: path.to_owned(),
            redact,
        };
        index.init()?;
        Ok(index)
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        index_err(&self.path, e)
    }

    fn init(&mut self) -> Result<()> {
        let path = self.path.clone();
        let e = |e| index_err(&path, e);
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(e)?;
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(e)?;
        // No automatic WAL checkpoints: they fsync, and would land inside an exec's checkpoint
        // every thousand pages. `Store::sync` checkpoints instead.
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(e)?;
        self.conn
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(e)?;
        let version: u32 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(e)?;
        if version > INDEX_SCHEMA {
            return Err(Error::NewerVersion {
                path,
                found: version,
                supported: INDEX_SCHEMA,
            });
        }
        if version < INDEX_SCHEMA {
            let tx = self.conn.transaction().map_err(e)?;
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS sessions (
                    id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL,
                    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
                 CREATE INDEX IF NOT EXISTS sessions_name ON sessions(name);
                 CREATE TABLE IF NOT EXISTS snapshots (
                    id TEXT PRIMARY KEY, session_id TEXT NOT NULL, session_name TEXT NOT NULL,
                    label TEXT, created_ms INTEGER NOT NULL, execs INTEGER NOT NULL,
                    scrollback_lines INTEGER NOT NULL, bytes INTEGER NOT NULL);
                 CREATE INDEX IF NOT EXISTS snapshots_session ON snapshots(session_id, created_ms);
                 CREATE TABLE IF NOT EXISTS execs (
                    session_id TEXT NOT NULL, command TEXT, exit_code INTEGER,
                    started_ms INTEGER NOT NULL, duration_ms INTEGER NOT NULL);
                 CREATE INDEX IF NOT EXISTS execs_session ON execs(session_id, started_ms);
                 PRAGMA user_version = 1;",
            )
            .map_err(e)?;
            tx.commit().map_err(e)?;
        }
        Ok(())
    }

    pub fn upsert_session(&self, state: &SessionState) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO sessions (id, name, status, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET name = ?2, status = ?3, updated_ms = ?5",
            )
            .and_then(|mut s| {
                s.execute(params![
                    state.id.as_str(),
                    state.config.name,
                    status_str(state.status),
                    state.config.created_ms as i64,
                    state.updated_ms as i64
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn remove_session(&mut self, id: &SessionId) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| index_err(&path, e))?;
        for sql in [
            "DELETE FROM sessions WHERE id = ?1",
            "DELETE FROM execs WHERE session_id = ?1",
        ] {
            tx.execute(sql, params![id.as_str()])
                .map_err(|e| index_err(&path, e))?;
        }
        tx.commit().map_err(|e| index_err(&path, e))
    }

    /// Records execs for the analytics table: one autocommit insert for a single exec (a WAL
    /// append), one transaction for a batch.
    pub fn add_execs(&mut self, id: &SessionId, records: &[ExecRecord]) -> Result<()> {
        if records.len() <= 1 {
            return self.add_execs_raw(id, records);
        }
        let path = self.path.clone();
        self.conn
            .execute_batch("BEGIN")
            .map_err(|e| index_err(&path, e))?;
        let result = self.add_execs_raw(id, records);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.conn
            .execute_batch(end)
            .map_err(|e| index_err(&path, e))?;
        result
    }

    /// Rows of several sessions in one transaction (see `index_queue`).
    pub(crate) fn add_rows(&mut self, rows: &[(SessionId, ExecRecord)]) -> Result<()> {
        let path = self.path.clone();
        self.conn
            .execute_batch("BEGIN")
            .map_err(|e| index_err(&path, e))?;
        let result = rows
            .iter()
            .try_for_each(|(id, r)| self.add_execs_raw(id, std::slice::from_ref(r)));
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.conn
            .execute_batch(end)
            .map_err(|e| index_err(&path, e))?;
        result
    }

    pub fn add_snapshot(&self, meta: &SnapshotMeta) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO snapshots
                 (id, session_id, session_name, label, created_ms, execs, scrollback_lines, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    meta.id,
                    meta.session.as_str(),
                    meta.session_name,
                    meta.label,
                    meta.created_ms as i64,
                    meta.execs as i64,
                    meta.scrollback_lines as i64,
                    meta.bytes as i64
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn remove_snapshot(&self, id: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM snapshots WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Snapshots, oldest first, of one session or all.
    pub fn snapshots(&self, session: Option<&SessionId>) -> Result<Vec<SnapshotMeta>> {
        let sql = "SELECT id, session_id, session_name, label, created_ms, execs,
                          scrollback_lines, bytes
                   FROM snapshots WHERE ?1 IS NULL OR session_id = ?1
                   ORDER BY id";
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![session.map(SessionId::as_str)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, session, session_name, label, created, execs, lines, bytes) =
                row.map_err(|e| self.err(e))?;
            out.push(SnapshotMeta {
                schema: crate::seal::SCHEMA_VERSION,
                id,
                session: SessionId::new(session)?,
                session_name,
                label,
                created_ms: created as u64,
                execs: execs as u64,
                scrollback_lines: lines as u64,
                bytes: bytes as u64,
            });
        }
        Ok(out)
    }

    /// Snapshot ids starting with `prefix`.
    pub fn snapshot_ids(&self, prefix: &str) -> Result<Vec<(String, SessionId)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, session_id FROM snapshots WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![prefix], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, session) = row.map_err(|e| self.err(e))?;
            out.push((id, SessionId::new(session)?));
        }
        Ok(out)
    }

    /// Ids of sessions named `name`, newest first.
    pub fn sessions_named(&self, name: &str) -> Result<Vec<SessionId>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id FROM sessions WHERE name = ?1 ORDER BY created_ms DESC, id DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![name], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(SessionId::new(row.map_err(|e| self.err(e))?)?);
        }
        Ok(out)
    }

    pub fn exec_stats(&self, session: Option<&SessionId>) -> Result<ExecStats> {
        let sql = "SELECT count(*), coalesce(sum(exit_code IS NOT NULL AND exit_code != 0), 0),
                          coalesce(sum(exit_code IS NULL), 0), coalesce(sum(duration_ms), 0),
                          coalesce(avg(duration_ms), 0.0), coalesce(max(duration_ms), 0)
                   FROM execs WHERE ?1 IS NULL OR session_id = ?1";
        self.conn
            .query_row(sql, params![session.map(SessionId::as_str)], |r| {
                Ok(ExecStats {
                    count: r.get::<_, i64>(0)? as u64,
                    failed: r.get::<_, i64>(1)? as u64,
                    unfinished: r.get::<_, i64>(2)? as u64,
                    total_ms: r.get::<_, i64>(3)? as u64,
                    mean_ms: r.get::<_, f64>(4)?,
                    max_ms: r.get::<_, i64>(5)? as u64,
                })
            })
            .map_err(|e| self.err(e))
    }

    /// The slowest execs, of one session or all.
    pub fn slowest_execs(&self, session: Option<&SessionId>, limit: usize) -> Result<Vec<ExecRow>> {
        let sql = "SELECT session_id, command, exit_code, started_ms, duration_ms FROM execs
                   WHERE ?1 IS NULL OR session_id = ?1 ORDER BY duration_ms DESC LIMIT ?2";
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![session.map(SessionId::as_str), limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<i32>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (session, command, exit_code, started, duration) = row.map_err(|e| self.err(e))?;
            out.push(ExecRow {
                session: SessionId::new(session)?,
                command,
                exit_code,
                started_ms: started as u64,
                duration_ms: duration as u64,
            });
        }
        Ok(out)
    }

    /// Ids of every indexed session and snapshot (for `Store::open`'s reconciliation).
    pub fn ids(&self) -> Result<(Vec<String>, Vec<String>)> {
        let mut lists = Vec::new();
        for sql in ["SELECT id FROM sessions", "SELECT id FROM snapshots"] {
            let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| self.err(e))?;
            let mut ids = Vec::new();
            for row in rows {
                ids.push(row.map_err(|e| self.err(e))?);
            }
            lists.push(ids);
        }
        let snapshots = lists.pop().unwrap_or_default();
        let sessions = lists.pop().unwrap_or_default();
        Ok((sessions, snapshots))
    }

    /// Empties every table (before a rebuild from the files), in one transaction with `fill`.
    pub fn rebuild(&mut self, fill: impl FnOnce(&Index) -> Result<()>) -> Result<()> {
        let path = self.path.clone();
        self.conn
            .execute_batch(
                "BEGIN IMMEDIATE; DELETE FROM sessions; DELETE FROM snapshots; DELETE FROM execs;",
            )
            .map_err(|e| index_err(&path, e))?;
        let result = fill(self);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        self.conn
            .execute_batch(end)
            .map_err(|e| index_err(&path, e))?;
        result
    }

    /// Inserts execs without opening a transaction (inside `rebuild`).
    pub fn add_execs_raw(&self, id: &SessionId, records: &[ExecRecord]) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "INSERT INTO execs (session_id, command, exit_code, started_ms, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(|e| self.err(e))?;
        for r in records {
            let command = (!self.redact).then_some(r.command.as_str());
            stmt.execute(params![
                id.as_str(),
                command,
                r.exit_code,
                r.started_ms as i64,
                r.duration_ms() as i64
            ])
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Copies the WAL into the database file and fsyncs it.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(|e| self.err(e))
    }
}

fn index_err(path: &Path, source: rusqlite::Error) -> Error {
    Error::Index {
        path: path.to_owned(),
        source,
    }
}

fn status_str(s: SessionStatus) -> &'static str {
    match s {
        SessionStatus::Live => "live",
        SessionStatus::Exited => "exited",
        SessionStatus::Restored => "restored",
    }
}
