//! Sessions in a sandbox: the session's policy turned into kernel protections by the
//! `ai-session-sandbox` crate, applied in the child between fork and exec (see
//! `spawn::fork_spawn`).

use std::path::Path;
use std::sync::{Arc, LazyLock};

use ai_session_protocol::methods::SandboxInfo;
use ai_session_sandbox::{Capabilities, Policy, Prepared, Sandbox};

use crate::error::{Error, Result};

/// What this host's kernel offers, probed once (a few milliseconds) at the first sandboxed
/// session.
static CAPS: LazyLock<Capabilities> = LazyLock::new(ai_session_sandbox::probe);

/// The host's sandboxing capabilities.
pub fn capabilities() -> &'static Capabilities {
    &CAPS
}

/// A session's sandbox: the prepared kernel objects and the policy's name.
pub struct Sandboxed {
    pub prepared: Arc<Prepared>,
    pub policy: String,
}

/// Reads a policy given as a built-in profile name or as TOML text.
pub fn parse_policy(spec: &str) -> Result<(Policy, String)> {
    if let Some(policy) = Policy::profile(spec.trim()) {
        return Ok((policy, spec.trim().to_string()));
    }
    if !spec.contains('=') && !spec.contains('[') {
        return Err(Error::InvalidParams(format!(
            "unknown policy '{spec}': give a built-in profile ({}) or a policy file",
            ai_session_sandbox::policy::PROFILES.join(", ")
        )));
    }
    let policy = Policy::from_toml(spec, "(policy text)")
        .map_err(|e| Error::InvalidParams(e.to_string()))?;
    Ok((policy, "custom".to_string()))
}

/// Plans the sandbox for a session working in `cwd`. Fails when the policy is invalid or
/// cannot be enforced on this host and forbids degrading.
///
/// `daemon_dirs` are the daemon's files the shell must read whatever the policy says: its
/// integration hooks (rc files) and the session's directory (long commands are sourced from
/// files there). They must not lie under `/tmp` when the policy gives the session a private
/// `/tmp`, which would hide them.
///
/// `hidden` is the daemon's own state, covered in the session's mount namespace; the
/// `daemon_dirs` inside it are cloned back read-only.
pub fn prepare(
    spec: &str,
    cwd: &Path,
    daemon_dirs: &[&Path],
    hidden: &ai_session_sandbox::Hidden,
) -> Result<Sandboxed> {
    let (mut policy, name) = parse_policy(spec)?;
    for dir in daemon_dirs {
        if policy.fs.private_tmp && dir.starts_with("/tmp") {
            return Err(Error::InvalidParams(format!(
                "policy '{name}' gives the session a private /tmp, which hides the daemon's state directory {}: \
                 set AI_SESSION_HOME to a directory outside /tmp, or use a policy with private_tmp = false",
                dir.display()
            )));
        }
        policy.fs.read.push(dir.display().to_string());
    }
    if let Some(dir) = hidden.dirs.iter().find(|d| cwd.starts_with(d)) {
        return Err(Error::InvalidParams(format!(
            "the working directory {} is inside the daemon's state directory {}, which sandboxed \
             sessions cannot see: choose a workspace outside it (-c DIR)",
            cwd.display(),
            dir.display()
        )));
    }
    let mut hidden = hidden.clone();
    hidden.keep = daemon_dirs.iter().map(|d| d.to_path_buf()).collect();
    let prepared = Sandbox::prepare_hiding(&policy, capabilities(), cwd, &hidden)
        .map_err(|e| Error::InvalidParams(format!("policy '{name}': {e}")))?;
    Ok(Sandboxed {
        prepared: Arc::new(prepared),
        policy: name,
    })
}

/// The protections in force, for `ls` and the API.
pub fn info(sandbox: &Sandboxed) -> SandboxInfo {
    SandboxInfo {
        policy: sandbox.policy.clone(),
        active: sandbox
            .prepared
            .active()
            .iter()
            .map(ToString::to_string)
            .collect(),
        missing: sandbox.prepared.missing().to_vec(),
    }
}
