//! Session commands: new-session, has-session, kill-session, list-sessions, rename-session,
//! attach-session, start-server, kill-server.

use ai_session_protocol::registry::{self as reg, Method};
use std::collections::BTreeMap;
use std::io::IsTerminal;

use super::Ctx;
use crate::args::Args;
use crate::error::TmuxError;
use crate::name;
use crate::options;
use crate::server::{PaneSpec, Server, now};
use crate::state::{Rect, SessionRec, WindowRec};
use crate::target::{self, Found, Kind};

/// What a new session starts with.
pub(crate) struct NewSession {
    pub name: Option<String>,
    pub window_name: Option<String>,
    pub size: Option<(u16, u16)>,
    pub spec: PaneSpec,
}

/// The default name of a window running `spec`: its program's, or the shell's.
pub(crate) fn window_name_for(server: &Server, s: &SessionRec, spec: &PaneSpec) -> String {
    let program = match spec.command.as_slice() {
        [] => options::default_shell(&server.state, s),
        [one] => one.split_whitespace().next().unwrap_or("").to_owned(),
        argv => argv[0].clone(),
    };
    program.rsplit('/').next().unwrap_or(&program).to_owned()
}

/// A size option `COLSxROWS`.
fn parse_size(v: &str) -> Option<(u16, u16)> {
    let (c, r) = v.split_once('x')?;
    Some((c.parse().ok()?, r.parse().ok()?))
}

/// Creates a session with one window and one pane; returns its first pane.
pub(crate) fn create(server: &mut Server, ns: NewSession) -> Result<Found, TmuxError> {
    let name = match ns.name {
        Some(n) => name::clean_session_name(&n),
        None => (server.state.next_session..)
            .map(|n| n.to_string())
            .find(|n| target::find_session(&server.state, n).is_none_or(|s| s.name != *n))
            .unwrap_or_default(),
    };
    if name.is_empty() {
        return Err(TmuxError::msg("invalid session: "));
    }
    if server.state.sessions.iter().any(|s| s.name == name) {
        return Err(TmuxError::msg(format!("duplicate session: {name}")));
    }
    let mut prefix = name::encode(&name);
    let taken = |server: &Server, p: &str| {
        server.state.sessions.iter().any(|s| s.prefix == p)
            || server
                .live
                .keys()
                .any(|d| name::parse_pane(d).is_some_and(|(q, _, _)| q == p))
    };
    let base = prefix.clone();
    let mut n = 1;
    while taken(server, &prefix) {
        prefix = format!("{base}_{n}");
        n += 1;
    }
    let default_size = options::value(&server.state, None, None, "default-size");
    let (w, h) = ns
        .size
        .or_else(|| parse_size(&default_size))
        .unwrap_or((80, 24));
    let id = server.state.next_session;
    server.state.next_session += 1;
    let rec = SessionRec {
        id,
        name,
        prefix,
        created: now(),
        windows: Vec::new(),
        active: 0,
        last: None,
        env: BTreeMap::new(),
        options: BTreeMap::new(),
    };
    let index = u32::try_from(options::number(
        &server.state,
        Some(&rec),
        None,
        "base-index",
    ))
    .unwrap_or(0);
    let wname = ns
        .window_name
        .map(|n| name::vis(&n))
        .unwrap_or_else(|| window_name_for(server, &rec, &ns.spec));
    server.state.sessions.push(rec);
    let rect = Rect { x: 0, y: 0, w, h };
    let pane = match server.spawn_pane(id, index, rect, &ns.spec) {
        Ok(p) => p,
        Err(e) => {
            server.state.sessions.retain(|s| s.id != id);
            return Err(e);
        }
    };
    let pid = pane.id;
    let wid = server.state.next_window;
    server.state.next_window += 1;
    if let Some(s) = server.state.session_mut(id) {
        s.active = index;
        s.windows.push(WindowRec {
            id: wid,
            index,
            name: wname,
            panes: vec![pane],
            active: pid,
            w,
            h,
            options: BTreeMap::new(),
            activity: now(),
            last_pane: None,
        });
    }
    Ok(Found {
        session: id,
        window: index,
        pane: pid,
    })
}

/// `-e VAR=value` words as pairs.
pub(crate) fn env_pairs(args: &Args) -> Result<Vec<(String, String)>, TmuxError> {
    args.all('e')
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| TmuxError::msg(format!("invalid environment: {kv}")))
        })
        .collect()
}

/// `-c DIR`, relative to the caller's directory as tmux takes it; a directory that does not
/// exist is ignored (the default is used), as tmux ignores it.
pub(crate) fn start_dir(args: &Args) -> Option<String> {
    given_dir(args).filter(|d| std::path::Path::new(d).is_dir())
}

fn given_dir(args: &Args) -> Option<String> {
    let dir = args.get('c')?;
    let path = std::path::Path::new(dir);
    if path.is_absolute() {
        return Some(dir.to_owned());
    }
    let expanded = match dir.strip_prefix('~') {
        Some(rest) => std::env::var("HOME").map(|h| format!("{h}{rest}")).ok(),
        None => None,
    };
    Some(expanded.unwrap_or_else(|| {
        std::env::current_dir()
            .map(|c| c.join(path).display().to_string())
            .unwrap_or_else(|_| dir.to_owned())
    }))
}

pub(crate) fn new(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    if args.has('t') {
        return Err(TmuxError::msg(
            "new-session -t: session groups are not supported by ai-session",
        ));
    }
    let attach = !args.has('d');
    let server = c.open(true)?;
    if args.has('A') {
        if let Some(name) = args.get('s') {
            if let Some(s) = target::find_session(&server.state, name).filter(|s| s.name == name) {
                let found = target::resolve(&server.state, None, Some(&s.name), Kind::Session)?;
                return if attach {
                    attach_to(server, found)
                } else {
                    Ok(())
                };
            }
        }
    }
    let size = match (args.number('x', "width")?, args.number('y', "height")?) {
        (None, None) => None,
        (x, y) => {
            let def = (80, 24);
            let clamp = |v: i64| u16::try_from(v.clamp(1, 10_000)).unwrap_or(1);
            Some((x.map(clamp).unwrap_or(def.0), y.map(clamp).unwrap_or(def.1)))
        }
    };
    let ns = NewSession {
        name: args.get('s').map(str::to_owned),
        window_name: args.get('n').map(str::to_owned),
        size,
        spec: PaneSpec {
            cwd: start_dir(args).or_else(|| {
                std::env::current_dir()
                    .ok()
                    .map(|d| d.display().to_string())
            }),
            env: env_pairs(args)?,
            command: args.rest.clone(),
        },
    };
    let env = ns.spec.env.clone();
    let found = create(server, ns)?;
    if let Some(s) = server.state.session_mut(found.session) {
        // tmux keeps -e variables in the new session's environment.
        s.env.extend(env.into_iter().map(|(k, v)| (k, Some(v))));
    }
    server.save()?;
    if args.has('P') {
        let fmt = args.get('F').unwrap_or("#{session_name}:");
        super::print_rows(server, &[found], fmt, None);
    }
    if attach {
        return attach_to(server, found);
    }
    Ok(())
}

/// Connects this terminal to the pane with `ai-session attach` (one pane, no status line).
fn attach_to(server: &mut Server, found: Found) -> Result<(), TmuxError> {
    if !std::io::stdin().is_terminal() {
        return Err(TmuxError::msg("open terminal failed: not a terminal"));
    }
    let daemon = pane_daemon(server, found)?;
    server.unlock()?;
    let exe = std::env::current_exe()?;
    let status = std::process::Command::new(exe)
        .arg("-S")
        .arg(server.ctx.socket())
        .args(["attach", "-t", &daemon])
        .status()?;
    match status.code() {
        Some(0) => Ok(()),
        Some(n) => Err(TmuxError::Status(n)),
        None => Err(TmuxError::Status(1)),
    }
}

/// The daemon session of a resolved pane.
pub(crate) fn pane_daemon(server: &Server, f: Found) -> Result<String, TmuxError> {
    server
        .state
        .session(f.session)
        .and_then(|s| s.window(f.window))
        .and_then(|w| w.panes.iter().find(|p| p.id == f.pane))
        .map(|p| p.daemon.clone())
        .ok_or_else(|| TmuxError::msg(format!("can't find pane: %{}", f.pane)))
}

pub(crate) fn attach(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Session)?;
    attach_to(server, found)
}

pub(crate) fn has(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    target::resolve(&server.state, current, args.get('t'), Kind::Session)?;
    Ok(())
}

/// Every pane of session `sid`, with their pipe processes stopped.
pub(crate) fn kill_session_panes(server: &mut Server, sid: u32) -> Result<(), TmuxError> {
    let Some(s) = server.state.session(sid) else {
        return Ok(());
    };
    let panes: Vec<_> = s.windows.iter().flat_map(|w| w.panes.clone()).collect();
    for p in panes {
        super::pane::close(server, &p)?;
    }
    server.state.sessions.retain(|s| s.id != sid);
    Ok(())
}

pub(crate) fn kill(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Session)?;
    if args.has('C') {
        return Ok(());
    }
    let victims: Vec<u32> = if args.has('a') {
        server
            .state
            .sessions
            .iter()
            .map(|s| s.id)
            .filter(|id| *id != found.session)
            .collect()
    } else {
        vec![found.session]
    };
    for id in victims {
        kill_session_panes(server, id)?;
    }
    server.save()
}

pub(crate) fn kill_server(c: &mut Ctx, _args: &Args) -> Result<(), TmuxError> {
    let server = c.server()?;
    let had_sessions = !server.state.sessions.is_empty();
    let ids: Vec<u32> = server.state.sessions.iter().map(|s| s.id).collect();
    for id in ids {
        kill_session_panes(server, id)?;
    }
    server.state = Default::default();
    server.save()?;
    server.refresh()?;
    // The daemon stops with the tmux server only when nothing else runs in it: sessions
    // started with `ai-session new` are not tmux's to kill.
    if server.live.is_empty() {
        let stopped: Result<serde_json::Value, _> =
            server.call(reg::DaemonStop::NAME, serde_json::json!({}));
        stopped?;
    }
    if !had_sessions {
        // tmux's server had already exited with its last session.
        return Err(TmuxError::NoServer(server.ctx.socket()));
    }
    Ok(())
}

pub(crate) fn start_server(c: &mut Ctx, _args: &Args) -> Result<(), TmuxError> {
    c.open(true)?;
    Ok(())
}

pub(crate) fn list(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let server = c.server()?;
    if server.state.sessions.is_empty() {
        // A tmux server exits with its last session.
        return Err(TmuxError::NoServer(server.ctx.socket()));
    }
    let rows: Vec<Found> = server
        .state
        .sessions
        .iter()
        .filter_map(|s| {
            let w = s.window(s.active)?;
            Some(Found {
                session: s.id,
                window: w.index,
                pane: w.active,
            })
        })
        .collect();
    let mut rows = rows;
    rows.sort_by(|a, b| {
        let name = |f: &Found| server.state.session(f.session).map(|s| s.name.clone());
        name(a).cmp(&name(b))
    });
    let fmt = args.get('F').unwrap_or(
        "#{session_name}: #{session_windows} windows (created #{t:session_created})#{?session_attached, (attached),}",
    );
    super::print_rows(server, &rows, fmt, args.get('f'));
    Ok(())
}

pub(crate) fn rename(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Session)?;
    let Some(new) = args.rest.first() else {
        return Err(TmuxError::msg(
            "command rename-session: too few arguments (need 1)",
        ));
    };
    let new = name::clean_session_name(new);
    if server
        .state
        .sessions
        .iter()
        .any(|s| s.name == new && s.id != found.session)
    {
        return Err(TmuxError::msg(format!("duplicate session: {new}")));
    }
    if let Some(s) = server.state.session_mut(found.session) {
        s.name = new;
    }
    server.save()
}
