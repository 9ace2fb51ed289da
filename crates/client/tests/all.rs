//! The client against a scripted peer on a temporary socket: the connection rules that a real
//! daemon does not break on demand (a handshake dropped by a dying daemon, a reader that lags).
//! The real daemon is driven through this client by the CLI's end-to-end tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
