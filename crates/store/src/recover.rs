//! What a killed writer leaves, found and finished or removed at `Store::open`. Every
//! artefact the store writes on the way to a commit is listed here, with what open does:
//!
//! | left behind | by a kill during | open |
//! |---|---|---|
//! | `.{name}.{pid}.{n}.tmp` in `metadata/`, a session's, a snapshot's or the chunk directory | any whole-file write, before its rename | removed |
//! | a session directory with an `.import` marker | an import, before its last snapshot | the session and the snapshots the marker lists are removed (the import never answered) |
//! | a session directory without `state.json` | a restore or import, before the state (its commit) | removed |
//! | `{snap}.blob` without its `.json`, or the reverse | a snapshot before its commit, or a delete | removed |
//! | chunks no manifest references | a snapshot before its manifest, a delete before the collection | removed |
//!
//! A torn last history frame is cut before the next append (`history`), and an index out of
//! step with the files is reconciled (`Store::reconcile`). Each thing done is returned as a
//! [`Recovered`] (`Store::recovered`), for the daemon to log.

use std::path::{Path, PathBuf};

use crate::archive::{IMPORT_MARKER, ImportMarker};
use crate::error::{Error, Result};
use crate::file;
use crate::record::valid_id;
use crate::store::Store;

/// One leftover of a killed writer that `Store::open` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The file or directory.
    pub path: PathBuf,
    /// What it was and what was done.
    pub what: String,
}

impl std::fmt::Display for Recovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.what)
    }
}

fn note(out: &mut Vec<Recovered>, path: impl Into<PathBuf>, what: impl Into<String>) {
    out.push(Recovered {
        path: path.into(),
        what: what.into(),
    });
}

fn tmp_notes(out: &mut Vec<Recovered>, removed: Vec<PathBuf>) {
    for path in removed {
        note(
            out,
            path,
            "temporary file of a write killed before its rename: removed",
        );
    }
}

fn remove_file(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

impl Store {
    /// Finds and removes what killed writers left (see the module's table).
    pub(crate) fn recover(&self) -> Result<Vec<Recovered>> {
        let mut out = Vec::new();
        tmp_notes(&mut out, file::sweep_tmp(&self.root.join("metadata"))?);
        tmp_notes(&mut out, file::sweep_tmp(&self.chunks_dir())?);
        for path in self.sweep_spools(None)? {
            note(
                &mut out,
                path,
                "export spool its client did not finish reading: removed",
            );
        }
        self.recover_sessions(&mut out)?;
        self.recover_snapshots(&mut out)?;
        let collected = {
            let _chunks = self.chunk_lock();
            self.collect_chunks()
        };
        match collected {
            Ok(c) if c.chunks > 0 => note(
                &mut out,
                self.chunks_dir(),
                format!(
                    "{} chunks ({} bytes) no snapshot references (a snapshot or delete killed half-way): removed",
                    c.chunks, c.bytes
                ),
            ),
            Ok(_) => {}
            // A manifest that does not read: collecting could remove its data. Said, not fatal.
            Err(e) => note(
                &mut out,
                self.chunks_dir(),
                format!("unreferenced chunks not collected: {e}"),
            ),
        }
        Ok(out)
    }

    fn recover_sessions(&self, out: &mut Vec<Recovered>) -> Result<()> {
        let root = self.root.join("sessions");
        for name in file::list_names(&root)? {
            let dir = root.join(&name);
            if !valid_id(&name) || !file::is_real_dir(&dir) {
                continue;
            }
            tmp_notes(out, file::sweep_tmp(&dir)?);
            let marker = dir.join(IMPORT_MARKER);
            if file::present(&marker) {
                let listed = file::read_bounded(&marker, 1 << 20)
                    .ok()
                    .flatten()
                    .and_then(|b| serde_json::from_slice::<ImportMarker>(&b).ok())
                    .map_or_else(Vec::new, |m| m.snapshots);
                let mut gone = 0;
                let snaps = self.root.join("snapshots").join(&name);
                if file::is_real_dir(&snaps) {
                    for id in listed.iter().filter(|id| valid_id(id)) {
                        let json = remove_file(&snaps.join(format!("{id}.json")))?;
                        let blob = remove_file(&snaps.join(format!("{id}.blob")))?;
                        gone += usize::from(json || blob);
                    }
                }
                remove_dir(&dir)?;
                note(
                    out,
                    &dir,
                    format!(
                        "an import killed before it finished: its session and {gone} of its snapshots removed (the import was never answered)"
                    ),
                );
            } else if !file::present(&dir.join("state.json")) {
                remove_dir(&dir)?;
                note(
                    out,
                    &dir,
                    "a session directory without its state (a restore or import killed before its commit): removed",
                );
            }
        }
        Ok(())
    }

    fn recover_snapshots(&self, out: &mut Vec<Recovered>) -> Result<()> {
        let root = self.root.join("snapshots");
        for session in file::list_names(&root)? {
            let dir = root.join(&session);
            if !file::is_real_dir(&dir) {
                continue;
            }
            tmp_notes(out, file::sweep_tmp(&dir)?);
            let names = file::list_names(&dir)?;
            for name in &names {
                let (stem, other, what) = if let Some(stem) = name.strip_suffix(".blob") {
                    (
                        stem,
                        format!("{stem}.json"),
                        "snapshot data without its metadata (a snapshot killed before its commit, or a delete half-way): removed",
                    )
                } else if let Some(stem) = name.strip_suffix(".json") {
                    (
                        stem,
                        format!("{stem}.blob"),
                        "snapshot metadata without its data: removed",
                    )
                } else {
                    continue;
                };
                if valid_id(stem) && !names.contains(&other) {
                    let path = dir.join(name);
                    if remove_file(&path)? {
                        note(out, path, what);
                    }
                }
            }
        }
        Ok(())
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", dir, e)),
    }
}
