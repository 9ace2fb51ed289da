//! End-to-end tests: the real `ai-session` binary, a real daemon on a temporary socket, real
//! shells in real PTYs.

mod suite;
