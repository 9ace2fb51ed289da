//! The ai-session daemon: one process per user and label that owns every session and serves the
//! JSON-RPC protocol on a Unix socket. Clients come and go; sessions stay.
//!
//! `server` binds the socket and accepts connections from the socket owner's uid only;
//! `connection` frames requests and runs them concurrently; `service` owns every operation
//! (identity and capability from the protocol crate's registry, the method's service function,
//! the events its observers act on: `access` with the audit log, `context`, `persist`,
//! `telemetry`); `coord`
//! holds the coordination service functions; `http` is the HTTP, WebSocket and MCP front end;
//! `cluster` joins a cluster of daemons over NATS when `daemon run --cluster` asks for one.

mod access;
mod audit;
mod cluster;
mod connection;
mod context;
mod coord;
mod hooks;
mod http;
mod order;
mod peer;
mod persist;
mod placement;
mod server;
mod service;
mod telemetry;
mod upgrade;
mod worker;

pub use ai_session_cluster::default_node_name;
pub use cluster::Join as ClusterJoin;
pub use persist::StoreOpenError;
pub use server::{Daemon, ServeError, serve, serve_adopting, serve_in, serve_with};
pub use upgrade::reap;
