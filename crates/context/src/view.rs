//! Budgeted views: the best context that fits a token budget, what an agent puts in its prompt
//! to continue the work.
//!
//! Always kept: the workspace line (cwd, branch, changed files), the most recent failure, and
//! every unresolved error. The rest of the budget goes to the highest-scoring live entries and
//! summary lines (recency, failure, task scope, files still in play, messages), each in its full
//! form when it fits and is not too large, else its one-line form; they are then shown in order.
//! Token counts are sums of per-block counts taken when the blocks were made; blocks start
//! with `[` and end with one `\n`, which keeps the sum equal to the rendered text's count.

use std::collections::BinaryHeap;

use std::collections::HashMap;
use std::sync::Mutex;

use ai_session_output::{Encoding, count_tokens};
use serde::{Deserialize, Serialize};

use crate::ContextError;
use crate::agent::LearnedPattern;
use crate::context::{Failure, SessionContext};
use crate::entry::{Entry, render_brief, render_full};
use crate::extract;
use crate::summary::SummaryLine;
use crate::workspace::WorkspaceState;

/// Which form of an entry a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// Header and output.
    Full,
    /// One line.
    Brief,
}

/// An entry as a view shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewEntry {
    /// The entry's id.
    pub seq: u64,
    /// Its task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Form shown.
    pub form: Form,
    /// Relevance score it was chosen with.
    pub score: f32,
    /// Whether it is a failed run.
    pub failed: bool,
    /// The text shown.
    pub text: String,
    /// Its tokens.
    pub tokens: u32,
}

/// What a view left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Omitted {
    /// Live entries not shown (or not in the task's lineage).
    pub live_entries: usize,
    /// Summary lines not shown.
    pub summary_lines: usize,
    /// Entries in the archive (retrievable by id).
    pub archived_entries: u64,
}

/// A context that fits a budget: structured, and rendered as `text`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContextView {
    /// Session or agent name.
    pub owner: String,
    /// The task asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The task and its ancestors, nearest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<String>,
    /// The budget asked for.
    pub budget: usize,
    /// Tokens of `text` (never above `budget`).
    pub tokens_used: usize,
    /// Tokenizer of the counts.
    pub encoding: Encoding,
    /// Workspace.
    pub workspace: WorkspaceState,
    /// Learned patterns shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learned: Vec<LearnedPattern>,
    /// The most recent failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<Failure>,
    /// Unresolved errors (the last failure excepted), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<Failure>,
    /// Summary lines shown, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<SummaryLine>,
    /// Entries shown, in order.
    pub entries: Vec<ViewEntry>,
    /// What was left out.
    pub omitted: Omitted,
    /// The rendered context.
    pub text: String,
}

/// Token counts of the small blocks a view makes on the fly (workspace, learned, header,
/// labels), so that repeated builds do not count the same text again.
#[derive(Debug, Default)]
pub(crate) struct TokenMemo {
    encoding: Encoding,
    counts: Mutex<HashMap<(usize, u64), usize>>,
}

impl TokenMemo {
    /// Most texts remembered before the memo starts over.
    const MAX: usize = 256;

    pub(crate) fn new(encoding: Encoding) -> Self {
        Self {
            encoding,
            counts: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn count(&self, text: &str) -> Result<usize, ContextError> {
        let key = (text.len(), extract::fnv(text.as_bytes()));
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(&key) {
            return Ok(*n);
        }
        let n = count_tokens(text, self.encoding);
        if map.len() >= Self::MAX {
            map.clear();
        }
        map.insert(key, n);
        Ok(n)
    }
}

/// Unresolved errors shown one per line; older ones are listed by id only.
const UNRESOLVED_LINES: usize = 10;
/// Recency half-life, in entries.
const HALF_LIFE: f32 = 24.0;

struct Block {
    text: String,
    tokens: usize,
}

impl Block {
    fn new(text: String, memo: &TokenMemo) -> Result<Self, ContextError> {
        let tokens = memo.count(&text)?;
        Ok(Self { text, tokens })
    }
    fn counted(text: String, tokens: u32) -> Self {
        Self {
            text,
            tokens: tokens as usize,
        }
    }
}

fn sum(blocks: &[Block]) -> usize {
    blocks.iter().map(|b| b.tokens).sum()
}

/// Orders f32 scores as u32 so they pack with an index into one heap key.
fn ordered(score: f32) -> u64 {
    let bits = score.to_bits();
    let key = if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    u64::from(key) << 32
}

enum Pick {
    Entry(usize, Form, f32),
    Line(usize),
}

impl SessionContext {
    /// The best context within `budget_tokens` for continuing the work, optionally for `task`
    /// (its entries, then its ancestors', preferred in that order; other tasks' entries left
    /// out). Fails with `BudgetTooSmall` when even the must-keep part does not fit.
    pub fn build(
        &self,
        budget_tokens: usize,
        task: Option<&str>,
    ) -> Result<ContextView, ContextError> {
        if let Some(t) = task {
            if self.tasks.get(t).is_none() {
                return Err(ContextError::UnknownTask(t.to_string()));
            }
        }
        let lineage = task.map(|t| self.tasks.lineage(t)).unwrap_or_default();
        let lineage_idx: Vec<(u32, u32)> = lineage
            .iter()
            .filter_map(|(t, d)| self.task_ids.get(t).map(|i| (*i, *d)))
            .collect();
        let depth_of = |idx: u32| -> Option<u32> {
            lineage_idx.iter().find(|(t, _)| *t == idx).map(|(_, d)| *d)
        };
        let (mandatory, pinned) = self.mandatory(budget_tokens)?;
        let mut used = sum(&mandatory);
        let mut head: Vec<Block> = Vec::new();
        let header = Block::new(self.header_line(task), &self.memo)?;
        if used + header.tokens <= budget_tokens {
            used += header.tokens;
            head.push(header);
        }
        let learned_text = self.agent.render();
        let mut learned = Vec::new();
        if !learned_text.is_empty() {
            let b = Block::new(learned_text, &self.memo)?;
            if used + b.tokens <= budget_tokens {
                used += b.tokens;
                head.push(b);
                learned = self.agent.patterns.clone();
            }
        }

        // Scores. Entries of tasks outside the lineage are left out when a task is asked for.
        let last_seq = self.next_seq.saturating_sub(1);
        let in_play = self.files_in_play();
        let in_play_mask = in_play.iter().fold(0u64, |m, k| m | 1 << (k % 64));
        let mut keys: Vec<u64> = Vec::with_capacity(self.live.len() + self.summary.lines.len());
        let mut scores: Vec<f32> = vec![0.0; self.live.len()];
        // The cheapest candidate: once less than this is left, nothing more can fit.
        let mut min_cost = usize::MAX;
        for (i, (e, m)) in self.live.iter().zip(&self.meta).enumerate() {
            if pinned.contains(&e.seq) {
                continue;
            }
            let mut s = 2.0 * (-((last_seq - e.seq) as f32) / HALF_LIFE).exp2();
            if let (Some(t), Some(_)) = (m.task, task) {
                match depth_of(t) {
                    Some(0) => s += 1.5,
                    Some(d) => s += 1.0 / d as f32,
                    None => continue,
                }
            }
            if m.failed {
                s += 1.0;
            }
            if m.has_errors {
                s += 0.3;
            }
            if m.noise {
                s -= 0.6;
            }
            if m.superseded {
                s -= 0.5;
            }
            s += match m.role {
                Some(crate::entry::Role::User) => 1.2,
                Some(crate::entry::Role::Note) => 1.0,
                Some(crate::entry::Role::Assistant) => 0.5,
                None => 0.0,
            };
            if m.files_mask & in_play_mask != 0
                && m.files.iter().any(|f| in_play.binary_search(f).is_ok())
            {
                s += 0.8;
            }
            scores[i] = s;
            min_cost = min_cost.min(e.brief_tokens as usize);
            keys.push(ordered(s) | i as u64);
        }
        let n_live = self.live.len();
        for (j, l) in self.summary.lines.iter().enumerate() {
            // A single failed run already shown among the must-keep failures.
            if l.count == 1 && l.failures == 1 && pinned.contains(&l.first_seq) {
                continue;
            }
            let mut s = l.weight + (-((last_seq - l.last_seq) as f32) / (HALF_LIFE * 8.0)).exp2();
            if let (Some(t), Some(_)) = (&l.task, task) {
                match lineage.iter().find(|(x, _)| x == t) {
                    Some((_, 0)) => s += 1.0,
                    Some((_, d)) => s += 0.5 / *d as f32,
                    None => continue,
                }
            }
            min_cost = min_cost.min(l.tokens as usize);
            keys.push(ordered(s) | (n_live + j) as u64);
        }

        // Greedy by score. A full form may take at most a quarter of the budget.
        let summary_label =
            Block::new("[earlier, summarized; entries by id]\n".into(), &self.memo)?;
        let history_label = Block::new("[history]\n".into(), &self.memo)?;
        let (mut has_summary, mut has_history) = (false, false);
        let mut picks: Vec<Pick> = Vec::new();
        let mut heap = BinaryHeap::from(keys);
        let full_cap = (budget_tokens / 4).max(1);
        while let Some(k) = heap.pop() {
            let remaining = budget_tokens - used;
            if remaining < min_cost {
                break;
            }
            let idx = (k & 0xffff_ffff) as usize;
            if idx < n_live {
                let e = &self.live[idx];
                let label = if has_history { 0 } else { history_label.tokens };
                let (full, brief) = (e.tokens as usize, e.brief_tokens as usize);
                let form = if full + label <= remaining && full <= full_cap.max(brief) {
                    Form::Full
                } else if brief + label <= remaining {
                    Form::Brief
                } else {
                    continue;
                };
                used += label + if form == Form::Full { full } else { brief };
                has_history = true;
                picks.push(Pick::Entry(idx, form, scores[idx]));
            } else {
                let l = &self.summary.lines[idx - n_live];
                let label = if has_summary { 0 } else { summary_label.tokens };
                if l.tokens as usize + label > remaining {
                    continue;
                }
                used += label + l.tokens as usize;
                has_summary = true;
                picks.push(Pick::Line(idx - n_live));
            }
        }
        self.assemble(AssembleParts {
            budget: budget_tokens,
            task,
            lineage: lineage.into_iter().map(|(t, _)| t).collect(),
            head,
            mandatory,
            picks,
            summary_label: has_summary.then_some(summary_label),
            history_label: has_history.then_some(history_label),
            learned,
        })
    }

    fn header_line(&self, task: Option<&str>) -> String {
        let mut out = format!("[context] {}", extract::one_line(&self.owner, 60));
        if let Some(t) = task {
            out.push_str(&format!(" | task {}", extract::one_line(t, 60)));
            if let Some(title) = self.tasks.get(t).and_then(|t| t.title.as_deref()) {
                out.push_str(&format!(": {}", extract::one_line(title, 120)));
            }
        }
        out.push_str(&format!(
            " | {} entries, {} archived (`ai-session context show -t {} ID` for any)\n",
            self.next_seq - 1,
            self.archive.len(),
            extract::one_line(&self.owner, 60)
        ));
        out
    }

    /// Paths of the changed files, the last failure and the unresolved errors.
    fn files_in_play(&self) -> Vec<u64> {
        let mut keys: Vec<u64> = self
            .workspace
            .changed_files
            .iter()
            .map(|f| extract::path_key(f))
            .collect();
        let front = self.live.front().map(|e| e.seq).unwrap_or(u64::MAX);
        for f in self.open_errors.iter().chain(self.last_failure.as_ref()) {
            if f.seq >= front {
                if let Some(m) = self.meta.get((f.seq - front) as usize) {
                    keys.extend(&m.files);
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The must-keep blocks (workspace, last failure, unresolved errors) and the ids they pin.
    fn mandatory(&self, budget: usize) -> Result<(Vec<Block>, Vec<u64>), ContextError> {
        let mut blocks = vec![Block::new(self.workspace.render(), &self.memo)?];
        let mut pinned = Vec::new();
        let mut failure_full: Option<Block> = None;
        if let Some(lf) = &self.last_failure {
            pinned.push(lf.seq);
            let label = match lf.resolved_by {
                Some(r) => format!("[last failure, resolved by #{r}]\n"),
                None => "[last failure, unresolved]\n".to_string(),
            };
            blocks.push(Block::new(label, &self.memo)?);
            blocks.push(Block::counted(lf.text.clone(), lf.tokens));
            if let Some(e) = self.live_entry(lf.seq) {
                if (e.tokens as usize) <= budget / 4 {
                    failure_full = Some(Block::counted(
                        render_full(e, self.config.max_entry_chars),
                        e.tokens,
                    ));
                }
            }
        }
        let skip = self.last_failure.as_ref().map(|f| f.seq);
        let open: Vec<&Failure> = self
            .open_errors
            .iter()
            .filter(|f| Some(f.seq) != skip)
            .collect();
        if !open.is_empty() {
            blocks.push(Block::new(
                format!("[unresolved errors: {}]\n", open.len()),
                &self.memo,
            )?);
            let cut = open.len().saturating_sub(UNRESOLVED_LINES);
            if cut > 0 {
                let ids: Vec<String> = open[..cut]
                    .iter()
                    .map(|f| format!("#{} {}", f.seq, extract::one_line(&f.command, 40)))
                    .collect();
                blocks.push(Block::new(
                    format!("[older unresolved] {}\n", ids.join("; ")),
                    &self.memo,
                )?);
            }
            for f in &open[cut..] {
                pinned.push(f.seq);
                blocks.push(Block::counted(f.text.clone(), f.tokens));
            }
        }
        let needed = sum(&blocks);
        if needed > budget {
            return Err(ContextError::BudgetTooSmall { budget, needed });
        }
        // The failure's full form replaces its one-line form when the budget allows.
        if let (Some(full), true) = (failure_full, self.last_failure.is_some()) {
            let brief = &blocks[2];
            if needed - brief.tokens + full.tokens <= budget {
                blocks[2] = full;
            }
        }
        Ok((blocks, pinned))
    }

    fn live_entry(&self, seq: u64) -> Option<&Entry> {
        let front = self.live.front()?.seq;
        if seq < front {
            return None;
        }
        self.live.get((seq - front) as usize)
    }
}

struct AssembleParts<'a> {
    budget: usize,
    task: Option<&'a str>,
    lineage: Vec<String>,
    head: Vec<Block>,
    mandatory: Vec<Block>,
    picks: Vec<Pick>,
    summary_label: Option<Block>,
    history_label: Option<Block>,
    learned: Vec<LearnedPattern>,
}

impl SessionContext {
    fn assemble(&self, p: AssembleParts<'_>) -> Result<ContextView, ContextError> {
        let mut lines: Vec<usize> = Vec::new();
        let mut chosen: Vec<(usize, Form, f32)> = Vec::new();
        for pick in p.picks {
            match pick {
                Pick::Entry(i, f, s) => chosen.push((i, f, s)),
                Pick::Line(j) => lines.push(j),
            }
        }
        lines.sort_by_key(|&j| (self.summary.lines[j].first_seq, j));
        chosen.sort_by_key(|c| c.0);
        let mut blocks: Vec<Block> = p.head;
        blocks.extend(p.mandatory);
        let mut summary = Vec::new();
        if let Some(label) = p.summary_label {
            blocks.push(label);
            for &j in &lines {
                let l = &self.summary.lines[j];
                blocks.push(Block::counted(l.text.clone(), l.tokens));
                summary.push(l.clone());
            }
        }
        let mut entries = Vec::new();
        if let Some(label) = p.history_label {
            blocks.push(label);
            for &(i, form, score) in &chosen {
                let e = &self.live[i];
                let (text, tokens) = match form {
                    Form::Full => (render_full(e, self.config.max_entry_chars), e.tokens),
                    Form::Brief => (render_brief(e), e.brief_tokens),
                };
                blocks.push(Block::counted(text.clone(), tokens));
                entries.push(ViewEntry {
                    seq: e.seq,
                    task: e.task.clone(),
                    form,
                    score,
                    failed: e.failed(),
                    text,
                    tokens,
                });
            }
        }
        let tokens_used = sum(&blocks);
        let text: String = blocks.iter().map(|b| b.text.as_str()).collect();
        let skip = self.last_failure.as_ref().map(|f| f.seq);
        Ok(ContextView {
            owner: self.owner.clone(),
            task: p.task.map(str::to_string),
            lineage: p.lineage,
            budget: p.budget,
            tokens_used,
            encoding: self.config.encoding,
            workspace: self.workspace.clone(),
            learned: p.learned,
            last_failure: self.last_failure.clone(),
            unresolved: self
                .open_errors
                .iter()
                .filter(|f| Some(f.seq) != skip)
                .cloned()
                .collect(),
            omitted: Omitted {
                live_entries: self.live.len() - entries.len(),
                summary_lines: self.summary.lines.len() - summary.len(),
                archived_entries: self.archive.len(),
            },
            summary,
            entries,
            text,
        })
    }
}
