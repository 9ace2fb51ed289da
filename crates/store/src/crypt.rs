//! Encryption at rest: a 256-bit key derived from a passphrase with Argon2id, XChaCha20-Poly1305
//! with a random 192-bit nonce per sealed item (random nonces of that size never collide in
//! practice, so no counter has to survive crashes). The store's salt and KDF parameters live in
//! `metadata/keycheck.json` with a verifier: a known plaintext sealed under the key, so a wrong
//! passphrase is refused at open instead of producing garbage later.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub(crate) const NONCE_LEN: usize = 24;
pub(crate) const TAG_LEN: usize = 16;
const SALT_LEN: usize = 16;
/// The largest Argon2 costs a key check may ask for: 16 times the defaults' memory.
const MAX_M_COST_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 8;
const VERIFIER_PLAINTEXT: &[u8] = b"ai-session store key check v1";
const VERIFIER_AAD: &[u8] = b"ai-session keycheck";

/// Argon2id cost parameters. The defaults are the Argon2 RFC's second recommendation
/// (19 MiB, 2 passes, 1 lane): about 30 ms on a laptop core, paid once per `Store::open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            m_cost_kib: 19 * 1024,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

/// The key-check file: what is needed to re-derive the key and to verify it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct KeyCheck {
    pub schema: u32,
    pub kdf: String,
    pub params: KdfParams,
    pub salt: String,
    /// Hex of nonce ++ AEAD(VERIFIER_PLAINTEXT).
    pub verifier: String,
}

/// A derived key, ready to seal and open.
#[derive(Clone)]
pub(crate) struct Cipher {
    aead: XChaCha20Poly1305,
    /// HMAC-SHA256 key naming snapshot chunks (derived from the store key, never stored): a
    /// chunk's id says nothing about its plaintext to someone without the key.
    id_key: [u8; 32],
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(..)")
    }
}

impl Cipher {
    pub fn derive(passphrase: &[u8], salt: &[u8], params: KdfParams, path: &Path) -> Result<Self> {
        let argon_params =
            argon2::Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32))
                .map_err(|e| Error::corrupt(path, format!("bad key derivation parameters: {e}")))?;
        let argon = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon_params,
        );
        let mut key = [0u8; 32];
        argon
            .hash_password_into(passphrase, salt, &mut key)
            // Our own parameters always derive; these came from a key check file or an
            // export's (a salt too short, costs argon2 refuses): the file is at fault.
            .map_err(|e| {
                Error::corrupt(path, format!("key derivation refused its parameters: {e}"))
            })?;
        let aead = XChaCha20Poly1305::new_from_slice(&key).map_err(|e| Error::Codec {
            path: path.to_owned(),
            detail: format!("key setup failed: {e}"),
        })?;
        let id_key = hmac_sha256(&key, b"ai-session chunk id key v1");
        key.fill(0);
        Ok(Self { aead, id_key })
    }

    /// The id of a chunk of plaintext: HMAC-SHA256 under the store's chunk-id key.
    pub fn chunk_id(&self, plain: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.id_key, plain)
    }

    /// Bytes derived from the key for `purpose` (the keyed chunker's gear table).
    pub fn derive_bytes(&self, purpose: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.id_key, purpose)
    }

    /// Returns nonce ++ ciphertext ++ tag. `aad` binds the ciphertext to its place (file kind),
    /// so a sealed item moved to another role fails to open.
    pub fn seal(&self, plain: &[u8], aad: &[u8], path: &Path) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce, path)?;
        let sealed = self
            .aead
            .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad })
            .map_err(|_| Error::Codec {
                path: path.to_owned(),
                detail: "encryption failed".into(),
            })?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what `seal` produced. `None` when authentication fails: the caller decides
    /// whether that means a wrong key or a corrupted file.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        self.aead
            .decrypt(&XNonce::from(nonce), Payload { msg: body, aad })
            .ok()
    }
}

impl KeyCheck {
    /// A fresh salt and a verifier for `passphrase`; returns the check and the derived key.
    pub fn create(passphrase: &[u8], params: KdfParams, path: &Path) -> Result<(Self, Cipher)> {
        let mut salt = [0u8; SALT_LEN];
        random(&mut salt, path)?;
        let cipher = Cipher::derive(passphrase, &salt, params, path)?;
        let verifier = cipher.seal(VERIFIER_PLAINTEXT, VERIFIER_AAD, path)?;
        let check = Self {
            schema: 1,
            kdf: "argon2id".into(),
            params,
            salt: hex(&salt),
            verifier: hex(&verifier),
        };
        Ok((check, cipher))
    }

    /// Derives the key from `passphrase` and checks it against the verifier.
    pub fn unlock(&self, passphrase: &[u8], path: &Path, owner: &Path) -> Result<Cipher> {
        if self.schema > 1 {
            return Err(Error::NewerVersion {
                path: path.to_owned(),
                found: self.schema,
                supported: 1,
            });
        }
        if self.kdf != "argon2id" {
            return Err(Error::corrupt(
                path,
                format!("unknown key derivation '{}'", self.kdf),
            ));
        }
        // Costs come from the file (an export's may be hostile): bounded before Argon2
        // allocates `m_cost` KiB.
        let p = self.params;
        if p.m_cost_kib > MAX_M_COST_KIB || p.t_cost > MAX_T_COST || p.p_cost > MAX_P_COST {
            return Err(Error::corrupt(
                path,
                format!(
                    "key derivation costs out of range (m={} KiB, t={}, p={}; at most {MAX_M_COST_KIB}, {MAX_T_COST}, {MAX_P_COST})",
                    p.m_cost_kib, p.t_cost, p.p_cost
                ),
            ));
        }
        let salt = unhex(&self.salt).ok_or_else(|| Error::corrupt(path, "bad salt"))?;
        let verifier = unhex(&self.verifier).ok_or_else(|| Error::corrupt(path, "bad verifier"))?;
        let cipher = Cipher::derive(passphrase, &salt, self.params, path)?;
        match cipher.open(&verifier, VERIFIER_AAD) {
            Some(plain) if plain == VERIFIER_PLAINTEXT => Ok(cipher),
            _ => Err(Error::WrongPassphrase {
                path: owner.to_owned(),
            }),
        }
    }
}

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut out = [0u8; 32];
    // HMAC takes keys of any length: `new_from_slice` cannot fail here.
    if let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key) {
        mac.update(data);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

pub(crate) fn random(buf: &mut [u8], path: &Path) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Codec {
        path: path.to_owned(),
        detail: format!("no randomness from the OS: {e}"),
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            // Writing to a String cannot fail.
            write!(s, "{b:02x}").ok();
            s
        })
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}
