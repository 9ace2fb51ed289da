//! Byte streams recorded from real programs (tests/replay/record.sh) replayed into the emulator:
//! the screen must match what tmux showed for the same bytes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use ai_session_core::Size;
use ai_session_core::screen::Screen;

fn normalise(lines: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = lines.map(|l| l.trim_end().to_owned()).collect();
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

fn replay(name: &str) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/replay");
    let bytes = std::fs::read(dir.join(format!("{name}.bin"))).unwrap();
    let expected = std::fs::read_to_string(dir.join(format!("{name}.screen"))).unwrap();
    let mut screen = Screen::new(Size { cols: 80, rows: 24 }, 1000);
    // Feed in small uneven pieces, as a PTY would deliver them.
    for chunk in bytes.chunks(37) {
        screen.feed(chunk);
    }
    let got = normalise(screen.render(0, false).lines.into_iter());
    let want = normalise(expected.lines().map(str::to_owned));
    assert_eq!(got, want, "{name}: screen differs from tmux's");
    // A screen put to sleep and woken shows the same (the alternate screen never sleeps).
    let before = screen.render(1000, true).lines;
    if screen.hibernate() {
        assert_eq!(
            screen.render(1000, true).lines,
            before,
            "{name}: changed by hibernation"
        );
    }
}

#[test]
fn ls_with_colours_scrolls() {
    replay("ls");
}

#[test]
fn vim_on_the_alternate_screen() {
    replay("vim");
}

#[test]
fn less_pager() {
    replay("less");
}

#[test]
fn top_full_screen_redraws() {
    replay("top");
}

#[test]
fn scroll_regions_insert_delete_wide_chars_and_wrap() {
    replay("synthetic");
}
