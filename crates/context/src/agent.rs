//! Agent state: declared capabilities and preferences, tools seen working or missing, and
//! patterns learned from observation (a command failing, then a variant succeeding).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::extract::{self, one_line};

/// Most patterns kept (the least seen drop out first).
const MAX_PATTERNS: usize = 32;
/// Failures remembered for learning.
const RECENT_FAILURES: usize = 8;
/// A variant must succeed within this many entries of the failure to teach anything.
const LEARN_WINDOW: u64 = 12;

/// What kind of lesson a pattern is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternKind {
    /// The command needs extra arguments (`cargo test` needs `--features x`).
    ExtraArgs,
    /// A missing program has a working substitute (`python` -> `python3`).
    Substitute,
    /// The command only works in a certain directory.
    Directory,
}

/// Something learned about this project or machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedPattern {
    /// Merge key.
    pub key: String,
    /// Kind of lesson.
    pub kind: PatternKind,
    /// The lesson, one line, e.g. "`cargo test` needs `--features unicode`".
    pub text: String,
    /// The failing entry and the succeeding one that taught it (latest pair).
    pub evidence: (u64, u64),
    /// How many times it was observed.
    pub seen: u32,
}

/// How a program fared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolSeen {
    /// Runs that exited 0.
    pub ok: u32,
    /// Runs that failed for another reason than being missing.
    pub failed: u32,
    /// Whether the last attempt found it missing (exit 127 / not found).
    pub missing: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct RecentFailure {
    seq: u64,
    words: Vec<String>,
    cwd: String,
    missing: bool,
}

/// The agent's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentState {
    /// Capabilities declared by the agent or its orchestrator.
    #[serde(default)]
    pub capabilities: BTreeSet<String>,
    /// Preferences declared (`style = terse`, `test-runner = nextest`).
    #[serde(default)]
    pub preferences: BTreeMap<String, String>,
    /// Programs seen run.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolSeen>,
    /// Patterns learned.
    #[serde(default)]
    pub patterns: Vec<LearnedPattern>,
    #[serde(default)]
    recent_failures: VecDeque<RecentFailure>,
}

/// A failure a successful variant taught a lesson about (and so resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct Lesson {
    /// The failing entry.
    pub failed_seq: u64,
    /// The pattern learned.
    pub pattern: LearnedPattern,
}

impl AgentState {
    /// Observes one run; returns the lesson when a success explains an earlier failure.
    pub fn observe(
        &mut self,
        seq: u64,
        words: &[String],
        cwd: &str,
        exit_code: Option<i32>,
        failed: bool,
        output: &str,
    ) -> Option<Lesson> {
        let program = words.first()?.clone();
        if program == "cd" {
            return None;
        }
        let missing = exit_code == Some(127)
            || (failed && output.contains("command not found") && output.contains(&program));
        let tool = self.tools.entry(program).or_default();
        tool.missing = missing;
        match (failed, missing) {
            (_, true) => {}
            (true, false) => tool.failed += 1,
            (false, false) => tool.ok += 1,
        }
        if failed {
            self.recent_failures.push_back(RecentFailure {
                seq,
                words: words.to_vec(),
                cwd: cwd.to_string(),
                missing,
            });
            while self.recent_failures.len() > RECENT_FAILURES {
                self.recent_failures.pop_front();
            }
            return None;
        }
        if exit_code != Some(0) {
            return None;
        }
        let lesson = self.learn(seq, words, cwd)?;
        self.recent_failures.retain(|f| f.seq != lesson.failed_seq);
        self.remember(lesson.pattern.clone());
        Some(lesson)
    }

    fn learn(&self, seq: u64, words: &[String], cwd: &str) -> Option<Lesson> {
        for f in self.recent_failures.iter().rev() {
            if seq.saturating_sub(f.seq) > LEARN_WINDOW {
                break;
            }
            if let Some((kind, key, text)) = lesson_from(f, words, cwd) {
                return Some(Lesson {
                    failed_seq: f.seq,
                    pattern: LearnedPattern {
                        key,
                        kind,
                        text,
                        evidence: (f.seq, seq),
                        seen: 1,
                    },
                });
            }
        }
        None
    }

    fn remember(&mut self, p: LearnedPattern) {
        if let Some(old) = self.patterns.iter_mut().find(|o| o.key == p.key) {
            old.seen += 1;
            old.evidence = p.evidence;
            return;
        }
        self.patterns.push(p);
        if self.patterns.len() > MAX_PATTERNS {
            if let Some(i) = (0..self.patterns.len()).min_by_key(|&i| self.patterns[i].seen) {
                self.patterns.remove(i);
            }
        }
    }

    /// The one-line form of patterns, tools and preferences in a view (starts with `[`, ends
    /// with `\n`), or an empty string when nothing is known.
    pub fn render(&self) -> String {
        let mut parts = Vec::new();
        for p in &self.patterns {
            parts.push(format!("{} (#{}->#{})", p.text, p.evidence.0, p.evidence.1));
        }
        let missing: Vec<&str> = self
            .tools
            .iter()
            .filter(|(_, t)| t.missing)
            .map(|(n, _)| n.as_str())
            .collect();
        if !missing.is_empty() {
            parts.push(format!("missing tools: {}", missing.join(", ")));
        }
        for (k, v) in &self.preferences {
            parts.push(format!("prefers {k}={}", one_line(v, 80)));
        }
        if !self.capabilities.is_empty() {
            let caps: Vec<&str> = self.capabilities.iter().map(String::as_str).collect();
            parts.push(format!("capabilities: {}", caps.join(", ")));
        }
        if parts.is_empty() {
            return String::new();
        }
        format!("[learned] {}\n", parts.join("; "))
    }
}

fn lesson_from(
    f: &RecentFailure,
    words: &[String],
    cwd: &str,
) -> Option<(PatternKind, String, String)> {
    let fam = extract::command_family(words);
    if f.missing {
        // The same arguments under another program name.
        let same_args = f.words.get(1..) == words.get(1..);
        let (Some(old), Some(new)) = (f.words.first(), words.first()) else {
            return None;
        };
        if same_args && old != new {
            let text = format!("use `{new}` instead of `{old}` (not installed)");
            return Some((PatternKind::Substitute, format!("sub {old} {new}"), text));
        }
        return None;
    }
    if extract::command_family(&f.words) != fam {
        return None;
    }
    if f.words == words && f.cwd != cwd {
        let text = format!(
            "`{}` works in {cwd}, not in {}",
            one_line(&words.join(" "), 80),
            f.cwd
        );
        return Some((PatternKind::Directory, format!("dir {fam} {cwd}"), text));
    }
    // Every word of the failure kept, and something added.
    let all_kept = f.words.iter().all(|w| words.contains(w));
    let extras: Vec<&str> = words
        .iter()
        .filter(|w| !f.words.contains(w))
        .map(String::as_str)
        .collect();
    if all_kept && !extras.is_empty() && f.cwd == cwd && extract::only_flags(words, &extras) {
        let extra = extras.join(" ");
        let text = format!("`{fam}` needs `{extra}`");
        return Some((PatternKind::ExtraArgs, format!("args {fam} {extra}"), text));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        extract::primary_words(s)
    }

    #[test]
    fn learns_extra_flag() {
        let mut a = AgentState::default();
        assert!(
            a.observe(1, &w("cargo test"), "/p", Some(101), true, "")
                .is_none()
        );
        assert!(a.observe(2, &w("ls"), "/p", Some(0), false, "").is_none());
        let l = a.observe(3, &w("cargo test --features x"), "/p", Some(0), false, "");
        let l = l.map(|l| (l.failed_seq, l.pattern.text));
        assert_eq!(
            l,
            Some((1, "`cargo test` needs `--features x`".to_string()))
        );
        assert!(
            a.render()
                .contains("`cargo test` needs `--features x` (#1->#3)")
        );
    }

    #[test]
    fn learns_substitute_program() {
        let mut a = AgentState::default();
        a.observe(1, &w("python t.py"), "/p", Some(127), true, "");
        let l = a.observe(2, &w("python3 t.py"), "/p", Some(0), false, "");
        assert_eq!(l.map(|l| l.pattern.kind), Some(PatternKind::Substitute));
        assert!(a.tools["python"].missing);
    }
}
