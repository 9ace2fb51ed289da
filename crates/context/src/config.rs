//! Per-session configuration: the token limit, when compression starts, the window, the tokenizer.

use ai_session_output::Encoding;
use serde::{Deserialize, Serialize};

use crate::ContextError;

/// How a context keeps its history within bounds. Every field is read: `max_tokens` and
/// `compression_threshold` decide when compression runs, `window_entries` how many recent
/// entries survive it in full, `encoding` how every token is counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContextConfig {
    /// The most tokens the live history (entries kept in full plus the summary) may hold.
    pub max_tokens: usize,
    /// Fraction of `max_tokens` at which older entries get compressed (0 < t <= 1).
    pub compression_threshold: f64,
    /// After compression, at most this many of the most recent entries stay in full.
    pub window_entries: usize,
    /// Tokenizer for every count.
    pub encoding: Encoding,
    /// zstd level for archive frames and `to_bytes`.
    pub zstd_level: i32,
    /// Most lines the running summary keeps (the lowest-value ones drop out; their entries stay
    /// in the archive).
    pub max_summary_lines: usize,
    /// Characters of an entry's output shown in its full form (head and tail, the rest elided
    /// with a pointer to the entry id).
    pub max_entry_chars: usize,
}

impl Default for ContextConfig {
    fn default() -> Self {
        Self {
            max_tokens: 32_000,
            compression_threshold: 0.8,
            window_entries: 64,
            encoding: Encoding::O200kBase,
            zstd_level: 3,
            max_summary_lines: 64,
            max_entry_chars: 2_000,
        }
    }
}

impl ContextConfig {
    /// Checks the values make sense.
    pub fn validate(&self) -> Result<(), ContextError> {
        if !(self.compression_threshold > 0.0 && self.compression_threshold <= 1.0) {
            return Err(ContextError::Config(format!(
                "compression_threshold {} must be in (0, 1]",
                self.compression_threshold
            )));
        }
        if self.max_tokens < 256 {
            return Err(ContextError::Config(format!(
                "max_tokens {} is below the minimum of 256",
                self.max_tokens
            )));
        }
        if self.window_entries == 0 {
            return Err(ContextError::Config(
                "window_entries must be at least 1".into(),
            ));
        }
        if !(1..=22).contains(&self.zstd_level) {
            return Err(ContextError::Config(format!(
                "zstd_level {} must be in 1..=22",
                self.zstd_level
            )));
        }
        Ok(())
    }

    /// The token count at which compression starts.
    pub fn threshold_tokens(&self) -> usize {
        (self.max_tokens as f64 * self.compression_threshold) as usize
    }

    /// The token count compression brings the history down to: 60% of the threshold, so that
    /// compression runs in batches rather than on every entry past the threshold.
    pub fn target_tokens(&self) -> usize {
        self.threshold_tokens() * 3 / 5
    }
}
