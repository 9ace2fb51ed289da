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
pub struct Sink {
    out: String,
    used: usize,
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
            limit: budget.max(MIN_BUDGET) - RESERVE,
            encoding,
            lines: 0,
            refused: false,
        }
    }

    /// Adds `line` if it fits in the budget; returns false (and adds nothing) otherwise.
    pub fn push(&mut self, line: &str) -> bool {
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
        let tokens = count_tokens(line, self.encoding) + 1;
        self.append(line, tokens);
    }

    fn append(&mut self, line: &str, tokens: usize) {
        self.out.push_str(line);
        self.out.push('\n');
        self.used += tokens;
        self.lines += 1 + memchr::memchr_iter(b'\n', line.as_bytes()).count();
    }

    /// Holds back up to `tokens` of the room left (for a section written later); returns what was
    /// held, to be given to [`Sink::release`].
    pub fn hold(&mut self, tokens: usize) -> usize {
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
    pub fn has_room(&self) -> bool {
        self.used < self.limit
    }

    /// True when some line was refused for lack of room.
    pub fn was_cut(&self) -> bool {
        self.refused
    }

    /// Tokens written so far (each line with its newline).
    pub fn used(&self) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

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
