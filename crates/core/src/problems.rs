//! The lines of an exec's output that name a problem, found in the parts its answer does not
//! hold: the middle of an output longer than `max_output_bytes`, and the start of one longer
//! than the session's log keeps (scanned as the log drops it, see [`OutputLog::watch_from`]).
//!
//! A part is read from the log in pieces of [`READ`] bytes, so an output of any size is
//! scanned in constant memory. What is kept (the first [`FIRST`] and the last [`LAST`] lines
//! that name a problem, each with up to [`CONTEXT`] lines after it) goes into the answer's text
//! between notes, and the views are built from that text: they list every error wherever it
//! was printed.

use std::collections::VecDeque;

use crate::log::OutputLog;
use crate::text;

/// How the note on the middle left out of a long output starts, on a line of its own.
pub(crate) const MIDDLE_NOTE: &str = "\n[the part left out holds ";
/// How an answer whose output's start the log no longer holds starts.
pub(crate) const DROPPED_NOTE: &str = "[the start of this output is no longer in the session's log";
/// Bytes read from the log at a time.
const READ: usize = 1 << 20;
/// Lines naming a problem kept: the first ones and the last ones.
pub(crate) const FIRST: usize = 192;
pub(crate) const LAST: usize = 64;
/// Lines kept after each of them (a compiler's `--> file:line:col`, a traceback's first frame).
const CONTEXT: usize = 2;
/// Longest piece of a line carried from one read to the next.
const LINE: usize = 4096;
/// Longest line kept, in characters.
const SHOWN: usize = 500;

/// What a part of an output holds: its bytes and lines, and the lines that name a problem (an
/// error or failure word, as the views' safety net reads them).
#[derive(Default)]
pub(crate) struct Problems {
    pub bytes: u64,
    pub lines: u64,
    pub found: u64,
    pub first: Vec<String>,
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
    pub(crate) fn skipping(skip_lines: usize) -> Self {
        Self {
            skip_lines,
            ..Self::default()
        }
    }

    /// Scans log bytes `from..to` alone.
    pub(crate) fn of(log: &OutputLog, from: u64, to: u64) -> Self {
        let mut p = Self::default();
        p.scan(log, from, to);
        p.end();
        p
    }

    /// Scans log bytes `from..to`, after the parts scanned before.
    pub(crate) fn scan(&mut self, log: &OutputLog, from: u64, to: u64) {
        let mut pos = from;
        while pos < to {
            let Ok(chunk) = log.read(pos, READ.min((to - pos) as usize)) else {
                break;
            };
            if chunk.data.is_empty() || chunk.start >= to {
                break;
            }
            let mut data = chunk.data;
            data.truncate((to - chunk.start) as usize);
            pos = chunk.start + data.len() as u64;
            self.piece(chunk.start, &data);
        }
    }

    /// Takes `data`, the bytes at log offset `at`.
    fn piece(&mut self, at: u64, data: &[u8]) {
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
    pub(crate) fn end(&mut self) {
        let carry = std::mem::take(&mut self.carry);
        if !carry.is_empty() {
            self.read_lines(&carry);
        }
    }

    /// Reads whole lines (and, at the end, a piece of one).
    fn read_lines(&mut self, block: &[u8]) {
        let text = String::from_utf8_lossy(block);
        let mut at = 0;
        for line in ai_session_output::generic::problem_lines(&text) {
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
    pub(crate) fn write(&self, out: &mut String, note: &str, then: &str) {
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
    let cleaned = text::clean(line.as_bytes());
    let cleaned = cleaned.trim_end_matches(['\r', '\n']);
    ai_session_output::text::shorten(cleaned, SHOWN).into_owned()
}

/// True when `output` holds a note of this module: the text analyzed is not the whole output.
pub(crate) fn has_note(output: &str) -> bool {
    output.starts_with(DROPPED_NOTE)
        || memchr::memmem::find(output.as_bytes(), MIDDLE_NOTE.as_bytes()).is_some()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Lines of `n` bytes (line end included) of the log's shape, ending CR LF.
    fn line(text: &str, n: usize) -> Vec<u8> {
        let mut l = text.as_bytes().to_vec();
        l.resize(n - 2, b'.');
        l.extend_from_slice(b"\r\n");
        l
    }

    /// The part is read in pieces: lines that name a problem are found wherever the
    /// pieces end, their next lines come with them, the lines are counted, and a full answer
    /// lists the first and the last ones kept with how many more there were.
    #[test]
    fn a_part_is_scanned_piece_by_piece_for_every_problem_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = OutputLog::create(dir.path(), 64 << 20, None).unwrap();
        let mut data = Vec::new();
        let mut errors = Vec::new();
        // 100-byte lines: a read of 1 MiB ends inside line 10,485; errors on both sides of
        // that and of the next reads' ends.
        for i in 0..40_000usize {
            if matches!(i, 10_484..=10_486 | 20_970 | 31_456 | 39_999) {
                errors.push(i);
                data.extend(line(&format!("\x1b[31mERROR\x1b[0m job {i}"), 100));
            } else if i > 0 && errors.last() == Some(&(i - 1)) {
                data.extend(line(&format!("  at step {i}"), 100));
            } else {
                data.extend(line(&format!("INFO job {i} done"), 100));
            }
        }
        log.append(&data).unwrap();
        let m = Problems::of(&log, 0, data.len() as u64);
        assert_eq!(m.lines, 40_000);
        assert_eq!(m.found, errors.len() as u64);
        let kept: Vec<&String> = m.first.iter().chain(&m.last).collect();
        assert_eq!(kept.len(), errors.len());
        for (group, i) in kept.iter().zip(&errors) {
            let want = format!("ERROR job {i}.");
            assert!(group.starts_with(&want), "{group:?}");
            // The line after it, unless that line is a problem of its own or there is none.
            if !errors.contains(&(i + 1)) && *i != 39_999 {
                assert!(
                    group.contains(&format!("\n  at step {}", i + 1)),
                    "{group:?}"
                );
            }
        }

        // More than the answer keeps: the first and the last, and how many in between.
        let mut many = Vec::new();
        for i in 0..1_000 {
            many.extend(line(&format!("error: case {i}"), 40));
        }
        let dir = tempfile::tempdir().unwrap();
        let mut log = OutputLog::create(dir.path(), 64 << 20, None).unwrap();
        log.append(&many).unwrap();
        let m = Problems::of(&log, 0, many.len() as u64);
        assert_eq!(m.found, 1_000);
        assert_eq!(m.first.len(), FIRST);
        assert_eq!(m.last.len(), LAST);
        assert!(m.first[0].starts_with("error: case 0"));
        assert!(m.last.back().unwrap().starts_with("error: case 999"));
        let mut out = String::new();
        m.write(&mut out, "[part: ", "then");
        assert!(
            out.contains("1000 of them name a problem: the first 192 and the last 64"),
            "{out}"
        );
        assert!(out.contains(&format!("[... {} more lines like these ...]", 1_000 - 256)));
    }

    /// A log that drops the start of a watched output scans it first: the lines that name a
    /// problem are kept (not the echoed command line), however much the log dropped.
    #[test]
    fn a_watched_log_keeps_the_problems_of_what_it_drops() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = OutputLog::create(dir.path(), 64 << 10, None).unwrap();
        log.append(b"old prompt $ ").unwrap();
        let from = log.end();
        log.watch_from(from, 1);
        log.append(b"echo error in the command line\r\n").unwrap();
        for i in 0..20_000u32 {
            let line = if i % 5_000 == 7 {
                format!("ERROR step {i} failed\r\n  at job.py:{i}\r\n")
            } else {
                format!("INFO step {i} done\r\n")
            };
            log.append(line.as_bytes()).unwrap();
        }
        assert!(log.start() > from + 200_000, "the log dropped the start");
        let (at, p) = log.take_watch().unwrap();
        assert_eq!(at, from);
        assert!(p.bytes > 0 && p.bytes <= log.start() - from, "{}", p.bytes);
        let kept: Vec<&String> = p.first.iter().collect();
        let dropped_errors: Vec<u32> = (0..20_000u32)
            .filter(|i| i % 5_000 == 7)
            .filter(|i| {
                kept.iter()
                    .any(|k| k.starts_with(&format!("ERROR step {i} failed")))
            })
            .collect();
        assert_eq!(p.found as usize, dropped_errors.len(), "{kept:?}");
        assert!(!dropped_errors.is_empty());
        assert!(kept.iter().all(|k| !k.contains("command line")), "{kept:?}");
        assert!(kept[0].contains("\n  at job.py:7"), "{kept:?}");
        // Taken once.
        assert!(log.take_watch().is_none());
    }
}
