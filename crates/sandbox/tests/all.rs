//! Integration tests: real sandboxed child processes attempting real escapes.

// Test code: panicking on an unexpected error is the point.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
