//! End-to-end tests: the real `ai-session` binary, a real daemon on a temporary socket, real
//! shells in real PTYs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod suite;
