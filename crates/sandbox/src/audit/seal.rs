//! The audit log's secrets and anchors: the HMAC key (`audit.key`) and the signed head
//! (`audit.head`), both beside the log in the daemon's state directory, mode 0600.
//!
//! The key never appears in the log, so whoever can edit the log but not read the key cannot
//! recompute the chain. The head names the log's first and last sequence numbers and the last
//! entry's hash, under the same key (with its own domain prefix, so an entry's MAC can never
//! pass as a head's). Truncating the log cannot roll the head back without the key; replaying an
//! older head needs write access to the state directory, which no sandbox has.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::AuditError;

/// The file names beside the log.
pub(crate) const KEY_FILE: &str = "audit.key";
pub(crate) const HEAD_FILE: &str = "audit.head";

/// Domain prefixes: an entry MAC and a head MAC are computed over disjoint inputs.
const ENTRY_DOMAIN: &[u8] = b"ai-session audit entry v1\0";
const HEAD_DOMAIN: &[u8] = b"ai-session audit head v1\0";

/// The 32-byte HMAC-SHA256 key of one daemon's audit log.
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl AuditKey {
    /// A key from raw bytes (tests, and tools that keep the key elsewhere).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        AuditKey(bytes)
    }

    /// Reads the key file (64 hex digits).
    pub fn load(path: &Path) -> Result<Self, AuditError> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let bad = || AuditError::BadKey {
            path: path.to_path_buf(),
        };
        let text = text.trim();
        if text.len() != 64 {
            return Err(bad());
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
                .map_err(|_| bad())?;
        }
        Ok(AuditKey(key))
    }

    /// Creates the key file (mode 0600, fresh random bytes); `AlreadyExists` when one is there.
    pub fn create(path: &Path) -> Result<Self, AuditError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| AuditError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!("no randomness for the audit key: {e}")),
        })?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io(path))?;
        file.write_all(super::hex(&key).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io(path))?;
        Ok(AuditKey(key))
    }

    fn mac(&self, domain: &[u8], data: &[u8]) -> String {
        // HMAC accepts keys of any length, so this cannot fail; the fallback keeps the
        // no-panic rule without an `expect`.
        match <Hmac<Sha256> as Mac>::new_from_slice(&self.0) {
            Ok(mut mac) => {
                mac.update(domain);
                mac.update(data);
                super::hex(&mac.finalize().into_bytes())
            }
            Err(_) => String::new(),
        }
    }

    /// The keyed hash of an entry's canonical bytes.
    pub(crate) fn entry_mac(&self, canonical: &[u8]) -> String {
        self.mac(ENTRY_DOMAIN, canonical)
    }
}

/// The signed head: where the log starts and ends, as of its last sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// The sequence number of the log file's first entry (1, or a later segment's start).
    pub first_seq: u64,
    /// The last entry's sequence number (`first_seq - 1` for an empty log).
    pub seq: u64,
    /// The last entry's hash (the genesis value for an empty log).
    pub hash: String,
    /// HMAC of the three fields above.
    pub mac: String,
}

impl Head {
    fn signed_bytes(first_seq: u64, seq: u64, hash: &str) -> Vec<u8> {
        format!("{first_seq}\0{seq}\0{hash}").into_bytes()
    }

    /// A head signed with `key`.
    pub fn new(key: &AuditKey, first_seq: u64, seq: u64, hash: &str) -> Self {
        Head {
            first_seq,
            seq,
            hash: hash.to_string(),
            mac: key.mac(HEAD_DOMAIN, &Self::signed_bytes(first_seq, seq, hash)),
        }
    }

    /// True when the MAC matches (compared in constant time).
    pub fn is_signed_by(&self, key: &AuditKey) -> bool {
        use subtle::ConstantTimeEq;
        let want = key.mac(
            HEAD_DOMAIN,
            &Self::signed_bytes(self.first_seq, self.seq, &self.hash),
        );
        bool::from(want.as_bytes().ct_eq(self.mac.as_bytes()))
    }

    /// Reads the head file; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, AuditError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|_| AuditError::BadHead {
                        path: path.to_path_buf(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(path)(e)),
        }
    }

    /// Replaces the head file atomically: a temporary file, fsynced, renamed over it, then
    /// the directory fsynced so the rename itself survives a power cut.
    pub fn store(&self, path: &Path) -> Result<(), AuditError> {
        let tmp = path.with_extension("head.tmp");
        let bytes = serde_json::to_vec(self)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io(path))?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
        Ok(())
    }
}

/// The key and head files that belong to a log file.
pub fn beside(log: &Path) -> (PathBuf, PathBuf) {
    let dir = log.parent().unwrap_or_else(|| Path::new("."));
    (dir.join(KEY_FILE), dir.join(HEAD_FILE))
}
