//! Test suite modules and shared helpers.

mod attacker;
mod audit_log;
mod common;
mod escapes;
mod limits;
mod probe;
