//! Standard output and error that never panic. The `ai-session` binary ignores SIGPIPE (it is
//! also the daemon), so `println!` panics once the reader of a pipe has gone
//! (`ai-session tmux list-sessions | head -1`). Here a closed standard output ends the command
//! quietly with status 141, as SIGPIPE would end tmux itself; another write failure (a full
//! disk behind a redirection) is reported and ends it with status 1, tmux's failure status; a
//! closed standard error is ignored.

use std::io::Write;

/// The status of a process ended by SIGPIPE (128 + 13), as a shell reports it.
const PIPE_CLOSED: i32 = 141;

/// Writes to standard output and flushes, with the rules above.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        drop(out);
        failed(&e);
    }
}

/// Writes to standard error, ignoring a failure: there is nowhere left to report it.
pub(crate) fn write_err(args: std::fmt::Arguments<'_>) {
    std::io::stderr().lock().write_fmt(args).ok();
}

fn failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(PIPE_CLOSED);
    }
    write_err(format_args!("cannot write the output: {e}\n"));
    std::process::exit(1);
}

/// `print!` without the panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::write_out(format_args!($($arg)*)) };
}

/// `println!` without the panic.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::out::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` without the panic.
macro_rules! err {
    ($($arg:tt)*) => { $crate::out::write_err(format_args!($($arg)*)) };
}

/// `eprintln!` without the panic.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::out::write_err(format_args!("{}\n", format_args!($($arg)*))) };
}
