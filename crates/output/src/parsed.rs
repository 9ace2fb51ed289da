//! The structures parsing produces: [`Parsed`] wraps one [`ParsedOutput`] variant per family of tools.
//!
//! Every type serializes to JSON; enums are tagged with `"type"` so the JSON reads without the Rust types.

use serde::{Deserialize, Serialize};

use crate::detect::Format;

/// The result of [`crate::parse`]: the detected format, input size, and the structure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parsed {
    /// Which tool's output this was recognised as.
    pub format: Format,
    /// Lines in the cleaned input (ANSI stripped, redraws resolved).
    pub lines: usize,
    /// Bytes of the raw input.
    pub bytes: usize,
    /// The structure.
    pub output: ParsedOutput,
}

/// One structure per family of tools, after the architecture's Output module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ParsedOutput {
    /// Compilers and bundlers: cargo, tsc, go build, gcc/make, webpack, vite.
    BuildOutput(BuildOutput),
    /// Test runners: cargo test, nextest, pytest, jest, vitest, go test, mocha.
    TestResults(TestResults),
    /// Lines with levels, plain or JSON.
    StructuredLog(StructuredLog),
    /// git and svn.
    GitOutput(GitOutput),
    /// ss, netstat.
    NetworkOutput(NetworkOutput),
    /// ps.
    ProcessList(ProcessList),
    /// df, du, ls -l.
    FileSystemOutput(FileSystemOutput),
    /// Package managers (`kind: "package"`), memory (`kind: "memory"`), and the generic text view
    /// (`kind: "text"`).
    Custom(Custom),
}

/// Whether the output shows success. `Unknown` when the output neither shows a failure nor a clear success
/// line; a view never turns `Unknown` into success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The tool said it succeeded and nothing shows a failure.
    Success,
    /// Something failed: an error, a failing test, a conflict.
    Failed,
    /// Neither is clear.
    Unknown,
}

/// A place in a source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    /// The path as the tool printed it.
    pub file: String,
    /// 1-based line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl Location {
    /// A location from a path and optional line and column.
    pub fn new(file: &str, line: Option<u32>, column: Option<u32>) -> Self {
        Self {
            file: file.to_string(),
            line,
            column,
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        Ok(())
    }
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A note or help attached to something else.
    Note,
    /// A warning: the build still succeeds.
    Warning,
    /// An error: the build fails.
    Error,
}

/// One compiler or bundler message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A code such as `E0308`, `TS2322`, `clippy::ptr_arg`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The message, one line.
    pub message: String,
    /// Where it points, if it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Labels and notes under the message (`expected i32, found &str`), without source snippets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Output of a compiler or bundler.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildOutput {
    /// The tool, e.g. `cargo`, `tsc`, `go`, `gcc`.
    pub tool: String,
    /// Success when the tool finished cleanly, Failed when any error shows.
    pub status: Status,
    /// Errors and warnings, in order.
    pub diagnostics: Vec<Diagnostic>,
    /// Things built (`Finished` lines, output files), when the tool names them.
    pub artifacts: Vec<String>,
    /// The tool's own summary lines, verbatim (`error: could not compile ...`, `Found 4 errors`).
    pub summary: Vec<String>,
}

/// One failing test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestFailure {
    /// The test's full name as the runner prints it.
    pub name: String,
    /// Where it failed (the assertion or panic), if the output says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The assertion message and expected/received lines, a few lines at most per failure.
    pub message: Vec<String>,
}

/// Output of a test runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestResults {
    /// The runner, e.g. `cargo-test`, `pytest`, `jest`.
    pub tool: String,
    /// Failed when any test failed or the run did not complete.
    pub status: Status,
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests that could not run (pytest's setup and collection errors), not counted in `failed`.
    #[serde(default)]
    pub errors: usize,
    /// Tests skipped or ignored.
    pub skipped: usize,
    /// Every failing test found in the output.
    pub failures: Vec<TestFailure>,
    /// Compile errors or collection errors that stopped tests from running.
    pub diagnostics: Vec<Diagnostic>,
    /// The runner's summary lines, verbatim.
    pub summary: Vec<String>,
}

/// Levels of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// TRACE.
    Trace,
    /// DEBUG.
    Debug,
    /// INFO.
    Info,
    /// WARN, WARNING.
    Warn,
    /// ERROR, SEVERE.
    Error,
    /// FATAL, CRITICAL, PANIC.
    Fatal,
}

/// One log line at warning level or above (lower levels are only counted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// 1-based line in the cleaned output.
    pub line: usize,
    /// The level.
    pub level: LogLevel,
    /// The line's text (a JSON line keeps its message and the fields that are not time or level).
    pub message: String,
    /// Lines following an error that belong to it (a traceback), verbatim.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub continuation: Vec<String>,
}

/// A log with levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StructuredLog {
    /// The highest level seen.
    pub level: LogLevel,
    /// `text` or `json`.
    pub encoding: String,
    /// Count of lines per level, highest first.
    pub counts: Vec<(LogLevel, usize)>,
    /// Lines at warning level or above, in order.
    pub entries: Vec<LogEntry>,
}

/// What git or svn command produced the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GitOperation {
    /// `git status`, `svn status`.
    Status,
    /// `git log`.
    Log,
    /// `git diff`.
    Diff,
    /// `git show`.
    Show,
    /// `git push`.
    Push,
    /// `git pull`.
    Pull,
    /// `git fetch`.
    Fetch,
    /// `git merge`.
    Merge,
    /// `git rebase`.
    Rebase,
    /// `git branch`.
    Branch,
    /// Anything else.
    Other,
}

/// A file in a status listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileChange {
    /// `staged`, `unstaged`, `untracked`, `conflicted`, or an svn status letter's meaning.
    pub state: String,
    /// `modified`, `new file`, `deleted`, `both modified`, ...
    pub change: String,
    /// The path.
    pub path: String,
}

/// One commit of a log or show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The hash as printed.
    pub hash: String,
    /// Author line.
    pub author: String,
    /// Date line.
    pub date: String,
    /// First line of the message.
    pub subject: String,
}

/// One file of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiff {
    /// The new path (or old path when deleted).
    pub path: String,
    /// Lines added.
    pub added: usize,
    /// Lines removed.
    pub removed: usize,
    /// Hunk headers, `@@ -a,b +c,d @@ context`.
    pub hunks: Vec<String>,
    /// Binary, mode change, rename lines.
    pub notes: Vec<String>,
}

/// A merge or rebase conflict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// `content`, `modify/delete`, ...
    pub kind: String,
    /// The path.
    pub path: String,
}

/// Output of git or svn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GitOutput {
    /// `git` or `svn`.
    pub vcs: String,
    /// The operation.
    pub operation: GitOperation,
    /// Failed on conflicts, rejections or `fatal:`/`error:` lines.
    pub status: Status,
    /// Branch and tracking lines (`On branch main`, `Your branch is ahead ...`), verbatim.
    pub branch: Vec<String>,
    /// Files of a status listing.
    pub files: Vec<FileChange>,
    /// Commits of a log or show.
    pub commits: Vec<Commit>,
    /// Files of a diff.
    pub diffs: Vec<FileDiff>,
    /// Conflicts.
    pub conflicts: Vec<Conflict>,
    /// Ref updates, errors, hints and other lines worth keeping, verbatim.
    pub messages: Vec<String>,
}

/// One socket of `ss` or `netstat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// tcp, udp, ...
    pub proto: String,
    /// LISTEN, ESTAB, ...
    pub state: String,
    /// Local address:port.
    pub local: String,
    /// Peer address:port.
    pub peer: String,
    /// Process column, when shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
}

/// Output of `ss` or `netstat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkOutput {
    /// `ss` or `netstat`.
    pub tool: String,
    /// The sockets.
    pub connections: Vec<Connection>,
}

/// One process of `ps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Owner, when shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// %CPU, when shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f32>,
    /// %MEM, when shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem: Option<f32>,
    /// Resident set size in KiB, when shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_kib: Option<u64>,
    /// Command line.
    pub command: String,
}

/// Output of `ps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessList {
    /// The processes, in output order.
    pub processes: Vec<ProcessInfo>,
}

/// One row of `df`, `du` or `ls -l`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path, file name, or (for df) the mount point.
    pub path: String,
    /// Size as printed (`4.0K`, `12345`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Size in bytes when it can be derived, for sorting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// `file`, `dir`, `link`, ... for ls; the filesystem for df.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// df's Use%, ls's link target, or other column worth keeping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Output of `df`, `du` or `ls -l`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSystemOutput {
    /// `df`, `du` or `ls`.
    pub tool: String,
    /// The rows.
    pub entries: Vec<FileEntry>,
    /// Lines that are not rows (`total 123`, errors such as `Permission denied`), verbatim.
    pub messages: Vec<String>,
}

/// Everything else: package managers, `free`, and the generic view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Custom {
    /// `package`, `memory` or `text`.
    pub kind: String,
    /// The fields of that kind.
    pub data: serde_json::Value,
}
