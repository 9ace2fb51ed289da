//! One `exec`: how the command is typed into the shell, and how its result is cut out of the log.
//!
//! A command goes in as one line. Commands with newlines, control characters or more than
//! [`MAX_INLINE`] bytes are written to a file in the session's directory and sourced (`. FILE`),
//! so that line editors, tab completion and the terminal's 4 KiB canonical line limit never see
//! them, while `cd` and `export` still apply to the session's shell.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::log::OutputLog;
use crate::problems::{DROPPED_NOTE, MIDDLE_NOTE};
use crate::session::Reply;
use crate::shell::quote;
use crate::text;
use ai_session_protocol::methods::{ExecParams, ExecResult, ExecStatus, Integration};

/// Longest command typed inline.
pub const MAX_INLINE: usize = 1024;
/// Default hard timeout of an exec.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default cap on the output returned by an exec.
pub const DEFAULT_MAX_OUTPUT: usize = 8 << 20;

/// An exec waiting for the session's prompt.
pub(crate) struct Queued {
    pub params: ExecParams,
    pub reply: Reply<ExecResult>,
    pub arrived: Instant,
    pub deadline: Option<Instant>,
}

impl Queued {
    pub fn new(params: ExecParams, reply: Reply<ExecResult>, arrived: Instant) -> Self {
        let timeout = params
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_TIMEOUT);
        Self {
            params,
            reply,
            arrived,
            deadline: Some(arrived + timeout),
        }
    }
}

/// What is typed for a command.
pub(crate) struct Line {
    pub text: String,
    pub nonce: Option<String>,
    pub file: Option<PathBuf>,
    /// The file holding the command's standard input, when it was given one.
    pub input: Option<PathBuf>,
}

/// An exec's standard input (`stdin_b64`), decoded and checked against
/// [`MAX_EXEC_STDIN`](ai_session_protocol::methods::MAX_EXEC_STDIN).
pub(crate) fn decode_stdin(b64: &str) -> crate::Result<Vec<u8>> {
    use crate::Error;
    use ai_session_protocol::methods::MAX_EXEC_STDIN;
    use base64::Engine;
    // Four base64 characters per three bytes: refuse before decoding megabytes for nothing.
    if b64.len() / 4 * 3 > MAX_EXEC_STDIN + 3 {
        return Err(stdin_too_large(b64.len() / 4 * 3));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| Error::InvalidParams(format!("stdin_b64 is not valid base64: {e}")))?;
    if bytes.len() > MAX_EXEC_STDIN {
        return Err(stdin_too_large(bytes.len()));
    }
    Ok(bytes)
}

fn stdin_too_large(n: usize) -> crate::Error {
    use ai_session_protocol::methods::MAX_EXEC_STDIN;
    crate::Error::TooLarge {
        message: format!(
            "the command's standard input is {n} bytes; an exec takes at most {MAX_EXEC_STDIN}"
        ),
        hint:
            "write the data to a file and redirect the command's input from it (`COMMAND < FILE`)"
                .into(),
    }
}

/// Builds the line typed for `command`, writing it to a file first when it cannot be typed.
///
/// `sealed`: the session's output is encrypted at rest, so the command's text must not be
/// written to disk in clear either: it goes through a named pipe the shell sources, fed from
/// memory (see [`feed_fifo`]), instead of a file.
///
/// `stdin`: the command's standard input. The command then goes to a file whatever its length,
/// and the typed line is `. CMDFILE < INFILE`: the sourced command runs in the shell itself (its
/// `cd` and `export` stay) with its input from the file, never from the terminal, so no byte of
/// it reaches the shell's line editor.
pub(crate) fn prepare(
    command: &str,
    stdin: Option<&[u8]>,
    integration: Integration,
    dir: &std::path::Path,
    seq: u64,
    sealed: bool,
) -> std::io::Result<Line> {
    let inline =
        stdin.is_none() && command.len() <= MAX_INLINE && !command.chars().any(char::is_control);
    let cmd_dir = dir.join("cmd");
    let private = |name: String, bytes: Vec<u8>| -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&cmd_dir)?;
        let path = cmd_dir.join(name);
        if sealed {
            feed_fifo(&path, bytes)?;
        } else {
            write_private(&path, &bytes)?;
        }
        Ok(path)
    };
    let (mut body, file) = if inline {
        (command.to_owned(), None)
    } else {
        let path = private(format!("{seq}.sh"), format!("{command}\n").into_bytes())?;
        (format!(". {}", quote(&path.to_string_lossy())), Some(path))
    };
    let input = match stdin {
        Some(bytes) => {
            let path = private(format!("{seq}.in"), bytes.to_vec())?;
            body.push_str(&format!(" < {}", quote(&path.to_string_lossy())));
            Some(path)
        }
        None => None,
    };
    if integration != Integration::Nonce {
        return Ok(Line {
            text: body,
            nonce: None,
            file,
            input,
        });
    }
    let nonce = crate::random_hex(8);
    let text = format!(
        "printf '\\033]133;C;n=%s\\007' {nonce}; eval {}; printf '\\033]133;D;%s;n=%s\\007' \"$?\" {nonce}",
        quote(&body)
    );
    Ok(Line {
        text,
        nonce: Some(nonce),
        file,
        input,
    })
}

/// Writes `bytes` to a new file only its owner can read (an exec's input may be a secret).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

/// How long a command's named pipe waits for the shell to open it.
const FIFO_WAIT: Duration = Duration::from_secs(600);

/// Creates a named pipe at `path` (0600) and, on a thread of its own, writes `text` into it
/// once the shell opens it for reading, then closes it (the shell's `.` reads to the end).
/// The open is non-blocking and retried, so a shell that never opens the pipe (the exec was
/// cancelled) costs the thread at most [`FIFO_WAIT`]; the pipe is removed either way.
fn feed_fifo(path: &std::path::Path, text: Vec<u8>) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // SAFETY: mkfifo with a NUL-terminated path we own.
    if unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let path = path.to_owned();
    std::thread::Builder::new()
        .name("ais-cmd-fifo".into())
        .spawn(move || {
            let deadline = Instant::now() + FIFO_WAIT;
            loop {
                let opened = std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(&path);
                match opened {
                    Ok(file) => {
                        // Blocking writes from here: the reader is there.
                        if let Err(e) = write_blocking(file, &text) {
                            tracing::debug!("feeding {}: {e}", path.display());
                        }
                        break;
                    }
                    // ENXIO: no reader yet.
                    Err(e)
                        if e.raw_os_error() == Some(libc::ENXIO) && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => {
                        tracing::debug!("{} was never read: {e}", path.display());
                        break;
                    }
                }
            }
            std::fs::remove_file(&path).ok();
        })?;
    Ok(())
}

fn write_blocking(file: std::fs::File, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor we own, clearing O_NONBLOCK.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    let mut file = file;
    file.write_all(text)
}

/// The exec whose command has been typed.
pub(crate) struct Pending {
    pub reply: Reply<ExecResult>,
    pub nonce: Option<String>,
    pub file: Option<PathBuf>,
    /// The command's standard input file, removed when the exec is answered (the shell opened
    /// it before the command started).
    pub input: Option<PathBuf>,
    pub line_len: u64,
    pub input_offset: u64,
    /// Where the output starts, once the `C` mark was seen.
    pub out_start: Option<u64>,
    pub started: Instant,
    pub deadline: Option<Instant>,
    pub idle: Option<Duration>,
    pub max_output: usize,
}

impl Pending {
    pub fn new(q: Queued, line: Line, input_offset: u64, started: Instant) -> Self {
        Self {
            reply: q.reply,
            nonce: line.nonce,
            file: line.file,
            input: line.input,
            line_len: line.text.len() as u64,
            input_offset,
            out_start: None,
            started,
            deadline: q.deadline,
            idle: q.params.idle_timeout_ms.map(Duration::from_millis),
            max_output: q
                .params
                .max_output_bytes
                .unwrap_or(DEFAULT_MAX_OUTPUT)
                .max(256),
        }
    }

    pub fn cleanup(&self) {
        if let Some(file) = &self.file {
            if let Err(e) = std::fs::remove_file(file) {
                tracing::debug!("cannot remove {}: {e}", file.display());
            }
        }
        self.cleanup_input();
    }

    /// Removes the standard input file (a sealed session's pipe removes itself).
    pub fn cleanup_input(&self) {
        if let Some(file) = &self.input {
            match std::fs::remove_file(file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::debug!("cannot remove {}: {e}", file.display()),
            }
        }
    }

    /// The start of the output: the `C` mark, or else the end of the echoed command line.
    fn output_start(&self, log: &OutputLog, end: u64) -> u64 {
        if let Some(start) = self.out_start {
            return start.min(end);
        }
        let from = (self.input_offset + self.line_len).min(end);
        if from < log.start() {
            // The echo itself was dropped from the bounded log: the output starts at the oldest
            // byte still kept.
            return log.start().min(end);
        }
        match log.read(from, (end - from) as usize) {
            Ok(chunk) => match memchr::memchr(b'\n', &chunk.data) {
                Some(i) => chunk.start + i as u64 + 1,
                None => end,
            },
            Err(_) => from,
        }
    }
}

/// The result of a finished command whose output ends at `out_end`.
pub(crate) fn finish(
    p: &Pending,
    log: &mut OutputLog,
    code: Option<i32>,
    out_end: u64,
    via: Integration,
) -> ExecResult {
    let start = p.output_start(log, out_end);
    let dropped = p.input_offset < log.start();
    let watched = log.take_watch();
    let mut result = bare(
        ExecStatus::Exited,
        log,
        start..out_end,
        p.max_output,
        p.started,
        via,
    );
    result.exit_code = code;
    result.truncated |= dropped;
    if let Some((_, problems)) =
        watched.filter(|(from, w)| dropped && *from == p.input_offset && w.bytes > 0)
    {
        // The log kept only the output's end: what the start held that names a problem
        // comes first, as the log dropped it.
        let mut text = String::new();
        problems.write(
            &mut text,
            &format!(
                "{DROPPED_NOTE} (it keeps its last {} bytes): its first {} bytes held ",
                log.end() - log.start(),
                problems.bytes
            ),
            &format!("the output from log offset {} follows", log.start()),
        );
        text.push_str(&result.output);
        result.output = text;
    }
    result
}

/// A result holding the log's text of `range` (at most `max` bytes of it) and nothing else
/// yet: no exit code, no views, no hints.
fn bare(
    status: ExecStatus,
    log: &OutputLog,
    range: std::ops::Range<u64>,
    max: usize,
    since: Instant,
    via: Integration,
) -> ExecResult {
    let (output, mut truncated) = collect(log, range.start, range.end, max);
    let lost = log.lost_in(range.clone());
    truncated |= lost > 0;
    let degraded = (lost > 0).then(|| {
        format!(
            "{lost} bytes of this output are lost: the session's output log could not be written ({}); the output marks where",
            log.last_error().unwrap_or("write failed")
        )
    });
    ExecResult {
        status,
        exit_code: None,
        output,
        output_start: range.start,
        output_end: range.end,
        truncated,
        duration_ms: since.elapsed().as_secs_f64() * 1000.0,
        completion: via,
        hint: None,
        advice: None,
        foreground: None,
        parsed: None,
        compact: None,
        cwd: None,
        prompt: None,
        screen: None,
        degraded,
    }
}

/// Adds the parsed structure and the compact view (within `budget` tokens) to a finished
/// command's result, in one pass over the output. Large outputs run off the session's task; the
/// raw token count of an output over 1 MiB is estimated from samples, so the answer never waits
/// for counting megabytes.
pub(crate) fn annotate(
    result: &mut ExecResult,
    session: &str,
    command: &str,
    budget: Option<usize>,
) {
    if result.status != ExecStatus::Exited {
        // Partial output could make a running command look finished and fine.
        return;
    }
    // Plain output (no escapes, nothing cut) lies in the log line for line, each line ended by
    // CR LF: a view can then point `read` at exactly the lines it left out.
    // (Counted only when it can hold: a cut output of megabytes is not counted for nothing.)
    let exact = !result.truncated
        && result.output.ends_with('\n')
        && crlf_len(&result.output) == result.output_end.saturating_sub(result.output_start);
    let handle = ai_session_output::Handle::log(session, result.output_start, result.output_end)
        .with_exact_lines(exact)
        .with_cut(result.truncated && crate::problems::has_note(&result.output));
    let opts = ai_session_output::ViewOptions::with_budget(budget);
    let (parsed, view) = ai_session_output::analyze(Some(command), &result.output, &handle, &opts);
    result.compact = serde_json::to_value(view).ok();
    result.parsed = serde_json::to_value(parsed).ok();
}

/// Bytes of `text` with each newline stored as CR LF, as the terminal wrote it to the log.
fn crlf_len(text: &str) -> u64 {
    (text.len() + memchr::memchr_iter(b'\n', text.as_bytes()).count()) as u64
}

/// The result of a command still running: its output so far.
pub(crate) fn partial(
    p: &Pending,
    log: &mut OutputLog,
    status: ExecStatus,
    via: Integration,
) -> ExecResult {
    let mut result = finish(p, log, None, log.end(), via);
    result.status = status;
    result
}

/// The answer to an exec never typed because the shell was still starting: what the shell
/// printed since `from` (the start of its output).
pub(crate) fn starting(
    log: &OutputLog,
    from: u64,
    arrived: Instant,
    via: Integration,
) -> ExecResult {
    let end = log.end();
    let start = from.clamp(log.start(), end);
    bare(
        ExecStatus::Starting,
        log,
        start..end,
        DEFAULT_MAX_OUTPUT,
        arrived,
        via,
    )
}

/// The plain text of log bytes `start..end`, keeping head and tail when longer than `max`.
fn collect(log: &OutputLog, start: u64, end: u64, max: usize) -> (String, bool) {
    // Bytes dropped from the front of the bounded log are left out silently (the caller
    // reports the result truncated); bytes a full disk lost are marked where they were.
    let start = start.max(log.start()).min(end);
    let len = end - start;
    if len <= max as u64 {
        return match log.runs(start, end) {
            Ok(runs) => (text_with_gaps(runs, start, end), false),
            Err(e) => (format!("[output unavailable: {e}]"), true),
        };
    }
    let half = (max / 2) as u64;
    let mut head = log.runs(start, start + half).unwrap_or_default();
    let mut head_end = start + half;
    if let Some(last) = head.last_mut() {
        let used = text::complete_utf8_len(&last.data);
        if last.start + last.data.len() as u64 == head_end {
            head_end = last.start + used as u64;
            last.data.truncate(used);
        }
    }
    let tail_from = end - half;
    let mut tail = log.runs(tail_from, end).unwrap_or_default();
    let mut gap_end = tail_from;
    if let Some(first) = tail.first_mut().filter(|c| c.start == tail_from) {
        let skip = first
            .data
            .iter()
            .take(3)
            .take_while(|b| **b & 0xC0 == 0x80)
            .count();
        first.data.drain(..skip);
        first.start += skip as u64;
        gap_end += skip as u64;
    }
    let gap_start = head_end;
    let mut out = text_with_gaps(head, start, head_end);
    out.push_str(&format!(
        "\n[... {} bytes omitted (log offsets {gap_start}..{gap_end}); `ai-session read --since {gap_start}` returns them ...]\n",
        gap_end - gap_start
    ));
    crate::problems::of(log, gap_start, gap_end).write(
        &mut out,
        &MIDDLE_NOTE[1..],
        "the output's last bytes follow",
    );
    out.push_str(&text_with_gaps(tail, gap_end, end));
    (out, true)
}

/// The plain text of `runs` (stored bytes of `from..to`), with a note where bytes between
/// them were lost. One run that covers the range (the usual case) is cleaned in its own
/// buffer ([`text::clean_owned`]).
fn text_with_gaps(mut runs: Vec<crate::log::Chunk>, from: u64, to: u64) -> String {
    if let [run] = runs.as_slice()
        && run.start == from
        && run.start + run.data.len() as u64 == to
    {
        return runs
            .pop()
            .map(|run| text::clean_owned(run.data))
            .unwrap_or_default();
    }
    let mut out = String::with_capacity(runs.iter().map(|r| r.data.len()).sum());
    push_text_with_gaps(&mut out, &runs, from, to);
    out
}

/// [`text_with_gaps`], appended to `out`.
fn push_text_with_gaps(out: &mut String, runs: &[crate::log::Chunk], from: u64, to: u64) {
    let mut pos = from;
    for run in runs {
        if run.start > pos {
            out.push_str(&lost_note(pos, run.start));
        }
        text::clean_into(&run.data, out);
        pos = run.start + run.data.len() as u64;
    }
    if to > pos {
        out.push_str(&lost_note(pos, to));
    }
}

fn lost_note(from: u64, to: u64) -> String {
    format!(
        "\n[... {} bytes lost (log offsets {from}..{to}): the output log could not be written ...]\n",
        to - from
    )
}
