//! `ai-session migrate-tmux`: every pane of a running tmux server becomes a daemon session
//! named as this layer names panes (`sess.W.S`, so the `tmux` shim sees the same sessions,
//! windows and panes), in the pane's directory, with its session's environment
//! (`show-environment`), its size, and its whole scrollback with colours (`capture-pane -e -p
//! -S -`) shown above a fresh shell's first prompt. The copy is built as a one-session export
//! (the store crate's format) and started with `session.import`, the daemon's way of starting
//! a shell below saved output. A running program cannot be moved: it is reported. With
//! `kill`, each tmux pane is closed once its copy runs.

use ai_session_protocol::registry::{self as reg, Method};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use ai_session_protocol::methods::SessionInfo;
use ai_session_protocol::persist::{ImportParams, ImportResult};
use ai_session_store as store;
use base64::Engine;

use crate::error::TmuxError;
use crate::name;
use crate::server::{Context, Server, now};
use crate::state::{PaneRec, Rect, SessionRec, WindowRec};

/// Which tmux server to copy, and what to do with it.
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// `-L NAME` of the tmux server.
    pub tmux_label: Option<String>,
    /// `-S PATH` of the tmux server.
    pub tmux_socket: Option<PathBuf>,
    /// Only this tmux session.
    pub session: Option<String>,
    /// Close each tmux pane once its copy runs.
    pub kill: bool,
}

/// One copied pane.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Migrated {
    /// `sess:W.P` as tmux named it.
    pub tmux: String,
    /// The daemon session it became.
    pub session: String,
    pub cwd: String,
    pub cols: u16,
    pub rows: u16,
    pub scrollback_lines: usize,
    /// What ran in the pane when it was not its shell: not moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub left_running: Option<String>,
    /// Whether the tmux pane was closed.
    pub killed: bool,
}

const FIELDS: &str = "#{session_name}\t#{window_index}\t#{window_name}\t#{pane_index}\t#{pane_id}\t#{pane_width}\t#{pane_height}\t#{pane_left}\t#{pane_top}\t#{window_width}\t#{window_height}\t#{pane_current_path}\t#{pane_current_command}\t#{window_active}\t#{pane_active}";

/// A pane as tmux lists it.
struct TmuxPane {
    session: String,
    window: u32,
    window_name: String,
    index: u32,
    id: String,
    rect: Rect,
    window_size: (u16, u16),
    cwd: String,
    command: String,
    window_active: bool,
    active: bool,
}

/// The real tmux: the first `tmux` on `PATH` that is not this program (a shim may be first).
pub fn real_tmux() -> Result<PathBuf, TmuxError> {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    // The small `ai-session` client beside this binary, which a `tmux` symlink may name, is
    // this program too: it hands tmux's command line to this one.
    let client = me
        .as_ref()
        .and_then(|p| p.with_file_name("ai-session").canonicalize().ok());
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("tmux");
        let Ok(real) = candidate.canonicalize() else {
            continue;
        };
        if Some(&real) != me.as_ref() && Some(&real) != client.as_ref() && real.is_file() {
            return Ok(candidate);
        }
    }
    Err(TmuxError::msg(
        "no tmux found on PATH (other than ai-session itself)",
    ))
}

fn tmux(bin: &Path, opts: &MigrateOptions, args: &[&str]) -> Result<String, TmuxError> {
    let mut cmd = Command::new(bin);
    if let Some(l) = &opts.tmux_label {
        cmd.args(["-L", l]);
    }
    if let Some(s) = &opts.tmux_socket {
        cmd.arg("-S").arg(s);
    }
    let out = cmd.args(args).env_remove("TMUX").output()?;
    if !out.status.success() {
        return Err(TmuxError::msg(format!(
            "tmux {}: {}",
            args.first().copied().unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn list_panes(bin: &Path, opts: &MigrateOptions) -> Result<Vec<TmuxPane>, TmuxError> {
    let text = match &opts.session {
        Some(s) => tmux(bin, opts, &["list-panes", "-s", "-t", s, "-F", FIELDS])?,
        None => tmux(bin, opts, &["list-panes", "-a", "-F", FIELDS])?,
    };
    let mut panes = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 15 {
            continue;
        }
        let n = |i: usize| f[i].parse::<u16>().unwrap_or(0);
        panes.push(TmuxPane {
            session: f[0].to_owned(),
            window: f[1].parse().unwrap_or(0),
            window_name: f[2].to_owned(),
            index: f[3].parse().unwrap_or(0),
            id: f[4].to_owned(),
            rect: Rect {
                x: n(7),
                y: n(8),
                w: n(5),
                h: n(6),
            },
            window_size: (n(9), n(10)),
            cwd: f[11].to_owned(),
            command: f[12].to_owned(),
            window_active: f[13] == "1",
            active: f[14] == "1",
        });
    }
    Ok(panes)
}

/// `show-environment -t SESSION` over the caller's environment; `-NAME` entries removed.
fn environment(
    bin: &Path,
    opts: &MigrateOptions,
    session: &str,
) -> Result<BTreeMap<String, String>, TmuxError> {
    let mut env: BTreeMap<String, String> = std::env::vars().collect();
    for line in tmux(bin, opts, &["show-environment", "-g"])?
        .lines()
        .chain(tmux(bin, opts, &["show-environment", "-t", session])?.lines())
    {
        if let Some(name) = line.strip_prefix('-') {
            env.remove(name);
        } else if let Some((k, v)) = line.split_once('=') {
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    for k in ["TMUX", "TMUX_PANE"] {
        env.remove(k);
    }
    Ok(env)
}

/// Copies the tmux server's panes into the daemon `ctx` selects; one entry per pane.
pub fn migrate(ctx: &Context, opts: &MigrateOptions) -> Result<Vec<Migrated>, TmuxError> {
    let bin = real_tmux()?;
    let panes = list_panes(&bin, opts)?;
    if panes.is_empty() {
        return Err(TmuxError::msg("the tmux server has no panes"));
    }
    let mut server = Server::open(ctx, true)?;
    let mut envs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut done = Vec::new();
    let staging = Staging(staging_dir(&server)?);
    for p in &panes {
        if !envs.contains_key(&p.session) {
            if server.state.sessions.iter().any(|s| s.name == p.session) {
                return Err(TmuxError::msg(format!("duplicate session: {}", p.session)));
            }
            envs.insert(p.session.clone(), environment(&bin, opts, &p.session)?);
        }
        let env = envs.get(&p.session).cloned().unwrap_or_default();
        done.push(copy_pane(&mut server, &bin, opts, p, env, &staging)?);
    }
    server.save()?;
    if opts.kill {
        for (p, m) in panes.iter().zip(done.iter_mut()) {
            tmux(&bin, opts, &["kill-pane", "-t", &p.id])?;
            m.killed = true;
        }
    }
    Ok(done)
}

/// The staging directory, removed however the migration ends.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            errln!("cannot remove {}: {e}", self.0.display());
        }
    }
}

impl std::ops::Deref for Staging {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

/// Where the copies' exports are built: a new directory in the daemon's own state directory
/// (private to the user), removed when the migration ends.
fn staging_dir(server: &Server) -> Result<PathBuf, TmuxError> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = server
        .state_dir
        .join(format!("tmux-migrate-{}", std::process::id()));
    if dir.exists() {
        // Left by an earlier migration of a process with this pid that was killed.
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    Ok(dir)
}

fn copy_pane(
    server: &mut Server,
    bin: &Path,
    opts: &MigrateOptions,
    p: &TmuxPane,
    env: BTreeMap<String, String>,
    staging: &Path,
) -> Result<Migrated, TmuxError> {
    let history = tmux(
        bin,
        opts,
        &["capture-pane", "-e", "-p", "-S", "-", "-t", &p.id],
    )?;
    let mut lines: Vec<String> = history.lines().map(str::to_owned).collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    let sid = session_for(server, p);
    let prefix = server
        .state
        .session(sid)
        .map(|s| s.prefix.clone())
        .unwrap_or_default();
    let slot = (0..)
        .find(|n| !server.live.contains_key(&name::pane(&prefix, p.window, *n)))
        .unwrap_or(0);
    let daemon = name::pane(&prefix, p.window, slot);
    let shell = env
        .get("SHELL")
        .cloned()
        .unwrap_or_else(|| "/bin/sh".into());
    // `tmux` in the copy talks to this daemon, as in a pane the shim started.
    let mut env = env;
    env.insert(
        "TMUX".into(),
        format!("{},{},{sid}", server.ctx.socket(), server.daemon_pid),
    );
    env.insert("TMUX_PANE".into(), format!("%{}", server.state.next_pane));
    let export = build_export(staging, &daemon, &shell, p, env, &lines)?;
    let params = ImportParams {
        data_b64: base64::engine::general_purpose::STANDARD.encode(export),
        name: Some(daemon.clone()),
        source: Some(format!("tmux pane {}", p.id)),
    };
    let imported: ImportResult = server.call(reg::SessionImport::NAME, params)?;
    register(server, sid, p, &daemon, imported.session);
    let shell_name = shell.rsplit('/').next().unwrap_or(&shell);
    let left_running = (p.command != shell_name
        && !p.command.is_empty()
        && !matches!(p.command.as_str(), "bash" | "zsh" | "sh" | "dash" | "fish"))
    .then(|| p.command.clone());
    Ok(Migrated {
        tmux: format!("{}:{}.{}", p.session, p.window, p.index),
        session: daemon,
        cwd: p.cwd.clone(),
        cols: p.rect.w,
        rows: p.rect.h,
        scrollback_lines: lines.len(),
        left_running,
        killed: false,
    })
}

/// The layer's session for the pane's tmux session, created on its first pane.
fn session_for(server: &mut Server, p: &TmuxPane) -> u32 {
    if let Some(s) = server.state.sessions.iter().find(|s| s.name == p.session) {
        return s.id;
    }
    let id = server.state.next_session;
    server.state.next_session += 1;
    let mut prefix = name::encode(&p.session);
    let base = prefix.clone();
    let mut n = 1;
    while server.state.sessions.iter().any(|s| s.prefix == prefix)
        || server
            .live
            .keys()
            .any(|d| name::parse_pane(d).is_some_and(|(q, _, _)| q == prefix))
    {
        prefix = format!("{base}_{n}");
        n += 1;
    }
    server.state.sessions.push(SessionRec {
        id,
        name: p.session.clone(),
        prefix,
        created: now(),
        windows: Vec::new(),
        active: p.window,
        last: None,
        env: BTreeMap::new(),
        options: BTreeMap::new(),
    });
    id
}

/// Records the imported pane in the layer's state with tmux's window, geometry and focus.
fn register(server: &mut Server, sid: u32, p: &TmuxPane, daemon: &str, info: SessionInfo) {
    let pid = server.state.next_pane;
    server.state.next_pane += 1;
    let wid = server.state.next_window;
    server.live.insert(daemon.to_owned(), info);
    let Some(s) = server.state.session_mut(sid) else {
        return;
    };
    let pane = PaneRec {
        id: pid,
        daemon: daemon.to_owned(),
        rect: p.rect,
        title: String::new(),
        pipe_pid: None,
        hidden_history: 0,
        start_command: String::new(),
    };
    if p.window_active {
        s.active = p.window;
    }
    match s.window_mut(p.window) {
        Some(w) => {
            w.panes.push(pane);
            if p.active {
                w.active = pid;
            }
        }
        None => {
            s.windows.push(WindowRec {
                id: wid,
                index: p.window,
                name: p.window_name.clone(),
                panes: vec![pane],
                active: pid,
                w: p.window_size.0,
                h: p.window_size.1,
                options: BTreeMap::new(),
                activity: now(),
                last_pane: None,
            });
            s.windows.sort_by_key(|w| w.index);
            server.state.next_window += 1;
        }
    }
}

/// A one-session export: the pane's shell, size, environment and directory, and its history
/// as the scrollback the new shell starts below.
fn build_export(
    staging: &Path,
    daemon: &str,
    shell: &str,
    p: &TmuxPane,
    env: BTreeMap<String, String>,
    lines: &[String],
) -> Result<Vec<u8>, TmuxError> {
    let err = |e: store::Error| TmuxError::msg(format!("cannot build the copy of {}: {e}", p.id));
    let options = store::Options {
        passphrase: None,
        durable: false,
        ..store::Options::default()
    };
    let st = store::Store::open(staging.join(daemon), options).map_err(err)?;
    let config = store::SessionConfig {
        name: daemon.to_owned(),
        shell: Some(shell.to_owned()),
        argv: vec![shell.to_owned()],
        size: store::Size {
            cols: p.rect.w.max(1),
            rows: p.rect.h.max(1),
        },
        env,
        cwd: p.cwd.clone(),
        created_ms: now() * 1000,
        policy: None,
    };
    let state = st.create_session(config).map_err(err)?;
    let scrollback = store::Scrollback {
        lines: lines.to_vec(),
        screen: String::new(),
        replay: Vec::new(),
    };
    st.save_scrollback(&state.id, &scrollback).map_err(err)?;
    st.export(&state.id).map_err(err)
}
