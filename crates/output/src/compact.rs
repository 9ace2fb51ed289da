//! The compact view: a short text an agent reads instead of the raw output.
//!
//! Rules every view follows:
//! - the first line states the outcome, and never says success unless the parse says [`Status::Success`];
//! - errors, failing tests, conflicts and their file:line are always kept;
//! - a safety net re-reads the raw output and appends any notable line (an error word, a location in the
//!   user's code) that the specific view did not cover, so a parser gap costs tokens, not facts;
//! - the last line says how many lines were left out and how to get the full output ([`Handle`]).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::generic;
use crate::parsed::{
    BuildOutput, Diagnostic, GitOutput, LogLevel, Parsed, ParsedOutput, Severity, Status,
    StructuredLog, TestResults,
};
use crate::tokens::{Encoding, TokenizerError, count_tokens};

/// Where the full output can be read again. The caller fills what it knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handle {
    /// Session whose log holds the output.
    pub session: Option<String>,
    /// Log offset where the output starts.
    pub since: Option<u64>,
    /// Log offset where it ends.
    pub until: Option<u64>,
    /// A ready command or reference that overrides the above (a file path, a short handle).
    pub command: Option<String>,
}

impl Handle {
    /// A handle to bytes `since..until` of session `session`'s log.
    pub fn log(session: &str, since: u64, until: u64) -> Self {
        Self {
            session: Some(session.into()),
            since: Some(since),
            until: Some(until),
            command: None,
        }
    }

    /// A handle given as a ready command or reference.
    pub fn command(command: &str) -> Self {
        Self {
            command: Some(command.into()),
            ..Self::default()
        }
    }

    fn describe(&self) -> String {
        if let Some(c) = &self.command {
            return format!("`{c}`");
        }
        match (&self.session, self.since, self.until) {
            (Some(s), Some(a), Some(b)) => {
                format!("`ai-session read -t {s} --since {a}` (log bytes {a}..{b})")
            }
            (Some(s), Some(a), None) => format!("`ai-session read -t {s} --since {a}`"),
            (Some(s), None, _) => format!("`ai-session capture -t {s}`"),
            _ => "the raw output".into(),
        }
    }
}

/// A compact view and its measurements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compact {
    /// The view, footer included.
    pub text: String,
    /// The outcome the view states.
    pub status: Status,
    /// Tokenizer used for the counts.
    pub encoding: Encoding,
    /// Tokens of the raw output.
    pub raw_tokens: usize,
    /// Tokens of `text`.
    pub compact_tokens: usize,
    /// Lines of the cleaned output.
    pub raw_lines: usize,
    /// Lines of the view before its footer.
    pub shown_lines: usize,
    /// `raw_lines - shown_lines`, at least 0: what the reader did not see line for line.
    pub omitted_lines: usize,
}

/// Builds the compact view with the default tokenizer (o200k_base).
pub fn compact(parsed: &Parsed, raw: &str, handle: &Handle) -> Result<Compact, TokenizerError> {
    compact_with(parsed, raw, handle, Encoding::default())
}

/// Builds the compact view, counting tokens with `encoding`.
pub fn compact_with(
    parsed: &Parsed,
    raw: &str,
    handle: &Handle,
    encoding: Encoding,
) -> Result<Compact, TokenizerError> {
    let cleaned = crate::text::clean(raw);
    let lines: Vec<&str> = cleaned.lines().collect();
    let (mut body, status) = render(parsed, &lines);
    if needs_safety_net(&parsed.output) {
        safety_net(&lines, &mut body);
    }
    let raw_tokens = count_tokens(raw, encoding)?;
    let mut compact_tokens = count_tokens(&body, encoding)?;
    // A view that is not shorter than the output itself is no help: show the cleaned output whole.
    if compact_tokens + FOOTER_TOKENS >= count_tokens(&cleaned, encoding)? {
        body = cleaned.trim_end().to_string();
        body.push('\n');
        compact_tokens = count_tokens(&body, encoding)?;
    }
    let shown_lines = body.lines().count().min(lines.len());
    let omitted = lines.len().saturating_sub(shown_lines);
    let footer = if body.len() == cleaned.trim_end().len() + 1 && omitted == 0 {
        format!("[complete output, {} lines]\n", lines.len())
    } else {
        format!(
            "[{} lines condensed to {shown_lines}; {omitted} left out. Full output: {}]\n",
            lines.len(),
            handle.describe()
        )
    };
    compact_tokens += count_tokens(&footer, encoding)?;
    body.push_str(&footer);
    Ok(Compact {
        raw_tokens,
        compact_tokens,
        text: body,
        status,
        encoding,
        raw_lines: lines.len(),
        shown_lines,
        omitted_lines: omitted,
    })
}

/// About what the footer of a condensed view costs; a view must save more than this to be used.
const FOOTER_TOKENS: usize = 30;

fn needs_safety_net(output: &ParsedOutput) -> bool {
    match output {
        ParsedOutput::BuildOutput(_)
        | ParsedOutput::TestResults(_)
        | ParsedOutput::GitOutput(_) => true,
        ParsedOutput::Custom(c) => c.kind == "package",
        _ => false,
    }
}

/// Renders the body of the view (without footer) and the status it states.
pub fn render(parsed: &Parsed, lines: &[&str]) -> (String, Status) {
    let mut out = String::new();
    let status = match &parsed.output {
        ParsedOutput::BuildOutput(b) => render_build(b, &mut out),
        ParsedOutput::TestResults(t) => render_tests(t, &mut out),
        ParsedOutput::GitOutput(g) => render_git(g, lines, &mut out),
        ParsedOutput::StructuredLog(l) => render_log(l, lines.len(), &mut out),
        ParsedOutput::ProcessList(p) => crate::system::render_ps(p, &mut out),
        ParsedOutput::NetworkOutput(n) => crate::system::render_net(n, &mut out),
        ParsedOutput::FileSystemOutput(f) => crate::system::render_fs(f, &mut out),
        ParsedOutput::Custom(c) if c.kind == "package" => crate::pkg::render(c, &mut out),
        ParsedOutput::Custom(c) if c.kind == "memory" => {
            crate::system::render_free(lines, &mut out)
        }
        ParsedOutput::Custom(_) => {
            generic::render(lines, &mut out);
            Status::Unknown
        }
    };
    (out, status)
}

fn outcome(status: Status) -> &'static str {
    match status {
        Status::Success => "ok",
        Status::Failed => "FAILED",
        Status::Unknown => "outcome not stated in output",
    }
}

fn render_build(b: &BuildOutput, out: &mut String) -> Status {
    let errors = b
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = b
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .count();
    outln!(
        out,
        "{}: {} ({errors} errors, {warnings} warnings)",
        b.tool,
        outcome(b.status)
    );
    for d in &b.diagnostics {
        push_diagnostic(d, out);
    }
    for s in b.summary.iter().chain(&b.artifacts) {
        outln!(out, "{s}");
    }
    b.status
}

fn push_diagnostic(d: &Diagnostic, out: &mut String) {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    };
    let code = d
        .code
        .as_deref()
        .map(|c| format!("[{c}]"))
        .unwrap_or_default();
    let at = d
        .location
        .as_ref()
        .map(|l| format!(" {l}"))
        .unwrap_or_default();
    outw!(out, "{sev}{code}{at}: {}", d.message);
    let keep = if d.severity == Severity::Error { 2 } else { 1 };
    for n in d.notes.iter().take(keep) {
        outw!(out, " | {n}");
    }
    out.push('\n');
}

fn render_tests(t: &TestResults, out: &mut String) -> Status {
    outln!(
        out,
        "{}: {} ({} passed, {} failed, {} skipped)",
        t.tool,
        outcome(t.status),
        t.passed,
        t.failed,
        t.skipped
    );
    for d in &t.diagnostics {
        push_diagnostic(d, out);
    }
    for f in &t.failures {
        let at = f
            .location
            .as_ref()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        outln!(out, "FAIL {}{at}", f.name);
        for m in &f.message {
            outln!(out, "  {m}");
        }
    }
    for s in &t.summary {
        outln!(out, "{s}");
    }
    t.status
}

/// Diffs up to this many changed lines are shown in full (added and removed lines, no context).
const DIFF_BODY_LIMIT: usize = 80;
/// Commits listed one per line before the rest are counted.
const LOG_LIMIT: usize = 30;

fn render_git(g: &GitOutput, lines: &[&str], out: &mut String) -> Status {
    outln!(out, "{} {:?}: {}", g.vcs, g.operation, outcome(g.status));
    for b in &g.branch {
        outln!(out, "{b}");
    }
    for c in &g.conflicts {
        outln!(out, "CONFLICT ({}): {}", c.kind, c.path);
    }
    render_git_files(g, out);
    render_git_commits(g, out);
    render_git_diffs(g, lines, out);
    for m in &g.messages {
        if !m.starts_with("CONFLICT") && !m.starts_with("hint:") {
            outln!(out, "{}", m.trim());
        }
    }
    g.status
}

fn render_git_files(g: &GitOutput, out: &mut String) {
    let mut groups: Vec<((&str, &str), Vec<&str>)> = Vec::new();
    for f in &g.files {
        let key = (f.state.as_str(), f.change.as_str());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, paths)) => paths.push(&f.path),
            None => groups.push((key, vec![&f.path])),
        }
    }
    for ((state, change), paths) in groups {
        let shown = if state == "untracked" || state == "ignored" {
            40
        } else {
            usize::MAX
        };
        let rest = paths.len().saturating_sub(shown);
        let list: Vec<&str> = paths.into_iter().take(shown).collect();
        let more = if rest > 0 {
            format!(" (+{rest} more)")
        } else {
            String::new()
        };
        let label = if state == change {
            state.to_string()
        } else {
            format!("{state} {change}")
        };
        outln!(out, "{label}: {}{more}", list.join(", "));
    }
}

fn render_git_commits(g: &GitOutput, out: &mut String) {
    if g.commits.is_empty() {
        return;
    }
    let mut authors: Vec<&str> = Vec::new();
    for c in &g.commits {
        let name = c.author.split(" <").next().unwrap_or("");
        if !name.is_empty() && !authors.contains(&name) {
            authors.push(name);
        }
    }
    if !authors.is_empty() {
        outln!(out, "authors: {}", authors.join(", "));
    }
    if let (Some(first), Some(last)) = (g.commits.first(), g.commits.last())
        && !first.date.is_empty()
    {
        outln!(out, "dates: {} .. {}", last.date, first.date);
    }
    for c in g.commits.iter().take(LOG_LIMIT) {
        outln!(
            out,
            "{} {}",
            crate::text::prefix_at_boundary(&c.hash, 7),
            c.subject
        );
    }
    if g.commits.len() > LOG_LIMIT {
        outln!(out, "… {} older commits", g.commits.len() - LOG_LIMIT);
    }
}

fn render_git_diffs(g: &GitOutput, lines: &[&str], out: &mut String) {
    let changed: usize = g.diffs.iter().map(|d| d.added + d.removed).sum();
    for d in &g.diffs {
        outln!(out, "{} +{} -{}", d.path, d.added, d.removed);
        for n in &d.notes {
            outln!(out, "  {n}");
        }
        if changed > DIFF_BODY_LIMIT {
            for h in &d.hunks {
                outln!(out, "  {h}");
            }
        }
    }
    if g.diffs.is_empty() {
        return;
    }
    if changed > DIFF_BODY_LIMIT {
        outln!(
            out,
            "({changed} changed lines not shown: read the full diff)"
        );
        return;
    }
    // Small diffs keep every hunk header and changed line, so nothing of the change is lost.
    for line in lines {
        let body = line.starts_with('+') || line.starts_with('-');
        if line.starts_with("@@") || (body && !line.starts_with("+++") && !line.starts_with("---"))
        {
            outln!(out, "{line}");
        } else if let Some(path) = line.strip_prefix("+++ b/") {
            outln!(out, "## {path}");
        }
    }
}

fn render_log(l: &StructuredLog, total: usize, out: &mut String) -> Status {
    let counts: Vec<String> = l
        .counts
        .iter()
        .map(|(lv, n)| format!("{lv:?} {n}"))
        .collect();
    outln!(
        out,
        "{} log, {total} lines: {}",
        l.encoding,
        counts.join(", ")
    );
    let mut groups: HashMap<String, (usize, usize, usize)> = HashMap::new();
    for (i, e) in l.entries.iter().enumerate() {
        let key = format!("{:?}{}", e.level, strip_digits(&e.message));
        let g = groups.entry(key).or_insert((i, 0, e.line));
        g.1 += 1;
        g.2 = e.line;
    }
    for (i, e) in l.entries.iter().enumerate() {
        let key = format!("{:?}{}", e.level, strip_digits(&e.message));
        let Some(&(first, n, last_line)) = groups.get(&key) else {
            continue;
        };
        // Errors repeat only when identical but for numbers; each group shows its first line and count.
        if first != i {
            continue;
        }
        let more = if n > 1 {
            format!("  [×{n}, last at L{last_line}]")
        } else {
            String::new()
        };
        outln!(out, "L{} {}{more}", e.line, e.message);
        for c in &e.continuation {
            outln!(out, "  {c}");
        }
    }
    let stored: usize = l
        .counts
        .iter()
        .filter(|(lv, _)| *lv >= LogLevel::Warn)
        .map(|(_, n)| n)
        .sum();
    if stored > l.entries.len() {
        outln!(
            out,
            "({} more warning/error lines not listed)",
            stored - l.entries.len()
        );
    }
    if l.level >= LogLevel::Error {
        Status::Failed
    } else {
        Status::Unknown
    }
}

fn strip_digits(s: &str) -> String {
    s.chars().filter(|c| !c.is_ascii_digit()).collect()
}

/// Most lines the safety net adds; past that it says how many more there were.
const NET_LIMIT: usize = 200;

/// Appends notable raw lines the view does not cover.
fn safety_net(lines: &[&str], body: &mut String) {
    let mut missing: Vec<&str> = Vec::new();
    let mut extra = 0usize;
    for line in lines {
        let t = line.trim();
        if t.is_empty() || !generic::is_notable(t) || covered(t, body) || missing.contains(&t) {
            continue;
        }
        if missing.len() < NET_LIMIT {
            missing.push(t);
        } else {
            extra += 1;
        }
    }
    if missing.is_empty() {
        return;
    }
    body.push_str("also in output:\n");
    for m in missing {
        outln!(body, "{}", crate::text::shorten(m, 500));
    }
    if extra > 0 {
        outln!(body, "(+{extra} more notable lines)");
    }
}

fn covered(line: &str, body: &str) -> bool {
    if let Some(loc) = generic::user_location(line) {
        let loc = loc.trim_start_matches("./");
        return body.contains(loc);
    }
    body.contains(crate::text::prefix_at_boundary(line, 200))
}
