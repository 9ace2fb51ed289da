//! The ai-session daemon: one process per user and label that owns every session and serves the
//! JSON-RPC protocol on a Unix socket. Clients come and go; sessions stay.
//!
//! `server` binds the socket and accepts connections from the socket owner's uid only;
//! `connection` frames requests and runs them concurrently; `service` owns every operation
//! (identity and capability from the protocol crate's registry, the method's service function,
//! the events its observers act on: `access` with the audit log, `context`, `persist`,
//! `telemetry`); `coord`
//! holds the coordination service functions; `http` is the HTTP, WebSocket and MCP front end.

mod access;
mod audit;
mod connection;
mod context;
mod coord;
mod hooks;
mod http;
mod peer;
mod persist;
mod server;
mod service;
mod telemetry;
mod worker;

pub use persist::StoreOpenError;
pub use server::{Daemon, ServeError, serve, serve_with};
