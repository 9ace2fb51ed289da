//! Integration tests of the coordination library: one binary, one module per concept.

// Helpers outside #[test] functions may unwrap too: this whole binary is test code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
