//! Token counts with the real BPE vocabularies (o200k_base, cl100k_base), through the `bpe-openai`
//! crate: exact (the same counts as tiktoken), linear in the input, with tables serialized at build
//! time, so nothing is fetched or compiled at run time.
//!
//! Counting is exact at any size, but a view must never wait for a count of megabytes of raw output:
//! [`estimate_tokens`] counts evenly spaced samples of a large text and scales, with the error bound
//! measured in `ARCHITECTURE.md` (output section), and says that it estimated.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

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

fn tokenizer(encoding: Encoding) -> &'static bpe_openai::Tokenizer {
    match encoding {
        Encoding::O200kBase => bpe_openai::o200k_base(),
        Encoding::Cl100kBase => bpe_openai::cl100k_base(),
    }
}

/// Loads the vocabulary of `encoding` now (a few tens of milliseconds, once per process), so the
/// first count on a reply path does not pay for it. Long-lived processes call it on a spare thread
/// at start.
pub fn warm_up(encoding: Encoding) {
    tokenizer(encoding);
}

/// Pretokenized pieces up to this many bytes have their counts remembered.
const CACHED_PIECE: usize = 24;
/// Pieces remembered per thread and vocabulary (about 64 bytes each); a full cache starts over.
const CACHE_ENTRIES: usize = 4096;

thread_local! {
    /// Token counts of short pieces, per vocabulary: a command's output, a view and a context
    /// entry are mostly the same few words, each of which would otherwise cost an allocation
    /// and a walk of the vocabulary's automaton (cold in the cache on a busy machine) per use.
    static PIECES: RefCell<[HashMap<Box<str>, u32>; 2]> = RefCell::new(Default::default());
}

/// Counts the tokens of `text` in `encoding`, exactly: the sum over the pretokenizer's pieces,
/// as `bpe_openai::Tokenizer::count` does, with the counts of short pieces remembered.
pub fn count_tokens(text: &str, encoding: Encoding) -> usize {
    if text.is_empty() {
        return 0;
    }
    let tok = tokenizer(encoding);
    let text = tok.normalize(text);
    PIECES.with(|cell| {
        let Ok(mut maps) = cell.try_borrow_mut() else {
            return tok.count(text.as_str());
        };
        let map = &mut maps[encoding as usize];
        tok.split(text.as_str())
            .map(|piece| count_piece(tok, map, piece))
            .sum()
    })
}

fn count_piece(
    tok: &bpe_openai::Tokenizer,
    map: &mut HashMap<Box<str>, u32>,
    piece: &str,
) -> usize {
    if piece.len() > CACHED_PIECE {
        return tok.bpe.count(piece.as_bytes());
    }
    if let Some(&n) = map.get(piece) {
        return n as usize;
    }
    let n = tok.bpe.count(piece.as_bytes());
    if map.len() >= CACHE_ENTRIES {
        map.clear();
    }
    map.insert(piece.into(), n as u32);
    n
}

/// Texts up to this size are counted exactly by [`estimate_tokens`].
pub const EXACT_LIMIT: usize = 1 << 20;
/// Samples counted for a larger text, and the bytes of each.
pub(crate) const SAMPLES: usize = 16;
const SAMPLE_BYTES: usize = 16 * 1024;

/// A token count, exact or estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCount {
    /// The count.
    pub tokens: usize,
    /// True when `tokens` was scaled from samples rather than counted.
    pub estimated: bool,
}

/// Counts the tokens of `text` exactly when it is at most [`EXACT_LIMIT`] bytes; otherwise counts
/// [`SAMPLES`] evenly spaced samples (cut at line ends) and scales their tokens-per-byte to the
/// whole text. Costs at most about 256 KiB of counting whatever the size.
pub fn estimate_tokens(text: &str, encoding: Encoding) -> TokenCount {
    if text.len() <= EXACT_LIMIT {
        return TokenCount {
            tokens: count_tokens(text, encoding),
            estimated: false,
        };
    }
    scale_samples(text, count_samples(text, encoding, 0..SAMPLES))
}

/// The bytes and tokens of the samples numbered `which` (of [`SAMPLES`]) of a text over
/// [`EXACT_LIMIT`] bytes; [`scale_samples`] of the sums over all of them is
/// [`estimate_tokens`]'s estimate.
pub(crate) fn count_samples(
    text: &str,
    encoding: Encoding,
    which: std::ops::Range<usize>,
) -> SampleCount {
    let stride = text.len() / SAMPLES;
    let mut sum = SampleCount::default();
    for i in which {
        let sample = line_aligned(text, i * stride, SAMPLE_BYTES);
        sum.bytes += sample.len();
        sum.tokens += count_tokens(sample, encoding);
    }
    sum
}

/// Counted samples of a text: their bytes and their tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SampleCount {
    pub bytes: usize,
    pub tokens: usize,
}

impl std::ops::Add for SampleCount {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            bytes: self.bytes + other.bytes,
            tokens: self.tokens + other.tokens,
        }
    }
}

/// The estimate for `text` from its counted samples: their tokens per byte, scaled.
pub(crate) fn scale_samples(text: &str, counted: SampleCount) -> TokenCount {
    let scaled = counted.tokens as f64 * text.len() as f64 / counted.bytes.max(1) as f64;
    TokenCount {
        tokens: scaled.round() as usize,
        estimated: true,
    }
}

/// About `len` bytes of `text` from the first line start at or after `from`, ending at a line end.
fn line_aligned(text: &str, from: usize, len: usize) -> &str {
    let bytes = text.as_bytes();
    let start = if from == 0 {
        0
    } else {
        memchr::memchr(b'\n', &bytes[from.min(bytes.len())..]).map_or(bytes.len(), |i| from + i + 1)
    };
    let want = (start + len).min(bytes.len());
    let end = memchr::memchr(b'\n', &bytes[want..]).map_or(bytes.len(), |i| want + i + 1);
    // Line ends and the text's ends are character boundaries; a line longer than the sample is
    // cut at the next one.
    let end = if end - start > 4 * len {
        let mut e = want;
        while !text.is_char_boundary(e) {
            e += 1;
        }
        e
    } else {
        end
    };
    &text[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_known_text() {
        assert_eq!(count_tokens("hello world", Encoding::O200kBase), 2);
        assert_eq!(count_tokens("hello world", Encoding::Cl100kBase), 2);
        assert_eq!(count_tokens("", Encoding::O200kBase), 0);
    }

    #[test]
    fn remembered_pieces_give_the_tokenizers_own_counts() {
        let texts = [
            "hello world\n".to_string(),
            "error[E0308]: mismatched types --> src/main.rs:4:18\n".repeat(3),
            "  \t déjà vu — naïve café 日本語のテキスト 🎉🎉 x=1;y=22;z=333\r\n".to_string(),
            (0..3000)
                .map(|i| format!("line {i} of {}\n", i * 7))
                .collect(),
            "a".repeat(100) + " " + &"b".repeat(30),
        ];
        for enc in [Encoding::O200kBase, Encoding::Cl100kBase] {
            // Twice: counted, then from what was remembered.
            for _ in 0..2 {
                for t in &texts {
                    assert_eq!(
                        count_tokens(t, enc),
                        tokenizer(enc).count(t.as_str()),
                        "{t:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_text_has_more_tokens_than_bytes() {
        // The bound the view's budget decides by before counting (`budget::Sink`): every line
        // and every whole output of the fixtures, and texts of few bytes a token.
        let mut texts: Vec<String> = crate::compact::tests::fixtures()
            .into_iter()
            .map(|(_, raw)| raw)
            .collect();
        let lines: Vec<String> = texts
            .iter()
            .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
            .collect();
        texts.extend(lines);
        texts.extend([
            " ".repeat(40),
            "\n\n\r\n\t".into(),
            "a b c d e f 1 2 3 ; ; ; é ü ß".into(),
            "🎉\u{1F600}\u{200B}\u{FEFF}x".into(),
            "\u{0}\u{7f}\u{85}".into(),
        ]);
        for enc in [Encoding::O200kBase, Encoding::Cl100kBase] {
            for t in &texts {
                assert!(count_tokens(t, enc) <= t.len(), "{enc:?} {t:?}");
            }
        }
    }

    #[test]
    fn small_texts_are_counted_exactly() {
        let text = "the quick brown fox jumps over the lazy dog\n".repeat(2000);
        let c = estimate_tokens(&text, Encoding::O200kBase);
        assert!(!c.estimated);
        assert_eq!(c.tokens, count_tokens(&text, Encoding::O200kBase));
    }

    #[test]
    fn large_texts_are_estimated_within_bound() {
        let mut text = String::new();
        let mut i = 0u64;
        while text.len() < 3 * EXACT_LIMIT {
            i += 1;
            text.push_str(&format!(
                "2024-05-01 10:00:{:02} INFO [w{}] job {i} done in {} ms\n",
                i % 60,
                i % 7,
                i % 97
            ));
        }
        let exact = count_tokens(&text, Encoding::O200kBase) as f64;
        let c = estimate_tokens(&text, Encoding::O200kBase);
        assert!(c.estimated);
        let err = (c.tokens as f64 - exact).abs() / exact;
        assert!(err < 0.05, "estimate {} vs {exact}: {err}", c.tokens);
    }

    #[test]
    fn samples_of_one_long_line_cut_on_char_boundaries() {
        let text = "é".repeat(EXACT_LIMIT);
        let c = estimate_tokens(&text, Encoding::O200kBase);
        assert!(c.estimated && c.tokens > 0);
    }
}
