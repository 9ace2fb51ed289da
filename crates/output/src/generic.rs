//! The generic view for output no parser claims: repeated lines folded, progress redraws collapsed, the
//! head and tail kept, and every notable line (errors, failures, file:line) kept from the middle.
//!
//! It is also where "notable" is defined: [`is_notable`] is used by the compact view's safety net.

use std::collections::HashMap;
use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use regex::Regex;

use crate::budget::{Sink, push_all};
use crate::parsed::Custom;

static NOTABLE: LazyLock<Regex> = lazy_re!(
    r"(?i)\b(errors?|failed|failure|failures|fatal|panic|panicked|exception|traceback|denied|refused|segmentation fault|core dumped|aborted|abort|critical|conflicts?|assertion|undefined reference|not found|no such file|cannot|unable to|timed? ?out)\b|✕|✗|✘|\bFAIL\b|\bERR!",
);
/// Phrases that contain a failure word but report its absence.
static HARMLESS: LazyLock<Regex> = lazy_re!(
    r"(?i)\b(0|no|zero) (errors?|failed|failures?|conflicts?|vulnerabilities)\b|\.\.\. ok$|\bPASSED\b|^\s*(✓|✔|PASS\s)|without errors|error_?handl|on_error",
);
/// `path/file.ext:line`, the shape of a source location: [`user_location`] reads it by hand; the
/// tests check the two agree.
#[cfg(test)]
static LOCATION: LazyLock<Regex> = lazy_re!(
    r"(?:^|[\s(\[`'\x22])((?:\.{0,2}/)?[\w@.+-]+(?:/[\w@.+-]+)*\.[A-Za-z]{1,5})(?::(\d+)(?::(\d+))?|\((\d+),(\d+)\))"
);
/// Locations inside toolchains and dependencies: not the user's code.
static VENDOR: LazyLock<Regex> = lazy_re!(
    r"^/rustc/|/\.cargo/registry/|node_modules/|^node:|/usr/lib/|/usr/include/|site-packages/|^<frozen|/lib/python3"
);

/// True when the line reports a problem: a location in the user's code, or an error or failure
/// word. The location is looked for first: it is read by hand, the words by regex.
pub fn is_notable(line: &str) -> bool {
    find_user_location(line).is_some() || has_problem_word(line)
}

/// True when the line holds a problem word that is not part of a phrase reporting its absence
/// (`0 errors`, `... ok`).
fn has_problem_word(line: &str) -> bool {
    NOTABLE.is_match(line) && {
        let rest = HARMLESS.replace_all(line, "");
        NOTABLE.is_match(&rest)
    }
}

/// [`has_problem_word`] for the lines of one text, its regexes run only on lines that hold one
/// of [`NOTABLE_LITERALS`] (when the text holds no letter that folds onto ASCII, see
/// [`candidate_lines`]).
pub(crate) struct ProblemWords {
    words: Option<&'static AhoCorasick>,
}

impl ProblemWords {
    /// The check for the lines of `text`.
    pub(crate) fn for_text(text: &str) -> Self {
        Self {
            words: NOTABLE_WORDS.as_ref().filter(|_| !folds_onto_ascii(text)),
        }
    }

    /// [`has_problem_word`] of `line`, a line of the text.
    pub(crate) fn has_problem_word(&self, line: &str) -> bool {
        self.words.is_none_or(|w| w.is_match(line)) && has_problem_word(line)
    }
}

/// The lines of `text` that hold a problem word (an error or failure word not part of a phrase
/// reporting its absence), read as a terminal shows them (without escape sequences), as byte ranges without their line ends, in order. Only the lines
/// around a literal the word search finds are read, so a text of few such lines is scanned at
/// the speed of the search: this runs on the part of a long output that is not kept.
pub fn problem_lines(text: &str) -> Vec<std::ops::Range<usize>> {
    let b = text.as_bytes();
    let line_at = |pos: usize| {
        let start = memchr::memrchr(b'\n', &b[..pos]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &b[pos..]).map_or(b.len(), |i| pos + i);
        start..end
    };
    let trimmed = |r: std::ops::Range<usize>| {
        let end = if r.end > r.start && b[r.end - 1] == b'\r' {
            r.end - 1
        } else {
            r.end
        };
        r.start..end
    };
    let mut out = Vec::new();
    // The words are searched in a lower-cased copy of a window of whole lines at a time, where
    // a case-sensitive search can use its vectorised prefilter (searched in any case, the text
    // is read a byte at a time, about 0.5 GB/s).
    let words = ProblemWords::for_text(text).words.and(LOWER_WORDS.as_ref());
    match words {
        Some(words) => {
            let mut lower = Vec::new();
            let mut at = 0;
            while at < b.len() {
                let end = match b.get(at + PROBLEM_WINDOW..) {
                    Some(rest) => {
                        memchr::memchr(b'\n', rest).map_or(b.len(), |i| at + PROBLEM_WINDOW + i + 1)
                    }
                    None => b.len(),
                };
                lower.clear();
                lower.extend_from_slice(&b[at..end]);
                lower.make_ascii_lowercase();
                let mut from = 0;
                while let Some(m) =
                    words.find(aho_corasick::Input::new(&lower).span(from..lower.len()))
                {
                    let whole = line_at(at + m.start());
                    let line = trimmed(whole.clone());
                    if names_problem(&text[line.clone()]) {
                        out.push(line);
                    }
                    from = whole.end + 1 - at;
                    if from >= lower.len() {
                        break;
                    }
                }
                at = end;
            }
        }
        None => {
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', b).chain(std::iter::once(b.len())) {
                let line = trimmed(start..end);
                if start < b.len() && names_problem(&text[line.clone()]) {
                    out.push(line);
                }
                start = end + 1;
            }
        }
    }
    out
}

/// [`has_problem_word`] of a line as a terminal shows it: escape sequences (colours) do not
/// join a word to the text around it.
fn names_problem(line: &str) -> bool {
    has_problem_word(line) || (line.contains('\x1b') && has_problem_word(&crate::text::clean(line)))
}

/// True when `text` holds `ſ` or the Kelvin sign, which case folding maps onto the ASCII `s`
/// and `k` of the problem words. ASCII text (most build output) holds neither: one cheap pass
/// instead of two substring searches of the whole text.
fn folds_onto_ascii(text: &str) -> bool {
    !text.is_ascii()
        && ["\u{17f}", "\u{212a}"]
            .iter()
            .any(|c| memchr::memmem::find(text.as_bytes(), c.as_bytes()).is_some())
}

/// True when `file` is in a toolchain or dependency path (`node_modules/`, `/rustc/`, `site-packages/`).
pub fn is_vendor(file: &str) -> bool {
    VENDOR.is_match(file)
}

/// The first source location in the line that is not in a toolchain or dependency path, as
/// `file:line`. The line is searched by hand (the shape of [`LOCATION`]): this runs on every location
/// line of outputs with tens of thousands of diagnostics.
pub fn user_location(line: &str) -> Option<String> {
    find_user_location(line).map(|(file, number)| format!("{file}:{number}"))
}

/// [`user_location`] as its two slices of `line` (the file, the line number), without allocating.
pub fn find_user_location(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let path_byte = |c: u8| c.is_ascii_alphanumeric() || b"_@.+-/".contains(&c) || c >= 0x80;
    let mut i = 0;
    while i + 1 < b.len() {
        let (sep, d) = (b[i], b[i + 1]);
        if !((sep == b':' || sep == b'(') && d.is_ascii_digit()) {
            i += 1;
            continue;
        }
        let mut start = i;
        while start > 0 && path_byte(b[start - 1]) {
            start -= 1;
        }
        let before_ok = start == 0 || b" \t([`'\"".contains(&b[start - 1]);
        let file = &line[start..i];
        let digits_end = (i + 1..b.len())
            .find(|&k| !b[k].is_ascii_digit())
            .unwrap_or(b.len());
        let number = &line[i + 1..digits_end];
        let tsc_ok = sep == b':'
            || (digits_end < b.len()
                && b[digits_end] == b','
                && line[digits_end + 1..]
                    .split_once(')')
                    .is_some_and(|(c, _)| !c.is_empty() && c.bytes().all(|x| x.is_ascii_digit())));
        if before_ok && tsc_ok && has_extension(file) && !VENDOR.is_match(file) {
            return Some((file, number));
        }
        i = digits_end.max(i + 1);
    }
    None
}

/// True when the last component of `file` ends in `.ext` with 1 to 5 ASCII letters, after a name.
fn has_extension(file: &str) -> bool {
    let name = file.rsplit('/').next().unwrap_or(file);
    match name.rsplit_once('.') {
        Some((stem, ext)) => {
            !stem.is_empty()
                && (1..=5).contains(&ext.len())
                && ext.bytes().all(|c| c.is_ascii_alphabetic())
        }
        None => false,
    }
}

/// Which of `lines` (slices of `text`, in order) are notable. One prefilter pass over the whole
/// text finds the candidate lines (see [`candidate_lines`]); only those are checked by
/// [`is_notable`].
pub fn notable_lines(text: &str, lines: &[&str]) -> Vec<bool> {
    let mut flags = candidate_lines(text, lines);
    for (flag, line) in flags.iter_mut().zip(lines) {
        if *flag {
            *flag = is_notable(line);
        }
    }
    flags
}

/// Flags every line holding a match of [`NOTABLE`] or the shape of a source location
/// (`.ext:digit`, `.ext(digit`), and maybe a few more: a superset of the notable lines, found
/// without running a regex over the text. The words are found by [`NOTABLE_WORDS`] (literals in
/// any ASCII case, one of which every match of [`NOTABLE`] holds), the locations by a scan for
/// `:` and `(`. Text holding one of the two letters that case folding maps onto an ASCII letter
/// of the words (`ſ` onto `s`, the Kelvin sign onto `k`) is scanned with [`NOTABLE`] itself.
fn candidate_lines(text: &str, lines: &[&str]) -> Vec<bool> {
    let mut flags = vec![false; lines.len()];
    if lines.is_empty() {
        return flags;
    }
    {
        let mut lines_at = LineCursor::new(text, lines);
        match NOTABLE_WORDS.as_ref() {
            Some(words) if !folds_onto_ascii(text) => words
                .find_iter(text)
                .for_each(|m| flags[lines_at.line_of(m.start())] = true),
            _ => NOTABLE
                .find_iter(text)
                .for_each(|m| flags[lines_at.line_of(m.start())] = true),
        }
    }
    let b = text.as_bytes();
    let mut lines_at = LineCursor::new(text, lines);
    for i in memchr::memchr2_iter(b':', b'(', b) {
        if b.get(i + 1).is_some_and(u8::is_ascii_digit) && extension_before(b, i) {
            flags[lines_at.line_of(i)] = true;
        }
    }
    flags
}

/// Finds the line of increasing offsets of `text` by walking `lines` (its slices, in order)
/// forward: no table of line starts.
struct LineCursor<'a> {
    base: usize,
    lines: &'a [&'a str],
    at: usize,
}

impl<'a> LineCursor<'a> {
    fn new(text: &str, lines: &'a [&'a str]) -> Self {
        Self {
            base: text.as_ptr() as usize,
            lines,
            at: 0,
        }
    }

    /// The index of the last line starting at or before `offset` (offsets asked in order).
    fn line_of(&mut self, offset: usize) -> usize {
        let start = |l: &str| (l.as_ptr() as usize).saturating_sub(self.base);
        while self
            .lines
            .get(self.at + 1)
            .is_some_and(|l| start(l) <= offset)
        {
            self.at += 1;
        }
        self.at
    }
}

/// True when `b[..at]` ends with `.` and 1 to 5 ASCII letters (`.rs`, `.py`).
fn extension_before(b: &[u8], at: usize) -> bool {
    let letters = b[..at]
        .iter()
        .rev()
        .take(6)
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    (1..=5).contains(&letters) && at > letters && b[at - letters - 1] == b'.'
}

/// Literals, matched in any ASCII case, one of which every match of [`NOTABLE`] contains.
const NOTABLE_LITERALS: &[&str] = &[
    "error",
    "fail",
    "fatal",
    "panic",
    "exception",
    "traceback",
    "denied",
    "refused",
    "segmentation fault",
    "core dumped",
    "abort",
    "critical",
    "conflict",
    "assertion",
    "undefined reference",
    "not found",
    "no such file",
    "cannot",
    "unable to",
    "timeout",
    "time out",
    "timedout",
    "timed out",
    "err!",
    "✕",
    "✗",
    "✘",
];

/// The searcher of [`NOTABLE_LITERALS`]; `None` only if it could not be built, and then
/// [`NOTABLE`] scans instead.
static NOTABLE_WORDS: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(aho_corasick::AhoCorasickKind::DFA))
        .build(NOTABLE_LITERALS)
        .ok()
});

/// [`NOTABLE_LITERALS`] (in lower case), matched as they are in a lower-cased text; leftmost
/// first, the kind of search that has a prefilter.
static LOWER_WORDS: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostFirst)
        .build(NOTABLE_LITERALS)
        .ok()
});
/// Bytes of text lower-cased and searched at a time by [`problem_lines`] (then to the line's end).
const PROBLEM_WINDOW: usize = 64 << 10;

/// The structure of unrecognised text: line counts only. The view works from the lines themselves.
pub fn parse_text(lines: &[&str], notable: &[bool]) -> Custom {
    let notable = notable.iter().filter(|n| **n).count();
    let blank = lines.iter().filter(|l| l.trim().is_empty()).count();
    Custom {
        kind: "text".into(),
        data: serde_json::json!({ "lines": lines.len(), "blank_lines": blank, "notable_lines": notable }),
    }
}

/// A run of consecutive lines that are equal, or equal but for their digits.
struct Run<'a> {
    /// Index of its first line.
    start: usize,
    first: &'a str,
    last: &'a str,
    count: usize,
    identical: bool,
    notable: bool,
}

/// True when `a` and `b` are equal once every run of digits is taken as one digit (in their first
/// 256 bytes): progress lines, counters, timestamps.
fn same_but_digits(a: &str, b: &str) -> bool {
    let mut x = a.bytes().take(256).peekable();
    let mut y = b.bytes().take(256).peekable();
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(p), Some(q)) if p.is_ascii_digit() && q.is_ascii_digit() => {
                while x.next_if(u8::is_ascii_digit).is_some() {}
                while y.next_if(u8::is_ascii_digit).is_some() {}
            }
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

fn runs<'a>(lines: &[&'a str], notable: &[bool]) -> Vec<Run<'a>> {
    let mut out: Vec<Run<'a>> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let notable = notable.get(i).copied().unwrap_or(false);
        if let Some(r) = out.last_mut() {
            let same = r.last == *line;
            // Notable lines fold only when identical, so no distinct error or location disappears.
            if same || (!notable && !r.notable && same_but_digits(r.last, line)) {
                r.identical &= same;
                r.last = line;
                r.count += 1;
                continue;
            }
        }
        out.push(Run {
            start: i,
            first: line,
            last: line,
            count: 1,
            identical: true,
            notable,
        });
    }
    out
}

/// Head and tail runs always shown.
const EDGE: usize = 8;
/// Outputs with at most this many runs are shown whole.
const SMALL: usize = 2 * EDGE + 8;

/// Renders the generic view of `lines` into `sink`: head, the notable lines of the middle (each
/// distinct one once, with its count), tail. The tail's room is held back first: the last lines
/// say how a command ended.
pub fn render(lines: &[&str], notable: &[bool], sink: &mut Sink) {
    if is_path_list(lines) {
        render_paths(lines, sink);
        return;
    }
    let runs = runs(lines, notable);
    if runs.len() <= SMALL {
        push_runs(sink, &runs);
        return;
    }
    let tail = &runs[runs.len() - EDGE..];
    let tail_text: String = tail.iter().map(run_text).collect::<Vec<_>>().join("\n");
    let held = sink.hold(crate::tokens::count_tokens(&tail_text, sink.encoding()) + EDGE);
    push_runs(sink, &runs[..EDGE]);
    render_middle(&runs[EDGE..runs.len() - EDGE], sink);
    sink.release(held);
    push_runs(sink, tail);
}

/// True for a listing of paths (`find`, `ls -1`, `git ls-files`): many lines, nearly all one word
/// with a `/`.
fn is_path_list(lines: &[&str]) -> bool {
    let words = lines.iter().filter(|l| !l.trim().is_empty()).count();
    let paths = lines
        .iter()
        .filter(|l| l.contains('/') && !l.trim().contains(char::is_whitespace))
        .count();
    words >= 40 && paths * 10 >= words * 9
}

/// A path listing by directory, in natural order: each directory's first and last path and how
/// many it holds; other lines (errors such as `Permission denied`) kept.
fn render_paths(lines: &[&str], sink: &mut Sink) {
    let mut dirs: std::collections::BTreeMap<NaturalKey, Vec<&str>> = Default::default();
    let mut other: Vec<&str> = Vec::new();
    for line in lines {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        if t.contains(char::is_whitespace) {
            other.push(t);
            continue;
        }
        let dir = t.rsplit_once('/').map_or("", |(d, _)| d);
        dirs.entry(NaturalKey(dir.to_string())).or_default().push(t);
    }
    sink.force(&format!(
        "{} paths in {} directories",
        lines.len() - other.len(),
        dirs.len()
    ));
    push_all(
        sink,
        &other,
        |l| (*l).to_string(),
        |n, _| format!("+{n} more lines"),
    );
    let groups: Vec<(String, Vec<&str>)> = dirs
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(|a, b| natural_cmp(a, b));
            (k.0, v)
        })
        .collect();
    push_all(
        sink,
        &groups,
        |(_, paths)| match paths.len() {
            0..=3 => paths.join(" "),
            n => format!("{} … {} ({n})", paths[0], paths[n - 1]),
        },
        |n, rest| format!("+{n} more directories from {}/", rest[0].0),
    );
}

/// A string ordered naturally (`f2` before `f10`).
#[derive(PartialEq, Eq)]
struct NaturalKey(String);

impl Ord for NaturalKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        natural_cmp(&self.0, &other.0)
    }
}

impl PartialOrd for NaturalKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Compares runs of digits by value and everything else byte by byte.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (x, y) = (trim_zeros(&a[si..i]), trim_zeros(&b[sj..j]));
            let ord = x.len().cmp(&y.len()).then(x.cmp(y));
            if ord.is_ne() {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let k = d.iter().take_while(|c| **c == b'0').count();
    &d[k.min(d.len().saturating_sub(1))..]
}

fn push_runs(sink: &mut Sink, runs: &[Run<'_>]) {
    push_all(sink, runs, run_text, |_, rest| {
        let lines: usize = rest.iter().map(|r| r.count).sum();
        format!("… {lines} more lines from L{} …", rest[0].start + 1)
    });
}

/// The middle of a long output: notable runs only, identical ones counted once, gaps marked.
fn render_middle(middle: &[Run<'_>], sink: &mut Sink) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for r in middle.iter().filter(|r| r.notable) {
        *seen.entry(r.first).or_default() += r.count;
    }
    let mut gap = 0;
    let mut shown = 0;
    let mut left: Vec<usize> = Vec::new();
    for r in middle {
        match seen.get(r.first).copied() {
            Some(n) if r.notable && n > 0 => {
                seen.insert(r.first, 0);
                if !left.is_empty() {
                    left.push(r.start);
                    continue;
                }
                let run = Run { count: n, ..*r };
                let text = run_text(&run);
                let gap_line = gap_text(gap);
                let both = match &gap_line {
                    Some(g) => format!("{g}\n{text}"),
                    None => text,
                };
                if sink.push(&both) {
                    gap = 0;
                    shown += 1;
                } else {
                    left.push(r.start);
                }
            }
            _ => gap += r.count,
        }
    }
    if left.is_empty() {
        if let Some(g) = gap_text(gap) {
            sink.force(&g);
        }
        return;
    }
    sink.force(&format!(
        "… {} more notable lines (of {}) at {} …",
        left.len(),
        left.len() + shown,
        crate::budget::line_refs(left.iter().map(|i| i + 1))
    ));
}

fn gap_text(gap: usize) -> Option<String> {
    (gap > 0).then(|| format!("… {gap} line{} …", if gap == 1 { "" } else { "s" }))
}

fn shortened(line: &str, notable: bool) -> String {
    let max = if notable { 2000 } else { 300 };
    crate::text::shorten(line, max).into_owned()
}

fn run_text(r: &Run<'_>) -> String {
    if r.count == 1 {
        return shortened(r.first, r.notable);
    }
    if r.identical {
        return shortened(&format!("{}  [×{}]", r.first, r.count), r.notable);
    }
    // Lines that differ only in numbers: a progress display. Its last state is what matters.
    shortened(
        &format!("{}  [last of {} similar lines]", r.last, r.count),
        r.notable,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `problem_lines` finds what a check of every line finds, whatever the line ends, the
    /// case, the phrases that report an absence, and text whose letters fold onto ASCII.
    #[test]
    fn problem_lines_are_the_lines_a_check_of_each_finds() {
        // They are searched in lower-cased text.
        assert!(
            NOTABLE_LITERALS
                .iter()
                .all(|l| l.to_ascii_lowercase() == *l)
        );
        let texts = [
            "ok\nerror: boom\r\nfine\n0 errors\nFAILED tests\nlast line with a Timeout",
            "no problem here\n\n\n",
            "error at the start\nand ErRoR inside, error twice: error\n",
            "ſ folds\nerror: with a long s ſ\nnothing\n✗ cross\n",
            "",
            "\n",
            "2026-11-30 10:00:00,000 ERROR [billing] failed\r\n2026 INFO fine\r\n",
            "\x1b[31mERROR\x1b[0m in colour\n\x1b[32mfine\x1b[0m\n",
        ];
        // Longer than a window: problem lines on both sides of each window's end, and one
        // line longer than a window.
        let mut long = String::new();
        for i in 0..20_000 {
            if i % 997 == 0 || (1_700..1_720).contains(&i) {
                long.push_str(&format!("line {i}: Error in step {i}\r\n"));
            } else if i == 5_000 {
                long.push_str(&"x".repeat(70_000));
                long.push_str(" fatal\n");
            } else {
                long.push_str(&format!("line {i}: all good here\n"));
            }
        }
        let texts = texts.iter().copied().chain([long.as_str()]);
        for text in texts {
            let want: Vec<&str> = text
                .split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .filter(|l| has_problem_word(&crate::text::clean(l)))
                .collect();
            let got: Vec<&str> = problem_lines(text).into_iter().map(|r| &text[r]).collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn notable_lines_test() {
        assert!(is_notable("error: something"));
        assert!(is_notable("see src/main.rs:10"));
        assert!(!is_notable("test result: ok. 3 passed; 0 failed"));
        assert!(!is_notable("all good"));
        assert!(!is_notable("  at /rustc/abc/library/core/src/x.rs:5:1"));
    }

    #[test]
    fn folds_progress() {
        let lines = ["start", "10%", "20%", "30%", "done", "done", "done"];
        let mut sink = Sink::new(1000, crate::Encoding::O200kBase);
        render(&lines, &[false; 7], &mut sink);
        assert_eq!(
            sink.text(),
            "start\n30%  [last of 3 similar lines]\ndone  [×3]\n"
        );
    }

    #[test]
    fn bulk_notable_matches_per_line() {
        let text =
            "ok line\nerror: boom\nsee src/main.rs:10 here\nall good\n0 errors\nx.py(3,4): bad\n";
        let lines: Vec<&str> = text.lines().collect();
        let bulk = super::notable_lines(text, &lines);
        let each: Vec<bool> = lines.iter().map(|l| is_notable(l)).collect();
        assert_eq!(bulk, each);
        assert_eq!(bulk, [false, true, true, false, false, true]);
    }

    /// The regex the prefilter's location scan stands for.
    static LOCATION_SHAPE: LazyLock<Regex> = lazy_re!(r"\.[A-Za-z]{1,5}(?::\d|\(\d)");

    #[test]
    fn prefilter_flags_every_line_the_regexes_match() {
        let pieces = [
            "ok",
            "ERROR",
            "Errors",
            "failed",
            "FAILURE",
            "fatal",
            "Panicked",
            "exception",
            "Traceback",
            "denied",
            "refused",
            "segmentation fault",
            "core dumped",
            "aborted",
            "critical",
            "conflicts",
            "assertion",
            "undefined reference",
            "not found",
            "no such file",
            "cannot",
            "unable to",
            "timed out",
            "time out",
            "timeout",
            "FAIL",
            "npm ERR!",
            "✕",
            "✗",
            "✘",
            "ſegmentation fault",
            "tracebac\u{212a}",
            "no ſuch file",
            "src/a.rs:3",
            "a.ts(4,7)",
            "x.toolong:3",
            "v1.2:3",
            "10:30:00",
            ".py(",
            "é.rs:9",
            "0 errors",
            "... ok",
            "base64QUJDREVG+/==",
        ];
        // Without the two folding letters (the literals' path), then with them (the regex's).
        let ascii: Vec<&str> = pieces
            .iter()
            .copied()
            .filter(|p| !p.contains(['ſ', '\u{212a}']))
            .collect();
        for set in [&ascii[..], &pieces[..]] {
            let mut lines = Vec::new();
            for a in set {
                for b in set {
                    lines.push(format!("{a} {b}"));
                    lines.push(format!("{a}{b}"));
                }
            }
            let text = lines.join("\n");
            let lines: Vec<&str> = text.lines().collect();
            let flags = candidate_lines(&text, &lines);
            for (line, flag) in lines.iter().zip(&flags) {
                let wanted = NOTABLE.is_match(line) || LOCATION_SHAPE.is_match(line);
                assert!(*flag || !wanted, "{line:?} is not a candidate");
            }
            let bulk = notable_lines(&text, &lines);
            let each: Vec<bool> = lines.iter().map(|l| is_notable(l)).collect();
            assert_eq!(bulk, each);
        }
        // Without the two folding letters the words are found by the literals, not the regex.
        let plain = "tracebacK here\nall fine\nsee x.py:3\n";
        let lines: Vec<&str> = plain.lines().collect();
        assert_eq!(candidate_lines(plain, &lines), [true, false, true]);
    }

    #[test]
    fn locations_by_hand_match_the_pattern() {
        let cases = [
            "error at src/main.rs:10:5 here",
            "  --> src/lib.rs:3:9",
            "a.ts(4,7): error TS2322",
            "see ./pkg/m1.py:2",
            "  at /rustc/abc/library/core/src/x.rs:5:1",
            "node_modules/x/index.js:3:1 then src/app.js:9:2",
            "time 10:30:00 ok",
            "file.rs: no line",
            "v1.2:3 odd",
            "`src/q.rs:7`",
        ];
        for c in cases {
            let by_regex = LOCATION.captures_iter(c).find_map(|m| {
                let file = m.get(1)?.as_str();
                if VENDOR.is_match(file) {
                    return None;
                }
                let l = m.get(2).or_else(|| m.get(4))?.as_str();
                Some(format!("{file}:{l}"))
            });
            assert_eq!(user_location(c), by_regex, "{c}");
        }
    }

    #[test]
    fn path_listings_group_by_directory() {
        let lines: Vec<String> = (1..=3)
            .flat_map(|d| (1..=20).map(move |f| format!("tree/d{d}/f{f}.py")))
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut sink = Sink::new(1000, crate::Encoding::O200kBase);
        render(&lines, &vec![false; lines.len()], &mut sink);
        assert!(
            sink.text().contains("tree/d2/f1.py … tree/d2/f20.py (20)"),
            "{}",
            sink.text()
        );
        assert_eq!(natural_cmp("f2", "f10"), std::cmp::Ordering::Less);
    }

    #[test]
    fn digits_compare_as_runs() {
        assert!(same_but_digits("got 10 of 200", "got 9 of 2000"));
        assert!(!same_but_digits("got 10 of 200", "got 10 of 200 files"));
    }
}
