//! Integration tests of the context library (one test binary, modules under `suite/`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/fixture.rs"]
mod fixture;
mod suite;
