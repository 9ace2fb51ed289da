//! Persistence for ai-session: the state directory that lets sessions outlive the daemon.
//!
//! ```text
//! <root>/
//! ├── sessions/{id}/state.json      config and status (JSON; a sealed blob when encrypted)
//! │                 history.log     one framed, zstd-compressed record per exec, append-only
//! │                 scrollback      screen + scrollback lines (blob)
//! │                 context.bin     the context layer's bytes (blob)
//! │                 environment     what the shell exported at its last prompt (blob)
//! ├── snapshots/{session}/{id}.json snapshot metadata + state (the commit point)
//! │                       {id}.blob manifest: the chunks of its history, scrollback, context
//! ├── chunks/{id}                   content-addressed chunks shared by snapshots
//! ├── exports/{session}.{handle}.aisx an export being read in pieces (removed when read)
//! └── metadata/index.db             SQLite (WAL): sessions, snapshots, exec analytics
//!              decisions.db         SQLite (WAL): agents' decisions and outcomes (text sealed)
//!              layout.json          layout version of the directory
//!              sessions.journal     new records, fdatasynced until their state.json is (journal.rs)
//!              keycheck.json        salt, KDF costs and key verifier (encrypted stores only)
//! ```
//!
//! Every whole file is replaced by temp + fsync + rename + directory fsync; appends are
//! framed with a length and a CRC, so a killed writer leaves the previous good state readable.
//! See `README.md` for formats, figures and how the daemon calls this.

#![forbid(unsafe_code)]

mod archive;
mod chunk;
mod crypt;
mod decision;
mod error;
mod file;
mod frame;
mod history;
mod index;
mod index_queue;
mod journal;
mod migrate;
mod record;
mod recover;
mod retention;
mod seal;
mod snapshot;
mod spool;
mod store;

pub use archive::{Imported, PendingImport};
pub use chunk::Collected;
pub use crypt::KdfParams;
pub use decision::{
    Decision, DecisionFilter, DecisionOutcome, DecisionText, Decisions, LinkedExec, NewDecision,
    OpenTargets,
};
pub use error::{Error, Result};
pub use index::{ExecRow, ExecStats};
pub use record::{
    ExecRecord, Scrollback, SessionConfig, SessionId, SessionState, SessionStatus, Size,
};
pub use recover::Recovered;
pub use retention::{Pruned, Retention};
pub use seal::{DEFAULT_MAX_UNPACKED, RECORD_DICT, SCHEMA_VERSION};
pub use snapshot::{Restored, Snapshot, SnapshotMeta};
pub use spool::Spooled;
pub use store::{BegunSession, Options, PASSPHRASE_ENV, SessionRecord, Store, WriteFailures};
