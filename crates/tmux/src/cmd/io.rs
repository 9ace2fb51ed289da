//! Input and output: send-keys, capture-pane, clear-history, pipe-pane (and the process that
//! carries a pipe), paste buffers.

use ai_session_protocol::registry::{self as reg, Method};
use std::io::Write;
use std::process::{Command, Stdio};

use ai_session_client::{Notifications, Options, blocking::Client};
use ai_session_protocol::methods::{
    CaptureParams, CaptureResult, NOTIFY_CLOSED, NOTIFY_OUTPUT, OutputEvent, ReadParams,
    ReadResult, SendParams, SubscribeResult, Target, WaitFor, WaitParams, WaitResult, WriteParams,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::Ctx;
use crate::args::Args;
use crate::error::TmuxError;
use crate::options;
use crate::server::Server;
use crate::state::Buffer;
use crate::target::{self, Found, Kind};

/// Key names as tmux spells them; tmux matches them in any case.
const KEYS: &[&str] = &[
    "Enter", "Tab", "BTab", "Space", "Escape", "Esc", "BSpace", "Up", "Down", "Left", "Right",
    "Home", "End", "PageUp", "PgUp", "PPage", "PageDown", "PgDn", "NPage", "Insert", "IC",
    "Delete", "DC", "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10", "F11", "F12",
];

/// A key argument in the daemon's spelling: names in tmux's case, `^X` as `C-x`.
fn normalise_key(arg: &str) -> String {
    if let Some(c) = arg.strip_prefix('^').filter(|c| c.chars().count() == 1) {
        return format!("C-{}", c.to_ascii_lowercase());
    }
    let mut prefix = String::new();
    let mut rest = arg;
    while rest.len() > 2 && matches!(&rest[..2], "C-" | "c-" | "M-" | "m-" | "S-" | "s-") {
        prefix.push_str(&rest[..2].to_ascii_uppercase());
        rest = &rest[2..];
    }
    match KEYS.iter().find(|k| k.eq_ignore_ascii_case(rest)) {
        Some(k) => format!("{prefix}{k}"),
        None => arg.to_owned(),
    }
}

pub(crate) fn send_keys(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    for (flag, what) in [('X', "copy-mode commands"), ('M', "mouse events")] {
        if args.has(flag) {
            return Err(TmuxError::msg(format!(
                "send-keys -{flag}: {what} are not supported by ai-session"
            )));
        }
    }
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
    let daemon = super::session::pane_daemon(server, found)?;
    let repeat = args.number('N', "repeat count")?.unwrap_or(1).max(1);
    if args.has('R') {
        return Err(TmuxError::msg(
            "send-keys -R: resetting the pane's terminal state is not supported by ai-session (send 'reset' Enter to the shell)",
        ));
    }
    if args.rest.is_empty() {
        return Ok(());
    }
    for _ in 0..repeat {
        if args.has('H') {
            let bytes = args
                .rest
                .iter()
                .map(|h| {
                    u8::from_str_radix(h, 16)
                        .map_err(|_| TmuxError::msg(format!("invalid key: {h}")))
                })
                .collect::<Result<Vec<u8>, _>>()?;
            write_bytes(server, &daemon, &bytes)?;
            continue;
        }
        let literal = args.has('l');
        let keys = if literal {
            args.rest.clone()
        } else {
            args.rest.iter().map(|k| normalise_key(k)).collect()
        };
        let params = SendParams {
            target: daemon.clone(),
            keys,
            literal,
            paste: false,
        };
        let _: serde_json::Value = server.call(reg::SessionSend::NAME, params)?;
    }
    Ok(())
}

fn write_bytes(server: &Server, daemon: &str, bytes: &[u8]) -> Result<(), TmuxError> {
    let params = WriteParams {
        target: daemon.to_owned(),
        data_b64: B64.encode(bytes),
    };
    let _: serde_json::Value = server.call(reg::SessionWrite::NAME, params)?;
    Ok(())
}

/// A `-S`/`-E` line: `-` is the edge, numbers count from the top of the visible screen.
fn line_arg(v: Option<&str>, edge: i64, what: &str) -> Result<i64, TmuxError> {
    match v {
        None => Ok(edge),
        Some("-") => Ok(edge),
        Some(n) => n
            .parse()
            .map_err(|_| TmuxError::msg(format!("{what} invalid"))),
    }
}

/// How long after its start a pane that has written nothing is waited for by `capture-pane`.
const FIRST_DRAW_MS: u64 = 500;

/// A pane started less than [`FIRST_DRAW_MS`] ago that has written nothing yet: waits, until
/// it is that old, for the first visible character of its output. A capture right after
/// `new-window` then shows what its program drew first (a shell's prompt), as a capture a few
/// commands later does; a pane that stays silent is captured empty once the time is up.
fn first_draw(server: &Server, daemon: &str) {
    let Some(info) = server.live.get(daemon) else {
        return;
    };
    let age = crate::server::now_ms().saturating_sub(info.created_ms);
    if info.restored || info.log_end > 0 || age >= FIRST_DRAW_MS {
        return;
    }
    let params = WaitParams {
        target: daemon.to_owned(),
        condition: WaitFor::Regex {
            pattern: r"\S".into(),
        },
        timeout_ms: Some(FIRST_DRAW_MS - age),
        since: Some(0),
    };
    // Timed out or gone: the capture says what there is.
    let _: Result<WaitResult, _> = server.call(reg::SessionWait::NAME, params);
}

/// The lines `capture-pane` selects, as tmux numbers them.
pub(crate) fn capture_lines(
    server: &Server,
    found: Found,
    args: &Args,
) -> Result<Vec<String>, TmuxError> {
    let p = super::pane::find(server, found)?;
    first_draw(server, &p.daemon);
    let s = server.state.session(found.session);
    let w = s.and_then(|s| s.window(found.window));
    let wants_history = [args.get('S'), args.get('E')]
        .iter()
        .flatten()
        .any(|v| *v == "-" || v.starts_with('-'));
    let limit = options::number(&server.state, s, w, "history-limit");
    let params = CaptureParams {
        target: p.daemon.clone(),
        scrollback: if wants_history {
            usize::try_from(limit).unwrap_or(0)
        } else {
            0
        },
        ansi: args.has('e'),
    };
    let cap: CaptureResult = server.call(reg::SessionCapture::NAME, params)?;
    if args.has('a') && !cap.alternate_screen {
        return Err(TmuxError::msg("no alternate screen"));
    }
    let sb = cap.scrollback_lines.min(cap.lines.len());
    let hidden = p.hidden_history.min(sb);
    let rows = i64::from(cap.size.rows);
    let avail = i64::try_from(sb - hidden).unwrap_or(0);
    let mut top = line_arg(args.get('S').filter(|v| *v != "-"), 0, "start")?;
    if args.get('S') == Some("-") {
        top = -avail;
    }
    let mut bottom = line_arg(args.get('E').filter(|v| *v != "-"), rows - 1, "end")?;
    if args.get('E') == Some("-") {
        bottom = rows - 1;
    }
    top = top.clamp(-avail, rows - 1);
    bottom = bottom.clamp(-avail, rows - 1);
    if bottom < top {
        std::mem::swap(&mut top, &mut bottom);
    }
    let sbi = i64::try_from(sb).unwrap_or(0);
    let keep_spaces = args.has('N') || args.has('J');
    let mut out = Vec::new();
    for n in top..=bottom {
        let line = usize::try_from(sbi + n)
            .ok()
            .and_then(|i| cap.lines.get(i))
            .map(String::as_str)
            .unwrap_or("");
        let line = if keep_spaces {
            line
        } else {
            line.trim_end_matches(' ')
        };
        let line = if args.has('e') {
            tidy_sgr(line)
        } else {
            line.to_owned()
        };
        out.push(if args.has('C') {
            escape_octal(&line)
        } else {
            line
        });
    }
    Ok(out)
}

/// Drops the leading `0;` of an SGR sequence while no attribute is set yet on the line (each
/// captured line starts with default attributes), so colours read as tmux writes them:
/// `ESC[32m`, not `ESC[0;32m`.
fn tidy_sgr(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut styled = false;
    let mut rest = line;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let seq = &rest[at + 2..];
        let Some(end) = seq.find(|c: char| !(c.is_ascii_digit() || c == ';' || c == ':')) else {
            out.push_str(&rest[at..]);
            return out;
        };
        let (params, fin) = (&seq[..end], &seq[end..end + 1]);
        if fin == "m" {
            let reset_only =
                params.is_empty() || params.split(';').all(|p| p == "0" || p.is_empty());
            let trimmed = match params.strip_prefix("0;") {
                Some(p) if !styled => p,
                _ => params,
            };
            if reset_only {
                if styled {
                    out.push_str("\x1b[0m");
                }
                styled = false;
            } else {
                out.push_str(&format!("\x1b[{trimmed}m"));
                styled = true;
            }
        } else {
            out.push_str(&rest[at..at + 2 + end + 1]);
        }
        rest = &seq[end + 1..];
    }
    out.push_str(rest);
    out
}

fn escape_octal(line: &str) -> String {
    let mut out = String::new();
    for c in line.chars() {
        if (c as u32) < 0x20 || c == '\x7f' || c == '\\' {
            out.push_str(&format!("\\{:03o}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

pub(crate) fn capture(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
    let lines = capture_lines(server, found, args)?;
    let mut text = lines.join("\n");
    text.push('\n');
    if args.has('p') {
        out!("{text}");
        return Ok(());
    }
    add_buffer(server, args.get('b'), text, false)?;
    server.save()
}

pub(crate) fn clear_history(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
    let p = super::pane::find(server, found)?;
    let limit = options::number(
        &server.state,
        server.state.session(found.session),
        None,
        "history-limit",
    );
    let params = CaptureParams {
        target: p.daemon.clone(),
        scrollback: usize::try_from(limit).unwrap_or(0),
        ansi: false,
    };
    let cap: CaptureResult = server.call(reg::SessionCapture::NAME, params)?;
    if let Some(rec) = server
        .state
        .session_mut(found.session)
        .and_then(|s| s.window_mut(found.window))
        .and_then(|w| w.panes.iter_mut().find(|x| x.id == found.pane))
    {
        rec.hidden_history = cap.scrollback_lines;
    }
    server.save()
}

/// Stops a pipe-pane process (it ends its command's input by exiting).
pub(crate) fn stop_pipe(pid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid) {
        // It may have ended by itself (its command exited): nothing left to stop.
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).ok();
    }
}

pub(crate) fn pipe_pane(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    if args.has('I') {
        return Err(TmuxError::msg(
            "pipe-pane -I: feeding a command's output to the pane is not supported by ai-session",
        ));
    }
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
    let p = super::pane::find(server, found)?;
    let running = p.pipe_pid.filter(|pid| alive(*pid));
    if let Some(pid) = running {
        stop_pipe(pid);
    }
    set_pipe(server, found, None);
    let command = args.rest.join(" ");
    if command.is_empty() || (args.has('o') && running.is_some()) {
        return server.save();
    }
    let since = server.live.get(&p.daemon).map(|i| i.log_end).unwrap_or(0);
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .arg("tmux")
        .arg("-S")
        .arg(server.ctx.socket())
        .args(["_pipe-pane", &p.daemon, &since.to_string(), &command])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let pid = i32::try_from(child.id()).unwrap_or(0);
    set_pipe(server, found, Some(pid));
    server.save()
}

use std::os::unix::process::CommandExt;

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("_pipe-pane"))
}

fn set_pipe(server: &mut Server, f: Found, pid: Option<i32>) {
    if let Some(p) = server
        .state
        .session_mut(f.session)
        .and_then(|s| s.window_mut(f.window))
        .and_then(|w| w.panes.iter_mut().find(|x| x.id == f.pane))
    {
        p.pipe_pid = pid;
    }
}

/// The process behind `pipe-pane`: runs the command with `sh -c` and writes the pane's output
/// to its input from the offset pipe-pane saw, until the pane closes or the command exits.
pub(crate) fn pipe_runner(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let [daemon, since, command] = args.rest.as_slice() else {
        return Err(TmuxError::msg(
            "usage: _pipe-pane DAEMON-SESSION OFFSET COMMAND",
        ));
    };
    let mut next: u64 = since.parse().unwrap_or(0);
    let opts =
        Options::new("ai-session-tmux pipe-pane").notifications(Notifications::DropNewest(4096));
    let client = Client::connect(&c.ctx.sel, &opts)?;
    let mut child = Command::new("/bin/sh")
        .args(["-c", command])
        .stdin(Stdio::piped())
        .spawn()?;
    let Some(stdin) = child.stdin.take() else {
        return Err(TmuxError::msg("pipe-pane: no input for the command"));
    };
    let sub: SubscribeResult = client.call(
        reg::SessionSubscribe::NAME,
        Target {
            target: daemon.clone(),
        },
    )?;
    let mut stdin = MarkFilter::new(stdin);
    let mut ok = catch_up(&client, daemon, &mut next, sub.offset, &mut stdin);
    while ok {
        let Some(n) = client.notification() else {
            break;
        };
        match n.method.as_str() {
            NOTIFY_OUTPUT => {
                let Ok(ev) = serde_json::from_value::<OutputEvent>(n.params) else {
                    continue;
                };
                if ev.target != *daemon {
                    continue;
                }
                // Notifications dropped while this process lagged are read from the log.
                ok = catch_up(&client, daemon, &mut next, ev.offset, &mut stdin);
                let data = B64.decode(&ev.data_b64).unwrap_or_default();
                let end = ev.offset + data.len() as u64;
                if ok && end > next {
                    let skip = usize::try_from(next.saturating_sub(ev.offset)).unwrap_or(0);
                    ok = stdin.write_all(data.get(skip..).unwrap_or(&[])).is_ok();
                    next = end;
                }
            }
            NOTIFY_CLOSED => break,
            _ => {}
        }
    }
    drop(stdin);
    child.wait()?;
    Ok(())
}

/// Removes the shell-integration marks (`ESC ] 133 ; ... BEL` or `ESC \\`) from a stream:
/// they carry the session's secret, which must not reach a pipe's file. A mark split across
/// writes is held back until its end arrives.
struct MarkFilter<W: Write> {
    out: W,
    held: Vec<u8>,
}

impl<W: Write> MarkFilter<W> {
    const START: &'static [u8] = b"\x1b]133;";
    /// A mark longer than this is not one the hooks write: let it through.
    const MAX_MARK: usize = 512;

    fn new(out: W) -> Self {
        Self {
            out,
            held: Vec::new(),
        }
    }

    /// The end of the mark starting at `at` (one past its terminator), if it is complete.
    fn mark_end(buf: &[u8], at: usize) -> Option<usize> {
        let body = buf.get(at + Self::START.len()..)?;
        body.iter().enumerate().find_map(|(i, b)| match b {
            0x07 => Some(at + Self::START.len() + i + 1),
            0x1b if body.get(i + 1) == Some(&b'\\') => Some(at + Self::START.len() + i + 2),
            _ => None,
        })
    }
}

impl<W: Write> Write for MarkFilter<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.held.extend_from_slice(data);
        let buf = std::mem::take(&mut self.held);
        let mut clean = Vec::with_capacity(buf.len());
        let mut i = 0;
        while i < buf.len() {
            if buf[i] == 0x1b {
                let rest = &buf[i..];
                let n = rest.len().min(Self::START.len());
                if rest[..n] == Self::START[..n] {
                    match Self::mark_end(&buf, i) {
                        Some(end) => {
                            i = end;
                            continue;
                        }
                        None if buf.len() - i < Self::MAX_MARK => {
                            self.held = buf[i..].to_vec();
                            break;
                        }
                        None => {}
                    }
                }
            }
            clean.push(buf[i]);
            i += 1;
        }
        self.out.write_all(&clean)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Writes the log from `next` up to `until` to `out`; false once `out` is closed.
fn catch_up(
    client: &Client,
    daemon: &str,
    next: &mut u64,
    until: u64,
    out: &mut impl Write,
) -> bool {
    while *next < until {
        let params = ReadParams {
            target: daemon.to_owned(),
            since: Some(*next),
            max_bytes: usize::try_from(until - *next).ok(),
            raw: true,
            encoding: Default::default(),
        };
        let Ok(r) = client.call::<_, ReadResult>(reg::SessionRead::NAME, params) else {
            return true;
        };
        if r.end <= *next {
            return true;
        }
        if out.write_all(r.data.as_bytes()).is_err() {
            return false;
        }
        *next = r.end;
    }
    true
}

/// Adds a buffer (newest first), or replaces/appends to the named one.
fn add_buffer(
    server: &mut Server,
    name: Option<&str>,
    data: String,
    append: bool,
) -> Result<(), TmuxError> {
    let st = &mut server.state;
    if let Some(name) = name {
        if let Some(b) = st.buffers.iter_mut().find(|b| b.name == name) {
            if append {
                b.data.push_str(&data);
            } else {
                b.data = data;
            }
            return Ok(());
        }
    }
    let name = match name {
        Some(n) => n.to_owned(),
        None => {
            let n = st.next_buffer;
            st.next_buffer += 1;
            format!("buffer{n}")
        }
    };
    st.buffers.insert(0, Buffer { name, data });
    let limit = usize::try_from(options::number(st, None, None, "buffer-limit")).unwrap_or(50);
    st.buffers.truncate(limit.max(1));
    Ok(())
}

fn buffer<'a>(server: &'a Server, name: Option<&str>) -> Result<&'a Buffer, TmuxError> {
    match name {
        Some(n) => server
            .state
            .buffers
            .iter()
            .find(|b| b.name == n)
            .ok_or_else(|| TmuxError::msg(format!("unknown buffer: {n}"))),
        None => server
            .state
            .buffers
            .first()
            .ok_or_else(|| TmuxError::msg("no buffers")),
    }
}

pub(crate) fn set_buffer(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let server = c.open(true)?;
    if let (Some(old), Some(new)) = (args.get('b'), args.get('n')) {
        let b = server
            .state
            .buffers
            .iter_mut()
            .find(|b| b.name == old)
            .ok_or_else(|| TmuxError::msg(format!("unknown buffer: {old}")))?;
        b.name = new.to_owned();
        return server.save();
    }
    let Some(data) = args.rest.first() else {
        return Err(TmuxError::msg(
            "command set-buffer: too few arguments (need 1)",
        ));
    };
    add_buffer(server, args.get('b'), data.clone(), args.has('a'))?;
    server.save()
}

pub(crate) fn show_buffer(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let server = c.server()?;
    let b = buffer(server, args.get('b'))?;
    out!("{}", b.data);
    Ok(())
}

pub(crate) fn delete_buffer(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let server = c.server()?;
    let name = buffer(server, args.get('b'))?.name.clone();
    server.state.buffers.retain(|b| b.name != name);
    server.save()
}

pub(crate) fn list_buffers(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let server = c.server()?;
    let fmt = args
        .get('F')
        .unwrap_or("#{buffer_name}: #{buffer_size} bytes: \"#{buffer_sample}\"");
    let mut out = String::new();
    for b in &server.state.buffers {
        let lookup = |n: &str| match n {
            "buffer_name" => Some(b.name.clone()),
            "buffer_size" => Some(b.data.len().to_string()),
            "buffer_sample" => Some(
                b.data
                    .chars()
                    .take(50)
                    .collect::<String>()
                    .escape_debug()
                    .to_string(),
            ),
            _ => None,
        };
        out.push_str(&crate::format::expand(fmt, &lookup));
        out.push('\n');
    }
    out!("{out}");
    Ok(())
}

pub(crate) fn save_buffer(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let server = c.server()?;
    let b = buffer(server, args.get('b'))?;
    let Some(path) = args.rest.first() else {
        return Err(TmuxError::msg(
            "command save-buffer: too few arguments (need 1)",
        ));
    };
    if path == "-" {
        out!("{}", b.data);
        return Ok(());
    }
    let mut f = std::fs::File::options()
        .create(true)
        .write(true)
        .append(args.has('a'))
        .truncate(!args.has('a'))
        .open(path)
        .map_err(|e| TmuxError::msg(format!("{path}: {e}")))?;
    f.write_all(b.data.as_bytes())?;
    Ok(())
}

pub(crate) fn load_buffer(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let Some(path) = args.rest.first().cloned() else {
        return Err(TmuxError::msg(
            "command load-buffer: too few arguments (need 1)",
        ));
    };
    let data = if path == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read_to_string(&path).map_err(|e| TmuxError::msg(format!("{path}: {e}")))?
    };
    let server = c.open(true)?;
    add_buffer(server, args.get('b'), data, false)?;
    server.save()
}

pub(crate) fn paste_buffer(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
    let daemon = super::session::pane_daemon(server, found)?;
    let b = buffer(server, args.get('b'))?.clone();
    let data = if args.has('r') {
        b.data.clone()
    } else {
        b.data.replace('\n', args.get('s').unwrap_or("\r"))
    };
    if args.has('p') {
        let params = SendParams {
            target: daemon,
            keys: vec![data],
            literal: true,
            paste: true,
        };
        let _: serde_json::Value = server.call(reg::SessionSend::NAME, params)?;
    } else {
        write_bytes(server, &daemon, data.as_bytes())?;
    }
    if args.has('d') {
        server.state.buffers.retain(|x| x.name != b.name);
    }
    server.save()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_never_reach_the_pipe() {
        let mut f = MarkFilter::new(Vec::new());
        f.write_all(b"a\x1b]133;C;aid=s").unwrap();
        f.write_all(b"ecret\x07b\x1b]133;D;0;aid=x\x1b\\c\x1b[1mX")
            .unwrap();
        assert_eq!(f.out, b"abc\x1b[1mX");
    }

    #[test]
    fn sgr_as_tmux_writes_it() {
        assert_eq!(
            tidy_sgr("\x1b[0;32mGREEN\x1b[0m x"),
            "\x1b[32mGREEN\x1b[0m x"
        );
        assert_eq!(tidy_sgr("\x1b[1mA\x1b[0;31mB"), "\x1b[1mA\x1b[0;31mB");
        assert_eq!(tidy_sgr("\x1b[0mplain"), "plain");
    }

    #[test]
    fn keys_in_any_case() {
        assert_eq!(normalise_key("enter"), "Enter");
        assert_eq!(normalise_key("c-c"), "c-c");
        assert_eq!(normalise_key("C-up"), "C-Up");
        assert_eq!(normalise_key("^C"), "C-c");
        assert_eq!(normalise_key("echo hi"), "echo hi");
    }
}
