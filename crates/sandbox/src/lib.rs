//! OS sandbox and tamper-evident audit log for ai-session sessions.
//!
//! The daemon calls [`probe`] once, then per session [`Sandbox::prepare`] in the parent
//! (all allocation and fallible planning) and [`Prepared::apply_in_child`] inside the
//! `pre_exec` closure that spawns the shell:
//!
//! ```no_run
//! use std::os::unix::process::CommandExt;
//! use std::sync::Arc;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let caps = ai_session_sandbox::probe();
//! let policy = ai_session_sandbox::Policy::load("default")?;
//! let workspace = std::path::Path::new("/srv/work");
//! let prepared = Arc::new(ai_session_sandbox::Sandbox::prepare(&policy, &caps, workspace)?);
//! for p in prepared.active() { println!("active: {p}"); }
//! for m in prepared.missing() { println!("NOT active: {m}"); }
//! let mut cmd = std::process::Command::new("/bin/sh");
//! cmd.current_dir(workspace);
//! let in_child = Arc::clone(&prepared);
//! // SAFETY: the closure runs between fork and exec and only calls async-signal-safe code.
//! unsafe {
//!     cmd.pre_exec(move || {
//!         // (the daemon's setsid() and TIOCSCTTY go here, first)
//!         // SAFETY: we are in the forked child, before exec.
//!         unsafe { in_child.apply_in_child() }.map_err(std::io::Error::from)
//!     });
//! }
//! let status = cmd.spawn()?.wait()?;
//! println!("{}", prepared.stop_reason(status).describe());
//! # Ok(()) }
//! ```

pub mod audit;
pub mod cgroup;
pub mod error;
pub mod landlock;
pub mod limits;
pub mod namespace;
pub mod policy;
pub mod probe;
pub mod risk;
pub mod seccomp;

mod sandbox;

pub use error::{ChildError, ChildStep, Error};
pub use limits::{LimitEvents, StopReason};
pub use namespace::Hidden;
pub use policy::{NetworkMode, Policy, PolicyError, SyscallGroup};
pub use probe::{Capabilities, probe};
pub use sandbox::{Prepared, Protection, Sandbox};
