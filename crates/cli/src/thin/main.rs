//! `ai-session`: the small client. It runs the commands agents call in a loop, `exec`, `new`
//! and `ls` (and `--version`), itself, with a blocking socket and no async runtime, and hands
//! every other command line, unchanged, to the whole CLI, `ai-session-full` beside it
//! (`execve`: same process, same arguments, `argv[0]` kept): help, errors of usage, every other
//! command, `exec --stream`, `new --policy`, starting the daemon when none listens, and the
//! daemon itself.
//!
//! Why a second binary: the whole CLI is also the daemon, the MCP server, the HTTP server and a
//! cluster member, and starting that executable costs about twice what starting this one does
//! (`docs/benchmarks.md`, "The CLI's start"). What the two binaries run for `exec` and `new`
//! is one code: the arguments (`args.rs`), what is sent and printed (`answer.rs`), errors and
//! exit statuses (`error.rs`) and output that never panics (`out.rs`) are compiled into both.

// Output goes through `out!`/`outln!`/`errln!` (`out.rs`), which end quietly on a closed pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]
// The C `main` below is the entry point: std's start-up is skipped (see there). Unit tests
// keep the test harness's own.
#![cfg_attr(not(test), no_main)]

// Shared with the whole CLI, which uses every part of these.
#[allow(dead_code)]
#[macro_use]
#[path = "../out.rs"]
mod out;
#[path = "../answer.rs"]
mod answer;
#[path = "../args.rs"]
mod args;
#[allow(dead_code)]
#[path = "../duration.rs"]
mod duration;
#[allow(dead_code)]
#[path = "../error.rs"]
mod error;
mod wire;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use ai_session_client::{Error as ClientError, Selector};
use ai_session_protocol::PROTOCOL_VERSION;
use ai_session_protocol::methods::{HelloParams, HelloResult, ListResult, SessionInfo};
use ai_session_protocol::registry::{Hello, Method, SessionExec, SessionList, SessionNew};
use clap::{Args, Command as Tree, FromArgMatches};

use args::{DaemonChoice, ExecArgs, JsonFlag, NewArgs};
use error::CliError;

/// The whole CLI's executable, in the same directory as this one.
const FULL: &str = "ai-session-full";

/// After this long still reading standard input, say so: a caller may have left a pipe open.
const STDIN_NOTICE: Duration = Duration::from_secs(2);

/// A command this binary runs itself.
enum Hot {
    Exec(ExecArgs),
    New(NewArgs),
    Ls(JsonFlag),
}

// The unwinder linked into this binary rather than loaded from `libgcc_s.so` at every start
// (the standard library asks for the shared one; with this archive on the link line the linker
// finds every symbol it needs here first and drops the shared library). A linker that does not
// look back into archives keeps `libgcc_s`, which changes nothing but the start-up time.
#[link(name = "gcc_eh", kind = "static", modifiers = "-bundle")]
unsafe extern "C" {}

/// The process's entry point, called by the C library. Every CLI call is a new process, so its
/// start is part of every `exec`'s round trip, and std's own start-up (`lang_start`) costs more
/// than this client's work: it reads `/proc/self/maps` to place a guard below the main thread's
/// stack (the kernel keeps its own gap there) and maps an alternate signal stack to report a
/// stack overflow by name (one ends this process with SIGSEGV instead). What it does that this
/// client needs is done here: SIGPIPE ignored, so a closed pipe is an error `out.rs` handles
/// (EPIPE) rather than a silent death, and `std::process::exit`, which flushes standard output
/// as std's return from `main` would. The arguments are read from `argv` here (std fills
/// `std::env::args_os` from its start-up on some C libraries). Measured in docs/benchmarks.md
/// (issue 17).
#[cfg_attr(not(test), unsafe(no_mangle))]
extern "C" fn main(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // SAFETY: the C runtime passes `argc` pointers to NUL-terminated strings in `argv`.
    let argv = unsafe { arguments(argc, argv) };
    let code = match run(&argv) {
        Some(code) => code,
        None => full(&argv),
    };
    std::process::exit(status(code))
}

/// The program's arguments, as `main` received them.
///
/// # Safety
/// `argv` holds at least `argc` pointers, each to a NUL-terminated string.
unsafe fn arguments(argc: std::ffi::c_int, argv: *const *const std::ffi::c_char) -> Vec<OsString> {
    use std::os::unix::ffi::OsStrExt;
    let count = usize::try_from(argc).unwrap_or(0);
    (0..count)
        .filter_map(|i| {
            // SAFETY: `i < argc`, and each entry is a C string (the caller's promise).
            let arg = unsafe { *argv.add(i) };
            (!arg.is_null()).then(|| {
                // SAFETY: as above.
                let bytes = unsafe { std::ffi::CStr::from_ptr(arg) }.to_bytes();
                std::ffi::OsStr::from_bytes(bytes).to_owned()
            })
        })
        .collect()
}

/// The number an `ExitCode` stands for (std keeps it private): every code this client returns
/// is made from a `u8`.
fn status(code: ExitCode) -> std::ffi::c_int {
    (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .map_or(1, std::ffi::c_int::from)
}

/// Runs `argv` here and gives its exit status, or `None` before anything was done (nothing
/// sent, no input read) when the whole CLI must run it.
fn run(argv: &[OsString]) -> Option<ExitCode> {
    // Run as `tmux` (a symlink): tmux's command line, `tmux -V` included, which the whole CLI
    // speaks.
    let program = argv.first()?.to_str()?;
    if program.rsplit('/').next() == Some("tmux") {
        return None;
    }
    if version(argv) {
        outln!("ai-session {}", env!("CARGO_PKG_VERSION"));
        return Some(ExitCode::SUCCESS);
    }
    let (sel, hot) = parse(argv)?;
    if let Hot::Exec(a) = &hot {
        if answer::streams(a, std::io::stdout().is_terminal()) {
            return None;
        }
    }
    if let Hot::New(a) = &hot {
        if a.policy.is_some() {
            return None;
        }
    }
    let json = match &hot {
        Hot::Exec(a) => a.json,
        Hot::New(a) => a.json,
        Hot::Ls(a) => a.json,
    };
    // No daemon listening: the whole CLI starts one (under the start lock) and runs the command.
    let mut conn = wire::Conn::connect(&sel.paths().socket).ok()?;
    let hello = HelloParams {
        client: format!("ai-session-cli {}", env!("CARGO_PKG_VERSION")),
        protocol: PROTOCOL_VERSION,
        // An agent started with a token acts with that token's capabilities only.
        token: std::env::var("AI_SESSION_TOKEN")
            .ok()
            .filter(|t| !t.is_empty()),
    };
    // Without a token the hello goes out with the command, one round trip for both (the
    // daemon runs nothing behind a hello it refuses). A token's hello is answered first: a
    // daemon from before that rule could run the command before the hello set who asks.
    let sent = if hello.token.is_none() {
        conn.hello_ahead(hello).map(drop)
    } else {
        conn.call::<_, HelloResult>(Hello::NAME, hello).map(drop)
    };
    match sent {
        Ok(()) => {}
        // A daemon that is exiting accepted and dropped the connection: the whole CLI retries
        // and starts a fresh daemon if need be.
        Err(ClientError::Closed) => return None,
        Err(e) => return Some(error::report(&CliError::Client(e), json, &sel)),
    }
    let done = match hot {
        Hot::Exec(a) => exec(&mut conn, &sel, a),
        Hot::New(a) => new(&mut conn, a),
        Hot::Ls(a) => conn
            .call::<_, ListResult>(SessionList::NAME, serde_json::json!({}))
            .map_err(CliError::from)
            .and_then(|list| answer::ls_answer(&list, a.json)),
    };
    match done {
        Ok(code) => Some(code),
        // Closed before the hello sent ahead was answered: nothing ran, as above.
        Err(CliError::Client(ClientError::Closed)) if conn.hello_lost() => None,
        Err(e) => Some(error::report(&e, json, &sel)),
    }
}

/// True for `ai-session --version` (or `-V`), with nothing else but `-L`/`-S`: what clap prints
/// for the whole CLI.
fn version(argv: &[OsString]) -> bool {
    let mut rest = argv.iter().skip(1).filter_map(|a| a.to_str());
    let mut flag = None;
    while let Some(arg) = rest.next() {
        match arg {
            "-L" | "-S" => {
                rest.next();
            }
            _ if arg.starts_with("-L") || arg.starts_with("-S") => {}
            "--version" | "-V" if flag.is_none() => flag = Some(arg),
            _ => return false,
        }
    }
    flag.is_some() && argv.iter().all(|a| a.to_str().is_some())
}

/// `argv` when it runs `exec`, `new` or `ls` (the same arguments as the whole CLI's, on a tree
/// of that subcommand alone); `None` for anything else, help and any argument error, which the
/// whole CLI shows in its own words.
fn parse(argv: &[OsString]) -> Option<(Selector, Hot)> {
    let name = args::subcommand(argv)?;
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        return None;
    }
    let sub = match name {
        "exec" => ExecArgs::augment_args(Tree::new("exec")),
        "new" => NewArgs::augment_args(Tree::new("new")),
        "ls" => JsonFlag::augment_args(Tree::new("ls")),
        _ => return None,
    };
    let matches = DaemonChoice::augment_args(Tree::new("ai-session"))
        .subcommand(sub)
        .try_get_matches_from(argv)
        .ok()?;
    let daemon = DaemonChoice::from_arg_matches(&matches).ok()?;
    let (_, sub) = matches.subcommand()?;
    let hot = match name {
        "exec" => Hot::Exec(ExecArgs::from_arg_matches(sub).ok()?),
        "new" => Hot::New(NewArgs::from_arg_matches(sub).ok()?),
        _ => Hot::Ls(JsonFlag::from_arg_matches(sub).ok()?),
    };
    let sel = Selector {
        label: daemon.label,
        socket: daemon.socket,
    };
    Some((sel, hot))
}

fn exec(conn: &mut wire::Conn, sel: &Selector, a: ExecArgs) -> Result<ExitCode, CliError> {
    let params = answer::exec_params(&a, false, input(&a)?);
    let reply = conn.call_value(SessionExec::NAME, params)?;
    answer::exec_answer(reply, &a, sel, false, false)
}

fn new(conn: &mut wire::Conn, a: NewArgs) -> Result<ExitCode, CliError> {
    let json = a.json;
    let params = answer::new_params(a, no_policy)?;
    let info: SessionInfo = conn.call(SessionNew::NAME, params)?;
    answer::new_answer(&info, json)
}

/// `new --policy` goes to the whole CLI, which reads policies: never called here.
fn no_policy(spec: &str) -> Result<String, CliError> {
    Err(CliError::Local(format!(
        "the policy {spec} is read by {FULL}, not by this client"
    )))
}

/// The command's standard input: `--stdin FILE`, else this process's stdin when it is a pipe,
/// a socket or a file with something in it; `None` for a terminal, /dev/null, `--no-stdin` or
/// an empty input. As the whole CLI: a notice on stderr after two seconds of reading.
fn input(a: &ExecArgs) -> Result<Option<Vec<u8>>, CliError> {
    use std::sync::mpsc::{RecvTimeoutError, channel};
    if let Some(path) = &a.stdin {
        return answer::stdin_file(path).map(Some);
    }
    if a.no_stdin || !answer::stdin_is_data()? {
        return Ok(None);
    }
    let (tx, rx) = channel();
    std::thread::spawn(move || tx.send(answer::read_bounded(std::io::stdin().lock())));
    let gone =
        |e: std::sync::mpsc::RecvError| CliError::Local(format!("reading standard input: {e}"));
    let bytes = match rx.recv_timeout(STDIN_NOTICE) {
        Ok(read) => read,
        Err(RecvTimeoutError::Timeout) => {
            errln!(
                "ai-session: reading standard input for the command until it ends (--no-stdin runs without it)"
            );
            rx.recv().map_err(gone)?
        }
        Err(RecvTimeoutError::Disconnected) => return Err(gone(std::sync::mpsc::RecvError)),
    }?;
    if bytes.is_empty() {
        return Ok(None);
    }
    answer::check_size(bytes).map(Some)
}

/// Replaces this process with the whole CLI, given the same arguments; returns only when it
/// cannot be run.
fn full(argv: &[OsString]) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let json = argv.iter().any(|a| a == "--json");
    let path = match std::env::current_exe() {
        Ok(me) => me.with_file_name(FULL),
        Err(e) => {
            let e = CliError::Local(format!("cannot find this executable's directory: {e}"));
            return error::report(&e, json, &Selector::default());
        }
    };
    let mut command = std::process::Command::new(&path);
    if let Some(arg0) = argv.first() {
        command.arg0(arg0);
    }
    let e = command.args(argv.iter().skip(1)).exec();
    let e = CliError::Local(format!(
        "cannot run {}: {e}; ai-session runs every command but exec, new and ls, and the daemon, \
         with {FULL} installed beside it (cargo install --path crates/cli installs both)",
        path.display()
    ));
    error::report(&e, json, &Selector::default())
}
