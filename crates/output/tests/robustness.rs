//! No input may panic the parsers or the compact view: arbitrary bytes, invalid UTF-8, multi-byte
//! characters cut anywhere, escape floods, and very long lines. Views never cut inside a character
//! (they are `String`s, so a cut inside one would have panicked).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ai_session_output::{Handle, compact, parse, parse_bytes};
use proptest::prelude::*;

const COMMANDS: [Option<&str>; 8] = [
    None,
    Some("cargo test"),
    Some("git status"),
    Some("npx jest"),
    Some("python -m pytest"),
    Some("ps aux"),
    Some("ls -l"),
    Some("tsc"),
];

fn check(command: Option<&str>, bytes: &[u8]) {
    let parsed = parse_bytes(command, bytes);
    let raw = String::from_utf8_lossy(bytes);
    let view = compact(&parsed, &raw, &Handle::log("p", 0, bytes.len() as u64));
    // A condensed view ends with its footer; an output no view would shorten is returned whole.
    assert!(view.whole || view.text.ends_with("]\n"), "{}", view.text);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048), c in 0usize..8) {
        check(COMMANDS[c], &bytes);
    }

    #[test]
    fn tool_like_text(
        parts in proptest::collection::vec(prop_oneof![
            Just("error[E0308]: mismatched types\n --> src/a.rs:1:2\n".to_string()),
            Just("test a ... FAILED\n".to_string()),
            Just("\u{1b}[31m".to_string()),
            Just("\u{1b}]0;".to_string()),
            Just("\r".to_string()),
            Just("é漢🙂".to_string()),
            Just("FAILED x.py::t - E\n".to_string()),
            Just("  ● a › b\n".to_string()),
            Just("CONFLICT (content): Merge conflict in a\n".to_string()),
            "[ -~]{0,40}\n",
        ], 0..40),
        cut in 0usize..4,
        c in 0usize..8,
    ) {
        let mut bytes = parts.concat().into_bytes();
        // Cut the tail anywhere, possibly inside a multi-byte character.
        let len = bytes.len().saturating_sub(cut);
        bytes.truncate(len);
        check(COMMANDS[c], &bytes);
    }
}

#[test]
fn escape_flood() {
    let mut s = String::new();
    for i in 0..200_000 {
        s.push_str(if i % 3 == 0 {
            "\u{1b}[1;31m"
        } else {
            "\u{1b}]8;;x\u{7}"
        });
    }
    s.push_str("error: done\n");
    let parsed = parse(None, &s);
    let view = compact(&parsed, &s, &Handle::default());
    assert!(view.text.contains("error: done"));
    check(None, s.as_bytes());
}

#[test]
fn very_long_single_line() {
    // 16 MiB without a newline, with multi-byte characters straddling every chunk boundary.
    let line = "aé漢🙂 ".repeat(16 << 20 >> 4);
    let parsed = parse(None, &line);
    assert_eq!(parsed.lines, 1);
    let body = compact(&parsed, &line, &Handle::default()).text;
    assert!(
        body.len() < 4096,
        "view of a long line stays short: {}",
        body.len()
    );
    let end = (0..=(1 << 20))
        .rev()
        .find(|i| line.is_char_boundary(*i))
        .unwrap();
    let short = &line[..end];
    for c in COMMANDS {
        let p = parse(c, short);
        let b = compact(&p, short, &Handle::default()).text;
        assert!(b.len() < 1 << 20);
    }
}

#[test]
fn long_line_tokens_are_counted_without_blowup() {
    let line = "x".repeat(2 << 20);
    check(None, line.as_bytes());
}
