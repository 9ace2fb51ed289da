//! What the store keeps about a session: its configuration and status (`state.json`), one
//! record per exec (`history.log`), its screen and scrollback, and the context layer's bytes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A session's id in the store: the name of its directory. `Store::create_session` makes
/// time-ordered ones (`018f2c3a4b5c-1a2b`); any `[0-9a-z._-]{1,64}` not starting with a dot is
/// accepted, so imports and migrated stores keep theirs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SessionId(String);

impl SessionId {
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        check_id("session id", &id)?;
        Ok(Self(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What `valid_id` accepts, for error messages.
pub(crate) const ID_RULE: &str = "ids are 1-64 characters of 0-9 a-z . _ -, not starting with '.'";
/// What `valid_name` accepts (the daemon's session-name rule), for error messages.
pub(crate) const NAME_RULE: &str =
    "names are 1-64 letters, digits, '_', '-' or '.', not starting with '.' or '-'";
/// Longest snapshot label kept.
pub(crate) const MAX_LABEL: usize = 256;

/// Ids become file and directory names: this pattern has no '/', no NUL, cannot be `.` or
/// `..`, and fits any file system's name limit.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id.bytes().all(|b| {
            b.is_ascii_digit() || b.is_ascii_lowercase() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// `InvalidId` unless `id` matches `valid_id`; `what` names it in the message.
pub(crate) fn check_id(what: &'static str, id: &str) -> Result<()> {
    if valid_id(id) {
        Ok(())
    } else {
        Err(Error::InvalidId {
            what,
            id: id.to_owned(),
            rule: ID_RULE,
        })
    }
}

/// Session names, as the daemon accepts them (they name its per-session directories).
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId {
            what: "session name",
            id: name.to_owned(),
            rule: NAME_RULE,
        })
    }
}

/// Snapshot labels are free text shown in listings: bounded, and without control characters
/// (an imported label must not be able to drive the terminal that lists it).
pub(crate) fn check_label(label: &str) -> Result<()> {
    if label.len() <= MAX_LABEL && !label.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(Error::InvalidId {
            what: "snapshot label",
            id: label.to_owned(),
            rule: "labels are at most 256 bytes, without control characters",
        })
    }
}

impl TryFrom<String> for SessionId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<SessionId> for String {
    fn from(id: SessionId) -> String {
        id.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Terminal size in cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    pub cols: u16,
    pub rows: u16,
}

impl Default for Size {
    fn default() -> Self {
        Self { cols: 80, rows: 24 }
    }
}

/// How a session was started: enough to start it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionConfig {
    pub name: String,
    /// The shell asked for (`None`: a program was given, or the default shell).
    #[serde(default)]
    pub shell: Option<String>,
    /// The program and its arguments as started (the shell itself for shell sessions).
    pub argv: Vec<String>,
    pub size: Size,
    pub env: BTreeMap<String, String>,
    /// The working directory at start.
    pub cwd: String,
    /// Unix time in milliseconds.
    pub created_ms: u64,
    /// The sandbox the session runs in: a built-in profile name or a whole policy in TOML,
    /// planned against `cwd` (the workspace). `None`: unconfined. A session brought back from
    /// this record runs in the same sandbox, planned against the same workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// Where a session stands, as far as the store knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Running in a daemon (or it was when the daemon stopped: resurrect it).
    Live,
    /// The program exited; the record stays until the session is deleted.
    Exited,
    /// Started again from a snapshot or an export, or resurrected after a daemon restart.
    Restored,
}

/// `sessions/{id}/state.json`: configuration and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// Layout version of this record (`SCHEMA_VERSION` when written by this build).
    pub schema: u32,
    pub id: SessionId,
    pub config: SessionConfig,
    pub status: SessionStatus,
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The last known working directory (the last exec's).
    pub cwd: String,
    /// Unix time in milliseconds of the last update.
    pub updated_ms: u64,
    /// The snapshot this session was restored from, if any.
    #[serde(default)]
    pub restored_from: Option<String>,
}

/// One line of `history.log`: one exec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRecord {
    pub command: String,
    /// `None` while it was still running (idle or hard timeout).
    pub exit_code: Option<i32>,
    pub cwd: String,
    pub started_ms: u64,
    pub ended_ms: u64,
    /// Absolute offsets of the command's output in the session's output log.
    pub output_start: u64,
    pub output_end: u64,
}

impl ExecRecord {
    pub fn duration_ms(&self) -> u64 {
        self.ended_ms.saturating_sub(self.started_ms)
    }
}

/// The screen and scrollback as the emulator renders them, plus optionally the bytes that
/// redraw them with attributes (the core's sleeping-screen replay).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scrollback {
    /// Scrollback lines, oldest first, without the visible screen.
    pub lines: Vec<String>,
    /// The visible screen as text, rows joined by '\n'.
    pub screen: String,
    /// Bytes that redraw scrollback and screen in a fresh emulator; empty when not kept.
    pub replay: Vec<u8>,
}

impl Scrollback {
    /// `u32 line count, then per line u32 len + UTF-8; u32 len + screen; u32 len + replay`.
    /// A binary layout: 10,000 lines encode and decode in well under a millisecond.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let size = self.lines.iter().map(|l| l.len() + 4).sum::<usize>()
            + self.screen.len()
            + self.replay.len()
            + 12;
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&(self.lines.len() as u32).to_le_bytes());
        for line in &self.lines {
            put(&mut out, line.as_bytes());
        }
        put(&mut out, self.screen.as_bytes());
        put(&mut out, &self.replay);
        out
    }

    pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let mut r = Reader { bytes, path };
        let count = r.u32()? as usize;
        if count > bytes.len() / 4 {
            return Err(Error::corrupt(path, "scrollback line count out of range"));
        }
        let mut lines = Vec::with_capacity(count);
        for _ in 0..count {
            lines.push(r.string()?);
        }
        let screen = r.string()?;
        let replay = r.take()?.to_vec();
        Ok(Self {
            lines,
            screen,
            replay,
        })
    }
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u32).to_le_bytes());
    out.extend_from_slice(field);
}

/// Reads length-prefixed fields, failing with the file's name on short input.
pub(crate) struct Reader<'a> {
    pub bytes: &'a [u8],
    pub path: &'a Path,
}

impl<'a> Reader<'a> {
    pub fn u32(&mut self) -> Result<u32> {
        let (head, rest) = self
            .bytes
            .split_at_checked(4)
            .ok_or_else(|| Error::corrupt(self.path, "record ends early"))?;
        self.bytes = rest;
        Ok(u32::from_le_bytes([head[0], head[1], head[2], head[3]]))
    }

    pub fn take(&mut self) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        let (field, rest) = self
            .bytes
            .split_at_checked(len)
            .ok_or_else(|| Error::corrupt(self.path, "record ends early"))?;
        self.bytes = rest;
        Ok(field)
    }

    pub fn string(&mut self) -> Result<String> {
        let path = self.path;
        let field = self.take()?;
        String::from_utf8(field.to_vec()).map_err(|_| Error::corrupt(path, "text is not UTF-8"))
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
