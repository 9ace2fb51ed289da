//! One tmux command's view of the server: the daemon connection, the layer's state (locked
//! while the command runs) and the daemon's sessions, reconciled so that a pane exists exactly
//! while its daemon session runs.

use ai_session_protocol::registry::{self as reg, Method};
use std::collections::BTreeMap;
use std::path::PathBuf;

use ai_session_client::{Options, Selector, Start, blocking::Client};
use ai_session_protocol::methods::{
    ListResult, NewParams, SessionInfo, SessionState, Size, StatusResult, Target,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::TmuxError;
use crate::name;
use crate::state::{PaneRec, Rect, State, Store};

/// How the command found its server: `-L`, `-S`, or `$TMUX` inside a pane.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub sel: Selector,
    /// The pane the command runs in (`$TMUX_PANE`), the default target.
    pub current_pane: Option<u32>,
    /// `-f FILE`: commands run when this command starts the server.
    pub config: Option<PathBuf>,
}

impl Context {
    /// The socket path tmux-style messages name.
    pub fn socket(&self) -> String {
        self.sel.paths().socket.display().to_string()
    }
}

/// The daemon, the layer's state and the daemon's sessions for one command.
pub struct Server {
    pub ctx: Context,
    client: Client,
    pub state_dir: PathBuf,
    pub daemon_pid: u32,
    store: Option<Store>,
    pub state: State,
    /// The daemon's sessions by name.
    pub live: BTreeMap<String, SessionInfo>,
    /// Whether this command started the daemon (so `-f` applies).
    pub started: bool,
}

/// What a new pane runs and where.
#[derive(Debug, Default, Clone)]
pub struct PaneSpec {
    pub cwd: Option<String>,
    pub env: Vec<(String, String)>,
    /// tmux's shell-command: one word is run by the shell, several are the argv.
    pub command: Vec<String>,
}

impl Server {
    /// Connects (starting the daemon when `start`), locks the state and reconciles it.
    pub fn open(ctx: &Context, start: bool) -> Result<Self, TmuxError> {
        let socket = ctx.socket();
        let was_running = std::os::unix::net::UnixStream::connect(&socket).is_ok();
        let opts = Options::new(concat!("ai-session-tmux ", env!("CARGO_PKG_VERSION")))
            .notifications(ai_session_client::Notifications::DropNewest(1024))
            .start(if start {
                Start::CurrentExe
            } else {
                Start::Never
            });
        let client = match Client::connect(&ctx.sel, &opts) {
            Ok(c) => c,
            Err(ai_session_client::Error::NotRunning(_)) => {
                return Err(if std::path::Path::new(&socket).exists() {
                    TmuxError::NoServer(socket)
                } else {
                    TmuxError::NoSocket(socket)
                });
            }
            Err(e) => return Err(e.into()),
        };
        let status: StatusResult = client.call(reg::DaemonStatus::NAME, serde_json::json!({}))?;
        let state_dir = PathBuf::from(&status.state_dir);
        let store = Store::lock(&state_dir)?;
        let state = store.load();
        let mut server = Self {
            ctx: ctx.clone(),
            client,
            state_dir,
            daemon_pid: status.pid,
            store: Some(store),
            state,
            live: BTreeMap::new(),
            started: !was_running,
        };
        server.refresh()?;
        Ok(server)
    }

    pub fn call<P: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, TmuxError> {
        Ok(self.client.call(method, params)?)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Reads the daemon's sessions again and brings the state in line with them.
    pub fn refresh(&mut self) -> Result<(), TmuxError> {
        let list: ListResult = self.call(reg::SessionList::NAME, serde_json::json!({}))?;
        let mut live = BTreeMap::new();
        for info in list.sessions {
            // A pane whose program ended is closed, as tmux closes it (remain-on-exit off).
            if info.state == SessionState::Exited && name::parse_pane(&info.name).is_some() {
                self.kill_daemon(&info.name)?;
                continue;
            }
            live.insert(info.name.clone(), info);
        }
        self.live = live;
        self.reconcile();
        Ok(())
    }

    /// Kills one daemon session; one already gone is fine.
    pub fn kill_daemon(&self, daemon: &str) -> Result<(), TmuxError> {
        let target = Target {
            target: daemon.to_owned(),
        };
        match self.client.call_value(reg::SessionKill::NAME, target) {
            Ok(_) => Ok(()),
            Err(e)
                if e.rpc().and_then(|r| r.kind())
                    == Some(ai_session_protocol::ErrorKind::SessionNotFound) =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn reconcile(&mut self) {
        let live = &self.live;
        for s in &mut self.state.sessions {
            for w in &mut s.windows {
                w.panes.retain(|p| live.contains_key(&p.daemon));
                if !w.panes.iter().any(|p| p.id == w.active) {
                    if let Some(p) = w.panes.first() {
                        w.active = p.id;
                    }
                }
            }
            s.windows.retain(|w| !w.panes.is_empty());
            s.windows.sort_by_key(|w| w.index);
            if s.window(s.active).is_none() {
                s.active = s
                    .last
                    .filter(|l| s.window(*l).is_some())
                    .unwrap_or_else(|| s.windows.first().map(|w| w.index).unwrap_or(0));
            }
            if s.last
                .is_some_and(|l| l == s.active || s.window(l).is_none())
            {
                s.last = None;
            }
        }
        self.state.sessions.retain(|s| !s.windows.is_empty());
        self.adopt();
    }

    /// Daemon sessions named like panes that the state does not know (its file was lost, or
    /// another version wrote it) become panes again.
    fn adopt(&mut self) {
        let known: std::collections::BTreeSet<String> = self
            .state
            .sessions
            .iter()
            .flat_map(|s| s.windows.iter().flat_map(|w| w.panes.iter()))
            .map(|p| p.daemon.clone())
            .collect();
        let orphans: Vec<(String, Size)> = self
            .live
            .values()
            .filter(|i| !known.contains(&i.name) && name::parse_pane(&i.name).is_some())
            .map(|i| (i.name.clone(), i.size))
            .collect();
        for (daemon, size) in orphans {
            let Some((prefix, index, _)) = name::parse_pane(&daemon) else {
                continue;
            };
            let Some(sname) = name::decode(prefix) else {
                continue;
            };
            let sid = match self.state.sessions.iter().find(|s| s.prefix == prefix) {
                Some(s) => s.id,
                None => {
                    let id = self.state.next_session;
                    self.state.next_session += 1;
                    self.state.sessions.push(crate::state::SessionRec {
                        id,
                        name: sname,
                        prefix: prefix.to_owned(),
                        created: now(),
                        windows: Vec::new(),
                        active: index,
                        last: None,
                        env: BTreeMap::new(),
                        options: BTreeMap::new(),
                    });
                    id
                }
            };
            let pid = self.state.next_pane;
            self.state.next_pane += 1;
            let wid = self.state.next_window;
            let Some(s) = self.state.session_mut(sid) else {
                continue;
            };
            let rect = Rect {
                x: 0,
                y: 0,
                w: size.cols,
                h: size.rows,
            };
            let pane = PaneRec {
                id: pid,
                daemon,
                rect,
                title: String::new(),
                pipe_pid: None,
                hidden_history: 0,
                start_command: String::new(),
            };
            match s.window_mut(index) {
                Some(w) => w.panes.push(pane),
                None => {
                    s.windows.push(crate::state::WindowRec {
                        id: wid,
                        index,
                        name: String::new(),
                        panes: vec![pane],
                        active: pid,
                        w: size.cols,
                        h: size.rows,
                        options: BTreeMap::new(),
                        activity: now(),
                        last_pane: None,
                    });
                    s.windows.sort_by_key(|w| w.index);
                    self.state.next_window += 1;
                }
            }
        }
    }

    /// Saves the state.
    pub fn save(&self) -> Result<(), TmuxError> {
        match &self.store {
            Some(store) => store.save(&self.state),
            None => Ok(()),
        }
    }

    /// Saves the state and releases the lock, before a command blocks (`wait-for`): other
    /// commands must run meanwhile. The state must not be changed afterwards.
    pub fn unlock(&mut self) -> Result<(), TmuxError> {
        self.save()?;
        self.store = None;
        Ok(())
    }

    /// Takes the lock again after [`Server::unlock`] and reloads the state.
    pub fn relock(&mut self) -> Result<(), TmuxError> {
        let store = Store::lock(&self.state_dir)?;
        self.state = store.load();
        self.store = Some(store);
        self.refresh()
    }

    /// Starts the daemon session of a new pane of window `index` in session `sid`.
    pub fn spawn_pane(
        &mut self,
        sid: u32,
        index: u32,
        rect: Rect,
        spec: &PaneSpec,
    ) -> Result<PaneRec, TmuxError> {
        let s = self
            .state
            .session(sid)
            .ok_or_else(|| TmuxError::msg("session vanished"))?;
        let prefix = s.prefix.clone();
        let slot = (0..)
            .find(|n| !self.live.contains_key(&name::pane(&prefix, index, *n)))
            .unwrap_or(0);
        let daemon = name::pane(&prefix, index, slot);
        if daemon.len() > name::MAX_DAEMON_NAME {
            return Err(TmuxError::msg(format!("session name too long: {}", s.name)));
        }
        let id = self.state.next_pane;
        let mut set_env: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in self.state.global_env.iter().chain(s.env.iter()) {
            if let Some(v) = v {
                set_env.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &spec.env {
            set_env.insert(k.clone(), v.clone());
        }
        set_env.insert(
            "TMUX".into(),
            format!("{},{},{}", self.ctx.socket(), self.daemon_pid, sid),
        );
        set_env.insert("TMUX_PANE".into(), format!("%{id}"));
        let mut env: BTreeMap<String, String> = std::env::vars().collect();
        for (k, v) in self.state.global_env.iter().chain(s.env.iter()) {
            if v.is_none() {
                env.remove(k);
            }
        }
        env.remove("TMUX");
        env.remove("TMUX_PANE");
        let program = match spec.command.as_slice() {
            [] => None,
            [one] => Some(vec![
                crate::options::default_shell(&self.state, s),
                "-c".into(),
                one.clone(),
            ]),
            argv => Some(argv.to_vec()),
        };
        let shell = program
            .is_none()
            .then(|| crate::options::default_shell(&self.state, s));
        let params = NewParams {
            name: Some(daemon.clone()),
            cwd: spec.cwd.clone(),
            shell,
            env: Some(env),
            set_env,
            size: Some(Size {
                cols: rect.w.max(1),
                rows: rect.h.max(1),
            }),
            program,
            policy: None,
        };
        let info: SessionInfo = self.call(reg::SessionNew::NAME, params)?;
        self.state.next_pane += 1;
        self.live.insert(daemon.clone(), info);
        Ok(PaneRec {
            id,
            daemon,
            rect,
            title: String::new(),
            pipe_pid: None,
            hidden_history: 0,
            start_command: match spec.command.as_slice() {
                [one] => one.clone(),
                argv => shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_default(),
            },
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Commands save explicitly; this covers an error after a change (a pane was started,
        // a later step failed), so the state never forgets a pane the daemon runs.
        if let Err(e) = self.save() {
            errln!("cannot save the tmux state: {e}");
        }
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Unix seconds now.
pub fn now() -> u64 {
    now_ms() / 1000
}
