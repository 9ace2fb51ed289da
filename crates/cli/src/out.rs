//! Standard output and error that never panic: `println!` panics when the reader of a pipe
//! has gone (`ai-session ls | head -1`), because the process ignores SIGPIPE (the same binary is
//! the daemon, and every client writes to a socket whose daemon may die). Here a closed
//! standard output ends the CLI quietly with status 141, as SIGPIPE would; a closed standard
//! error is ignored.

use std::io::Write;

/// Writes to standard output; on a closed pipe exits 141 without a word, on another failure
/// (a full disk behind a redirection) says so and exits 125.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        drop(out);
        failed(&e);
    }
}

/// Writes bytes as they are and flushes, with [`write_out`]'s rules.
pub(crate) fn write_bytes(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        drop(out);
        failed(&e);
    }
}

/// Flushes standard output, with [`write_out`]'s rules.
pub(crate) fn flush() {
    if let Err(e) = std::io::stdout().lock().flush() {
        failed(&e);
    }
}

/// Writes to standard error, ignoring a failure: there is nowhere left to report it.
pub(crate) fn write_err(args: std::fmt::Arguments<'_>) {
    std::io::stderr().lock().write_fmt(args).ok();
}

pub(crate) fn failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        closed();
    }
    write_err(format_args!("error: cannot write the output: {e}\n"));
    std::process::exit(i32::from(crate::error::COULD_NOT_RUN));
}

/// Ends the process because standard output was closed.
pub(crate) fn closed() -> ! {
    std::process::exit(i32::from(crate::error::PIPE_CLOSED));
}

/// `println!` without the panic.
macro_rules! outln {
    () => { $crate::out::write_out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` without the panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::write_out(format_args!($($arg)*)) };
}

/// `eprintln!` without the panic.
macro_rules! errln {
    () => { $crate::out::write_err(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::write_err(format_args!("{}\n", format_args!($($arg)*))) };
}
