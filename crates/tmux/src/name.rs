//! tmux names onto daemon session names. The daemon accepts 1-64 of `[A-Za-z0-9_.-]`, not
//! starting with `.` or `-`; tmux accepts almost anything but `:` and `.`. A pane is the daemon
//! session `PREFIX.W.S`: `PREFIX` the tmux session's name with every byte outside
//! `[A-Za-z0-9_]` written `-hh` (hex), `W` the window's index and `S` the pane's slot in its
//! window, so `ai-session ls` shows `build.0.0` for tmux's `build:0.0`.

/// The daemon's longest session name.
pub const MAX_DAEMON_NAME: usize = 64;

/// The daemon-name prefix of tmux session `name`. A prefix never starts with `-` (which the
/// daemon refuses): an escaped first byte gets a `_` in front, and a leading `_` of the name is
/// itself escaped, so every prefix decodes back to one name.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || (b == b'_' && i > 0) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("-{b:02x}"));
        }
    }
    if out.starts_with('-') {
        out.insert(0, '_');
    }
    out
}

/// The tmux session name a prefix was made from, or `None` when it is not such a prefix.
pub fn decode(prefix: &str) -> Option<String> {
    let body = prefix.strip_prefix('_').filter(|b| b.starts_with('-'));
    let body = body.unwrap_or(prefix);
    if body.is_empty() || body.starts_with('_') {
        return None;
    }
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'-' {
            let hex = body.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else if b.is_ascii_alphanumeric() || b == b'_' {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// A pane's daemon session name.
pub fn pane(prefix: &str, window: u32, slot: u32) -> String {
    format!("{prefix}.{window}.{slot}")
}

/// Splits a daemon session name into `(prefix, window index, slot)` when it names a pane.
pub fn parse_pane(daemon: &str) -> Option<(&str, u32, u32)> {
    let (rest, slot) = daemon.rsplit_once('.')?;
    let (prefix, window) = rest.rsplit_once('.')?;
    if prefix.is_empty() || prefix.contains('.') {
        return None;
    }
    Some((prefix, window.parse().ok()?, slot.parse().ok()?))
}

/// tmux's own cleaning of a session name: `:` and `.` become `_`, then [`vis`].
pub fn clean_session_name(name: &str) -> String {
    vis(&name.replace([':', '.'], "_"))
}

/// A name as tmux stores it: backslashes doubled, tabs and newlines as `\\t` and `\\n`,
/// other control characters in octal (`\\033`).
pub fn vis(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for n in [
            "build",
            "my session",
            "-a",
            "_x",
            "_-a",
            "é",
            "0",
            "a_b",
            "ab-c",
        ] {
            let e = encode(n);
            assert!(!e.starts_with(['-', '.']), "{n} -> {e}");
            assert!(
                e.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "{e}"
            );
            assert_eq!(decode(&e).as_deref(), Some(n), "{n} -> {e}");
        }
        assert_eq!(encode("build"), "build");
        assert_eq!(encode("a b"), "a-20b");
    }

    #[test]
    fn vis_escapes_as_tmux() {
        assert_eq!(vis("a\\b\tc\x1b"), "a\\\\b\\tc\\033");
        assert_eq!(clean_session_name("a.b:c"), "a_b_c");
    }

    #[test]
    fn pane_names() {
        assert_eq!(parse_pane("a-20b.3.1"), Some(("a-20b", 3, 1)));
        assert_eq!(parse_pane("plain"), None);
        assert_eq!(parse_pane("x.y.1"), None);
        assert_eq!(pane("s", 0, 0), "s.0.0");
    }
}
