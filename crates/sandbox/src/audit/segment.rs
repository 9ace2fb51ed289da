//! Segments: the log rotates into sealed files that one chain runs through.
//!
//! The live file is `audit.jsonl`. When it reaches its size bound (or at `audit repair`, whose
//! good prefix is sealed this way), it is renamed `audit.<first seq, 12 digits>.jsonl` and a new
//! `audit.jsonl` starts with an `audit.rotate` entry chained to the sealed file's last entry
//! (its `prev_hash` is that entry's hash, its `seq` the next one) whose detail names the sealed
//! file, its first and last seq, its length and its SHA-256. So a sealed segment deleted,
//! truncated, extended, or swapped with another breaks either the chain, the name-to-content
//! match, or the recorded length and digest, and `verify` names it.
//!
//! Old segments are kept unless retention is asked for (`AuditLog::set_keep_segments`); pruning
//! removes the oldest sealed files and appends an `audit.prune` entry saying which and where
//! the log now starts, so the start of the kept log is vouched for by a keyed entry, never by
//! the files' mere absence.

use std::fs::{File as FsFile, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::seal::AuditKey;
use super::verify::{self, Checked};
use super::{
    Actor, AuditError, AuditLog, BREAK_ACTIONS, Entry, GENESIS, Head, Record, VerifyError, damaged,
    hex, io_err, read_all,
};

/// The first entry of a segment started by rotation.
pub const ROTATE_ACTION: &str = "audit.rotate";
/// The entry recording that old segments were removed.
pub const PRUNE_ACTION: &str = "audit.prune";
/// The live file's default size bound before it rotates.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// What an `audit.rotate` entry's detail records about the segment it follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// The sealed file's name.
    pub segment: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub bytes: u64,
    /// SHA-256 of the sealed file, hex.
    pub sha256: String,
}

/// What an `audit.prune` entry's detail records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pruning {
    /// The sealed files removed.
    pub removed: Vec<String>,
    /// The seq the oldest kept file starts at.
    pub starts_at: u64,
}

/// `audit.<12 digits>.jsonl` beside `log` for a segment starting at `first_seq`.
pub(crate) fn sealed_path(log: &Path, first_seq: u64) -> PathBuf {
    log.with_file_name(format!("audit.{first_seq:012}.jsonl"))
}

/// The sealed segments beside `log`, oldest first, with the seq their name says they start at.
pub fn sealed_segments(log: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let dir = log.parent().unwrap_or_else(|| Path::new("."));
    let entries = std::fs::read_dir(dir).map_err(io_err(dir))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(digits) = name
            .strip_prefix("audit.")
            .and_then(|r| r.strip_suffix(".jsonl"))
        else {
            continue;
        };
        if digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(seq) = digits.parse() {
                out.push((seq, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    super::hex(&Sha256::digest(data))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One verified file, summed up: what the checks between files need. Its entries are not
/// kept (a log of many 64 MiB segments is read one file at a time).
struct File {
    path: PathBuf,
    first: Option<Entry>,
    last: Option<Entry>,
    bytes: u64,
    sha256: String,
}

impl File {
    fn new(path: PathBuf, data: &[u8], checked: &Checked, sealed: bool) -> Self {
        File {
            path,
            first: checked.entries.first().cloned(),
            last: checked.entries.last().cloned(),
            bytes: data.len() as u64,
            sha256: if sealed {
                sha256_hex(data)
            } else {
                String::new()
            },
        }
    }
}

/// The whole chain, every sealed segment then the live file: how many entries, the recorded
/// breaks, and how many files were read.
pub(crate) struct Chain {
    pub entries: usize,
    pub first_seq: Option<u64>,
    pub breaks: Vec<Entry>,
    pub files: usize,
    /// The seq an `audit.prune` entry says the kept log starts at.
    pub pruned_before: Option<u64>,
}

/// Verifies every sealed segment and the live file (`live`, checked against `head`), each
/// file on its own and then each boundary between two files. `visit` sees every entry in
/// order, file by file, before the checks between files are done: a caller keeps what it
/// needs and drops it on an error.
pub(crate) fn check_chain(
    log: &Path,
    live: &[u8],
    key: &AuditKey,
    head: Option<&Head>,
    mut visit: impl FnMut(&Entry),
) -> Result<Chain, AuditError> {
    let mut chain = Chain {
        entries: 0,
        first_seq: None,
        breaks: Vec::new(),
        files: 0,
        pruned_before: None,
    };
    let mut take = |checked: Checked, chain: &mut Chain| {
        for e in &checked.entries {
            if e.action == PRUNE_ACTION {
                if let Ok(p) = serde_json::from_str::<Pruning>(&e.detail) {
                    chain.pruned_before = Some(p.starts_at);
                }
            }
            visit(e);
        }
        chain.first_seq = chain.first_seq.or(checked.entries.first().map(|e| e.seq));
        chain.entries += checked.entries.len();
        chain.breaks.extend(checked.breaks);
        chain.files += 1;
    };
    let mut files = Vec::new();
    for (named, path) in sealed_segments(log)? {
        let data = std::fs::read(&path).map_err(io_err(&path))?;
        let checked = verify::check_sealed(&data, key).map_err(|d| damaged(&path, d.error))?;
        let first = checked.entries.first().map(|e| e.seq);
        if first != Some(named) {
            return Err(damaged(
                &path,
                VerifyError::SegmentMisplaced {
                    segment: file_name(&path),
                    named,
                    found: first.unwrap_or(0),
                },
            ));
        }
        files.push(File::new(path, &data, &checked, true));
        take(checked, &mut chain);
    }
    let checked = verify::check(live, key, head).map_err(|d| damaged(log, d.error))?;
    files.push(File::new(log.to_path_buf(), live, &checked, false));
    take(checked, &mut chain);
    check_start(&files, chain.pruned_before)?;
    for pair in files.windows(2) {
        check_boundary(&pair[0], &pair[1])?;
    }
    Ok(chain)
}

/// The oldest file must start the log: at seq 1 from genesis, with a recorded break, or where
/// an `audit.prune` entry says the kept log starts.
fn check_start(files: &[File], pruned_before: Option<u64>) -> Result<(), AuditError> {
    let Some((oldest, first)) = files.iter().find_map(|f| Some((f, f.first.as_ref()?))) else {
        return Ok(());
    };
    let genesis = first.seq == 1 && first.prev_hash == GENESIS;
    if genesis || BREAK_ACTIONS.contains(&first.action.as_str()) {
        return Ok(());
    }
    // At or before where the prune entry says the kept log starts: a prune whose removals
    // were cut short leaves older files than it had to, never fewer.
    if pruned_before.is_some_and(|p| first.seq <= p) {
        return Ok(());
    }
    let missing = match serde_json::from_str::<Rotation>(&first.detail) {
        Ok(r) if first.action == ROTATE_ACTION => {
            format!("{} (entries #{}..#{})", r.segment, r.first_seq, r.last_seq)
        }
        _ => format!("the entries before #{}", first.seq),
    };
    Err(damaged(
        &oldest.path,
        VerifyError::SegmentMissing {
            missing,
            before: first.seq,
        },
    ))
}

/// The later file's first entry must chain to the earlier file's last one, unless it records
/// a break; a rotation's record must match the earlier file exactly.
fn check_boundary(before: &File, after: &File) -> Result<(), AuditError> {
    let (Some(last), Some(first)) = (before.last.as_ref(), after.first.as_ref()) else {
        return Ok(());
    };
    if first.action == ROTATE_ACTION {
        let recorded = serde_json::from_str::<Rotation>(&first.detail).ok();
        let Some(r) = recorded else {
            return Err(damaged(
                &after.path,
                VerifyError::Malformed {
                    line: 1,
                    message: "a rotation entry without its record of the segment before".into(),
                },
            ));
        };
        if r.segment != file_name(&before.path) {
            return Err(damaged(
                &after.path,
                VerifyError::SegmentMissing {
                    missing: format!("{} (entries #{}..#{})", r.segment, r.first_seq, r.last_seq),
                    before: first.seq,
                },
            ));
        }
        if r.last_seq != last.seq || r.bytes != before.bytes || r.sha256 != before.sha256 {
            return Err(damaged(
                &before.path,
                VerifyError::SegmentAltered {
                    segment: r.segment.clone(),
                    recorded: format!(
                        "entries #{}..#{}, {} bytes, sha256 {}",
                        r.first_seq, r.last_seq, r.bytes, r.sha256
                    ),
                },
            ));
        }
    }
    let chained = first.prev_hash == last.hash && first.seq == last.seq + 1;
    if chained || BREAK_ACTIONS.contains(&first.action.as_str()) {
        return Ok(());
    }
    Err(damaged(
        &after.path,
        VerifyError::SegmentMissing {
            missing: format!(
                "entries #{}..#{}",
                last.seq + 1,
                first.seq.saturating_sub(1)
            ),
            before: first.seq,
        },
    ))
}

/// The detail of a rotation entry for the sealed file at `path`: `bytes` long, `sha256` its
/// digest (hex).
pub(crate) fn rotation_detail(
    path: &Path,
    bytes: u64,
    sha256: String,
    first_seq: u64,
    last_seq: u64,
) -> Result<String, AuditError> {
    Ok(serde_json::to_string(&Rotation {
        segment: file_name(path),
        first_seq,
        last_seq,
        bytes,
        sha256,
    })?)
}

/// The oldest sealed segments beyond `keep`, and the record of their removal. The caller
/// appends the record (durably) before removing them: a crash in between leaves files the
/// record already gave up, never a gap no record explains.
pub(crate) fn prune_plan(
    log: &Path,
    keep: usize,
    live_first: u64,
) -> Result<Option<(String, Vec<PathBuf>)>, AuditError> {
    let sealed = sealed_segments(log)?;
    if sealed.len() <= keep {
        return Ok(None);
    }
    let cut = sealed.len() - keep;
    let starts_at = sealed.get(cut).map_or(live_first, |(seq, _)| *seq);
    let doomed: Vec<PathBuf> = sealed[..cut].iter().map(|(_, p)| p.clone()).collect();
    let detail = serde_json::to_string(&Pruning {
        removed: doomed.iter().map(|p| file_name(p)).collect(),
        starts_at,
    })?;
    Ok(Some((detail, doomed)))
}

/// Removes pruned segments, oldest first, and makes the removals durable.
pub(crate) fn remove(log: &Path, doomed: &[PathBuf]) -> Result<(), AuditError> {
    for path in doomed {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path)(e)),
        }
    }
    let dir = log.parent().unwrap_or_else(|| Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl AuditLog {
    /// Rotates the live file once it holds `bytes` or more (64 MiB by default).
    pub fn set_max_segment(&mut self, bytes: u64) {
        self.max_segment = bytes.max(1);
    }

    /// Keeps only the newest `keep` sealed segments after each rotation (all when `None`, the
    /// default). Each removal is recorded by an `audit.prune` entry before the files go.
    pub fn set_keep_segments(&mut self, keep: Option<usize>) {
        self.keep_segments = keep;
    }

    /// Seals the live file as `audit.<first seq>.jsonl` and starts a new one whose first
    /// entry (`audit.rotate`) chains to the sealed file's last entry and records its name,
    /// range, length and SHA-256; then applies the segment retention. Returns the rotation
    /// entry.
    pub fn rotate(&mut self) -> Result<Entry, AuditError> {
        self.file.sync_data().map_err(io_err(&self.path))?;
        let on_disk = self.file.metadata().map_err(io_err(&self.path))?.len();
        if on_disk != self.len {
            return Err(AuditError::Tampered {
                path: self.path.clone(),
                what: format!(
                    "{on_disk} bytes found where the daemon wrote {} (at rotation)",
                    self.len
                ),
            });
        }
        let sealed = sealed_path(&self.path, self.first_seq);
        if sealed.exists() {
            return Err(AuditError::Tampered {
                path: sealed,
                what: "a segment by this name exists already".into(),
            });
        }
        std::fs::rename(&self.path, &sealed).map_err(io_err(&self.path))?;
        sync_parent(&self.path)?;
        let sha256 = hex(&sha2::Digest::finalize((*self.digest).clone()));
        let detail = rotation_detail(&sealed, self.len, sha256, self.first_seq, self.last_seq)?;
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(io_err(&self.path))?;
        let meta = file.metadata().map_err(io_err(&self.path))?;
        self.file = file;
        self.len = 0;
        *self.digest = sha2::Sha256::default();
        self.id = (meta.dev(), meta.ino());
        self.first_seq = self.last_seq + 1;
        let entry =
            self.append_unsynced(Record::new(Actor::Daemon, ROTATE_ACTION, detail, "ok"))?;
        self.sync()?;
        if let Some(keep) = self.keep_segments {
            self.prune_segments(keep)?;
        }
        Ok(entry)
    }

    /// Removes the oldest sealed segments beyond `keep`, recorded first by an `audit.prune`
    /// entry (synced) naming them and where the kept log starts.
    pub fn prune_segments(&mut self, keep: usize) -> Result<Option<Entry>, AuditError> {
        let Some((detail, doomed)) = prune_plan(&self.path, keep, self.first_seq)? else {
            return Ok(None);
        };
        let entry = self.append_unsynced(Record::new(Actor::Daemon, PRUNE_ACTION, detail, "ok"))?;
        self.sync()?;
        remove(&self.path, &doomed)?;
        Ok(Some(entry))
    }

    /// A rotation killed after the live file was sealed and before the new one had its first
    /// entry: the sealed file is what the head names; start the new file now.
    pub(crate) fn finish_rotation(
        path: &Path,
        key: AuditKey,
        head: &Head,
        sealed: &Path,
    ) -> Result<AuditLog, AuditError> {
        let data = read_all(sealed)?.unwrap_or_default();
        let checked =
            verify::check(&data, &key, Some(head)).map_err(|d| damaged(sealed, d.error))?;
        let Some(last) = checked.entries.last() else {
            return Err(damaged(
                sealed,
                VerifyError::LogMissing { head_seq: head.seq },
            ));
        };
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(path)(e)),
        }
        let detail = rotation_detail(
            sealed,
            data.len() as u64,
            sha256_hex(&data),
            head.first_seq,
            last.seq,
        )?;
        let record = Record::new(Actor::Daemon, ROTATE_ACTION, detail, "ok");
        Self::start_segment(path, key, (last.seq, last.hash.clone()), record).map(|(log, _)| log)
    }
}

pub(crate) fn sync_parent(path: &Path) -> Result<(), AuditError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    FsFile::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Writes the verified entries of a log about to be moved aside as a sealed segment, so the
/// chain runs on through them (the whole file is kept aside as evidence too). Entries are
/// written back exactly as appended: one compact JSON line each.
pub(crate) fn seal_good_prefix(path: &Path, good: &[Entry]) -> Result<Option<PathBuf>, AuditError> {
    let Some(first) = good.first() else {
        return Ok(None);
    };
    let sealed = sealed_path(path, first.seq);
    if sealed.exists() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    for e in good {
        serde_json::to_writer(&mut bytes, e)?;
        bytes.push(b'\n');
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&sealed)
        .map_err(io_err(&sealed))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&sealed))?;
    Ok(Some(sealed))
}
