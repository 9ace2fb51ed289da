//! The variables a session's shell exported, carried across a daemon restart.
//!
//! The shell hooks (`ai_session_core::shell`) write `export -p` and an end line to the
//! session's file (`shell::exported::Place`: in memory when the machine has a tmpfs for it)
//! before each prompt's D mark. The store thread takes that file after each exec (the mark has
//! arrived, so the file is whole) and at each checkpoint: it keeps the text in the session's
//! record when it changed (sealed in an encrypted store) and removes the file. At a restart the
//! text goes into the session's restore file, whose path the new shell gets in
//! `AI_SESSION_ENV_RESTORE` and sources after the user's rc file, before its first prompt.
//!
//! Why a file and not an OSC string through the terminal: `export -p` into a file is builtins
//! only in bash and zsh, while a few KiB of environment at every prompt would go through the
//! output log, the emulator and every subscriber (see `docs/persistence.md` for the cost).

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};

use ai_session_core::shell::{ENV_END, ENV_RESTORE_ENV};
use ai_session_store::{SessionId, Store};

/// The environments taken to be saved, shared by the store thread (an exec's, saved before
/// its answer) and the checkpoint's writer on the blocking pool (those of prompts no exec
/// ended, such as every new shell's first). Taking a text only counts it; a session's writes
/// take turns, and a writer holding a text older than the last one taken for its session skips
/// it, so an older text never replaces a newer one. The store thread waits only for a write of
/// the same session's environment already under way, never for a checkpoint's thousand.
#[derive(Default)]
pub(super) struct Saves {
    sessions: Mutex<HashMap<String, Save>>,
}

#[derive(Default)]
struct Save {
    /// Counts the texts taken; a writer holding an older one skips it.
    seq: u64,
    /// The fingerprint of the last text taken, unless its write failed (then the next look
    /// saves again).
    print: Option<u64>,
    /// Held across each write of this session's environment.
    turn: Arc<Mutex<()>>,
}

/// A text taken to be saved.
pub(super) struct Taken {
    sid: String,
    name: String,
    id: SessionId,
    text: Vec<u8>,
    seq: u64,
}

impl Saves {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Save>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `text`, what the shell of session `sid` (record `id`, called `name`) exported, to be
    /// saved: `None` when it is the text last taken.
    pub(super) fn taken(
        &self,
        sid: &str,
        name: &str,
        id: SessionId,
        text: Vec<u8>,
    ) -> Option<Taken> {
        let print = fingerprint(&text);
        let mut sessions = self.sessions();
        let save = sessions.entry(sid.to_owned()).or_default();
        if save.print == Some(print) {
            return None;
        }
        save.seq += 1;
        save.print = Some(print);
        Some(Taken {
            sid: sid.to_owned(),
            name: name.to_owned(),
            id,
            text,
            seq: save.seq,
        })
    }

    /// The sequence number of the last text taken for `sid`; `None` once it is forgotten.
    fn last_seq(&self, sid: &str) -> Option<u64> {
        self.sessions().get(sid).map(|s| s.seq)
    }

    /// Writes `taken` (durably, in a durable store) unless a later text of its session was
    /// taken since, or the session was forgotten. A failure is logged, and the next look
    /// saves again.
    pub(super) fn save(&self, store: &Store, taken: &Taken) {
        let Some(turn) = self.sessions().get(&taken.sid).map(|s| s.turn.clone()) else {
            return;
        };
        let _turn = turn.lock().unwrap_or_else(|p| p.into_inner());
        // Checked in the session's turn: a text taken after this one is either written after
        // it, or seen here, and this one is skipped.
        if self.last_seq(&taken.sid) != Some(taken.seq) {
            return;
        }
        if let Err(e) = store.save_environment(&taken.id, &taken.text) {
            if let Some(save) = self.sessions().get_mut(&taken.sid) {
                if save.seq == taken.seq {
                    save.print = None;
                }
            }
            tracing::warn!(session = %taken.name, "cannot save the exported environment: {e}");
        }
    }

    /// Session `sid` ended: a text of it still to write is not written, and one being
    /// written is finished when this returns (its record is about to go).
    pub(super) fn forget(&self, sid: &str) {
        let turn = self.sessions().remove(sid).map(|s| s.turn);
        if let Some(turn) = turn {
            drop(turn.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }
}

/// The most a shell's exported environment may take: a larger file is left unread (Linux
/// limits one variable to 128 KiB and the whole environment of an exec to about 2 MiB).
const MAX_BYTES: u64 = 4 << 20;

/// Takes the text a shell wrote to `path` at its last prompt: `None` when there is none, or
/// it is incomplete (read while the shell writes it: it is left for the next look).
pub(super) fn take(path: &Path) -> Option<Vec<u8>> {
    let mut bytes = read_bounded(path)?;
    if !bytes.ends_with(ENV_END.as_bytes()) {
        return None;
    }
    bytes.truncate(bytes.len() - ENV_END.len());
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!("cannot remove {}: {e}", path.display());
    }
    Some(bytes)
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("cannot read {}: {e}", path.display());
            return None;
        }
    };
    // `take` hides the file's size from `read_to_end`, which would then read 32 bytes, 32, 64
    // and so on: room for a usual environment makes it one read.
    let mut bytes = Vec::with_capacity(16 << 10);
    match file.take(MAX_BYTES + 1).read_to_end(&mut bytes) {
        Ok(n) if n as u64 > MAX_BYTES => {
            tracing::warn!(
                "{} is over {} MiB: the exported environment is not kept",
                path.display(),
                MAX_BYTES >> 20
            );
            None
        }
        Ok(_) => Some(bytes),
        Err(e) => {
            tracing::warn!("cannot read {}: {e}", path.display());
            None
        }
    }
}

/// `text` without the shell's `_` (the last argument of the previous command, which `sh`
/// exports): it changes with every command, so keeping it would rewrite the record (an fsync)
/// at every exec for nothing a restored shell uses.
pub(super) fn without_last_argument(text: Vec<u8>) -> Vec<u8> {
    let mut start = 0;
    while start < text.len() {
        let line = &text[start..];
        let is_last_argument = line.starts_with(b"export _=") || line.starts_with(b"declare -x _=");
        let end = start + entry_len(line);
        if is_last_argument {
            let mut kept = text[..start].to_vec();
            kept.extend_from_slice(&text[end..]);
            return kept;
        }
        start = end;
    }
    text
}

/// The length of the entry at the start of `text`, its newline included: a value may hold
/// newlines inside single quotes (`sh`, `zsh`) or double quotes (`bash`, with backslash escapes).
fn entry_len(text: &[u8]) -> usize {
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < text.len() {
        let c = text[i];
        match (quote, c) {
            (None, b'\n') => return i + 1,
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b'\\') | (Some(b'"'), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        i += 1;
    }
    text.len()
}

/// A fingerprint of a saved environment, to skip saving the same text again.
fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Writes `exported` to `path` (0600) for the shell about to start and returns the variable
/// that points its hooks at it.
pub(super) fn prepare_restore(path: &Path, exported: &[u8]) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(exported)?;
    Ok(ENV_RESTORE_ENV.to_owned())
}

/// Removes a restore file a shell that did not start will never read.
pub(super) fn discard_restore(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with_a_session() -> (tempfile::TempDir, Store, SessionId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path().join("store"),
            ai_session_store::Options::default(),
        )
        .unwrap();
        let state = store
            .create_session(ai_session_store::SessionConfig {
                name: "s".into(),
                shell: Some("sh".into()),
                argv: vec!["sh".into()],
                size: Default::default(),
                env: Default::default(),
                cwd: "/".into(),
                created_ms: 0,
                policy: None,
            })
            .unwrap();
        (dir, store, state.id)
    }

    #[test]
    fn a_text_taken_before_a_later_one_is_not_written_over_it() {
        let (_dir, store, id) = store_with_a_session();
        let saves = Saves::default();
        // A checkpoint takes a text, then an exec takes a newer one and saves it first.
        let older = saves
            .taken("sid", "s", id.clone(), b"export A='1'\n".to_vec())
            .unwrap();
        let newer = saves
            .taken("sid", "s", id.clone(), b"export A='2'\n".to_vec())
            .unwrap();
        saves.save(&store, &newer);
        saves.save(&store, &older);
        assert_eq!(
            store.load_environment(&id).unwrap().unwrap(),
            b"export A='2'\n"
        );
        // The same text again is not taken; a session forgotten is not written.
        assert!(
            saves
                .taken("sid", "s", id.clone(), b"export A='2'\n".to_vec())
                .is_none()
        );
        let last = saves
            .taken("sid", "s", id.clone(), b"export A='3'\n".to_vec())
            .unwrap();
        saves.forget("sid");
        saves.save(&store, &last);
        assert_eq!(
            store.load_environment(&id).unwrap().unwrap(),
            b"export A='2'\n"
        );
    }

    #[test]
    fn a_file_without_its_end_line_is_left_for_the_next_look() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s.env");
        std::fs::write(&file, "declare -x A=\"1\"\ndecl").unwrap();
        assert_eq!(take(&file), None);
        assert!(file.exists());
        std::fs::write(&file, format!("declare -x A=\"1\"\n{ENV_END}")).unwrap();
        assert_eq!(take(&file).as_deref(), Some(&b"declare -x A=\"1\"\n"[..]));
        assert!(!file.exists());
        assert_eq!(take(&file), None);
    }

    #[test]
    fn the_last_argument_is_left_out_whatever_its_value_holds() {
        let strip =
            |t: &str| String::from_utf8(without_last_argument(t.as_bytes().to_vec())).unwrap();
        // sh (dash): `'` inside a value is written '\''; a value may span lines.
        let sh = "export A='1'\nexport _='it'\\''s\nexport B=x'\nexport HOME=/tmp\nexport Z='z'\n";
        assert_eq!(strip(sh), "export A='1'\nexport HOME=/tmp\nexport Z='z'\n");
        assert_eq!(strip("export _=plain\nexport A='1'\n"), "export A='1'\n");
        // bash: double quotes with backslash escapes.
        let bash = "declare -x A=\"1\"\ndeclare -x _=\"a \\\"q\\\" b\nc\"\ndeclare -x Z=\"z\"\n";
        assert_eq!(strip(bash), "declare -x A=\"1\"\ndeclare -x Z=\"z\"\n");
        // Names that only begin with `_`, and values that mention it, stay.
        let keep = "export _X='1'\nexport A='export _=no'\n";
        assert_eq!(strip(keep), keep);
        // Two commands apart, the same exports give the same text.
        let one = strip("export A='1'\nexport _='echo MARK1'\n");
        let two = strip("export A='1'\nexport _='echo MARK2'\n");
        assert_eq!(fingerprint(one.as_bytes()), fingerprint(two.as_bytes()));
    }

    #[test]
    fn the_restore_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.restore");
        let var = prepare_restore(&path, b"export A='1'\n").unwrap();
        assert_eq!(var, ENV_RESTORE_ENV);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        discard_restore(&path);
        assert!(!path.exists());
    }
}
