//! Persistence layer for ai-session (work in progress).
