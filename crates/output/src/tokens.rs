//! Token counts with real BPE tokenizers (o200k_base, cl100k_base), loaded once on first use from the
//! ranks embedded in the `tiktoken-rs` crate: no network, no files.
//!
//! BPE merging costs grow with the square of a word's length, so text is encoded in segments: cut before
//! a whitespace character once a segment passes 16 KiB, and forcibly (at a character boundary) inside a
//! run of 256 bytes without whitespace. Cutting before whitespace gives the same pieces as encoding the
//! whole text; only runs longer than 256 bytes without whitespace (minified code, base64) may count a
//! token or so more per cut.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use tiktoken_rs::CoreBPE;

/// A tokenizer vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// GPT-4o family vocabulary; the default.
    #[default]
    O200kBase,
    /// GPT-4 / GPT-3.5 vocabulary.
    Cl100kBase,
}

/// The tokenizer could not be built from its embedded ranks.
#[derive(Debug, Clone, thiserror::Error)]
#[error("tokenizer {encoding:?} failed to load: {reason}")]
pub struct TokenizerError {
    /// Which vocabulary.
    pub encoding: Encoding,
    /// The loader's message.
    pub reason: String,
}

static O200K: LazyLock<Result<CoreBPE, String>> =
    LazyLock::new(|| tiktoken_rs::o200k_base().map_err(|e| e.to_string()));
static CL100K: LazyLock<Result<CoreBPE, String>> =
    LazyLock::new(|| tiktoken_rs::cl100k_base().map_err(|e| e.to_string()));

fn bpe(encoding: Encoding) -> Result<&'static CoreBPE, TokenizerError> {
    let cell = match encoding {
        Encoding::O200kBase => &O200K,
        Encoding::Cl100kBase => &CL100K,
    };
    cell.as_ref().map_err(|reason| TokenizerError {
        encoding,
        reason: reason.clone(),
    })
}

/// Segment length after which a cut is made before the next whitespace.
const SEGMENT: usize = 16 * 1024;
/// Longest run without whitespace encoded in one piece.
const RUN: usize = 256;

/// Counts the tokens of `text` in `encoding`.
pub fn count_tokens(text: &str, encoding: Encoding) -> Result<usize, TokenizerError> {
    let bpe = bpe(encoding)?;
    Ok(segments(text).map(|s| bpe.encode_ordinary(s).len()).sum())
}

/// Splits text into segments as described in the module docs.
fn segments(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let cut = cut_point(rest);
        let (seg, tail) = rest.split_at(cut);
        rest = tail;
        Some(seg)
    })
}

fn cut_point(s: &str) -> usize {
    let mut run_start = 0;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() {
            if i >= SEGMENT {
                return i;
            }
            run_start = i + c.len_utf8();
        } else if i - run_start >= RUN && i > 0 {
            return i;
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_known_text() {
        let n = count_tokens("hello world", Encoding::O200kBase).unwrap();
        assert_eq!(n, 2);
        let n = count_tokens("hello world", Encoding::Cl100kBase).unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn segmented_count_matches_whole_for_prose() {
        let text = "the quick brown fox jumps over the lazy dog\n".repeat(2000);
        let bpe = bpe(Encoding::O200kBase).unwrap();
        assert_eq!(
            count_tokens(&text, Encoding::O200kBase).unwrap(),
            bpe.encode_ordinary(&text).len()
        );
    }

    #[test]
    fn long_runs_are_cut_on_char_boundaries() {
        let text = "é".repeat(10_000);
        assert!(segments(&text).all(|s| s.len() <= RUN + 4));
        assert!(count_tokens(&text, Encoding::O200kBase).unwrap() > 0);
    }
}
