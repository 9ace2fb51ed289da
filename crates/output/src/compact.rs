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

use serde::{Deserialize, Serialize};

use crate::budget::{DEFAULT_BUDGET, Sink};
use crate::detect::Format;
use crate::net::{self, Mark};
use crate::parsed::{Parsed, ParsedOutput, Status};
use crate::tokens::{EXACT_LIMIT, Encoding, TokenCount, count_tokens, estimate_tokens};

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
    /// The text analyzed is the output's head and tail, with the lines between them that name
    /// a problem (an exec's answer past its `max_output_bytes`): its counts are of those.
    #[serde(default)]
    pub cut: bool,
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
            cut: false,
        }
    }

    /// The same handle, saying whether its log range holds exactly the output's lines.
    pub fn with_exact_lines(mut self, exact: bool) -> Self {
        self.exact_lines = exact;
        self
    }

    /// The same handle, saying whether the text analyzed was cut (see [`Handle::cut`]).
    pub fn with_cut(mut self, cut: bool) -> Self {
        self.cut = cut;
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
        let what = self.describe_whole();
        if self.cut {
            format!(
                "{what}; what was read here is its head, its tail and the lines between that name a problem"
            )
        } else {
            what
        }
    }

    fn describe_whole(&self) -> String {
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
    let lines = crate::text::lines(&cleaned);
    let notable = crate::generic::notable_lines(&cleaned, &lines);
    let scanned = needs_safety_net(&parsed.output).then(|| net::scan(&cleaned, &lines));
    build(
        parsed,
        raw,
        &cleaned,
        &lines,
        &notable,
        scanned,
        handle,
        opts,
        false,
        Counts::All,
    )
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
/// lines and scanned for notable lines once. Large outputs use a second thread: cargo output is
/// parsed and scanned in two halves, one a thread; other outputs' safety-net scan runs beside
/// their parse; the scan's check against the parse runs beside the render.
pub fn analyze(
    command: Option<&str>,
    raw: &str,
    handle: &Handle,
    opts: &ViewOptions,
) -> (Parsed, Compact) {
    analyze_split(command, raw, handle, opts, PARALLEL_FROM, Counts::All)
}

/// The text of [`analyze`]'s view alone, for a caller that prints the view and nothing else
/// (`ai-session parse` without `--json`): the same text, byte for byte. The token counts a
/// [`Compact`] carries are made only where the text depends on them, so the view of an output
/// larger than [`crate::tokens::EXACT_LIMIT`] whose lines fit the budget by their bytes alone
/// (see [`Sink`]) is written without loading a vocabulary. The parse the view was made from is
/// handed back beside the text: a caller that exits right after printing the text may leave it
/// for the exit to free (a large build's parse holds a few allocations for each of its
/// diagnostics, tens of thousands of them).
pub fn analyze_view(
    command: Option<&str>,
    raw: &str,
    handle: &Handle,
    opts: &ViewOptions,
) -> (Parsed, String) {
    let (parsed, view) = analyze_split(command, raw, handle, opts, PARALLEL_FROM, Counts::TextOnly);
    (parsed, view.text)
}

/// Which token counts [`build`] makes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Counts {
    /// Every count a [`Compact`] carries.
    All,
    /// Those the text depends on; the others are left at 0 (the [`Compact`] is not returned).
    TextOnly,
}

/// Cleaned outputs from this size on are analyzed on two threads (see [`analyze`]); below it a
/// thread costs more than it saves.
const PARALLEL_FROM: usize = 1 << 20;

/// [`analyze`], on two threads when the cleaned output has at least `parallel_from` bytes. The
/// result does not depend on it: the two threads compute what one would, in the same order.
fn analyze_split(
    command: Option<&str>,
    raw: &str,
    handle: &Handle,
    opts: &ViewOptions,
    parallel_from: usize,
    counts: Counts,
) -> (Parsed, Compact) {
    let cleaned = crate::text::clean(raw);
    let split = cleaned.len() >= parallel_from;
    // A content read detects its format on its view's first thread.
    if command.is_some_and(crate::content::is_content_read) {
        let lines = crate::text::lines(&cleaned);
        let text = Text {
            raw_len: raw.len(),
            cleaned: &cleaned,
            lines: &lines,
        };
        return analyze_content(command, text, handle, opts, split);
    }
    let format = crate::detect::detect(command, &cleaned);
    let net = has_safety_net(format);
    // Large cargo output is cut into lines, parsed and scanned in two halves, one a thread.
    if let Some(at) = split_cargo(split, format, &cleaned) {
        let (parsed, scanned, lines) = parse_cargo_in_halves(raw.len(), &cleaned, at, net);
        let view = build(
            &parsed,
            raw,
            &cleaned,
            &lines,
            &[],
            scanned,
            handle,
            opts,
            split,
            counts,
        );
        return (parsed, view);
    }
    let lines = crate::text::lines(&cleaned);
    // The scan for notable lines feeds the view of unrecognised text; the safety net of parsed
    // outputs that have one reads its own scan; a log's or a listing's view reads neither.
    let notable = if format == Format::Text {
        crate::generic::notable_lines(&cleaned, &lines)
    } else {
        Vec::new()
    };
    let (parsed, scanned) = both(
        split,
        || crate::parse_detected(format, command, raw.len(), &cleaned, &lines, &notable),
        || net.then(|| net::scan(&cleaned, &lines)),
    );
    let view = build(
        &parsed, raw, &cleaned, &lines, &notable, scanned, handle, opts, split, counts,
    );
    (parsed, view)
}

/// An output's text as the analysis reads it.
#[derive(Clone, Copy)]
struct Text<'a> {
    /// Bytes of the raw output.
    raw_len: usize,
    cleaned: &'a str,
    lines: &'a [&'a str],
}

/// Content an agent asked to read (see [`crate::content`]): its view reads the text alone, not
/// the parse, so when `split` the parse (with the notable-line scan of unrecognised text, which
/// only the parse's counts read) and half of the view's token counting run on a second thread
/// beside the rest of the view. The format (which only the parse reads) is detected on the
/// first thread while the second counts its half of the samples, so that neither thread waits
/// for the detection's regexes before it starts.
fn analyze_content(
    command: Option<&str>,
    text: Text<'_>,
    handle: &Handle,
    opts: &ViewOptions,
    split: bool,
) -> (Parsed, Compact) {
    let detect = || crate::detect::detect(command, text.cleaned);
    let parse = |format: Format| {
        let notable = if format == Format::Text {
            crate::generic::notable_lines(text.cleaned, text.lines)
        } else {
            Vec::new()
        };
        crate::parse_detected(
            format,
            command,
            text.raw_len,
            text.cleaned,
            text.lines,
            &notable,
        )
    };
    // The view's token counting is most of the work (base64 is the tokenizer's slowest
    // text): half of it runs beside the parse.
    let halves = crate::content::Halves {
        status: Status::Unknown,
        cleaned: text.cleaned,
        lines: text.lines,
        handle,
        opts,
    };
    // The format goes from the first part to the second; should the first part fail before
    // sending it, the second detects it itself.
    let (detected, format) = std::sync::mpsc::sync_channel::<Format>(1);
    let halves = &halves;
    let (first, rest) = both(
        split,
        move || {
            let format = detect();
            detected.send(format).ok();
            halves.first(format != Format::Text)
        },
        move || {
            let second = halves.second();
            let format = format.recv().unwrap_or_else(|_| detect());
            Some((parse(format), second))
        },
    );
    let (parsed, second) = rest.unwrap_or_else(|| (parse(detect()), halves.second()));
    (parsed, halves.join(first, second))
}

/// Where cargo output to be analyzed on two threads is cut in halves: the byte offset of a
/// line near its middle (see [`crate::build::cargo_split_byte`]); `None` for one thread and
/// for other formats.
fn split_cargo(split: bool, format: Format, cleaned: &str) -> Option<usize> {
    (split && format == Format::CargoBuild)
        .then(|| crate::build::cargo_split_byte(cleaned))
        .flatten()
}

/// Cargo output cut into lines, parsed and scanned for the safety net (when `net`) on two
/// threads, each taking the text on one side of `at`, a line's first byte; the halves'
/// results, and their lines, are joined in order.
fn parse_cargo_in_halves<'t>(
    bytes: usize,
    cleaned: &'t str,
    at: usize,
    net: bool,
) -> (Parsed, Option<Vec<Mark>>, Vec<&'t str>) {
    let words = crate::generic::ProblemWords::for_text(cleaned);
    // Each half clears the marks of the lines its own parse holds (most of them: a warning's
    // location line is held by that warning), so the check against the whole parse, after
    // the join, has few lines or none left to look up.
    let half = |text: &'t str| {
        let part = crate::text::lines(text);
        let parsed = crate::build::CargoPart::of(&part);
        let marks = net.then(|| {
            let mut marks = net::scan_part(&words, &part);
            parsed.coverage().clear_covered(&part, &mut marks);
            marks
        });
        (part, parsed, marks)
    };
    let (head, rest) = cleaned.split_at(at);
    let ((mut lines, p1, s1), second) = both(true, || half(head), || Some(half(rest)));
    let (l2, p2, s2) = second.unwrap_or_else(|| half(rest));
    // `head` ends with a line's end: the lines of the halves are the lines of the whole.
    lines.reserve_exact(l2.len());
    lines.extend(l2);
    let scanned = s1.zip(s2).map(|(mut a, b)| {
        a.extend(b);
        a
    });
    let parsed = Parsed {
        format: Format::CargoBuild,
        lines: lines.len(),
        bytes,
        output: ParsedOutput::BuildOutput(p1.then(p2).finish()),
    };
    (parsed, scanned, lines)
}

/// Runs `first` here and `second` on a scoped thread when `split`, else one after the other
/// here (also when no thread can be started). Either way the results are the same.
fn both<A, B: Send>(
    split: bool,
    first: impl FnOnce() -> A,
    second: impl FnOnce() -> Option<B> + Send,
) -> (A, Option<B>) {
    if !split {
        let a = first();
        return (a, second());
    }
    let second = std::sync::Mutex::new(Some(second));
    // Takes the task out, so it runs once: on the thread, or here when no thread could start.
    let take = || {
        second
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    };
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new()
            .spawn_scoped(s, || take().and_then(|f| f()))
            .ok();
        let a = first();
        let b = match thread {
            Some(t) => t
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => take().and_then(|f| f()),
        };
        (a, b)
    })
}

#[allow(clippy::too_many_arguments)]
fn build(
    parsed: &Parsed,
    raw: &str,
    cleaned: &str,
    lines: &[&str],
    notable: &[bool],
    scanned: Option<Vec<Mark>>,
    handle: &Handle,
    opts: &ViewOptions,
    split: bool,
    counts: Counts,
) -> Compact {
    let enc = opts.encoding;
    let mut sink = Sink::new(opts.budget, enc);
    // The safety net's lines are checked against the parse while the view is written.
    let (status, uncovered) = both(
        split,
        || crate::render::render(parsed, lines, notable, &mut sink),
        || {
            scanned.map(|s| {
                if s.iter().all(|m| *m == Mark::No) {
                    Vec::new()
                } else {
                    net::Coverage::of(&parsed.output).uncovered(lines, &s)
                }
            })
        },
    );
    if let Some(uncovered) = uncovered {
        net::report(&uncovered, &mut sink);
    }
    let shown_lines = sink.lines().min(lines.len());
    let mut text = sink.into_text();
    let whole_len = cleaned.trim_end().len() + 1;
    // Each text is counted once: the cleaned output (exactly, or from samples when large), the
    // raw output only when escapes made it differ, and the finished view. The text reads only
    // exact counts (an estimate decides nothing): for the text alone, a large output's
    // estimates and the view's count are not made.
    let text_only = counts == Counts::TextOnly;
    let cleaned_count = if text_only && cleaned.len() > EXACT_LIMIT {
        TokenCount {
            tokens: 0,
            estimated: true,
        }
    } else {
        estimate_tokens(cleaned, enc)
    };
    let raw_count = if raw.len() == cleaned.len() {
        cleaned_count
    } else if text_only {
        TokenCount {
            tokens: 0,
            estimated: true,
        }
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
        if !(text_only && cleaned_count.estimated) {
            compact_tokens = count_tokens(&text, enc);
        }
        // A view that is not shorter than the output itself is no help.
        whole = !cleaned_count.estimated && compact_tokens >= cleaned_count.tokens;
    }
    if whole {
        text = cleaned.trim_end().to_string();
        text.push('\n');
        compact_tokens = if cleaned_count.estimated {
            if text_only {
                0
            } else {
                count_tokens(&text, enc)
            }
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

/// True for the outputs whose view has a safety net.
fn needs_safety_net(output: &ParsedOutput) -> bool {
    match output {
        ParsedOutput::BuildOutput(_)
        | ParsedOutput::TestResults(_)
        | ParsedOutput::GitOutput(_) => true,
        ParsedOutput::Custom(c) => c.kind == "package",
        _ => false,
    }
}

/// [`needs_safety_net`] of what the parser of `format` returns, known before it runs (the
/// tests check the two agree for every format).
fn has_safety_net(format: Format) -> bool {
    use Format as F;
    match format {
        F::CargoBuild | F::Tsc | F::Ruff | F::Eslint | F::GoBuild | F::Gcc | F::JsBundler => true,
        F::ScriptRun => true,
        F::CargoTest | F::Nextest | F::Pytest | F::Jest | F::Vitest | F::GoTest | F::Mocha => true,
        F::GitStatus
        | F::GitLog
        | F::GitDiff
        | F::GitShow
        | F::GitRemote
        | F::GitMerge
        | F::GitBranch
        | F::SvnStatus => true,
        F::NpmInstall | F::YarnInstall | F::PnpmInstall | F::PipInstall | F::CargoPackage => true,
        F::Ps | F::Ss | F::Netstat | F::Df | F::Du | F::LsLong | F::Free => false,
        F::Log | F::JsonLog | F::Text => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
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

    /// The recorded fixtures: (command, output).
    pub(crate) fn fixtures() -> Vec<(String, String)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let meta: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let raw = std::fs::read(path.with_extension("txt")).unwrap();
                let command = meta["command"].as_str().unwrap().to_string();
                out.push((command, String::from_utf8_lossy(&raw).into_owned()));
            }
        }
        out.sort();
        out
    }

    /// Cargo output in the benchmark's shape: `n` warnings, then two errors.
    pub(crate) fn cargo_output(n: usize) -> String {
        let mut s = String::from("   Compiling shop v0.1.0 (/work/shop)\n");
        for k in 0..n {
            let line = 10 + k % 900;
            s.push_str(&format!(
                "warning: unused variable: `item_{k}`\n  --> src/module_{m}.rs:{line}:13\n   |\n\
                 {line} |         let item_{k} = load(id);\n   |             ^^^^^^^^ help: prefix \
                 it with an underscore: `_item_{k}`\n   |\n   = note: `#[warn(unused_variables)]` on \
                 by default\n\n",
                m = k % 40
            ));
            if k % 97 == 0 {
                s.push_str("  --> src/stray.rs:7:1 not a diagnostic's, failed here\n");
            }
        }
        s.push_str(
            "error[E0425]: cannot find value `rate` in this scope\n  --> src/tax.rs:14:9\n   |\n\
             14 |         rate * amount\n   |         ^^^^ not found in this scope\n\n\
             error: could not compile `shop` (lib) due to 1 previous error\n",
        );
        s
    }

    /// The analysis on one thread and on two.
    fn one_and_two_threads(command: Option<&str>, raw: &str) -> [(Parsed, Compact); 2] {
        let handle = Handle::log("s", 0, raw.len() as u64);
        let opts = ViewOptions::default();
        [
            analyze_split(command, raw, &handle, &opts, usize::MAX, Counts::All),
            analyze_split(command, raw, &handle, &opts, 0, Counts::All),
        ]
    }

    #[test]
    fn two_threads_give_what_one_gives() {
        for (command, raw) in fixtures() {
            for command in [Some(command.as_str()), None] {
                let [one, two] = one_and_two_threads(command, &raw);
                assert_eq!(one, two, "{command:?}");
            }
        }
        // The benchmark's shape, cut at awkward places: inside a diagnostic, a line, a snippet.
        let raw = cargo_output(400);
        for cut in [
            0,
            1,
            37,
            38,
            90,
            1000,
            raw.len() / 2,
            raw.len() / 2 + 13,
            raw.len() - 5,
        ] {
            let cut = crate::text::prefix_at_boundary(&raw, cut);
            for text in [cut, &raw[cut.len()..]] {
                let [one, two] = one_and_two_threads(Some("cargo build"), text);
                assert_eq!(one, two, "cut at {}", cut.len());
            }
        }
        let [one, two] = one_and_two_threads(Some("cargo build"), &raw);
        assert_eq!(one, two);
        // The stray location lines are not the parse's: the safety net reports them.
        assert!(two.1.text.contains("src/stray.rs:7:1"), "{}", two.1.text);
    }

    #[test]
    fn the_text_alone_is_the_views_text() {
        // Every fixture, with its command and without; cargo output and a log past the exact
        // count's limit (counts skipped), one of whose views fills its budget (lines counted);
        // a content read; small budgets.
        let mut cases: Vec<(Option<String>, String)> = Vec::new();
        for (command, raw) in fixtures() {
            cases.push((Some(command), raw.clone()));
            cases.push((None, raw));
        }
        let cargo = cargo_output(6000);
        assert!(cargo.len() > EXACT_LIMIT);
        cases.push((Some("cargo build".into()), cargo.clone()));
        cases.push((Some("cat build.log".into()), cargo));
        let log: String = (0..40_000)
            .map(|i| {
                let level = if i % 50 == 0 { "ERROR" } else { "INFO" };
                // Each ERROR line its own words (lines equal but for numbers are grouped).
                let name: String = (i / 50)
                    .to_string()
                    .bytes()
                    .map(|d| char::from(d - b'0' + b'a'))
                    .collect();
                format!(
                    "2026-12-01 10:00:{:02} {level} [w{}] job {name} failed or not\n",
                    i % 60,
                    i % 7
                )
            })
            .collect();
        assert!(log.len() > EXACT_LIMIT);
        cases.push((None, log));
        for (command, raw) in &cases {
            for budget in [None, Some(250)] {
                let opts = ViewOptions::with_budget(budget);
                let handle = Handle::log("s", 0, raw.len() as u64);
                let (_, view) = analyze(command.as_deref(), raw, &handle, &opts);
                let (_, text) = analyze_view(command.as_deref(), raw, &handle, &opts);
                assert_eq!(text, view.text, "{command:?} {budget:?}");
            }
        }
    }

    #[test]
    fn marks_cleared_by_a_part_leave_what_the_whole_keeps() {
        // Cargo output cut at every diagnostic, each half's marks cleared by the half's own
        // coverage: the whole parse's check keeps the same lines as from the marks uncleared.
        let mut texts: Vec<String> = fixtures()
            .into_iter()
            .filter(|(command, _)| command.starts_with("cargo"))
            .map(|(_, raw)| crate::text::clean(&raw).into_owned())
            .collect();
        texts.push(cargo_output(40));
        texts.push(
            "warning: a\n  --> a.rs:1:1\nerror: b\n  --> b.rs:2:2\n  --> a.rs:1:1 again, failed\n\
             error: b\nwarning: a\n  --> b.rs:2:2 failed\n  --> c.rs:3:3 failed\n"
                .into(),
        );
        for text in &texts {
            let lines: Vec<&str> = text.lines().collect();
            let words = crate::generic::ProblemWords::for_text(text);
            let whole = crate::build::parse_cargo(&lines);
            let output = ParsedOutput::BuildOutput(whole);
            let coverage = net::Coverage::of(&output);
            let marks = net::scan_part(&words, &lines);
            let expected = coverage.uncovered(&lines, &marks);
            for at in (1..lines.len()).filter(|&k| crate::build::rustc_head(lines[k]).is_some()) {
                let mut cleared = Vec::new();
                for part in [&lines[..at], &lines[at..]] {
                    let mut m = net::scan_part(&words, part);
                    crate::build::CargoPart::of(part)
                        .coverage()
                        .clear_covered(part, &mut m);
                    cleared.extend(m);
                }
                assert_eq!(
                    coverage.uncovered(&lines, &cleared),
                    expected,
                    "cut at line {at} of {text:.200}"
                );
            }
        }
    }

    #[test]
    fn content_reads_give_on_two_threads_what_one_gives() {
        // Every fixture read back with `cat` (its parse is the fixture's format, its view the
        // content view), and a long text of the shape a `cat` of base64 prints.
        let mut texts: Vec<String> = fixtures().into_iter().map(|(_, raw)| raw).collect();
        texts.push(cargo_output(300));
        texts.push(
            (0..4000)
                .map(|i| format!("{:076x}\n", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)))
                .collect(),
        );
        for raw in &texts {
            for command in ["cat notes.txt", "sed -n 1,100000p build.log"] {
                let [one, two] = one_and_two_threads(Some(command), raw);
                assert_eq!(one, two, "{command}");
                let plain = crate::parse(Some(command), raw);
                assert_eq!(one.0, plain, "{command}");
            }
        }
    }

    #[test]
    fn the_safety_net_is_known_from_the_format() {
        use Format as F;
        let all = [
            F::CargoBuild,
            F::CargoTest,
            F::Nextest,
            F::Tsc,
            F::Ruff,
            F::Eslint,
            F::GoBuild,
            F::Gcc,
            F::JsBundler,
            F::Pytest,
            F::Jest,
            F::Vitest,
            F::GoTest,
            F::Mocha,
            F::GitStatus,
            F::GitLog,
            F::GitDiff,
            F::GitShow,
            F::GitRemote,
            F::GitMerge,
            F::GitBranch,
            F::SvnStatus,
            F::NpmInstall,
            F::YarnInstall,
            F::PnpmInstall,
            F::ScriptRun,
            F::CargoPackage,
            F::PipInstall,
            F::Ps,
            F::Ss,
            F::Netstat,
            F::Df,
            F::Du,
            F::LsLong,
            F::Free,
            F::Log,
            F::JsonLog,
            F::Text,
        ];
        for f in all {
            for command in [None, Some("npm run build"), Some("cargo build")] {
                let parsed = crate::parse_detected(f, command, 0, "", &[], &[]);
                assert_eq!(has_safety_net(f), needs_safety_net(&parsed.output), "{f:?}");
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
