//! Method names with their parameter and result types.
//!
//! Field names are the stable JSON shape: add optional fields freely, rename or retype only with a
//! [`crate::PROTOCOL_VERSION`] bump.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Notification carrying output bytes of a subscribed session.
pub const NOTIFY_OUTPUT: &str = "session.output";
/// Notification sent once when a subscribed session's program exits or the session is killed.
pub const NOTIFY_CLOSED: &str = "session.closed";
/// Notification: a command started or finished in a subscribed session's shell.
pub const NOTIFY_COMMAND: &str = "session.command";
/// Notification: a subscribed session changed state (idle, busy, exited).
pub const NOTIFY_STATE: &str = "session.state";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HelloParams {
    pub client: String,
    pub protocol: u32,
    /// Act as this principal from now on: an agent token (`agent register`) or an API token
    /// (`access token`). Without one, a socket client is the owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct HelloResult {
    pub server: String,
    pub protocol: u32,
    pub pid: u32,
}

/// A terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Size {
    pub cols: u16,
    pub rows: u16,
}

impl Default for Size {
    fn default() -> Self {
        Self { cols: 80, rows: 24 }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NewParams {
    /// Session name; the daemon picks the lowest free number when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Working directory of the program; the daemon's own when absent.
    #[serde(default)]
    pub cwd: Option<String>,
    /// The shell to run; `$SHELL`, then bash, then sh when absent. Ignored when `program` is set.
    #[serde(default)]
    pub shell: Option<String>,
    /// The base environment (clients usually send their own); the daemon's when absent.
    #[serde(default)]
    pub env: Option<BTreeMap<String, String>>,
    /// `KEY=VAL` settings applied on top of the base environment.
    #[serde(default)]
    pub set_env: BTreeMap<String, String>,
    #[serde(default)]
    pub size: Option<Size>,
    /// A program and its arguments to run instead of a shell.
    #[serde(default)]
    pub program: Option<Vec<String>>,
    /// Run the session in a sandbox: a built-in profile name (`default`, `read-only`,
    /// `workspace-write`, `no-network`) or a whole policy in TOML. Unconfined when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// What a session is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Spawned, the shell has not shown its first prompt yet.
    Starting,
    /// The shell is at its prompt.
    Idle,
    /// A command (or a program without a shell) is running.
    Busy,
    /// The program has exited; the session stays until killed.
    Exited,
}

/// How the daemon knows where a command's output ends and what its exit code was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Integration {
    /// OSC 133 marks emitted by hooks injected into the shell (bash, zsh, sh).
    Osc133,
    /// Per-command nonce marks written around each command (other POSIX shells).
    Nonce,
    /// Not a shell: drive it with send + wait.
    None,
}

/// The process holding the terminal's foreground.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Foreground {
    pub pid: i32,
    /// The process name from /proc.
    pub command: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionInfo {
    /// The session's immutable id: never reused, unlike its name. A session brought back from
    /// the store (a daemon restart) keeps it; a restore or an import is a new session.
    #[serde(default)]
    pub id: String,
    pub name: String,
    pub pid: i32,
    pub program: Vec<String>,
    /// The shell's working directory now (where it started once its program has exited).
    pub cwd: String,
    pub size: Size,
    pub state: SessionState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub integration: Integration,
    /// Unix time in milliseconds.
    pub created_ms: u64,
    /// The absolute offset one past the last byte of output logged so far.
    pub log_end: u64,
    /// The oldest offset still in the log (older output was dropped to respect the bound).
    pub log_start: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreground: Option<Foreground>,
    /// The sandbox the session runs in; absent for an unconfined session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxInfo>,
    /// Why the program stopped when a resource limit stopped it (CPU time, memory, file size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Brought back from a saved record (after a daemon restart, a restore or an import): the
    /// shell is new, the scrollback above its first prompt is the old one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restored: bool,
    /// Why the session's output log is missing output right now (a full or failing disk):
    /// output is still read, marks still count and execs still finish with their exit codes,
    /// but bytes that cannot be written are lost. Absent when the log is whole again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// The last command the shell finished (typed by anyone: exec, send, a person attached),
    /// from its integration marks; absent until one finishes, and for shells without marks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_command: Option<LastCommand>,
    /// The node of the cluster that runs the session (`session.list` of a clustered daemon);
    /// absent outside a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// In a cluster: Unix time in milliseconds of the session's last checkpoint, what a
    /// restore would bring back if its node died now (`session.list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_ms: Option<u64>,
}

/// A finished command, as the shell's marks reported it (OSC 133 C to D).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LastCommand {
    /// Its exit status (null when the shell reported none).
    pub exit_code: Option<i32>,
    /// From its start to its end, in milliseconds.
    pub duration_ms: u64,
    /// When it finished, Unix time in milliseconds.
    pub finished_ms: u64,
}

/// The protections a sandboxed session runs with, exactly as applied by the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SandboxInfo {
    /// The profile name, or `custom` for a policy given in TOML.
    pub policy: String,
    /// Each protection in force, in words (`landlock file-system rules (ABI 7)`, ...).
    pub active: Vec<String>,
    /// What the policy asked for that this host cannot enforce (empty: fully enforced).
    pub missing: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ListResult {
    pub sessions: Vec<SessionInfo>,
    /// In a cluster: the live nodes whose sessions are missing from `sessions` because they
    /// did not answer in time, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unanswered: Vec<crate::cluster::Unanswered>,
    /// In a cluster: the lost sessions (their node died or was cut off), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost: Vec<crate::cluster::LostSession>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Target {
    pub target: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExecParams {
    pub target: String,
    pub command: String,
    /// Hard limit; at the limit the result has status `timeout` and the command keeps running.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// No-output limit; when reached the result has status `running` and the partial output.
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    /// Cap on `output` bytes; longer output keeps its head and tail and sets `truncated`.
    #[serde(default)]
    pub max_output_bytes: Option<usize>,
    /// Most tokens of the `compact` view (default 1,500; at least 200). The view keeps errors,
    /// failures and final status first and counts what it leaves out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view_budget: Option<usize>,
    /// The command's standard input, base64 encoded (binary-safe; at most
    /// [`MAX_EXEC_STDIN`] bytes once decoded). The daemon writes it to a private file the
    /// command reads as its stdin, instead of the session's terminal; absent, the command
    /// reads the terminal as usual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin_b64: Option<String>,
    /// Answer with the views only: when the command finished and a `compact` view was made,
    /// `output` is empty (the log keeps it: `session.read` from `output_start` returns it),
    /// which spares encoding, sending and decoding megabytes a caller printing the view
    /// does not read. A result without a view (a command still running) keeps its `output`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub view_only: bool,
}

/// The most bytes of standard input an exec takes (`stdin_b64`, decoded): 8 MiB.
pub const MAX_EXEC_STDIN: usize = 8 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExecStatus {
    /// The command finished; `exit_code` is its status (null only when the shell read the line
    /// and started no command: a comment, a line it could not parse).
    Exited,
    /// No output for `idle_timeout_ms`: the command is still running.
    Running,
    /// `timeout_ms` passed: the command is still running.
    Timeout,
    /// The command is blocked reading the terminal (a question, a password prompt, a REPL, a
    /// pager) and printed nothing for a moment: `prompt` and `screen` show what it asks. It
    /// keeps waiting for an answer typed with `session.send`.
    WaitingForInput,
    /// `timeout_ms` passed while the shell was still starting (its startup files had not
    /// finished): the command was not typed and will not run. `output` is what the shell
    /// printed so far.
    Starting,
}

impl ExecStatus {
    /// The wire name (`exited`, `running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exited => "exited",
            Self::Running => "running",
            Self::Timeout => "timeout",
            Self::WaitingForInput => "waiting_for_input",
            Self::Starting => "starting",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExecResult {
    pub status: ExecStatus,
    pub exit_code: Option<i32>,
    /// The command's own output as plain text: no echoed command line, no prompt, no escapes.
    pub output: String,
    /// Absolute log offsets of the output (`read --since output_start` replays it raw).
    pub output_start: u64,
    pub output_end: u64,
    pub truncated: bool,
    pub duration_ms: f64,
    pub completion: Integration,
    /// What to do next when the command did not finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// `hint` before it was phrased, for front ends that phrase it in their own syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<crate::hint::Advice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreground: Option<Foreground>,
    /// The output recognised and parsed (build, tests, git, ...), for finished commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parsed: Option<serde_json::Value>,
    /// A token-lean view of the output within `view_budget` tokens: `{text, status, encoding,
    /// raw_tokens, raw_tokens_estimated, compact_tokens, budget, whole, raw_lines, shown_lines,
    /// omitted_lines}`. Its text says how to read what it left out; `whole` means the output was
    /// short enough to be the view itself (no footer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact: Option<serde_json::Value>,
    /// The shell's working directory when the command finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// With status `waiting_for_input`: the text before the cursor on its line (`Name? `,
    /// `Password: `, `>>> `).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// With status `waiting_for_input` or `starting`: the screen's last non-empty lines, as
    /// plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<Vec<String>>,
    /// Part of the output could not be written to the session's log (a full or failing disk)
    /// and is lost: how much, and why. `output` marks each lost range with its offsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SendParams {
    pub target: String,
    /// tmux key names (`Enter`, `C-c`, `Up`, `F5`, `M-x`); anything else is typed as text.
    pub keys: Vec<String>,
    /// Type every key argument as literal text.
    #[serde(default)]
    pub literal: bool,
    /// Wrap the text in bracketed-paste marks when the program asked for them.
    #[serde(default)]
    pub paste: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SendResult {
    pub bytes: usize,
    /// Log offset at the moment the input was written: output after it is the reply.
    pub offset: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WriteParams {
    pub target: String,
    /// Raw bytes, base64 encoded.
    pub data_b64: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReadParams {
    pub target: String,
    /// First offset wanted; the oldest available when absent.
    #[serde(default)]
    pub since: Option<u64>,
    #[serde(default)]
    pub max_bytes: Option<usize>,
    /// Return the bytes as written (escapes kept) instead of plain text.
    #[serde(default)]
    pub raw: bool,
    /// `base64`: the bytes exactly as written (escapes kept, invalid UTF-8 and all) in
    /// `data_b64`, `data` empty; `text` (the default): `data` as a string.
    #[serde(default)]
    pub encoding: ReadEncoding,
}

/// How `session.read` returns the bytes it read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReadEncoding {
    /// `data`: plain text, or with `raw` the bytes as written; a UTF-8 sequence cut by
    /// `max_bytes` waits for the next read, invalid UTF-8 becomes U+FFFD.
    #[default]
    Text,
    /// `data_b64`: the log's bytes unchanged.
    Base64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReadResult {
    pub data: String,
    /// The bytes, base64 encoded, when read with `encoding: base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_b64: Option<String>,
    /// Offsets of the returned bytes; pass `end` as the next `since`.
    pub start: u64,
    pub end: u64,
    /// Bytes between `since` and `start` that were dropped from the bounded log, or lost
    /// because the log could not be written (a full disk; see `SessionInfo::degraded`).
    pub dropped: u64,
    /// More output is available after `end`.
    pub more: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CaptureParams {
    pub target: String,
    /// Lines of scrollback to include above the screen.
    #[serde(default)]
    pub scrollback: usize,
    /// Keep colours and attributes as SGR escapes.
    #[serde(default)]
    pub ansi: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CaptureResult {
    pub lines: Vec<String>,
    pub size: Size,
    /// Cursor position on the screen, zero-based.
    pub cursor_row: usize,
    pub cursor_col: usize,
    pub alternate_screen: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Scrollback lines included at the top of `lines`.
    pub scrollback_lines: usize,
}

/// What a wait waits for. Written `{"kind": "regex", "pattern": ".."}`, `{"kind": "idle",
/// "ms": N}` or `{"kind": "prompt"}`; also read in the short shape MCP's `session_wait` takes,
/// `{"regex": ".."}`, `{"idle_ms": N}` or `{"prompt": true}` (exactly one of them).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum WaitFor {
    /// A regular expression matched against the plain text output since `since`.
    Regex { pattern: String },
    /// No output for this many milliseconds.
    Idle { ms: u64 },
    /// The shell is back at its prompt after the last input.
    Prompt,
}

/// The tagged shape of [`WaitFor`].
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
enum WaitForTagged {
    Regex { pattern: String },
    Idle { ms: u64 },
    Prompt,
}

/// The short shape of [`WaitFor`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitForShort {
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    idle_ms: Option<u64>,
    #[serde(default)]
    prompt: Option<bool>,
}

impl<'de> Deserialize<'de> for WaitFor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(d)?;
        if value.get("kind").is_some() {
            return Ok(
                match WaitForTagged::deserialize(value).map_err(D::Error::custom)? {
                    WaitForTagged::Regex { pattern } => WaitFor::Regex { pattern },
                    WaitForTagged::Idle { ms } => WaitFor::Idle { ms },
                    WaitForTagged::Prompt => WaitFor::Prompt,
                },
            );
        }
        let short = WaitForShort::deserialize(value).map_err(D::Error::custom)?;
        match (short.regex, short.idle_ms, short.prompt) {
            (Some(pattern), None, None | Some(false)) => Ok(WaitFor::Regex { pattern }),
            (None, Some(ms), None | Some(false)) => Ok(WaitFor::Idle { ms }),
            (None, None, Some(true)) => Ok(WaitFor::Prompt),
            _ => Err(D::Error::custom(
                "give exactly one of {\"prompt\": true}, {\"regex\": \"...\"}, {\"idle_ms\": N} \
                 (or {\"kind\": \"prompt\"|\"regex\"|\"idle\", ...})",
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WaitParams {
    pub target: String,
    pub condition: WaitFor,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Where to start looking for a regex; the offset of the last input when absent.
    #[serde(default)]
    pub since: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WaitResult {
    /// The text that matched (regex waits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<String>,
    /// Log offset one past the match, or the log end for idle and prompt waits.
    pub offset: u64,
    /// Exit code of the last command, for prompt waits on integrated shells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub waited_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ResizeParams {
    pub target: String,
    pub size: Size,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SubscribeResult {
    /// The screen as escapes that redraw it, for a client attaching now.
    pub screen_ansi: String,
    pub size: Size,
    /// Output notifications start at this offset.
    pub offset: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct OutputEvent {
    pub target: String,
    pub offset: u64,
    pub data_b64: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClosedEvent {
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StatusResult {
    pub pid: u32,
    pub socket: String,
    pub state_dir: String,
    pub uptime_ms: u64,
    pub sessions: usize,
    pub version: String,
    pub protocol: u32,
    /// The session store (persistence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persist: Option<crate::persist::PersistStatus>,
    /// The audit log: whether the daemon can write it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditStatus>,
    /// Sessions whose output log cannot be written right now, with why (see
    /// `SessionInfo::degraded`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<DegradedSession>,
    /// The hooks (`[[hooks]]` in config.toml) and other integrations: events delivered,
    /// failed, dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<crate::integration::HookStatus>,
    /// The configuration file the daemon looked for at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigStatus>,
}

/// The configuration file, in `daemon.status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConfigStatus {
    /// Where the daemon looked (`$AI_SESSION_CONFIG`, else `config.toml` in the state directory).
    pub path: String,
    /// Whether a file was there and read; false means the built-in defaults.
    pub loaded: bool,
}

/// A session whose output log is missing output, in `daemon.status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DegradedSession {
    pub session: String,
    pub reason: String,
}

/// The audit log's health, in `daemon.status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditStatus {
    /// The log file.
    pub log: String,
    /// True while every action is being recorded.
    pub ok: bool,
    /// What is wrong, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// True when writes are refused until the audit log is repaired (`audit.repair`; the
    /// default when the log cannot be written); false when the daemon was started with
    /// `AI_SESSION_AUDIT=best-effort`.
    pub writes_refused: bool,
    /// The last entry's sequence number.
    pub last_seq: u64,
}

/// The result of `audit.repair`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AuditRepairResult {
    /// False when the log was intact and nothing was done.
    pub repaired: bool,
    /// What was wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Where the damaged file was moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// The sequence number of the new segment's first entry, which records the break.
    pub seq: u64,
}

/// Whether a `session.command` notification marks the start or the end of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CommandPhase {
    /// The shell started running a command (OSC 133 C mark); its output starts at `offset`.
    Started,
    /// The command finished (OSC 133 D mark); its output ended at `offset`.
    Finished,
}

/// Params of the `session.command` notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CommandEvent {
    pub target: String,
    pub phase: CommandPhase,
    /// Log offset where the command's output starts (`started`) or ended (`finished`).
    pub offset: u64,
    /// The command's exit code (`finished`, when the shell reported one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// Params of the `session.state` notification.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StateEvent {
    pub target: String,
    pub state: SessionState,
    /// The program's exit status, once it has exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// `daemon.serve`: start the HTTP and WebSocket server, or report the running one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ServeParams {
    /// `IP:PORT` to listen on (port 0 picks a free port). Default: the running server's address,
    /// else `127.0.0.1:7717`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Allow an address other than loopback. Anyone who can reach it and holds the token
    /// controls every session: only with a reason (and TLS in front).
    #[serde(default)]
    pub allow_remote: bool,
    /// Also serve `GET /metrics` alone, without a token, on this `IP:PORT` (for a Prometheus
    /// scraper on loopback; a non-loopback address needs `allow_remote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ServeResult {
    /// The base URL, e.g. `http://127.0.0.1:7717`.
    pub url: String,
    /// The address actually bound.
    pub listen: String,
    /// The file holding the bearer token (0600); every request needs
    /// `Authorization: Bearer <its content>`.
    pub token_file: String,
    /// False when the server was already running (this call changed nothing).
    pub started: bool,
    /// The address `/metrics` is served on without a token, when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
}

/// `daemon.upgrade`: hand every session to a newly started daemon binary.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UpgradeParams {
    /// The new binary (an absolute path). Default: the binary the daemon runs now, as it is
    /// on disk now (a newer file installed at the same path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binary: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UpgradeResult {
    /// The daemon that handed over (it stays as a reaper while programs it started run).
    pub old_pid: u32,
    /// The daemon serving from now on.
    pub new_pid: u32,
    /// The binary the new daemon runs.
    pub binary: String,
    /// The sessions handed over, in name order.
    pub sessions: Vec<String>,
    /// How long new requests waited: from the moment the old daemon stopped taking them to
    /// the moment the new one had adopted every session.
    pub pause_ms: u64,
}
