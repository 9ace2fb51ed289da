//! Who may do what: capabilities per principal, API tokens, and the audit trail of every
//! action.
//!
//! A capability is `resource:action[:target]`, each part a word or `*` (a trailing `*` also
//! matches any further parts): `session:exec:build`, `session:read:*`, `task:claim`, `*`.
//! Every method needs one (see [`required`]). Principals:
//!
//! - the **owner**: any client on the socket without a token (the socket is reachable only by
//!   the daemon's user, checked by peer credentials), and the HTTP server's own token: every
//!   capability;
//! - an **agent** (`hello` with the token `agent register` printed): least privilege, namely
//!   [`AGENT_DEFAULTS`] plus every capability on the sessions it creates;
//! - an **API token** (`access token --cap ...`): exactly the capabilities it was made with.
//!
//! A capability naming one session (`session:exec:deploy`, `snapshot:list:deploy`) is bound to
//! that session's immutable id when it is granted (stored as `session:exec:#ID`), and a check
//! resolves the name a request targets to the id of the session that has it now: a later
//! session reusing the name, however it came to be (created, imported, brought back by a
//! restart), holds another id and inherits nothing. A session capability for a name no live
//! session has is refused, since there is no session to bind it to.
//!
//! The owner grants and revokes capabilities at run time (`access grant|revoke`). API tokens
//! are `ais.<daemon id>.<token id>.<secret>`: the daemon id is random per state directory, so
//! a token shown to one daemon is refused by every other; only a SHA-256 of the secret is
//! stored (0600), compared in constant time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use ai_session_protocol::access::*;
use ai_session_protocol::hint::Advice;
use ai_session_protocol::registry::{Empty, MethodSpec};
use ai_session_protocol::{ErrorKind, RpcError};
use ai_session_sandbox::audit::{Actor, Record};

mod bind;

pub(crate) use bind::Sessions;
use bind::{BOUND, bound_id, resolve_need};

use crate::service::{Event, Observer, Reaction};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What an agent may do before anything is granted: start sessions (and then use them), see
/// the session list (filtered to its own), coordinate.
pub(crate) const AGENT_DEFAULTS: &[&str] = &[
    "session:create",
    "session:list",
    "agent:*",
    "bus:*",
    "events:*",
    "task:*",
    "decision:*",
];

tokio::task_local! {
    /// Who an HTTP request acts as, set by the HTTP server's token check for the request's
    /// whole handling.
    pub(crate) static HTTP_PRINCIPAL: Principal;
}

/// The principal of the HTTP request being handled (the owner's `Http` outside one).
pub(crate) fn http_principal() -> Principal {
    HTTP_PRINCIPAL
        .try_with(Clone::clone)
        .unwrap_or(Principal::Http)
}

/// Who is calling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Principal {
    #[default]
    Owner,
    /// The HTTP server's own token: the owner, recorded as such in the audit log.
    Http,
    Agent(u64),
    Token(String),
}

impl Principal {
    fn key(&self) -> Option<String> {
        match self {
            Principal::Owner | Principal::Http => None,
            Principal::Agent(id) => Some(format!("agent:{id}")),
            Principal::Token(id) => Some(format!("token:{id}")),
        }
    }

    fn actor(&self) -> Actor {
        match self {
            Principal::Owner => Actor::Owner,
            Principal::Http => Actor::HttpToken("http.token".into()),
            Principal::Agent(id) => Actor::Agent(id.to_string()),
            Principal::Token(id) => Actor::Token(id.clone()),
        }
    }
}

/// What `snapshot.list` without a target needs: some `snapshot:list:...` capability.
const SNAPSHOT_LIST_ANY: &str = "snapshot:list:*";

/// True when the capability pattern `have` covers `need`.
pub(crate) fn covers(have: &str, need: &str) -> bool {
    let mut h = have.split(':');
    let mut n = need.split(':');
    loop {
        match (h.next(), n.next()) {
            (None, None) => return true,
            (Some("*"), _) if h.clone().next().is_none() => return true,
            (Some(a), Some(b)) if a == "*" || a == b => {}
            _ => return false,
        }
    }
}

/// Checks a capability string's shape: 1 to 3 parts of `[a-z0-9_.-]` or `*`.
pub(crate) fn check_capability(cap: &str) -> Result<(), RpcError> {
    let parts: Vec<&str> = cap.split(':').collect();
    let ok = (1..=3).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && (*p == "*"
                    || p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        });
    if ok {
        Ok(())
    } else {
        Err(RpcError::new(
            ErrorKind::InvalidParams,
            format!("invalid capability '{cap}'"),
        )
        .with_hint("write resource:action[:target], each a word or *, e.g. session:exec:build or session:read:*"))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredToken {
    id: String,
    label: String,
    /// SHA-256 of the secret, hex.
    digest: String,
    created_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    daemon_id: String,
    tokens: Vec<StoredToken>,
    /// Capabilities by principal key (`agent:ID`, `token:ID`).
    grants: BTreeMap<String, BTreeSet<String>>,
    /// The sandbox policy (profile name or TOML) every session of a principal runs in.
    #[serde(default)]
    policies: BTreeMap<String, String>,
    /// One past the highest agent id any run of this daemon handed out.
    #[serde(default)]
    next_agent_id: u64,
    /// The name each session a capability is bound to had when it was granted, by id: what
    /// `access.list` shows beside the id.
    #[serde(default)]
    session_names: BTreeMap<String, String>,
}

/// Capabilities, tokens and the audit log of one daemon.
pub(crate) struct Access {
    file: PathBuf,
    state: Mutex<Stored>,
    audit: crate::audit::Trail,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn random_hex(bytes: usize) -> Result<String, RpcError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| RpcError::new(ErrorKind::Internal, format!("no randomness: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compared against when a token id is unknown: no secret hashes to it (not hex).
const UNKNOWN_DIGEST: &str = "unknown-token-unknown-token-unknown-token-unknown-token-unknown!";

fn denied(msg: String, advice: Advice) -> RpcError {
    RpcError::new(ErrorKind::PermissionDenied, msg).with_advice(advice)
}

/// What to do about a token that is not one of this daemon's, phrased by each front end.
fn exactly_as_issued() -> Advice {
    Advice::new("pass the token exactly as it was issued (tokens are made by {0})")
        .call("access.token", Value::Null)
}

/// The refusal of a capability `need` that `key` lacks: the owner can grant it.
fn lacks(key: &str, need: &str) -> RpcError {
    denied(
        format!("{key} lacks the capability {need}"),
        Advice::new("the daemon's owner can grant it: {0}").call(
            "access.grant",
            serde_json::json!({ "principal": key, "capability": need }),
        ),
    )
}

impl Access {
    /// Loads the daemon's access state (`access.json`, created with a fresh daemon id) and
    /// opens its audit log (a damaged one leaves the daemon refusing writes until it is
    /// repaired, see [`crate::audit`]); a damaged access file is an error naming it.
    pub(crate) fn open(data: &std::path::Path, audit_path: PathBuf) -> std::io::Result<Self> {
        let file = data.join("access.json");
        let (state, created) = match std::fs::read(&file) {
            Ok(bytes) => (
                serde_json::from_slice::<Stored>(&bytes).map_err(|e| {
                    std::io::Error::other(format!(
                        "{} is damaged ({e}); move it away to start with no tokens or grants",
                        file.display()
                    ))
                })?,
                false,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                Stored {
                    daemon_id: random_hex(8).map_err(|e| std::io::Error::other(e.message))?,
                    ..Stored::default()
                },
                true,
            ),
            Err(e) => return Err(e),
        };
        let mut state = state;
        let dropped = state.drop_name_bound();
        let access = Access {
            file,
            state: Mutex::new(state),
            audit: crate::audit::Trail::open(audit_path),
        };
        if created || dropped {
            // The daemon id must outlive this daemon: tokens are bound to it.
            access.save()?;
        }
        Ok(access)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Stored> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the state by temp file + rename, mode 0600.
    /// [`Access::save`] where the caller has already done its work and can only report a
    /// failure to persist it.
    fn save_logged(&self) {
        if let Err(e) = self.save() {
            tracing::warn!("saving access state: {e}");
        }
    }

    fn save(&self) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_vec_pretty(&*self.state()).map_err(std::io::Error::other)?;
        let tmp = self.file.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.file)
    }

    /// The principal a `hello` token names: an agent token (`ID.HEX`, checked by the
    /// coordinator) or an API token of this daemon.
    pub(crate) fn principal_for(
        &self,
        token: &str,
        coord: &ai_session_coord::Coordinator,
    ) -> Result<Principal, RpcError> {
        let token = token.trim();
        if let Some(rest) = token.strip_prefix("ais.") {
            let mut parts = rest.splitn(3, '.');
            let (daemon, id, secret) = match (parts.next(), parts.next(), parts.next()) {
                (Some(d), Some(i), Some(s)) => (d, i, s),
                _ => {
                    return Err(denied("malformed API token".into(), exactly_as_issued()));
                }
            };
            let state = self.state();
            if daemon != state.daemon_id {
                return Err(denied(
                    "this token was issued by another daemon".into(),
                    Advice::new("ask this daemon's owner for one of its tokens (made by {0})")
                        .call("access.token", Value::Null),
                ));
            }
            // The secret is hashed and compared whether or not the id exists, so the time an
            // answer takes does not tell an unknown id from a wrong secret.
            let found = state.tokens.iter().find(|t| t.id == id);
            let got = digest(secret);
            let want = found.map_or(UNKNOWN_DIGEST, |t| t.digest.as_str());
            let matches = bool::from(want.as_bytes().ct_eq(got.as_bytes()));
            if found.is_none() {
                return Err(denied(
                    format!("API token {id} is unknown or was revoked"),
                    Advice::new("ask the daemon's owner for a new token"),
                ));
            }
            if !matches {
                return Err(denied(
                    format!("wrong secret for API token {id}"),
                    exactly_as_issued(),
                ));
            }
            return Ok(Principal::Token(id.to_string()));
        }
        let auth = crate::coord::parse_token(token)?;
        coord.heartbeat(&auth).map_err(crate::coord::coord_error)?;
        Ok(Principal::Agent(auth.agent.0))
    }

    /// Allows or refuses `method` for `who`; a refusal names the missing capability. A
    /// request that would change something is also refused while the audit log cannot be
    /// written (see [`crate::audit`]).
    /// The target session is resolved by name to its id now: a capability bound to another
    /// session of the same name does not cover it.
    pub(crate) fn check(
        &self,
        who: &Principal,
        spec: &MethodSpec,
        params: &Value,
        sessions: &dyn Sessions,
    ) -> Result<(), RpcError> {
        if let (Some(need), Some(key)) = (spec.capability(params), who.key()) {
            // The owner (no key) holds every capability.
            let held = if need == SNAPSHOT_LIST_ANY {
                // Listing every session's snapshots: allowed to anyone who may list some, the
                // answer then filtered to those sessions (`may_list_snapshots`).
                self.holds_any(who, &key, "snapshot", "list")
            } else {
                self.holds(who, &key, &resolve_need(&need, sessions))
            };
            if !held {
                return Err(lacks(&key, &need));
            }
        }
        self.audit.gate(spec.audit.effect)
    }

    /// True when one of `who`'s capabilities covers `resource:action:T` for some target T.
    fn holds_any(&self, who: &Principal, key: &str, resource: &str, action: &str) -> bool {
        let some_target = |have: &str| {
            let p: Vec<&str> = have.split(':').collect();
            let part = |i: usize, want: &str| p.get(i).is_some_and(|x| *x == "*" || *x == want);
            match p.len() {
                1 => p[0] == "*",
                // A trailing `*` matches every further part.
                2 => part(0, resource) && p[1] == "*",
                _ => part(0, resource) && part(1, action),
            }
        };
        let defaults =
            matches!(who, Principal::Agent(_)) && AGENT_DEFAULTS.iter().any(|h| some_target(h));
        defaults
            || self
                .state()
                .grants
                .get(key)
                .is_some_and(|caps| caps.iter().any(|h| some_target(h)))
    }

    /// True when `who` holds `snapshot:ACTION:X` for X the session's id (bound when granted
    /// on the live session, or written as the id) or the snapshot's own id: snapshot
    /// capabilities are per session (or per snapshot), never per name.
    pub(crate) fn may_snapshot(
        &self,
        who: &Principal,
        action: &str,
        session_id: &str,
        snapshot_id: Option<&str>,
    ) -> bool {
        let Some(key) = who.key() else {
            return true;
        };
        let bound = format!("{BOUND}{session_id}");
        [Some(bound.as_str()), Some(session_id), snapshot_id]
            .into_iter()
            .flatten()
            .any(|t| self.holds(who, &key, &format!("snapshot:{action}:{t}")))
    }

    /// The refusal for a snapshot action on `target`.
    pub(crate) fn snapshot_denied(&self, who: &Principal, action: &str, target: &str) -> RpcError {
        let key = who.key().unwrap_or_default();
        lacks(&key, &format!("snapshot:{action}:{target}"))
    }

    fn holds(&self, who: &Principal, key: &str, need: &str) -> bool {
        let defaults = matches!(who, Principal::Agent(_))
            && AGENT_DEFAULTS.iter().any(|have| covers(have, need));
        defaults
            || self
                .state()
                .grants
                .get(key)
                .is_some_and(|caps| caps.iter().any(|have| covers(have, need)))
    }

    /// True when `who` may read the session with id `id` (for filtering `session.list`).
    pub(crate) fn may_read(&self, who: &Principal, id: &str) -> bool {
        match who.key() {
            None => true,
            Some(key) => self.holds(who, &key, &format!("session:read:{BOUND}{id}")),
        }
    }

    /// The policy every session of `who` must run in, if one is bound to it.
    pub(crate) fn policy_of(&self, who: &Principal) -> Option<String> {
        let key = who.key()?;
        self.state().policies.get(&key).cloned()
    }

    /// The sandbox a session started by `who` runs in, given the policy it `asked` for: the
    /// policy bound to the principal whatever it asks; for the owner, what it asks (none:
    /// unconfined); for anyone else at least `isolated`, so a session an agent or a token
    /// starts can never reach the daemon (every sandbox hides it) and act as the owner.
    fn session_policy(&self, who: &Principal, asked: Option<String>) -> Option<String> {
        if let Some(bound) = self.policy_of(who) {
            return Some(bound);
        }
        match who {
            Principal::Owner | Principal::Http => asked,
            Principal::Agent(_) | Principal::Token(_) => {
                Some(asked.unwrap_or_else(|| "isolated".to_string()))
            }
        }
    }

    /// The id the next daemon run's first agent gets: past every id handed out before and
    /// every agent named in a grant or a policy.
    pub(crate) fn first_agent_id(&self) -> u64 {
        let state = self.state();
        let named = state
            .grants
            .keys()
            .chain(state.policies.keys())
            .filter_map(|k| k.strip_prefix("agent:")?.parse::<u64>().ok())
            .max()
            .map_or(1, |id| id + 1);
        named.max(state.next_agent_id).max(1)
    }

    /// An agent was registered: its id is never handed out again.
    pub(crate) fn agent_registered(&self, id: u64) {
        {
            let mut state = self.state();
            if state.next_agent_id > id {
                return;
            }
            state.next_agent_id = id + 1;
        }
        self.save_logged();
    }

    /// An agent left for good: its grants and bound policy go with it.
    pub(crate) fn forget_agent(&self, id: u64) {
        let key = format!("agent:{id}");
        let changed = {
            let mut state = self.state();
            let grants = state.grants.remove(&key).is_some();
            state.policies.remove(&key).is_some() || grants
        };
        if changed {
            self.save_logged();
        }
    }

    /// The policy of a session `who` starts in `cwd`, checked: for anyone but the owner the
    /// workspace must be one the policy allows and never `/`, the home directory or the
    /// daemon's state (its `run/` and `servers/`). The error names what is allowed.
    pub(crate) fn sandbox_for(
        &self,
        who: &Principal,
        asked: Option<String>,
        cwd: Option<&str>,
        paths: &ai_session_core::paths::Paths,
    ) -> Result<Option<String>, RpcError> {
        let policy = self.session_policy(who, asked);
        let (Principal::Agent(_) | Principal::Token(_), Some(spec)) = (who, &policy) else {
            return Ok(policy);
        };
        let (parsed, _) = ai_session_core::sandbox::parse_policy(spec).map_err(|e| e.to_rpc())?;
        let cwd = match cwd {
            Some(dir) => PathBuf::from(dir),
            None => std::env::current_dir().map_err(|e| {
                RpcError::new(ErrorKind::Internal, format!("no working directory: {e}"))
            })?,
        };
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let (run, servers) = (paths.home.join("run"), paths.home.join("servers"));
        let state = [run.as_path(), servers.as_path(), paths.data.as_path()];
        parsed
            .check_workspace(&cwd, home.as_deref(), &state)
            .map_err(|e| RpcError::new(ErrorKind::PermissionDenied, e))?;
        Ok(policy)
    }

    /// The sandbox a saved session comes back in for `who` (a restore, an import, a lost
    /// session brought back on this node): the policy its record keeps, `saved`, held to the
    /// rules of `who`'s own sessions as [`Self::sandbox_for`] holds a new one, with the record's
    /// `workspace`. A session never comes back looser than it ran: a principal bound to a
    /// policy brings back a sandboxed session only when it ran in that same policy.
    pub(crate) fn sandbox_for_saved(
        &self,
        who: &Principal,
        saved: Option<&str>,
        workspace: &str,
        paths: &ai_session_core::paths::Paths,
    ) -> Result<Option<String>, RpcError> {
        let policy = self.sandbox_for(who, saved.map(str::to_owned), Some(workspace), paths)?;
        match (saved, &policy) {
            (Some(ran), Some(bound)) if ran.trim() != bound.trim() => Err(RpcError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "the session ran in sandbox policy {}, and the sessions of {} are bound to policy {}: it cannot come back in either",
                    policy_name(ran),
                    who.key().unwrap_or_default(),
                    policy_name(bound)
                ),
            )
            .with_hint(
                "the daemon's owner can bring it back (in the policy it ran in), or bind this principal to that policy (`ai-session access policy`)",
            )),
            _ => Ok(policy),
        }
    }

    /// `access.policy`: binds a sandbox policy to a principal (or unbinds it with `None`).
    pub(crate) fn set_policy(&self, principal: &str, policy: Option<&str>) -> Result<(), RpcError> {
        self.known(principal)?;
        if let Some(p) = policy {
            ai_session_core::sandbox::parse_policy(p).map_err(|e| e.to_rpc())?;
        }
        {
            let mut state = self.state();
            match policy {
                Some(p) => state.policies.insert(principal.to_string(), p.to_string()),
                None => state.policies.remove(principal),
            };
        }
        self.save()
            .map_err(|e| RpcError::new(ErrorKind::Internal, format!("saving access state: {e}")))
    }

    fn known(&self, principal: &str) -> Result<(), RpcError> {
        let known = principal
            .strip_prefix("agent:")
            .map(|id| id.parse::<u64>().is_ok())
            .or_else(|| {
                principal
                    .strip_prefix("token:")
                    .map(|id| self.state().tokens.iter().any(|t| t.id == id))
            })
            .unwrap_or(false);
        if known {
            Ok(())
        } else {
            Err(RpcError::new(
                ErrorKind::NotFound,
                format!("unknown principal '{principal}'"),
            )
            .with_hint(
                "write agent:ID (`ai-session agent ls`) or token:ID (`ai-session access ls`)",
            ))
        }
    }

    /// `access.token`: a new API token with exactly `caps`.
    pub(crate) fn create_token(
        &self,
        label: &str,
        caps: &[String],
        sessions: &dyn Sessions,
    ) -> Result<(String, String), RpcError> {
        let mut stored = BTreeSet::new();
        let mut names = Vec::new();
        for cap in caps {
            let (cap, bound) = Self::bind(cap, sessions)?;
            stored.insert(cap);
            names.extend(bound);
        }
        let id = random_hex(4)?;
        let secret = random_hex(32)?;
        let daemon_id = {
            let mut state = self.state();
            state.session_names.extend(names);
            state.tokens.push(StoredToken {
                id: id.clone(),
                label: label.to_string(),
                digest: digest(&secret),
                created_ms: now_ms(),
            });
            state.grants.insert(format!("token:{id}"), stored);
            state.daemon_id.clone()
        };
        self.save()
            .map_err(|e| RpcError::new(ErrorKind::Internal, format!("saving access state: {e}")))?;
        Ok((id.clone(), format!("ais.{daemon_id}.{id}.{secret}")))
    }

    /// `access.revoke_token`: the token stops working at once.
    pub(crate) fn revoke_token(&self, id: &str) -> Result<(), RpcError> {
        {
            let mut state = self.state();
            let before = state.tokens.len();
            state.tokens.retain(|t| t.id != id);
            if state.tokens.len() == before {
                return Err(
                    RpcError::new(ErrorKind::NotFound, format!("no API token {id}"))
                        .with_hint("`ai-session access ls` lists the tokens"),
                );
            }
            state.grants.remove(&format!("token:{id}"));
            state.policies.remove(&format!("token:{id}"));
        }
        self.save()
            .map_err(|e| RpcError::new(ErrorKind::Internal, format!("saving access state: {e}")))
    }

    /// `access.list`: every principal with explicit grants, and every token.
    pub(crate) fn list(&self) -> Vec<PrincipalInfo> {
        let state = self.state();
        let policy = |key: &str| {
            state.policies.get(key).map(|p| {
                if ai_session_sandbox::Policy::profile(p).is_some() {
                    p.clone()
                } else {
                    "custom".to_string()
                }
            })
        };
        let granted = |key: &str| -> (Vec<String>, Vec<BoundCapability>) {
            let caps = state.grants.get(key).into_iter().flatten();
            let shown = caps.clone().map(|c| state.display(c)).collect();
            let bound = caps
                .filter_map(|c| {
                    let id = bound_id(c)?;
                    Some(BoundCapability {
                        capability: state.display(c),
                        session: state.session_names.get(id).cloned().unwrap_or_default(),
                        session_id: id.to_string(),
                    })
                })
                .collect();
            (shown, bound)
        };
        let mut out: Vec<PrincipalInfo> = state
            .tokens
            .iter()
            .map(|t| {
                let key = format!("token:{}", t.id);
                let (capabilities, sessions) = granted(&key);
                PrincipalInfo {
                    label: Some(t.label.clone()),
                    capabilities,
                    sessions,
                    policy: policy(&key),
                    principal: key,
                }
            })
            .collect();
        let agents: BTreeSet<&String> = state
            .grants
            .keys()
            .chain(state.policies.keys())
            .filter(|k| k.starts_with("agent:"))
            .collect();
        for key in agents {
            let mut all: Vec<String> = AGENT_DEFAULTS.iter().map(|s| s.to_string()).collect();
            let (capabilities, sessions) = granted(key);
            all.extend(capabilities);
            out.push(PrincipalInfo {
                principal: key.clone(),
                label: None,
                capabilities: all,
                sessions,
                policy: policy(key),
            });
        }
        out
    }

    /// Appends a record (a daemon event such as a limit hit). One `write`, no fsync on the
    /// request's path: [`Access::sync_audit`] runs every second and at shutdown.
    pub(crate) fn record(&self, record: Record) {
        self.audit.record(record);
    }

    /// The once-a-second audit work (file check, fsync, signed head).
    pub(crate) fn sync_audit(&self) {
        self.audit.sync();
    }

    /// Lets go of the audit log for a handover (see `Trail::hand_over`).
    pub(crate) fn hand_over_audit(&self) -> Option<ai_session_sandbox::audit::AuditLog> {
        self.audit.hand_over()
    }

    /// Opens entry `seq`'s sealed detail with this daemon's key; `None` without a passphrase
    /// or when it was sealed under another one.
    pub(crate) fn open_audit_detail(&self, seq: u64, detail: &str) -> Option<Option<String>> {
        self.audit.open_detail(seq, detail)
    }

    /// Takes the audit log back after a handover that failed.
    pub(crate) fn take_back_audit(&self, log: Option<ai_session_sandbox::audit::AuditLog>) {
        self.audit.take_back(log);
    }

    /// The audit log's health, for `daemon.status`.
    pub(crate) fn audit_status(&self) -> ai_session_protocol::methods::AuditStatus {
        self.audit.status()
    }

    /// An HTTP request refused for want of valid credentials (rate-limited in the log).
    pub(crate) fn audit_unauthorized(&self, detail: String) {
        self.audit.unauthorized(detail);
    }
}

impl Access {
    /// `access.grant` (`grant`) and `access.revoke`.
    pub(crate) fn grant(
        &self,
        p: GrantParams,
        grant: bool,
        sessions: &dyn Sessions,
    ) -> Result<Empty, RpcError> {
        self.set(&p.principal, &p.capability, grant, sessions)?;
        Ok(Empty {})
    }

    /// `access.token`.
    pub(crate) fn token(
        &self,
        p: TokenParams,
        sessions: &dyn Sessions,
    ) -> Result<TokenResult, RpcError> {
        if p.capabilities.is_empty() {
            return Err(RpcError::new(
                ErrorKind::InvalidParams,
                "a token needs at least one capability",
            )
            .with_hint("for example --cap session:read:* --cap session:exec:build"));
        }
        if let Some(policy) = &p.policy {
            ai_session_core::sandbox::parse_policy(policy).map_err(|e| e.to_rpc())?;
        }
        let (id, token) = self.create_token(&p.label, &p.capabilities, sessions)?;
        if p.policy.is_some() {
            self.set_policy(&format!("token:{id}"), p.policy.as_deref())?;
        }
        Ok(TokenResult {
            principal: format!("token:{id}"),
            id,
            token,
            capabilities: p.capabilities,
        })
    }

    /// `access.policy`.
    pub(crate) fn policy(&self, p: PolicyParams) -> Result<Empty, RpcError> {
        self.set_policy(&p.principal, p.policy.as_deref())?;
        Ok(Empty {})
    }

    /// `access.revoke_token`.
    pub(crate) fn revoke_token_call(&self, p: RevokeTokenParams) -> Result<Empty, RpcError> {
        self.revoke_token(&p.id)?;
        Ok(Empty {})
    }

    /// `access.list`.
    pub(crate) fn list_all(&self) -> AccessListResult {
        AccessListResult {
            agent_defaults: AGENT_DEFAULTS.iter().map(|s| s.to_string()).collect(),
            principals: self.list(),
        }
    }

    /// `audit.repair`.
    pub(crate) fn repair_audit(
        &self,
        who: &Principal,
    ) -> Result<ai_session_protocol::methods::AuditRepairResult, RpcError> {
        self.audit.repair(who.actor())
    }

    /// The audit trail of one handled request: refused and failed ones always, successful
    /// ones unless the method is a quiet read. The registry says what the detail holds.
    fn audit(&self, event: &Event<'_>) -> Option<String> {
        let Event::Handled {
            who,
            spec,
            method,
            detail,
            session,
            session_id,
            result,
            ..
        } = *event
        else {
            return None;
        };
        if result.is_ok() && spec.is_some_and(|s| s.audit.quiet) {
            return None;
        }
        let ok = result.as_ref().ok();
        // A snapshot's result names its session's stable record id.
        let session_id = session_id.map(str::to_owned).or_else(|| {
            method
                .starts_with("snapshot.")
                .then(|| ok?.get("session")?.as_str().map(str::to_owned))
                .flatten()
        });
        let result_word = match result {
            Ok(v) => match v.get("exit_code").and_then(Value::as_i64) {
                Some(code) => format!("ok (exit {code})"),
                None => "ok".into(),
            },
            Err(e) if e.kind() == Some(ErrorKind::PermissionDenied) => "denied".into(),
            Err(e) => format!("error: {}", e.message),
        };
        self.audit.record(Record {
            actor: who.actor(),
            session: session.map(str::to_owned),
            session_id,
            action: method.to_string(),
            detail: detail.to_string(),
            result: result_word,
            policy_bound: self.policy_of(who).is_some(),
        })
    }
}

impl Observer for Access {
    fn observe(&self, event: &Event<'_>) -> Reaction {
        match event {
            Event::SessionCreated { info, by, .. } => {
                // A new session under an old name has a new id: nothing granted on the old
                // one is bound to it.
                self.owns_session(by, &info.id, &info.name);
                Reaction::default()
            }
            Event::SessionKilled { id, .. } => {
                if let Some(id) = id {
                    self.forget_session(id);
                }
                Reaction::default()
            }
            Event::AgentLeft { agent } => {
                self.forget_agent(*agent);
                Reaction::default()
            }
            Event::Handled { .. } => Reaction::warning(self.audit(event)),
            Event::ExecFinished { .. } => Reaction::default(),
        }
    }
}

/// How a policy is named in a message: a built-in profile by its name, a policy file as such.
fn policy_name(spec: &str) -> String {
    match ai_session_core::sandbox::parse_policy(spec) {
        Ok((_, name)) if name != "custom" => format!("'{name}'"),
        _ => "(a policy file)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ai_session_protocol::registry::spec;

    #[test]
    fn patterns_cover_what_they_should() {
        assert!(covers("*", "session:exec:a"));
        assert!(covers("session:*", "session:exec:a"));
        assert!(covers("session:exec:*", "session:exec:a"));
        assert!(covers("session:*:a", "session:exec:a"));
        assert!(!covers("session:*:a", "session:exec:b"));
        assert!(!covers("session:read:*", "session:exec:a"));
        assert!(covers("task:claim", "task:claim"));
        assert!(!covers("task:claim", "task:submit"));
        assert!(!covers("session:exec", "session:exec:a"));
        assert_eq!(
            spec("session.exec")
                .and_then(|s| s.capability(&serde_json::json!({"target": "x"})))
                .as_deref(),
            Some("session:exec:x")
        );
        assert_eq!(
            spec("task.claim")
                .and_then(|s| s.capability(&Value::Null))
                .as_deref(),
            Some("task:claim")
        );
        assert!(check_capability("session:exec:build-1").is_ok());
        assert!(check_capability("session::x").is_err());
        assert!(check_capability("a:b:c:d").is_err());
        assert_eq!(
            spec("snapshot.create")
                .and_then(|s| s.capability(&serde_json::json!({"target": "a"})))
                .as_deref(),
            Some("snapshot:create:a")
        );
        assert_eq!(
            spec("snapshot.restore")
                .and_then(|s| s.capability(&serde_json::json!({"snapshot": "x"})))
                .as_deref(),
            Some("session:create")
        );
    }
}
