//! What `attach` lets through from a session to the person's terminal.
//!
//! A program in the session may print sequences that make the person's terminal act or
//! answer: set the system clipboard (OSC 52), or ask a question (device attributes, cursor
//! position, window title and size reports, colour and capability queries) whose answer the
//! terminal types back into the session as if the person had, which a hostile program can use
//! to inject keystrokes. Those are dropped; every other byte passes unchanged and in order,
//! across any split between chunks. A sequence longer than [`MAX_SEQUENCE`] is dropped whole
//! (as xterm abandons over-long strings), so memory stays bounded.

/// The longest escape sequence kept while it is being read.
pub const MAX_SEQUENCE: usize = 64 * 1024;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Esc,
    Csi,
    /// OSC or DCS string, until BEL (OSC only) or ST (`ESC \`).
    Str,
    /// Saw ESC inside a string: `\` ends it.
    StrEsc,
}

/// The filter, one per attached terminal.
#[derive(Debug)]
pub struct OutputGuard {
    allow_clipboard: bool,
    state: State,
    seq: Vec<u8>,
    /// The current sequence outgrew [`MAX_SEQUENCE`]: swallow it to its end.
    overflow: bool,
}

impl OutputGuard {
    pub fn new(allow_clipboard: bool) -> Self {
        OutputGuard {
            allow_clipboard,
            state: State::Ground,
            seq: Vec::new(),
            overflow: false,
        }
    }

    /// Appends to `out` what of `input` may reach the terminal.
    pub fn filter(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            match self.state {
                State::Ground => {
                    if b == ESC {
                        self.start(b);
                    } else {
                        out.push(b);
                    }
                }
                State::Esc => self.after_esc(b, out),
                State::Csi => {
                    self.push(b);
                    if (0x40..=0x7e).contains(&b) {
                        self.finish(out);
                    }
                }
                State::Str => {
                    if b == BEL {
                        self.push(b);
                        self.finish(out);
                    } else if b == ESC {
                        self.state = State::StrEsc;
                    } else {
                        self.push(b);
                    }
                }
                State::StrEsc => {
                    if b == b'\\' {
                        self.push(ESC);
                        self.push(b);
                        self.finish(out);
                    } else {
                        // Not a terminator: the string was cut by a new sequence.
                        self.start(ESC);
                        self.after_esc(b, out);
                    }
                }
            }
        }
    }

    /// The byte after an ESC: it says which kind of sequence this is.
    fn after_esc(&mut self, b: u8, out: &mut Vec<u8>) {
        self.push(b);
        match b {
            b'[' => self.state = State::Csi,
            b']' | b'P' | b'_' | b'^' | b'X' => self.state = State::Str,
            // Intermediates (charset designations and the like): one more byte.
            0x20..=0x2f => {}
            _ => self.finish(out),
        }
    }

    fn start(&mut self, b: u8) {
        self.seq.clear();
        self.overflow = false;
        self.seq.push(b);
        self.state = State::Esc;
    }

    fn push(&mut self, b: u8) {
        if self.seq.len() >= MAX_SEQUENCE {
            self.overflow = true;
            return;
        }
        self.seq.push(b);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.state = State::Ground;
        if !self.overflow && self.allowed() {
            out.extend_from_slice(&self.seq);
        }
        self.seq.clear();
        self.overflow = false;
    }

    /// Whether the complete sequence in `seq` may reach the terminal.
    fn allowed(&self) -> bool {
        let seq = &self.seq[..];
        match seq.get(1) {
            Some(b'[') => csi_allowed(&seq[2..]),
            Some(b']') => self.osc_allowed(&seq[2..]),
            Some(b'P') => dcs_allowed(&seq[2..]),
            // DECID asks the terminal to identify itself.
            Some(b'Z') => false,
            _ => true,
        }
    }

    fn osc_allowed(&self, body: &[u8]) -> bool {
        let body = strip_terminator(body);
        let number: Vec<u8> = body
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .collect();
        if number == b"52" {
            return self.allow_clipboard;
        }
        // `OSC 4;1;?`, `OSC 10;?`, `OSC 11;?`: colour queries the terminal answers.
        !body.windows(2).any(|w| w == b";?")
    }
}

fn strip_terminator(body: &[u8]) -> &[u8] {
    body.strip_suffix(&[ESC, b'\\'])
        .or_else(|| body.strip_suffix(&[BEL]))
        .unwrap_or(body)
}

/// CSI sequences that ask the terminal for an answer: device attributes (`c`), status and
/// cursor position reports (`5n`, `6n`, `?6n`), window reports (`t` with 11, 13-21), mode
/// requests (`$p`), the keyboard protocol query (`?u`).
fn csi_allowed(body: &[u8]) -> bool {
    let Some((&last, params)) = body.split_last() else {
        return true;
    };
    let first: u32 = params
        .iter()
        .skip_while(|b| !b.is_ascii_digit())
        .take_while(|b| b.is_ascii_digit())
        .fold(0, |n, b| {
            n.saturating_mul(10).saturating_add(u32::from(b - b'0'))
        });
    match last {
        b'c' => false,
        b'n' => !matches!(first, 5 | 6),
        b't' => !matches!(first, 11 | 13..=21),
        b'p' => params.last() != Some(&b'$'),
        b'u' => params.first() != Some(&b'?'),
        _ => true,
    }
}

/// DCS requests: `$q` (setting status) and `+q` (terminfo capabilities) are answered.
fn dcs_allowed(body: &[u8]) -> bool {
    !(body.starts_with(b"$q") || body.starts_with(b"+q"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(allow: bool, chunks: &[&[u8]]) -> Vec<u8> {
        let mut guard = OutputGuard::new(allow);
        let mut out = Vec::new();
        for c in chunks {
            guard.filter(c, &mut out);
        }
        out
    }

    #[test]
    fn plain_text_and_ordinary_sequences_pass_unchanged() {
        let text: &[u8] = b"hello \x1b[1;31mred\x1b[0m \x1b]0;title\x07 \x1b(B done\r\n";
        assert_eq!(run(false, &[text]), text);
    }

    #[test]
    fn clipboard_and_queries_are_dropped_even_when_split() {
        let input: &[u8] =
            b"a\x1b]52;c;ZXZpbA==\x07b\x1b[6nc\x1b[>cd\x1b]11;?\x1b\\e\x1bP$qm\x1b\\f\x1b[21tg\x1b[?1$ph";
        for split in 0..input.len() {
            let (x, y) = input.split_at(split);
            assert_eq!(run(false, &[x, y]), b"abcdefgh", "split at {split}");
        }
    }

    #[test]
    fn clipboard_passes_when_allowed() {
        let input: &[u8] = b"\x1b]52;c;aGk=\x07";
        assert_eq!(run(true, &[input]), input);
    }

    #[test]
    fn an_endless_string_is_bounded_and_dropped() {
        let mut guard = OutputGuard::new(false);
        let mut out = Vec::new();
        guard.filter(b"\x1b]0;", &mut out);
        let chunk = vec![b'x'; 4096];
        for _ in 0..1024 {
            guard.filter(&chunk, &mut out);
        }
        assert!(guard.seq.len() <= MAX_SEQUENCE);
        guard.filter(b"\x07after", &mut out);
        assert_eq!(out, b"after");
    }
}
