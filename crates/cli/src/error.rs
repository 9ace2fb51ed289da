//! The CLI's error: the daemon client's, or one the CLI finds itself before or after a call;
//! its exit status, and how it is shown (a line and a hint on stderr, or JSON on stdout).
//!
//! Exit statuses: a command's own status passes through (`exec`); the CLI's own failures are
//! 125 ("could not run": bad usage, daemon unreachable, unknown session, refused request) and
//! 124 (a timeout); 141 when standard output was closed under it (as a process killed by
//! SIGPIPE).

use std::process::ExitCode;

use ai_session_client::Selector;
use ai_session_protocol::{ErrorKind, RpcError};
use serde_json::{Value, json};

/// The CLI could not do what was asked (usage, daemon, request refused).
pub const COULD_NOT_RUN: u8 = 125;
/// A timeout: `exec` returned before its command finished, `wait` ran out of time.
pub const TIMED_OUT: u8 = 124;
/// Standard output was closed (`ai-session ... | head -1`).
pub const PIPE_CLOSED: u8 = 141;

/// Why a command failed; `main` shows it and exits with [`CliError::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Connecting to the daemon or a call failed, or the daemon refused the request.
    #[error(transparent)]
    Client(#[from] ai_session_client::Error),
    /// The CLI refused the command itself (a malformed argument, no terminal for `attach`), in
    /// the daemon's words: a kind, a message and a hint.
    #[error("{0}")]
    Refused(#[from] RpcError),
    /// Reading or writing a local file or the terminal failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Local data could not be made or read (JSON to print, base64 from the daemon, token
    /// counts, a stream that ended).
    #[error("{0}")]
    Local(String),
}

impl CliError {
    /// The daemon's or the CLI's own structured error, if that is what this is.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            Self::Client(e) => e.rpc(),
            Self::Refused(e) => Some(e),
            _ => None,
        }
    }

    /// True when standard output was closed: the CLI ends quietly.
    pub fn is_closed_pipe(&self) -> bool {
        matches!(self, Self::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// 124 for a timeout, 141 for a closed standard output, 125 for everything else.
    pub fn exit_code(&self) -> u8 {
        if self.is_closed_pipe() {
            PIPE_CLOSED
        } else if self.rpc().and_then(RpcError::kind) == Some(ErrorKind::Timeout) {
            TIMED_OUT
        } else {
            COULD_NOT_RUN
        }
    }

    /// A stable name for the failure: the daemon's error kind, or the CLI's own.
    pub fn kind(&self) -> String {
        use ai_session_client::Error as C;
        if let Some(kind) = self.rpc().and_then(RpcError::kind) {
            return serde_json::to_value(kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "internal".into());
        }
        match self {
            Self::Client(C::NotRunning(_)) => "daemon_not_running",
            Self::Client(C::StartFailed { .. }) => "daemon_start_failed",
            Self::Client(C::StartTimeout { .. }) => "daemon_start_timeout",
            Self::Client(C::Closed) => "daemon_closed",
            Self::Client(_) => "client",
            Self::Io(_) => "io",
            Self::Refused(_) | Self::Local(_) => "internal",
        }
        .into()
    }

    /// The message alone, without the hint.
    pub fn message(&self) -> String {
        match self.rpc() {
            Some(rpc) => rpc.message.clone(),
            None => self.to_string(),
        }
    }

    /// What to do, in the CLI's words with the user's `-L`/`-S`.
    pub fn hint(&self, sel: &Selector) -> Option<String> {
        let hint = match self {
            Self::Client(ai_session_client::Error::StartFailed { .. }) => {
                Some("fix what the daemon's error names, then run the command again".to_owned())
            }
            Self::Client(ai_session_client::Error::Closed) => Some(format!(
                "the daemon stopped or restarted; `{}` shows whether one runs now",
                command(sel, "daemon status")
            )),
            _ => self.rpc().and_then(|r| r.data.hint.clone()),
        }?;
        Some(phrase(&hint, sel))
    }

    /// The `--json` form: `{kind, message, hint, exit_code}` (and `sessions` when the daemon
    /// listed the sessions that exist).
    pub fn to_json(&self, sel: &Selector) -> Value {
        let mut v = json!({
            "kind": self.kind(),
            "message": self.message(),
            "hint": self.hint(sel),
            "exit_code": self.exit_code(),
        });
        if let Some(sessions) = self.rpc().and_then(|r| r.data.sessions.clone()) {
            v["sessions"] = json!(sessions);
        }
        v
    }
}

/// Shows a failure (a line and a hint on stderr, or the JSON error on stdout with `--json`)
/// and gives its exit status: 124 for a timeout, 125 for everything else the CLI could not do,
/// nothing at all and 141 when standard output was closed.
pub fn report(e: &CliError, json: bool, sel: &Selector) -> ExitCode {
    if e.is_closed_pipe() {
        return ExitCode::from(PIPE_CLOSED);
    }
    if json {
        outln!("{:#}", e.to_json(sel));
    } else {
        errln!("error: {}", e.message());
        if let Some(hint) = e.hint(sel) {
            errln!("hint: {hint}");
        }
    }
    ExitCode::from(e.exit_code())
}

/// The `-L NAME` or `-S SOCKET` the user gave, as it goes on a command line.
fn selector_flags(sel: &Selector) -> String {
    match (&sel.label, &sel.socket) {
        (_, Some(sock)) => format!(" -S {}", shell_word(&sock.display().to_string())),
        (Some(label), None) => format!(" -L {}", shell_word(label)),
        (None, None) => String::new(),
    }
}

fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// `ai-session [-L NAME] ARGS`.
pub fn command(sel: &Selector, args: &str) -> String {
    format!("ai-session{} {args}", selector_flags(sel))
}

/// Gives every `ai-session ...` command a hint names the user's `-L`/`-S`, so it can be
/// copied and run as it is.
pub fn phrase(hint: &str, sel: &Selector) -> String {
    let flags = selector_flags(sel);
    if flags.is_empty() {
        return hint.to_owned();
    }
    // Every command the hint names, quoted (`ai-session wait ...`) or not (advice the daemon
    // phrased for the command line), and not already carrying a selector.
    let mut out = String::with_capacity(hint.len() + flags.len() * 2);
    let mut rest = hint;
    while let Some(i) = rest.find("ai-session ") {
        let (before, after) = rest.split_at(i + "ai-session".len());
        out.push_str(before);
        let starts_word = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        if starts_word && !after.starts_with(" -L ") && !after.starts_with(" -S ") {
            out.push_str(&flags);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(label: Option<&str>, socket: Option<&str>) -> Selector {
        Selector {
            label: label.map(str::to_owned),
            socket: socket.map(std::path::PathBuf::from),
        }
    }

    #[test]
    fn unquoted_commands_get_the_selector_once() {
        let h = "ai-session wait -t s --prompt waits for it; ai-session -L x ls is left as it is";
        assert_eq!(
            phrase(h, &sel(Some("b"), None)),
            "ai-session -L b wait -t s --prompt waits for it; ai-session -L x ls is left as it is"
        );
    }

    #[test]
    fn hints_carry_the_users_selector() {
        let h = "wait with `ai-session wait -t s --prompt`, or `ai-session send -t s C-c`";
        assert_eq!(phrase(h, &sel(None, None)), h);
        assert_eq!(
            phrase(h, &sel(Some("build"), None)),
            "wait with `ai-session -L build wait -t s --prompt`, or `ai-session -L build send -t s C-c`"
        );
        assert_eq!(
            phrase(h, &sel(None, Some("/tmp/my sock"))),
            "wait with `ai-session -S '/tmp/my sock' wait -t s --prompt`, or `ai-session -S '/tmp/my sock' send -t s C-c`"
        );
    }

    #[test]
    fn exit_codes_and_kinds() {
        let timeout = CliError::Refused(RpcError::new(ErrorKind::Timeout, "late"));
        assert_eq!(timeout.exit_code(), TIMED_OUT);
        assert_eq!(timeout.kind(), "timeout");
        let unknown = CliError::Refused(
            RpcError::new(ErrorKind::SessionNotFound, "no session named 'x'")
                .with_hint("existing sessions: a"),
        );
        assert_eq!(unknown.exit_code(), COULD_NOT_RUN);
        let j = unknown.to_json(&sel(None, None));
        assert_eq!(j["kind"], "session_not_found");
        assert_eq!(j["message"], "no session named 'x'");
        assert_eq!(j["hint"], "existing sessions: a");
        let pipe = CliError::Io(std::io::ErrorKind::BrokenPipe.into());
        assert!(pipe.is_closed_pipe());
        assert_eq!(pipe.exit_code(), PIPE_CLOSED);
    }
}
