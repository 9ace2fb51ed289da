//! The arguments of the commands the small `ai-session` client runs itself (`exec`, `new`,
//! `ls`) and the options every command takes: one definition, compiled into both binaries
//! (`src/main.rs`, the whole command line, and `src/thin/main.rs`), so the two parse alike.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::Args;

/// Which daemon a command talks to: the options every command takes.
#[derive(Args)]
pub(crate) struct DaemonChoice {
    /// Use the daemon with this label (its own socket and state), as tmux -L.
    #[arg(
        short = 'L',
        global = true,
        value_name = "NAME",
        conflicts_with = "socket"
    )]
    pub(crate) label: Option<String>,
    /// Use the daemon on this socket path, as tmux -S.
    #[arg(short = 'S', global = true, value_name = "SOCKET")]
    pub(crate) socket: Option<PathBuf>,
}

/// `--json` alone: the arguments of `ls` and other commands.
#[derive(Args)]
pub(crate) struct JsonFlag {
    /// Print JSON with a stable shape.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `new`'s arguments.
#[derive(Args)]
pub(crate) struct NewArgs {
    /// Session name (default: the lowest free number).
    #[arg(short = 's', value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Working directory (default: the current one).
    #[arg(short = 'c', value_name = "DIR")]
    pub(crate) cwd: Option<PathBuf>,
    /// Shell to run (default: $SHELL, then bash, then sh).
    #[arg(long, value_name = "PATH")]
    pub(crate) shell: Option<String>,
    /// Set an environment variable (repeatable).
    #[arg(short = 'e', value_name = "KEY=VAL")]
    pub(crate) env: Vec<String>,
    /// Terminal size (default 80x24).
    #[arg(long, value_name = "COLSxROWS")]
    pub(crate) size: Option<String>,
    /// Run the session in a sandbox: a policy file (TOML) or a built-in profile
    /// (default, read-only, workspace-write, no-network). Unconfined when absent.
    #[arg(long, value_name = "FILE|PROFILE")]
    pub(crate) policy: Option<String>,
    /// In a cluster, start the session on this node (default: the daemon's own node).
    #[arg(long, value_name = "NODE")]
    pub(crate) node: Option<String>,
    /// Print JSON with a stable shape.
    #[arg(long)]
    pub(crate) json: bool,
    /// Program and arguments to run instead of a shell.
    #[arg(last = true, value_name = "PROGRAM")]
    pub(crate) program: Vec<String>,
}

/// `exec`'s arguments.
#[derive(Args)]
pub(crate) struct ExecArgs {
    /// The session.
    #[arg(short = 't', value_name = "NAME")]
    pub(crate) target: String,
    /// Give up waiting after DURATION (500ms, 30s, 2m; a bare number is seconds): the command
    /// keeps running; status `timeout`; exit 124. Default: `[exec] timeout_secs` of
    /// config.toml, else 120s.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::secs_flag)]
    pub(crate) timeout: Option<crate::duration::Millis>,
    /// Return after DURATION without output (500ms, 30s; a bare number is seconds): the command
    /// keeps running; status `running`; exit 124. Default: `[exec] idle_timeout_secs` of
    /// config.toml, else none.
    #[arg(long, value_name = "DURATION", value_parser = crate::duration::secs_flag)]
    pub(crate) idle_timeout: Option<crate::duration::Millis>,
    /// Print JSON with a stable shape.
    #[arg(long)]
    pub(crate) json: bool,
    /// What to print: the command's output (full), the token-lean view (compact), both, or
    /// its diagnostics as `file:line:col: severity: message` lines (diagnostics).
    #[arg(long, value_enum, default_value = "full")]
    pub(crate) view: View,
    /// Most tokens of the compact view (default 1500).
    #[arg(long, value_name = "TOKENS")]
    pub(crate) budget: Option<usize>,
    /// Print the output as it arrives (the default when stdout is a terminal and the view is
    /// `full`); into a pipe it comes as plain text, line by line. A compact view asked for is
    /// printed after it.
    #[arg(long, conflicts_with = "json")]
    pub(crate) stream: bool,
    /// Give the command this file as its standard input (binary-safe, at most 8 MiB). Without
    /// it, a pipe or file on ai-session's own stdin is given (`echo data | ai-session exec -t s
    /// 'wc -c'`); a terminal or /dev/null is not, and the command reads the session's terminal.
    #[arg(long, value_name = "FILE", conflicts_with = "no_stdin")]
    pub(crate) stdin: Option<PathBuf>,
    /// Do not read ai-session's standard input (for a caller that leaves a pipe open).
    #[arg(short = 'n', long)]
    pub(crate) no_stdin: bool,
    /// The command line (joined with spaces).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub(crate) command: Vec<String>,
}

/// What `exec` prints.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum View {
    Full,
    Compact,
    Both,
    /// One `file:line:col: severity: message` line per compiler, linter or test diagnostic.
    Diagnostics,
}

/// The subcommand's name: the first argument that is neither a global option (`-L NAME`,
/// `-S PATH`, `-LNAME`) nor its value. Anything else first (`--help`, `--version`) is `None`.
pub(crate) fn subcommand(argv: &[OsString]) -> Option<&str> {
    let mut args = argv.iter().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.to_str()?;
        match arg {
            "-L" | "-S" => {
                args.next();
            }
            _ if arg.starts_with("-L") || arg.starts_with("-S") => {}
            _ if arg.starts_with('-') => return None,
            _ => return Some(arg),
        }
    }
    None
}
