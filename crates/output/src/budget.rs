//! The token budget a view is written under: every line a renderer adds is counted as it is
//! added, so a view stops growing at its budget whatever the size of the input.
//!
//! Renderers write their sections in priority order (outcome, errors and failures, final status,
//! grouped warnings, the rest). A section stops at its first line that does not fit and says, with
//! a forced line, how many items it left out and where they are. Forced lines (the outcome line,
//! those notices) are small and counted too; the budget keeps a reserve for them.

use crate::tokens::{Encoding, count_tokens};

/// Default token budget of a view.
pub const DEFAULT_BUDGET: usize = 1500;
/// Smallest budget honoured: the outcome line and a few notices must fit.
pub const MIN_BUDGET: usize = 200;
/// Tokens kept back from the sections for forced lines and the footer.
const RESERVE: usize = 80;

/// A view being written under a token budget.
///
/// Lines are counted lazily: a line has at most as many tokens as bytes (every token of the
/// vocabularies is at least one byte, and the pieces a text is split into cover it once), so
/// while the lines' byte lengths fit, every decision the exact counts would make is known
/// without counting. The first decision the byte bound cannot make counts every line written so
/// far and every line after it exactly. The text is the same either way; a small view of a
/// large output is written without loading a vocabulary.
pub struct Sink {
    out: String,
    /// Tokens written so far when `exact`, else an upper bound of them.
    used: usize,
    /// True once lines are counted; until then `ends` keeps where each line ends in `out`.
    exact: bool,
    ends: Vec<usize>,
    limit: usize,
    encoding: Encoding,
    lines: usize,
    refused: bool,
}

impl Sink {
    /// An empty view with `budget` tokens (at least [`MIN_BUDGET`]).
    pub fn new(budget: usize, encoding: Encoding) -> Self {
        Self {
            out: String::new(),
            used: 0,
            exact: false,
            ends: Vec::new(),
            limit: budget.max(MIN_BUDGET) - RESERVE,
            encoding,
            lines: 0,
            refused: false,
        }
    }

    /// A sink that counts every line as it comes, as every sink did before lines were counted
    /// lazily: the tests check the two decide alike.
    #[cfg(test)]
    fn counting_every_line(budget: usize, encoding: Encoding) -> Self {
        let mut sink = Self::new(budget, encoding);
        sink.exact = true;
        sink
    }

    /// Counts the lines written so far, once: from now on every line is counted as it comes.
    fn count_exactly(&mut self) {
        if self.exact {
            return;
        }
        let mut start = 0;
        self.used = 0;
        for &end in &self.ends {
            // Each line was written with its newline, which is not counted.
            self.used += count_tokens(&self.out[start..end - 1], self.encoding) + 1;
            start = end;
        }
        self.ends = Vec::new();
        self.exact = true;
    }

    /// Adds `line` if it fits in the budget; returns false (and adds nothing) otherwise.
    pub fn push(&mut self, line: &str) -> bool {
        // The bound decides when the line's bytes fit: the counts would fit then too.
        // (`used + len + 1 <= limit`: the line and its newline.)
        if !self.exact && self.used + line.len() < self.limit {
            self.append(line, line.len() + 1);
            return true;
        }
        self.count_exactly();
        if self.used >= self.limit {
            self.refused = true;
            return false;
        }
        let tokens = count_tokens(line, self.encoding) + 1;
        if self.used + tokens > self.limit {
            self.refused = true;
            return false;
        }
        self.append(line, tokens);
        true
    }

    /// Adds `line`, or as much of it as fits (cut after a word, saying how much was cut) when at
    /// least a few tokens of room are left. Returns false when nothing was added.
    pub fn push_cut(&mut self, line: &str) -> bool {
        if self.push(line) {
            return true;
        }
        // A refused line was counted exactly (above): `used` is exact here.
        let room = self.limit.saturating_sub(self.used);
        if room < 24 {
            return false;
        }
        // About three bytes a token for text like this; shrink until it fits.
        let mut take = (room * 3).min(line.len());
        while take > 0 {
            let head = crate::text::prefix_at_boundary(line, take);
            let head = head.rfind(' ').map_or(head, |i| &head[..i]);
            let cut = format!("{head} … [+{} bytes]", line.len() - head.len());
            let tokens = count_tokens(&cut, self.encoding) + 1;
            if self.used + tokens <= self.limit {
                self.append(&cut, tokens);
                return true;
            }
            take = take * 3 / 4;
        }
        false
    }

    /// Adds `line` whatever the budget: outcome lines and notices of what was left out.
    pub fn force(&mut self, line: &str) {
        let tokens = if self.exact {
            count_tokens(line, self.encoding) + 1
        } else {
            line.len() + 1
        };
        self.append(line, tokens);
    }

    /// Writes `line` and its newline, `tokens` (exact, or its bound until lines are counted).
    fn append(&mut self, line: &str, tokens: usize) {
        self.out.push_str(line);
        self.out.push('\n');
        if !self.exact {
            self.ends.push(self.out.len());
        }
        self.used += tokens;
        self.lines += 1 + memchr::memchr_iter(b'\n', line.as_bytes()).count();
    }

    /// Holds back up to `tokens` of the room left (for a section written later); returns what was
    /// held, to be given to [`Sink::release`].
    pub fn hold(&mut self, tokens: usize) -> usize {
        self.count_exactly();
        let room = self.limit.saturating_sub(self.used);
        let held = tokens.min(room);
        self.limit -= held;
        held
    }

    /// Gives back room held by [`Sink::hold`].
    pub fn release(&mut self, held: usize) {
        self.limit += held;
    }

    /// The vocabulary lines are counted in.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// True while the sections still have room.
    pub fn has_room(&mut self) -> bool {
        if self.used < self.limit {
            return true;
        }
        self.count_exactly();
        self.used < self.limit
    }

    /// True when some line was refused for lack of room.
    pub fn was_cut(&self) -> bool {
        self.refused
    }

    /// Tokens written so far (each line with its newline).
    pub fn used(&mut self) -> usize {
        self.count_exactly();
        self.used
    }

    /// Lines written so far.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// The text written so far.
    pub fn text(&self) -> &str {
        &self.out
    }

    /// The view's text.
    pub fn into_text(self) -> String {
        self.out
    }
}

/// Writes `items` one line each while they fit; the rest is summed up by `rest(n_left, first_left)`
/// on one forced line. Returns how many were written.
pub fn push_all<T>(
    sink: &mut Sink,
    items: &[T],
    line: impl Fn(&T) -> String,
    rest: impl Fn(usize, &[T]) -> String,
) -> usize {
    for (i, item) in items.iter().enumerate() {
        if !sink.push(&line(item)) {
            sink.force(&rest(items.len() - i, &items[i..]));
            return i;
        }
    }
    items.len()
}

/// Line references `L<n>, L<m>, ...` to the first ten of `numbers` (1-based line numbers), as
/// the lines a view left out are named.
pub(crate) fn line_refs(numbers: impl IntoIterator<Item = usize>) -> String {
    numbers
        .into_iter()
        .take(10)
        .map(|n| format!("L{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// One step of writing a view.
    #[derive(Debug, Clone, Copy)]
    enum Step<'a> {
        Push(&'a str),
        PushCut(&'a str),
        Force(&'a str),
        Hold(usize),
        Release,
    }

    /// What a step returned, and the sink after it.
    fn run(sink: &mut Sink, step: Step<'_>, held: &mut Vec<usize>) -> (usize, bool, usize) {
        let r = match step {
            Step::Push(l) => usize::from(sink.push(l)),
            Step::PushCut(l) => usize::from(sink.push_cut(l)),
            Step::Force(l) => {
                sink.force(l);
                0
            }
            Step::Hold(n) => {
                let h = sink.hold(n);
                held.push(h);
                h
            }
            Step::Release => {
                if let Some(h) = held.pop() {
                    sink.release(h);
                }
                0
            }
        };
        (r, sink.was_cut(), sink.lines())
    }

    #[test]
    fn lines_counted_lazily_decide_as_lines_counted_at_once() {
        // Every fixture's lines written into views of several budgets, pushed, cut, forced
        // and held in turn: the lazily counted sink returns what the sink that counts every
        // line returns, at every step, and ends with the same text and count.
        // Then texts of many tokens a byte, into fresh sinks: a line of two bytes a token
        // longer than the budget first, and lines of one byte a token (the bound is exact
        // there) filling the budget to its last token.
        let fixtures = crate::compact::tests::fixtures();
        let long = "word ".repeat(3000);
        let wide = "日本語のテキスト ".repeat(200);
        let mut texts: Vec<String> = fixtures.into_iter().map(|(_, raw)| raw).collect();
        texts.push(format!("{}\nx\n", "a b c d e f g h ".repeat(500)));
        texts.push(["x", "7", "!", ""].repeat(1000).join("\n"));
        for raw in &texts {
            let mut lines: Vec<&str> = raw.lines().collect();
            lines.extend([long.as_str(), wide.as_str(), "", "x"]);
            for (budget, holds) in [
                (MIN_BUDGET, false),
                (300, true),
                (DEFAULT_BUDGET, false),
                (DEFAULT_BUDGET, true),
            ] {
                for enc in [Encoding::O200kBase, Encoding::Cl100kBase] {
                    let mut lazy = Sink::new(budget, enc);
                    let mut eager = Sink::counting_every_line(budget, enc);
                    let (mut held_lazy, mut held_eager) = (Vec::new(), Vec::new());
                    for (i, line) in lines.iter().enumerate() {
                        let step = match i % 11 {
                            3 => Step::PushCut(line),
                            5 => Step::Force(line),
                            7 if holds => Step::Hold(line.len() % 50),
                            9 if holds => Step::Release,
                            _ => Step::Push(line),
                        };
                        assert_eq!(
                            run(&mut lazy, step, &mut held_lazy),
                            run(&mut eager, step, &mut held_eager),
                            "{step:?} at {i}, budget {budget}, {enc:?}"
                        );
                        assert_eq!(lazy.has_room(), eager.has_room());
                    }
                    assert_eq!(lazy.used(), eager.used());
                    assert_eq!(lazy.text(), eager.text());
                }
            }
        }
    }

    #[test]
    fn stops_at_budget_and_reports_the_rest() {
        let mut sink = Sink::new(MIN_BUDGET, Encoding::O200kBase);
        let items: Vec<String> = (0..1000)
            .map(|i| format!("line {i} with some words"))
            .collect();
        let shown = push_all(&mut sink, &items, Clone::clone, |n, rest| {
            format!("+{n} more from {}", rest[0])
        });
        assert!(shown > 5 && shown < 100, "{shown}");
        assert!(sink.used() <= MIN_BUDGET, "{}", sink.used());
        let text = sink.into_text();
        assert!(
            text.ends_with(&format!(
                "+{} more from line {shown} with some words\n",
                1000 - shown
            )),
            "{text}"
        );
    }
}
