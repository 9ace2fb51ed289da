//! Plain text the emulator need not draw: how much of a flood of text can never be seen.
//!
//! A program that prints megabytes of text (`cat` of a large file) scrolls every line but the
//! last few thousand out of the scrollback. Drawing the others costs the emulator most of its
//! time and changes nothing it keeps. This module says, exactly, which bytes can be left out:
//!
//! - [`plain_len`]: the bytes that are *plain text* here: printable ASCII, TAB, CR and LF.
//!   Plain text changes only the grid's cells and the cursor: no mode, colour, title, charset,
//!   tab stop, saved cursor or scroll region, and it never makes the emulator answer.
//! - [`Sequence`]: follows the bytes given to the emulator far enough to know when its parser is
//!   certainly in its ground state (not inside an escape sequence or a control string, where
//!   the same bytes would mean something else) and whether a scroll region may be set.
//! - [`witness_cut`]: in a run of plain text that starts in the ground state with the whole
//!   screen scrolling, the bytes before the cut are invisible: what follows the cut carries
//!   the cursor back to column 0 and then moves it down `2 * rows + scrollback` lines or more.
//!   Whatever row the cursor was on, every row of the screen and of the scrollback is then
//!   pushed out and replaced by a row scrolled in later (cleared with the same attributes), and
//!   the cursor ends on the bottom row at the column the last line gives it: the grid, the
//!   cursor, the modes and the attributes are the same whether the bytes before the cut were
//!   drawn or not. The last character drawn (repeated by `CSI b`) is in the kept part too.

/// Whether `b` is plain text: printable ASCII, TAB, CR or LF.
fn is_plain(b: u8) -> bool {
    matches!(b, 0x20..=0x7e | b'\t' | b'\r' | b'\n')
}

/// The length of the plain text at the start of `bytes`.
pub(super) fn plain_len(bytes: &[u8]) -> usize {
    // Whole blocks first (the compiler vectorises the check), then the block with the end.
    const BLOCK: usize = 64;
    let mut at = 0;
    for block in bytes.chunks_exact(BLOCK) {
        if !block.iter().fold(true, |all, &b| all & is_plain(b)) {
            break;
        }
        at += BLOCK;
    }
    at + bytes[at..].iter().take_while(|&&b| is_plain(b)).count()
}

/// Where the text before the last `lines` line feeds (counted after a carriage return, with a
/// printable character among them) can be dropped: the offset just after a line feed, or
/// `None` when `text` has too few lines to drop any. `text` must be plain.
pub(super) fn witness_cut(text: &[u8], lines: usize) -> Option<usize> {
    if lines == 0 {
        return None;
    }
    // The `lines`-th line feed from the end, and a carriage return before it.
    let mut end = text.len();
    let mut nth = None;
    for _ in 0..lines {
        let at = memchr::memrchr(b'\n', &text[..end])?;
        nth = Some(at);
        end = at;
    }
    let first_counted = nth?;
    let cr = memchr::memrchr(b'\r', &text[..first_counted])?;
    // The cut is after the line feed before that carriage return: the kept text starts a line.
    let cut = memchr::memrchr(b'\n', &text[..cr])? + 1;
    let printable = text[cut..]
        .iter()
        .rev()
        .any(|&b| (0x20..=0x7e).contains(&b));
    printable.then_some(cut)
}

/// The parser's state as far as plain text is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not in a sequence: text is drawn.
    Ground,
    /// After ESC.
    Escape,
    /// After ESC and intermediate bytes.
    EscapeIntermediate,
    /// In a CSI sequence.
    Csi(Csi),
    /// In an OSC string (BEL ends it).
    Osc,
    /// In a DCS, SOS, PM or APC string, or somewhere this tracker does not follow: only ESC,
    /// CAN or SUB bring it back.
    String,
}

/// A CSI sequence as far as `DECSTBM` (`CSI top ; bottom r`) is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Csi {
    /// Its first two parameters.
    params: [u16; 2],
    /// Which parameter the digits go to.
    index: u8,
    /// Private markers or intermediates: not a `DECSTBM`.
    marked: bool,
    /// Sub-parameters or more than two parameters: what the emulator makes of it is not
    /// followed here.
    odd: bool,
}

/// Follows the bytes given to the emulator's parser: whether it is in its ground state, and
/// whether a scroll region narrower than the screen may be set.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sequence {
    state: State,
    /// A `DECSTBM` set a scroll region that may not be the whole screen.
    region: bool,
}

impl Default for Sequence {
    fn default() -> Self {
        Self {
            state: State::Ground,
            region: false,
        }
    }
}

impl Sequence {
    /// True when plain text given now is drawn as text and the whole screen scrolls.
    pub fn plain_ground(&self) -> bool {
        self.state == State::Ground && !self.region
    }

    /// The emulator was reset or resized: its scroll region is the whole screen again.
    pub fn region_reset(&mut self) {
        self.region = false;
    }

    /// A fresh parser replaced the old one (an OSC string passed its bound).
    pub fn parser_reset(&mut self) {
        self.state = State::Ground;
    }

    /// Follows `bytes`, given to the parser, on a screen of `rows` lines.
    pub fn advance(&mut self, bytes: &[u8], rows: u16) {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == State::Ground {
                match memchr::memchr(0x1b, &bytes[i..]) {
                    Some(at) => {
                        i += at + 1;
                        self.state = State::Escape;
                        continue;
                    }
                    None => return,
                }
            }
            self.byte(bytes[i], rows);
            i += 1;
        }
    }

    fn byte(&mut self, b: u8, rows: u16) {
        // From any state: ESC starts a sequence, CAN and SUB cancel one.
        match b {
            0x1b => {
                self.state = State::Escape;
                return;
            }
            0x18 | 0x1a => {
                self.state = State::Ground;
                return;
            }
            _ => {}
        }
        self.state = match self.state {
            State::Ground => State::Ground,
            State::Escape => match b {
                0x20..=0x2f => State::EscapeIntermediate,
                b'[' => State::Csi(Csi::default()),
                b']' => State::Osc,
                b'P' | b'X' | b'^' | b'_' => State::String,
                b'c' => {
                    // RIS: a full reset, whole-screen scrolling included.
                    self.region = false;
                    State::Ground
                }
                0x30..=0x7e => State::Ground,
                _ => State::Escape,
            },
            State::EscapeIntermediate => match b {
                0x30..=0x7e => State::Ground,
                _ => State::EscapeIntermediate,
            },
            State::Csi(csi) => self.csi(b, csi, rows),
            State::Osc => match b {
                0x07 => State::Ground,
                _ => State::Osc,
            },
            State::String => State::String,
        };
    }

    fn csi(&mut self, b: u8, mut csi: Csi, rows: u16) -> State {
        match b {
            b'0'..=b'9' => {
                if let Some(p) = csi.params.get_mut(usize::from(csi.index)) {
                    *p = p.saturating_mul(10).saturating_add(u16::from(b - b'0'));
                }
            }
            b';' => {
                csi.index = csi.index.saturating_add(1);
                csi.odd |= csi.index > 1;
            }
            b':' => csi.odd = true,
            0x3c..=0x3f | 0x20..=0x2f => csi.marked = true,
            b'r' => {
                if csi.odd && !csi.marked {
                    // Not followed: the region may have changed.
                    self.region = true;
                } else if !csi.marked {
                    self.set_region(csi.params[0], csi.params[1], rows);
                }
                return State::Ground;
            }
            0x40..=0x7e => return State::Ground,
            // C0 controls run inside the sequence; other bytes are ignored there.
            _ => {}
        }
        State::Csi(csi)
    }

    /// `CSI top ; bottom r` as the emulator takes it: an empty region is ignored, the whole
    /// screen is `1 ; rows` (or no parameters), anything else narrows it.
    fn set_region(&mut self, top: u16, bottom: u16, rows: u16) {
        let top = top.max(1);
        // Checked before the bottom is clamped to the screen, as the emulator does.
        let bottom = if bottom == 0 { rows } else { bottom };
        if top >= bottom {
            return;
        }
        self.region = !(top == 1 && bottom >= rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_printable_ascii_tab_cr_lf() {
        assert_eq!(plain_len(b"abc\r\n\tdef"), 9);
        assert_eq!(plain_len(b"ab\x1b[0m"), 2);
        assert_eq!(plain_len("é".as_bytes()), 0);
        let long = [b'x'; 200];
        assert_eq!(plain_len(&long), 200);
        let mut mixed = long.to_vec();
        mixed[130] = 0x07;
        assert_eq!(plain_len(&mixed), 130);
    }

    #[test]
    fn the_cut_keeps_the_last_lines_from_a_line_start() {
        let text = b"a\r\nb\r\nc\r\nd\r\n";
        // Three line feeds counted after a CR: "b\r\n" "c\r\n" "d\r\n" kept, "a\r\n" dropped.
        assert_eq!(witness_cut(text, 3), Some(3));
        assert_eq!(witness_cut(text, 4), None);
        // No carriage return before the counted lines: nothing proves the column.
        assert_eq!(witness_cut(b"a\nb\nc\nd\n", 2), None);
        // Only blank lines kept: the last character drawn would differ.
        assert_eq!(witness_cut(b"a\r\n\r\n\r\n\r\n", 2), None);
    }

    #[test]
    fn sequences_and_strings_leave_ground_until_they_end() {
        let mut s = Sequence::default();
        s.advance(b"text \x1b[31", 24);
        assert!(!s.plain_ground());
        s.advance(b"m more", 24);
        assert!(s.plain_ground());
        s.advance(b"\x1b]0;title", 24);
        assert!(!s.plain_ground());
        s.advance(b"\x07", 24);
        assert!(s.plain_ground());
        s.advance(b"\x1bPq#0;2;0;0;0", 24);
        assert!(!s.plain_ground());
        s.advance(b"\x1b\\", 24);
        assert!(s.plain_ground());
        s.advance(b"\x1b_app\x18", 24);
        assert!(s.plain_ground());
    }

    #[test]
    fn a_scroll_region_is_followed() {
        let mut s = Sequence::default();
        s.advance(b"\x1b[2;10r", 24);
        assert!(!s.plain_ground());
        s.advance(b"\x1b[r", 24);
        assert!(s.plain_ground());
        s.advance(b"\x1b[3;20r\x1b[1;24r", 24);
        assert!(s.plain_ground());
        s.advance(b"\x1b[5r", 24);
        assert!(!s.plain_ground());
        // An empty region is ignored by the emulator: the narrow one stays.
        s.advance(b"\x1b[9;3r", 24);
        assert!(!s.plain_ground());
        s.advance(b"\x1bc", 24);
        assert!(s.plain_ground());
        // Private-marked `r` is not DECSTBM.
        s.advance(b"\x1b[?5;6r", 24);
        assert!(s.plain_ground());
        // A bottom past the screen is the screen's bottom.
        s.advance(b"\x1b[1;99r", 24);
        assert!(s.plain_ground());
        // Sub-parameters are not followed: taken as a region.
        s.advance(b"\x1b[1:2;24r", 24);
        assert!(!s.plain_ground());
    }
}

/// The screen fed lazily, with unseen text dropped, against the same bytes drawn one by one.
#[cfg(test)]
mod equivalence {
    use super::super::Screen;
    use ai_session_protocol::methods::Size;

    const SIZE: Size = Size { cols: 30, rows: 8 };
    const SCROLLBACK: usize = 40;

    /// Everything a session can get out of a screen.
    fn state(s: &mut Screen) -> (Vec<String>, usize, usize, usize, String, Vec<u8>) {
        let r = s.render(usize::MAX, true);
        let modes = format!("{:?}", s.mode());
        let replay = s.replay_bytes();
        (
            r.lines,
            r.cursor_row,
            r.cursor_col,
            r.scrollback_lines,
            modes,
            replay,
        )
    }

    /// Feeds `stream` in pieces of `chunk` bytes to a lazy screen and whole, drawn at once,
    /// to a reference; their states must match. Returns the bytes the lazy screen dropped.
    fn check(name: &str, stream: &[u8], chunk: usize) -> usize {
        let mut lazy = Screen::new(SIZE, SCROLLBACK);
        for piece in stream.chunks(chunk) {
            lazy.feed(piece);
        }
        let mut exact = Screen::new(SIZE, SCROLLBACK);
        exact.advance(stream);
        let reply = (lazy.take_replies(), exact.take_replies());
        assert_eq!(reply.0, reply.1, "{name}: replies differ");
        assert_eq!(lazy.title(), exact.title(), "{name}: titles differ");
        assert_eq!(
            state(&mut lazy),
            state(&mut exact),
            "{name}: screens differ"
        );
        // More text, then a look: still the same.
        let more = b"\x1b[1mafter\r\n\x1b[0m tail";
        lazy.feed(more);
        exact.advance(more);
        assert_eq!(state(&mut lazy), state(&mut exact), "{name}: differ later");
        lazy.unseen
    }

    fn lines(n: usize, each: impl Fn(usize) -> String) -> Vec<u8> {
        (0..n).flat_map(|i| each(i).into_bytes()).collect()
    }

    fn flood() -> Vec<u8> {
        lines(400, |i| format!("line {i} of the flood\r\n"))
    }

    #[test]
    fn a_flood_of_lines_is_mostly_dropped_and_shows_the_same() {
        let mut stream = b"\x1b[31;44mred on blue\r\n\x1b[?1h\x1b]0;title\x07".to_vec();
        stream.extend(flood());
        stream.extend_from_slice(b"\x1b[0mend");
        for chunk in [7, 64, 1000] {
            let dropped = check("flood", &stream, chunk);
            assert!(dropped > 5_000, "only {dropped} bytes dropped");
        }
        // A piece with an escape in it is drawn whole.
        assert_eq!(check("flood", &stream, stream.len()), 0);
    }

    #[test]
    fn text_for_a_sleeping_screen_waits_and_wakes_it_when_looked_at() {
        let mut lazy = Screen::new(SIZE, SCROLLBACK);
        let mut exact = Screen::new(SIZE, SCROLLBACK);
        let start = b"\x1b[32mgreen\x1b[0m prompt\r\n";
        lazy.feed(start);
        exact.advance(start);
        assert!(lazy.hibernate());
        let text = flood();
        for piece in text.chunks(100) {
            lazy.feed(piece);
        }
        exact.advance(&text);
        // Text is waiting: the screen is not asleep, so the actor's idle timer still runs.
        assert!(!lazy.is_dormant());
        assert_eq!(state(&mut lazy), state(&mut exact));
        assert!(lazy.hibernate());
        assert!(lazy.is_dormant());
        assert_eq!(state(&mut lazy), state(&mut exact));
    }

    #[test]
    fn the_cursor_anywhere_before_the_flood() {
        for start in [
            b"\x1b[H".as_slice(),
            b"\x1b[4;9H",
            b"\x1b[8;30Hx",
            b"\x1b[2J\x1b[3;1H",
        ] {
            let mut stream = lines(20, |i| format!("{i:>28}\r\n"));
            stream.extend_from_slice(start);
            stream.extend(flood());
            stream.extend_from_slice(b"last");
            let dropped = check("cursor", &stream, 300);
            assert!(dropped > 0);
        }
    }

    #[test]
    fn text_that_proves_nothing_is_drawn_whole() {
        // Line feeds without carriage returns: the column is carried from line to line.
        check("staircase", &lines(600, |i| format!("s{}\n", i % 7)), 100);
        // The same in line-feed-is-newline mode, and with long wrapped lines and tabs.
        let mut lnm = b"\x1b[20h".to_vec();
        lnm.extend(lines(300, |i| format!("{i}\tx\t{}\n", "w".repeat(i % 70))));
        check("newline mode", &lnm, 512);
        // Blank lines after text: the character `CSI b` repeats comes from before them.
        let mut rep = flood();
        rep.extend(lines(300, |_| "\r\n".into()));
        rep.extend_from_slice(b"\x1b[5b");
        check("repeat", &rep, 999);
    }

    #[test]
    fn a_flood_inside_a_sequence_or_a_region_is_drawn_exactly() {
        let cases: [(&str, &[u8], &[u8]); 8] = [
            ("scroll region", b"\x1b[2;6r\x1b[3;1H", b""),
            // The region's top moves the cursor home, above it: the first lines stay there.
            ("cursor above the region", b"\x1b[3;6r", b""),
            ("region then reset", b"\x1b[2;6r\x1b[r\x1b[3;1H", b""),
            ("csi split", b"\x1b[3", b"1mred"),
            ("osc title", b"\x1b]2;", b"\x07shown"),
            ("dcs", b"\x1bPq", b"\x1b\\shown"),
            ("apc", b"\x1b_", b"\x1b\\shown"),
            ("alternate screen", b"\x1b[?1049h", b"\x1b[?1049l"),
        ];
        for (name, before, after) in cases {
            let mut stream = before.to_vec();
            stream.extend(lines(300, |i| format!("in {i}\r\n")));
            stream.extend_from_slice(after);
            stream.extend(flood());
            for chunk in [5, 256, stream.len()] {
                check(name, &stream, chunk);
            }
        }
    }

    #[test]
    fn mixed_streams_match_in_any_pieces() {
        // A fixed pseudo-random mix of escapes and plain runs of every length.
        let pieces: [&[u8]; 14] = [
            b"\x1b[1;32m",
            b"\x1b[0m",
            b"\x1b[5;3H",
            b"\x1b[2;7r",
            b"\x1b[r",
            b"\x1b[?7l",
            b"\x1b[?7h",
            b"\x1b[4h",
            b"\x1b[4l",
            b"\x1b7",
            b"\x1b8",
            b"\x1b]0;t",
            b"\x07",
            b"\x1b[K",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..40 {
            let mut stream = Vec::new();
            for _ in 0..30 {
                let r = next();
                if r % 3 == 0 {
                    stream.extend_from_slice(pieces[(r / 3) as usize % pieces.len()]);
                } else {
                    let n = (r >> 8) as usize % 200;
                    let width = 1 + (r >> 20) as usize % 45;
                    let cr = if r & 0x80 == 0 { "\r\n" } else { "\n" };
                    stream.extend(lines(n, |i| {
                        format!("{}{cr}", "abc\t"[i % 4..].repeat(width / 4 + 1))
                    }));
                }
            }
            let chunk = 1 + next() as usize % 700;
            check(&format!("mix {round}"), &stream, chunk);
        }
    }
}
