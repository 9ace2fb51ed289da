//! Layout versions and the migrations between them. `metadata/layout.json` records the
//! directory's version; `Store::open` runs every step from it up to `SCHEMA_VERSION`, writing
//! the new version after each step. Steps are idempotent (a session already in the new
//! format is skipped), so a migration killed half-way simply runs again.
//!
//! Version 0 is the layout before this crate: no `metadata/layout.json`; per session
//! directory (named after the session) a `state.json` without a schema field
//! (`name`, `command` as one string, `cwd`, `env`, `cols`, `rows`, `created` in seconds,
//! `alive`), a `history.log` of JSON lines (`cmd`, `code`, `cwd`, `start`, `end` in
//! seconds), and a raw `context.bin`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::crypt::Cipher;
use crate::error::{Error, Result};
use crate::file;
use crate::record::{
    ExecRecord, SessionConfig, SessionId, SessionState, SessionStatus, Size, valid_id,
};
use crate::seal::{self, Kind, Packer, SCHEMA_VERSION};
use crate::store::{encode_json, read_layout, write_layout};

type Step = fn(&Path, Option<&Cipher>, i32) -> Result<()>;

/// `STEPS[n]` migrates layout version `n` to `n + 1`.
const STEPS: &[Step] = &[v0_to_v1];

/// Brings the directory to `SCHEMA_VERSION`. Returns whether anything was migrated (the index
/// is then rebuilt).
pub(crate) fn run(root: &Path, cipher: Option<&Cipher>, level: i32) -> Result<bool> {
    let mut version = match read_layout(root)? {
        Some(v) => v,
        None if file::list_names(&root.join("sessions"))?.is_empty() => {
            write_layout(root, SCHEMA_VERSION)?;
            return Ok(false);
        }
        None => 0,
    };
    let start = version;
    while version < SCHEMA_VERSION {
        let step = STEPS.get(version as usize).ok_or_else(|| {
            Error::corrupt(root.join("metadata/layout.json"), "no migration path")
        })?;
        step(root, cipher, level)?;
        version += 1;
        write_layout(root, version)?;
    }
    Ok(version != start)
}

#[derive(Deserialize)]
struct V0State {
    name: String,
    command: String,
    cwd: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    cols: Option<u16>,
    #[serde(default)]
    rows: Option<u16>,
    /// Seconds since the epoch.
    created: f64,
    #[serde(default)]
    alive: bool,
}

#[derive(Deserialize)]
struct V0Exec {
    cmd: String,
    code: Option<i32>,
    #[serde(default)]
    cwd: String,
    start: f64,
    end: f64,
}

fn v0_to_v1(root: &Path, cipher: Option<&Cipher>, level: i32) -> Result<()> {
    let sessions = root.join("sessions");
    for name in file::list_names(&sessions)? {
        let mut dir = sessions.join(&name);
        // A link is not a session directory the old layout made: never migrate through one.
        if !file::is_real_dir(&dir) {
            continue;
        }
        let id = if valid_id(&name) {
            SessionId::new(name)?
        } else {
            // v0 named directories after sessions; ids are narrower. Rename first: a crash
            // after the rename leaves a v0 session under a valid id, migrated on the next run.
            let id = crate::store::new_id(root)?;
            let to = sessions.join(id.as_str());
            std::fs::rename(&dir, &to).map_err(|e| Error::io("rename", &dir, e))?;
            dir = to;
            id
        };
        migrate_session(&dir, id, cipher, level)?;
    }
    file::sync_dir(&sessions)
}

fn migrate_session(dir: &Path, id: SessionId, cipher: Option<&Cipher>, level: i32) -> Result<()> {
    let state_path = dir.join("state.json");
    let Some(bytes) = file::read_optional(&state_path)? else {
        return Ok(());
    };
    if seal::is_blob(&bytes) || has_schema(&bytes) {
        return Ok(()); // already v1
    }
    let old: V0State = serde_json::from_slice(&bytes)
        .map_err(|e| Error::corrupt(&state_path, format!("bad v0 state: {e}")))?;
    // History and context first, the state last: the new state is what marks the session
    // as migrated.
    let hist_path = dir.join("history.log");
    if let Some(raw) = file::read_optional(&hist_path)? {
        if !raw.starts_with(b"AISH") {
            let records = v0_history(&raw, &hist_path, &old.cwd)?;
            crate::history::rewrite(&hist_path, &records, cipher, level)?;
        }
    }
    let ctx_path = dir.join("context.bin");
    if let Some(raw) = file::read_optional(&ctx_path)? {
        if !seal::is_blob(&raw) {
            let bytes = seal::encode_blob(
                &mut Packer::new(level),
                Kind::Context,
                &raw,
                cipher,
                &ctx_path,
            )?;
            file::write_atomic(&ctx_path, &bytes, true)?;
        }
    }
    let created_ms = (old.created * 1000.0) as u64;
    let state = SessionState {
        schema: SCHEMA_VERSION,
        id,
        config: SessionConfig {
            name: old.name,
            shell: None,
            argv: old.command.split_whitespace().map(str::to_owned).collect(),
            size: Size {
                cols: old.cols.unwrap_or(80),
                rows: old.rows.unwrap_or(24),
            },
            env: old.env,
            cwd: old.cwd.clone(),
            created_ms,
            policy: None,
        },
        status: if old.alive {
            SessionStatus::Live
        } else {
            SessionStatus::Exited
        },
        exit_code: None,
        cwd: old.cwd,
        updated_ms: crate::record::now_ms(),
        restored_from: None,
    };
    let bytes = encode_json(&state, Kind::State, cipher, level, &state_path)?;
    file::write_atomic(&state_path, &bytes, true)
}

fn has_schema(json: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        schema: Option<u32>,
    }
    serde_json::from_slice::<Probe>(json).is_ok_and(|p| p.schema.is_some())
}

fn v0_history(raw: &[u8], path: &Path, default_cwd: &str) -> Result<Vec<ExecRecord>> {
    let mut out = Vec::new();
    let lines: Vec<&[u8]> = raw.split(|b| *b == b'\n').collect();
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<V0Exec>(line) {
            Ok(e) => out.push(ExecRecord {
                command: e.cmd,
                exit_code: e.code,
                cwd: if e.cwd.is_empty() {
                    default_cwd.to_owned()
                } else {
                    e.cwd
                },
                started_ms: (e.start * 1000.0) as u64,
                ended_ms: (e.end * 1000.0) as u64,
                output_start: 0,
                output_end: 0,
            }),
            // v0 appended lines without framing: a partial last line is a torn write.
            Err(_) if i == last => break,
            Err(e) => {
                return Err(Error::corrupt(
                    path,
                    format!("bad v0 history line {}: {e}", i + 1),
                ));
            }
        }
    }
    Ok(out)
}
