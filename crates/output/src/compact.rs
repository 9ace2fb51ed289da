//! The compact view: a short text an agent reads instead of the raw output.
//!
//! Rules every view follows:
//! - it fits its token budget (default [`DEFAULT_BUDGET`]) whatever the size of the input;
//! - the first line states the outcome, and never says success unless the parse says [`Status::Success`];
//! - errors, failures and final status lines come first; what the budget cuts is counted, with
//!   where it is (file:line or `L<n>`, a line of the output);
//! - a safety net re-reads the output and appends any notable line (an error word, a location in the
//!   user's code) that the parse does not account for, so a parser gap costs tokens, not facts;
//! - the last line says how many lines were left out and how to get the full output ([`Handle`]);
//! - a view never costs more tokens than the output: then the output is returned as-is, with no
//!   footer (`whole`);
//! - content an agent asked to read (`cat FILE`, `sed -n`, `head`, `git show COMMIT:FILE`, `jq`)
//!   is never condensed: it comes back whole up to a size, then as head and tail (see
//!   [`crate::content`]).

use foldhash::HashSet;

use serde::{Deserialize, Serialize};

use crate::budget::{DEFAULT_BUDGET, Sink, push_all};
use crate::generic;
use crate::parsed::{Diagnostic, Parsed, ParsedOutput, Status};
use crate::tokens::{Encoding, count_tokens, estimate_tokens};

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
    /// The log range holds exactly the output's lines, each ended by CR LF (no escapes, nothing
    /// cut), so a line's log offset can be computed and a `read` can return exactly a range
    /// of lines.
    #[serde(default)]
    pub exact_lines: bool,
}

impl Handle {
    /// A handle to bytes `since..until` of session `session`'s log.
    pub fn log(session: &str, since: u64, until: u64) -> Self {
        Self {
            session: Some(session.into()),
            since: Some(since),
            until: Some(until),
            command: None,
            exact_lines: false,
        }
    }

    /// The same handle, saying whether its log range holds exactly the output's lines.
    pub fn with_exact_lines(mut self, exact: bool) -> Self {
        self.exact_lines = exact;
        self
    }

    /// A handle given as a ready command or reference.
    pub fn command(command: &str) -> Self {
        Self {
            command: Some(command.into()),
            ..Self::default()
        }
    }

    pub(crate) fn describe(&self) -> String {
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

/// How a view is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewOptions {
    /// Most tokens the view may take, footer included (at least [`crate::budget::MIN_BUDGET`]).
    pub budget: usize,
    /// Vocabulary the budget and the counts are in.
    pub encoding: Encoding,
}

impl Default for ViewOptions {
    fn default() -> Self {
        Self {
            budget: DEFAULT_BUDGET,
            encoding: Encoding::default(),
        }
    }
}

impl ViewOptions {
    /// The default options with another budget (`None`: the default).
    pub fn with_budget(budget: Option<usize>) -> Self {
        Self {
            budget: budget.unwrap_or(DEFAULT_BUDGET),
            ..Self::default()
        }
    }
}

/// A compact view and its measurements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compact {
    /// The view, footer included; or the cleaned output itself when no view would be shorter
    /// (`whole`), without any footer.
    pub text: String,
    /// The outcome the view states.
    pub status: Status,
    /// Tokenizer used for the counts.
    pub encoding: Encoding,
    /// Tokens of the raw output.
    pub raw_tokens: usize,
    /// True when `raw_tokens` was scaled from samples of a large output (see
    /// [`crate::tokens::estimate_tokens`]) rather than counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub raw_tokens_estimated: bool,
    /// Tokens of `text`, exact.
    pub compact_tokens: usize,
    /// The budget the view was built under.
    pub budget: usize,
    /// True when `text` is the whole output as-is.
    #[serde(default)]
    pub whole: bool,
    /// Lines of the cleaned output.
    pub raw_lines: usize,
    /// Lines of the view before its footer.
    pub shown_lines: usize,
    /// `raw_lines - shown_lines`, at least 0: what the reader did not see line for line.
    pub omitted_lines: usize,
}

/// Builds the compact view with the default options (o200k_base, [`DEFAULT_BUDGET`] tokens).
pub fn compact(parsed: &Parsed, raw: &str, handle: &Handle) -> Compact {
    compact_with(parsed, raw, handle, &ViewOptions::default())
}

/// Builds the compact view of an output parsed earlier.
pub fn compact_with(parsed: &Parsed, raw: &str, handle: &Handle, opts: &ViewOptions) -> Compact {
    let cleaned = crate::text::clean(raw);
    let lines: Vec<&str> = cleaned.lines().collect();
    let notable = crate::generic::notable_lines(&cleaned, &lines);
    build(parsed, raw, &cleaned, &lines, &notable, handle, opts)
}

/// Fewer tokens than any footer takes (checked for both vocabularies by
/// `tests::no_footer_is_shorter_than_the_tiny_limit`).
const FOOTER_MIN_TOKENS: usize = 10;

/// The last line of a view that left lines out.
fn footer(shown: usize, total: usize, omitted: usize, handle: &Handle) -> String {
    format!(
        "[{shown} of {total} lines shown, {omitted} left out; all of it: {}]\n",
        handle.describe()
    )
}

/// Parses an output and builds its view in one pass over the text: it is cleaned, split into
/// lines and scanned for notable lines once.
pub fn analyze(
    command: Option<&str>,
    raw: &str,
    handle: &Handle,
    opts: &ViewOptions,
) -> (Parsed, Compact) {
    let cleaned = crate::text::clean(raw);
    let lines: Vec<&str> = cleaned.lines().collect();
    let format = crate::detect::detect(command, &cleaned);
    // The scan for notable lines feeds the view of unrecognised text and the safety net of
    // parsed outputs that have one; a log's or a listing's view never reads it.
    let scan = || crate::generic::notable_lines(&cleaned, &lines);
    let notable = if format == crate::Format::Text {
        scan()
    } else {
        Vec::new()
    };
    let parsed = crate::parse_detected(format, command, raw.len(), &cleaned, &lines, &notable);
    let view = if command.is_some_and(crate::content::is_content_read) {
        crate::content::view(Status::Unknown, &cleaned, &lines, handle, opts)
    } else {
        let notable = if format != crate::Format::Text && needs_safety_net(&parsed.output) {
            scan()
        } else {
            notable
        };
        build(&parsed, raw, &cleaned, &lines, &notable, handle, opts)
    };
    (parsed, view)
}

fn build(
    parsed: &Parsed,
    raw: &str,
    cleaned: &str,
    lines: &[&str],
    notable: &[bool],
    handle: &Handle,
    opts: &ViewOptions,
) -> Compact {
    let enc = opts.encoding;
    let mut sink = Sink::new(opts.budget, enc);
    let status = crate::render::render(parsed, lines, notable, &mut sink);
    if needs_safety_net(&parsed.output) {
        safety_net(parsed, lines, notable, &mut sink);
    }
    let shown_lines = sink.lines().min(lines.len());
    let mut text = sink.into_text();
    let whole_len = cleaned.trim_end().len() + 1;
    // Each text is counted once: the cleaned output (exactly, or from samples when large), the
    // raw output only when escapes made it differ, and the finished view.
    let cleaned_count = estimate_tokens(cleaned, enc);
    let raw_count = if raw.len() == cleaned.len() {
        cleaned_count
    } else {
        estimate_tokens(raw, enc)
    };
    // An output of fewer tokens than the shortest footer cannot be shortened by a view: it is
    // shown whole without writing and counting a footer to find that out (most execs).
    let tiny = !cleaned_count.estimated && cleaned_count.tokens < FOOTER_MIN_TOKENS;
    let mut whole = tiny || text.len() >= whole_len;
    let mut compact_tokens = 0;
    if !whole {
        let omitted = lines.len().saturating_sub(shown_lines);
        text.push_str(&footer(shown_lines, lines.len(), omitted, handle));
        compact_tokens = count_tokens(&text, enc);
        // A view that is not shorter than the output itself is no help.
        whole = !cleaned_count.estimated && compact_tokens >= cleaned_count.tokens;
    }
    if whole {
        text = cleaned.trim_end().to_string();
        text.push('\n');
        compact_tokens = if cleaned_count.estimated {
            count_tokens(&text, enc)
        } else {
            cleaned_count.tokens
        };
    }
    let shown_lines = if whole { lines.len() } else { shown_lines };
    Compact {
        raw_tokens: raw_count.tokens,
        raw_tokens_estimated: raw_count.estimated,
        compact_tokens,
        budget: opts.budget,
        whole,
        text,
        status,
        encoding: enc,
        raw_lines: lines.len(),
        shown_lines,
        omitted_lines: lines.len() - shown_lines,
    }
}

fn needs_safety_net(output: &ParsedOutput) -> bool {
    match output {
        ParsedOutput::BuildOutput(_)
        | ParsedOutput::TestResults(_)
        | ParsedOutput::GitOutput(_) => true,
        ParsedOutput::Custom(c) => c.kind == "package",
        _ => false,
    }
}

/// Most lines the safety net adds; past that it counts them.
const NET_LIMIT: usize = 200;

/// Appends notable raw lines the parse does not account for, so a parser gap costs tokens, not
/// facts. Linear: a line is covered when its location or its text is one the parse holds; only
/// the first [`NET_LIMIT`] uncovered lines are also looked for in the view itself.
fn safety_net(parsed: &Parsed, lines: &[&str], notable: &[bool], sink: &mut Sink) {
    let cover = Coverage::of(&parsed.output);
    let mut seen: HashSet<&str> = HashSet::default();
    let mut missing: Vec<(usize, &str)> = Vec::new();
    let mut extra = 0usize;
    for (i, line) in lines.iter().enumerate() {
        if !notable.get(i).copied().unwrap_or(false) {
            continue;
        }
        let t = line.trim();
        if t.is_empty() || cover.holds(t) || !seen.insert(t) {
            continue;
        }
        if missing.len() >= NET_LIMIT {
            extra += 1;
        } else if !sink
            .text()
            .contains(crate::text::prefix_at_boundary(t, 200))
        {
            missing.push((i, t));
        }
    }
    if missing.is_empty() {
        return;
    }
    sink.force("also in output:");
    push_all(
        sink,
        &missing,
        |(_, t)| crate::text::shorten(t, 500).into_owned(),
        |n, rest| {
            let at: Vec<String> = rest
                .iter()
                .take(10)
                .map(|(i, _)| format!("L{}", i + 1))
                .collect();
            format!("+{} more notable lines at {}", n + extra, at.join(", "))
        },
    );
    if extra > 0 && !sink.was_cut() {
        sink.force(&format!("+{extra} more notable lines"));
    }
}

/// What a parse accounts for: the locations and the texts it holds, borrowed from it.
struct Coverage<'a> {
    /// `(file, line)`, the file without a leading `./`.
    locations: HashSet<(&'a str, Option<u32>)>,
    texts: HashSet<&'a str>,
    /// Names of failing tests: a line naming one is about that failure.
    names: HashSet<&'a str>,
}

impl<'a> Coverage<'a> {
    fn of(output: &'a ParsedOutput) -> Self {
        let mut c = Self {
            locations: HashSet::default(),
            texts: HashSet::default(),
            names: HashSet::default(),
        };
        match output {
            ParsedOutput::BuildOutput(b) => {
                c.diagnostics(&b.diagnostics);
                c.texts
                    .extend(b.summary.iter().chain(&b.artifacts).map(String::as_str));
            }
            ParsedOutput::TestResults(t) => {
                c.diagnostics(&t.diagnostics);
                for f in &t.failures {
                    if let Some(l) = &f.location {
                        c.location(l);
                    }
                    c.texts.insert(&f.name);
                    c.names.insert(&f.name);
                    for m in &f.message {
                        if let Some((file, number)) = generic::find_user_location(m) {
                            c.locations
                                .insert((file.trim_start_matches("./"), line_number(number)));
                        }
                        c.texts.insert(m);
                    }
                }
                c.texts.extend(t.summary.iter().map(String::as_str));
            }
            ParsedOutput::GitOutput(g) => {
                c.texts.extend(g.messages.iter().map(|m| m.trim()));
                c.texts.extend(g.branch.iter().map(String::as_str));
            }
            _ => {}
        }
        c
    }

    fn diagnostics(&mut self, list: &'a [Diagnostic]) {
        for d in list {
            if let Some(l) = &d.location {
                self.location(l);
            }
            self.texts.insert(&d.message);
        }
    }

    fn location(&mut self, l: &'a crate::parsed::Location) {
        let file = l.file.trim_start_matches("./");
        self.locations.insert((file, l.line));
        // A file kept with its line in it (`a.rs:3`, when the tool's line did not parse) is
        // also that file at that line.
        if l.line.is_none()
            && let Some((f, n)) = file.rsplit_once(':')
            && let Some(n) = line_number(n)
        {
            self.locations.insert((f, Some(n)));
        }
    }

    fn holds(&self, line: &str) -> bool {
        if boilerplate(line) {
            return true;
        }
        let rule = |c: char| c == '=' || c == '_' || c == '-';
        if line.starts_with(rule) && line.ends_with(rule) {
            // `==== 3 failed, 25 passed in 0.16s ====`: the summary the parse holds.
            let inner = line.trim_matches(|c: char| rule(c) || c == ' ');
            return self
                .texts
                .iter()
                .any(|t| !t.is_empty() && inner.starts_with(*t));
        }
        if !self.names.is_empty()
            && line
                .split_whitespace()
                .any(|w| self.names.contains(&w.trim_end_matches([':', ','])))
        {
            return true;
        }
        if let Some((file, number)) = generic::find_user_location(line) {
            return line_number(number).is_some_and(|n| {
                self.locations
                    .contains(&(file.trim_start_matches("./"), Some(n)))
            });
        }
        if self.texts.contains(line) {
            return true;
        }
        // `error[E0425]: cannot find value` is the diagnostic `cannot find value`.
        line.split_once(": ")
            .is_some_and(|(head, rest)| head.len() < 40 && self.texts.contains(rest.trim()))
    }
}

/// A line number as a location prints it (`12`, not `012` nor past `u32`).
fn line_number(digits: &str) -> Option<u32> {
    let n: u32 = digits.parse().ok()?;
    (digits.len() == 1 || !digits.starts_with('0')).then_some(n)
}

/// Lines that frame what a parse already holds: section rules (`=== FAILURES ===`,
/// `---- t stdout ----`, `failures:`), rustc's notes, source snippets and closing advice,
/// backtrace frames.
fn boilerplate(t: &str) -> bool {
    let rule = |c: char| c == '=' || c == '_' || c == '-';
    if t.starts_with(rule) && t.ends_with(rule) {
        return t
            .trim_matches(|c: char| rule(c) || c == ' ')
            .split_whitespace()
            .count()
            <= 3;
    }
    if t.ends_with(':') && !t.contains(' ') {
        return true;
    }
    let snippet = t.starts_with('|')
        || t.split_once(" |")
            .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let frame = t
        .split_once(": ")
        .is_some_and(|(n, rest)| n.bytes().all(|b| b.is_ascii_digit()) && rest.contains("::"));
    snippet
        || frame
        || t.starts_with("= note: ")
        || t.starts_with("= help: ")
        || t.starts_with("Some errors have detailed explanations")
        || t.starts_with("For more information about ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_footer_is_shorter_than_the_tiny_limit() {
        // The shortest values and handles a footer can hold.
        let handles = [
            Handle::command(""),
            Handle::default(),
            Handle::log("0", 0, 0),
        ];
        for enc in [Encoding::O200kBase, Encoding::Cl100kBase] {
            for h in &handles {
                let text = footer(0, 0, 0, h);
                let n = count_tokens(&text, enc);
                assert!(n >= FOOTER_MIN_TOKENS, "{text:?}: {n} tokens in {enc:?}");
            }
        }
    }

    #[test]
    fn tiny_outputs_are_whole_as_before() {
        // Outputs below the limit and just above it: the view is the output itself.
        for out in [
            "",
            "hi\n",
            "a b c d e f g h i\n",
            "one two three four five six seven\n",
        ] {
            let (_, view) = crate::analyze(
                Some("echo"),
                out,
                &Handle::log("s", 0, out.len() as u64),
                &ViewOptions::default(),
            );
            assert!(view.whole, "{out:?}");
            assert_eq!(view.text.trim_end(), out.trim_end());
            assert_eq!(view.compact_tokens, count_tokens(out, Encoding::default()));
            assert_eq!(view.raw_tokens, view.compact_tokens);
        }
    }
}
