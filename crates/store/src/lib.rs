//! Persistence for ai-session: the state directory that lets sessions outlive the daemon.
//!
//! ```text
//! <root>/
//! ├── sessions/{id}/state.json      config and status (JSON; a sealed blob when encrypted)
//! │                 history.log     one framed, zstd-compressed record per exec, append-only
//! │                 scrollback      screen + scrollback lines (blob)
//! │                 context.bin     the context layer's bytes (blob)
//! ├── snapshots/{session}/{id}.json snapshot metadata + state (the commit point)
//! │                       {id}.blob bundle of the session's file images
//! └── metadata/index.db             SQLite (WAL): sessions, snapshots, exec analytics
//!              layout.json          layout version of the directory
//!              keycheck.json        salt, KDF costs and key verifier (encrypted stores only)
//! ```
//!
//! Every whole file is replaced by temp + fsync + rename + directory fsync; appends are
//! framed with a length and a CRC, so a killed writer leaves the previous good state readable.
//! See `README.md` for formats, figures and how the daemon calls this.

#![forbid(unsafe_code)]

mod archive;
mod crypt;
mod error;
mod file;
mod frame;
mod history;
mod index;
mod migrate;
mod record;
mod seal;
mod snapshot;
mod store;

pub use archive::Imported;
pub use crypt::KdfParams;
pub use error::{Error, Result};
pub use index::{ExecRow, ExecStats};
pub use record::{
    ExecRecord, Scrollback, SessionConfig, SessionId, SessionState, SessionStatus, Size,
};
pub use seal::{DEFAULT_MAX_UNPACKED, RECORD_DICT, SCHEMA_VERSION};
pub use snapshot::{Restored, Snapshot, SnapshotMeta};
pub use store::{Options, PASSPHRASE_ENV, SessionRecord, Store};
