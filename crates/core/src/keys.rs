//! tmux-style key names turned into the bytes a terminal sends for them.
//!
//! Names follow tmux: `Enter`, `Tab`, `BTab`, `Space`, `Escape`, `BSpace`, `Up`/`Down`/`Left`/
//! `Right`, `Home`, `End`, `PageUp`/`PgUp`/`PPage`, `PageDown`/`PgDn`/`NPage`, `Insert`/`IC`,
//! `Delete`/`DC`, `F1`..`F12`, with `C-`, `M-` and `S-` prefixes. As in tmux, an argument that
//! is not a key name is typed as text.

/// Modes of the program that change what some keys send.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyModes {
    /// DECCKM: cursor keys send `ESC O x` instead of `ESC [ x`.
    pub app_cursor: bool,
}

#[derive(Default, Clone, Copy)]
struct Mods {
    ctrl: bool,
    meta: bool,
    shift: bool,
}

impl Mods {
    /// The xterm modifier parameter (`1 + shift + 2*alt + 4*ctrl`).
    fn param(self) -> u8 {
        1 + u8::from(self.shift) + 2 * u8::from(self.meta) + 4 * u8::from(self.ctrl)
    }
    fn any(self) -> bool {
        self.ctrl || self.meta || self.shift
    }
}

/// The bytes for one argument of `send`.
pub fn encode(arg: &str, modes: KeyModes) -> Vec<u8> {
    encode_key(arg, modes).unwrap_or_else(|| arg.as_bytes().to_vec())
}

/// The bytes for a key name, or `None` when `arg` is not one.
pub fn encode_key(arg: &str, modes: KeyModes) -> Option<Vec<u8>> {
    let mut mods = Mods::default();
    let mut rest = arg;
    while rest.len() > 2 {
        match rest.get(..2).unwrap_or_default() {
            "C-" | "c-" => mods.ctrl = true,
            "M-" | "m-" => mods.meta = true,
            "S-" | "s-" => mods.shift = true,
            _ => break,
        }
        rest = &rest[2..];
    }
    if let Some(bytes) = special(rest, mods, modes) {
        return Some(bytes);
    }
    let mut chars = rest.chars();
    let (Some(c), None) = (chars.next(), chars.next()) else {
        return None;
    };
    if !mods.any() {
        return None; // a single character alone is text, not a key name
    }
    let mut c = c;
    if mods.shift {
        c = c.to_ascii_uppercase();
    }
    let mut out = Vec::new();
    if mods.meta {
        out.push(0x1b);
    }
    if mods.ctrl {
        out.push(ctrl_byte(c)?);
    } else {
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    Some(out)
}

fn ctrl_byte(c: char) -> Option<u8> {
    Some(match c {
        'a'..='z' => c as u8 - b'a' + 1,
        'A'..='Z' => c as u8 - b'A' + 1,
        ' ' | '@' | '2' => 0,
        '[' | '3' => 0x1b,
        '\\' | '4' => 0x1c,
        ']' | '5' => 0x1d,
        '^' | '6' => 0x1e,
        '_' | '7' | '/' => 0x1f,
        '?' | '8' => 0x7f,
        _ => return None,
    })
}

fn special(name: &str, mods: Mods, modes: KeyModes) -> Option<Vec<u8>> {
    let simple = |b: &[u8]| {
        let mut v = if mods.meta { vec![0x1b] } else { Vec::new() };
        v.extend_from_slice(b);
        Some(v)
    };
    match name {
        "Enter" => return simple(b"\r"),
        "Tab" if mods.shift => return Some(b"\x1b[Z".to_vec()),
        "Tab" => return simple(b"\t"),
        "BTab" => return Some(b"\x1b[Z".to_vec()),
        "Space" if mods.ctrl => return simple(b"\0"),
        "Space" => return simple(b" "),
        "Escape" | "Esc" => return simple(b"\x1b"),
        "BSpace" => return simple(b"\x7f"),
        _ => {}
    }
    // Cursor and editing keys: `CSI x`, `SS3 x` in application mode, `CSI 1;m x` with modifiers.
    let letter = match name {
        "Up" => Some(b'A'),
        "Down" => Some(b'B'),
        "Right" => Some(b'C'),
        "Left" => Some(b'D'),
        "Home" => Some(b'H'),
        "End" => Some(b'F'),
        "F1" => Some(b'P'),
        "F2" => Some(b'Q'),
        "F3" => Some(b'R'),
        "F4" => Some(b'S'),
        _ => None,
    };
    if let Some(l) = letter {
        let is_fkey = matches!(l, b'P'..=b'S');
        return Some(if mods.any() {
            format!("\x1b[1;{}{}", mods.param(), l as char).into_bytes()
        } else if is_fkey || modes.app_cursor {
            vec![0x1b, b'O', l]
        } else {
            vec![0x1b, b'[', l]
        });
    }
    let number = match name {
        "Insert" | "IC" => 2,
        "Delete" | "DC" => 3,
        "PageUp" | "PgUp" | "PPage" => 5,
        "PageDown" | "PgDn" | "NPage" => 6,
        "F5" => 15,
        "F6" => 17,
        "F7" => 18,
        "F8" => 19,
        "F9" => 20,
        "F10" => 21,
        "F11" => 23,
        "F12" => 24,
        _ => return None,
    };
    Some(if mods.any() {
        format!("\x1b[{number};{}~", mods.param()).into_bytes()
    } else {
        format!("\x1b[{number}~").into_bytes()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Vec<u8> {
        encode(s, KeyModes::default())
    }

    #[test]
    fn named_keys() {
        assert_eq!(k("Enter"), b"\r");
        assert_eq!(k("C-c"), [3]);
        assert_eq!(k("C-d"), [4]);
        assert_eq!(k("M-x"), b"\x1bx");
        assert_eq!(k("C-M-a"), b"\x1b\x01");
        assert_eq!(k("Up"), b"\x1b[A");
        assert_eq!(k("S-Up"), b"\x1b[1;2A");
        assert_eq!(k("C-Right"), b"\x1b[1;5C");
        assert_eq!(k("F1"), b"\x1bOP");
        assert_eq!(k("F5"), b"\x1b[15~");
        assert_eq!(k("PPage"), b"\x1b[5~");
        assert_eq!(k("DC"), b"\x1b[3~");
        assert_eq!(k("BSpace"), [0x7f]);
        assert_eq!(k("C-Space"), [0]);
        assert_eq!(k("Escape"), [0x1b]);
    }

    #[test]
    fn application_cursor_mode() {
        assert_eq!(encode("Up", KeyModes { app_cursor: true }), b"\x1bOA");
    }

    #[test]
    fn other_words_are_text() {
        assert_eq!(k("echo hi"), b"echo hi");
        assert_eq!(k("q"), b"q");
        assert_eq!(k("C-"), b"C-");
        assert_eq!(k("Entering"), b"Entering");
        assert_eq!(k("日本"), "日本".as_bytes());
    }
}
