//! Finding OSC 133 shell-integration marks (`ESC ] 133 ; <kind> [; params] BEL|ST`) in a byte
//! stream that arrives in arbitrary chunks. Only `133` bodies are collected, and their length
//! is bounded, so an escape-sequence flood costs constant memory.

/// One mark found in the stream, with the absolute log offsets it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// `A` prompt start, `B` prompt end, `C` command output start, `D` command finished.
    pub kind: u8,
    /// The fields after the kind, split on `;`.
    pub params: Vec<String>,
    pub start: u64,
    pub end: u64,
}

impl Mark {
    /// The value of a `key=value` field.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
    }
}

const MAX_BODY: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ground,
    Escape,
    /// Inside an OSC string; `collect` says whether it may still be a 133 mark.
    Osc {
        collect: bool,
    },
    /// Saw ESC inside an OSC string: `\` ends it.
    OscEscape {
        collect: bool,
    },
}

/// A streaming scanner; feed it every chunk in order.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    body: Vec<u8>,
    start: u64,
}

impl Default for Scanner {
    fn default() -> Self {
        Self {
            state: State::Ground,
            body: Vec::new(),
            start: 0,
        }
    }
}

impl Scanner {
    /// Scans `chunk`, whose first byte is at absolute offset `base`, appending marks to `out`.
    pub fn feed(&mut self, chunk: &[u8], base: u64, out: &mut Vec<Mark>) {
        let mut i = 0;
        while i < chunk.len() {
            if self.state == State::Ground {
                match memchr::memchr(0x1b, &chunk[i..]) {
                    Some(pos) => {
                        i += pos + 1;
                        self.state = State::Escape;
                        self.start = base + (i - 1) as u64;
                        continue;
                    }
                    None => return,
                }
            }
            let b = chunk[i];
            i += 1;
            let offset = base + i as u64;
            self.state = match self.state {
                State::Ground => State::Ground,
                State::Escape if b == b']' => {
                    self.body.clear();
                    State::Osc { collect: true }
                }
                State::Escape if b == 0x1b => {
                    self.start = offset - 1;
                    State::Escape
                }
                State::Escape => State::Ground,
                State::Osc { collect } => match b {
                    0x07 => {
                        self.finish(collect, offset, out);
                        State::Ground
                    }
                    0x1b => State::OscEscape { collect },
                    _ => State::Osc {
                        collect: collect && self.push(b),
                    },
                },
                State::OscEscape { collect } => {
                    if b == b'\\' {
                        self.finish(collect, offset, out);
                        State::Ground
                    } else {
                        // An ESC that does not end the string starts a new sequence.
                        self.start = offset - 2;
                        if b == b']' {
                            self.body.clear();
                            State::Osc { collect: true }
                        } else {
                            State::Ground
                        }
                    }
                }
            };
        }
    }

    /// Appends a body byte; returns false once the body can no longer be a 133 mark.
    fn push(&mut self, b: u8) -> bool {
        const PREFIX: &[u8] = b"133;";
        let len = self.body.len();
        if len < PREFIX.len() && PREFIX[len] != b {
            return false;
        }
        if len >= MAX_BODY {
            return false;
        }
        self.body.push(b);
        true
    }

    fn finish(&mut self, collect: bool, end: u64, out: &mut Vec<Mark>) {
        if !collect || self.body.len() < 5 {
            return;
        }
        let body = String::from_utf8_lossy(&self.body[4..]).into_owned();
        let mut fields = body.split(';');
        let kind = fields.next().and_then(|k| k.bytes().next()).unwrap_or(0);
        if matches!(kind, b'A' | b'B' | b'C' | b'D') {
            out.push(Mark {
                kind,
                params: fields.map(str::to_owned).collect(),
                start: self.start,
                end,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_chunks(chunks: &[&[u8]]) -> Vec<Mark> {
        let mut s = Scanner::default();
        let mut out = Vec::new();
        let mut base = 0;
        for c in chunks {
            s.feed(c, base, &mut out);
            base += c.len() as u64;
        }
        out
    }

    #[test]
    fn finds_marks_with_both_terminators() {
        let data = b"x\x1b]133;A;aid=1\x07$ \x1b]133;D;127;aid=1\x1b\\y";
        let marks = scan_chunks(&[data]);
        assert_eq!(marks.len(), 2);
        assert_eq!(marks[0].kind, b'A');
        assert_eq!(marks[0].start, 1);
        assert_eq!(marks[0].field("aid"), Some("1"));
        assert_eq!(marks[1].kind, b'D');
        assert_eq!(marks[1].params[0], "127");
        assert_eq!(
            &data[marks[1].start as usize..marks[1].end as usize],
            b"\x1b]133;D;127;aid=1\x1b\\"
        );
    }

    #[test]
    fn marks_split_across_every_byte() {
        let data: &[u8] =
            b"ab\x1b]0;title\x07\x1b]133;C;aid=zz\x07out\x1b[0m\x1b]133;D;0;aid=zz\x07";
        let whole = scan_chunks(&[data]);
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(scan_chunks(&bytes), whole);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].start, 12);
    }

    #[test]
    fn other_sequences_and_floods_are_ignored() {
        let mut data = b"\x1b]1337;".to_vec();
        data.extend(std::iter::repeat_n(b'x', 100_000));
        data.extend_from_slice(b"\x07\x1b]133;");
        data.extend(std::iter::repeat_n(b'y', 100_000));
        data.extend_from_slice(b"\x07\x1b[31m\x1b]133;B\x07");
        let marks = scan_chunks(&[&data]);
        assert_eq!(marks.len(), 1);
        assert_eq!(marks[0].kind, b'B');
    }
}
