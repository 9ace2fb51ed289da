//! `metadata/decisions.db`: the decisions agents record (what they chose, why, how sure they
//! were, the alternatives) and their outcomes. Unlike `index.db` it is not derived from other
//! files, so it is a database of its own that `reindex` never touches (WAL journal,
//! `synchronous=NORMAL`, like the index).
//!
//! Columns that analytics group and filter by (agent, session, task, confidence, outcome,
//! times, exec counts) are plain; what was written by the agent (the decision, its rationale,
//! its alternatives, the outcome's note) is one JSON body, sealed with the store's key in an
//! encrypted store (bound to the decision's id, so a body moved to another row fails to open).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension as _, Row, params};
use serde::{Deserialize, Serialize};

use crate::crypt::Cipher;
use crate::error::{Error, Result};

/// 2 added `kind` and `session_id` (a version 1 database gains them when opened).
const SCHEMA: u32 = 2;

/// How a decision turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionOutcome {
    /// Not known yet: no linked exec finished, none set by hand.
    Unknown,
    Success,
    Failure,
}

impl DecisionOutcome {
    fn as_str(self) -> &'static str {
        match self {
            DecisionOutcome::Unknown => "unknown",
            DecisionOutcome::Success => "success",
            DecisionOutcome::Failure => "failure",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "success" => DecisionOutcome::Success,
            "failure" => DecisionOutcome::Failure,
            _ => DecisionOutcome::Unknown,
        }
    }
}

/// What the agent wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionText {
    pub decision: String,
    #[serde(default)]
    pub rationale: String,
    #[serde(default)]
    pub alternatives: Vec<String>,
    /// Set with an explicit outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A decision to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    pub text: DecisionText,
    /// 0.0..=1.0.
    pub confidence: f64,
    pub agent: Option<String>,
    /// The session's name, as shown.
    pub session: Option<String>,
    /// The session's immutable id: what its execs link by (a later session with the name is
    /// another session).
    pub session_id: Option<String>,
    pub task: Option<String>,
    /// What sort of decision it is ("fix", "test", "dependency" ...), for rates by kind.
    pub kind: Option<String>,
    pub created_ms: u64,
}

/// A decision as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub id: u64,
    pub text: DecisionText,
    pub confidence: f64,
    pub agent: Option<String>,
    pub session: Option<String>,
    pub session_id: Option<String>,
    pub task: Option<String>,
    pub kind: Option<String>,
    pub created_ms: u64,
    pub outcome: DecisionOutcome,
    /// The outcome was set by hand (it no longer follows the execs).
    pub explicit: bool,
    /// Execs linked to it, and how many of them failed.
    pub execs: u64,
    pub failed_execs: u64,
    /// When the outcome last changed.
    pub outcome_ms: Option<u64>,
}

/// Which decisions to list.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub agent: Option<String>,
    pub session: Option<String>,
    pub task: Option<String>,
    pub kind: Option<String>,
    /// The newest this many (all when `None`).
    pub limit: Option<usize>,
}

/// The decisions database.
pub struct Decisions {
    conn: Connection,
    path: PathBuf,
    cipher: Option<Cipher>,
}

impl std::fmt::Debug for Decisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decisions")
            .field("path", &self.path)
            .field("encrypted", &self.cipher.is_some())
            .finish()
    }
}

const COLUMNS: &str = "id, body, confidence, agent, session, task, created_ms, outcome, \
                       explicit, execs, failed_execs, outcome_ms, kind, session_id";

impl Decisions {
    pub(crate) fn open(path: &Path, cipher: Option<Cipher>) -> Result<Self> {
        let err = |e| db_err(path, e);
        let conn = Connection::open(path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        let version: u32 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        if version > SCHEMA {
            return Err(Error::NewerVersion {
                path: path.to_owned(),
                found: version,
                supported: SCHEMA,
            });
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS decisions (
                id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL,
                confidence REAL NOT NULL, agent TEXT, session TEXT, task TEXT,
                created_ms INTEGER NOT NULL, outcome TEXT NOT NULL DEFAULT 'unknown',
                explicit INTEGER NOT NULL DEFAULT 0, execs INTEGER NOT NULL DEFAULT 0,
                failed_execs INTEGER NOT NULL DEFAULT 0, outcome_ms INTEGER,
                kind TEXT, session_id TEXT);
             CREATE INDEX IF NOT EXISTS decisions_session ON decisions(session, id);
             CREATE INDEX IF NOT EXISTS decisions_agent ON decisions(agent, id);",
        )
        .map_err(err)?;
        if version == 1 {
            // Version 1 had neither column; its decisions keep linking by session name.
            conn.execute_batch(
                "ALTER TABLE decisions ADD COLUMN kind TEXT;
                 ALTER TABLE decisions ADD COLUMN session_id TEXT;",
            )
            .map_err(err)?;
        }
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS decisions_session_id ON decisions(session_id, id);
             PRAGMA user_version = 2;",
        )
        .map_err(err)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
            cipher,
        })
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        db_err(&self.path, e)
    }

    fn aad(id: u64) -> Vec<u8> {
        format!("ai-session decision {id}").into_bytes()
    }

    fn seal(&self, id: u64, text: &DecisionText) -> Result<Vec<u8>> {
        seal_text(self.cipher.as_ref(), &self.path, id, text)
    }

    fn unseal(&self, id: u64, body: &[u8]) -> Result<DecisionText> {
        let corrupt = |detail: String| Error::Corrupt {
            path: self.path.clone(),
            detail: format!("decision {id}: {detail}"),
        };
        let plain = match &self.cipher {
            Some(c) => c
                .open(body, &Self::aad(id))
                .ok_or_else(|| corrupt("its sealed text does not open with this key".into()))?,
            None => body.to_vec(),
        };
        serde_json::from_slice(&plain).map_err(|e| corrupt(e.to_string()))
    }

    /// Records a decision; its id.
    pub fn record(&mut self, d: &NewDecision) -> Result<u64> {
        let tx = self.conn.transaction().map_err(|e| db_err(&self.path, e))?;
        tx.execute(
            "INSERT INTO decisions
               (body, confidence, agent, session, task, created_ms, kind, session_id)
             VALUES (x'', ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                d.confidence,
                d.agent,
                d.session,
                d.task,
                d.created_ms as i64,
                d.kind,
                d.session_id
            ],
        )
        .map_err(|e| db_err(&self.path, e))?;
        let id = tx.last_insert_rowid() as u64;
        let body = seal_text(self.cipher.as_ref(), &self.path, id, &d.text)?;
        tx.execute(
            "UPDATE decisions SET body = ?1 WHERE id = ?2",
            params![body, id as i64],
        )
        .map_err(|e| db_err(&self.path, e))?;
        tx.commit().map_err(|e| db_err(&self.path, e))?;
        Ok(id)
    }

    fn read_row(r: &Row<'_>) -> rusqlite::Result<(Decision, Vec<u8>)> {
        let id = r.get::<_, i64>(0)? as u64;
        let body: Vec<u8> = r.get(1)?;
        let d = Decision {
            id,
            text: DecisionText::default(),
            confidence: r.get(2)?,
            agent: r.get(3)?,
            session: r.get(4)?,
            task: r.get(5)?,
            created_ms: r.get::<_, i64>(6)? as u64,
            outcome: DecisionOutcome::parse(&r.get::<_, String>(7)?),
            explicit: r.get::<_, i64>(8)? != 0,
            execs: r.get::<_, i64>(9)? as u64,
            failed_execs: r.get::<_, i64>(10)? as u64,
            outcome_ms: r.get::<_, Option<i64>>(11)?.map(|v| v as u64),
            kind: r.get(12)?,
            session_id: r.get(13)?,
        };
        Ok((d, body))
    }

    fn with_text(&self, (mut d, body): (Decision, Vec<u8>)) -> Result<Decision> {
        d.text = self.unseal(d.id, &body)?;
        Ok(d)
    }

    /// One decision.
    pub fn get(&self, id: u64) -> Result<Decision> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM decisions WHERE id = ?1"),
                params![id as i64],
                Self::read_row,
            )
            .optional()
            .map_err(|e| self.err(e))?
            .ok_or_else(|| Error::NotFound {
                what: "decision",
                id: id.to_string(),
            })?;
        self.with_text(row)
    }

    /// Decisions matching `f`, oldest first.
    pub fn list(&self, f: &DecisionFilter) -> Result<Vec<Decision>> {
        let limit = f.limit.map_or(-1, |l| l as i64);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM decisions
                 WHERE (?1 IS NULL OR agent = ?1) AND (?2 IS NULL OR session = ?2)
                   AND (?3 IS NULL OR task = ?3) AND (?5 IS NULL OR kind = ?5)
                 ORDER BY id DESC LIMIT ?4"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![f.agent, f.session, f.task, limit, f.kind],
                Self::read_row,
            )
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        let mut out = rows
            .into_iter()
            .map(|row| self.with_text(row))
            .collect::<Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }

    /// Sets the outcome by hand, with an optional note; it then stops following the execs.
    pub fn set_outcome(
        &mut self,
        id: u64,
        outcome: DecisionOutcome,
        note: Option<String>,
        now_ms: u64,
    ) -> Result<Decision> {
        let mut d = self.get(id)?;
        if note.is_some() {
            d.text.note = note;
        }
        let body = self.seal(id, &d.text)?;
        self.conn
            .execute(
                "UPDATE decisions SET outcome = ?1, explicit = 1, outcome_ms = ?2, body = ?3
                 WHERE id = ?4",
                params![outcome.as_str(), now_ms as i64, body, id as i64],
            )
            .map_err(|e| self.err(e))?;
        self.get(id)
    }

    /// An exec finished in a session (`exec`: its id and name), run by `agent` if one, while
    /// that agent held `tasks`. It is linked to the latest decision still following its execs
    /// among: those made in that session, those made for one of those tasks, and the agent's
    /// own made for neither. The decision's outcome follows its last linked exec: `success`
    /// when it exited 0, `failure` otherwise. Returns the decision's id.
    pub fn link_exec(&mut self, exec: &LinkedExec<'_>, now_ms: u64) -> Result<Option<u64>> {
        let tasks = serde_json::to_string(exec.tasks).map_err(|e| Error::Codec {
            path: self.path.clone(),
            detail: e.to_string(),
        })?;
        let id: Option<i64> = self
            .conn
            .query_row(
                "SELECT id FROM decisions WHERE explicit = 0
                   AND (session_id = ?1 OR (session_id IS NULL AND session = ?2)
                        OR task IN (SELECT value FROM json_each(?4))
                        OR (session IS NULL AND task IS NULL AND ?3 IS NOT NULL AND agent = ?3))
                 ORDER BY id DESC LIMIT 1",
                params![exec.session_id, exec.session, exec.agent, tasks],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let Some(id) = id else {
            return Ok(None);
        };
        let failed = exec.failed;
        let outcome = if failed {
            DecisionOutcome::Failure
        } else {
            DecisionOutcome::Success
        };
        self.conn
            .execute(
                "UPDATE decisions SET execs = execs + 1, failed_execs = failed_execs + ?1,
                   outcome = ?2, outcome_ms = ?3 WHERE id = ?4",
                params![i64::from(failed), outcome.as_str(), now_ms as i64, id],
            )
            .map_err(|e| self.err(e))?;
        Ok(Some(id as u64))
    }

    /// What a decision whose outcome still follows its execs is waiting on: an exec
    /// elsewhere links to nothing, so the daemon asks only for these.
    pub fn open_targets(&self) -> Result<OpenTargets> {
        let mut open = OpenTargets::default();
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT coalesce(session_id, session), agent, task FROM decisions
                 WHERE explicit = 0",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (session, agent, task) = row.map_err(|e| self.err(e))?;
            if session.is_none() && task.is_none() {
                open.agents.extend(agent);
            }
            open.sessions.extend(session);
            open.tasks.extend(task);
        }
        Ok(open)
    }
}

/// An exec to link to its decision (see [`Decisions::link_exec`]).
#[derive(Debug, Clone, Copy)]
pub struct LinkedExec<'a> {
    pub session_id: &'a str,
    pub session: &'a str,
    pub agent: Option<&'a str>,
    /// The tasks the agent was running.
    pub tasks: &'a [String],
    pub failed: bool,
}

/// The sessions (ids, or names for decisions older than ids), agents and tasks with a
/// decision still following its execs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenTargets {
    pub sessions: Vec<String>,
    pub agents: Vec<String>,
    pub tasks: Vec<String>,
}

/// The body of decision `id`: its JSON, sealed when the store is encrypted.
fn seal_text(
    cipher: Option<&Cipher>,
    path: &Path,
    id: u64,
    text: &DecisionText,
) -> Result<Vec<u8>> {
    let plain = serde_json::to_vec(text).map_err(|e| Error::Codec {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    match cipher {
        Some(c) => c.seal(&plain, &Decisions::aad(id), path),
        None => Ok(plain),
    }
}

impl crate::Store {
    /// Opens the decisions database (`metadata/decisions.db`), sealed like the rest of the
    /// store. Each call opens a connection of its own: the daemon keeps one on a thread.
    pub fn decisions(&self) -> Result<Decisions> {
        let dir = self.root().join("metadata");
        Decisions::open(&dir.join("decisions.db"), self.cipher.clone())
    }
}

fn db_err(path: &Path, source: rusqlite::Error) -> Error {
    Error::Index {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::crypt::KdfParams;

    fn new(session: Option<&str>, agent: Option<&str>, confidence: f64) -> NewDecision {
        NewDecision {
            text: DecisionText {
                decision: "run the failing test alone".into(),
                rationale: "the suite is flaky".into(),
                alternatives: vec!["rerun everything".into()],
                note: None,
            },
            confidence,
            agent: agent.map(str::to_owned),
            session: session.map(str::to_owned),
            session_id: session.map(|s| format!("id-{s}")),
            task: None,
            kind: None,
            created_ms: 1,
        }
    }

    fn exec<'a>(session: &'a str, agent: Option<&'a str>, failed: bool) -> LinkedExec<'a> {
        LinkedExec {
            session_id: match session {
                "s" => "id-s",
                "other" => "id-other",
                _ => "id-unknown",
            },
            session,
            agent,
            tasks: &[],
            failed,
        }
    }

    #[test]
    fn execs_link_to_the_latest_open_decision_and_set_its_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Decisions::open(&dir.path().join("decisions.db"), None).unwrap();
        let first = db.record(&new(Some("s"), Some("a"), 0.7)).unwrap();
        assert_eq!(
            db.link_exec(&exec("s", None, false), 5).unwrap(),
            Some(first)
        );
        let second = db.record(&new(Some("s"), Some("a"), 0.4)).unwrap();
        assert_eq!(
            db.link_exec(&exec("s", None, true), 6).unwrap(),
            Some(second)
        );
        assert_eq!(db.get(first).unwrap().outcome, DecisionOutcome::Success);
        let d = db.get(second).unwrap();
        assert_eq!(
            (d.outcome, d.execs, d.failed_execs),
            (DecisionOutcome::Failure, 1, 1)
        );
        // Set by hand, it no longer follows; the exec goes to the older open one.
        db.set_outcome(
            second,
            DecisionOutcome::Success,
            Some("fixed by hand".into()),
            7,
        )
        .unwrap();
        assert_eq!(
            db.link_exec(&exec("s", None, true), 8).unwrap(),
            Some(first)
        );
        let d = db.get(second).unwrap();
        assert!(d.explicit);
        assert_eq!(d.text.note.as_deref(), Some("fixed by hand"));
        // An agent's decision without a session takes that agent's execs anywhere.
        let loose = db.record(&new(None, Some("b"), 0.9)).unwrap();
        assert_eq!(
            db.link_exec(&exec("other", Some("b"), false), 9).unwrap(),
            Some(loose)
        );
        assert_eq!(
            db.link_exec(&exec("other", Some("c"), false), 9).unwrap(),
            None
        );
        // A later session with the name is another session.
        let renamed = LinkedExec {
            session_id: "id-s-again",
            ..exec("s", None, false)
        };
        assert_eq!(db.link_exec(&renamed, 9).unwrap(), None);
        // A decision made for a task takes the execs of whoever runs the task, anywhere.
        let mut for_task = new(None, Some("a"), 0.6);
        for_task.task = Some("task-7".into());
        for_task.kind = Some("fix".into());
        let t = db.record(&for_task).unwrap();
        let tasks = ["task-7".to_owned()];
        let running = LinkedExec {
            tasks: &tasks,
            ..exec("other", Some("c"), true)
        };
        assert_eq!(db.link_exec(&running, 10).unwrap(), Some(t));
        assert_eq!(db.get(t).unwrap().kind.as_deref(), Some("fix"));
        let open = db.open_targets().unwrap();
        assert_eq!(
            (open.sessions, open.agents, open.tasks),
            (
                vec!["id-s".to_owned()],
                vec!["b".to_owned()],
                vec!["task-7".to_owned()]
            )
        );
        let fixes = DecisionFilter {
            kind: Some("fix".into()),
            ..DecisionFilter::default()
        };
        assert_eq!(db.list(&fixes).unwrap().len(), 1);
        assert_eq!(db.list(&DecisionFilter::default()).unwrap().len(), 4);
    }

    #[test]
    fn an_encrypted_store_keeps_the_text_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.db");
        let params = KdfParams {
            m_cost_kib: 8,
            t_cost: 1,
            p_cost: 1,
        };
        let cipher = Cipher::derive(b"pw", b"0123456789abcdef", params, &path).unwrap();
        let mut db = Decisions::open(&path, Some(cipher)).unwrap();
        let id = db.record(&new(Some("s"), None, 0.5)).unwrap();
        assert_eq!(db.get(id).unwrap().text.rationale, "the suite is flaky");
        drop(db);
        let raw = Connection::open(&path).unwrap();
        let body: Vec<u8> = raw
            .query_row("SELECT body FROM decisions", [], |r| r.get(0))
            .unwrap();
        assert!(!String::from_utf8_lossy(&body).contains("flaky"));
    }
}

#[cfg(test)]
mod migration {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A version 1 database (no `kind`, no `session_id`) opens, keeps its decisions, and its
    /// session decisions still take that session's execs by name.
    #[test]
    fn a_version_1_database_gains_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE decisions (
                id INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL,
                confidence REAL NOT NULL, agent TEXT, session TEXT, task TEXT,
                created_ms INTEGER NOT NULL, outcome TEXT NOT NULL DEFAULT 'unknown',
                explicit INTEGER NOT NULL DEFAULT 0, execs INTEGER NOT NULL DEFAULT 0,
                failed_execs INTEGER NOT NULL DEFAULT 0, outcome_ms INTEGER);
             INSERT INTO decisions (body, confidence, session, created_ms)
               VALUES (CAST('{\"decision\":\"old\"}' AS BLOB), 0.5, 'w', 1);
             PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(old);
        let mut db = Decisions::open(&path, None).unwrap();
        let d = db.get(1).unwrap();
        assert_eq!((d.text.decision.as_str(), d.kind), ("old", None));
        let exec = LinkedExec {
            session_id: "some-id",
            session: "w",
            agent: None,
            tasks: &[],
            failed: false,
        };
        assert_eq!(db.link_exec(&exec, 2).unwrap(), Some(1));
        drop(db);
        let version: u32 = Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA);
    }
}
