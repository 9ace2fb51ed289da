//! Capabilities on one session bound to its immutable id: how a granted capability is stored
//! (`session:exec:#ID`), how a request's target is resolved to the id of the session that has
//! the name now, and how the stored form is shown again (by the name it had when granted).

use std::collections::BTreeSet;

use ai_session_protocol::{ErrorKind, RpcError};

use super::{Access, Principal, Stored, check_capability};

/// Marks a stored capability's target as a session id: `session:exec:#ID`. A capability typed
/// by a user cannot hold it (see [`check_capability`]), so a bound target never collides with
/// a name.
pub(super) const BOUND: char = '#';

/// The live sessions a capability may name: `(id, name)` of the session called (or with the
/// id) `target`.
pub(crate) trait Sessions {
    fn find(&self, target: &str) -> Option<(String, String)>;
    /// The id of the session called `name` (names only: a request names its session).
    fn id_of(&self, name: &str) -> Option<String>;
}

impl Sessions for ai_session_core::SessionManager {
    fn find(&self, target: &str) -> Option<(String, String)> {
        ai_session_core::SessionManager::find(self, target)
    }
    fn id_of(&self, name: &str) -> Option<String> {
        ai_session_core::SessionManager::id_of(self, name)
    }
}

/// The parts of a capability that names one session: resource `session`, `snapshot` or `*`,
/// any action, a target that is not `*`.
pub(super) fn session_part(cap: &str) -> Option<(&str, &str, &str)> {
    let mut parts = cap.splitn(3, ':');
    let (resource, action, target) = (parts.next()?, parts.next()?, parts.next()?);
    (matches!(resource, "session" | "snapshot" | "*") && target != "*")
        .then_some((resource, action, target))
}

/// The session id a stored capability is bound to.
pub(super) fn bound_id(cap: &str) -> Option<&str> {
    session_part(cap)?.2.strip_prefix(BOUND)
}

/// The capability a request needs with its target session resolved to the id of the session
/// that has that name now (unchanged when no session has it: then only a wildcard covers it).
pub(super) fn resolve_need(need: &str, sessions: &dyn Sessions) -> String {
    match session_part(need) {
        Some((resource, action, target)) => match sessions.id_of(target) {
            Some(id) => format!("{resource}:{action}:{BOUND}{id}"),
            None => need.to_string(),
        },
        None => need.to_string(),
    }
}

impl Stored {
    /// A stored capability as the owner wrote it: a bound target shown by its session's name.
    pub(super) fn display(&self, cap: &str) -> String {
        match (session_part(cap), bound_id(cap)) {
            (Some((resource, action, _)), Some(id)) => {
                let name = self.session_names.get(id).map_or(id, String::as_str);
                format!("{resource}:{action}:{name}")
            }
            _ => cap.to_string(),
        }
    }

    /// Drops the names of sessions no capability is bound to any more.
    pub(super) fn prune_names(&mut self) {
        let used: BTreeSet<String> = self
            .grants
            .values()
            .flatten()
            .filter_map(|c| bound_id(c).map(str::to_owned))
            .collect();
        self.session_names.retain(|id, _| used.contains(id));
    }

    /// Capabilities an older daemon stored naming a session by its name (before grants were
    /// bound to ids): they could reach any later session with that name, so they are dropped
    /// at load, each logged. Snapshot capabilities naming an id are kept.
    pub(super) fn drop_name_bound(&mut self) -> bool {
        let mut dropped = false;
        for (principal, caps) in &mut self.grants {
            caps.retain(|cap| {
                let legacy = session_part(cap).is_some_and(|(resource, _, target)| {
                    resource != "snapshot" && !target.starts_with(BOUND)
                });
                if legacy {
                    tracing::warn!(
                        "dropping {principal}'s {cap}: it names a session by name, not by id; grant it again"
                    );
                    dropped = true;
                }
                !legacy
            });
        }
        dropped
    }
}

impl Access {
    /// A capability as stored: one naming a session bound to that session's id (with its name,
    /// for `access.list`). A session capability naming no live session is refused: there is
    /// nothing to bind it to, and a name alone would reach whichever session takes it later.
    /// A snapshot capability may also name a session that is gone or a snapshot, by id.
    pub(super) fn bind(
        cap: &str,
        sessions: &dyn Sessions,
    ) -> Result<(String, Option<(String, String)>), RpcError> {
        check_capability(cap)?;
        let Some((resource, action, target)) = session_part(cap) else {
            return Ok((cap.to_string(), None));
        };
        match sessions.find(target) {
            Some((id, name)) => Ok((format!("{resource}:{action}:{BOUND}{id}"), Some((id, name)))),
            None if resource == "snapshot" => Ok((cap.to_string(), None)),
            None => Err(RpcError::new(
                ErrorKind::SessionNotFound,
                format!(
                    "no session '{target}': a capability on a session is bound to that session's id when it is granted, so the session must exist"
                ),
            )
            .with_hint(format!(
                "create it first (`ai-session new -s {target}`), then grant; or grant {resource}:{action}:* for every session"
            ))),
        }
    }

    /// Gives `who` every capability on a session it just created (bound to its id).
    pub(crate) fn owns_session(&self, who: &Principal, id: &str, name: &str) {
        if let Some(key) = who.key() {
            {
                let mut state = self.state();
                state
                    .grants
                    .entry(key)
                    .or_default()
                    .insert(format!("session:*:{BOUND}{id}"));
                state.session_names.insert(id.to_string(), name.to_string());
            }
            self.save_logged();
        }
    }

    /// `access.grant` / `access.revoke`. A revoke names the capability as granted (or as
    /// `access ls` shows it: the session's name at grant time).
    pub(crate) fn set(
        &self,
        principal: &str,
        cap: &str,
        grant: bool,
        sessions: &dyn Sessions,
    ) -> Result<(), RpcError> {
        check_capability(cap)?;
        self.known(principal)?;
        {
            let mut state = self.state();
            if grant {
                let (stored, bound) = Self::bind(cap, sessions)?;
                if let Some((id, name)) = bound {
                    state.session_names.insert(id, name);
                }
                state
                    .grants
                    .entry(principal.to_string())
                    .or_default()
                    .insert(stored);
            } else {
                let bound = Self::bind(cap, sessions).ok().map(|(stored, _)| stored);
                let held: Vec<String> = state
                    .grants
                    .get(principal)
                    .into_iter()
                    .flatten()
                    .filter(|c| Some(*c) == bound.as_ref() || state.display(c) == cap)
                    .cloned()
                    .collect();
                if held.is_empty() {
                    return Err(RpcError::new(
                        ErrorKind::NotFound,
                        format!(
                            "{principal} does not hold {cap} (defaults cannot be revoked one by one)"
                        ),
                    )
                    .with_hint("`ai-session access ls` shows what each principal holds"));
                }
                if let Some(caps) = state.grants.get_mut(principal) {
                    caps.retain(|c| !held.contains(c));
                }
                state.prune_names();
            }
        }
        self.save()
            .map_err(|e| RpcError::new(ErrorKind::Internal, format!("saving access state: {e}")))
    }

    /// The session with id `id` is gone (killed): every session capability bound to it is
    /// revoked (it could reach nothing else: ids are never reused, so this is tidying, not the
    /// safety). Snapshot capabilities stay, as the snapshots do. Wildcards are kept.
    pub(crate) fn forget_session(&self, id: &str) {
        let names_it = |cap: &str| {
            bound_id(cap) == Some(id)
                && session_part(cap).is_some_and(|(resource, _, _)| resource != "snapshot")
        };
        let changed = {
            let mut state = self.state();
            let mut changed = false;
            for caps in state.grants.values_mut() {
                let before = caps.len();
                caps.retain(|c| !names_it(c));
                changed |= caps.len() != before;
            }
            state.prune_names();
            changed
        };
        if changed {
            self.save_logged();
        }
    }
}
