//! Serialization of a whole context for persistence.
//!
//! ```text
//! magic "AICX" | version u8 | flags u8 | state_len u64 | state (zstd of JSON) | archive frames
//! ```
//!
//! `flags` bit 0 says the archive frames follow (`to_bytes`); without it (`state_bytes`) the
//! frames live elsewhere, appended as [`SessionContext::take_archive_frames`] hands them out,
//! and come back through [`SessionContext::from_parts`]. The state holds the archive's open
//! tail (entries not sealed into a frame yet), so the state and the frames together always hold
//! every entry. The version byte is bumped on any
//! incompatible change; a reader refuses a newer one with `UnsupportedVersion`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::ContextError;
use crate::agent::AgentState;
use crate::archive::Archive;
use crate::config::ContextConfig;
use crate::context::{ContextStats, Failure, SessionContext};
use crate::entry::Entry;
use crate::summary::Summary;
use crate::task::Tasks;
use crate::workspace::WorkspaceState;

/// Magic at the start of a serialized context.
pub const MAGIC: [u8; 4] = *b"AICX";
/// Format version written by this build.
pub const VERSION: u8 = 1;
const HEADER: usize = 14;
const WITH_ARCHIVE: u8 = 1;

#[derive(Serialize, Deserialize)]
struct State {
    owner: String,
    config: ContextConfig,
    next_seq: u64,
    live: Vec<Entry>,
    summary: Summary,
    tasks: Tasks,
    active_task: Option<String>,
    agent: AgentState,
    workspace: WorkspaceState,
    last_failure: Option<Failure>,
    open_errors: Vec<Failure>,
    stats: ContextStats,
    /// Entries sealed in frames, and the last one's seq.
    sealed_entries: u64,
    sealed_last_seq: Option<u64>,
    /// Archived entries not sealed into a frame yet.
    archive_tail: Vec<Entry>,
    /// The latest `at_ms` of an exec recorded (absent in contexts saved before it was kept).
    #[serde(default)]
    last_exec_ms: u64,
}

impl SessionContext {
    /// The whole context, archive included: one self-contained blob.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ContextError> {
        let mut out = self.encode(WITH_ARCHIVE)?;
        out.extend_from_slice(self.archive.bytes());
        Ok(out)
    }

    /// The context without its archive frames (persist those incrementally with
    /// `take_archive_frames`); small, rewritten whole on each save.
    pub fn state_bytes(&self) -> Result<Vec<u8>, ContextError> {
        self.encode(0)
    }

    fn encode(&self, flags: u8) -> Result<Vec<u8>, ContextError> {
        let state = State {
            owner: self.owner.clone(),
            config: self.config.clone(),
            next_seq: self.next_seq,
            live: self.live.iter().cloned().collect(),
            summary: self.summary.clone(),
            tasks: self.tasks.clone(),
            active_task: self.active_task.clone(),
            agent: self.agent.clone(),
            workspace: self.workspace.clone(),
            last_failure: self.last_failure.clone(),
            open_errors: self.open_errors.clone(),
            stats: self.stats,
            sealed_entries: self
                .archive
                .frames()
                .iter()
                .map(|f| u64::from(f.count))
                .sum(),
            sealed_last_seq: self.archive.sealed_last_seq(),
            archive_tail: self.archive.tail_entries()?,
            last_exec_ms: self.last_exec_ms,
        };
        let json = serde_json::to_vec(&state)?;
        let packed = zstd::bulk::compress(&json, self.config.zstd_level)?;
        let mut out = Vec::with_capacity(HEADER + packed.len() + self.archive.bytes().len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(flags);
        out.extend_from_slice(&(packed.len() as u64).to_le_bytes());
        out.extend_from_slice(&packed);
        Ok(out)
    }

    /// Reads what `to_bytes` wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ContextError> {
        let (state, flags, rest) = decode(bytes)?;
        if flags & WITH_ARCHIVE == 0 {
            return Err(ContextError::Corrupt(
                "these bytes hold no archive (state_bytes): load them with from_parts".into(),
            ));
        }
        Self::restore(state, Archive::from_bytes(rest)?)
    }

    /// Reads what `state_bytes` wrote, with the archive frames appended so far. Frames past
    /// what the state knows (appended after the state was last saved) are left out: their
    /// entries are still in the state. The persistence layer may then cut its archive file
    /// to `archive().bytes().len()`.
    pub fn from_parts(state: &[u8], archive: &[u8]) -> Result<Self, ContextError> {
        let (state, _, _) = decode(state)?;
        let mut frames = Archive::from_bytes(archive)?;
        frames.truncate_after(state.sealed_last_seq);
        Self::restore(state, frames)
    }

    fn restore(s: State, mut archive: Archive) -> Result<Self, ContextError> {
        let sealed: u64 = archive.frames().iter().map(|f| u64::from(f.count)).sum();
        if sealed != s.sealed_entries || archive.sealed_last_seq() != s.sealed_last_seq {
            return Err(ContextError::Corrupt(format!(
                "the archive holds {sealed} entries up to {:?}, the state expects {} up to {:?}",
                archive.sealed_last_seq(),
                s.sealed_entries,
                s.sealed_last_seq
            )));
        }
        archive.restore_tail(&s.archive_tail)?;
        let mut ctx = SessionContext::new(s.owner, s.config)?;
        ctx.next_seq = s.next_seq;
        ctx.summary = s.summary;
        ctx.tasks = s.tasks;
        ctx.active_task = s.active_task;
        ctx.agent = s.agent;
        ctx.workspace = s.workspace;
        ctx.last_failure = s.last_failure;
        ctx.open_errors = s.open_errors;
        ctx.stats = s.stats;
        ctx.last_exec_ms = s.last_exec_ms;
        ctx.archive = archive;
        let live: VecDeque<Entry> = s.live.into();
        for e in &live {
            let m = ctx.meta_for(e);
            if let Some(prev) = ctx.last_by_cmd.insert(m.cmd_key, e.seq) {
                if let Some(pm) = live
                    .front()
                    .and_then(|f| ctx.meta.get_mut((prev - f.seq) as usize))
                {
                    pm.superseded = true;
                }
            }
            ctx.meta.push_back(m);
        }
        ctx.live_tokens = live.iter().map(|e| e.tokens as usize).sum();
        ctx.live = live;
        Ok(ctx)
    }
}

fn decode(bytes: &[u8]) -> Result<(State, u8, &[u8]), ContextError> {
    if bytes.len() < 5 || bytes[..4] != MAGIC {
        return Err(ContextError::BadMagic {
            found: bytes[..bytes.len().min(4)].to_vec(),
        });
    }
    if bytes[4] > VERSION {
        return Err(ContextError::UnsupportedVersion {
            found: bytes[4],
            supported: VERSION,
        });
    }
    if bytes.len() < HEADER {
        return Err(ContextError::Corrupt("context header truncated".into()));
    }
    let flags = bytes[5];
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[6..14]);
    let len = usize::try_from(u64::from_le_bytes(len))
        .map_err(|_| ContextError::Corrupt("state length overflows".into()))?;
    let end = HEADER
        .checked_add(len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| ContextError::Corrupt("context state truncated".into()))?;
    let json = zstd::stream::decode_all(&bytes[HEADER..end])?;
    let state: State = serde_json::from_slice(&json)?;
    Ok((state, flags, &bytes[end..]))
}
