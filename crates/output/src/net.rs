//! The compact view's safety net: notable lines of the output that the parse does not account
//! for are appended to the view, so a parser gap costs tokens, not facts.
//!
//! It runs in three steps. [`scan`] reads each line by itself and marks the lines the net could
//! report (notable, not blank, not boilerplate such as rustc's source snippets and notes).
//! [`Coverage::uncovered`] keeps those the parse does not hold. [`report`] appends them, each
//! distinct text once. The first step needs no parse and the second no view, so
//! on large outputs they run on a second thread beside the parse and the render.

use foldhash::HashSet;

use crate::budget::{Sink, push_all};
use crate::generic;
use crate::parsed::{Diagnostic, ParsedOutput};

/// Most lines the safety net adds; past that it counts them.
const NET_LIMIT: usize = 200;

/// A line the safety net could report, found by [`Coverage::uncovered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NetLine<'a> {
    /// Its index in the output's lines.
    pub index: usize,
    /// The line without its surrounding white space.
    pub text: &'a str,
    /// The first location in the user's code it names: the file and the line number.
    pub location: Option<(&'a str, &'a str)>,
}

/// What [`scan`] found on a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Mark {
    /// Not a line the safety net reports.
    No,
    /// Notable for its words.
    Words,
    /// Names a location in the user's code.
    Location,
}

/// The lines of `text` (its `lines`, in order) the safety net could report: notable ones (see
/// [`generic::is_notable`]) that are neither blank nor [`boilerplate`]. Each line is read by
/// itself, so the boilerplate of large builds (three quarters of rustc's bytes) is never
/// searched for problem words. One byte a line, as the notable flags were.
pub(crate) fn scan(text: &str, lines: &[&str]) -> Vec<Mark> {
    scan_part(&generic::ProblemWords::for_text(text), lines)
}

/// [`scan`] of `lines`, a part of the text's lines: the scans of consecutive parts, joined in
/// order, are the scan of the whole.
pub(crate) fn scan_part(words: &generic::ProblemWords, lines: &[&str]) -> Vec<Mark> {
    lines
        .iter()
        .map(|line| {
            let t = line.trim();
            if t.is_empty() || boilerplate(t) {
                Mark::No
            } else if generic::find_user_location(t).is_some() {
                Mark::Location
            } else if words.has_problem_word(line) {
                Mark::Words
            } else {
                Mark::No
            }
        })
        .collect()
}

/// Appends `uncovered` lines (in order, from [`Coverage::uncovered`]) to the view: each distinct
/// text once, the first [`NET_LIMIT`] that the view does not already show, then how many more.
pub(crate) fn report(uncovered: &[NetLine<'_>], sink: &mut Sink) {
    let mut seen: HashSet<&str> = HashSet::default();
    let mut missing: Vec<(usize, &str)> = Vec::new();
    let mut extra = 0usize;
    for n in uncovered {
        let t = n.text;
        if !seen.insert(t) {
            continue;
        }
        if missing.len() >= NET_LIMIT {
            extra += 1;
        } else if !sink
            .text()
            .contains(crate::text::prefix_at_boundary(t, 200))
        {
            missing.push((n.index, t));
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
            let at = crate::budget::line_refs(rest.iter().map(|(i, _)| i + 1));
            format!("+{} more notable lines at {at}", n + extra)
        },
    );
    if extra > 0 && !sink.was_cut() {
        sink.force(&format!("+{extra} more notable lines"));
    }
}

/// What a parse accounts for: the locations and the texts it holds, borrowed from it.
pub(crate) struct Coverage<'a> {
    /// `(file, line)`, the file without a leading `./`.
    locations: HashSet<(&'a str, Option<u32>)>,
    /// Every text it holds, in its order (repeats kept): most outputs need none of them looked
    /// up, or a few, so a set of them (millions for a large build) is built only when many are.
    texts: Vec<&'a str>,
    /// Names of failing tests: a line naming one is about that failure.
    names: HashSet<&'a str>,
}

impl<'a> Coverage<'a> {
    pub(crate) fn of(output: &'a ParsedOutput) -> Self {
        let mut c = Self {
            locations: HashSet::default(),
            texts: Vec::new(),
            names: HashSet::default(),
        };
        match output {
            ParsedOutput::BuildOutput(b) => {
                return Self::of_build(&b.diagnostics, &b.summary, &b.artifacts);
            }
            ParsedOutput::TestResults(t) => {
                c.diagnostics(&t.diagnostics);
                for f in &t.failures {
                    if let Some(l) = &f.location {
                        c.location(l);
                    }
                    c.texts.push(&f.name);
                    c.names.insert(&f.name);
                    for m in &f.message {
                        if let Some((file, number)) = generic::find_user_location(m) {
                            c.locations
                                .insert((file.trim_start_matches("./"), line_number(number)));
                        }
                        c.texts.push(m);
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

    /// What a build's parse, or a part of one, accounts for: its diagnostics, summary and
    /// artifacts.
    pub(crate) fn of_build(
        diagnostics: &'a [Diagnostic],
        summary: &'a [String],
        artifacts: &'a [String],
    ) -> Self {
        let mut c = Self {
            locations: HashSet::default(),
            texts: Vec::new(),
            names: HashSet::default(),
        };
        c.diagnostics(diagnostics);
        c.texts
            .extend(summary.iter().chain(artifacts).map(String::as_str));
        c
    }

    /// Clears the marks of the lines this coverage holds. When it is the coverage of a part of
    /// the parse (a half of a cargo build, with the marks of that half's lines), every line it
    /// holds is held by the whole parse's coverage too: its locations and texts are among the
    /// whole's, and a line is held by a location or a text found. So [`Coverage::uncovered`]
    /// of the whole, given the cleared marks, keeps the lines it kept before; and when every
    /// mark is cleared the whole's coverage need not be built.
    pub(crate) fn clear_covered(&self, lines: &[&str], marks: &mut [Mark]) {
        let kept = self.uncovered(lines, marks);
        let mut kept = kept.iter().map(|n| n.index).peekable();
        for (i, mark) in marks.iter_mut().enumerate() {
            if kept.next_if_eq(&i).is_none() {
                *mark = Mark::No;
            }
        }
    }

    fn diagnostics(&mut self, list: &'a [Diagnostic]) {
        self.locations.reserve(list.len().min(1 << 16));
        self.texts.reserve_exact(list.len());
        for d in list {
            if let Some(l) = &d.location {
                self.location(l);
            }
            self.texts.push(&d.message);
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

    /// The lines marked by [`scan`] that the parse does not account for, in order.
    pub(crate) fn uncovered<'l>(&self, lines: &[&'l str], marks: &[Mark]) -> Vec<NetLine<'l>> {
        // First what the locations and names decide; the lines left are looked up in the texts.
        let mut left: Vec<(NetLine<'l>, bool)> = Vec::new();
        for ((index, line), mark) in lines.iter().enumerate().zip(marks) {
            let location = match mark {
                Mark::No => continue,
                Mark::Words => None,
                Mark::Location => generic::find_user_location(line.trim()),
            };
            let n = NetLine {
                index,
                text: line.trim(),
                location,
            };
            match self.decided(&n) {
                Some(true) => {}
                Some(false) => left.push((n, false)),
                None => left.push((n, true)),
            }
        }
        let asked = left.iter().filter(|(_, ask)| *ask).count();
        let texts = Texts::new(&self.texts, asked);
        left.into_iter()
            .filter(|(n, ask)| !ask || !self.held_in(n, &texts))
            .map(|(n, _)| n)
            .collect()
    }

    /// Whether the parse holds a scanned line (not boilerplate: [`scan`] left those out), when
    /// that is known without its texts.
    fn decided(&self, n: &NetLine<'_>) -> Option<bool> {
        if is_rule(n.text) {
            return None;
        }
        if !self.names.is_empty()
            && n.text
                .split_whitespace()
                .any(|w| self.names.contains(&w.trim_end_matches([':', ','])))
        {
            return Some(true);
        }
        if let Some((file, number)) = n.location {
            return Some(line_number(number).is_some_and(|n| {
                self.locations
                    .contains(&(file.trim_start_matches("./"), Some(n)))
            }));
        }
        None
    }

    /// Whether the parse holds a line [`Coverage::decided`] left open, by its texts.
    fn held_in(&self, n: &NetLine<'_>, texts: &Texts<'_, '_>) -> bool {
        let line = n.text;
        if is_rule(line) {
            // `==== 3 failed, 25 passed in 0.16s ====`: the summary the parse holds.
            let inner = line.trim_matches(|c: char| rule_char(c) || c == ' ');
            return self
                .texts
                .iter()
                .any(|t| !t.is_empty() && inner.starts_with(*t));
        }
        // `error[E0425]: cannot find value` is the diagnostic `cannot find value`.
        texts.contains(line)
            || line
                .split_once(": ")
                .is_some_and(|(head, rest)| head.len() < 40 && texts.contains(rest.trim()))
    }
}

/// The texts of a parse, to look lines up in: the list itself for a few lookups, a set built
/// from it for many.
enum Texts<'s, 'a> {
    Few(&'s [&'a str]),
    Many(HashSet<&'a str>),
}

impl<'s, 'a> Texts<'s, 'a> {
    /// Lookups of at most this many lines read the list (two lookups a line at most).
    const FEW: usize = 16;

    fn new(texts: &'s [&'a str], lines: usize) -> Self {
        if lines <= Self::FEW {
            Self::Few(texts)
        } else {
            Self::Many(texts.iter().copied().collect())
        }
    }

    fn contains(&self, t: &str) -> bool {
        match self {
            Self::Few(list) => list.contains(&t),
            Self::Many(set) => set.contains(t),
        }
    }
}

fn rule_char(c: char) -> bool {
    c == '=' || c == '_' || c == '-'
}

/// `=== FAILURES ===`, `---- t stdout ----`: a line that starts and ends with a rule's character.
fn is_rule(t: &str) -> bool {
    t.starts_with(rule_char) && t.ends_with(rule_char)
}

/// A line number as a location prints it (`12`, not `012` nor past `u32`).
fn line_number(digits: &str) -> Option<u32> {
    let n: u32 = digits.parse().ok()?;
    (digits.len() == 1 || !digits.starts_with('0')).then_some(n)
}

/// Lines that frame what a parse already holds: section rules (`=== FAILURES ===`,
/// `---- t stdout ----`, `failures:`), rustc's notes, source snippets and closing advice,
/// backtrace frames. The cheap tests on the first bytes come first: most lines of a large
/// build are snippets and notes.
pub(crate) fn boilerplate(t: &str) -> bool {
    let rule = |c: char| c == '=' || c == '_' || c == '-';
    if t.starts_with(rule) && t.ends_with(rule) {
        return t
            .trim_matches(|c: char| rule(c) || c == ' ')
            .split_whitespace()
            .count()
            <= 3;
    }
    if t.starts_with('|') || t.starts_with("= note: ") || t.starts_with("= help: ") {
        return true;
    }
    if t.ends_with(':') && !t.contains(' ') {
        return true;
    }
    // Both start with their digits (a frame's may be none): `12 | code`, `3: std::panicking`.
    let digit = t.starts_with(|c: char| c.is_ascii_digit());
    let snippet = digit
        && t.split_once(" |")
            .is_some_and(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()));
    let frame = (digit || t.starts_with(": "))
        && t.split_once(": ")
            .is_some_and(|(n, rest)| n.bytes().all(|b| b.is_ascii_digit()) && rest.contains("::"));
    snippet
        || frame
        || t.starts_with("Some errors have detailed explanations")
        || t.starts_with("For more information about ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// What [`scan`] must return: the notable lines of the whole-text scan, without the blank
    /// and boilerplate ones the safety net never reports, marked by what makes them notable.
    fn expected(text: &str, lines: &[&str]) -> Vec<Mark> {
        let notable = generic::notable_lines(text, lines);
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let t = l.trim();
                if !notable[i] || t.is_empty() || boilerplate(t) {
                    Mark::No
                } else if generic::find_user_location(t).is_some() {
                    Mark::Location
                } else {
                    Mark::Words
                }
            })
            .collect()
    }

    #[test]
    fn scan_keeps_the_notable_lines_that_are_not_boilerplate() {
        let mut texts: Vec<String> = crate::compact::tests::fixtures()
            .into_iter()
            .map(|(_, raw)| crate::text::clean(&raw).into_owned())
            .collect();
        texts.push(crate::compact::tests::cargo_output(300));
        // Letters that fold onto ASCII take the regex; `... ok` is harmless only at a line's end.
        texts.push(
            "ſegmentation fault here\n\u{212a}\ntest a ... ok\ntest b ... ok  \nerror: x\n  = note: error\n"
                .into(),
        );
        texts.push("a.rs(3,4): TIMED OUT\n12 | panic!()\n0: std::rt::lang_start\nok\n".into());
        for text in &texts {
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(scan(text, &lines), expected(text, &lines), "{text:.300}");
        }
    }

    #[test]
    fn few_and_many_lookups_give_the_same_answers() {
        let list = [
            "a",
            "unused variable: `x`",
            "",
            "a",
            "could not compile `shop`",
        ];
        let (few, many) = (Texts::new(&list, 0), Texts::new(&list, Texts::FEW + 1));
        assert!(matches!(few, Texts::Few(_)) && matches!(many, Texts::Many(_)));
        for q in ["a", "", "b", "unused variable: `x`", "unused variable", "A"] {
            assert_eq!(few.contains(q), many.contains(q), "{q:?}");
        }
        // A build whose failure lines outnumber the few: the set answers them (`0 failed`
        // is harmless).
        let mut raw = crate::compact::tests::cargo_output(50);
        for k in 0..40 {
            raw.push_str(&format!("step {k} failed badly\n"));
        }
        let (parsed, view) = crate::analyze(
            Some("cargo build"),
            &raw,
            &crate::Handle::default(),
            &crate::ViewOptions::default(),
        );
        let cover = Coverage::of(&parsed.output);
        let lines = crate::text::lines(&raw);
        let left = cover.uncovered(&lines, &scan(&raw, &lines));
        assert!(
            left.iter().any(|n| n.text == "step 39 failed badly"),
            "{left:?}"
        );
        assert!(view.text.contains("step 1 failed badly"), "{}", view.text);
    }

    #[test]
    fn boilerplate_is_what_it_was() {
        // The tests on the first bytes come first now; the answers are those of the plain rules.
        let plain = |t: &str| {
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
            let frame = t.split_once(": ").is_some_and(|(n, rest)| {
                n.bytes().all(|b| b.is_ascii_digit()) && rest.contains("::")
            });
            snippet
                || frame
                || t.starts_with("= note: ")
                || t.starts_with("= help: ")
                || t.starts_with("Some errors have detailed explanations")
                || t.starts_with("For more information about ")
        };
        let mut lines: Vec<String> = [
            "| x",
            "12 | let a",
            "12| x",
            "1a | x",
            " | x",
            ": a::b",
            "3: std::rt",
            "3: none",
            "x: a::b",
            "= note: x",
            "= help: y",
            "=== FAILURES ===",
            "--- a b c d e ---",
            "failures:",
            "a b:",
            "Some errors have detailed explanations: E0308.",
            "",
            "For more information about this error",
            "12 |",
            "7 | a | b",
            "1: 2: a::b",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (_, raw) in crate::compact::tests::fixtures() {
            lines.extend(
                crate::text::clean(&raw)
                    .lines()
                    .map(|l| l.trim().to_string()),
            );
        }
        for t in &lines {
            assert_eq!(boilerplate(t), plain(t), "{t:?}");
        }
    }
}
