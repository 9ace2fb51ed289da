//! Each subcommand: build the request, call the daemon, print the result (human or `--json`).

use ai_session_protocol::registry::{self as reg, Method};
use std::io::Write;
use std::process::ExitCode;

use ai_session_protocol::methods::*;

use crate::error::CliError;
use crate::{Command, DaemonAction};
use ai_session_client::{Client, Error as ClientError, Notifications, Options, Selector, Start};

pub(crate) use crate::answer::{parse_size, print_json, usage};

/// Notifications the CLI holds before it gives up on a connection: only `attach` and `bus
/// subscribe` receive them, and they read them as they come (the queue fills only while a call
/// of theirs waits for its answer).
const NOTIFICATION_QUEUE: usize = 16_384;

/// Connects to the selected daemon, starting it first (with this same binary) when `start` is
/// set and none runs.
pub(crate) async fn connect(sel: &Selector, start: bool) -> Result<Client, ClientError> {
    let opts = Options::new(format!("ai-session-cli {}", env!("CARGO_PKG_VERSION")))
        .start(if start {
            Start::CurrentExe
        } else {
            Start::Never
        })
        .notifications(Notifications::CloseWhenFull(NOTIFICATION_QUEUE))
        // Run inside a traced program, the daemon's spans join its trace.
        .trace(ai_session_protocol::trace::TraceContext::from_env())
        // The daemon could not record an action in its audit log: the user must know.
        .on_warning(|warning| errln!("ai-session: warning: {warning}"));
    Client::connect(sel, &opts).await
}

pub async fn run(sel: &Selector, command: Command) -> Result<ExitCode, CliError> {
    if let Command::Daemon { action } = command {
        return daemon(sel, action).await;
    }
    if let Command::Parse(a) = command {
        return parse(a);
    }
    if let Command::Completions { shell } = command {
        return crate::manual::completions(shell);
    }
    if let Command::Man { dir } = &command {
        return crate::manual::man(dir.as_deref());
    }
    if let Command::Report(a) = command {
        return crate::report::run(sel, a).await;
    }
    if let Command::Coord(c) = command {
        return crate::coord::run(sel, c).await;
    }
    if let Command::Persist(c) = command {
        return crate::persist::run(sel, c).await;
    }
    if let Command::Decide(c) = command {
        return crate::decide::run(sel, c).await;
    }
    if let Command::Policy {
        action: crate::PolicyAction::Check { policy, cwd, json },
    } = &command
    {
        return crate::security::policy_check(policy, cwd.as_deref(), *json);
    }
    if let Command::Audit { action } = command {
        return match action {
            crate::AuditAction::Verify(a) => crate::security::audit_verify(sel, a.json),
            crate::AuditAction::Repair(a) => crate::security::audit_repair(sel, a.json).await,
            crate::AuditAction::Ls {
                since,
                min_risk,
                target,
                json,
            } => crate::security::audit_ls(sel, since.as_deref(), min_risk, target, json),
        };
    }
    if let Command::Serve(a) = command {
        return serve(sel, a).await;
    }
    if let Command::Web(a) = command {
        return crate::web::run(sel, a).await;
    }
    if let Command::Stats(a) = command {
        return crate::stats::run(sel, a).await;
    }
    if let Command::Alerts(a) = command {
        return crate::alerts::run(sel, a).await;
    }
    if let Command::Nodes(a) = command {
        return crate::cluster::nodes(sel, a.json).await;
    }
    if let Command::Mcp(a) = command {
        ai_session_mcp::serve_stdio_with(sel.label.clone(), sel.socket.clone(), a.tools.as_deref())
            .await?;
        return Ok(ExitCode::SUCCESS);
    }
    let client = connect(sel, true).await?;
    match command {
        Command::New(a) => {
            let json = a.json;
            let params = crate::answer::new_params(a, crate::security::policy_text)?;
            let info: SessionInfo = client.call(reg::SessionNew::NAME, params).await?;
            return crate::answer::new_answer(&info, json);
        }
        Command::Ls(a) => {
            let list: ListResult = client
                .call(reg::SessionList::NAME, serde_json::json!({}))
                .await?;
            return crate::answer::ls_answer(&list, a.json);
        }
        Command::Exec(a) => return crate::exec::run(&client, sel, a).await,
        Command::Send(a) => {
            let params = SendParams {
                target: a.target,
                keys: a.keys,
                literal: a.literal,
                paste: a.paste,
            };
            let r: SendResult = client.call(reg::SessionSend::NAME, params).await?;
            if a.json {
                print_json(&r)?;
            }
        }
        Command::Read(a) if a.follow => {
            let sink = if a.raw {
                crate::stream::Sink::Raw
            } else {
                crate::stream::Sink::Text(Vec::new())
            };
            return crate::stream::follow(&client, &a.target, a.since, sink).await;
        }
        Command::Read(a) => {
            let params = ReadParams {
                target: a.target,
                since: a.since,
                max_bytes: a.max_bytes,
                raw: a.raw,
                encoding: Default::default(),
            };
            let r: ReadResult = client.call(reg::SessionRead::NAME, params).await?;
            if a.json {
                print_json(&r)?;
            } else {
                out!("{}", r.data);
                std::io::stdout().flush()?;
                if r.dropped > 0 {
                    errln!(
                        "[{} older bytes were dropped from the bounded log]",
                        r.dropped
                    );
                }
                errln!(
                    "[next: --since {}{}]",
                    r.end,
                    if r.more { ", more available" } else { "" }
                );
            }
        }
        Command::Capture(a) => {
            let params = CaptureParams {
                target: a.target,
                scrollback: a.scrollback,
                ansi: a.ansi,
            };
            let r: CaptureResult = client.call(reg::SessionCapture::NAME, params).await?;
            if a.json {
                print_json(&r)?;
            } else {
                for line in &r.lines {
                    outln!("{line}");
                }
            }
        }
        Command::Wait(a) => {
            let condition = match (a.regex, a.idle, a.prompt) {
                (Some(pattern), _, _) => WaitFor::Regex { pattern },
                (None, Some(crate::duration::Millis(ms)), _) => WaitFor::Idle { ms },
                _ => WaitFor::Prompt,
            };
            let timeout_ms = crate::duration::ms(a.timeout).or(Some(30_000));
            let params = WaitParams {
                target: a.target,
                condition,
                timeout_ms,
                since: a.since,
            };
            let r: WaitResult = client.call(reg::SessionWait::NAME, params).await?;
            if a.json {
                print_json(&r)?;
            } else if let Some(matched) = &r.matched {
                outln!("{matched}");
            }
        }
        Command::Attach(a) => {
            return crate::attach::run(&client, &a.target, a.allow_clipboard).await;
        }
        Command::Resize(a) => {
            let params = ResizeParams {
                target: a.target,
                size: parse_size(&a.size)?,
            };
            let _: serde_json::Value = client.call(reg::SessionResize::NAME, params).await?;
        }
        Command::Kill(a) => {
            let _: serde_json::Value = client
                .call(reg::SessionKill::NAME, Target { target: a.target })
                .await?;
        }
        Command::Access { action } => crate::security::access(&client, action).await?,
        Command::Context(a) => crate::context::run(&client, a).await?,
        Command::Daemon { .. }
        | Command::Parse(_)
        | Command::Report(_)
        | Command::Coord(_)
        | Command::Persist(_)
        | Command::Decide(_)
        | Command::Mcp(_)
        | Command::Serve(_)
        | Command::Web(_)
        | Command::Stats(_)
        | Command::Alerts(_)
        | Command::Nodes(_)
        | Command::Policy { .. }
        | Command::Audit { .. }
        | Command::Tmux(_)
        | Command::MigrateTmux(_)
        | Command::Completions { .. }
        | Command::Man { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `parse`: recognise and condense saved output, locally (no daemon needed).
fn parse(a: crate::ParseArgs) -> Result<ExitCode, CliError> {
    let opts = ai_session_output::ViewOptions::with_budget(a.budget);
    let stdin = stdin_file()?;
    // The tokenizer's tables (about 0.1 CPU-seconds and 66 MB to load) load beside the read and
    // the parse, not before the view's count. The view alone of a file larger than the exact
    // count's limit is usually written without them (`analyze_view`): then they are not loaded
    // here, and load on first use if the view needs them after all.
    let large_file = stdin
        .metadata()
        .is_ok_and(|m| m.is_file() && m.len() > ai_session_output::tokens::EXACT_LIMIT as u64);
    if a.json || !large_file {
        let encoding = opts.encoding;
        std::thread::spawn(move || ai_session_output::warm_up(encoding));
    }
    let max = usize::try_from(a.max_bytes).unwrap_or(usize::MAX);
    let (raw, cut) = read_input(stdin, max)?;
    let text = ai_session_output::text::decode(&raw);
    let handle = ai_session_output::Handle::command("the input file").with_cut(cut);
    let parsed = if a.json {
        let (parsed, compact) =
            ai_session_output::analyze(a.command.as_deref(), &text, &handle, &opts);
        print_json(&serde_json::json!({ "parsed": parsed, "compact": compact }))?;
        parsed
    } else {
        let (parsed, view) =
            ai_session_output::analyze_view(a.command.as_deref(), &text, &handle, &opts);
        outln!("{view}");
        parsed
    };
    // The process exits once the answer is printed: the parse (a few allocations for each of
    // a large build's tens of thousands of diagnostics), the text and the input are left for
    // the exit to free, not freed one by one first.
    std::mem::forget(parsed);
    std::mem::forget(text);
    std::mem::forget(raw);
    Ok(ExitCode::SUCCESS)
}

/// Stdin as a `File` of the same descriptor.
fn stdin_file() -> std::io::Result<std::fs::File> {
    use std::os::fd::AsFd;
    Ok(std::fs::File::from(
        std::io::stdin().as_fd().try_clone_to_owned()?,
    ))
}

/// All of `file` (stdin), from its current offset. A regular file of at least
/// [`PARALLEL_READ_FROM`] bytes is read into one zeroed buffer of its length, whose pages the
/// kernel maps on first write, by two threads each reading one half with `pread`: the page
/// faults and the copy, most of a large read's time, are shared by both cores. What the file
/// holds past the length it had when looked at is read after, as `read_to_end` reads it; a
/// file that shrank in the meantime is read again the plain way, and so is one whose second
/// thread could not start.
fn read_all(mut file: std::fs::File) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut raw = Vec::new();
    let start = file.stream_position();
    let len = file
        .metadata()
        .ok()
        .filter(std::fs::Metadata::is_file)
        .zip(start.as_ref().ok())
        .and_then(|(m, &start)| usize::try_from(m.len().checked_sub(start)?).ok())
        .filter(|&len| len >= PARALLEL_READ_FROM);
    if let (Some(len), Ok(start)) = (len, start) {
        raw = vec![0u8; len];
        if read_halves(&file, &mut raw, start).is_ok() {
            file.seek(SeekFrom::Start(start + len as u64))?;
        } else {
            raw = Vec::new();
            file.seek(SeekFrom::Start(start))?;
        }
    }
    file.read_to_end(&mut raw)?;
    Ok(raw)
}

/// All of `file` (stdin) from its offset when it holds at most `max` bytes; else its first and
/// last `max / 4` bytes (cut at line ends) with every line between them that names a problem,
/// read in pieces ([`read_cut`]), and `true`.
fn read_input(file: std::fs::File, max: usize) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::{Read, Seek};
    let mut file = file;
    let large_file = file
        .metadata()
        .ok()
        .filter(std::fs::Metadata::is_file)
        .and_then(|m| {
            let at = file.stream_position().ok()?;
            Some(m.len().saturating_sub(at) > max as u64)
        });
    match large_file {
        Some(true) => read_cut(file, Vec::new(), max / 4),
        Some(false) => Ok((read_all(file)?, false)),
        None => {
            // A pipe: read up to one byte past `max`, then cut if there is more.
            let mut raw = Vec::new();
            (&mut file).take(max as u64 + 1).read_to_end(&mut raw)?;
            if raw.len() <= max {
                return Ok((raw, false));
            }
            read_cut(file, raw, max / 4)
        }
    }
}

/// The head and the tail (`kept` bytes each, cut at line ends) of `read` after `raw` (what was
/// read of it already), with what the middle held between them: its size and line count and
/// its lines that name a problem ([`ai_session_output::problems::Problems`]). Memory holds the
/// head, at most twice `kept` of tail and a piece, whatever the input's size.
fn read_cut(
    mut read: impl std::io::Read,
    mut raw: Vec<u8>,
    kept: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    use ai_session_output::problems::{MIDDLE_NOTE, PIECE, Problems};
    use std::io::Read;
    // Up to a piece more of the input; 0 at its end.
    fn fill(read: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        read.by_ref().take(PIECE as u64).read_to_end(buf)
    }
    while raw.len() < kept {
        if fill(&mut read, &mut raw)? == 0 {
            return Ok((raw, false));
        }
    }
    let head_end = memchr::memrchr(b'\n', &raw[..kept]).map_or(kept, |i| i + 1);
    let head = raw[..head_end].to_vec();
    let mut tail = raw;
    tail.drain(..head_end);
    let mut problems = Problems::default();
    // The input offset of `tail[0]`.
    let mut pos = head_end as u64;
    let feed = |problems: &mut Problems, pos: &mut u64, bytes: &[u8]| {
        for piece in bytes.chunks(PIECE) {
            problems.piece(*pos, piece);
            *pos += piece.len() as u64;
        }
    };
    loop {
        if tail.len() > 2 * kept {
            let n = tail.len() - kept;
            feed(&mut problems, &mut pos, &tail[..n]);
            tail.drain(..n);
            tail.shrink_to(2 * kept + PIECE);
        }
        if fill(&mut read, &mut tail)? == 0 {
            break;
        }
    }
    let last = tail.len().saturating_sub(kept);
    let tail_start = memchr::memchr(b'\n', &tail[last..]).map_or(last, |i| last + i + 1);
    let middle_start = head_end as u64;
    feed(&mut problems, &mut pos, &tail[..tail_start]);
    problems.end();
    let mut text = head;
    text.extend_from_slice(
        format!(
            "[... {} bytes of the input left out (bytes {middle_start}..{pos}): it is longer than `parse` analyzes whole (`--max-bytes`) ...]\n",
            pos - middle_start
        )
        .as_bytes(),
    );
    let mut note = String::new();
    problems.write(
        &mut note,
        &MIDDLE_NOTE[1..],
        "the input's last bytes follow",
    );
    text.extend_from_slice(note.as_bytes());
    text.extend_from_slice(&tail[tail_start..]);
    Ok((text, true))
}

/// Regular files from this size on are read by two threads (see [`read_all`]); below it a
/// thread costs more than it saves.
const PARALLEL_READ_FROM: usize = 1 << 20;

/// Fills `buf` with the bytes of `file` from offset `start`: its first half here, its second on
/// a scoped thread. An error when either read falls short or the thread cannot start.
fn read_halves(file: &std::fs::File, buf: &mut [u8], start: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mid = buf.len() / 2;
    let (head, tail) = buf.split_at_mut(mid);
    let tail_at = start + mid as u64;
    std::thread::scope(|s| {
        let second = std::thread::Builder::new()
            .spawn_scoped(s, move || file.read_exact_at(tail, tail_at))?;
        let first = file.read_exact_at(head, start);
        let second = second
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        first.and(second)
    })
}

async fn daemon(sel: &Selector, action: DaemonAction) -> Result<ExitCode, CliError> {
    let start = matches!(action, DaemonAction::Start(_));
    match action {
        DaemonAction::Start(a) | DaemonAction::Status(a) => {
            let client = match connect(sel, start).await {
                Ok(c) => c,
                Err(ClientError::NotRunning(sock)) => {
                    if a.json {
                        print_json(&serde_json::json!({ "running": false, "socket": sock }))?;
                    } else {
                        outln!("not running (socket {})", sock.display());
                    }
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            };
            let s: StatusResult = client
                .call(reg::DaemonStatus::NAME, serde_json::json!({}))
                .await?;
            if a.json {
                print_json(&s)?;
            } else {
                outln!(
                    "running: pid {}, socket {}, uptime {:.1}s, {} session(s), state in {}",
                    s.pid,
                    s.socket,
                    s.uptime_ms as f64 / 1000.0,
                    s.sessions,
                    s.state_dir
                );
                if let Some(c) = &s.config {
                    if c.loaded {
                        outln!("config: {}", c.path);
                    } else {
                        outln!("config: {} (not present: built-in defaults)", c.path);
                    }
                }
                if let Some(audit) = s.audit.as_ref().filter(|a| !a.ok) {
                    let then = if audit.writes_refused {
                        "writes are refused until `ai-session audit repair`"
                    } else {
                        "actions are NOT audited (AI_SESSION_AUDIT=best-effort)"
                    };
                    outln!(
                        "AUDIT LOG UNAVAILABLE: {}; {then}",
                        audit.problem.as_deref().unwrap_or("unknown problem")
                    );
                }
                if let Some(p) = s.persist.as_ref().filter(|p| p.write_failures > 0) {
                    outln!(
                        "STORE WRITES FAILED: {} since start ({} on a full disk); latest:",
                        p.write_failures,
                        p.disk_full
                    );
                    for f in &p.failures {
                        outln!("  {f}");
                    }
                }
            }
        }
        DaemonAction::Stop(a) => {
            let client = match connect(sel, false).await {
                Ok(c) => c,
                Err(ClientError::NotRunning(sock)) => {
                    if !a.json {
                        outln!("not running (socket {})", sock.display());
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) => return Err(e.into()),
            };
            // The daemon may close the connection before its answer arrives: both mean stopped.
            match client
                .call::<_, serde_json::Value>(reg::DaemonStop::NAME, serde_json::json!({}))
                .await
            {
                Ok(_) | Err(ClientError::Closed) => {}
                Err(e) => return Err(e.into()),
            }
            // Return once it has exited (sessions killed, lock released), so that a `daemon
            // start` right after finds the way clear: its connection closes last.
            let closed = async { while client.notification().await.is_some() {} };
            if tokio::time::timeout(std::time::Duration::from_secs(30), closed)
                .await
                .is_err()
            {
                return Err(CliError::Local(
                    "the daemon did not exit within 30 s".into(),
                ));
            }
            if !a.json {
                outln!("stopped");
            }
        }
        DaemonAction::Upgrade(a) => return crate::upgrade::run(sel, a).await,
        DaemonAction::Run { .. } | DaemonAction::Reap { .. } => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `serve`: asks the daemon (started if needed) to serve HTTP; prints where and how.
async fn serve(sel: &Selector, a: crate::ServeArgs) -> Result<ExitCode, CliError> {
    let client = connect(sel, true).await?;
    let params = ServeParams {
        listen: a.listen,
        allow_remote: a.allow_remote,
        metrics_listen: a.metrics_listen,
    };
    let r: ServeResult = client.call(reg::DaemonServe::NAME, params).await?;
    if a.json {
        print_json(&r)?;
    } else {
        outln!("{}", r.url);
        errln!(
            "{} on {}; the token is in {}\n  curl -H \"Authorization: Bearer $(cat {})\" {}/v1/sessions\n  OpenAPI: {}/openapi.json   MCP: {}/mcp",
            if r.started {
                "serving"
            } else {
                "already serving"
            },
            r.listen,
            r.token_file,
            r.token_file,
            r.url,
            r.url,
            r.url
        );
        if let Some(m) = &r.metrics_listen {
            errln!("  Prometheus: http://{m}/metrics (no token)");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `daemon run`: the daemon process itself.
pub fn run_daemon(
    sel: &Selector,
    notify_ready: bool,
    http: Option<ServeParams>,
    adopt: Option<i32>,
    cluster: Option<ai_session_daemon::ClusterJoin>,
) -> ExitCode {
    cloexec_inherited();
    // Loading the tokenizer's vocabulary takes a fraction of a second: do it now, on a spare
    // thread, so no exec's answer waits for it.
    let warm = std::thread::Builder::new()
        .name("tokenizer".into())
        .spawn(|| ai_session_output::warm_up(ai_session_output::Encoding::O200kBase));
    if let Err(e) = warm {
        errln!("warning: tokenizer not preloaded: {e}");
    }
    let paths = sel.paths();
    if let Err(e) = paths.create_dirs() {
        errln!("error: cannot create {}: {e}", paths.data.display());
        return ExitCode::from(1);
    }
    let log_path = paths.data.join("daemon.log");
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
    {
        Ok(file) => {
            let level = std::env::var("AI_SESSION_LOG")
                .ok()
                .and_then(|l| l.parse::<tracing_subscriber::filter::LevelFilter>().ok())
                .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
            tracing_subscriber::fmt()
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .with_max_level(level)
                .init();
        }
        Err(e) => errln!(
            "warning: cannot open {}: {e}; logging disabled",
            log_path.display()
        ),
    }
    if notify_ready || adopt.is_some() {
        // Started by a client (`ai-session-client` starts every daemon this way): leave the
        // client's session and its controlling terminal, so that closing that terminal or a
        // Ctrl-C in it does not reach the daemon. Fails only for a process group leader, which
        // a spawned child is not.
        if let Err(e) = rustix::process::setsid() {
            tracing::warn!("cannot start a session of its own: {e}");
        }
    }
    // stderr goes to /dev/null once detached: record panics in the log instead.
    std::panic::set_hook(Box::new(|info| {
        let bt = std::backtrace::Backtrace::force_capture();
        tracing::error!("daemon panic: {info}\n{bt}");
    }));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let ready = move || {
        if notify_ready {
            // The starting client may be gone: the daemon goes on without it.
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(b"ready\n")
                .and_then(|()| stdout.flush())
                .ok();
        }
        if notify_ready || adopt.is_some() {
            detach_stdio();
        }
    };
    let served = match adopt {
        None => rt.block_on(ai_session_daemon::serve_in(paths, http, cluster, ready)),
        Some(fd) => match crate::upgrade::handover_fd(fd) {
            Ok(fd) => rt.block_on(ai_session_daemon::serve_adopting(paths, fd, cluster, ready)),
            Err(e) => {
                errln!("error: {e}");
                return ExitCode::from(1);
            }
        },
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            errln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Points stdout and stderr at /dev/null so the starter's pipe can close.
/// Marks every descriptor the daemon inherited beyond stdio close-on-exec, so none leaks into
/// the sessions' shells (a build tool's jobserver pipe, a terminal's extra descriptors).
fn cloexec_inherited() {
    use rustix::io::{FdFlags, fcntl_getfd, fcntl_setfd};
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: only the descriptor's flags are read and set; a number that closed meanwhile
        // (the directory's own) makes both calls fail harmlessly.
        let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
        if let Ok(flags) = fcntl_getfd(fd) {
            fcntl_setfd(fd, flags | FdFlags::CLOEXEC).ok();
        }
    }
}

fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        if let Err(e) =
            rustix::stdio::dup2_stdout(&null).and_then(|()| rustix::stdio::dup2_stderr(&null))
        {
            tracing::warn!("cannot detach stdio: {e}");
        }
    }
}
