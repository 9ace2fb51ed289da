//! Token-aware session context for ai-session: each session (and agent) keeps a history of the
//! commands it ran and the messages it was given, counted in real BPE tokens, compressed past a
//! threshold (sliding window, extractive summary, zstd archive with every entry retrievable),
//! and turned on demand into the best context that fits a token budget.
//!
//! ```
//! use ai_session_context::{ContextConfig, ExecRecord, Role, SessionContext};
//!
//! let mut ctx = SessionContext::new("build", ContextConfig::default())?;
//! ctx.add_message(Role::User, "make the tests pass", None)?;
//! ctx.record_exec(ExecRecord::new("cargo test", Some(101), "/w/p").output("test t ... FAILED\nerror: test failed"))?;
//! ctx.record_exec(ExecRecord::new("cargo test --features x", Some(0), "/w/p"))?;
//! let view = ctx.build(1_000, None)?;
//! assert!(view.tokens_used <= 1_000);
//! assert!(view.text.contains("`cargo test` needs `--features x`"));
//! let back = SessionContext::from_bytes(&ctx.to_bytes()?)?;
//! assert_eq!(back.build(1_000, None)?.text, view.text);
//! # Ok::<(), ai_session_context::ContextError>(())
//! ```

#![forbid(unsafe_code)]

pub mod agent;
pub mod archive;
pub mod config;
pub mod context;
pub mod entry;
pub mod error;
pub mod extract;
pub mod persist;
pub mod summary;
pub mod task;
pub mod view;
pub mod workspace;

pub use agent::{AgentState, LearnedPattern, PatternKind};
pub use ai_session_output::Encoding;
pub use archive::Archive;
pub use config::ContextConfig;
pub use context::{ContextStats, Failure, SessionContext};
pub use entry::{CommandRun, Entry, EntryBody, ExecRecord, Message, Role};
pub use error::ContextError;
pub use summary::{Extractive, Summarizer, Summary, SummaryLimits, SummaryLine};
pub use task::TaskContext;
pub use view::{ContextView, Form, Omitted, ViewEntry};
pub use workspace::{WorkspaceProbe, WorkspaceState, probe_workspace};
