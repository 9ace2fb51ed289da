//! Sealed details: with a passphrase (`AI_SESSION_PASSPHRASE`), an entry's `detail` (the
//! command text, the keys typed, a refusal's reason) is stored as `sealed:` + hex of
//! nonce ++ XChaCha20-Poly1305 ciphertext, under a key derived from the passphrase with Argon2id
//! and the salt in `audit.salt` beside the log. The keyed chain covers the sealed text, so
//! `audit verify` needs no passphrase; `audit ls` opens the details when given it. Risk scores are
//! computed on the plain text before sealing and stay readable.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::AuditError;

const PREFIX: &str = "sealed:";
const SALT_FILE: &str = "audit.salt";
const NONCE_LEN: usize = 24;

/// The cipher of one log's details.
#[derive(Clone)]
pub struct DetailCipher {
    aead: XChaCha20Poly1305,
}

impl std::fmt::Debug for DetailCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DetailCipher(..)")
    }
}

fn other(path: &Path, msg: String) -> AuditError {
    AuditError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(msg),
    }
}

/// The entry's sequence number binds its ciphertext: a sealed detail moved to another entry
/// does not open.
fn aad(seq: u64) -> Vec<u8> {
    format!("ai-session audit detail v1\0{seq}").into_bytes()
}

impl DetailCipher {
    /// The cipher for the log at `log`: the salt beside it (created, 0600, when `create`),
    /// the key derived from `passphrase` (Argon2id, 19 MiB, 2 passes: tens of milliseconds,
    /// once per daemon start or `audit ls`).
    pub fn for_log(log: &Path, passphrase: &str, create: bool) -> Result<Self, AuditError> {
        let path = log.with_file_name(SALT_FILE);
        let salt = match std::fs::read_to_string(&path) {
            Ok(text) => {
                decode_hex(text.trim()).ok_or_else(|| AuditError::BadKey { path: path.clone() })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut salt = vec![0u8; 16];
                getrandom::fill(&mut salt)
                    .map_err(|e| other(&path, format!("no randomness for the salt: {e}")))?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(|source| AuditError::Io {
                        path: path.clone(),
                        source,
                    })?;
                file.write_all(super::hex(&salt).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|source| AuditError::Io {
                        path: path.clone(),
                        source,
                    })?;
                salt
            }
            Err(source) => return Err(AuditError::Io { path, source }),
        };
        let params = argon2::Params::new(19 * 1024, 2, 1, Some(32))
            .map_err(|e| other(&path, format!("key derivation parameters: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut key = [0u8; 32];
        argon
            .hash_password_into(passphrase.as_bytes(), &salt, &mut key)
            .map_err(|e| other(&path, format!("key derivation: {e}")))?;
        let aead = XChaCha20Poly1305::new_from_slice(&key)
            .map_err(|e| other(&path, format!("key setup: {e}")))?;
        key.fill(0);
        Ok(DetailCipher { aead })
    }

    /// The sealed form of entry `seq`'s detail. An empty detail stays empty (nothing to hide).
    pub(crate) fn seal(&self, seq: u64, detail: &str) -> Result<String, AuditError> {
        if detail.is_empty() {
            return Ok(String::new());
        }
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| other(Path::new("audit"), format!("no randomness: {e}")))?;
        let sealed = self
            .aead
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: detail.as_bytes(),
                    aad: &aad(seq),
                },
            )
            .map_err(|_| other(Path::new("audit"), "sealing failed".into()))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", super::hex(&bytes)))
    }

    /// The plain detail of a sealed one; `None` when it does not open (another passphrase).
    pub fn open(&self, seq: u64, detail: &str) -> Option<String> {
        let bytes = decode_hex(detail.strip_prefix(PREFIX)?)?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let plain = self
            .aead
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad(seq),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// True when a detail is sealed.
pub fn is_sealed(detail: &str) -> bool {
    detail.starts_with(PREFIX)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
