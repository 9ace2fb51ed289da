//! The tamper-evident audit log: append-only JSON lines chained by SHA-256.
//!
//! Each line is one [`Entry`]. `hash` is the SHA-256 (hex) of the canonical JSON of the
//! entry without its `hash` field (fields in declaration order), and `prev_hash` is the
//! previous line's `hash` (64 zeros for the first). `seq` starts at 1 and increases by
//! one. So an edited line breaks its own hash, a deleted or inserted line breaks the
//! `seq` run and the chain, and a reordering breaks both.
//!
//! Appends are crash-safe: one `write` of the whole line (with its newline) on an
//! `O_APPEND` file, then `fsync`. A crash mid-write leaves a last line without a newline;
//! [`verify`] reports it as [`VerifyError::Truncated`] and [`AuditLog::open`] refuses to
//! append after it until [`AuditLog::repair_truncated_tail`] is called explicitly.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::risk;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Errors from the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading or writing the file failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// The log file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The existing log is damaged; appending would hide the damage.
    #[error("audit log {path} fails verification: {error}")]
    Damaged {
        /// The log file.
        path: PathBuf,
        /// What verification found.
        error: VerifyError,
    },
    /// An entry could not be serialized (a bug).
    #[error("audit entry serialization: {0}")]
    Json(#[from] serde_json::Error),
}

/// The first problem [`verify`] finds; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The line is not a valid entry.
    #[error("line {line}: not a valid audit entry ({message})")]
    Malformed {
        /// Line number.
        line: usize,
        /// Parser message.
        message: String,
    },
    /// The line's content does not match its hash (edited).
    #[error("line {line}: hash mismatch (the entry was edited)")]
    HashMismatch {
        /// Line number.
        line: usize,
    },
    /// The line does not chain to the previous one (deleted, inserted or reordered).
    #[error(
        "line {line}: prev_hash does not match line {prev} (a line was deleted, inserted or moved)"
    )]
    BrokenChain {
        /// Line number.
        line: usize,
        /// The previous line number.
        prev: usize,
    },
    /// The sequence number is not the previous plus one.
    #[error("line {line}: seq {found} where {expected} was expected")]
    BadSeq {
        /// Line number.
        line: usize,
        /// Expected seq.
        expected: u64,
        /// Found seq.
        found: u64,
    },
    /// The last line has no newline: an append was interrupted.
    #[error("line {line}: truncated (no trailing newline; an append was interrupted)")]
    Truncated {
        /// Line number.
        line: usize,
    },
}

/// Who performed an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// The daemon's owner (the local user).
    Owner,
    /// An agent, by agent id.
    Agent(String),
    /// An HTTP client, by token id (never the token itself).
    HttpToken(String),
    /// The daemon itself (limit hits, sandbox events).
    Daemon,
}

/// One audit line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// RFC 3339 UTC time with milliseconds.
    pub time: String,
    /// Who.
    pub actor: Actor,
    /// Which session, if any.
    pub session: Option<String>,
    /// What (`exec`, `create`, `kill`, `denied_request`, `sandbox_violation`, `limit_hit`).
    pub action: String,
    /// Details (the command text, the missing capability, the limit).
    pub detail: String,
    /// `ok`, `denied`, `error`, ...
    pub result: String,
    /// Advisory risk score (see [`crate::risk`]).
    pub risk: u8,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// What to record; the log fills in seq, time, risk and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Who.
    pub actor: Actor,
    /// Which session.
    pub session: Option<String>,
    /// What.
    pub action: String,
    /// Details.
    pub detail: String,
    /// Result.
    pub result: String,
}

fn hash_of(entry: &Entry) -> Result<String, serde_json::Error> {
    let mut unhashed = entry.clone();
    unhashed.hash = String::new();
    let bytes = serde_json::to_vec(&unhashed)?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// An open audit log for appending.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    last_seq: u64,
    last_hash: String,
}

impl AuditLog {
    /// Opens (creating, mode 0600) and verifies the log; refuses a damaged one.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let entries = read_verified(path).map_err(|e| match e {
            ReadError::Io(source) => io(source),
            ReadError::Verify(error) => AuditError::Damaged {
                path: path.to_path_buf(),
                error,
            },
        })?;
        let (last_seq, last_hash) = entries
            .last()
            .map_or((0, GENESIS.to_string()), |e| (e.seq, e.hash.clone()));
        Ok(AuditLog {
            path: path.to_path_buf(),
            file,
            last_seq,
            last_hash,
        })
    }

    /// Cuts an interrupted last line (no newline) off the file, returning its bytes.
    /// Only for an operator who has looked at [`VerifyError::Truncated`].
    pub fn repair_truncated_tail(path: &Path) -> Result<Vec<u8>, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        let data = std::fs::read(path).map_err(io)?;
        let keep = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let file = OpenOptions::new().write(true).open(path).map_err(io)?;
        file.set_len(keep as u64).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(data[keep..].to_vec())
    }

    /// Appends one entry (scored, chained, written with one write, fsynced).
    pub fn append(&mut self, record: Record) -> Result<Entry, AuditError> {
        let entry = self.append_unsynced(record)?;
        self.sync()?;
        Ok(entry)
    }

    /// Makes every entry appended so far durable (one `fdatasync`).
    pub fn sync(&self) -> Result<(), AuditError> {
        self.file.sync_data().map_err(|source| AuditError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Appends one entry with one `write` and no fsync: a killed process loses nothing the
    /// kernel accepted, only a power loss can take the entries since the last
    /// [`AuditLog::sync`]. For callers on a latency path that sync on a timer.
    pub fn append_unsynced(&mut self, record: Record) -> Result<Entry, AuditError> {
        let risk = risk::score(&record.action, &record.detail, &record.result);
        let mut entry = Entry {
            seq: self.last_seq + 1,
            time: format_time(SystemTime::now()),
            actor: record.actor,
            session: record.session,
            action: record.action,
            detail: record.detail,
            result: record.result,
            risk: risk.score,
            prev_hash: self.last_hash.clone(),
            hash: String::new(),
        };
        entry.hash = hash_of(&entry)?;
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&line).map_err(io)?;
        self.last_seq = entry.seq;
        self.last_hash = entry.hash.clone();
        Ok(entry)
    }
}

enum ReadError {
    Io(std::io::Error),
    Verify(VerifyError),
}

fn read_verified(path: &Path) -> Result<Vec<Entry>, ReadError> {
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(ReadError::Io)?;
    check(&data).map_err(ReadError::Verify)
}

fn check(data: &[u8]) -> Result<Vec<Entry>, VerifyError> {
    let mut entries: Vec<Entry> = Vec::new();
    let text = String::from_utf8_lossy(data);
    let complete = text.ends_with('\n') || text.is_empty();
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    for (i, raw) in lines.iter().enumerate() {
        let line = i + 1;
        if !complete && line == lines.len() {
            return Err(VerifyError::Truncated { line });
        }
        let entry: Entry = serde_json::from_str(raw).map_err(|e| VerifyError::Malformed {
            line,
            message: e.to_string(),
        })?;
        let (expected_seq, prev_hash) = entries
            .last()
            .map_or((1, GENESIS), |p| (p.seq + 1, p.hash.as_str()));
        let computed = hash_of(&entry).map_err(|e| VerifyError::Malformed {
            line,
            message: e.to_string(),
        })?;
        if computed != entry.hash {
            return Err(VerifyError::HashMismatch { line });
        }
        if entry.prev_hash != prev_hash {
            return Err(VerifyError::BrokenChain {
                line,
                prev: line.saturating_sub(1),
            });
        }
        if entry.seq != expected_seq {
            return Err(VerifyError::BadSeq {
                line,
                expected: expected_seq,
                found: entry.seq,
            });
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Verifies the whole log; returns the number of entries or the first bad line.
pub fn verify(path: &Path) -> Result<usize, AuditError> {
    match read_verified(path) {
        Ok(entries) => Ok(entries.len()),
        Err(ReadError::Io(source)) => Err(AuditError::Io {
            path: path.to_path_buf(),
            source,
        }),
        Err(ReadError::Verify(error)) => Err(AuditError::Damaged {
            path: path.to_path_buf(),
            error,
        }),
    }
}

/// Filter for [`query`].
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries with at least this risk.
    pub min_risk: u8,
    /// Only this session.
    pub session: Option<String>,
}

/// Reads a verified log and returns the matching entries (a damaged log is an error:
/// an answer from a tampered log would be misleading).
pub fn query(path: &Path, q: &Query) -> Result<Vec<Entry>, AuditError> {
    let entries = match read_verified(path) {
        Ok(e) => e,
        Err(ReadError::Io(source)) => {
            return Err(AuditError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        Err(ReadError::Verify(error)) => {
            return Err(AuditError::Damaged {
                path: path.to_path_buf(),
                error,
            });
        }
    };
    let since = q.since.map(format_time);
    Ok(entries
        .into_iter()
        .filter(|e| e.risk >= q.min_risk)
        // RFC 3339 UTC strings of one fixed width sort like the times they denote.
        .filter(|e| since.as_ref().is_none_or(|s| e.time.as_str() >= s.as_str()))
        .filter(|e| {
            q.session
                .as_ref()
                .is_none_or(|s| e.session.as_ref() == Some(s))
        })
        .collect())
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format_known_values() {
        assert_eq!(format_time(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_199_123);
        assert_eq!(format_time(t), "2024-02-29T23:59:59.123Z");
    }
}
