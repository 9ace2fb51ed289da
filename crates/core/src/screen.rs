//! The terminal emulator of a session: screen, bounded scrollback, modes and title.
//!
//! `alacritty_terminal` does the emulation (chosen by measurement, see ARCHITECTURE.md). This
//! module feeds it bytes, collects what the emulator wants written back to the program (answers
//! to cursor-position and device-attribute queries), and renders the grid as text, with or
//! without SGR attributes.
//!
//! Escape sequences are bounded before the emulator sees them. Its parser keeps an OSC
//! string's whole body until the string ends, so a program that opens one and never ends it
//! (`printf '\033]0;'` and then endless bytes) would grow the daemon without end. An OSC string
//! longer than [`MAX_OSC`] bytes (xterm's limit) is cut: the emulator forgets it, as if it
//! never started, and its remaining bytes up to the terminator are skipped. Window titles
//! (OSC 0, 1, 2) are cut at [`MAX_TITLE`], since the emulator keeps up to 4096 of them on its
//! title stack. DCS, SOS, PM and APC strings are not collected by this emulator (their bytes
//! are dropped as they come), and CSI parameters are a fixed array, so they need no bound. A
//! synchronized update is held by the parser up to 2 MiB, and shown after 150 ms if its end
//! never comes.
//!
//! Plain text is drawn lazily: it waits in a buffer until something else comes or the screen
//! is looked at, and text that later lines would scroll out of the scrollback anyway is never
//! drawn ([`plain`] says exactly when that holds). A `cat` of megabytes then costs the emulator
//! the last screen and scrollback of it, not every line.

mod plain;

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

/// Longest OSC string body given to the emulator (xterm's limit, 64 KiB); a longer one is
/// dropped whole.
pub const MAX_OSC: usize = 64 * 1024;

/// Longest window title (OSC 0, 1, 2 body) given to the emulator: the 4096 titles its title
/// stack holds then take at most 4 MiB. A longer title is dropped whole.
pub const MAX_TITLE: usize = 1024;

/// Most plain text waiting to be drawn. Past it, what can never be seen is dropped; when that
/// leaves more than half of it (a scrollback too long for the buffer), all of it is drawn.
const PENDING_CAP: usize = 4 << 20;

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
    /// Where the parser is in an escape sequence, as far as OSC strings are concerned.
    guard: OscGuard,
    listener: Listener,
    size: Size,
    scrollback: usize,
    /// Plain text not drawn yet, all given while the parser was in its ground state with the
    /// whole screen scrolling.
    pending: Vec<u8>,
    /// Where the parser is, as far as plain text is concerned.
    sequence: plain::Sequence,
    /// The rest of a read after its queued plain text, kept by [`Screen::hold`] to be drawn at
    /// the owner's next turn.
    held: Vec<u8>,
    /// Bytes of plain text dropped unseen so far.
    #[cfg(test)]
    unseen: usize,
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
            guard: OscGuard::default(),
            listener,
            size,
            scrollback,
            pending: Vec::new(),
            sequence: plain::Sequence::default(),
            held: Vec::new(),
            #[cfg(test)]
            unseen: 0,
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

    /// Takes the program's output. Plain text may be drawn later (see [`Screen::settle`]);
    /// anything else is drawn now, after it, and its answers are ready for `take_replies`.
    pub fn feed(&mut self, bytes: &[u8]) {
        let queued = self.queue_plain(bytes);
        self.feed_unqueued(&bytes[queued..]);
    }

    /// The first step of [`Screen::feed`]: queues the plain text that `bytes` starts with to be
    /// drawn later, and returns its length. The rest of `bytes` must go to
    /// [`Screen::feed_unqueued`] before anything else is fed or the screen is looked at; in
    /// between nothing is drawn, so the work of drawing a flood's tail can wait until a
    /// finished command has been answered.
    pub fn queue_plain(&mut self, bytes: &[u8]) -> usize {
        if self.pending.is_empty() && !(self.sequence.plain_ground() && self.sync_idle()) {
            return 0;
        }
        let n = plain::plain_len(bytes);
        self.pending.extend_from_slice(&bytes[..n]);
        if self.pending.len() >= PENDING_CAP {
            self.drop_unseen();
            if self.pending.len() > PENDING_CAP / 2 {
                self.settle();
            }
        }
        n
    }

    /// The second step of [`Screen::feed`]: draws what was queued, then `rest` (the bytes
    /// after the plain text [`Screen::queue_plain`] took).
    pub fn feed_unqueued(&mut self, rest: &[u8]) {
        if !rest.is_empty() {
            self.settle();
            self.advance(rest);
        }
    }

    /// Keeps `rest` (what [`Screen::queue_plain`] left of a read) instead of drawing it now,
    /// so that its owner can first let whoever waited on the read go on. Until the owner gives
    /// [`Screen::take_held`] to [`Screen::feed_unqueued`], nothing else may be fed and the
    /// screen must not be looked at.
    pub fn hold(&mut self, rest: &[u8]) {
        self.held.extend_from_slice(rest);
    }

    /// True while bytes given to [`Screen::hold`] wait to be drawn.
    pub fn holds(&self) -> bool {
        !self.held.is_empty()
    }

    /// The bytes given to [`Screen::hold`], for [`Screen::feed_unqueued`].
    pub fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    /// Draws the plain text waiting to be drawn, less what would scroll out unseen.
    pub fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        self.drop_unseen();
        let pending = std::mem::take(&mut self.pending);
        self.advance(&pending);
    }

    /// Drops the waiting text that the rest of it scrolls out of the screen and scrollback.
    fn drop_unseen(&mut self) {
        let lines = 2 * usize::from(self.size.rows) + self.scrollback + 1;
        if let Some(cut) = plain::witness_cut(&self.pending, lines) {
            self.pending.drain(..cut);
            #[cfg(test)]
            {
                self.unseen += cut;
            }
        }
    }

    /// No synchronized update is holding bytes back.
    fn sync_idle(&self) -> bool {
        self.parser.sync_timeout().sync_timeout().is_none()
    }

    /// Gives `bytes` to the emulator now.
    fn advance(&mut self, bytes: &[u8]) {
        self.term();
        self.end_stale_sync();
        let Some(term) = self.term.as_mut() else {
            return;
        };
        let rows = self.size.rows;
        let mut rest = bytes;
        // Almost every chunk goes to the parser whole, without a copy; only a chunk in which
        // an OSC string passes its bound is split around the bytes skipped.
        while let Some(cut) = self.guard.next_cut(rest) {
            self.parser.advance(term, &rest[..cut.pass]);
            self.sequence.advance(&rest[..cut.pass], rows);
            if cut.forget {
                // The parser holds the string's first bytes: a fresh one, in the ground state,
                // is the parser that never saw the string. Bytes held for a synchronized
                // update (CSI ? 2026 h) are processed first; they precede the cut.
                if self.parser.sync_bytes_count() > 0 {
                    self.parser.stop_sync(term);
                }
                self.parser = Processor::new();
                self.sequence.parser_reset();
            }
            rest = &rest[cut.pass + cut.skip..];
        }
        self.parser.advance(term, rest);
        self.sequence.advance(rest, rows);
    }

    /// Shows a synchronized update (`CSI ? 2026 h` ... `CSI ? 2026 l`) whose end never came
    /// once its 150 ms are over, as terminals do. Until then the parser holds its bytes (at
    /// most 2 MiB: it shows them when its buffer fills).
    fn end_stale_sync(&mut self) {
        let stale = self
            .parser
            .sync_timeout()
            .sync_timeout()
            .is_some_and(|t| std::time::Instant::now() >= t);
        if let (true, Some(term)) = (stale, self.term.as_mut()) {
            self.parser.stop_sync(term);
        }
    }

    /// Asleep, with nothing waiting to be drawn.
    pub fn is_dormant(&self) -> bool {
        self.term.is_none() && self.pending.is_empty() && self.held.is_empty()
    }

    /// Puts an idle screen to sleep. Refused (returns false) on the alternate screen, whose
    /// saved primary screen could not be redrawn.
    pub fn hibernate(&mut self) -> bool {
        self.settle();
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

    /// Bytes that redraw this screen (scrollback with attributes, cursor, input modes) in a
    /// fresh emulator: what a session carries to the daemon that adopts it. On the alternate
    /// screen they switch to it and redraw it; the primary screen under it is not carried.
    pub fn replay_bytes(&mut self) -> Vec<u8> {
        self.settle();
        if let (None, Some(d)) = (&self.term, &self.dormant) {
            return d.replay.to_vec();
        }
        let term = self.term();
        let mut out = Vec::new();
        if term.mode().contains(TermMode::ALT_SCREEN) {
            out.extend_from_slice(b"\x1b[?1049h");
        }
        out.extend(snapshot(term));
        out
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
        self.settle();
        self.term().resize(Dims(size));
        self.sequence.region_reset();
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
        self.settle();
        self.term();
        self.end_stale_sync();
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

/// Follows the emulator's parser (`vte`) through escape sequences far enough to know when it is
/// collecting an OSC string and how long that string is. It mirrors the parser's transitions:
/// ESC enters the escape state from any state; `]` there starts an OSC string, which BEL, CAN,
/// SUB or ESC end; other bytes after ESC start something else (CSI, DCS, a plain escape), which
/// only the next ESC can lead back to an OSC string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum OscGuard {
    /// Anywhere but in an escape or an OSC string: only an ESC matters.
    #[default]
    Other,
    /// After ESC (C0 controls, DEL and bytes from 0x80 leave the parser there).
    Escape,
    /// In an OSC string of `len` body bytes, whose first two bytes are `head`.
    Osc { len: usize, head: [u8; 2] },
    /// In an OSC string that passed its bound: bytes are skipped up to its terminator.
    Skip,
}

/// Where [`OscGuard::next_cut`] splits a chunk.
#[derive(Debug, PartialEq, Eq)]
struct Cut {
    /// Bytes given to the parser first.
    pass: usize,
    /// Start a fresh parser after them (an OSC string passed its bound).
    forget: bool,
    /// Bytes skipped after them.
    skip: usize,
}

impl OscGuard {
    /// Scans `chunk` up to the first place it must be cut, or returns `None` when all of it can
    /// go to the parser. The caller passes the rest of the chunk (after the cut) to the next
    /// call.
    fn next_cut(&mut self, chunk: &[u8]) -> Option<Cut> {
        if chunk.is_empty() {
            return None;
        }
        if *self == Self::Skip {
            return Some(self.skip(chunk, 0, false));
        }
        let mut i = 0;
        loop {
            match *self {
                Self::Other => {
                    let at = memchr::memchr(0x1b, &chunk[i..])?;
                    i += at + 1;
                    *self = Self::Escape;
                }
                Self::Escape => {
                    let &b = chunk.get(i)?;
                    i += 1;
                    *self = match b {
                        b']' => Self::Osc {
                            len: 0,
                            head: [0; 2],
                        },
                        0x00..=0x17 | 0x19 | 0x1b..=0x1f | 0x7f..=0xff => Self::Escape,
                        _ => Self::Other,
                    };
                }
                Self::Osc { mut len, mut head } => {
                    let body = &chunk[i..];
                    let end = body
                        .iter()
                        .position(|b| matches!(b, 0x07 | 0x18 | 0x1a | 0x1b));
                    let take = end.unwrap_or(body.len());
                    for (k, &b) in body[..take].iter().take(2 - len.min(2)).enumerate() {
                        head[len + k] = b;
                    }
                    let limit = if matches!(head, [b'0'..=b'2', b';']) {
                        MAX_TITLE
                    } else {
                        MAX_OSC
                    };
                    if len + take > limit {
                        // The first byte past the bound is not given to the parser.
                        let pass = i + (limit - len.min(limit));
                        return Some(self.skip(chunk, pass, true));
                    }
                    len += take;
                    match end {
                        None => {
                            *self = Self::Osc { len, head };
                            return None;
                        }
                        Some(_) => {
                            i += take;
                            // The terminator itself is the parser's: ESC starts an escape.
                            *self = if chunk[i] == 0x1b {
                                Self::Escape
                            } else {
                                Self::Other
                            };
                            i += 1;
                        }
                    }
                }
                Self::Skip => return Some(self.skip(chunk, i, false)),
            }
        }
    }

    /// Skips from `pass` to the end of the OSC string being dropped: up to and including a
    /// BEL, CAN or SUB; up to an ESC, which the parser gets (it starts the next sequence).
    fn skip(&mut self, chunk: &[u8], pass: usize, forget: bool) -> Cut {
        let rest = &chunk[pass..];
        let (skip, next) = match rest
            .iter()
            .position(|b| matches!(b, 0x07 | 0x18 | 0x1a | 0x1b))
        {
            Some(at) if rest[at] == 0x1b => (at, Self::Other),
            Some(at) => (at + 1, Self::Other),
            None => (rest.len(), Self::Skip),
        };
        *self = next;
        Cut { pass, forget, skip }
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
    // A row's cells mostly share their attributes: their SGR is built when they change.
    let mut style = None;
    let mut sgr = String::new();
    for cell in cells.filter(|c| visible(c)) {
        let key = (cell.fg, cell.bg, cell.flags & SGR_FLAGS);
        if style != Some(key) {
            sgr = sgr_of(cell);
            style = Some(key);
        }
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
        if !(sgr.is_empty() && current.is_empty()) && sgr != current {
            out.push_str("\x1b[0");
            out.push_str(&sgr);
            out.push('m');
            current.clone_from(&sgr);
        }
        push_cell(&mut out, cell);
    }
    if !current.is_empty() {
        out.push_str("\x1b[0m");
    }
    out
}

/// The cell flags an SGR sequence selects.
const SGR_FLAGS: Flags = Flags::BOLD
    .union(Flags::DIM)
    .union(Flags::ITALIC)
    .union(Flags::UNDERLINE)
    .union(Flags::INVERSE)
    .union(Flags::HIDDEN)
    .union(Flags::STRIKEOUT);

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

    fn feed_in(s: &mut Screen, data: &[u8], chunk: usize) {
        for piece in data.chunks(chunk) {
            s.feed(piece);
        }
    }

    fn osc(body: &[u8], end: &[u8]) -> Vec<u8> {
        let mut out = b"\x1b]".to_vec();
        out.extend_from_slice(body);
        out.extend_from_slice(end);
        out
    }

    #[test]
    fn titles_up_to_the_bound_are_kept_longer_ones_dropped() {
        for chunk in [1, 7, 4096, usize::MAX] {
            let mut s = screen(20, 3);
            let mut title = b"2;".to_vec();
            title.extend(std::iter::repeat_n(b't', MAX_TITLE - 2));
            feed_in(&mut s, &osc(&title, b"\x07"), chunk);
            assert_eq!(
                s.title().map(|t| t.len()),
                Some(MAX_TITLE - 2),
                "chunk {chunk}"
            );
            title.push(b't');
            feed_in(&mut s, &osc(&title, b"\x1b\\"), chunk);
            // Dropped whole: the title before it stays, and the text after it is shown.
            assert_eq!(
                s.title().map(|t| t.len()),
                Some(MAX_TITLE - 2),
                "chunk {chunk}"
            );
            feed_in(&mut s, b"after", chunk);
            assert_eq!(s.render(0, false).lines, vec!["after"], "chunk {chunk}");
        }
    }

    #[test]
    fn an_unterminated_osc_string_is_cut_at_the_bound_and_skipped_to_its_end() {
        let mut g = OscGuard::default();
        let mut data = b"ab\x1b]777;".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_OSC));
        // 2 bytes of text, ESC ], then exactly MAX_OSC body bytes pass.
        let cut = g.next_cut(&data).unwrap();
        assert_eq!(
            cut,
            Cut {
                pass: 4 + MAX_OSC,
                forget: true,
                skip: 4
            }
        );
        assert_eq!(g, OscGuard::Skip);
        // Later chunks are skipped up to the terminator; ESC goes to the parser.
        assert_eq!(
            g.next_cut(b"yyy").unwrap(),
            Cut {
                pass: 0,
                forget: false,
                skip: 3
            }
        );
        assert_eq!(
            g.next_cut(b"yy\x1b\\z").unwrap(),
            Cut {
                pass: 0,
                forget: false,
                skip: 2
            }
        );
        assert_eq!(g.next_cut(b"\x1b\\z"), None);
        assert_eq!(g, OscGuard::Other);
        // BEL ends it too, and is skipped with it.
        let mut g = OscGuard::Skip;
        assert_eq!(
            g.next_cut(b"yy\x07z").unwrap(),
            Cut {
                pass: 0,
                forget: false,
                skip: 3
            }
        );
        assert_eq!(g.next_cut(b"z"), None);
    }

    #[test]
    fn floods_of_osc_and_dcs_leave_a_working_screen() {
        for chunk in [3, 4096, 32 * 1024] {
            let mut s = screen(30, 4);
            let mut data = osc(b"777;", b"");
            data.extend(std::iter::repeat_n(b'x', 3 * MAX_OSC + 17));
            // The D mark a shell prints next ends the string (and is a string of its own).
            data.extend_from_slice(b"\x1b]133;D;0\x07one\r\n");
            data.extend_from_slice(b"\x1bP1$q");
            data.extend(std::iter::repeat_n(b'y', 200_000));
            data.extend_from_slice(b"\x1b\\two\r\n");
            data.extend_from_slice(&osc(b"0;", b""));
            data.extend(std::iter::repeat_n(b'z', 5 * MAX_TITLE));
            data.extend_from_slice(b"\x07\x1b]0;short\x07three");
            feed_in(&mut s, &data, chunk);
            assert_eq!(
                s.render(0, false).lines,
                vec!["one", "two", "three"],
                "chunk {chunk}"
            );
            assert_eq!(s.title().as_deref(), Some("short"));
        }
    }

    #[test]
    fn sequences_that_only_look_like_osc_are_not_cut() {
        // ESC [ ] is a CSI, not an OSC; an OSC under the bound passes whole.
        let mut g = OscGuard::default();
        let mut data = b"\x1b[]".to_vec();
        data.extend(std::iter::repeat_n(b'x', 2 * MAX_OSC));
        assert_eq!(g.next_cut(&data), None);
        let mut data = osc(b"8;;", b"");
        data.extend(std::iter::repeat_n(b'u', MAX_OSC - 3));
        data.push(0x07);
        assert_eq!(OscGuard::default().next_cut(&data), None);
    }

    #[test]
    fn a_synchronized_update_that_never_ends_is_shown_after_its_timeout() {
        let mut s = screen(20, 3);
        s.feed(b"before\r\n\x1b[?2026hduring");
        // Held while the update lasts, shown once its 150 ms are over.
        assert_eq!(s.render(0, false).lines, vec!["before", ""]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while s.render(0, false).lines != vec!["before", "during"] {
            assert!(std::time::Instant::now() < deadline, "never shown");
            std::thread::yield_now();
        }
        // A finished update is shown at its end.
        s.feed(b"\r\n\x1b[?2026hnext\x1b[?2026l");
        assert_eq!(s.render(0, false).lines, vec!["before", "during", "next"]);
    }
}
