//! Window commands: new-window, kill-window, list-windows, rename-window, select-window,
//! resize-window.

use ai_session_protocol::registry::{self as reg, Method};
use std::collections::BTreeMap;

use ai_session_protocol::methods::{ResizeParams, Size};

use super::Ctx;
use super::session::{env_pairs, start_dir, window_name_for};
use crate::args::Args;
use crate::error::TmuxError;
use crate::options;
use crate::server::{PaneSpec, Server, now};
use crate::state::{PaneRec, Rect, WindowRec};
use crate::target::{self, Found, Kind};

pub(crate) fn new(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    if args.has('b') {
        return Err(TmuxError::msg(
            "new-window -b: not supported by ai-session (window indexes are part of the panes' daemon names)",
        ));
    }
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let spec_t = args.get('t');
    // `-t sess:N` asks for index N; `-t sess` (or nothing) for the next free one.
    let (sess_spec, index_spec) = match spec_t {
        Some(t) => match t.split_once(':') {
            Some((s, i)) => (Some(s), Some(i)),
            None => match t.parse::<u32>() {
                Ok(_) => (None, Some(t)),
                Err(_) => (Some(t), None),
            },
        },
        None => (None, None),
    };
    let session = match sess_spec.filter(|s| !s.is_empty()) {
        Some(s) => target::resolve(&server.state, current, Some(s), Kind::Session)?,
        None => target::resolve(&server.state, current, None, Kind::Session)?,
    };
    let sid = session.session;
    let s = server
        .state
        .session(sid)
        .ok_or_else(|| TmuxError::msg("no current session"))?;
    if args.has('S') {
        if let Some(n) = args.get('n') {
            if let Some(w) = s.windows.iter().find(|w| w.name == n) {
                let index = w.index;
                make_current(server, sid, index);
                return Ok(());
            }
        }
    }
    let base =
        u32::try_from(options::number(&server.state, Some(s), None, "base-index")).unwrap_or(0);
    let index = match index_spec.filter(|i| !i.is_empty()) {
        Some(i) => {
            let wanted: Option<u32> = i.parse().ok();
            match wanted {
                Some(n) if args.has('a') => free_index(s, n + 1),
                Some(n) if s.window(n).is_some() && !args.has('k') => {
                    return Err(TmuxError::msg(format!(
                        "create window failed: index {n} in use"
                    )));
                }
                Some(n) => n,
                None => {
                    let f = target::resolve(&server.state, current, spec_t, Kind::Window)?;
                    free_index(s, if args.has('a') { f.window + 1 } else { base })
                }
            }
        }
        None if args.has('a') => free_index(s, s.active + 1),
        None => free_index(s, base),
    };
    if args.has('k') {
        if let Some(w) = s.window(index) {
            let panes = w.panes.clone();
            for p in &panes {
                super::pane::close(server, p)?;
            }
            if let Some(s) = server.state.session_mut(sid) {
                s.windows.retain(|w| w.index != index);
            }
        }
    }
    let s = server
        .state
        .session(sid)
        .ok_or_else(|| TmuxError::msg("no current session"))?;
    let (w, h) = s
        .window(s.active)
        .or_else(|| s.windows.first())
        .map(|w| (w.w, w.h))
        .unwrap_or((80, 24));
    let spec = PaneSpec {
        cwd: start_dir(args).or_else(|| session_dir(server, sid)),
        env: env_pairs(args)?,
        command: args.rest.clone(),
    };
    let name = args
        .get('n')
        .map(str::to_owned)
        .unwrap_or_else(|| window_name_for(server, s, &spec));
    let rect = Rect { x: 0, y: 0, w, h };
    let pane = server.spawn_pane(sid, index, rect, &spec)?;
    let found = add_window(server, sid, index, name, pane, (w, h), !args.has('d'));
    server.save()?;
    if args.has('P') {
        let fmt = args.get('F').unwrap_or("#{session_name}:#{window_index}");
        super::print_rows(server, &[found], fmt, None);
    }
    Ok(())
}

/// The session's start directory: the first pane's.
pub(crate) fn session_dir(server: &Server, sid: u32) -> Option<String> {
    let s = server.state.session(sid)?;
    let p = s.windows.first()?.panes.first()?;
    server.live.get(&p.daemon).map(|i| i.cwd.clone())
}

fn add_window(
    server: &mut Server,
    sid: u32,
    index: u32,
    name: String,
    pane: PaneRec,
    (w, h): (u16, u16),
    make_active: bool,
) -> Found {
    let wid = server.state.next_window;
    server.state.next_window += 1;
    let pid = pane.id;
    if let Some(s) = server.state.session_mut(sid) {
        s.windows.push(WindowRec {
            id: wid,
            index,
            name,
            panes: vec![pane],
            active: pid,
            w,
            h,
            options: BTreeMap::new(),
            activity: now(),
            last_pane: None,
        });
        s.windows.sort_by_key(|w| w.index);
    }
    if make_active {
        make_current(server, sid, index);
    }
    Found {
        session: sid,
        window: index,
        pane: pid,
    }
}

fn free_index(s: &crate::state::SessionRec, from: u32) -> u32 {
    (from..).find(|i| s.window(*i).is_none()).unwrap_or(from)
}

/// Makes window `index` the session's current one.
pub(crate) fn make_current(server: &mut Server, sid: u32, index: u32) {
    if let Some(s) = server.state.session_mut(sid) {
        if s.active != index {
            s.last = Some(s.active);
            s.active = index;
        }
        if let Some(w) = s.window_mut(index) {
            w.activity = now();
        }
    }
}

pub(crate) fn kill(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Window)?;
    let s = server
        .state
        .session(found.session)
        .ok_or_else(|| TmuxError::msg("no current session"))?;
    let victims: Vec<PaneRec> = s
        .windows
        .iter()
        .filter(|w| (w.index == found.window) != args.has('a'))
        .flat_map(|w| w.panes.clone())
        .collect();
    for p in &victims {
        super::pane::close(server, p)?;
    }
    server.refresh()?;
    server.save()
}

pub(crate) fn list(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let sessions: Vec<u32> = if args.has('a') {
        server.state.sessions.iter().map(|s| s.id).collect()
    } else {
        vec![target::resolve(&server.state, current, args.get('t'), Kind::Session)?.session]
    };
    let mut rows = Vec::new();
    for sid in sessions {
        if let Some(s) = server.state.session(sid) {
            rows.extend(s.windows.iter().map(|w| Found {
                session: sid,
                window: w.index,
                pane: w.active,
            }));
        }
    }
    let default = if args.has('a') {
        "#{session_name}:#{window_index}: #{window_name}#{window_raw_flags} (#{window_panes} panes) [#{window_width}x#{window_height}] [layout #{window_layout}] #{window_id}#{?window_active, (active),}"
    } else {
        "#{window_index}: #{window_name}#{window_raw_flags} (#{window_panes} panes) [#{window_width}x#{window_height}] [layout #{window_layout}] #{window_id}#{?window_active, (active),}"
    };
    super::print_rows(
        server,
        &rows,
        args.get('F').unwrap_or(default),
        args.get('f'),
    );
    Ok(())
}

pub(crate) fn rename(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Window)?;
    let Some(new) = args.rest.first() else {
        return Err(TmuxError::msg(
            "command rename-window: too few arguments (need 1)",
        ));
    };
    if let Some(w) = server
        .state
        .session_mut(found.session)
        .and_then(|s| s.window_mut(found.window))
    {
        w.name = crate::name::vis(new);
        w.options.insert("automatic-rename".into(), "off".into());
    }
    server.save()
}

/// `last-window`, `next-window`, `previous-window`: select-window -l, -n, -p.
fn select_with(c: &mut Ctx, args: &Args, flag: &str) -> Result<(), TmuxError> {
    let mut words = vec![flag.to_owned()];
    if let Some(t) = args.get('t') {
        words.extend(["-t".to_owned(), t.to_owned()]);
    }
    select(c, &Args::parse("select-window", "lnpTt:", &words)?)
}

pub(crate) fn last(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    select_with(c, args, "-l")
}

pub(crate) fn next(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    select_with(c, args, "-n")
}

pub(crate) fn previous(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    select_with(c, args, "-p")
}

pub(crate) fn select(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let spec = match (args.has('l'), args.has('n'), args.has('p')) {
        (true, _, _) => "{last}",
        (_, true, _) => "{next}",
        (_, _, true) => "{previous}",
        _ => "",
    };
    let t = match (args.get('t'), spec) {
        (Some(t), "") => t.to_owned(),
        (Some(t), s) => format!("{}:{s}", t.split(':').next().unwrap_or(t)),
        (None, "") => String::new(),
        (None, s) => format!(":{s}"),
    };
    let found = target::resolve(
        &server.state,
        current,
        (!t.is_empty()).then_some(t.as_str()),
        Kind::Window,
    )?;
    if spec == "{last}"
        && server
            .state
            .session(found.session)
            .is_some_and(|s| s.last.is_none())
    {
        return Err(TmuxError::msg("no last window"));
    }
    make_current(server, found.session, found.window);
    server.save()
}

/// Resizes a pane's terminal to its rectangle.
pub(crate) fn apply_size(server: &Server, p: &PaneRec) -> Result<(), TmuxError> {
    let params = ResizeParams {
        target: p.daemon.clone(),
        size: Size {
            cols: p.rect.w.max(1),
            rows: p.rect.h.max(1),
        },
    };
    let _: serde_json::Value = server.call(reg::SessionResize::NAME, params)?;
    Ok(())
}

/// Scales every pane of a window to a new window size.
pub(crate) fn scale(server: &mut Server, f: Found, w: u16, h: u16) -> Result<(), TmuxError> {
    let Some(win) = server
        .state
        .session_mut(f.session)
        .and_then(|s| s.window_mut(f.window))
    else {
        return Ok(());
    };
    let (ow, oh) = (u32::from(win.w.max(1)), u32::from(win.h.max(1)));
    let sx = |v: u16| u16::try_from(u32::from(v) * u32::from(w) / ow).unwrap_or(u16::MAX);
    let sy = |v: u16| u16::try_from(u32::from(v) * u32::from(h) / oh).unwrap_or(u16::MAX);
    // Borders scale with the cells before them, so panes that touched still touch.
    for p in &mut win.panes {
        let x = if p.rect.x == 0 {
            0
        } else {
            sx(p.rect.x - 1) + 1
        };
        let y = if p.rect.y == 0 {
            0
        } else {
            sy(p.rect.y - 1) + 1
        };
        let right = if p.rect.x + p.rect.w >= win.w {
            w
        } else {
            sx(p.rect.x + p.rect.w)
        };
        let bottom = if p.rect.y + p.rect.h >= win.h {
            h
        } else {
            sy(p.rect.y + p.rect.h)
        };
        p.rect.x = x;
        p.rect.y = y;
        p.rect.w = right.saturating_sub(x).max(1);
        p.rect.h = bottom.saturating_sub(y).max(1);
    }
    win.w = w;
    win.h = h;
    let panes = win.panes.clone();
    for p in &panes {
        apply_size(server, p)?;
    }
    Ok(())
}

pub(crate) fn resize(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Window)?;
    let Some(win) = server
        .state
        .session(found.session)
        .and_then(|s| s.window(found.window))
    else {
        return Ok(());
    };
    let adjust = args
        .rest
        .first()
        .map(|a| a.parse::<u16>())
        .transpose()
        .map_err(|_| TmuxError::msg("adjustment invalid"))?
        .unwrap_or(1);
    let mut w = match args.number('x', "width")? {
        Some(x) => u16::try_from(x).map_err(|_| TmuxError::msg("width invalid"))?,
        None => win.w,
    };
    let mut h = match args.number('y', "height")? {
        Some(y) => u16::try_from(y).map_err(|_| TmuxError::msg("height invalid"))?,
        None => win.h,
    };
    if args.has('a') || args.has('A') {
        // No client is attached: the smallest and the largest client size are the default.
        let def = options::value(&server.state, None, None, "default-size");
        if let Some((dw, dh)) = def
            .split_once('x')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        {
            w = dw;
            h = dh;
        }
    }
    if args.has('L') {
        w = w.saturating_sub(adjust).max(1);
    }
    if args.has('R') {
        w = w.saturating_add(adjust);
    }
    if args.has('U') {
        h = h.saturating_sub(adjust).max(1);
    }
    if args.has('D') {
        h = h.saturating_add(adjust);
    }
    scale(server, found, w.max(1), h.max(1))?;
    server.save()
}
