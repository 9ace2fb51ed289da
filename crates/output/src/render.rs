//! The bodies of compact views, one renderer per family of tools, each written into a [`Sink`]
//! in priority order: the outcome, then errors and failures, then the tool's final status lines,
//! then grouped warnings and the rest. What does not fit is counted on one line that says where it
//! is (file:line, or `L<n>`: the line of the output).

use foldhash::{HashMap, HashSet};
use std::borrow::Cow;

use crate::budget::{Sink, push_all};
use crate::parsed::{
    BuildOutput, Diagnostic, LogEntry, LogLevel, Parsed, ParsedOutput, Severity, Status,
    StructuredLog, TestFailure, TestResults,
};

/// Renders the body of the view (without footer) and returns the status it states.
pub fn render(parsed: &Parsed, lines: &[&str], notable: &[bool], sink: &mut Sink) -> Status {
    match &parsed.output {
        ParsedOutput::BuildOutput(b) => render_build(b, sink),
        ParsedOutput::TestResults(t) => render_tests(t, sink),
        ParsedOutput::GitOutput(g) => crate::render_git::render_git(g, lines, sink),
        ParsedOutput::StructuredLog(l) => render_log(l, lines.len(), sink),
        ParsedOutput::ProcessList(p) => lines_of(sink, |out| crate::system::render_ps(p, out)),
        ParsedOutput::NetworkOutput(n) => lines_of(sink, |out| crate::system::render_net(n, out)),
        ParsedOutput::FileSystemOutput(f) => lines_of(sink, |out| crate::system::render_fs(f, out)),
        ParsedOutput::Custom(c) if c.kind == "package" => {
            lines_of(sink, |out| crate::pkg::render(c, out))
        }
        ParsedOutput::Custom(c) if c.kind == "memory" => {
            lines_of(sink, |out| crate::system::render_free(lines, out))
        }
        ParsedOutput::Custom(_) => {
            crate::generic::render(lines, notable, sink);
            Status::Unknown
        }
    }
}

/// Runs a renderer that writes a whole text, then keeps its lines while they fit. Its first line
/// (the outcome) is always kept.
fn lines_of(sink: &mut Sink, write: impl FnOnce(&mut String) -> Status) -> Status {
    let mut text = String::new();
    let status = write(&mut text);
    let all: Vec<&str> = text.lines().collect();
    if let Some((first, rest)) = all.split_first() {
        sink.force(first);
        for (i, line) in rest.iter().enumerate() {
            if !sink.push_cut(line) {
                sink.force(&format!("+{} more lines", rest.len() - i));
                break;
            }
        }
    }
    status
}

/// The word a view uses for a status.
pub fn outcome(status: Status) -> &'static str {
    match status {
        Status::Success => "ok",
        Status::Failed => "FAILED",
        Status::Unknown => "outcome not stated in output",
    }
}

fn render_build(b: &BuildOutput, sink: &mut Sink) -> Status {
    let errors: Vec<&Diagnostic> = b
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .collect();
    let warnings: Vec<&Diagnostic> = b
        .diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Error)
        .collect();
    sink.force(&format!(
        "{}: {} ({} errors, {} warnings)",
        b.tool,
        outcome(b.status),
        errors.len(),
        warnings.len()
    ));
    push_section(sink, &errors, "error");
    // The tool's own status lines (`error: could not compile`, `Finished`), verbatim.
    let mut status_lines: Vec<&String> = Vec::new();
    for s in b.summary.iter().chain(&b.artifacts) {
        if !status_lines.contains(&s) {
            status_lines.push(s);
        }
    }
    push_all(
        sink,
        &status_lines,
        |s| (*s).clone(),
        |n, _| format!("+{n} more status lines"),
    );
    push_section(sink, &warnings, "warning");
    b.status
}

/// One line per diagnostic while they fit, then where the rest are.
fn push_diagnostics(sink: &mut Sink, list: &[&Diagnostic], what: &str) {
    push_all(
        sink,
        list,
        |d| diagnostic_line(d),
        |n, rest| format!("+{n} more {what} at {}", locations(rest.iter().copied(), 6)),
    );
}

/// `error[E0308] src/main.rs:2:18: mismatched types | expected i32`.
pub fn diagnostic_line(d: &Diagnostic) -> String {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    };
    let mut s = String::from(sev);
    if let Some(c) = &d.code {
        s.push_str(&format!("[{c}]"));
    }
    if let Some(l) = &d.location {
        s.push_str(&format!(" {l}"));
    }
    s.push_str(": ");
    s.push_str(&crate::text::shorten(&d.message, 400));
    let keep = if d.severity == Severity::Error { 2 } else { 1 };
    for n in d.notes.iter().take(keep) {
        s.push_str(" | ");
        s.push_str(&crate::text::shorten(n, 200));
    }
    s
}

/// Up to `max` distinct locations of `items`, then how many more.
fn locations<'a>(items: impl Iterator<Item = &'a Diagnostic>, max: usize) -> String {
    let mut shown: Vec<String> = Vec::new();
    let mut more = 0usize;
    for d in items {
        let Some(l) = &d.location else {
            more += 1;
            continue;
        };
        if shown.len() < max {
            shown.push(l.to_string());
        } else {
            more += 1;
        }
    }
    if shown.is_empty() {
        return "(no location given)".into();
    }
    if more > 0 {
        shown.push(format!("+{more}"));
    }
    shown.join(", ")
}

/// Diagnostics listed one by one up to this many; past it, they are grouped by rule.
const LISTED: usize = 10;

/// Diagnostics of one rule.
struct Group<'a> {
    first: &'a Diagnostic,
    members: Vec<&'a Diagnostic>,
}

/// Groups diagnostics by rule (their code, or the message without its quoted names and numbers),
/// rarest rule first: a rule hit once is more often the bug than one hit a thousand times.
fn group_by_rule<'a>(list: &[&'a Diagnostic]) -> Vec<Group<'a>> {
    group_by_rule_from(list, PARALLEL_GROUPS_FROM)
}

/// Lists of at least this many diagnostics are grouped in two halves, one a thread (see
/// [`group_by_rule_from`]); below it a thread costs more than it saves.
const PARALLEL_GROUPS_FROM: usize = 1 << 14;

/// [`group_by_rule`], the halves of a list of at least `parallel_from` diagnostics grouped on
/// two threads: the second half's groups joined to the first's (see [`Grouped::then`]) are the
/// groups of the whole, in the same order with the same members.
fn group_by_rule_from<'a>(list: &[&'a Diagnostic], parallel_from: usize) -> Vec<Group<'a>> {
    let grouped = if list.len() >= parallel_from.max(2) {
        let (head, tail) = list.split_at(list.len() / 2);
        std::thread::scope(|s| {
            let second = std::thread::Builder::new()
                .spawn_scoped(s, || Grouped::of(tail))
                .ok();
            let first = Grouped::of(head);
            let second = match second {
                Some(t) => t
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                None => Grouped::of(tail),
            };
            first.then(second)
        })
    } else {
        Grouped::of(list)
    };
    let mut groups = grouped.groups;
    groups.sort_by_key(|g| g.members.len());
    groups
}

/// Diagnostics grouped by rule in the order each rule first appears, before the sort.
struct Grouped<'a> {
    /// The index of each rule's group.
    index: HashMap<Cow<'a, str>, usize>,
    groups: Vec<Group<'a>>,
    /// Each group's rule.
    rules: Vec<Cow<'a, str>>,
}

impl<'a> Grouped<'a> {
    fn of(list: &[&'a Diagnostic]) -> Self {
        let mut grouped = Self {
            index: HashMap::default(),
            groups: Vec::new(),
            rules: Vec::new(),
        };
        for d in list {
            let rule = match &d.code {
                Some(c) => Cow::Borrowed(c.as_str()),
                None => Cow::Owned(rule_of(&d.message)),
            };
            match grouped.index.get(&rule) {
                Some(&i) => grouped.groups[i].members.push(d),
                None => grouped.add(
                    rule,
                    Group {
                        first: d,
                        members: vec![d],
                    },
                ),
            }
        }
        grouped
    }

    fn add(&mut self, rule: Cow<'a, str>, group: Group<'a>) {
        self.index.insert(rule.clone(), self.groups.len());
        self.rules.push(rule);
        self.groups.push(group);
    }

    /// These groups followed by `next`, the groups of the diagnostics after these: a rule of
    /// both keeps its place here and gets `next`'s members after its own; a rule new in `next`
    /// comes after every rule here, in `next`'s order.
    fn then(mut self, next: Self) -> Self {
        for (rule, group) in next.rules.into_iter().zip(next.groups) {
            match self.index.get(&rule) {
                Some(&i) => self.groups[i].members.extend(group.members),
                None => self.add(rule, group),
            }
        }
        self
    }
}

/// A message's shape: quoted names and digits removed (`unused variable: `x`` and `` `y` `` are one
/// rule).
fn rule_of(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(120));
    let mut quoted = false;
    for c in message.chars().take(120) {
        match c {
            '`' | '\'' | '"' | '‘' | '’' => {
                quoted = !quoted;
                out.push('_');
            }
            _ if quoted || c.is_ascii_digit() => {}
            _ => out.push(c),
        }
    }
    out
}

/// The diagnostics of one severity: each on its line while they are few, grouped by rule when many.
fn push_section(sink: &mut Sink, list: &[&Diagnostic], what: &str) {
    if list.len() <= LISTED {
        push_diagnostics(sink, list, &format!("{what}s"));
        return;
    }
    let groups = group_by_rule(list);
    // A group lists every location while that fits; else its first ones and its last.
    let mut shown = 0;
    for g in &groups {
        let whole = (g.members.len() <= 200).then(|| group_line_all(g));
        if whole.is_some_and(|w| sink.push(&w)) {
            shown += 1;
        } else {
            break;
        }
    }
    push_all(sink, &groups[shown..], group_line, |n, rest| {
        let count: usize = rest.iter().map(|g| g.members.len()).sum();
        format!(
            "+{n} more {what} rules ({count} {what}s) at {}",
            locations(rest.iter().map(|g| g.first), 6)
        )
    });
}

/// A group with every location: `error[TS2322] ×3: Type … at a.ts:1:2, b.ts:3:4, c.ts:5:6`.
fn group_line_all(g: &Group<'_>) -> String {
    if g.members.len() == 1 {
        return diagnostic_line(g.first);
    }
    let mut s = group_head(g);
    let at: Vec<String> = g
        .members
        .iter()
        .filter_map(|m| m.location.as_ref())
        .map(ToString::to_string)
        .collect();
    if !at.is_empty() {
        s.push_str(&format!(" at {}", at.join(", ")));
    }
    s
}

/// `warning[unused_variables] ×12: unused variable: `x``.
fn group_head(g: &Group<'_>) -> String {
    let d = g.first;
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    };
    let mut s = String::from(sev);
    if let Some(c) = &d.code {
        s.push_str(&format!("[{c}]"));
    }
    s.push_str(&format!(
        " ×{}: {}",
        g.members.len(),
        crate::text::shorten(&d.message, 300)
    ));
    s
}

/// `warning[unused_variables] ×12: unused variable: `x` at src/a.rs:3:9, src/b.rs:10:5 +10 (4
/// files)`.
fn group_line(g: &Group<'_>) -> String {
    if g.members.len() == 1 {
        return diagnostic_line(g.first);
    }
    let mut s = group_head(g);
    // The first locations and the last one: where the rule starts and where it ends.
    let located: Vec<&crate::parsed::Location> = g
        .members
        .iter()
        .filter_map(|m| m.location.as_ref())
        .collect();
    let mut at: Vec<String> = located.iter().take(3).map(ToString::to_string).collect();
    if located.len() > 3
        && let Some(last) = located.last()
    {
        at.push(format!("… {last}"));
    }
    if !at.is_empty() {
        let more = g.members.len().saturating_sub(at.len());
        let files: HashSet<&str> = located.iter().map(|l| l.file.as_str()).collect();
        let more = if more > 0 {
            format!(" +{more} ({} files)", files.len())
        } else {
            String::new()
        };
        s.push_str(&format!(" at {}{more}", at.join(", ")));
    }
    s
}

fn render_tests(t: &TestResults, sink: &mut Sink) -> Status {
    let errors = if t.errors > 0 {
        format!(", {} errors", t.errors)
    } else {
        String::new()
    };
    sink.force(&format!(
        "{}: {} ({} passed, {} failed{errors}, {} skipped)",
        t.tool,
        outcome(t.status),
        t.passed,
        t.failed,
        t.skipped
    ));
    let diags: Vec<&Diagnostic> = t.diagnostics.iter().collect();
    push_diagnostics(sink, &diags, "errors");
    push_all(sink, &t.failures, failure_lines, |n, rest| {
        let names: Vec<&str> = rest.iter().take(8).map(|f| f.name.as_str()).collect();
        format!("+{n} more failing: {}", names.join(", "))
    });
    let mut summary: Vec<&String> = Vec::new();
    for s in &t.summary {
        if !summary.contains(&s) {
            summary.push(s);
        }
    }
    push_all(
        sink,
        &summary,
        |s| (*s).clone(),
        |n, _| format!("+{n} more summary lines"),
    );
    t.status
}

/// A failure as one entry: `FAIL name at file:line`, then its message lines indented.
fn failure_lines(f: &TestFailure) -> String {
    let at = f
        .location
        .as_ref()
        .map(|l| format!(" at {l}"))
        .unwrap_or_default();
    let mut s = format!("FAIL {}{at}", f.name);
    for m in &f.message {
        s.push_str("\n  ");
        s.push_str(m);
    }
    s
}

/// Errors and fatal lines first, each group (lines equal but for numbers) once with its count,
/// with the last frame and the exception line of its traceback; then warning groups.
fn render_log(l: &StructuredLog, total: usize, sink: &mut Sink) -> Status {
    let counts: Vec<String> = l
        .counts
        .iter()
        .map(|(lv, n)| format!("{lv:?} {n}"))
        .collect();
    sink.force(&format!(
        "{} log, {total} lines: {}",
        l.encoding,
        counts.join(", ")
    ));
    let errors: Vec<&LogEntry> = l
        .entries
        .iter()
        .filter(|e| e.level >= LogLevel::Error)
        .collect();
    let warnings: Vec<&LogEntry> = l
        .entries
        .iter()
        .filter(|e| e.level < LogLevel::Error)
        .collect();
    // Every error line is listed on its own while they are few; many are grouped by shape.
    push_log_groups(sink, &errors, "error", errors.len() > ERRORS_LISTED);
    push_log_groups(sink, &warnings, "warning", true);
    let stored_warn = warnings.len();
    let counted_warn = l
        .counts
        .iter()
        .find(|(lv, _)| *lv == LogLevel::Warn)
        .map_or(0, |c| c.1);
    if counted_warn > stored_warn {
        sink.force(&format!(
            "({} more warning lines counted, not listed)",
            counted_warn - stored_warn
        ));
    }
    let counted_err: usize = l
        .counts
        .iter()
        .filter(|(lv, _)| *lv >= LogLevel::Error)
        .map(|c| c.1)
        .sum();
    if counted_err > errors.len() {
        sink.force(&format!(
            "({} more error lines counted, not listed)",
            counted_err - errors.len()
        ));
    }
    if l.level >= LogLevel::Error {
        Status::Failed
    } else {
        Status::Unknown
    }
}

/// Log entries of one shape: the first, how many, the last line number.
struct LogGroup<'a> {
    first: &'a LogEntry,
    count: usize,
    last_line: usize,
}

/// Error lines listed one by one up to this many; past it, lines equal but for numbers are grouped.
const ERRORS_LISTED: usize = 30;

fn push_log_groups(sink: &mut Sink, entries: &[&LogEntry], what: &str, group: bool) {
    let mut index: HashMap<String, usize> = HashMap::default();
    let mut groups: Vec<LogGroup<'_>> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let key = if group {
            format!("{:?}{}", e.level, strip_digits(&e.message))
        } else {
            i.to_string()
        };
        match index.get(&key) {
            Some(&i) => {
                groups[i].count += 1;
                groups[i].last_line = e.line;
            }
            None => {
                index.insert(key, groups.len());
                groups.push(LogGroup {
                    first: e,
                    count: 1,
                    last_line: e.line,
                });
            }
        }
    }
    push_all(sink, &groups, log_group_lines, |n, rest| {
        let at = crate::budget::line_refs(rest.iter().map(|g| g.first.line));
        format!("+{n} more {what} groups at {at}")
    });
}

fn log_group_lines(g: &LogGroup<'_>) -> String {
    let e = g.first;
    let mut s = format!("L{} {}", e.line, e.message);
    if g.count > 1 {
        s.push_str(&format!("  [×{}, last at L{}]", g.count, g.last_line));
    }
    for c in traceback_summary(&e.continuation) {
        s.push_str("\n  ");
        s.push_str(c);
    }
    s
}

/// The lines of a traceback worth reading: all of a short one; of a long one its header, its
/// last frame in the user's code (`File "...", line N`), and its exception line.
fn traceback_summary(cont: &[String]) -> Vec<&str> {
    if cont.len() <= 4 {
        return cont.iter().map(String::as_str).collect();
    }
    let mut out = vec![cont[0].as_str()];
    let frames = cont
        .iter()
        .filter(|c| {
            let t = c.trim_start();
            t.starts_with("File \"") || t.starts_with("at ")
        })
        .collect::<Vec<_>>();
    if let Some(last) = frames.last() {
        out.push(last.as_str());
    }
    if let Some(exc) = cont.last()
        && !out.contains(&exc.as_str())
    {
        out.push(exc.as_str());
    }
    out
}

fn strip_digits(s: &str) -> String {
    s.chars().filter(|c| !c.is_ascii_digit()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Each group as the addresses of its first member and of its members, in order.
    fn shape(groups: &[Group<'_>]) -> Vec<(*const Diagnostic, Vec<*const Diagnostic>)> {
        groups
            .iter()
            .map(|g| {
                let members = g.members.iter().map(|d| *d as *const Diagnostic).collect();
                (g.first as *const Diagnostic, members)
            })
            .collect()
    }

    fn diagnostic(code: Option<&str>, message: &str) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            code: code.map(String::from),
            message: message.into(),
            location: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn grouping_in_halves_gives_the_groups_of_one_pass() {
        // The diagnostics of every build fixture and of the benchmark's shape, and lists whose
        // rules first appear in one half, in the other, in both, and in another order in each.
        let mut lists: Vec<Vec<Diagnostic>> = crate::compact::tests::fixtures()
            .into_iter()
            .chain([(
                "cargo build".to_string(),
                crate::compact::tests::cargo_output(3000),
            )])
            .filter_map(
                |(command, raw)| match crate::parse(Some(&command), &raw).output {
                    ParsedOutput::BuildOutput(b) => Some(b.diagnostics),
                    _ => None,
                },
            )
            .collect();
        let rules = [
            (None, "unused variable: `a`"),
            (Some("E0308"), "mismatched types"),
            (None, "unused import: `b`"),
            (Some("clippy::ptr_arg"), "writing `&Vec`"),
            (None, "unused variable: `c9`"),
        ];
        for n in [1, 2, 3, 7, 40] {
            for pattern in [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [0, 0, 1, 4, 2]] {
                // The first half uses the pattern's first rules, the second all of them.
                let list: Vec<Diagnostic> = (0..n)
                    .flat_map(|i| {
                        let upto = if i < n / 2 { 2 } else { 5 };
                        pattern[..upto]
                            .iter()
                            .map(move |&r| (r + i) % rules.len())
                            .collect::<Vec<_>>()
                    })
                    .map(|r| diagnostic(rules[r].0, rules[r].1))
                    .collect();
                lists.push(list);
            }
        }
        assert!(lists.iter().any(|l| l.len() > 1000));
        for list in &lists {
            let refs: Vec<&Diagnostic> = list.iter().collect();
            let once = shape(&group_by_rule_from(&refs, usize::MAX));
            for from in [0, 1, 2, 3, refs.len()] {
                let halves = shape(&group_by_rule_from(&refs, from));
                assert_eq!(halves, once, "{} diagnostics, from {from}", refs.len());
            }
        }
    }
}
