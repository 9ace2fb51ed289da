//! The running summary of entries moved out of the live window, and the [`Summarizer`] that
//! folds entries into it. [`Extractive`] is the default: it works offline and only keeps what
//! the entries say (commands, exit codes, errors, paths, failing tests, decisions), merging
//! repeated runs of one command into one line.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, OnceLock};

use ai_session_output::{Encoding, count_tokens};
use serde::{Deserialize, Serialize};

use crate::ContextError;
use crate::entry::{Entry, EntryBody, Role, command_line, exit_text};
use crate::extract::{self, one_line};

/// What a summary line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    /// Runs of one command.
    Command,
    /// A test that failed.
    Test,
    /// A message worth keeping (a request, a decision).
    Message,
    /// Files seen.
    Files,
    /// Anything a summarizer other than [`Extractive`] writes.
    Other,
}

/// One line of a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryLine {
    /// Merge key: lines with the same key describe the same thing.
    pub key: String,
    /// What the line is about.
    pub kind: LineKind,
    /// Task scope of the entries it covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The rendered line: starts with `[`, ends with `\n`.
    pub text: String,
    /// Tokens of `text`.
    pub tokens: u32,
    /// Importance before recency, about 0..3.
    pub weight: f32,
    /// First entry it covers.
    pub first_seq: u64,
    /// Last entry it covers.
    pub last_seq: u64,
    /// Entries folded in.
    pub count: u32,
    /// Failed runs among them.
    pub failures: u32,
    /// Exit code of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<i32>,
    /// Details kept for re-rendering (error lines, a message's text, file names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// Token counts of the line's longer parts by hash, so that a merge recounts only the parts
    /// that changed. Summarizers other than [`Extractive`] leave it empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_tokens: Vec<(u64, u32)>,
}

/// The summary of everything archived so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Lines, in order of first appearance.
    pub lines: Vec<SummaryLine>,
    /// Entries folded in, in all.
    pub entries: u64,
    /// Lines dropped to keep the summary bounded (their entries are in the archive).
    pub dropped_lines: u64,
}

impl Summary {
    /// Tokens of all lines.
    pub fn tokens(&self) -> usize {
        self.lines.iter().map(|l| l.tokens as usize).sum()
    }
}

/// Limits a summarizer works within.
#[derive(Debug, Clone, Copy)]
pub struct SummaryLimits {
    /// Tokenizer for line counts.
    pub encoding: Encoding,
    /// Most lines to keep.
    pub max_lines: usize,
    /// Most tokens to keep.
    pub max_tokens: usize,
}

/// Folds entries leaving the live window into the running summary. An implementation must
/// keep every line's `text` starting with `[` and ending with one `\n`, and `tokens` equal to
/// its real count; it may drop lines to stay within the limits (entries stay in the archive).
pub trait Summarizer: Send + Sync {
    /// A short name, for logs and the view.
    fn name(&self) -> &str;
    /// Folds `entries` (oldest first) into `summary`.
    fn fold(
        &self,
        summary: &mut Summary,
        entries: &[Entry],
        limits: SummaryLimits,
    ) -> Result<(), ContextError>;
}

/// The default summarizer: extractive, offline, deterministic.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extractive;

const DECISION_WORDS: [&str; 10] = [
    "decision", "decided", "decide", "will ", "must", "need", "plan", "because", "instead", "use ",
];

impl Summarizer for Extractive {
    fn name(&self) -> &str {
        "extractive"
    }

    fn fold(
        &self,
        summary: &mut Summary,
        entries: &[Entry],
        limits: SummaryLimits,
    ) -> Result<(), ContextError> {
        let mut index: HashMap<String, usize> = summary
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| (l.key.clone(), i))
            .collect();
        let mut dirty = vec![false; summary.lines.len()];
        for e in entries {
            summary.entries += 1;
            for line in lines_for(e) {
                match index.get(&line.key) {
                    Some(&i) => {
                        merge(&mut summary.lines[i], line);
                        dirty[i] = true;
                    }
                    None => {
                        index.insert(line.key.clone(), summary.lines.len());
                        summary.lines.push(line);
                        dirty.push(true);
                    }
                }
            }
        }
        for (line, d) in summary.lines.iter_mut().zip(dirty) {
            if d {
                rerender(line, limits.encoding)?;
            }
        }
        bound(summary, limits);
        Ok(())
    }
}

/// The lines one entry contributes (before merging).
fn lines_for(e: &Entry) -> Vec<SummaryLine> {
    let task = e.task.clone();
    let base = |key: String, kind: LineKind, weight: f32| SummaryLine {
        key,
        kind,
        task: task.clone(),
        text: String::new(),
        tokens: 0,
        weight,
        first_seq: e.seq,
        last_seq: e.seq,
        count: 1,
        failures: 0,
        last_exit: None,
        details: Vec::new(),
        part_tokens: Vec::new(),
    };
    let t = task.as_deref().unwrap_or("");
    match &e.body {
        EntryBody::Command(c) => {
            let words = extract::primary_words(&c.command);
            let noise = !c.failed && extract::is_noise(&words);
            let shown = command_line(&c.command, 160);
            let mut cmd = base(
                format!("cmd\u{1f}{t}\u{1f}{shown}"),
                LineKind::Command,
                if noise { 0.2 } else { 0.6 },
            );
            cmd.failures = u32::from(c.failed);
            cmd.last_exit = c.exit_code;
            cmd.details = c.errors.iter().take(2).cloned().collect();
            if c.failed {
                cmd.weight += 1.0;
            }
            let mut out = vec![cmd];
            for name in &c.tests_failed {
                let mut l = base(format!("test\u{1f}{t}\u{1f}{name}"), LineKind::Test, 1.2);
                l.failures = 1;
                l.details = vec![name.clone(), shown.clone()];
                out.push(l);
            }
            if !c.files.is_empty() {
                let mut l = base(format!("files\u{1f}{t}"), LineKind::Files, 0.5);
                l.details = c.files.iter().take(6).cloned().collect();
                out.push(l);
            }
            out
        }
        EntryBody::Message(m) => {
            let lower = m.text.to_lowercase();
            let decision = DECISION_WORDS.iter().any(|w| lower.contains(w));
            let weight = match (m.role, decision) {
                (Role::User, _) => 2.2,
                (_, true) => 1.4,
                (Role::Note, false) => 0.8,
                (Role::Assistant, false) => 0.3,
            };
            let mut l = base(format!("msg\u{1f}{}", e.seq), LineKind::Message, weight);
            l.details = vec![m.role.as_str().to_string(), one_line(&m.text, 300)];
            vec![l]
        }
    }
}

fn merge(into: &mut SummaryLine, new: SummaryLine) {
    into.last_seq = into.last_seq.max(new.last_seq);
    into.first_seq = into.first_seq.min(new.first_seq);
    into.count += new.count;
    into.failures += new.failures;
    into.weight = into.weight.max(new.weight);
    match into.kind {
        LineKind::Command => {
            into.last_exit = new.last_exit;
            if new.failures > 0 {
                into.details = new.details;
            }
        }
        LineKind::Files => {
            for f in new.details {
                into.details.retain(|d| d != &f);
                into.details.push(f);
            }
            let excess = into.details.len().saturating_sub(16);
            into.details.drain(..excess);
        }
        _ => {}
    }
}

fn span(l: &SummaryLine) -> String {
    if l.first_seq == l.last_seq {
        format!("[~#{}]", l.first_seq)
    } else {
        format!("[~#{}-#{}]", l.first_seq, l.last_seq)
    }
}

/// Renders a line as `span head mid tail`, counting tokens part by part. Parts meet at
/// boundaries the BPE pre-tokenizer never crosses (a non-space character, then a space and a
/// non-space character; the `\n` inside the last part), so the parts' counts add up to the
/// line's. The span and the short counters are counted each time; the head and the tail (the
/// command, the error lines) only when their text changed.
fn rerender(l: &mut SummaryLine, enc: Encoding) -> Result<(), ContextError> {
    let span = span(l);
    let (head, mid, tail) = parts(l);
    let mut tokens = count_short(&span, enc)? + count_short(&mid, enc)?;
    let mut cache = Vec::with_capacity(2);
    for part in [&head, &tail] {
        if part.is_empty() {
            continue;
        }
        let h = extract::fnv(part.as_bytes()) ^ part.len() as u64;
        let n = match l.part_tokens.iter().find(|(k, _)| *k == h) {
            Some((_, n)) => *n,
            None => count_tokens(part, enc) as u32,
        };
        cache.push((h, n));
        tokens += n as usize;
    }
    l.part_tokens = cache;
    l.text = format!("{span}{head}{mid}{tail}");
    l.tokens = tokens as u32;
    Ok(())
}

/// Whether every 1-, 2- and 3-digit string is one token in `enc`, checked once. The BPE
/// pre-tokenizers of o200k_base and cl100k_base cut digit runs into groups of at most three
/// that never join other characters, so then a text's count does not depend on which digits it
/// holds, only on where.
fn digits_are_atomic(enc: Encoding) -> bool {
    static O200K: OnceLock<bool> = OnceLock::new();
    static CL100K: OnceLock<bool> = OnceLock::new();
    let cell = match enc {
        Encoding::O200kBase => &O200K,
        Encoding::Cl100kBase => &CL100K,
    };
    *cell.get_or_init(|| {
        (0..10)
            .map(|n| n.to_string())
            .chain((0..100).map(|n| format!("{n:02}")))
            .chain((0..1000).map(|n| format!("{n:03}")))
            .all(|d| count_tokens(&d, enc) == 1)
    })
}

/// Counts a short ASCII text (a span, the counters) through a memo keyed by its shape, with
/// every digit made `0`: `[~#11-#1600]` and `[~#12-#1601]` count alike (see
/// [`digits_are_atomic`]). Anything else is counted directly.
fn count_short(text: &str, enc: Encoding) -> Result<usize, ContextError> {
    static MEMO: LazyLock<Mutex<HashMap<(bool, String), usize>>> =
        LazyLock::new(|| Mutex::new(HashMap::new()));
    if !text.is_ascii() || text.len() > 80 || !digits_are_atomic(enc) {
        return Ok(count_tokens(text, enc));
    }
    let shape: String = text
        .chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect();
    let key = (enc == Encoding::O200kBase, shape);
    if let Some(n) = MEMO.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(*n);
    }
    let n = count_tokens(text, enc);
    let mut memo = MEMO.lock().unwrap_or_else(|e| e.into_inner());
    if memo.len() >= 4096 {
        memo.clear();
    }
    memo.insert(key, n);
    Ok(n)
}

/// `(head, mid, tail)`: head and mid never end in whitespace; mid and a non-empty tail start
/// with a space; the line's `\n` is in the last non-empty part, after a letter or a digit when
/// it is alone.
fn parts(l: &SummaryLine) -> (String, String, String) {
    let detail = |i: usize| l.details.get(i).map(String::as_str).unwrap_or("");
    let nonempty = |s: String| {
        if s.trim().is_empty() {
            "(empty)".to_string()
        } else {
            s
        }
    };
    match l.kind {
        LineKind::Command => {
            let cmd = nonempty(l.key.rsplit('\u{1f}').next().unwrap_or("").to_string());
            let head = format!(" $ {cmd}");
            let mid = if l.count > 1 {
                let failed = if l.failures > 0 {
                    format!(" ({} failed)", l.failures)
                } else {
                    String::new()
                };
                format!(" x{}{failed}, last {}", l.count, exit_text(l.last_exit))
            } else {
                format!(" -> {}", exit_text(l.last_exit))
            };
            let tail = if l.failures > 0 && !l.details.is_empty() {
                let errs: Vec<String> = l.details.iter().map(|d| one_line(d, 160)).collect();
                format!(" | last error: {}\n", errs.join(" | "))
            } else {
                "\n".to_string()
            };
            (head, mid, tail)
        }
        LineKind::Test => {
            let head = format!(" test {} failed", nonempty(detail(0).to_string()));
            let mid = if l.count > 1 {
                format!(" x{}", l.count)
            } else {
                String::new()
            };
            (
                head,
                mid,
                format!(" (in $ {})\n", nonempty(detail(1).to_string())),
            )
        }
        LineKind::Message => (
            format!(" {}: {}\n", detail(0), nonempty(detail(1).to_string())),
            String::new(),
            String::new(),
        ),
        LineKind::Files => (
            format!(" files: {}\n", l.details.join(", ")),
            String::new(),
            String::new(),
        ),
        LineKind::Other => (
            format!(" {}\n", nonempty(one_line(detail(0), 300))),
            String::new(),
            String::new(),
        ),
    }
}

/// Drops the least valuable lines until the summary fits its limits.
fn bound(summary: &mut Summary, limits: SummaryLimits) {
    let mut total = summary.tokens();
    if summary.lines.len() <= limits.max_lines && total <= limits.max_tokens {
        return;
    }
    let newest = summary.lines.iter().map(|l| l.last_seq).max().unwrap_or(0);
    let value = |l: &SummaryLine| -> f32 {
        let age = newest.saturating_sub(l.last_seq) as f32;
        l.weight + 1.0 / (1.0 + age / 200.0)
    };
    let mut order: Vec<usize> = (0..summary.lines.len()).collect();
    order.sort_by(|&a, &b| value(&summary.lines[a]).total_cmp(&value(&summary.lines[b])));
    let mut drop = vec![false; summary.lines.len()];
    let mut kept = summary.lines.len();
    for i in order {
        if kept <= limits.max_lines && total <= limits.max_tokens {
            break;
        }
        drop[i] = true;
        kept -= 1;
        total -= summary.lines[i].tokens as usize;
    }
    let mut i = 0;
    summary.lines.retain(|_| {
        let keep = !drop[i];
        i += 1;
        keep
    });
    summary.dropped_lines += (drop.len() - kept) as u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_counts_by_shape_equal_real_counts() {
        for enc in [Encoding::O200kBase, Encoding::Cl100kBase] {
            assert!(digits_are_atomic(enc));
            for t in [
                "[~#11-#16]",
                "[~#99-#1600]",
                "[~#7]",
                " x12 (3 failed), last exit 101",
                " x1234567, last exit 0",
                " -> exit -1",
                "[~#100000-#2000001]",
            ] {
                // Prime the memo with another text of the same shape, then compare.
                let other: String = t
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '9' } else { c })
                    .collect();
                count_short(&other, enc).unwrap();
                assert_eq!(count_short(t, enc).unwrap(), count_tokens(t, enc), "{t}");
            }
        }
    }
}
