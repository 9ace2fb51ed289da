//! Compiler and bundler output: rustc/cargo, tsc, go build, gcc/clang with make, webpack/vite.
//!
//! Each parser turns diagnostics into [`Diagnostic`]s (code, message, file:line:col, the labels under the
//! message) and keeps the tool's summary lines verbatim. Source snippets are dropped: the location
//! points back to them.

use std::sync::LazyLock;

use regex::Regex;

use crate::parsed::{BuildOutput, Diagnostic, Location, Severity, Status};

static CARGO_SUMMARY: LazyLock<Regex> = lazy_re!(
    r"^(error|warning): (could not compile|aborting due to|build failed|`[^`]+` \(.*\) generated \d+|\d+ warnings? emitted)",
);
static CARGO_PROGRESS: LazyLock<Regex> = lazy_re!(
    r"^\s+(Compiling|Checking|Downloaded|Downloading|Updating|Locking|Adding|Blocking|Fresh|Documenting|Running)\s"
);
/// The shape [`is_cargo_finished`] reads by hand; the tests check the two agree.
#[cfg(test)]
static CARGO_FINISHED: LazyLock<Regex> = lazy_re!(r"^\s+Finished ");

/// Parses rustc diagnostics out of cargo build/check/clippy output.
pub fn parse_cargo(lines: &[&str]) -> BuildOutput {
    CargoPart::of(lines).finish()
}

/// What [`parse_cargo`] reads from a run of lines that starts at a diagnostic's first line (see
/// [`cargo_split_byte`]), or at the first line: the parts of consecutive runs, joined in order,
/// are the parts of the whole.
#[derive(Debug)]
pub(crate) struct CargoPart {
    diagnostics: Vec<Diagnostic>,
    summary: Vec<String>,
    artifacts: Vec<String>,
}

impl CargoPart {
    pub(crate) fn of(lines: &[&str]) -> Self {
        let diagnostics = rustc_diagnostics(lines);
        let mut summary = Vec::new();
        let mut artifacts = Vec::new();
        for line in lines {
            // Cheap first-byte tests keep the regexes off the bulk of the lines.
            if is_cargo_summary(line) {
                summary.push(line.trim().to_string());
            } else if is_cargo_finished(line) {
                // `Finished` is kept verbatim: it is the word that says the build succeeded.
                artifacts.push(line.trim().to_string());
            }
        }
        Self {
            diagnostics,
            summary,
            artifacts,
        }
    }

    /// What this part accounts for, for the safety net (see [`crate::net::Coverage::clear_covered`]).
    pub(crate) fn coverage(&self) -> crate::net::Coverage<'_> {
        crate::net::Coverage::of_build(&self.diagnostics, &self.summary, &self.artifacts)
    }

    /// This part followed by `next`, the part of the lines after this one's.
    pub(crate) fn then(mut self, next: Self) -> Self {
        // To the size of both: not doubled, hundreds of megabytes on the largest outputs.
        self.diagnostics.reserve_exact(next.diagnostics.len());
        self.diagnostics.extend(next.diagnostics);
        self.summary.extend(next.summary);
        self.artifacts.extend(next.artifacts);
        self
    }

    pub(crate) fn finish(self) -> BuildOutput {
        let Self {
            diagnostics,
            summary,
            artifacts,
        } = self;
        let failed = diagnostics.iter().any(|d| d.severity == Severity::Error)
            || summary.iter().any(|s| s.starts_with("error"));
        let status = status_of(failed, !artifacts.is_empty());
        BuildOutput {
            tool: "cargo".into(),
            status,
            diagnostics,
            artifacts,
            summary,
        }
    }
}

/// The byte offset of a line near the middle of `text` where the text may be cut for
/// [`CargoPart`]s of each side's lines: the first line past the middle byte that starts a
/// diagnostic (`warning: ...`, `error[E0308]: ...`), where [`rustc_diagnostics`] starts afresh
/// whatever came before. The text before it ends with a line's end, so the lines of the two
/// sides are the lines of the whole. `None` when no diagnostic starts past the middle.
pub(crate) fn cargo_split_byte(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let middle = text.len() / 2;
    let mut at = middle + memchr::memchr(b'\n', &bytes[middle..])? + 1;
    while at < text.len() {
        let end = memchr::memchr(b'\n', &bytes[at..]).map_or(text.len(), |i| at + i);
        let line = &text[at..end];
        if rustc_head(line.strip_suffix('\r').unwrap_or(line)).is_some() {
            return Some(at);
        }
        at = end + 1;
    }
    None
}

/// [`CARGO_SUMMARY`], its regex run only on lines whose message starts the way a summary does
/// (`could`, `aborting`, `build`, a backquote, a digit): not on the thousands of diagnostics.
fn is_cargo_summary(line: &str) -> bool {
    let rest = line
        .strip_prefix("error: ")
        .or_else(|| line.strip_prefix("warning: "));
    rest.is_some_and(|r| {
        r.starts_with(['c', 'a', 'b', '`']) || r.starts_with(|c: char| c.is_ascii_digit())
    }) && CARGO_SUMMARY.is_match(line)
}

/// [`CARGO_FINISHED`] read by hand: an indented line whose first word is `Finished`. Most lines
/// of a large build are indented (locations, snippets, notes), so no regex runs on them.
fn is_cargo_finished(line: &str) -> bool {
    line.starts_with(char::is_whitespace) && line.trim_start().starts_with("Finished ")
}

/// An indented [`CARGO_PROGRESS`] line, its regex run only when the first word is capitalised
/// (`   Compiling`), not on the location and snippet lines of diagnostics.
fn is_cargo_progress(line: &str) -> bool {
    line.starts_with("  ")
        && line
            .trim_start()
            .starts_with(|c: char| c.is_ascii_uppercase())
        && CARGO_PROGRESS.is_match(line)
}

fn status_of(failed: bool, finished: bool) -> Status {
    match (failed, finished) {
        (true, _) => Status::Failed,
        (false, true) => Status::Success,
        (false, false) => Status::Unknown,
    }
}

/// Diagnostics in rustc's human format. Used by the cargo build and cargo test parsers.
pub fn rustc_diagnostics(lines: &[&str]) -> Vec<Diagnostic> {
    let mut out: Vec<Diagnostic> = Vec::new();
    let mut open = false;
    for line in lines {
        if let Some((severity, code, message)) = rustc_head(line) {
            open = !is_cargo_summary(line);
            if open {
                out.push(Diagnostic {
                    severity,
                    code: code.map(str::to_string),
                    message: message.to_string(),
                    location: None,
                    notes: vec![],
                });
            }
            continue;
        }
        let top_level = !line.is_empty()
            && !line.starts_with(|c: char| c == ' ' || c == '=' || c == '|' || c.is_ascii_digit());
        if is_cargo_progress(line)
            || (top_level && !line.starts_with("help: ") && !line.starts_with("note: "))
        {
            open = false;
        }
        let Some(d) = out.last_mut().filter(|_| open) else {
            continue;
        };
        attach_rustc_line(d, line);
    }
    out
}

/// `error[E0308]: message` / `warning: message`: severity, code, message. Read by hand: this runs
/// on every line of outputs with tens of thousands of diagnostics.
pub(crate) fn rustc_head(line: &str) -> Option<(Severity, Option<&str>, &str)> {
    let (severity, rest) = match line.strip_prefix("error") {
        Some(r) => (Severity::Error, r),
        None => (Severity::Warning, line.strip_prefix("warning")?),
    };
    let (code, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (c, r) = r.split_once(']')?;
            let valid = !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
            (Some(Some(c).filter(|_| valid)?), r)
        }
        None => (None, rest),
    };
    let message = rest.strip_prefix(": ")?;
    (!message.is_empty()).then_some((severity, code, message))
}

/// Adds a location, a label or a note line to the diagnostic being read.
fn attach_rustc_line(d: &mut Diagnostic, line: &str) {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix("--> ").or_else(|| t.strip_prefix("::: ")) {
        if d.location.is_none() {
            d.location = parse_location(rest.trim_end());
        }
        return;
    }
    let note = t
        .strip_prefix("= note: ")
        .map(|n| ("note", n))
        .or_else(|| t.strip_prefix("= help: ").map(|n| ("help", n)));
    if let Some((kind, note)) = note {
        if d.code.is_none()
            && let Some(name) = lint_name(note)
        {
            d.code = Some(name.to_string());
        }
        if d.notes.len() < 2
            && !note.starts_with("for further information")
            && !note.starts_with('`')
        {
            push_note(&mut d.notes, format!("{kind}: {note}"));
        }
        return;
    }
    if d.notes.len() < 3
        && let Some(label) = label_text(t)
    {
        push_note(&mut d.notes, label.to_string());
    }
}

/// Adds a note, the first in room for one: most diagnostics of a large build have one (a
/// vector's first growth would make room for four, 72 bytes more on each of millions).
fn push_note(notes: &mut Vec<String>, note: String) {
    if notes.capacity() == 0 {
        notes.reserve_exact(1);
    }
    notes.push(note);
}

/// The lint named by `#[warn(name)]`, `#[deny(name)]` or `#[forbid(name)]` in a note (the first
/// such attribute), read by hand: every warning of a large build has one.
fn lint_name(note: &str) -> Option<&str> {
    let mut rest = note;
    while let Some(at) = rest.find("#[") {
        rest = &rest[at + 2..];
        let Some(args) = ["warn(", "deny(", "forbid("]
            .iter()
            .find_map(|level| rest.strip_prefix(level))
        else {
            continue;
        };
        let len = args
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'_' || *b == b':')
            .count();
        if len > 0 && args[len..].starts_with(")]") {
            return Some(&args[..len]);
        }
    }
    None
}

/// The text of a label under a source line: `|     ^^^^ not found in this scope` gives `not found
/// in this scope`.
fn label_text(t: &str) -> Option<&str> {
    let t = t
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start();
    let t = t.strip_prefix('|')?;
    let t = t.trim_start_matches(|c: char| c.is_whitespace() || c == '|');
    let after = t.trim_start_matches(['^', '-', '~']);
    if after.len() == t.len() || !after.starts_with(char::is_whitespace) {
        return None;
    }
    let text = after.trim();
    (!text.is_empty()).then_some(text)
}

static TSC_PLAIN: LazyLock<Regex> =
    lazy_re!(r"^(.+?)\((\d+),(\d+)\): (error|warning) (TS\d+): (.*)$");
static TSC_PRETTY: LazyLock<Regex> =
    lazy_re!(r"^(.+?):(\d+):(\d+) - (error|warning) (TS\d+): (.*)$");
static TSC_GLOBAL: LazyLock<Regex> = lazy_re!(r"^(error|warning) (TS\d+): (.*)$");
static TSC_SUMMARY: LazyLock<Regex> = lazy_re!(r"^Found \d+ errors?");

/// Parses `tsc` output in both the plain (`file(l,c): error TSn:`) and pretty (`file:l:c - error TSn:`)
/// forms.
pub fn parse_tsc(lines: &[&str]) -> BuildOutput {
    let mut diagnostics = Vec::new();
    let mut summary = Vec::new();
    for line in lines {
        let caps = TSC_PLAIN
            .captures(line)
            .or_else(|| TSC_PRETTY.captures(line));
        if let Some(c) = caps {
            let loc = Location::new(&c[1], c[2].parse().ok(), c[3].parse().ok());
            diagnostics.push(diag(&c[4], Some(&c[5]), &c[6], Some(loc)));
        } else if let Some(c) = TSC_GLOBAL.captures(line) {
            diagnostics.push(diag(&c[1], Some(&c[2]), &c[3], None));
        } else if TSC_SUMMARY.is_match(line) {
            summary.push(line.trim().to_string());
        }
    }
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error) || !summary.is_empty();
    let status = if failed {
        Status::Failed
    } else {
        Status::Unknown
    };
    BuildOutput {
        tool: "tsc".into(),
        status,
        diagnostics,
        artifacts: vec![],
        summary,
    }
}

fn diag(
    severity: &str,
    code: Option<&str>,
    message: &str,
    location: Option<Location>,
) -> Diagnostic {
    let severity = match severity {
        "warning" => Severity::Warning,
        "note" => Severity::Note,
        _ => Severity::Error,
    };
    Diagnostic {
        severity,
        code: code.map(str::to_string),
        message: message.trim().to_string(),
        location,
        notes: vec![],
    }
}

static GO_DIAG: LazyLock<Regex> = lazy_re!(r"^(?:\./)?(\S+\.go):(\d+):(?:(\d+):)? (.+)$");
static GO_PKG: LazyLock<Regex> = lazy_re!(r"^# (\S+)$");

/// Parses `go build` / `go vet` output: `# package` headers and `file.go:l:c: message` lines.
pub fn parse_go(lines: &[&str]) -> BuildOutput {
    let mut diagnostics = Vec::new();
    let mut summary = Vec::new();
    for line in lines {
        if let Some(c) = GO_DIAG.captures(line) {
            let loc = Location::new(
                &c[1],
                c[2].parse().ok(),
                c.get(3).and_then(|m| m.as_str().parse().ok()),
            );
            diagnostics.push(diag("error", None, &c[4], Some(loc)));
        } else if GO_PKG.is_match(line)
            || line.starts_with("go: ")
            || line.contains("too many errors")
        {
            summary.push(line.trim().to_string());
        }
    }
    let failed = !diagnostics.is_empty() || summary.iter().any(|s| s.starts_with("go: "));
    let status = if failed {
        Status::Failed
    } else {
        Status::Unknown
    };
    BuildOutput {
        tool: "go".into(),
        status,
        diagnostics,
        artifacts: vec![],
        summary,
    }
}

static GCC_DIAG: LazyLock<Regex> = lazy_re!(
    r"^(\S+?):(\d+):(?:(\d+):)? (error|warning|fatal error|note): (.*?)(?: \[(-W[^\]]+|-fpermissive)\])?$"
);
static LINKER: LazyLock<Regex> =
    lazy_re!(r"undefined reference to|ld returned \d+ exit status|cannot find -l");
static MAKE_MSG: LazyLock<Regex> =
    lazy_re!(r"^g?make(?:\[\d+\])?: (\*\*\*|Target|Leaving|Nothing to be done)");

/// Parses gcc/clang diagnostics and make's error lines.
pub fn parse_gcc(lines: &[&str]) -> BuildOutput {
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut summary = Vec::new();
    for line in lines {
        if let Some(c) = GCC_DIAG.captures(line) {
            let loc = Location::new(
                &c[1],
                c[2].parse().ok(),
                c.get(3).and_then(|m| m.as_str().parse().ok()),
            );
            let sev = if &c[4] == "fatal error" {
                "error"
            } else {
                &c[4]
            };
            let mut d = diag(sev, c.get(6).map(|m| m.as_str()), &c[5], Some(loc));
            if d.severity == Severity::Note
                && let Some(prev) = diagnostics.last_mut()
            {
                d.notes.clear();
                prev.notes
                    .push(format!("note: {} ({})", d.message, loc_text(&d)));
                continue;
            }
            diagnostics.push(d);
        } else if LINKER.is_match(line) {
            diagnostics.push(diag("error", None, line.trim(), None));
        } else if MAKE_MSG.is_match(line) && line.contains("***") || line.contains("not remade") {
            summary.push(line.trim().to_string());
        }
    }
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error)
        || summary.iter().any(|s| s.contains("***"));
    let status = if failed {
        Status::Failed
    } else {
        Status::Unknown
    };
    BuildOutput {
        tool: "gcc".into(),
        status,
        diagnostics,
        artifacts: vec![],
        summary,
    }
}

fn loc_text(d: &Diagnostic) -> String {
    d.location
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

static JS_ERROR: LazyLock<Regex> = lazy_re!(
    r"(?i)^\s*(?:x |✘ |\[vite\]\s*)?(error\b.*|ERROR in .*|.*\bfailed\b.*|Could not resolve .*|Module not found.*|SyntaxError.*|TypeError.*)$"
);
static JS_LOC: LazyLock<Regex> = lazy_re!(
    r"(?:^|[\s(])((?:\.{0,2}/)?[\w./@-]+\.(?:[cm]?[jt]sx?|vue|svelte|css|scss|html)):(\d+)(?::(\d+))?"
);
static JS_FILE: LazyLock<Regex> = lazy_re!(r"^\s*file: (\S+?)(?::(\d+):(\d+))?$");
static JS_OK: LazyLock<Regex> =
    lazy_re!(r"(?i)✓ built in|compiled successfully|webpack \d\S* compiled\s+successfully");

/// webpack's error header: `ERROR in ./src/math.js 2:15` (or `2:0-34`, a range); the message follows.
static WEBPACK_ERROR: LazyLock<Regex> =
    lazy_re!(r"^(ERROR|WARNING) in (\S+?)(?: (\d+):(\d+)(?:-\d+(?::\d+)?)?)?$");
static WEBPACK_DONE: LazyLock<Regex> =
    lazy_re!(r"^webpack \d\S* compiled with (\d+ errors?|\d+ warnings?)");

/// Parses webpack/vite/rollup output: error lines with their file:line, stack frames dropped.
pub fn parse_bundler(lines: &[&str]) -> BuildOutput {
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut summary = Vec::new();
    let mut ok = false;
    // A webpack header waiting for its message line.
    let mut header: Option<usize> = None;
    for line in lines {
        let t = line.trim();
        if t.starts_with("at ") {
            continue;
        }
        if let Some(i) = header.filter(|_| !t.is_empty()) {
            header = None;
            if let Some(d) = diagnostics.get_mut(i) {
                d.message = t.to_string();
                continue;
            }
        }
        if let Some(c) = WEBPACK_ERROR.captures(t) {
            let location = Location::new(
                &c[2],
                c.get(3).and_then(|m| m.as_str().parse().ok()),
                c.get(4).and_then(|m| m.as_str().parse().ok()),
            );
            let severity = if &c[1] == "ERROR" { "error" } else { "warning" };
            diagnostics.push(diag(severity, None, t, Some(location)));
            header = Some(diagnostics.len() - 1);
        } else if WEBPACK_DONE.is_match(t) {
            summary.push(t.to_string());
        } else if JS_OK.is_match(t) {
            ok = true;
            summary.push(t.to_string());
        } else if let Some(c) = JS_FILE.captures(line) {
            let loc = Location::new(
                &c[1],
                c.get(2).and_then(|m| m.as_str().parse().ok()),
                c.get(3).and_then(|m| m.as_str().parse().ok()),
            );
            if let Some(d) = diagnostics.last_mut().filter(|d| d.location.is_none()) {
                d.location = Some(loc);
            }
        } else if JS_ERROR.is_match(t) {
            let location = JS_LOC.captures(t).map(|c| {
                Location::new(
                    &c[1],
                    c[2].parse().ok(),
                    c.get(3).and_then(|m| m.as_str().parse().ok()),
                )
            });
            diagnostics.push(diag("error", None, t, location));
        }
    }
    merge_error_headers(&mut diagnostics, lines);
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error);
    BuildOutput {
        tool: "bundler".into(),
        status: status_of(failed, ok),
        diagnostics,
        artifacts: vec![],
        summary,
    }
}

/// Node's header of an uncaught exception: the script and line that threw.
static NODE_THROW_AT: LazyLock<Regex> = lazy_re!(r"^(/?[\w./@-]+\.[cm]?[jt]sx?):(\d+)$");
/// The exception itself: `Error: message`, `TypeError [CODE]: message`.
static NODE_ERROR: LazyLock<Regex> = lazy_re!(r"^([A-Z]\w*Error|Error)(?: \[[\w-]+\])?: (.+)$");
/// A stack frame with a location: `at fn (/path/file.js:3:9)` or `at /path/file.js:3:9`.
static NODE_FRAME: LazyLock<Regex> = lazy_re!(r"^at (?:.*? \()?(.+?):(\d+):(\d+)\)?$");
/// The package manager's own line saying the script failed.
static SCRIPT_FAILED: LazyLock<Regex> = lazy_re!(
    r"^(\[?ELIFECYCLE\]?.*|error Command failed with exit code \d+.*|npm (ERR!|error) (Lifecycle script|command failed|code|path|command).*|.*ERR_PNPM_\w+.*)$"
);

/// The package manager named by a script run's own lines (`[ELIFECYCLE]` is pnpm's, `error Command
/// failed` yarn's), or `script` when the output does not say.
pub fn script_tool(lines: &[&str]) -> &'static str {
    for line in lines.iter().rev().take(40) {
        let t = line.trim();
        if t.contains("ELIFECYCLE") || t.contains("ERR_PNPM_") {
            return "pnpm";
        }
        if t.starts_with("npm ERR!") || t.starts_with("npm error") {
            return "npm";
        }
        if t.starts_with("error Command failed") {
            return "yarn";
        }
    }
    "script"
}

/// Parses the output of a package.json script (`npm run`, `yarn build`, `pnpm run`) that no specific
/// parser claims: uncaught exceptions with the file:line that threw, the first frame in the user's code,
/// and the package manager's failure lines. It never reads as success: a script does not say so.
pub fn parse_script(tool: &str, lines: &[&str]) -> BuildOutput {
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut summary = Vec::new();
    let mut thrown_at: Option<Location> = None;
    for line in lines {
        let t = line.trim();
        if let Some(c) = NODE_THROW_AT.captures(t) {
            thrown_at = Some(Location::new(&c[1], c[2].parse().ok(), None));
        } else if NODE_ERROR.is_match(t) {
            diagnostics.push(diag("error", None, t, thrown_at.take()));
        } else if let Some(c) = NODE_FRAME.captures(t) {
            // The first frame outside node internals and dependencies pins an error without a header.
            if let Some(d) = diagnostics.last_mut().filter(|d| d.location.is_none())
                && !crate::generic::is_vendor(&c[1])
                && !c[1].ends_with(".pnp.cjs")
                && !c[1].ends_with(".pnp.js")
            {
                d.location = Some(Location::new(&c[1], c[2].parse().ok(), c[3].parse().ok()));
            }
        } else if SCRIPT_FAILED.is_match(t) && !summary.iter().any(|s| s == t) {
            summary.push(t.to_string());
        }
    }
    let failed = !diagnostics.is_empty() || !summary.is_empty();
    BuildOutput {
        tool: tool.into(),
        status: status_of(failed, false),
        diagnostics,
        artifacts: vec![],
        summary,
    }
}

/// `error during build:` is followed by the actual message on the next line; keep that line too.
fn merge_error_headers(diagnostics: &mut [Diagnostic], lines: &[&str]) {
    for d in diagnostics.iter_mut() {
        if d.message.ends_with(':')
            && let Some(i) = lines.iter().position(|l| l.trim() == d.message)
            && let Some(next) = lines.get(i + 1)
        {
            d.notes.push(next.trim().to_string());
        }
    }
}

static RUFF_HEAD: LazyLock<Regex> = lazy_re!(r"^([A-Z]{1,4}\d{2,4}) (?:\[\*\] )?(.+)$");
static RUFF_SUMMARY: LazyLock<Regex> = lazy_re!(
    r"^(Found \d+ errors?.*|\[\*\] \d+ fixable.*|\d+ files? would be reformatted.*|All checks passed!)$"
);

/// Parses `ruff check` in its default (full) and concise forms: `F821 Undefined name `x`` with
/// ` --> file:l:c` on the next line, or `file:l:c: F821 message` on one line.
pub fn parse_ruff(lines: &[&str]) -> BuildOutput {
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut summary = Vec::new();
    for line in lines {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("--> ") {
            if let (Some(d), Some(loc)) = (diagnostics.last_mut(), parse_location(rest))
                && d.location.is_none()
            {
                d.location = Some(loc);
            }
        } else if let Some(c) = RUFF_HEAD.captures(line) {
            diagnostics.push(diag("error", Some(&c[1]), &c[2], None));
        } else if let Some(c) = RUFF_CONCISE.captures(line) {
            let loc = Location::new(&c[1], c[2].parse().ok(), c[3].parse().ok());
            diagnostics.push(diag("error", Some(&c[4]), &c[5], Some(loc)));
        } else if RUFF_SUMMARY.is_match(t) {
            summary.push(t.to_string());
        }
    }
    let failed = !diagnostics.is_empty()
        || summary
            .iter()
            .any(|s| s.starts_with("Found") || s.contains("would be"));
    let ok = summary.iter().any(|s| s == "All checks passed!");
    BuildOutput {
        tool: "ruff".into(),
        status: status_of(failed, ok),
        diagnostics,
        artifacts: vec![],
        summary,
    }
}

static RUFF_CONCISE: LazyLock<Regex> =
    lazy_re!(r"^(\S+?):(\d+):(\d+): ([A-Z]{1,4}\d{2,4}) (?:\[\*\] )?(.+)$");

/// `file:line:col` (the column optional).
fn parse_location(s: &str) -> Option<Location> {
    let mut parts = s.rsplitn(3, ':');
    let c = parts.next()?;
    let l = parts.next()?;
    match parts.next() {
        Some(file) => Some(Location::new(file, l.parse().ok(), c.parse().ok())),
        None => Some(Location::new(l, c.parse().ok(), None)),
    }
}

static ESLINT_ROW: LazyLock<Regex> =
    lazy_re!(r"^\s+(\d+):(\d+)\s+(error|warning)\s+(.+?)\s{2,}(\S+)$");
static ESLINT_TOTAL: LazyLock<Regex> =
    lazy_re!(r"^✖ \d+ problems? .*$|^\s*\d+ errors? and \d+ warnings? potentially fixable.*$");

/// Parses eslint's default (stylish) output: a file path line, then `  l:c  error  message  rule`
/// rows under it, and the `✖ N problems` total.
pub fn parse_eslint(lines: &[&str]) -> BuildOutput {
    let mut diagnostics = Vec::new();
    let mut summary = Vec::new();
    let mut file = String::new();
    for line in lines {
        if let Some(c) = ESLINT_ROW.captures(line) {
            let loc = Location::new(&file, c[1].parse().ok(), c[2].parse().ok());
            diagnostics.push(diag(&c[3], Some(&c[5]), &c[4], Some(loc)));
        } else if ESLINT_TOTAL.is_match(line) {
            summary.push(line.trim().to_string());
        } else if !line.starts_with(char::is_whitespace) && !line.trim().is_empty() {
            file = line.trim().to_string();
        }
    }
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error);
    BuildOutput {
        tool: "eslint".into(),
        status: if failed {
            Status::Failed
        } else {
            Status::Unknown
        },
        diagnostics,
        artifacts: vec![],
        summary,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rustc_error_with_label() {
        let text = "error[E0425]: cannot find value `x`\n  --> src/a.rs:3:5\n   |\n3  |     x\n   |     ^ not found\n\nerror: could not compile `a` (lib) due to 1 previous error";
        let lines: Vec<&str> = text.lines().collect();
        let b = parse_cargo(&lines);
        assert_eq!(b.status, Status::Failed);
        assert_eq!(b.diagnostics.len(), 1);
        let d = &b.diagnostics[0];
        assert_eq!(d.code.as_deref(), Some("E0425"));
        assert_eq!(
            d.location.as_ref().map(ToString::to_string).as_deref(),
            Some("src/a.rs:3:5")
        );
        assert_eq!(d.notes, vec!["not found".to_string()]);
        assert_eq!(b.summary.len(), 1);
    }

    #[test]
    fn hand_read_shapes_agree_with_the_regexes() {
        let lint = regex::Regex::new(r"#\[(?:warn|deny|forbid)\(([a-z_:]+)\)\]").unwrap();
        for note in [
            "`#[warn(unused_variables)]` on by default",
            "the lint level is defined here: #[deny(clippy::all)]",
            "#[allow(x)] then #[forbid(unsafe_code)]",
            "#[warn(Upper)] #[warn()] #[warn(ok_one)]",
            "#[warn(unclosed",
            "no attribute",
        ] {
            let by_regex = lint.captures(note).map(|c| c.get(1).unwrap().as_str());
            assert_eq!(lint_name(note), by_regex, "{note}");
        }
        for line in [
            "error: could not compile `a` (lib) due to 2 previous errors",
            "warning: `a` (lib) generated 3 warnings",
            "warning: 2 warnings emitted",
            "error: aborting due to 1 previous error",
            "warning: unused variable: `x`",
            "error[E0308]: mismatched types",
            "error: build failed",
            "warning: back to `x`",
        ] {
            assert_eq!(
                is_cargo_summary(line),
                CARGO_SUMMARY.is_match(line),
                "{line}"
            );
        }
        for line in [
            "   Compiling a v0.1.0",
            "  --> src/a.rs:1:2",
            "  Finished x",
            " Compiling a",
            "   =",
        ] {
            let by_regex = line.starts_with("  ") && CARGO_PROGRESS.is_match(line);
            assert_eq!(is_cargo_progress(line), by_regex, "{line}");
        }
        for line in [
            "    Finished `dev` profile [unoptimized] target(s) in 0.1s",
            "\tFinished x",
            "Finished x",
            "   Finishedx",
            "   = Finished",
            "  --> src/a.rs:1:2",
            "\u{a0}Finished x",
        ] {
            assert_eq!(
                is_cargo_finished(line),
                CARGO_FINISHED.is_match(line),
                "{line}"
            );
        }
    }

    #[test]
    fn cargo_parts_cut_at_any_diagnostic_join_to_the_whole() {
        let mut texts: Vec<String> = crate::compact::tests::fixtures()
            .into_iter()
            .filter(|(command, _)| command.starts_with("cargo"))
            .map(|(_, raw)| crate::text::clean(&raw).into_owned())
            .collect();
        texts.push(crate::compact::tests::cargo_output(30));
        texts.push(
            "warning: a\n  --> a.rs:1:1\n   = note: `#[warn(x)]` on\nerror: could not compile `a`\n\
             = note: after\n  --> b.rs:2:2\nwarning: 2 warnings emitted\n    Finished `dev`\n"
                .into(),
        );
        for text in &texts {
            let lines: Vec<&str> = text.lines().collect();
            let whole = parse_cargo(&lines);
            for at in (1..lines.len()).filter(|&k| rustc_head(lines[k]).is_some()) {
                let (a, b) = lines.split_at(at);
                let joined = CargoPart::of(a).then(CargoPart::of(b)).finish();
                assert_eq!(joined, whole, "cut at line {at} of {text:.200}");
            }
            if let Some(at) = cargo_split_byte(text) {
                let (head, rest) = text.split_at(at);
                assert!(head.ends_with('\n') && at >= text.len() / 2, "{text:.200}");
                let first = crate::text::lines(rest)[0];
                assert!(rustc_head(first).is_some(), "{first:?}");
                let mut halves = crate::text::lines(head);
                halves.extend(crate::text::lines(rest));
                assert_eq!(halves, lines, "{text:.200}");
            }
        }
    }

    #[test]
    fn tsc_plain_and_pretty() {
        let lines = [
            "a.ts(1,2): error TS2322: bad",
            "b.ts:3:4 - error TS1005: ';' expected.",
            "Found 2 errors in 2 files.",
        ];
        let b = parse_tsc(&lines);
        assert_eq!(b.diagnostics.len(), 2);
        assert_eq!(b.status, Status::Failed);
    }
}
