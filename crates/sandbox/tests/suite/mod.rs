//! Test suite modules and shared helpers.

mod attacker;
mod audit_log;
mod audit_segments;
mod common;
mod escapes;
mod limits;
mod probe;
