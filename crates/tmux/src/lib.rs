//! tmux's command line over the ai-session daemon, for programs written against tmux (libtmux,
//! tmux-mcp, Terminal-Bench harnesses): `ai-session tmux ARGS`, or the binary run as `tmux`.
//!
//! A tmux session is a group of daemon sessions, one per pane, named `NAME.WINDOW.SLOT`
//! ([`name`]); what tmux knows beyond the daemon (ids, window names, pane geometry, options,
//! environments, wait-for channels) is kept in a small state file beside the daemon's state
//! ([`state`]), reconciled with the daemon's session list on every command ([`server`]).
//! Formats ([`format`], [`vars`]), targets ([`target`]), argument rules ([`args`]) and exit
//! statuses follow tmux 3.3a; `docs/tmux.md` lists every command and what is left out.
//! [`migrate`] copies the panes of a running real tmux server into daemon sessions.

#![forbid(unsafe_code)]
// Output goes through `out!`/`outln!`/`err!`/`errln!` (`out.rs`), which end quietly on a closed
// pipe.
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod out;

pub mod args;
mod cmd;
pub mod error;
pub mod format;
pub mod migrate;
pub mod name;
pub mod options;
pub mod server;
pub mod state;
pub mod target;
pub mod vars;

pub use cmd::run;
pub use error::TmuxError;

/// The tmux version whose commands, formats and messages this layer follows (`tmux -V`).
pub const VERSION: &str = "3.3a";
