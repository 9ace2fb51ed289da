//! The ai-session daemon: one process per user and label that owns every session and serves the
//! JSON-RPC protocol on a Unix socket. Clients come and go; sessions stay.
//!
//! `server` binds the socket and accepts connections from the socket owner's uid only;
//! `connection` frames requests and runs them concurrently; `dispatch` maps methods onto the
//! session library; `coord` maps `agent.*`, `bus.*`, `task.*` and `events.*` onto the
//! coordinator.

mod access;
mod audit;
mod connection;
mod context;
mod coord;
mod dispatch;
mod http;
mod peer;
mod persist;
mod server;

pub use persist::StoreOpenError;
pub use server::{Daemon, ServeError, serve, serve_with};
