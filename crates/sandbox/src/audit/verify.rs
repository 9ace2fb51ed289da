//! Checking a log against its key and head: every entry's keyed hash, the chain, the sequence,
//! where the file starts (no lines cut from the front) and where it ends (no lines cut from the
//! back: the signed head names the last entry as of the last sync).

use super::seal::{AuditKey, Head};
use super::segment::ROTATE_ACTION;
use super::{BREAK_ACTIONS, Entry, GENESIS, VerifyError, canonical};

/// What a successful check found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Checked {
    pub entries: Vec<Entry>,
    /// Recorded breaks (gaps, repairs, a legacy log moved aside), in order.
    pub breaks: Vec<Entry>,
}

/// The longest run of good entries before the first problem, and the problem.
pub(crate) struct Damage {
    pub good: Vec<Entry>,
    pub error: VerifyError,
}

/// Checks the live file: its entries, then where it starts and ends against the signed head.
pub(crate) fn check(data: &[u8], key: &AuditKey, head: Option<&Head>) -> Result<Checked, Damage> {
    let out = check_sealed(data, key)?;
    match head {
        Some(head) => against_head(out, head),
        None if out.entries.is_empty() => Ok(out),
        None => {
            let entries = out.entries.len();
            Err(Damage {
                good: out.entries,
                error: VerifyError::HeadMissing { entries },
            })
        }
    }
}

/// Checks one file's entries: every keyed hash, the chain and the sequence inside it, and that
/// it starts from genesis, a recorded break or a rotation (which `segment` checks against the
/// file before it). A sealed segment has no head: the next file's first entry vouches for
/// its end.
pub(crate) fn check_sealed(data: &[u8], key: &AuditKey) -> Result<Checked, Damage> {
    let mut out = Checked::default();
    let fail = |out: Checked, error| {
        Err(Damage {
            good: out.entries,
            error,
        })
    };
    let text = String::from_utf8_lossy(data);
    let complete = text.is_empty() || text.ends_with('\n');
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    let parsed: Vec<Result<Entry, String>> = lines
        .iter()
        .map(|l| serde_json::from_str::<Entry>(l).map_err(|e| e.to_string()))
        .collect();
    for (i, entry) in parsed.iter().enumerate() {
        let line = i + 1;
        if !complete && line == lines.len() {
            return fail(out, VerifyError::Truncated { line });
        }
        let entry = match entry {
            Ok(e) => e,
            Err(message) => {
                let message = message.clone();
                return fail(out, VerifyError::Malformed { line, message });
            }
        };
        if !keyed_ok(key, entry) {
            let run = recomputed_run(key, &parsed[i..]);
            let error = if run >= 2 {
                VerifyError::Recomputed { line, lines: run }
            } else {
                VerifyError::HashMismatch { line }
            };
            return fail(out, error);
        }
        match out.entries.last() {
            None => {
                let genesis = entry.seq == 1 && entry.prev_hash == GENESIS;
                let recorded_break = BREAK_ACTIONS.contains(&entry.action.as_str());
                let rotated = entry.action == ROTATE_ACTION;
                if !genesis && !recorded_break && !rotated {
                    return fail(
                        out,
                        VerifyError::MissingStart {
                            first_seq: entry.seq,
                        },
                    );
                }
            }
            Some(prev) => {
                if entry.prev_hash != prev.hash {
                    return fail(
                        out,
                        VerifyError::BrokenChain {
                            line,
                            prev: line - 1,
                        },
                    );
                }
                if entry.seq != prev.seq + 1 {
                    let expected = prev.seq + 1;
                    return fail(
                        out,
                        VerifyError::BadSeq {
                            line,
                            expected,
                            found: entry.seq,
                        },
                    );
                }
            }
        }
        if BREAK_ACTIONS.contains(&entry.action.as_str()) {
            out.breaks.push(entry.clone());
        }
        out.entries.push(entry.clone());
    }
    Ok(out)
}

/// The head must name an entry of this file with the same hash, and the file must start where
/// the head says. Entries after the head's are fine: they were written since the last sync.
fn against_head(out: Checked, head: &Head) -> Result<Checked, Damage> {
    let first = out.entries.first().map_or(head.first_seq, |e| e.seq);
    let last = out
        .entries
        .last()
        .map_or(head.first_seq.saturating_sub(1), |e| e.seq);
    let error = if first != head.first_seq {
        Some(VerifyError::MissingStart { first_seq: first })
    } else if last < head.seq {
        Some(VerifyError::TruncatedEnd {
            last_seq: last,
            head_seq: head.seq,
        })
    } else if head.seq >= head.first_seq {
        let named = out.entries.iter().find(|e| e.seq == head.seq);
        (named.map(|e| e.hash.as_str()) != Some(head.hash.as_str()))
            .then_some(VerifyError::HeadMismatch { seq: head.seq })
    } else {
        None
    };
    match error {
        Some(error) => Err(Damage {
            good: out.entries,
            error,
        }),
        None => Ok(out),
    }
}

fn keyed_ok(key: &AuditKey, entry: &Entry) -> bool {
    use subtle::ConstantTimeEq;
    match canonical(entry) {
        Ok(bytes) => bool::from(
            key.entry_mac(&bytes)
                .as_bytes()
                .ct_eq(entry.hash.as_bytes()),
        ),
        Err(_) => false,
    }
}

/// How many entries from the first one fail the keyed check while linking to each other: a
/// run of two or more is a chain someone recomputed without the key (after deleting,
/// inserting or editing lines), where a single bad entry followed by good ones is an edit.
fn recomputed_run(key: &AuditKey, rest: &[Result<Entry, String>]) -> usize {
    let mut run = 0;
    let mut prev_hash: Option<&str> = None;
    for entry in rest {
        let Ok(entry) = entry else { break };
        if keyed_ok(key, entry) || prev_hash.is_some_and(|h| h != entry.prev_hash) {
            break;
        }
        prev_hash = Some(&entry.hash);
        run += 1;
    }
    run
}

/// The pre-key format (a plain SHA-256 chain), accepted only to move such a log aside once.
pub(crate) fn check_unkeyed(data: &[u8]) -> Result<Vec<Entry>, VerifyError> {
    use sha2::{Digest, Sha256};
    let text = String::from_utf8_lossy(data);
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(VerifyError::Truncated {
            line: text.lines().count(),
        });
    }
    let mut entries: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let entry: Entry = serde_json::from_str(raw).map_err(|e| VerifyError::Malformed {
            line,
            message: e.to_string(),
        })?;
        let bytes = canonical(&entry).map_err(|e| VerifyError::Malformed {
            line,
            message: e.to_string(),
        })?;
        if super::hex(&Sha256::digest(&bytes)) != entry.hash {
            return Err(VerifyError::HashMismatch { line });
        }
        let (seq, prev) = entries
            .last()
            .map_or((1, GENESIS), |p| (p.seq + 1, p.hash.as_str()));
        if entry.prev_hash != prev || entry.seq != seq {
            return Err(VerifyError::BrokenChain {
                line,
                prev: line - 1,
            });
        }
        entries.push(entry);
    }
    Ok(entries)
}
