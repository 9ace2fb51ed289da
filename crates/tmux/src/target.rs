//! Targets: `session`, `session:window`, `session:window.pane`, `:window`, `.pane`, `%pane`,
//! `@window`, `$session`, window names and indexes, `{last}`, `!`, `+`, `-`, `^`, `$`; names
//! match exactly, then as unique prefixes. Every target resolves down to a pane (the active
//! window's active pane where none is named), as tmux's command targets do.

use crate::error::TmuxError;
use crate::state::{SessionRec, State};

/// A resolved target: a session, one of its windows (by index) and one of its panes (by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub session: u32,
    pub window: u32,
    pub pane: u32,
}

/// What a command's `-t` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Session,
    Window,
    Pane,
}

/// Resolves `spec` (None: the current pane, else the most recent session) as a `kind` target.
pub fn resolve(
    state: &State,
    current: Option<u32>,
    spec: Option<&str>,
    kind: Kind,
) -> Result<Found, TmuxError> {
    let spec = spec.unwrap_or("");
    if let Some(id) = spec.strip_prefix('%').and_then(|n| n.parse::<u32>().ok()) {
        return find_pane(state, id).ok_or_else(|| cant("pane", spec));
    }
    if let Some(id) = spec.strip_prefix('@').and_then(|n| n.parse::<u32>().ok()) {
        return state
            .sessions
            .iter()
            .find_map(|s| s.windows.iter().find(|w| w.id == id).map(|w| (s, w)))
            .map(|(s, w)| Found {
                session: s.id,
                window: w.index,
                pane: w.active,
            })
            .ok_or_else(|| cant("window", spec));
    }
    let (sess_part, rest) = match spec.split_once(':') {
        Some((s, r)) => (Some(s), r),
        None if kind == Kind::Session => (Some(spec), ""),
        None => (None, spec),
    };
    let session = match sess_part {
        Some(s) if !s.is_empty() => {
            find_session(state, s).ok_or_else(|| cant("session", s.trim_start_matches('=')))?
        }
        _ => {
            // No session named: a bare word may still be one (`-t build` for a pane).
            if sess_part.is_none() && !rest.is_empty() && !rest.contains('.') {
                if let Some(s) = find_session(state, rest) {
                    return Ok(active_of(s));
                }
            }
            current_session(state, current).ok_or_else(|| match sess_part {
                None if !rest.is_empty() => cant(kind_word(kind), rest),
                _ => TmuxError::msg("no current session"),
            })?
        }
    };
    let (win_part, pane_part) = match rest.rsplit_once('.') {
        Some((w, p)) => (w, Some(p)),
        None => (rest, None),
    };
    let current_in = current
        .and_then(|c| find_pane(state, c))
        .filter(|f| f.session == session.id);
    let window = if win_part.is_empty() {
        current_in.map(|f| f.window).unwrap_or(session.active)
    } else {
        find_window(state, session, win_part).ok_or_else(|| match sess_part {
            None if pane_part.is_none() => cant(kind_word(kind), win_part),
            _ => cant("window", win_part),
        })?
    };
    let w = session
        .window(window)
        .ok_or_else(|| cant("window", win_part))?;
    let pane = match pane_part {
        None | Some("") => current_in
            .filter(|f| f.window == window)
            .map(|f| f.pane)
            .unwrap_or(w.active),
        Some(p) => find_pane_in(state, session, w, p).ok_or_else(|| cant("pane", p))?,
    };
    Ok(Found {
        session: session.id,
        window,
        pane,
    })
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Session => "session",
        Kind::Window => "window",
        Kind::Pane => "pane",
    }
}

fn cant(what: &str, spec: &str) -> TmuxError {
    TmuxError::msg(format!("can't find {what}: {spec}"))
}

fn active_of(s: &SessionRec) -> Found {
    let pane = s.window(s.active).map(|w| w.active).unwrap_or(0);
    Found {
        session: s.id,
        window: s.active,
        pane,
    }
}

/// The pane with id `id`.
pub fn find_pane(state: &State, id: u32) -> Option<Found> {
    state.sessions.iter().find_map(|s| {
        s.windows.iter().find_map(|w| {
            w.panes.iter().find(|p| p.id == id).map(|p| Found {
                session: s.id,
                window: w.index,
                pane: p.id,
            })
        })
    })
}

/// The session `$TMUX_PANE` is in, else the most recently created one.
pub fn current_session(state: &State, current: Option<u32>) -> Option<&SessionRec> {
    if let Some(f) = current.and_then(|c| find_pane(state, c)) {
        return state.session(f.session);
    }
    state.sessions.iter().max_by_key(|s| (s.created, s.id))
}

/// A session by `$id`, exact name (`=name` allows nothing else), then unique name prefix.
pub fn find_session<'a>(state: &'a State, spec: &str) -> Option<&'a SessionRec> {
    if let Some(id) = spec.strip_prefix('$').and_then(|n| n.parse::<u32>().ok()) {
        return state.session(id);
    }
    if let Some(exact) = spec.strip_prefix('=') {
        return state.sessions.iter().find(|s| s.name == exact);
    }
    if let Some(s) = state.sessions.iter().find(|s| s.name == spec) {
        return Some(s);
    }
    let mut matches = state.sessions.iter().filter(|s| s.name.starts_with(spec));
    match (matches.next(), matches.next()) {
        (Some(s), None) => Some(s),
        _ => None,
    }
}

fn find_window(state: &State, s: &SessionRec, spec: &str) -> Option<u32> {
    let indexes: Vec<u32> = s.windows.iter().map(|w| w.index).collect();
    let pos = indexes.iter().position(|i| *i == s.active).unwrap_or(0);
    match spec {
        "{start}" | "^" => return indexes.first().copied(),
        "{end}" | "$" => return indexes.last().copied(),
        "{last}" | "!" => return s.last,
        "{next}" | "+" => return indexes.get((pos + 1) % indexes.len().max(1)).copied(),
        "{previous}" | "-" => {
            return indexes
                .get((pos + indexes.len().max(1) - 1) % indexes.len().max(1))
                .copied();
        }
        _ => {}
    }
    if let Some(id) = spec.strip_prefix('@').and_then(|n| n.parse::<u32>().ok()) {
        return s.windows.iter().find(|w| w.id == id).map(|w| w.index);
    }
    if let Ok(i) = spec.parse::<u32>() {
        return s.window(i).map(|w| w.index);
    }
    let name = |w: &crate::state::WindowRec| crate::vars::window_name(state, s, w);
    if let Some(exact) = spec.strip_prefix('=') {
        return s.windows.iter().find(|w| name(w) == exact).map(|w| w.index);
    }
    if let Some(w) = s.windows.iter().find(|w| name(w) == spec) {
        return Some(w.index);
    }
    let mut matches = s.windows.iter().filter(|w| name(w).starts_with(spec));
    match (matches.next(), matches.next()) {
        (Some(w), None) => Some(w.index),
        _ => None,
    }
}

fn find_pane_in(
    state: &State,
    s: &SessionRec,
    w: &crate::state::WindowRec,
    spec: &str,
) -> Option<u32> {
    if let Some(id) = spec.strip_prefix('%').and_then(|n| n.parse::<u32>().ok()) {
        return w.panes.iter().find(|p| p.id == id).map(|p| p.id);
    }
    let pos = w.active_pos();
    let n = w.panes.len().max(1);
    let at = match spec {
        "{last}" | "!" => return Some(w.active),
        "{next}" | "+" => (pos + 1) % n,
        "{previous}" | "-" => (pos + n - 1) % n,
        "{top}" | "{top-left}" | "{left}" => 0,
        "{bottom}" | "{bottom-right}" | "{right}" => n - 1,
        _ => {
            let base = crate::options::number(state, Some(s), Some(w), "pane-base-index");
            let i: i64 = spec.parse().ok()?;
            usize::try_from(i - base).ok()?
        }
    };
    w.panes.get(at).map(|p| p.id)
}
