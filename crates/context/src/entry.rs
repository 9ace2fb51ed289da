//! History entries (command runs and messages), the input the daemon hands over per exec, and the
//! two text forms an entry takes in a context view.
//!
//! Every rendered block starts with `[` and ends with exactly one `\n`. The BPE pre-tokenizer
//! never joins a piece across such a boundary, so the tokens of a view are the sum of the tokens
//! of its blocks: counts taken once when an entry is added stay exact in any view.

use ai_session_output::Parsed;
use serde::{Deserialize, Serialize};

use crate::extract::{self, one_line, prefix_chars, suffix_chars};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The human (or orchestrator) asking for work.
    User,
    /// The agent itself.
    Assistant,
    /// A note: a decision, a finding, a reminder.
    Note,
}

impl Role {
    /// The lowercase name used in views and on the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Note => "note",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "note" => Ok(Role::Note),
            other => Err(format!(
                "unknown role {other:?}: use user, assistant or note"
            )),
        }
    }
}

/// What the daemon knows about one finished (or timed-out) exec. `output` is the compact view's
/// text (`ExecResult.compact.text`); `parsed` the parsed structure when the daemon has it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecRecord {
    /// The command line as typed.
    pub command: String,
    /// Exit code; `None` while still running or after a timeout.
    pub exit_code: Option<i32>,
    /// Working directory the command ran in (the shell's cwd after it, when known).
    pub cwd: String,
    /// Wall time.
    pub duration_ms: u64,
    /// The compact output text.
    pub output: String,
    /// The parsed output, for error lines, failing tests, paths and `git status` files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parsed: Option<Parsed>,
    /// Task scope; `None` takes the context's active task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Unix time in milliseconds; `None` takes the current time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

impl ExecRecord {
    /// A record of `command` that exited with `exit_code` in `cwd`.
    pub fn new(command: impl Into<String>, exit_code: Option<i32>, cwd: impl Into<String>) -> Self {
        Self {
            command: command.into(),
            exit_code,
            cwd: cwd.into(),
            ..Self::default()
        }
    }

    /// Sets the compact output text.
    pub fn output(mut self, text: impl Into<String>) -> Self {
        self.output = text.into();
        self
    }

    /// Sets the parsed structure.
    pub fn parsed(mut self, parsed: Parsed) -> Self {
        self.parsed = Some(parsed);
        self
    }

    /// Sets the parsed structure from the JSON the daemon's exec result carries; JSON that is
    /// not a `Parsed` is ignored (the text still gives errors and paths).
    pub fn parsed_json(mut self, value: &serde_json::Value) -> Self {
        self.parsed = serde_json::from_value(value.clone()).ok();
        self
    }

    /// Sets the duration.
    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = ms;
        self
    }

    /// Scopes the record to a task.
    pub fn task(mut self, task: impl Into<String>) -> Self {
        self.task = Some(task.into());
        self
    }

    /// Sets the time.
    pub fn at_ms(mut self, at_ms: u64) -> Self {
        self.at_ms = Some(at_ms);
        self
    }
}

/// One command run as kept in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRun {
    /// The command line.
    pub command: String,
    /// Exit code, `None` if it had not finished.
    pub exit_code: Option<i32>,
    /// Working directory.
    pub cwd: String,
    /// Wall time.
    pub duration_ms: u64,
    /// Compact output text.
    pub output: String,
    /// Error lines found in the output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Failing tests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests_failed: Vec<String>,
    /// Paths the output mentions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Whether the run failed: a non-zero exit, or the parser saw a failure.
    pub failed: bool,
}

/// One message as kept in history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub text: String,
}

/// What an entry holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryBody {
    /// A command run.
    Command(CommandRun),
    /// A message.
    Message(Message),
}

/// One history entry. `seq` numbers entries of one context from 1, in order, and never repeats:
/// it is the id to fetch an entry back from the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Sequence number, the entry's id.
    pub seq: u64,
    /// Unix time in milliseconds.
    pub at_ms: u64,
    /// Task scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Content.
    pub body: EntryBody,
    /// Tokens of the full form (counted once, when added).
    pub tokens: u32,
    /// Tokens of the brief form.
    pub brief_tokens: u32,
}

impl Entry {
    /// The command run, if this entry is one.
    pub fn command(&self) -> Option<&CommandRun> {
        match &self.body {
            EntryBody::Command(c) => Some(c),
            EntryBody::Message(_) => None,
        }
    }

    /// Whether this is a failed command run.
    pub fn failed(&self) -> bool {
        self.command().is_some_and(|c| c.failed)
    }
}

impl CommandRun {
    /// A run from what the daemon hands over, with facts extracted.
    pub fn from_record(r: &ExecRecord) -> (Self, extract::RunFacts) {
        let facts = extract::run_facts(r.parsed.as_ref(), &r.output, r.exit_code);
        let failed = matches!(r.exit_code, Some(c) if c != 0) || facts.failed;
        let run = Self {
            command: r.command.clone(),
            exit_code: r.exit_code,
            cwd: r.cwd.clone(),
            duration_ms: r.duration_ms,
            output: r.output.clone(),
            errors: facts.errors.clone(),
            tests_failed: facts.tests_failed.clone(),
            files: facts.files.clone(),
            failed,
        };
        (run, facts)
    }
}

/// `1.2s`, `340ms`.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// `exit 101`, `running`.
pub fn exit_text(code: Option<i32>) -> String {
    match code {
        Some(c) => format!("exit {c}"),
        None => "running".to_string(),
    }
}

/// The command line's first line, and how many lines were left out (heredocs, scripts).
pub fn command_line(cmd: &str, max: usize) -> String {
    let mut lines = cmd.lines();
    let first = one_line(lines.next().unwrap_or(""), max);
    let rest = lines.count();
    if rest > 0 {
        format!("{first} (+{rest} lines)")
    } else {
        first
    }
}

fn tag(seq: u64, task: Option<&str>) -> String {
    match task {
        Some(t) => format!("[#{seq} {}]", one_line(t, 40)),
        None => format!("[#{seq}]"),
    }
}

/// Appends `text` indented by two spaces, at most `max_chars` characters (head and tail kept,
/// the middle elided with a pointer to the entry).
fn push_body(out: &mut String, text: &str, max_chars: usize, seq: u64) {
    let text = text.trim_end();
    if text.trim().is_empty() {
        return;
    }
    let n = text.chars().count();
    let (head, tail) = if n > max_chars {
        let head = prefix_chars(text, max_chars * 2 / 3);
        let tail = suffix_chars(text, max_chars / 3);
        (head, Some((tail, n - max_chars * 2 / 3 - max_chars / 3)))
    } else {
        (text, None)
    };
    for line in head.lines() {
        out.push_str("  ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if let Some((tail, elided)) = tail {
        out.push_str(&format!(
            "  … {elided} characters elided (ai-session context show {seq}) …\n"
        ));
        for line in tail.lines() {
            out.push_str("  ");
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

/// The full form: header line, then the output or message indented.
pub fn render_full(e: &Entry, max_chars: usize) -> String {
    let mut out = tag(e.seq, e.task.as_deref());
    match &e.body {
        EntryBody::Command(c) => {
            out.push_str(&format!(
                " $ {}  ({}, {}, in {})\n",
                command_line(&c.command, 300),
                exit_text(c.exit_code),
                duration(c.duration_ms),
                c.cwd
            ));
            let extra = c.command.lines().count() > 1;
            if extra && c.output.trim().is_empty() {
                return out;
            }
            push_body(&mut out, &c.output, max_chars, e.seq);
        }
        EntryBody::Message(m) => {
            out.push_str(&format!(" {}:\n", m.role.as_str()));
            push_body(&mut out, &m.text, max_chars, e.seq);
        }
    }
    out
}

/// The brief form: one line.
pub fn render_brief(e: &Entry) -> String {
    let mut out = tag(e.seq, e.task.as_deref());
    match &e.body {
        EntryBody::Command(c) => {
            out.push_str(&format!(
                " $ {} -> {}",
                command_line(&c.command, 160),
                exit_text(c.exit_code)
            ));
            if c.failed {
                if let Some(err) = c.errors.first() {
                    out.push_str(": ");
                    out.push_str(&one_line(err, 200));
                }
            }
        }
        EntryBody::Message(m) => {
            out.push_str(&format!(" {}: {}", m.role.as_str(), one_line(&m.text, 240)));
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: EntryBody) -> Entry {
        Entry {
            seq: 7,
            at_ms: 0,
            task: None,
            body,
            tokens: 0,
            brief_tokens: 0,
        }
    }

    #[test]
    fn forms_start_with_bracket_and_end_with_one_newline() {
        let run = EntryBody::Command(CommandRun {
            command: "cat > a <<'EOF'\nx\nEOF".into(),
            exit_code: Some(1),
            cwd: "/w".into(),
            duration_ms: 1500,
            output: "\n\nboom\n\n".into(),
            errors: vec!["boom".into()],
            tests_failed: vec![],
            files: vec![],
            failed: true,
        });
        let e = entry(run);
        for s in [render_full(&e, 100), render_brief(&e)] {
            assert!(s.starts_with('['), "{s:?}");
            assert!(s.ends_with('\n') && !s.ends_with("\n\n"), "{s:?}");
        }
        assert_eq!(
            render_brief(&e),
            "[#7] $ cat > a <<'EOF' (+2 lines) -> exit 1: boom\n"
        );
    }

    #[test]
    fn long_output_is_elided_in_the_middle() {
        let text: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let e = entry(EntryBody::Message(Message {
            role: Role::Note,
            text,
        }));
        let full = render_full(&e, 300);
        assert!(full.contains("line 0\n") && full.contains("line 199\n"));
        assert!(full.contains("characters elided (ai-session context show 7)"));
    }
}
