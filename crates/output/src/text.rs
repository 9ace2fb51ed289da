//! Turning terminal bytes into plain text lines: lossy UTF-8 decoding, ANSI escape stripping,
//! carriage-return redraws, and cutting strings only at character boundaries.

use std::borrow::Cow;

/// Decodes bytes as UTF-8, replacing invalid sequences (including a multi-byte character cut at the end)
/// with U+FFFD. Borrows when the input is already valid.
pub fn decode(bytes: &[u8]) -> Cow<'_, str> {
    // Validating first is several times faster than the lossy decoder on valid text.
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// True for a byte [`strip_ansi`] removes or acts on: ESC, C0 controls but tab, newline and
/// carriage return, and DEL.
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\n' && b != b'\r' && b != b'\t') || b == 0x7f
}

/// True when `s` holds a byte [`is_control`] flags; the bytes are checked 64 at a time without
/// a branch per byte.
fn has_control(s: &str) -> bool {
    s.as_bytes()
        .chunks(64)
        .any(|chunk| chunk.iter().fold(false, |any, b| any | is_control(*b)))
}

/// Removes ANSI escape sequences (CSI, OSC, DCS/APC/PM/SOS strings, two-byte escapes) and other C0 control
/// characters except tab, newline and carriage return. Borrows when there is nothing to remove.
///
/// An unterminated sequence at the end of the input is dropped; a string sequence (OSC, DCS) ends at BEL or
/// ST (`ESC \`), as terminals do.
pub fn strip_ansi(s: &str) -> Cow<'_, str> {
    if !has_control(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '\u{1b}' => skip_escape(&mut chars),
            '\n' | '\r' | '\t' => out.push(c),
            // Backspace erases the previous character on a terminal; `man`-style overstrike uses it.
            '\u{8}' => {
                out.pop();
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {}
            // C1 CSI (U+009B) is rare in UTF-8 output; treat it like ESC [.
            '\u{9b}' => skip_csi(&mut chars),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

fn skip_escape(chars: &mut Chars<'_>) {
    let Some(&(_, next)) = chars.peek() else {
        return;
    };
    match next {
        '[' => {
            chars.next();
            skip_csi(chars);
        }
        ']' | 'P' | '_' | '^' | 'X' => {
            chars.next();
            skip_string(chars);
        }
        // Two-byte escapes with an intermediate byte, e.g. ESC ( B (charset selection).
        '(' | ')' | '*' | '+' | '#' | '%' => {
            chars.next();
            chars.next();
        }
        _ => {
            chars.next();
        }
    }
}

/// Skips parameter and intermediate bytes up to and including the final byte (0x40..=0x7e).
fn skip_csi(chars: &mut Chars<'_>) {
    for (_, c) in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            return;
        }
        // A newline inside a CSI means the sequence was broken; stop so the line survives.
        if c == '\n' {
            return;
        }
    }
}

/// Skips an OSC/DCS-like string up to BEL or ST.
fn skip_string(chars: &mut Chars<'_>) {
    while let Some((_, c)) = chars.next() {
        if c == '\u{7}' {
            return;
        }
        if c == '\u{1b}' {
            if let Some(&(_, '\\')) = chars.peek() {
                chars.next();
            }
            return;
        }
    }
}

/// Resolves carriage-return redraws: within each line, only what was written after the last `\r` stays,
/// the way a progress bar looks once it is done. `\r\n` is a plain line end.
pub fn resolve_redraws(s: &str) -> Cow<'_, str> {
    if !s.contains('\r') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(last_redraw(line));
    }
    Cow::Owned(out)
}

/// The visible text of one line after carriage returns: the last non-empty segment.
fn last_redraw(line: &str) -> &str {
    let line = line.strip_suffix('\r').unwrap_or(line);
    line.rsplit('\r').find(|seg| !seg.is_empty()).unwrap_or("")
}

/// Full cleaning: ANSI escapes out, redraws resolved. Borrows in the common case of plain text.
pub fn clean(s: &str) -> Cow<'_, str> {
    match strip_ansi(s) {
        Cow::Borrowed(b) => resolve_redraws(b),
        Cow::Owned(o) => match resolve_redraws(&o) {
            Cow::Borrowed(_) => Cow::Owned(o),
            Cow::Owned(r) => Cow::Owned(r),
        },
    }
}

/// The lines of `s`, as [`str::lines`] gives them (`\n` or `\r\n` ends a line, the last line
/// needs no end), in a vector of their exact number: one pass of a vectorised search counts
/// them, a second cuts them. On a 500 MB build output this is one allocation of the right
/// size instead of a vector grown by doubling to up to twice that.
pub fn lines(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(memchr::memchr_iter(b'\n', b).count() + 1);
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', b) {
        let line = &s[start..end];
        out.push(line.strip_suffix('\r').unwrap_or(line));
        start = end + 1;
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// The longest prefix of `s` at most `max` bytes long that ends on a character boundary.
pub fn prefix_at_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Shortens a line to about `max` bytes for display, never inside a character, saying how much was cut.
pub fn shorten(s: &str, max: usize) -> Cow<'_, str> {
    if s.len() <= max {
        return Cow::Borrowed(s);
    }
    let head = prefix_at_boundary(s, max);
    Cow::Owned(format!("{head}… [+{} bytes]", s.len() - head.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_csi_and_osc() {
        let s = "\u{1b}[1m\u{1b}[31merror\u{1b}[0m: x \u{1b}]0;title\u{7}done\u{1b}]8;;http://a\u{1b}\\link";
        assert_eq!(strip_ansi(s), "error: x donelink");
    }

    #[test]
    fn unterminated_escape_is_dropped() {
        assert_eq!(strip_ansi("ok\u{1b}[3"), "ok");
        assert_eq!(strip_ansi("ok\u{1b}"), "ok");
    }

    #[test]
    fn redraws_keep_last_segment() {
        assert_eq!(resolve_redraws("10%\r50%\r100%\nnext\r\n"), "100%\nnext\n");
        assert_eq!(resolve_redraws("done\r"), "done");
    }

    #[test]
    fn lines_are_those_of_str_lines() {
        for s in [
            "",
            "\n",
            "\n\n",
            "a",
            "a\n",
            "a\nb",
            "a\r\nb\r\n",
            "a\r",
            "a\r\r\n",
            "\r\n",
            "é\nü\r\n\r",
            "x\n\ny\n",
            "\rx",
            "a\rb\n",
        ] {
            assert_eq!(lines(s), s.lines().collect::<Vec<_>>(), "{s:?}");
        }
    }

    #[test]
    fn prefix_never_splits_char() {
        let s = "aé";
        assert_eq!(prefix_at_boundary(s, 2), "a");
        assert_eq!(shorten("ééé", 3), "é… [+4 bytes]");
    }
}
