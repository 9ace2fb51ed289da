//! Facts pulled out of one command run: its error lines, failing tests, file paths, changed files,
//! and the words of the command line that decide which runs are "the same command".

use std::sync::LazyLock;

use ai_session_output::{GitOperation, LogLevel, Parsed, ParsedOutput, Severity, Status};
use regex::Regex;

/// Most error lines kept per run.
pub const MAX_ERRORS: usize = 6;
/// Most file paths kept per run.
pub const MAX_FILES: usize = 12;

/// What one run shows, beyond its exit code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFacts {
    /// Error lines, one line each.
    pub errors: Vec<String>,
    /// Names of failing tests.
    pub tests_failed: Vec<String>,
    /// Paths the output mentions.
    pub files: Vec<String>,
    /// Files a `git status` listed (`None` when the run was not a status).
    pub changed_files: Option<Vec<String>>,
    /// Whether the parser saw a failure even if the exit code was 0.
    pub failed: bool,
}

#[allow(clippy::expect_used)] // The patterns are constants; a typo fails every test.
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("constant regex")
}

static ERROR_LINE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(\berror\b|\bfatal\b|\bfailed\b|\bFAIL\b|panicked|exception|traceback|not found|permission denied|no such file|\bE\d{3,4}\b)",
    )
});
static PATH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:^|[\s('`\x22:])((?:[\w.-]+/)*[\w.-]+\.(?:rs|py|pyi|toml|json|ya?ml|js|jsx|ts|tsx|go|c|h|cc|cpp|hpp|java|kt|rb|sh|md|txt|lock|cfg|ini|sql|html|css))\b(?::\d+(?::\d+)?)?",
    )
});

/// Pulls facts out of a run: from the parsed structure when there is one, then from the text.
pub fn run_facts(parsed: Option<&Parsed>, output: &str, exit_code: Option<i32>) -> RunFacts {
    let mut facts = RunFacts::default();
    if let Some(p) = parsed {
        from_parsed(p, &mut facts);
    }
    let failed_exit = matches!(exit_code, Some(c) if c != 0);
    if facts.errors.is_empty() && (failed_exit || facts.failed) {
        from_text_errors(output, &mut facts.errors);
    }
    from_text_paths(output, &mut facts.files);
    facts.errors.truncate(MAX_ERRORS);
    dedup_keep_order(&mut facts.files);
    facts.files.truncate(MAX_FILES);
    facts
}

fn from_parsed(p: &Parsed, f: &mut RunFacts) {
    match &p.output {
        ParsedOutput::BuildOutput(b) => {
            f.failed = b.status == Status::Failed;
            for d in &b.diagnostics {
                if let Some(loc) = &d.location {
                    f.files.push(loc.file.clone());
                }
                if d.severity == Severity::Error {
                    f.errors.push(diagnostic_line(d));
                }
            }
        }
        ParsedOutput::TestResults(t) => {
            f.failed = t.status == Status::Failed;
            for fail in &t.failures {
                f.tests_failed.push(fail.name.clone());
                let mut line = format!("FAILED {}", fail.name);
                if let Some(loc) = &fail.location {
                    f.files.push(loc.file.clone());
                    line.push_str(&format!(" at {loc}"));
                }
                if let Some(m) = fail.message.iter().find(|m| !m.trim().is_empty()) {
                    line.push_str(": ");
                    line.push_str(m.trim());
                }
                f.errors.push(one_line(&line, 240));
            }
            for d in t
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
            {
                f.errors.push(diagnostic_line(d));
            }
        }
        ParsedOutput::GitOutput(g) => {
            f.failed = g.status == Status::Failed;
            for c in &g.conflicts {
                f.errors.push(format!("CONFLICT ({}) {}", c.kind, c.path));
                f.files.push(c.path.clone());
            }
            if g.status == Status::Failed {
                for m in g.messages.iter().filter(|m| ERROR_LINE.is_match(m)) {
                    f.errors.push(one_line(m, 240));
                }
            }
            f.files.extend(g.files.iter().map(|c| c.path.clone()));
            f.files.extend(g.diffs.iter().map(|d| d.path.clone()));
            if g.operation == GitOperation::Status {
                f.changed_files = Some(g.files.iter().map(|c| c.path.clone()).collect());
            }
        }
        ParsedOutput::StructuredLog(l) => {
            f.failed = l.level >= LogLevel::Error;
            for e in l.entries.iter().filter(|e| e.level >= LogLevel::Error) {
                f.errors.push(one_line(&e.message, 240));
            }
        }
        _ => {}
    }
}

fn diagnostic_line(d: &ai_session_output::Diagnostic) -> String {
    let mut line = match &d.code {
        Some(code) => format!("error[{code}]: {}", d.message),
        None => format!("error: {}", d.message),
    };
    if let Some(loc) = &d.location {
        line.push_str(&format!(" at {loc}"));
    }
    one_line(&line, 240)
}

fn from_text_errors(output: &str, errors: &mut Vec<String>) {
    for line in output.lines().filter(|l| ERROR_LINE.is_match(l)) {
        let l = one_line(line, 240);
        if !l.is_empty() && !errors.contains(&l) {
            errors.push(l);
        }
        if errors.len() >= MAX_ERRORS {
            return;
        }
    }
    if errors.is_empty() {
        if let Some(last) = output.lines().rev().find(|l| !l.trim().is_empty()) {
            errors.push(one_line(last, 240));
        }
    }
}

fn from_text_paths(output: &str, files: &mut Vec<String>) {
    // The compact views are small; a huge raw output is only scanned at its head.
    let text = prefix_chars(output, 64 * 1024);
    for cap in PATH.captures_iter(text) {
        if let Some(m) = cap.get(1) {
            files.push(m.as_str().trim_start_matches("./").to_string());
        }
        if files.len() >= MAX_FILES * 2 {
            break;
        }
    }
}

fn dedup_keep_order(v: &mut Vec<String>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
}

/// The first `max` characters of a string, cut at a character boundary.
pub fn prefix_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The last `max` characters of a string, cut at a character boundary.
pub fn suffix_chars(s: &str, max: usize) -> &str {
    let n = s.chars().count();
    if n <= max {
        return s;
    }
    match s.char_indices().nth(n - max) {
        Some((i, _)) => &s[i..],
        None => s,
    }
}

/// One line: whitespace runs collapsed, at most `max` characters (an ellipsis marks a cut).
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 4));
    let mut n = 0;
    for word in s.split_whitespace() {
        if n > 0 {
            out.push(' ');
            n += 1;
        }
        for c in word.chars() {
            if n >= max {
                out.push('…');
                return out;
            }
            out.push(c);
            n += 1;
        }
    }
    out
}

/// Splits a command line into words: quotes group, backslash escapes, `&&`, `||`, `;` and `|`
/// become their own words.
pub fn words(command: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, c) if c.is_whitespace() => flush(&mut cur, &mut out),
            (None, ';') => {
                flush(&mut cur, &mut out);
                out.push(";".into());
            }
            (None, '&' | '|') => {
                flush(&mut cur, &mut out);
                let mut op = c.to_string();
                if chars.peek() == Some(&c) {
                    chars.next();
                    op.push(c);
                }
                out.push(op);
            }
            (None, c) => cur.push(c),
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn flush(cur: &mut String, out: &mut Vec<String>) {
    if !cur.is_empty() {
        out.push(std::mem::take(cur));
    }
}

/// The last simple command of a compound line (`cd py && pytest -q` gives `pytest -q`), with
/// leading `VAR=value` assignments and wrappers (`sudo`, `env`, `time`, `nice`) removed. A
/// heredoc body is dropped.
pub fn primary_words(command: &str) -> Vec<String> {
    let first_line = command.lines().next().unwrap_or("");
    // Segments split at `&&`, `||`, `;`, `&`; within one, the producer of a pipeline is the
    // command that matters (`cargo test | tail`), so words after a `|` are dropped.
    let mut segments: Vec<Vec<String>> = vec![Vec::new()];
    let mut in_pipe_tail = false;
    for w in words(first_line) {
        match w.as_str() {
            "&&" | "||" | ";" | "&" => {
                segments.push(Vec::new());
                in_pipe_tail = false;
            }
            "|" => in_pipe_tail = true,
            _ if in_pipe_tail => {}
            _ => {
                if let Some(last) = segments.last_mut() {
                    last.push(w);
                }
            }
        }
    }
    let segments: Vec<Vec<String>> = segments
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(strip_wrappers)
        .collect();
    let not_cd = segments
        .iter()
        .rev()
        .find(|s| s.first().is_some_and(|p| p != "cd"));
    not_cd.or(segments.last()).cloned().unwrap_or_default()
}

fn strip_wrappers(seg: Vec<String>) -> Vec<String> {
    let mut i = 0;
    while i < seg.len() {
        let w = seg[i].as_str();
        let assignment = w.contains('=') && !w.starts_with('-') && !w.starts_with('=');
        if assignment || matches!(w, "sudo" | "env" | "time" | "nice" | "command" | "exec") {
            i += 1;
        } else {
            break;
        }
    }
    let mut out: Vec<String> = seg.into_iter().skip(i).collect();
    if let Some(first) = out.first_mut() {
        if let Some(base) = first.rsplit('/').next() {
            *first = base.to_string();
        }
    }
    out
}

/// `program subcommand`: the program and its first word when that word looks like a
/// subcommand (`cargo test`, `git status`, `python pytest` for `python -m pytest`).
pub fn command_family(words: &[String]) -> String {
    let Some(program) = words.first() else {
        return String::new();
    };
    let sub = words[1..]
        .iter()
        .find(|w| !w.starts_with('-') && !w.contains('/') && !w.contains('.') && !w.contains('='));
    match sub {
        Some(s) if words[1..].first().is_some_and(|f| f == s || f == "-m") => {
            format!("{program} {s}")
        }
        _ => program.clone(),
    }
}

/// Flags whose value narrows a run to part of the project.
const NARROWING_FLAGS: [&str; 8] = [
    "-p",
    "--package",
    "-k",
    "--test",
    "--bin",
    "--example",
    "--lib",
    "-t",
];

/// Whether `w` reads as the value of the flag before it (`--features x`, `-p foo`), not as an
/// argument of its own (`-q tests/a.py`, `-m pytest`).
fn is_flag_value(flag: &str, w: &str) -> bool {
    flag.starts_with('-')
        && !flag.contains('=')
        && flag != "-m"
        && !w.starts_with('-')
        && !w.contains('/')
        && !w.contains('.')
}

/// What narrows the run to part of the project: arguments after the subcommand that are not
/// flags (a test filter, a path), and values of narrowing flags (`-p foo`). Values of other
/// flags (`--features x`) do not narrow.
pub fn positional_words(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 1;
    while i < words.len() {
        let w = &words[i];
        if w.starts_with('-') {
            if let Some(v) = words.get(i + 1).filter(|v| is_flag_value(w, v)) {
                if NARROWING_FLAGS.contains(&w.as_str()) {
                    out.push(format!("{w} {v}"));
                }
                i += 1;
            }
        } else {
            out.push(w.clone());
        }
        i += 1;
    }
    if command_family(words).contains(' ') && !out.is_empty() {
        out.remove(0);
    }
    out
}

/// Whether each of `extra` (words of `words`) is a flag or a flag's value: what a lesson may
/// teach ("needs `--features x`"), unlike a filter that only ran less.
pub fn only_flags(words: &[String], extra: &[&str]) -> bool {
    extra.iter().all(|x| {
        x.starts_with('-')
            || x.contains('=')
            || words
                .windows(2)
                .any(|p| p[1] == *x && is_flag_value(&p[0], x))
    })
}

/// Runs that are noise when they succeed: looking around, not doing.
pub fn is_noise(words: &[String]) -> bool {
    let family = command_family(words);
    matches!(
        family.as_str(),
        "ls" | "pwd"
            | "cd"
            | "echo"
            | "cat"
            | "head"
            | "tail"
            | "clear"
            | "true"
            | "which"
            | "git status"
            | "git log"
            | "git diff"
            | "git show"
            | "git branch"
            | "tree"
            | "wc"
    ) || words.first().is_some_and(|w| w == "git")
        && words
            .iter()
            .skip(1)
            .find(|w| !w.starts_with('-'))
            .is_some_and(|s| matches!(s.as_str(), "status" | "log" | "diff" | "show" | "branch"))
}

/// Whether a successful run of `later` covers a failed run of `earlier`: the same family, and
/// `later` at least as broad (its narrowing words a subset of the earlier's). `cargo test -p a`
/// is covered by `cargo test` and by `cargo test -p a --features x`; `cargo test` is not
/// covered by `cargo test slugify`, which ran less.
pub fn covers(earlier: &[String], later: &[String]) -> bool {
    if earlier.is_empty() || command_family(earlier) != command_family(later) {
        return false;
    }
    let a = positional_words(earlier);
    positional_words(later).iter().all(|w| a.contains(w))
}

/// A 64-bit key for a path, by its last two components, so `src/lib.rs`, `./src/lib.rs` and
/// `/work/p/src/lib.rs` meet.
pub fn path_key(path: &str) -> u64 {
    let p = path.trim_start_matches("./");
    let p = p.split(':').next().unwrap_or(p);
    let mut parts = p.rsplit('/').filter(|s| !s.is_empty());
    let last = parts.next().unwrap_or("");
    let parent = parts.next().unwrap_or("");
    fnv(parent.as_bytes()) ^ fnv(last.as_bytes()).rotate_left(17)
}

/// FNV-1a, for cheap stable keys (never persisted as identity, only compared in memory).
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        primary_words(s)
    }

    #[test]
    fn primary_words_skip_cd_env_and_pipes() {
        assert_eq!(
            w("cd py && python -m pytest -q"),
            ["python", "-m", "pytest", "-q"]
        );
        assert_eq!(w("RUST_LOG=1 cargo test | tail -5"), ["cargo", "test"]);
        assert_eq!(w("sudo /usr/bin/make all"), ["make", "all"]);
        assert_eq!(w("cd .."), ["cd", ".."]);
    }

    #[test]
    fn families_and_cover() {
        assert_eq!(command_family(&w("cargo test --features x")), "cargo test");
        assert_eq!(
            command_family(&w("python -m pytest -q tests/a.py")),
            "python pytest"
        );
        assert_eq!(command_family(&w("pytest tests/a.py")), "pytest");
        assert!(covers(
            &w("cargo test"),
            &w("cargo test --features unicode")
        ));
        assert!(covers(&w("cargo test -p a"), &w("cargo test")));
        assert!(!covers(&w("cargo test -p a"), &w("cargo test -p b")));
        assert!(!covers(&w("cargo build"), &w("cargo test")));
        assert!(!covers(&w("cargo test"), &w("cargo test slugify")));
        assert!(covers(
            &w("python -m pytest -q t/a.py"),
            &w("python -m pytest -q")
        ));
        assert!(!covers(
            &w("python -m pytest -q"),
            &w("python -m pytest -q t/a.py::x")
        ));
        assert_eq!(
            positional_words(&w("cargo test -p a --features x f")),
            ["-p a", "f"]
        );
    }

    #[test]
    fn text_facts() {
        let out = "Compiling x\nerror[E0308]: mismatched types\n --> src/lib.rs:4:5\n";
        let f = run_facts(None, out, Some(101));
        assert_eq!(f.errors[0], "error[E0308]: mismatched types");
        assert_eq!(f.files, ["src/lib.rs:4:5".split(':').next().unwrap_or("")]);
    }

    #[test]
    fn one_line_cuts_at_chars() {
        assert_eq!(one_line("héllo   wörld", 7), "héllo w…");
        assert_eq!(prefix_chars("héllo", 2), "hé");
        assert_eq!(suffix_chars("héllo", 3), "llo");
    }
}
