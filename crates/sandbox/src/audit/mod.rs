//! The tamper-evident audit log: append-only JSON lines chained by HMAC-SHA256.
//!
//! Each line is one [`Entry`]. `hash` is the HMAC-SHA256 (hex), under the key in `audit.key`
//! beside the log, of the canonical JSON of the entry without its `hash` field (fields in
//! declaration order), and `prev_hash` is the previous line's `hash` (64 zeros for the first).
//! `seq` increases by one. So an edited line breaks its own hash, a deleted or inserted line
//! breaks the `seq` run and the chain, a reordering breaks both, and a chain recomputed by
//! someone without the key fails every keyed hash from the change on. The signed head
//! (`audit.head`, see [`seal`]) says where the file starts and ends as of the last
//! [`AuditLog::sync`], so lines cut from either end are found too.
//!
//! A log whose problems were found and dealt with carries the evidence in the chain: a file
//! may start with a *break* entry (`audit.repair`: the damaged file was moved aside; `audit.gap`:
//! the file was deleted under the daemon; `audit.segment`: a log of the older unkeyed format was
//! moved aside), whose `prev_hash` is the last trusted entry's hash.
//!
//! Appends are one `write` of the whole line (with its newline) on an `O_APPEND` file. A
//! failed write (a full disk) can leave a torn last line, which [`verify`] reports as
//! [`VerifyError::Truncated`]; [`AuditLog::open`] refuses such a log until
//! [`AuditLog::repair`].

pub mod seal;
pub mod secret;
pub mod segment;
mod verify;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::Digest;

pub use seal::{AuditKey, Head};
pub use secret::DetailCipher;

use crate::risk;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Actions that may open a log file: evidence of a break, chained to the last trusted entry.
pub const BREAK_ACTIONS: &[&str] = &["audit.repair", "audit.gap", "audit.segment"];

/// Errors from the audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Reading or writing a file failed.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The existing log is damaged; appending would hide the damage. `ai-session audit repair`
    /// moves it aside and starts a new segment that records the break.
    #[error("audit log {path} fails verification: {error}")]
    Damaged {
        /// The log file.
        path: PathBuf,
        /// What verification found.
        error: VerifyError,
    },
    /// The key file is missing while a head or a keyed log exists: nothing can be verified.
    #[error("the audit key {path} is missing: the log cannot be verified")]
    KeyMissing {
        /// Where the key should be.
        path: PathBuf,
    },
    /// The key file does not hold 64 hex digits.
    #[error("the audit key {path} is damaged")]
    BadKey {
        /// The key file.
        path: PathBuf,
    },
    /// The head file is not a head.
    #[error("the audit head {path} is damaged")]
    BadHead {
        /// The head file.
        path: PathBuf,
    },
    /// The file changed under the running daemon (cut short, or written by someone else).
    #[error("audit log {path}: {what}")]
    Tampered {
        /// The log file.
        path: PathBuf,
        /// What was seen.
        what: String,
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
    /// The line's content does not match its keyed hash (edited).
    #[error("line {line}: keyed hash mismatch (the entry was edited)")]
    HashMismatch {
        /// Line number.
        line: usize,
    },
    /// From this line on, entries chain to each other but none matches the key: the chain was
    /// recomputed by someone without the key, after deleting, inserting or editing lines.
    #[error(
        "lines {line}..{}: a chain recomputed without the key (lines were deleted, inserted or edited, then the hashes redone)",
        line + lines - 1
    )]
    Recomputed {
        /// The first recomputed line.
        line: usize,
        /// How many lines in a row.
        lines: usize,
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
    /// The last line has no newline: an append was interrupted (a full disk, a power cut).
    #[error("line {line}: torn (no trailing newline; an append was interrupted)")]
    Truncated {
        /// Line number.
        line: usize,
    },
    /// The file does not start where it should: lines were cut from its front.
    #[error("the log starts at seq {first_seq}: earlier lines were removed")]
    MissingStart {
        /// The first seq found.
        first_seq: u64,
    },
    /// The file ends before the entry the signed head names: lines were cut from its end.
    #[error(
        "the log ends at seq {last_seq} but its signed head says {head_seq}: lines were removed from the end"
    )]
    TruncatedEnd {
        /// The last seq found.
        last_seq: u64,
        /// The head's seq.
        head_seq: u64,
    },
    /// The entry the head names has another hash: the log was rewritten.
    #[error("entry {seq} differs from the one the signed head names: the log was rewritten")]
    HeadMismatch {
        /// The head's seq.
        seq: u64,
    },
    /// The head's own MAC is wrong.
    #[error("the signed head does not match the key (forged or damaged)")]
    HeadForged,
    /// The log has entries but no head: the head was deleted.
    #[error("the log has {entries} entries but its signed head is missing")]
    HeadMissing {
        /// Entries in the log.
        entries: usize,
    },
    /// A sealed segment's name says it starts at one seq, its content at another: segments
    /// were renamed or swapped.
    #[error(
        "segment {segment} should start at seq {named} but starts at {found}: segments were renamed or swapped"
    )]
    SegmentMisplaced {
        /// The file.
        segment: String,
        /// The seq its name says.
        named: u64,
        /// The seq its first entry has.
        found: u64,
    },
    /// Entries before a file are gone and no entry records why: a segment was deleted.
    #[error("{missing} are missing before seq {before}: a segment was deleted")]
    SegmentMissing {
        /// What is missing (a segment's name and range, or a range of entries).
        missing: String,
        /// The seq of the first entry after the gap.
        before: u64,
    },
    /// A sealed segment differs from what the rotation that sealed it recorded (its name,
    /// last seq, length or SHA-256): it was truncated, extended, replaced or swapped.
    #[error(
        "segment {segment} is not the one the rotation after it recorded ({recorded}): it was truncated, extended or replaced"
    )]
    SegmentAltered {
        /// The file.
        segment: String,
        /// What the rotation entry recorded.
        recorded: String,
    },
    /// The head exists but the log file does not.
    #[error("the log file is missing but its signed head names entry {head_seq}")]
    LogMissing {
        /// The head's seq.
        head_seq: u64,
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
    /// The HTTP server's own token (the owner over HTTP).
    HttpToken(String),
    /// An API token, by token id (never the token itself).
    Token(String),
    /// A request that presented no valid credentials (an HTTP 401).
    Anonymous,
    /// The daemon itself (limit hits, sandbox events, audit breaks).
    Daemon,
}

/// One audit line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Increases by one; 1 for the first entry of a log.
    pub seq: u64,
    /// RFC 3339 UTC time with milliseconds.
    pub time: String,
    /// Who.
    pub actor: Actor,
    /// Which session, by name, if any.
    pub session: Option<String>,
    /// The session's stable id, when the daemon knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// What (`session.exec`, `session.new`, `limit_hit`, `http.unauthorized`, `audit.repair`..).
    pub action: String,
    /// Details (the command text, the missing capability, the limit).
    pub detail: String,
    /// `ok`, `denied`, `error`, ...
    pub result: String,
    /// Advisory risk score (see [`crate::risk`]).
    pub risk: u8,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's keyed hash.
    pub hash: String,
}

/// What to record; the log fills in seq, time, risk and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Who.
    pub actor: Actor,
    /// Which session.
    pub session: Option<String>,
    /// The session's stable id, if known.
    pub session_id: Option<String>,
    /// What.
    pub action: String,
    /// Details.
    pub detail: String,
    /// Result.
    pub result: String,
    /// The actor is bound to a sandbox policy (it scores higher for import and restore).
    pub policy_bound: bool,
}

impl Record {
    /// A record with no session and an unbound actor.
    pub fn new(actor: Actor, action: &str, detail: impl Into<String>, result: &str) -> Self {
        Record {
            actor,
            session: None,
            session_id: None,
            action: action.to_string(),
            detail: detail.into(),
            result: result.to_string(),
            policy_bound: false,
        }
    }
}

/// The bytes an entry's hash covers: its JSON with `hash` empty.
fn canonical(entry: &Entry) -> Result<Vec<u8>, serde_json::Error> {
    let mut unhashed = entry.clone();
    unhashed.hash = String::new();
    serde_json::to_vec(&unhashed)
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

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_all(path: &Path) -> Result<Option<Vec<u8>>, AuditError> {
    match std::fs::read(path) {
        Ok(data) => Ok(Some(data)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// A file name beside the log for a file moved aside: `audit.<what>-<time>.jsonl`.
fn aside(path: &Path, what: &str) -> PathBuf {
    let stamp = format_time(SystemTime::now()).replace(':', "-");
    path.with_file_name(format!("audit.{what}-{stamp}.jsonl"))
}

/// The key of the log at `path`, created when this is the log's first use.
fn key_for(path: &Path, head_exists: bool) -> Result<(AuditKey, bool), AuditError> {
    let (key_path, _) = seal::beside(path);
    match AuditKey::load(&key_path) {
        Ok(key) => Ok((key, false)),
        Err(AuditError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            if head_exists {
                return Err(AuditError::KeyMissing { path: key_path });
            }
            Ok((AuditKey::create(&key_path)?, true))
        }
        Err(e) => Err(e),
    }
}

/// What [`AuditLog::repair`] did.
#[derive(Debug, Clone)]
pub struct Repaired {
    /// Where the old file went (none when there was no file).
    pub moved_to: Option<PathBuf>,
    /// The new segment's first entry.
    pub entry: Entry,
}

/// An open audit log for appending.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    head_path: PathBuf,
    key: AuditKey,
    file: File,
    first_seq: u64,
    last_seq: u64,
    last_hash: String,
    /// Bytes the file holds: only this daemon appends, so any other size is someone else's
    /// doing.
    len: u64,
    /// The file's identity, to notice it was deleted or replaced.
    id: (u64, u64),
    /// The seq the head file names.
    head_seq: u64,
    /// Seals each entry's detail (a passphrase was given).
    cipher: Option<DetailCipher>,
    /// SHA-256 of the bytes the live file holds, kept up to date by each append: what the
    /// rotation entry records of the file it seals, without reading 64 MiB back.
    digest: Box<sha2::Sha256>,
    /// The live file rotates into a sealed segment once it holds this many bytes.
    max_segment: u64,
    /// Sealed segments kept after a rotation (all when `None`).
    keep_segments: Option<usize>,
}

impl AuditLog {
    /// Opens (creating it, its key and its head, mode 0600) and verifies the log; refuses a
    /// damaged one. A log of the older unkeyed format, met when no key exists yet, is checked
    /// under its own rules and moved aside, and a keyed segment chained to it starts.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let (_, head_path) = seal::beside(path);
        let head = Head::load(&head_path)?;
        let (key, created) = key_for(path, head.is_some())?;
        let data = read_all(path)?;
        if let Some(head) = &head {
            if !head.is_signed_by(&key) {
                return Err(damaged(path, VerifyError::HeadForged));
            }
            let sealed = segment::sealed_path(path, head.first_seq);
            let live_empty = data.as_ref().is_none_or(Vec::is_empty);
            if live_empty && head.seq >= head.first_seq && sealed.exists() {
                return Self::finish_rotation(path, key, head, &sealed);
            }
            if data.is_none() && head.seq >= head.first_seq {
                return Err(damaged(
                    path,
                    VerifyError::LogMissing { head_seq: head.seq },
                ));
            }
        }
        let data = data.unwrap_or_default();
        if created && !data.is_empty() {
            return Self::upgrade_unkeyed(path, key, &data);
        }
        let checked = verify::check(&data, &key, head.as_ref())
            .map_err(|damage| damaged(path, damage.error))?;
        let (first_seq, last_seq, last_hash) =
            match (checked.entries.first(), checked.entries.last()) {
                (Some(first), Some(last)) => (first.seq, last.seq, last.hash.clone()),
                _ => head.as_ref().map_or((1, 0, GENESIS.to_string()), |h| {
                    (h.first_seq, h.seq, h.hash.clone())
                }),
            };
        let mut log = Self::attach(path, key, first_seq, last_seq, last_hash)?;
        if log.len != data.len() as u64 {
            return Err(AuditError::Tampered {
                path: path.to_path_buf(),
                what: "it changed while it was being verified".into(),
            });
        }
        log.digest = Box::new(sha2::Sha256::new_with_prefix(&data));
        log.head_seq = head.map_or(u64::MAX, |h| h.seq);
        log.sync()?;
        Ok(log)
    }

    /// Opens the file for appending and records its identity and length.
    fn attach(
        path: &Path,
        key: AuditKey,
        first_seq: u64,
        last_seq: u64,
        last_hash: String,
    ) -> Result<AuditLog, AuditError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err(path))?;
        let meta = file.metadata().map_err(io_err(path))?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            head_path: seal::beside(path).1,
            key,
            file,
            first_seq,
            last_seq,
            last_hash,
            len: meta.len(),
            id: (meta.dev(), meta.ino()),
            // Never equal to a real seq: the first sync writes the head.
            head_seq: u64::MAX,
            cipher: None,
            digest: Box::default(),
            max_segment: segment::DEFAULT_SEGMENT_BYTES,
            keep_segments: None,
        })
    }

    /// Starts a new file whose first entry records a break, chained to the last trusted
    /// entry (`after`: its seq and hash), and signs a head for it.
    fn start_segment(
        path: &Path,
        key: AuditKey,
        after: (u64, String),
        record: Record,
    ) -> Result<(AuditLog, Entry), AuditError> {
        let mut log = Self::attach(path, key, after.0 + 1, after.0, after.1)?;
        if log.len != 0 {
            return Err(AuditError::Tampered {
                path: path.to_path_buf(),
                what: "a new segment's file is not empty (another writer?)".into(),
            });
        }
        let entry = log.append_unsynced(record)?;
        log.sync()?;
        Ok((log, entry))
    }

    fn upgrade_unkeyed(path: &Path, key: AuditKey, data: &[u8]) -> Result<AuditLog, AuditError> {
        let entries = verify::check_unkeyed(data).map_err(|error| damaged(path, error))?;
        let last = entries
            .last()
            .map_or((0, GENESIS.to_string()), |e| (e.seq, e.hash.clone()));
        let moved = aside(path, "unkeyed");
        std::fs::rename(path, &moved).map_err(io_err(path))?;
        let detail = format!(
            "the log of the older unkeyed format ({} entries, verified) was moved to {}; the chain is keyed from here",
            entries.len(),
            moved.display()
        );
        let record = Record::new(Actor::Daemon, "audit.segment", detail, "ok");
        Self::start_segment(path, key, last, record).map(|(log, _)| log)
    }

    /// Moves the log aside (whatever is wrong with it: damaged, torn, unwritable) and starts a
    /// new segment whose first entry records why, what was moved where, and the last entry
    /// that could still be trusted: the longest verified run, or the signed head if it names
    /// a later one. A missing key is replaced by a new one (recorded too).
    pub fn repair(path: &Path, actor: Actor, reason: &str) -> Result<Repaired, AuditError> {
        let (key_path, head_path) = seal::beside(path);
        let mut notes = vec![reason.to_string()];
        let key = match AuditKey::load(&key_path) {
            Ok(key) => key,
            Err(e) => {
                notes.push(format!("{e}; a new key was made"));
                if key_path.exists() {
                    std::fs::rename(&key_path, key_path.with_extension("key.broken"))
                        .map_err(io_err(&key_path))?;
                }
                AuditKey::create(&key_path)?
            }
        };
        let head = match Head::load(&head_path) {
            Ok(Some(h)) if h.is_signed_by(&key) => Some(h),
            Ok(Some(_)) | Err(_) => {
                notes.push("the signed head did not verify and was ignored".into());
                None
            }
            Ok(None) => None,
        };
        let data = read_all(path)?;
        let mut trusted = (0, GENESIS.to_string());
        if let Some(data) = &data {
            let good = match verify::check(data, &key, head.as_ref()) {
                Ok(checked) => checked.entries,
                Err(damage) => {
                    notes.push(format!("verification: {}", damage.error));
                    damage.good
                }
            };
            if let Some(last) = good.last() {
                trusted = (last.seq, last.hash.clone());
            }
            if let Some(sealed) = segment::seal_good_prefix(path, &good)? {
                notes.push(format!(
                    "its {} verified entries were sealed as {}",
                    good.len(),
                    sealed.display()
                ));
            }
        }
        if let Some(h) = head.as_ref().filter(|h| h.seq > trusted.0) {
            trusted = (h.seq, h.hash.clone());
        }
        let moved_to = match data {
            Some(data) => {
                use sha2::{Digest, Sha256};
                let moved = aside(path, "broken");
                std::fs::rename(path, &moved).map_err(io_err(path))?;
                notes.push(format!(
                    "the old log ({} bytes, sha256 {}) was moved to {}",
                    data.len(),
                    hex(&Sha256::digest(&data)),
                    moved.display()
                ));
                Some(moved)
            }
            None => None,
        };
        notes.push(format!("entries up to #{} are trusted", trusted.0));
        let record = Record::new(actor, "audit.repair", notes.join("; "), "ok");
        let (_, entry) = Self::start_segment(path, key, trusted, record)?;
        Ok(Repaired { moved_to, entry })
    }

    /// Appends one entry (scored, chained, written with one write, fsynced).
    pub fn append(&mut self, record: Record) -> Result<Entry, AuditError> {
        let entry = self.append_unsynced(record)?;
        self.sync()?;
        Ok(entry)
    }

    /// Makes every entry appended so far durable (one `fdatasync`), then signs the head for
    /// them. The head is written only after the entries it names are on disk.
    pub fn sync(&mut self) -> Result<(), AuditError> {
        self.file.sync_data().map_err(io_err(&self.path))?;
        if self.head_seq != self.last_seq {
            Head::new(&self.key, self.first_seq, self.last_seq, &self.last_hash)
                .store(&self.head_path)?;
            self.head_seq = self.last_seq;
        }
        Ok(())
    }

    /// What a sync must make durable, taken under the caller's lock so the slow part
    /// ([`SyncPoint::commit`]: an fsync of the log, then of the new head) can run without it,
    /// while appends go on. `None` when the head already names the last entry.
    pub fn sync_point(&self) -> Result<Option<SyncPoint>, AuditError> {
        if self.head_seq == self.last_seq {
            return Ok(None);
        }
        let file = self.file.try_clone().map_err(io_err(&self.path))?;
        Ok(Some(SyncPoint {
            file,
            path: self.path.clone(),
            head_path: self.head_path.clone(),
            head: Head::new(&self.key, self.first_seq, self.last_seq, &self.last_hash),
        }))
    }

    /// Records that a [`SyncPoint`] for `seq` was committed (a later one may have been
    /// already: the head only moves forward).
    pub fn synced(&mut self, seq: u64) {
        if self.head_seq == u64::MAX || seq > self.head_seq {
            self.head_seq = seq;
        }
    }

    /// Appends one entry with one `write` and no fsync: a killed process loses nothing the
    /// kernel accepted, only a power loss can take the entries since the last
    /// [`AuditLog::sync`]. For callers on a latency path that sync on a timer.
    pub fn append_unsynced(&mut self, record: Record) -> Result<Entry, AuditError> {
        if self.len >= self.max_segment && self.last_seq >= self.first_seq {
            self.rotate()?;
        }
        let risk = risk::score_with(
            &record.action,
            &record.detail,
            &record.result,
            risk::Context {
                policy_bound: record.policy_bound,
            },
        );
        let seq = self.last_seq + 1;
        // The log's own entries (rotations, prunes, repairs) name files, seqs and hashes that
        // `verify` reads without the passphrase; they hold nothing typed by anyone.
        let detail = match &self.cipher {
            Some(cipher) if !record.action.starts_with("audit.") => {
                cipher.seal(seq, &record.detail)?
            }
            _ => record.detail,
        };
        let mut entry = Entry {
            seq,
            time: format_time(SystemTime::now()),
            actor: record.actor,
            session: record.session,
            session_id: record.session_id,
            action: record.action,
            detail,
            result: record.result,
            risk: risk.score,
            prev_hash: self.last_hash.clone(),
            hash: String::new(),
        };
        entry.hash = self.key.entry_mac(&canonical(&entry)?);
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(io_err(&self.path))?;
        self.len += line.len() as u64;
        self.digest.update(&line);
        self.last_seq = entry.seq;
        self.last_hash = entry.hash.clone();
        Ok(entry)
    }

    /// Checks that the file on disk is still the one this log writes, whole. A file deleted
    /// (or replaced) under the daemon is recreated from the daemon's own descriptor, which
    /// still holds every byte, followed by an `audit.gap` entry saying so; the replacement,
    /// if any, is moved aside. A file cut short or written by someone else is an error: the
    /// daemon cannot vouch for it any more.
    pub fn check_file(&mut self) -> Result<Option<Entry>, AuditError> {
        let open = self.file.metadata().map_err(io_err(&self.path))?;
        let on_disk = match std::fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        let same = on_disk
            .as_ref()
            .is_some_and(|m| (m.dev(), m.ino()) == self.id && open.nlink() > 0);
        if same {
            if open.len() != self.len {
                let what = if open.len() < self.len {
                    format!(
                        "cut short while the daemon ran ({} bytes written, {} left)",
                        self.len,
                        open.len()
                    )
                } else {
                    format!(
                        "written by someone else while the daemon ran ({} bytes expected, {} found)",
                        self.len,
                        open.len()
                    )
                };
                return Err(AuditError::Tampered {
                    path: self.path.clone(),
                    what,
                });
            }
            return Ok(None);
        }
        self.recreate(on_disk.is_some()).map(Some)
    }

    fn recreate(&mut self, replaced: bool) -> Result<Entry, AuditError> {
        let mut note = String::from("the log file was deleted while the daemon ran");
        if replaced {
            let moved = aside(&self.path, "foreign");
            std::fs::rename(&self.path, &moved).map_err(io_err(&self.path))?;
            note = format!(
                "the log file was replaced while the daemon ran; the replacement was moved to {}",
                moved.display()
            );
        }
        let mut old = Vec::new();
        let recovered = {
            use std::io::{Seek, SeekFrom};
            (&self.file)
                .seek(SeekFrom::Start(0))
                .and_then(|_| (&self.file).read_to_end(&mut old))
        };
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        match recovered {
            Ok(_) if old.len() as u64 == self.len => {
                file.write_all(&old).map_err(io_err(&self.path))?;
                note.push_str(&format!(
                    "; its {} bytes (entries #{}..#{}) were recovered from the daemon's open descriptor",
                    old.len(),
                    self.first_seq,
                    self.last_seq
                ));
            }
            Ok(_) | Err(_) => {
                note.push_str(&format!(
                    "; entries #{}..#{} could not be recovered and are missing",
                    self.first_seq, self.last_seq
                ));
                self.first_seq = self.last_seq + 1;
                old.clear();
            }
        }
        let meta = file.metadata().map_err(io_err(&self.path))?;
        self.file = file;
        self.len = old.len() as u64;
        *self.digest = sha2::Sha256::new_with_prefix(&old);
        self.id = (meta.dev(), meta.ino());
        let entry =
            self.append_unsynced(Record::new(Actor::Daemon, "audit.gap", note, "recovered"))?;
        self.sync()?;
        Ok(entry)
    }

    /// From now on, each entry's detail is sealed with `cipher` (see [`secret`]).
    pub fn seal_details(&mut self, cipher: DetailCipher) {
        self.cipher = Some(cipher);
    }

    /// The last entry's seq.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

/// A sync prepared by [`AuditLog::sync_point`].
#[derive(Debug)]
pub struct SyncPoint {
    file: File,
    path: PathBuf,
    head_path: PathBuf,
    head: Head,
}

impl SyncPoint {
    /// Makes the entries durable, then signs the head for them; the seq now covered.
    pub fn commit(self) -> Result<u64, AuditError> {
        self.file.sync_data().map_err(io_err(&self.path))?;
        self.head.store(&self.head_path)?;
        Ok(self.head.seq)
    }
}

pub(crate) fn damaged(path: &Path, error: VerifyError) -> AuditError {
    AuditError::Damaged {
        path: path.to_path_buf(),
        error,
    }
}

/// What [`verify`] found in an intact log.
#[derive(Debug, Clone)]
pub struct Report {
    /// Entries in the file.
    pub entries: usize,
    /// The first entry's seq.
    pub first_seq: u64,
    /// The seq the signed head names (entries after it were written since the last sync).
    pub head_seq: u64,
    /// Recorded breaks (repairs, gaps, a legacy log moved aside), oldest first.
    pub breaks: Vec<Entry>,
    /// Files verified: the sealed segments and the live file.
    pub files: usize,
    /// Where the kept log starts, when old segments were pruned (as recorded).
    pub pruned_before: Option<u64>,
}

fn read_checked(
    path: &Path,
    visit: impl FnMut(&Entry),
) -> Result<(segment::Chain, Option<Head>), AuditError> {
    let (key_path, head_path) = seal::beside(path);
    let key = match AuditKey::load(&key_path) {
        Err(AuditError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(AuditError::KeyMissing { path: key_path });
        }
        other => other?,
    };
    let head = Head::load(&head_path)?;
    if head.as_ref().is_some_and(|h| !h.is_signed_by(&key)) {
        return Err(damaged(path, VerifyError::HeadForged));
    }
    let data = match (read_all(path)?, &head) {
        (Some(data), _) => data,
        (None, Some(h)) if h.seq >= h.first_seq => {
            return Err(damaged(path, VerifyError::LogMissing { head_seq: h.seq }));
        }
        (None, _) => {
            return Err(io_err(path)(std::io::Error::from(
                std::io::ErrorKind::NotFound,
            )));
        }
    };
    let chain = segment::check_chain(path, &data, &key, head.as_ref(), visit)?;
    Ok((chain, head))
}

/// Verifies the whole log, every sealed segment and the live file, against its key and signed
/// head (both beside it); the entries and recorded breaks, or the first problem.
pub fn verify(path: &Path) -> Result<Report, AuditError> {
    let (chain, head) = read_checked(path, |_| {})?;
    Ok(Report {
        entries: chain.entries,
        first_seq: chain.first_seq.unwrap_or(1),
        head_seq: head.map_or(0, |h| h.seq),
        breaks: chain.breaks,
        files: chain.files,
        pruned_before: chain.pruned_before,
    })
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
    let since = q.since.map(format_time);
    let mut out = Vec::new();
    read_checked(path, |e| {
        // RFC 3339 UTC strings of one fixed width sort like the times they denote.
        let wanted = e.risk >= q.min_risk
            && since.as_ref().is_none_or(|s| e.time.as_str() >= s.as_str())
            && q.session
                .as_ref()
                .is_none_or(|s| e.session.as_ref() == Some(s));
        if wanted {
            out.push(e.clone());
        }
    })?;
    Ok(out)
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
