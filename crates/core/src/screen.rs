//! The terminal emulator of a session: screen, bounded scrollback, modes and title.
//!
//! `alacritty_terminal` does the emulation (chosen by measurement, see ARCHITECTURE.md). This
//! module feeds it bytes, collects what the emulator wants written back to the program (answers
//! to cursor-position and device-attribute queries), and renders the grid as text, with or
//! without SGR attributes.

use alacritty_terminal::event::{Event, EventListener, WindowSize};
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::cell::{Cell, Flags};
use alacritty_terminal::term::{Config, Term, TermMode};
use alacritty_terminal::vte::ansi::{Color, NamedColor, Processor, StdSyncHandler};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use ai_session_protocol::methods::Size;

/// Default lines of scrollback kept per session.
pub const DEFAULT_SCROLLBACK: usize = 10_000;

#[derive(Default)]
struct Sink {
    replies: Vec<u8>,
    title: Option<String>,
    size: Option<Size>,
}

/// Receives the emulator's events. The emulator calls it synchronously from `feed`, on the
/// session task, so the mutex is never contended.
#[derive(Clone, Default)]
struct Listener(Arc<Mutex<Sink>>);

impl EventListener for Listener {
    fn send_event(&self, event: Event) {
        let Ok(mut sink) = self.0.lock() else { return };
        match event {
            Event::PtyWrite(text) => sink.replies.extend_from_slice(text.as_bytes()),
            Event::Title(title) => sink.title = Some(title),
            Event::ResetTitle => sink.title = None,
            Event::TextAreaSizeRequest(format) => {
                if let Some(size) = sink.size {
                    let ws = WindowSize {
                        num_lines: size.rows,
                        num_cols: size.cols,
                        cell_width: 1,
                        cell_height: 1,
                    };
                    let reply = format(ws);
                    sink.replies.extend_from_slice(reply.as_bytes());
                }
            }
            _ => {}
        }
    }
}

struct Dims(Size);

impl Dimensions for Dims {
    fn total_lines(&self) -> usize {
        usize::from(self.0.rows)
    }
    fn screen_lines(&self) -> usize {
        usize::from(self.0.rows)
    }
    fn columns(&self) -> usize {
        usize::from(self.0.cols)
    }
}

/// A terminal screen fed with a program's output.
///
/// An idle screen can be put to sleep ([`Screen::hibernate`]): the grid (about 46 KB for 80x24
/// plus its scrollback) is replaced by the few bytes that redraw it, and rebuilt on the next
/// output or look. Thousands of idle sessions then cost little more than their processes.
pub struct Screen {
    term: Option<Term<Listener>>,
    /// Bytes that rebuild the grid in a fresh emulator, while `term` is `None`.
    dormant: Option<Dormant>,
    parser: Processor<StdSyncHandler>,
    listener: Listener,
    size: Size,
    scrollback: usize,
}

struct Dormant {
    replay: Box<[u8]>,
    mode: TermMode,
}

/// The rendered screen.
pub struct Rendered {
    pub lines: Vec<String>,
    pub cursor_row: usize,
    pub cursor_col: usize,
    pub scrollback_lines: usize,
}

impl Screen {
    pub fn new(size: Size, scrollback: usize) -> Self {
        let listener = Listener::default();
        if let Ok(mut sink) = listener.0.lock() {
            sink.size = Some(size);
        }
        let term = new_term(size, scrollback, &listener);
        Self {
            term: Some(term),
            dormant: None,
            parser: Processor::new(),
            listener,
            size,
            scrollback,
        }
    }

    /// The live emulator, rebuilt first if the screen was asleep.
    fn term(&mut self) -> &mut Term<Listener> {
        let (size, scrollback, listener) = (self.size, self.scrollback, &self.listener);
        let dormant = &mut self.dormant;
        self.term.get_or_insert_with(|| {
            let mut term = new_term(size, scrollback, listener);
            if let Some(d) = dormant.take() {
                let mut parser: Processor<StdSyncHandler> = Processor::new();
                parser.advance(&mut term, &d.replay);
            }
            term
        })
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.term();
        if let Some(term) = self.term.as_mut() {
            self.parser.advance(term, bytes);
        }
    }

    pub fn is_dormant(&self) -> bool {
        self.term.is_none()
    }

    /// Puts an idle screen to sleep. Refused (returns false) on the alternate screen, whose
    /// saved primary screen could not be redrawn.
    pub fn hibernate(&mut self) -> bool {
        let Some(term) = &self.term else { return true };
        if term.mode().contains(TermMode::ALT_SCREEN) {
            return false;
        }
        let replay = snapshot(term);
        self.dormant = Some(Dormant {
            replay: replay.into_boxed_slice(),
            mode: *term.mode(),
        });
        self.term = None;
        true
    }

    fn mode(&self) -> TermMode {
        match (&self.term, &self.dormant) {
            (Some(term), _) => *term.mode(),
            (None, Some(d)) => d.mode,
            (None, None) => TermMode::default(),
        }
    }

    /// Bytes the emulator wants sent back to the program, in order.
    pub fn take_replies(&mut self) -> Vec<u8> {
        match self.listener.0.lock() {
            Ok(mut sink) if !sink.replies.is_empty() => std::mem::take(&mut sink.replies),
            _ => Vec::new(),
        }
    }

    pub fn title(&self) -> Option<String> {
        self.listener.0.lock().ok().and_then(|s| s.title.clone())
    }

    pub fn size(&self) -> Size {
        self.size
    }

    pub fn resize(&mut self, size: Size) {
        self.term().resize(Dims(size));
        self.size = size;
        if let Ok(mut sink) = self.listener.0.lock() {
            sink.size = Some(size);
        }
    }

    pub fn alternate_screen(&self) -> bool {
        self.mode().contains(TermMode::ALT_SCREEN)
    }

    /// Whether the program switched cursor keys to application mode (they then send `ESC O A`).
    pub fn app_cursor(&self) -> bool {
        self.mode().contains(TermMode::APP_CURSOR)
    }

    pub fn bracketed_paste(&self) -> bool {
        self.mode().contains(TermMode::BRACKETED_PASTE)
    }

    /// The screen's lines (with up to `scrollback` lines of history above them), right-trimmed,
    /// with trailing empty lines below the cursor removed.
    pub fn render(&mut self, scrollback: usize, ansi: bool) -> Rendered {
        let grid = self.term().grid();
        let history = grid.history_size().min(scrollback);
        let rows = grid.screen_lines();
        let cursor = grid.cursor.point;
        let mut lines = Vec::with_capacity(history + rows);
        for i in -(history as i32)..rows as i32 {
            let row = &grid[Line(i)];
            let cells = (0..grid.columns()).map(|c| &row[Column(c)]);
            lines.push(if ansi {
                line_ansi(cells, false)
            } else {
                line_text(cells)
            });
        }
        let cursor_index = history + cursor.line.0.max(0) as usize;
        while lines.len() > cursor_index + 1 && lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        Rendered {
            lines,
            cursor_row: cursor.line.0.max(0) as usize,
            cursor_col: cursor.column.0,
            scrollback_lines: history,
        }
    }

    /// Escapes that redraw the whole visible screen and put the cursor back, for a client that
    /// attaches to a running session.
    pub fn redraw_ansi(&mut self) -> String {
        let rendered = self.render(0, true);
        let mut out = String::from("\x1b[0m\x1b[H\x1b[2J");
        for (i, line) in rendered.lines.iter().enumerate() {
            let _ = write!(out, "\x1b[{};1H{line}\x1b[0m", i + 1);
        }
        let _ = write!(
            out,
            "\x1b[{};{}H",
            rendered.cursor_row + 1,
            rendered.cursor_col + 1
        );
        out
    }
}

fn new_term(size: Size, scrollback: usize, listener: &Listener) -> Term<Listener> {
    let config = Config {
        scrolling_history: scrollback,
        ..Config::default()
    };
    Term::new(config, &Dims(size), listener.clone())
}

/// Bytes that, fed to a fresh emulator of the same size, rebuild `term`'s scrollback, screen,
/// attributes, soft wraps, cursor and input modes. Not kept: the scroll region and the
/// attributes of text not yet written (both are reset by the next prompt).
fn snapshot(term: &Term<Listener>) -> Vec<u8> {
    let grid = term.grid();
    let (history, rows, cols) = (
        grid.history_size() as i32,
        grid.screen_lines() as i32,
        grid.columns(),
    );
    let mut out = String::from("\x1b[0m");
    for i in -history..rows {
        let row = &grid[Line(i)];
        let wrapped = row[Column(cols - 1)].flags.contains(Flags::WRAPLINE);
        // A soft-wrapped row is written whole so the emulator wraps it again by itself.
        out.push_str(&line_ansi((0..cols).map(|c| &row[Column(c)]), wrapped));
        if i != rows - 1 && !wrapped {
            out.push_str("\r\n");
        }
    }
    let cursor = grid.cursor.point;
    let _ = write!(out, "\x1b[{};{}H", cursor.line.0 + 1, cursor.column.0 + 1);
    let mode = *term.mode();
    for (flag, set) in [
        (TermMode::APP_CURSOR, "\x1b[?1h"),
        (TermMode::APP_KEYPAD, "\x1b="),
        (TermMode::BRACKETED_PASTE, "\x1b[?2004h"),
        (TermMode::MOUSE_REPORT_CLICK, "\x1b[?1000h"),
        (TermMode::MOUSE_DRAG, "\x1b[?1002h"),
        (TermMode::MOUSE_MOTION, "\x1b[?1003h"),
        (TermMode::SGR_MOUSE, "\x1b[?1006h"),
        (TermMode::FOCUS_IN_OUT, "\x1b[?1004h"),
        (TermMode::INSERT, "\x1b[4h"),
        (TermMode::LINE_FEED_NEW_LINE, "\x1b[20h"),
    ] {
        if mode.contains(flag) {
            out.push_str(set);
        }
    }
    if !mode.contains(TermMode::SHOW_CURSOR) {
        out.push_str("\x1b[?25l");
    }
    if !mode.contains(TermMode::LINE_WRAP) {
        out.push_str("\x1b[?7l");
    }
    out.into_bytes()
}

fn visible(cell: &Cell) -> bool {
    !cell
        .flags
        .intersects(Flags::WIDE_CHAR_SPACER | Flags::LEADING_WIDE_CHAR_SPACER)
}

fn push_cell(out: &mut String, cell: &Cell) {
    // The emulator keeps a tab as '\t' in the cell where it started (for copying); on screen it
    // is blank.
    out.push(if cell.c == '\t' { ' ' } else { cell.c });
    if let Some(extra) = cell.zerowidth() {
        out.extend(extra.iter());
    }
}

fn line_text<'a>(cells: impl Iterator<Item = &'a Cell>) -> String {
    let mut out = String::new();
    for cell in cells.filter(|c| visible(c)) {
        push_cell(&mut out, cell);
    }
    out.truncate(out.trim_end().len());
    out
}

/// A line with SGR escapes; plain trailing blanks are dropped unless `whole`.
fn line_ansi<'a>(cells: impl Iterator<Item = &'a Cell>, whole: bool) -> String {
    let mut out = String::new();
    let mut current = String::new();
    let mut pending_blank = String::new();
    for cell in cells.filter(|c| visible(c)) {
        let sgr = sgr_of(cell);
        let styled_blank = !whole && cell.c == ' ' && sgr.is_empty();
        if styled_blank {
            // Defer plain blanks so trailing ones can be dropped.
            pending_blank.push(' ');
            continue;
        }
        if !pending_blank.is_empty() {
            // The deferred blanks carry no attributes: close the current style first.
            if !current.is_empty() {
                out.push_str("\x1b[0m");
                current.clear();
            }
            out.push_str(&pending_blank);
            pending_blank.clear();
        }
        if sgr != current {
            out.push_str("\x1b[0");
            out.push_str(&sgr);
            out.push('m');
            current = sgr;
        }
        push_cell(&mut out, cell);
    }
    if !current.is_empty() {
        out.push_str("\x1b[0m");
    }
    out
}

/// The SGR parameters (each preceded by `;`) that select a cell's attributes.
fn sgr_of(cell: &Cell) -> String {
    let mut s = String::new();
    let f = cell.flags;
    for (flag, code) in [
        (Flags::BOLD, "1"),
        (Flags::DIM, "2"),
        (Flags::ITALIC, "3"),
        (Flags::UNDERLINE, "4"),
        (Flags::INVERSE, "7"),
        (Flags::HIDDEN, "8"),
        (Flags::STRIKEOUT, "9"),
    ] {
        if f.contains(flag) {
            s.push(';');
            s.push_str(code);
        }
    }
    color_sgr(&mut s, cell.fg, 30, 90, 38);
    color_sgr(&mut s, cell.bg, 40, 100, 48);
    s
}

fn color_sgr(out: &mut String, color: Color, base: u16, bright: u16, extended: u16) {
    match color {
        Color::Named(named) => {
            let n = named as u16;
            if n < 8 {
                let _ = write!(out, ";{}", base + n);
            } else if n < 16 {
                let _ = write!(out, ";{}", bright + n - 8);
            } else if (NamedColor::DimBlack as u16..=NamedColor::DimWhite as u16).contains(&n) {
                let _ = write!(out, ";{}", base + n - NamedColor::DimBlack as u16);
            }
        }
        Color::Indexed(i) => {
            let _ = write!(out, ";{extended};5;{i}");
        }
        Color::Spec(rgb) => {
            let _ = write!(out, ";{extended};2;{};{};{}", rgb.r, rgb.g, rgb.b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(cols: u16, rows: u16) -> Screen {
        Screen::new(Size { cols, rows }, 100)
    }

    #[test]
    fn plain_text_and_cursor() {
        let mut s = screen(20, 5);
        s.feed(b"hello\r\nworld");
        let r = s.render(0, false);
        assert_eq!(r.lines, vec!["hello", "world"]);
        assert_eq!((r.cursor_row, r.cursor_col), (1, 5));
    }

    #[test]
    fn carriage_return_overwrites_and_wraps() {
        let mut s = screen(5, 3);
        s.feed(b"abcdefg\r\n12\rX");
        assert_eq!(s.render(0, false).lines, vec!["abcde", "fg", "X2"]);
    }

    #[test]
    fn scrollback_is_kept_and_bounded() {
        let mut s = Screen::new(Size { cols: 10, rows: 2 }, 3);
        for i in 0..10 {
            s.feed(format!("l{i}\r\n").as_bytes());
        }
        let r = s.render(100, false);
        assert_eq!(r.scrollback_lines, 3);
        // The cursor sits on the empty line after the last one, which is kept.
        assert_eq!(r.lines, vec!["l6", "l7", "l8", "l9", ""]);
    }

    #[test]
    fn cursor_position_query_is_answered() {
        let mut s = screen(10, 4);
        s.feed(b"ab\x1b[6n");
        assert_eq!(s.take_replies(), b"\x1b[1;3R");
        assert!(s.take_replies().is_empty());
    }

    #[test]
    fn ansi_render_keeps_colours() {
        let mut s = screen(10, 2);
        s.feed(b"\x1b[1;31mred\x1b[0m x");
        let r = s.render(0, true);
        assert_eq!(r.lines[0], "\x1b[0;1;31mred\x1b[0m x");
    }

    #[test]
    fn alternate_screen_and_title() {
        let mut s = screen(10, 2);
        s.feed(b"\x1b]0;my title\x07\x1b[?1049h");
        assert!(s.alternate_screen());
        assert_eq!(s.title().as_deref(), Some("my title"));
        s.feed(b"\x1b[?1049l");
        assert!(!s.alternate_screen());
    }

    fn assert_round_trip(s: &mut Screen) {
        let before = (
            s.render(10_000, true).lines,
            s.render(0, false).cursor_row,
            s.render(0, false).cursor_col,
        );
        let modes = (s.app_cursor(), s.bracketed_paste());
        assert!(s.hibernate());
        assert!(s.is_dormant());
        assert_eq!((s.app_cursor(), s.bracketed_paste()), modes);
        let after = (
            s.render(10_000, true).lines,
            s.render(0, false).cursor_row,
            s.render(0, false).cursor_col,
        );
        assert_eq!(before, after);
    }

    #[test]
    fn hibernation_keeps_screen_scrollback_cursor_and_modes() {
        let mut s = Screen::new(Size { cols: 20, rows: 5 }, 100);
        for i in 0..30 {
            s.feed(format!("\x1b[3{}mline {i}\x1b[0m\r\n", i % 8).as_bytes());
        }
        s.feed(b"a long line that wraps around the edge twice over\x1b[?1h\x1b[?2004h$ ");
        assert_round_trip(&mut s);
        // Output after waking lands where it would have.
        s.feed(b"ls\r\n");
        let r = s.render(0, false);
        assert_eq!(r.lines.last().map(String::as_str), Some(""));
        assert!(r.lines.iter().any(|l| l.ends_with("$ ls")));
    }

    #[test]
    fn the_alternate_screen_stays_awake() {
        let mut s = screen(10, 3);
        s.feed(b"\x1b[?1049hvim");
        assert!(!s.hibernate());
        assert!(!s.is_dormant());
    }

    #[test]
    fn wide_characters_render_once() {
        let mut s = screen(10, 2);
        s.feed("日本x".as_bytes());
        assert_eq!(s.render(0, false).lines[0], "日本x");
    }
}
