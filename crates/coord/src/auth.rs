//! Agent tokens: 256 random bits per registration, compared in constant time.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::ids::AgentId;

/// The secret an agent receives from `register`. Shown as 64 hex digits on the wire.
///
/// `Debug` never prints the secret, so a token cannot leak through logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Token([u8; 32]);

impl Token {
    /// Draws a fresh token from the operating system's random source.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        if getrandom::fill(&mut bytes).is_err() {
            // The OS random source failing is not recoverable for a security token; a token we cannot
            // make unpredictable must not be handed out at all.
            panic!("the operating system's random source failed; cannot issue agent tokens");
        }
        Self(bytes)
    }

    /// A token made elsewhere from 32 secret bytes (a cluster derives its agents' tokens from
    /// its shared key, so that every node can check them).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The token's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Compares in time independent of where the first differing byte is.
    pub(crate) fn matches(&self, other: &Token) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// The token as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    /// Parses 64 hex digits; `None` for anything else.
    pub fn from_hex(s: &str) -> Option<Self> {
        let s = s.as_bytes();
        if s.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0])?;
            let lo = hex_val(pair[1])?;
            bytes[i] = (hi << 4) | lo;
        }
        Some(Self(bytes))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Token::from_hex(&s).ok_or_else(|| serde::de::Error::custom("a token is 64 hex digits"))
    }
}

/// What an agent presents to act as itself: its id and the token it got from `register`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAuth {
    pub agent: AgentId,
    pub token: Token,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_distinct_tokens() {
        let a = Token::generate();
        let b = Token::generate();
        assert!(!a.matches(&b));
        let parsed = Token::from_hex(&a.to_hex()).unwrap();
        assert!(parsed.matches(&a));
        assert_eq!(a.to_hex().len(), 64);
        assert!(Token::from_hex("zz").is_none());
        assert!(!format!("{a:?}").contains(&a.to_hex()));
    }
}
