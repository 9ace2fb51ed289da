//! The lines that name a problem in a part of an output that is not kept: the middle of an
//! exec's output longer than its answer holds, the start of one longer than the session's log
//! keeps, the middle of an input to `parse` too large to analyze whole.
//!
//! The part is given in pieces ([`Problems::piece`]), so it is scanned in constant memory
//! whatever its size. What is kept (the first [`FIRST`] and the last [`LAST`] lines that name a
//! problem, each with up to [`CONTEXT`] lines after it) goes into the analyzed text between
//! notes ([`Problems::write`]), and the views built from that text list every error wherever it
//! was printed.

use std::collections::VecDeque;

/// How the note on the middle left out of a long output starts, on a line of its own.
pub const MIDDLE_NOTE: &str = "\n[the part left out holds ";
/// Bytes a caller reads of a part at a time.
pub const PIECE: usize = 1 << 20;
/// Lines naming a problem kept: the first ones and the last ones.
pub const FIRST: usize = 192;
pub const LAST: usize = 64;
/// Lines kept after each of them (a compiler's `--> file:line:col`, a traceback's first frame).
const CONTEXT: usize = 2;
/// Longest piece of a line carried from one read to the next.
const LINE: usize = 4096;
/// Longest line kept, in characters.
const SHOWN: usize = 500;

/// What a part of an output holds: its bytes and lines, and the lines that name a problem (an
/// error or failure word, as the views' safety net reads them).
#[derive(Default)]
pub struct Problems {
    /// Bytes given.
    pub bytes: u64,
    /// Line ends in them.
    pub lines: u64,
    /// Lines that name a problem.
    pub found: u64,
    /// The first ones kept, each with the lines after it.
    pub first: Vec<String>,
    /// The last ones kept past the first.
    pub last: VecDeque<String>,
    /// Lines still to add after the newest kept line.
    context: usize,
    /// The end of the previous piece's last line, when that piece did not end one.
    carry: Vec<u8>,
    /// Where the next byte scanned should be: a piece elsewhere follows a gap.
    next: Option<u64>,
    /// Lines still to skip before scanning (the exec's echoed command line).
    skip_lines: usize,
}

impl Problems {
    /// Problems of a part that starts with `skip_lines` lines not to scan.
    pub fn skipping(skip_lines: usize) -> Self {
        Self {
            skip_lines,
            ..Self::default()
        }
    }

    /// Takes `data`, the part's bytes at offset `at` (a log's, a file's): pieces are given in
    /// order, and one that does not start where the previous ended follows bytes lost.
    pub fn piece(&mut self, at: u64, data: &[u8]) {
        if self.next.is_some_and(|next| next != at) {
            // Bytes lost in between: no line runs across them.
            self.carry.clear();
            self.context = 0;
        }
        self.next = Some(at + data.len() as u64);
        self.bytes += data.len() as u64;
        let mut data = data;
        while self.skip_lines > 0 {
            match memchr::memchr(b'\n', data) {
                Some(i) => {
                    data = &data[i + 1..];
                    self.skip_lines -= 1;
                }
                None => return,
            }
        }
        self.lines += memchr::memchr_iter(b'\n', data).count() as u64;
        let Some(last_nl) = memchr::memrchr(b'\n', data) else {
            let room = LINE.saturating_sub(self.carry.len());
            self.carry.extend_from_slice(&data[..room.min(data.len())]);
            return;
        };
        let mut block = std::mem::take(&mut self.carry);
        block.extend_from_slice(&data[..=last_nl]);
        let rest = &data[last_nl + 1..];
        self.carry.extend_from_slice(&rest[..rest.len().min(LINE)]);
        self.read_lines(&block);
    }

    /// Scans the piece of a line left at the end.
    pub fn end(&mut self) {
        let carry = std::mem::take(&mut self.carry);
        if !carry.is_empty() {
            self.read_lines(&carry);
        }
    }

    /// Reads whole lines (and, at the end, a piece of one).
    fn read_lines(&mut self, block: &[u8]) {
        let text = String::from_utf8_lossy(block);
        let mut at = 0;
        for line in crate::generic::problem_lines(&text) {
            self.add_context(&text[at..line.start]);
            self.found += 1;
            self.keep(&text[line.clone()]);
            at = memchr::memchr(b'\n', &text.as_bytes()[line.end..])
                .map_or(text.len(), |i| line.end + i + 1);
        }
        self.add_context(&text[at..]);
    }

    /// The first lines of `text` as context of the newest kept line, as many as it still takes.
    fn add_context(&mut self, text: &str) {
        for line in text.split_inclusive('\n').take(self.context) {
            let shown = shown_line(line);
            if shown.trim().is_empty() {
                // A blank line ends a diagnostic.
                self.context = 0;
                return;
            }
            if let Some(group) = self.last.back_mut().or(self.first.last_mut()) {
                group.push('\n');
                group.push_str(&shown);
            }
            self.context -= 1;
        }
    }

    fn keep(&mut self, line: &str) {
        let shown = shown_line(line);
        if self.first.len() < FIRST {
            self.first.push(shown);
        } else {
            if self.last.len() == LAST {
                self.last.pop_front();
            }
            self.last.push_back(shown);
        }
        self.context = CONTEXT;
    }

    /// Appends, to an answer's text, a note starting with `note` that says what the part held,
    /// then the lines kept, then a note naming what comes next (`then`).
    pub fn write(&self, out: &mut String, note: &str, then: &str) {
        let lines = self.lines;
        if self.found == 0 {
            out.push_str(&format!(
                "{note}{lines} lines; none of them names a problem]\n"
            ));
            return;
        }
        let kept = (self.first.len() + self.last.len()) as u64;
        let which = if kept == self.found {
            format!("{} of them name a problem and follow here", self.found)
        } else {
            format!(
                "{} of them name a problem: the first {} and the last {} follow here",
                self.found,
                self.first.len(),
                self.last.len()
            )
        };
        out.push_str(&format!(
            "{note}{lines} lines; {which}, each with up to {CONTEXT} lines after it]\n"
        ));
        let mut groups = self.first.iter().peekable();
        while let Some(g) = groups.next() {
            out.push_str(g);
            out.push('\n');
            if groups.peek().is_none() && !self.last.is_empty() {
                out.push_str(&format!(
                    "[... {} more lines like these ...]\n",
                    self.found - kept
                ));
            }
        }
        for g in &self.last {
            out.push_str(g);
            out.push('\n');
        }
        out.push_str(&format!("[end of the lines from that part; {then}]\n"));
    }
}

/// A line as the answer shows it: cleaned of escapes, without its line end, at most [`SHOWN`]
/// characters.
fn shown_line(line: &str) -> String {
    let line = line.trim_end_matches(['\r', '\n']);
    let cleaned = crate::text::clean(line);
    crate::text::shorten(&cleaned, SHOWN).into_owned()
}
