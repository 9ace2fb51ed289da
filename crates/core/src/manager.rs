//! The set of sessions: creating them (name, program, environment, hooks), finding them by
//! name, listing and killing them. Works in-process without the daemon.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::mpsc;

use crate::actor::{Actor, Identity, Life, Output, Pty, now_ms};
use crate::error::{Error, Result};
use crate::integration::{ExternalIntegration, IntegrationError, IntegrationEvent, Integrations};
use crate::log::{DEFAULT_LOG_BYTES, LogKey, OutputLog};
use crate::pty::{self, SpawnSpec};
use crate::screen::{DEFAULT_SCROLLBACK, Screen};
use crate::session::SessionHandle;
use crate::shell::{Hooks, ShellKind};
use crate::tracker::{CommandTracker, Setup};
use ai_session_protocol::methods::{Integration, NewParams, SessionInfo, SessionState};

mod upgrade;

/// Settings for a [`SessionManager`].
/// Variables that hold the daemon's or a client's secrets (the store's passphrase, agent and
/// API tokens): a session never inherits them from the environment it is started with, only
/// when they are passed explicitly (`new -e`), so a command in it cannot read them.
pub const SECRET_VARS: &[&str] = &[
    "AI_SESSION_PASSPHRASE",
    "AI_SESSION_TOKEN",
    "AI_SESSION_AGENT_TOKEN",
    "AI_SESSION_STORE_CRASH_PASS",
];

/// Pager settings of new sessions: a command's output goes to the session, never into a pager
/// that waits for keys. Each applies only when the caller's environment or `-e` does not set
/// the variable.
pub const DEFAULT_PAGERS: &[(&str, &str)] = &[
    ("PAGER", "cat"),
    ("GIT_PAGER", "cat"),
    ("MANPAGER", "cat"),
    ("SYSTEMD_PAGER", ""),
];

/// Sets each of [`DEFAULT_PAGERS`] that `env` does not set.
pub fn default_pagers(env: &mut BTreeMap<String, String>) {
    for (var, value) in DEFAULT_PAGERS {
        env.entry((*var).to_owned())
            .or_insert_with(|| (*value).to_owned());
    }
}

/// Removes [`SECRET_VARS`] from an inherited environment.
pub fn strip_secrets(env: &mut BTreeMap<String, String>) {
    for var in SECRET_VARS {
        env.remove(*var);
    }
}

#[derive(Debug, Clone)]
pub struct ManagerConfig {
    /// Where session logs and the shell hooks live.
    pub data_dir: PathBuf,
    /// Bound on each session's output log.
    pub log_bytes: u64,
    /// Scrollback lines of each session's emulator.
    pub scrollback: usize,
    /// The daemon's state directories and socket, covered in every sandboxed session's
    /// mount namespace (the hook scripts and the session's own directory stay visible).
    pub hidden: ai_session_sandbox::Hidden,
    /// Seals every session's output log under this key (see `log`); `None` writes it in
    /// clear. The daemon sets one when the store is encrypted.
    pub log_key: Option<LogKey>,
    /// Variables every new session gets over the caller's environment and under its own
    /// `set_env` (the configuration file's `[session] env`).
    pub session_env: BTreeMap<String, String>,
    /// Apply [`DEFAULT_PAGERS`] to new sessions (`[session] no_pager`, true by default).
    pub no_pager: bool,
}

impl ManagerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            log_bytes: DEFAULT_LOG_BYTES,
            scrollback: DEFAULT_SCROLLBACK,
            hidden: ai_session_sandbox::Hidden::default(),
            log_key: None,
            session_env: BTreeMap::new(),
            no_pager: true,
        }
    }
}

struct Inner {
    config: ManagerConfig,
    hooks: Hooks,
    sessions: Mutex<BTreeMap<String, SessionHandle>>,
    /// Session ids (the shells' pids) of live sessions by name, for shutdown.
    pids: Mutex<BTreeMap<String, i32>>,
    /// Every session's state changes.
    state_tx: tokio::sync::broadcast::Sender<crate::session::StateChange>,
    /// The heap-trimming task has been started (on the first session, inside the runtime).
    trimming: std::sync::atomic::AtomicBool,
    /// Sessions whose output log cannot be written, with why; kept by their actors.
    degraded: Degraded,
    /// Exit statuses of adopted sessions' programs, reported by the previous daemon's reaper.
    reaped: crate::handover::Reaped,
    /// Code told of sessions created and ended and of commands finished.
    integrations: Integrations,
    /// Session directories made ahead of time.
    spares: Arc<crate::spare::Spares>,
}

/// Sessions whose output log cannot be written right now, by name, with why. Each actor
/// updates its own entry when its log fails and when it recovers (rarely, so the lock is
/// never contended); `daemon.status` reads it without a round trip to every session.
pub(crate) type Degraded = Arc<Mutex<BTreeMap<String, String>>>;

/// Owns every session. Cheap to clone; all clones see the same sessions.
#[derive(Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

impl SessionManager {
    pub fn new(config: ManagerConfig) -> Result<Self> {
        std::fs::create_dir_all(config.data_dir.join("sessions"))?;
        let hooks = Hooks::install(&config.data_dir.join("shell"))?;
        let spares = Arc::new(crate::spare::Spares::new(&config.data_dir.join("sessions")));
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                hooks,
                sessions: Mutex::new(BTreeMap::new()),
                pids: Mutex::default(),
                trimming: std::sync::atomic::AtomicBool::new(false),
                degraded: Degraded::default(),
                reaped: crate::handover::Reaped::default(),
                state_tx: tokio::sync::broadcast::channel(4096).0,
                integrations: Integrations::default(),
                spares,
            }),
        })
    }

    fn sessions(&self) -> MutexGuard<'_, BTreeMap<String, SessionHandle>> {
        // A panic while holding this lock cannot leave the map half-updated (every update is a
        // single insert or remove), so a poisoned lock is still safe to use.
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn names(&self) -> Vec<String> {
        self.sessions().keys().cloned().collect()
    }

    /// Sessions whose output log is missing output right now (a full or failing disk).
    pub fn degraded(&self) -> Vec<ai_session_protocol::methods::DegradedSession> {
        let degraded = self
            .inner
            .degraded
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        degraded
            .iter()
            .map(
                |(session, reason)| ai_session_protocol::methods::DegradedSession {
                    session: session.clone(),
                    reason: reason.clone(),
                },
            )
            .collect()
    }

    pub fn len(&self) -> usize {
        self.sessions().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session called `name`.
    pub fn get(&self, name: &str) -> Result<SessionHandle> {
        let sessions = self.sessions();
        sessions.get(name).cloned().ok_or_else(|| Error::NotFound {
            name: name.to_owned(),
            existing: sessions.keys().cloned().collect(),
        })
    }

    /// The session called `name`, provided it is still the one with id `id` (the one a request
    /// was checked against): a session created since under the same name is [`Error::Replaced`].
    pub fn get_exact(&self, name: &str, id: &str) -> Result<SessionHandle> {
        let handle = self.get(name)?;
        if handle.id() != id {
            return Err(Error::Replaced(name.to_owned()));
        }
        Ok(handle)
    }

    /// Starts a session. Must be called inside a tokio runtime.
    pub async fn create(&self, params: NewParams) -> Result<SessionInfo> {
        // The new session's state is known here: answering without a round trip through its
        // task saves a cross-thread wake-up per create.
        self.spawn(params, None, None, None).map(|(_, info)| info)
    }

    /// The immutable id of the session called `name`, if there is one.
    pub fn id_of(&self, name: &str) -> Option<String> {
        self.sessions().get(name).map(|h| h.id().to_owned())
    }

    /// The live session a grant names: `(id, name)` of the session called `name_or_id`, or
    /// else of the one whose id it is. Names win: a request always names its session.
    pub fn find(&self, name_or_id: &str) -> Option<(String, String)> {
        let sessions = self.sessions();
        let found = sessions
            .get(name_or_id)
            .or_else(|| sessions.values().find(|h| h.id() == name_or_id))?;
        Some((found.id().to_owned(), found.name().to_owned()))
    }

    /// Starts a session brought back from a saved record: `prelude` (the old scrollback, as
    /// terminal output) goes into the new session's log and screen before the program's first
    /// byte, and the session is marked `restored`.
    /// `id` is the record's own id when the session is the same one coming back (a daemon
    /// restart); `None` gives a new one (a restore or an import is a new session).
    /// `workspace` is the directory a sandboxed session's policy is planned against: the one
    /// it started in, whichever directory it comes back working in (`params.cwd`).
    pub async fn create_restored(
        &self,
        params: NewParams,
        prelude: &[u8],
        id: Option<String>,
        workspace: Option<&Path>,
    ) -> Result<SessionInfo> {
        self.spawn(params, Some(prelude), id, workspace)
            .map(|(_, info)| info)
    }

    fn spawn(
        &self,
        params: NewParams,
        prelude: Option<&[u8]>,
        id: Option<String>,
        workspace: Option<&Path>,
    ) -> Result<(SessionHandle, SessionInfo)> {
        // 128 random bits: never the id of another session, here or on another daemon.
        let id = id.unwrap_or_else(|| crate::random_hex(16));
        let size = params.size.unwrap_or_default();
        crate::check_size(size)?;
        let mut env: BTreeMap<String, String> = params
            .env
            .clone()
            .unwrap_or_else(|| std::env::vars().collect());
        strip_secrets(&mut env);
        env.extend(self.inner.config.session_env.clone());
        env.extend(params.set_env.clone());
        if self.inner.config.no_pager {
            default_pagers(&mut env);
        }
        let argv = program_argv(&params, &env)?;
        let cwd = match &params.cwd {
            Some(dir) => PathBuf::from(dir),
            None => std::env::current_dir()?,
        };
        if !cwd.is_dir() {
            return Err(Error::InvalidParams(format!(
                "working directory '{}' does not exist",
                cwd.display()
            )));
        }
        let mut sessions = self.sessions();
        let name = match params.name {
            Some(name) => {
                check_name(&name)?;
                if sessions.contains_key(&name) {
                    return Err(Error::Exists(name));
                }
                name
            }
            None => (0..)
                .map(|i: u64| i.to_string())
                .find(|n| !sessions.contains_key(n))
                .unwrap_or_default(),
        };
        env.insert("TERM".into(), "xterm-256color".into());
        env.insert("AI_SESSION_NAME".into(), name.clone());
        let kind = ShellKind::detect(&argv[0]);
        let dir = self.inner.config.data_dir.join("sessions").join(&name);
        let mark_file = dir.join("mark");
        // A directory made ahead of time comes with its mark file written (`spare.rs`).
        let ready = kind
            .has_hooks()
            .then(|| self.inner.spares.take(&dir))
            .flatten();
        let secret = ready.clone().unwrap_or_else(|| crate::random_hex(16));
        let spawned_argv = if kind.has_hooks() {
            if ready.is_none() {
                crate::shell::write_mark_file(&mark_file, &secret)?;
            }
            self.inner.hooks.inject(kind, &argv, &mut env, &mark_file)
        } else {
            argv.clone()
        };
        let sandbox = match &params.policy {
            Some(spec) => {
                std::fs::create_dir_all(&dir)?;
                let hooks = self.inner.config.data_dir.join("shell");
                let hidden = &self.inner.config.hidden;
                Some(crate::sandbox::prepare(
                    spec,
                    workspace.unwrap_or(&cwd),
                    &[&hooks, &dir],
                    hidden,
                )?)
            }
            None => None,
        };
        let mut log = OutputLog::create(
            &dir.join("log"),
            self.inner.config.log_bytes,
            self.inner.config.log_key.as_ref(),
        )?;
        let mut screen = Screen::new(size, self.inner.config.scrollback);
        if let Some(bytes) = prelude.filter(|b| !b.is_empty()) {
            log.append(bytes).map_err(|lost| lost.error)?;
            screen.feed(bytes);
            screen.take_replies();
        }
        let start = log.end();
        let spec = SpawnSpec {
            argv: &spawned_argv,
            cwd: &cwd,
            env: &env,
            size,
            sandbox: sandbox.as_ref().map(|s| &*s.prepared),
        };
        let (master, child) = pty::spawn(&spec).map_err(|source| Error::Spawn {
            program: argv[0].clone(),
            source,
        })?;
        let pid = child.id();
        let shell_pid = child.shell_id();
        let integration = match kind {
            ShellKind::Bash | ShellKind::Zsh | ShellKind::Sh => Integration::Osc133,
            ShellKind::OtherPosix => Integration::Nonce,
            ShellKind::NotShell => Integration::None,
        };
        let state = match integration {
            Integration::Osc133 => SessionState::Starting,
            Integration::Nonce => SessionState::Idle,
            Integration::None => SessionState::Busy,
        };
        let info = SessionInfo {
            id: id.clone(),
            name: name.clone(),
            pid: shell_pid,
            program: argv.clone(),
            cwd: cwd.to_string_lossy().into_owned(),
            size,
            state,
            exit_code: None,
            integration,
            created_ms: now_ms(),
            log_end: start,
            log_start: 0,
            foreground: None,
            sandbox: sandbox.as_ref().map(crate::sandbox::info),
            stop_reason: None,
            restored: prelude.is_some(),
            degraded: None,
            node: None,
            checkpoint_ms: None,
            last_command: None,
        };
        let now = Instant::now();
        let tracker = CommandTracker::new(Setup {
            name: name.clone(),
            secret,
            kind,
            integration,
            start,
            now,
        });
        let actor = Actor {
            id: Identity {
                sid: id.clone(),
                name: name.clone(),
                pid,
                shell_pid,
                argv,
                cwd: cwd.to_string_lossy().into_owned(),
                dir,
                created_ms: info.created_ms,
                restored: prelude.is_some(),
                mark_file: kind.has_hooks().then_some(mark_file),
            },
            pty: Pty {
                master,
                child: Some(child),
                input: VecDeque::new(),
                hung_up: false,
                more_to_read: false,
                exit_pending: None,
            },
            out: Output {
                log,
                screen,
                events: None,
                degraded: None,
                health: self.inner.degraded.clone(),
                command_started: None,
                last_command: None,
            },
            life: Life {
                sandbox,
                stop_reason: None,
                state_tx: self.inner.state_tx.clone(),
                announced: None,
                integrations: self.inner.integrations.clone(),
                end_told: false,
            },
            tracker,
        };
        let (tx, rx) = mpsc::channel(32);
        tokio::spawn(actor.run(rx));
        if kind.has_hooks() {
            self.inner.spares.refill();
        }
        if !self
            .inner
            .trimming
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            let weak = Arc::downgrade(&self.inner);
            tokio::spawn(crate::memory::trim_loop(move || weak.strong_count() > 0));
        }
        let handle = SessionHandle::new(&name, &id, tx, self.inner.integrations.clone());
        sessions.insert(name.clone(), handle.clone());
        self.inner
            .pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), pid);
        tracing::info!(session = %name, pid, "session created");
        if !self.inner.integrations.is_empty() {
            self.inner
                .integrations
                .fire(IntegrationEvent::SessionCreated(Box::new(info.clone())));
        }
        Ok((handle, info))
    }

    /// A stream of every session's state changes (created, idle, busy, exited, killed). A
    /// listener that falls more than 4096 changes behind skips ahead (`Lagged`).
    pub fn state_events(&self) -> tokio::sync::broadcast::Receiver<crate::session::StateChange> {
        self.inner.state_tx.subscribe()
    }

    /// Information on every session, in name order.
    pub async fn list(&self) -> Vec<SessionInfo> {
        let handles: Vec<SessionHandle> = self.sessions().values().cloned().collect();
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            if let Ok(info) = h.info().await {
                out.push(info);
            }
        }
        out
    }

    /// Kills a session's processes and forgets it.
    pub async fn kill(&self, name: &str) -> Result<()> {
        self.kill_exact(name, None).await
    }

    /// Kills the session called `name` if it is the one with id `id` (when given): checked and
    /// removed under one lock, so a session created since under the name is never the one
    /// killed ([`Error::Replaced`]).
    pub async fn kill_exact(&self, name: &str, id: Option<&str>) -> Result<()> {
        let handle = {
            let mut sessions = self.sessions();
            let handle = sessions.get(name).cloned().ok_or_else(|| Error::NotFound {
                name: name.to_owned(),
                existing: sessions.keys().cloned().collect(),
            })?;
            if id.is_some_and(|id| id != handle.id()) {
                return Err(Error::Replaced(name.to_owned()));
            }
            sessions.remove(name);
            handle
        };
        self.inner
            .pids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        handle.kill().await;
        Ok(())
    }

    /// Kills every session: one scan of /proc finds every session's processes, all of them get
    /// SIGHUP at once, the shells are reaped concurrently, and a last scan SIGKILLs survivors.
    pub async fn shutdown(&self) {
        use rustix::process::Signal;
        self.inner.spares.clear();
        let handles: Vec<SessionHandle> = std::mem::take(&mut *self.sessions())
            .into_values()
            .collect();
        let sids: std::collections::HashSet<i32> =
            std::mem::take(&mut *self.inner.pids.lock().unwrap_or_else(|p| p.into_inner()))
                .into_values()
                .collect();
        let members = pty::session_members(&sids);
        for pids in members.values() {
            pty::signal_all(pids, Signal::HUP);
            pty::signal_all(pids, Signal::CONT);
        }
        let mut kills = tokio::task::JoinSet::new();
        for h in handles {
            kills.spawn(async move { h.kill_with(false).await });
        }
        while kills.join_next().await.is_some() {}
        for pids in pty::session_members(&sids).values() {
            pty::signal_all(pids, Signal::KILL);
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.config.data_dir
    }

    /// The integrations registered on this manager.
    pub fn integrations(&self) -> &Integrations {
        &self.inner.integrations
    }

    /// Registers `integration`: from now on it is told of every session created or ended and
    /// every command finished (see [`crate::integration`]). Must be called inside a tokio
    /// runtime.
    pub async fn register_integration(
        &self,
        integration: Arc<dyn ExternalIntegration>,
    ) -> std::result::Result<(), IntegrationError> {
        self.inner.integrations.register(integration).await
    }

    /// What every integration holds about `session`, by integration name.
    pub async fn export_session_data(&self, session: &str) -> Vec<(String, serde_json::Value)> {
        self.inner.integrations.export_session_data(session).await
    }
}

fn program_argv(params: &NewParams, env: &BTreeMap<String, String>) -> Result<Vec<String>> {
    if let Some(program) = &params.program {
        if program.is_empty() || program[0].is_empty() {
            return Err(Error::InvalidParams("the program to run is empty".into()));
        }
        return Ok(program.clone());
    }
    let shell = params
        .shell
        .clone()
        .or_else(|| env.get("SHELL").filter(|s| !s.is_empty()).cloned())
        .unwrap_or_else(|| {
            if Path::new("/bin/bash").exists() {
                "/bin/bash".into()
            } else {
                "/bin/sh".into()
            }
        });
    Ok(vec![shell])
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidParams(format!(
            "invalid session name '{name}': use 1-64 letters, digits, '_', '-' or '.', not starting with '.' or '-'"
        )))
    }
}
