//! Turning raw terminal output into the plain text an agent reads: escape sequences removed,
//! carriage-return redraws and backspaces applied the way a terminal would, line endings
//! normalised, invalid UTF-8 replaced.

/// Plain text of raw terminal output.
///
/// Lines that hold nothing a terminal would interpret (no escape, control or C1 character; at
/// most a carriage return just before the newline) are copied whole, byte-wise; the others go
/// through the character-by-character terminal rules below, with the same result.
pub fn clean(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    clean_into(raw, &mut out);
    out
}

/// [`clean`] of bytes the caller gives up. When they are valid UTF-8 and hold nothing a
/// terminal interprets but line ends (no escape, no control character but tab, no C1
/// character, a carriage return only just before a newline: what [`plain_lines`] copies
/// whole), the text is made in their own buffer by dropping each carriage return, without a
/// second buffer of their size or a pass byte by byte; otherwise it is [`clean`] of them.
pub fn clean_owned(mut raw: Vec<u8>) -> String {
    if !plain_with_crlf(&raw) || std::str::from_utf8(&raw).is_err() {
        return clean(&raw);
    }
    drop_carriage_returns(&mut raw);
    // Dropping ASCII bytes from valid UTF-8 leaves it valid.
    String::from_utf8(raw).unwrap_or_else(|e| clean(e.as_bytes()))
}

/// True when `bytes` hold no byte [`plain_lines`] stops at: controls but tab and newline, DEL,
/// the lead byte of C1 controls, and a carriage return not followed by a newline. Both checks
/// are vectorised passes: a fold 64 bytes at a time, then `memchr` over the carriage returns.
fn plain_with_crlf(bytes: &[u8]) -> bool {
    let stops = |b: u8| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f || b == 0xc2;
    if bytes
        .chunks(64)
        .any(|chunk| chunk.iter().fold(false, |any, b| any | stops(*b)))
    {
        return false;
    }
    memchr::memchr_iter(b'\r', bytes).all(|i| bytes.get(i + 1) == Some(&b'\n'))
}

/// Removes every carriage return from `bytes`, moving the runs between them down in place.
fn drop_carriage_returns(bytes: &mut Vec<u8>) {
    let (mut read, mut write) = (0, 0);
    while let Some(i) = memchr::memchr(b'\r', &bytes[read..]) {
        let cr = read + i;
        bytes.copy_within(read..cr, write);
        write += cr - read;
        read = cr + 1;
    }
    let len = bytes.len();
    bytes.copy_within(read..len, write);
    bytes.truncate(write + len - read);
}

/// [`clean`], appending to `out` (no intermediate copy when many pieces make one text).
pub fn clean_into(raw: &[u8], out: &mut String) {
    // Validating first is several times faster than the lossy decoder on valid text.
    let decoded = match std::str::from_utf8(raw) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(raw),
    };
    let mut line: Vec<char> = Vec::new();
    let mut col = 0usize;
    let mut chars = decoded.chars();
    loop {
        if line.is_empty() {
            // At the start of a line (nothing pending): copy the plain lines that follow.
            let rest = chars.as_str();
            let taken = plain_lines(rest, out);
            if taken > 0 {
                chars = rest[taken..].chars();
            }
        }
        let Some(c) = chars.next() else { break };
        step(c, &mut chars, &mut line, &mut col, out);
    }
    out.extend(line);
}

/// Applies one character of terminal output: an escape sequence it starts is read from `chars`;
/// a newline moves the pending `line` to `out`.
fn step(c: char, chars: &mut Chars<'_>, line: &mut Vec<char>, col: &mut usize, out: &mut String) {
    match c {
        '\x1b' if peek(chars) == Some('[') => {
            chars.next();
            csi(chars, line, *col);
        }
        '\x1b' => skip_escape(chars),
        '\u{9b}' => csi(chars, line, *col),
        '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(chars),
        '\n' => {
            out.extend(line.drain(..));
            out.push('\n');
            *col = 0;
        }
        '\r' => *col = 0,
        '\x08' => *col = col.saturating_sub(1),
        c if c.is_control() && c != '\t' => {}
        c => put(line, col, c),
    }
}

/// Copies the leading run of plain lines of `text` to `out` (a trailing CR before each newline
/// dropped, as a terminal shows it) and returns how many bytes of `text` it took: each copied
/// line ends with its newline, except a plain last line with none after it.
fn plain_lines(text: &str, out: &mut String) -> usize {
    let bytes = text.as_bytes();
    // `text[copied..line]` is taken but not yet copied; `line` is where the current line starts.
    let (mut copied, mut line, mut i) = (0, 0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                i += 1;
                line = i;
            }
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.push_str(&text[copied..i]);
                i += 1;
                copied = i;
            }
            // C0 controls except tab, DEL, and the lead byte of U+0080..U+00BF (C1 controls).
            b if (b < 0x20 && b != b'\t') || b == 0x7f || b == 0xc2 => {
                out.push_str(&text[copied..line]);
                return line;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    bytes.len()
}

fn put(line: &mut Vec<char>, col: &mut usize, c: char) {
    if *col < line.len() {
        line[*col] = c;
    } else {
        line.push(c);
    }
    *col += 1;
}

type Chars<'a> = std::str::Chars<'a>;

/// The next character `chars` would yield, without taking it.
fn peek(chars: &Chars<'_>) -> Option<char> {
    chars.as_str().chars().next()
}

/// Skips the rest of a sequence introduced by ESC.
fn skip_escape(chars: &mut Chars<'_>) {
    match chars.next() {
        Some('[') => {
            skip_csi(chars);
        }
        Some(']') | Some('P') | Some('X') | Some('^') | Some('_') => skip_string(chars),
        // Intermediate bytes (charset selection such as `ESC ( B`) take one more final byte.
        Some(c) if ('\x20'..='\x2f').contains(&c) => {
            chars.next();
        }
        _ => {}
    }
}

/// Skips CSI parameters and intermediates up to and including the final byte; returns the
/// final byte and the first parameter.
fn skip_csi(chars: &mut Chars<'_>) -> Option<(char, u32)> {
    let mut first: Option<u32> = None;
    let mut in_first = true;
    while let Some(c) = peek(chars) {
        if !('\x20'..='\x7e').contains(&c) {
            // Not a CSI byte: the sequence was cut; stop here rather than eat text.
            return None;
        }
        chars.next();
        if ('\x40'..='\x7e').contains(&c) {
            return Some((c, first.unwrap_or(0)));
        }
        match c.to_digit(10) {
            Some(d) if in_first => {
                first = Some(first.unwrap_or(0).saturating_mul(10).saturating_add(d))
            }
            _ => in_first = false,
        }
    }
    None
}

/// Applies the CSI sequences that change the text of the current line (erase in line, as
/// progress bars use after a carriage return) and skips the others.
fn csi(chars: &mut Chars<'_>, line: &mut Vec<char>, col: usize) {
    match skip_csi(chars) {
        Some(('K', 0)) => line.truncate(col),
        Some(('K', 1)) => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
        Some(('K', 2)) => line.iter_mut().for_each(|c| *c = ' '),
        _ => {}
    }
}

/// Skips an OSC/DCS/APC/PM/SOS string up to BEL or ST (`ESC \`).
fn skip_string(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\x07' | '\u{9c}' => return,
            '\x1b' => {
                if peek(chars) == Some('\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

/// The length of the longest prefix of `bytes` that does not end inside a UTF-8 character that
/// could still be completed by more bytes. Reads stop there, so a character cut by a read
/// boundary is returned whole by the next read instead of as two replacement characters.
pub fn complete_utf8_len(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=3.min(n) {
        let b = bytes[n - back];
        if b & 0xC0 == 0x80 {
            continue; // continuation byte: keep looking for the lead byte
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => return n,
        };
        return if need > back { n - back } else { n };
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_sgr_osc_and_charset() {
        assert_eq!(
            clean(b"\x1b[1;31merror\x1b[0m: x\x1b]0;title\x07\x1b(B!"),
            "error: x!"
        );
        assert_eq!(clean(b"a\x1b]133;D;0\x1b\\b"), "ab");
    }

    #[test]
    fn applies_carriage_return_and_backspace() {
        assert_eq!(clean(b"10%\r20%\r100%\r\ndone\r\n"), "100%\ndone\n");
        assert_eq!(clean(b"abc\x08\x08X\n"), "aXc\n");
        assert_eq!(clean(b"abcdef\rXY\n"), "XYcdef\n");
    }

    #[test]
    fn erase_in_line_after_carriage_return() {
        assert_eq!(
            clean(b"Building [===>  ] 3/9: foo\r\x1b[Kerror[E0308]: bad\n"),
            "error[E0308]: bad\n"
        );
        assert_eq!(clean(b"abcdef\r\x1b[2Kxy\n"), "xy    \n");
        assert_eq!(clean(b"\x1b[1;31mred\x1b[0m"), "red");
    }

    /// The terminal rules alone, character by character, without the plain-line copy.
    fn char_by_char(raw: &[u8]) -> String {
        let decoded = String::from_utf8_lossy(raw);
        let (mut out, mut line, mut col) = (String::new(), Vec::new(), 0usize);
        let mut chars = decoded.chars();
        while let Some(c) = chars.next() {
            step(c, &mut chars, &mut line, &mut col, &mut out);
        }
        out.extend(line);
        out
    }

    #[test]
    fn plain_lines_copied_whole_read_as_the_terminal_rules_do() {
        let pieces: [&[u8]; 16] = [
            b"plain text",
            b"\r\n",
            b"\n",
            b"\r",
            b"\x1b[K",
            b"\x1b[31m",
            b"\x1b]0;title\x07",
            b"\x1b]8;;x\n",
            b"\x08",
            "\u{85}".as_bytes(),
            "\u{9b}2K".as_bytes(),
            "é日🎉".as_bytes(),
            b"\xff\xc2",
            b"\t",
            b"\x7f",
            b"\r\r\n",
        ];
        // Every sequence of four pieces, so each rule meets each other at a line start.
        each_four(&pieces, |raw| {
            assert_eq!(clean(raw), char_by_char(raw), "input {raw:?}")
        });
    }

    /// Runs `check` on every sequence of four of `pieces`, joined.
    fn each_four(pieces: &[&[u8]], mut check: impl FnMut(&[u8])) {
        let n = pieces.len();
        for k in 0..n.pow(4) {
            let mut raw = Vec::new();
            let mut rest = k;
            for _ in 0..4 {
                raw.extend_from_slice(pieces[rest % n]);
                rest /= n;
            }
            check(&raw);
        }
    }

    #[test]
    fn owned_bytes_are_cleaned_as_borrowed_ones() {
        let pieces: [&[u8]; 12] = [
            b"plain text",
            b"\r\n",
            b"\n",
            b"\r",
            b"\x1b[K",
            b"\x08",
            "\u{85}".as_bytes(),
            "\u{9b}2K".as_bytes(),
            "\u{e9}\u{65e5}\u{1f389}".as_bytes(),
            b"\xff\xc2",
            b"\t",
            b"\x7f",
        ];
        each_four(&pieces, |raw| {
            assert_eq!(clean_owned(raw.to_vec()), clean(raw), "input {raw:?}")
        });
        // A log's lines of base64, each ended by CR LF: the plain path.
        let lines = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3\r\n".repeat(1000);
        assert_eq!(
            clean_owned(lines.clone().into_bytes()),
            lines.replace("\r\n", "\n")
        );
    }

    #[test]
    fn replaces_invalid_utf8() {
        assert_eq!(clean(b"a\xffb\n"), "a\u{fffd}b\n");
    }

    #[test]
    fn complete_utf8_prefix() {
        let s = "aé日🎉".as_bytes();
        assert_eq!(complete_utf8_len(s), s.len());
        assert_eq!(complete_utf8_len(&s[..s.len() - 1]), s.len() - 4);
        assert_eq!(complete_utf8_len(&s[..2]), 1);
        assert_eq!(complete_utf8_len(b"ab\xff"), 3);
        assert_eq!(complete_utf8_len(b""), 0);
    }
}
