//! Persistence methods: snapshots, restore, export and import, and the daemon's store status.

use serde::{Deserialize, Serialize};

use crate::methods::{ExecResult, SessionInfo};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SnapshotParams {
    pub target: String,
    /// A note to find the snapshot by later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// One snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SnapshotInfo {
    /// The snapshot's id; any unique prefix of it works in `snapshot.restore`.
    pub id: String,
    /// The session's record id in the store.
    pub session: String,
    /// The session's name when the snapshot was taken.
    pub session_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Unix time in milliseconds.
    pub created_ms: u64,
    /// Execs in its history.
    pub execs: u64,
    pub scrollback_lines: u64,
    /// Size on disk.
    pub bytes: u64,
    /// In a cluster: the node whose store holds it (every node can restore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SnapshotListParams {
    /// Only this session's snapshots (every session's when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SnapshotListResult {
    /// Oldest first.
    pub snapshots: Vec<SnapshotInfo>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PruneParams {
    /// Only the snapshots of sessions of this name (`keep` counts per session); every
    /// session's when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Keep the newest this many snapshots of each session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<usize>,
    /// Remove the oldest snapshots (of `target`'s sessions, or of all) until all snapshots
    /// together take at most this many bytes on disk. The newest snapshot is never removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PruneResult {
    /// The snapshots removed, oldest first.
    pub removed: Vec<SnapshotInfo>,
    /// Chunks no remaining snapshot used, removed with them.
    pub chunks_removed: u64,
    /// Bytes freed on disk.
    pub bytes_freed: u64,
    /// Bytes all snapshots take on disk now.
    pub bytes_total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RestoreParams {
    /// A snapshot id or a unique prefix of one.
    pub snapshot: String,
    /// The new session's name (default: the snapshot's session name, which must be free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Run the snapshot's last command again once the shell is up.
    #[serde(default)]
    pub rerun_last: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RestoreResult {
    pub session: SessionInfo,
    /// The snapshot it came from.
    pub snapshot: String,
    /// The re-run of the last command (`rerun_last`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun: Option<ExecResult>,
}

/// The most bytes of an export one `session.export` answer carries (base64 makes it a third
/// more on the wire).
pub const EXPORT_PIECE_BYTES: usize = 4 * 1024 * 1024;

/// `session.export`: the first call (no `export`) writes the session's export to a spool file
/// in the daemon's store and answers its first piece; each later call passes the `export`
/// handle and the `next_offset` it was given, until an answer has no `export` (the last
/// piece; the spool is then removed).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExportParams {
    pub target: String,
    /// The handle of an export being read, from a previous answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
    /// Where the piece wanted starts (with `export`).
    #[serde(default)]
    pub offset: u64,
    /// The most bytes this piece may hold (at most, and by default, 4 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExportResult {
    /// This piece of the export file, base64 encoded (at most `max_bytes`, 4 MiB, decoded).
    pub data_b64: String,
    /// The whole export's size.
    pub bytes: u64,
    /// Where this piece starts in the export.
    #[serde(default)]
    pub offset: u64,
    /// Where the next piece starts (`bytes` after the last one).
    #[serde(default)]
    pub next_offset: u64,
    /// The handle to ask for the next piece with; absent on the last piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ImportParams {
    /// An export file, base64 encoded.
    pub data_b64: String,
    /// The session's name here (default: its exported name, which must be free).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Names the source in errors (default `<import>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ImportResult {
    pub session: SessionInfo,
    /// Snapshots that came with it.
    pub snapshots: Vec<SnapshotInfo>,
}

/// The daemon's store, in `daemon.status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PersistStatus {
    /// The store's directory; absent when persistence is off (the store could not be opened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    pub encrypted: bool,
    /// Sessions brought back at start.
    pub restored: usize,
    /// Milliseconds from the start of resurrection until every session was spawned.
    pub restore_ms: u64,
    /// Problems met while loading: each names its file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// What writers killed half-way had left in the store (temporary files, imports cut
    /// short, uncommitted sessions or snapshots, unreferenced chunks), removed at start; each
    /// names its file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovered: Vec<String>,
    /// Writes that failed since start (a full disk, an I/O error): records, execs, states,
    /// scrollbacks, snapshots not saved. An exec whose record failed says so in its answer
    /// (`persisted: false`, `persist_error`).
    #[serde(default)]
    pub write_failures: u64,
    /// Of which the file system was full.
    #[serde(default)]
    pub disk_full: u64,
    /// When the last one failed (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_ms: Option<u64>,
    /// The latest failures (at most 16), oldest first: what, for which session, naming the file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<String>,
}
