//! Pane commands: split-window, kill-pane, list-panes, select-pane, resize-pane,
//! respawn-pane, display-message.

use super::Ctx;
use super::session::{env_pairs, start_dir};
use super::window::apply_size;
use crate::args::Args;
use crate::error::TmuxError;
use crate::server::{PaneSpec, Server};
use crate::state::{PaneRec, Rect};
use crate::target::{self, Found, Kind};
use crate::vars::View;

/// Kills a pane's daemon session and its pipe process.
pub(crate) fn close(server: &mut Server, p: &PaneRec) -> Result<(), TmuxError> {
    if let Some(pid) = p.pipe_pid {
        super::io::stop_pipe(pid);
    }
    server.kill_daemon(&p.daemon)?;
    server.live.remove(&p.daemon);
    Ok(())
}

/// The size tmux gives a new pane: `-l N`, `-l N%`, `-p N`, else half of `total` less the
/// border.
fn new_size(args: &Args, total: u16) -> Result<u16, TmuxError> {
    let pct = |n: u32| u16::try_from(u32::from(total) * n.min(100) / 100).unwrap_or(total);
    if let Some(l) = args.get('l') {
        return match l.strip_suffix('%') {
            Some(n) => n
                .parse()
                .map(pct)
                .map_err(|_| TmuxError::msg(format!("percentage {l} invalid"))),
            None => l
                .parse()
                .map_err(|_| TmuxError::msg(format!("size {l} invalid"))),
        };
    }
    if let Some(p) = args.get('p') {
        return p
            .parse()
            .map(pct)
            .map_err(|_| TmuxError::msg(format!("percentage {p} invalid")));
    }
    Ok(total.saturating_sub(1) / 2)
}

/// Splits rectangle `r` for a new pane: `(target's rect, new pane's rect)`.
fn split_rect(r: Rect, horizontal: bool, before: bool, size: u16) -> Option<(Rect, Rect)> {
    let total = if horizontal { r.w } else { r.h };
    let new = size.min(total.saturating_sub(2));
    let old = total.checked_sub(new + 1)?;
    if new == 0 || old == 0 {
        return None;
    }
    let (first, second) = if before { (new, old) } else { (old, new) };
    let (a, b) = if horizontal {
        (
            Rect { w: first, ..r },
            Rect {
                x: r.x + first + 1,
                w: second,
                ..r
            },
        )
    } else {
        (
            Rect { h: first, ..r },
            Rect {
                y: r.y + first + 1,
                h: second,
                ..r
            },
        )
    };
    Some(if before { (b, a) } else { (a, b) })
}

pub(crate) fn split(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
    let target_pane = find(server, found)?;
    let horizontal = args.has('h');
    let total = if horizontal {
        target_pane.rect.w
    } else {
        target_pane.rect.h
    };
    let size = new_size(args, total)?;
    let Some((old_rect, new_rect)) = split_rect(target_pane.rect, horizontal, args.has('b'), size)
    else {
        return Err(TmuxError::msg("create pane failed: pane too small"));
    };
    let spec = PaneSpec {
        cwd: start_dir(args).or_else(|| super::window::session_dir(server, found.session)),
        env: env_pairs(args)?,
        command: args.rest.clone(),
    };
    let pane = server.spawn_pane(found.session, found.window, new_rect, &spec)?;
    let new_id = pane.id;
    let mut resized = None;
    if let Some(w) = server
        .state
        .session_mut(found.session)
        .and_then(|s| s.window_mut(found.window))
    {
        let pos = w.panes.iter().position(|p| p.id == found.pane).unwrap_or(0);
        if let Some(t) = w.panes.get_mut(pos) {
            t.rect = old_rect;
            resized = Some(t.clone());
        }
        let at = if args.has('b') { pos } else { pos + 1 };
        w.panes.insert(at.min(w.panes.len()), pane);
        if !args.has('d') {
            w.last_pane = Some(w.active);
            w.active = new_id;
        }
    }
    if let Some(t) = resized {
        apply_size(server, &t)?;
    }
    server.save()?;
    if args.has('P') {
        let fmt = args
            .get('F')
            .unwrap_or("#{session_name}:#{window_index}.#{pane_index}");
        let f = Found {
            pane: new_id,
            ..found
        };
        super::print_rows(server, &[f], fmt, None);
    }
    Ok(())
}

/// The pane record of a resolved target.
pub(crate) fn find(server: &Server, f: Found) -> Result<PaneRec, TmuxError> {
    server
        .state
        .session(f.session)
        .and_then(|s| s.window(f.window))
        .and_then(|w| w.panes.iter().find(|p| p.id == f.pane))
        .cloned()
        .ok_or_else(|| TmuxError::msg(format!("can't find pane: %{}", f.pane)))
}

pub(crate) fn kill(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
    let victims: Vec<PaneRec> = server
        .state
        .session(found.session)
        .and_then(|s| s.window(found.window))
        .map(|w| {
            w.panes
                .iter()
                .filter(|p| (p.id == found.pane) != args.has('a'))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for p in &victims {
        close(server, p)?;
    }
    server.refresh()?;
    server.save()
}

pub(crate) fn list(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let mut rows = Vec::new();
    let all = args.has('a');
    let whole_session = args.has('s');
    let found = if all {
        None
    } else {
        let kind = if whole_session {
            Kind::Session
        } else {
            Kind::Window
        };
        Some(target::resolve(
            &server.state,
            current,
            args.get('t'),
            kind,
        )?)
    };
    for s in &server.state.sessions {
        if found.is_some_and(|f| f.session != s.id) {
            continue;
        }
        for w in &s.windows {
            if !all && !whole_session && found.is_some_and(|f| f.window != w.index) {
                continue;
            }
            rows.extend(w.panes.iter().map(|p| Found {
                session: s.id,
                window: w.index,
                pane: p.id,
            }));
        }
    }
    let tail = "[#{pane_width}x#{pane_height}] [history #{history_size}/#{history_limit}, #{history_bytes} bytes] #{pane_id}#{?pane_active, (active),}#{?pane_dead, (dead),}";
    let default = if all {
        format!("#{{session_name}}:#{{window_index}}.#{{pane_index}}: {tail}")
    } else if whole_session {
        format!("#{{window_index}}.#{{pane_index}}: {tail}")
    } else {
        format!("#{{pane_index}}: {tail}")
    };
    super::print_rows(
        server,
        &rows,
        args.get('F').unwrap_or(&default),
        args.get('f'),
    );
    Ok(())
}

pub(crate) fn select(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    if args.has('d') || args.has('e') || args.has('m') || args.has('M') {
        return Err(TmuxError::msg(
            "select-pane -d/-e/-m/-M: input switching and marks are not supported by ai-session",
        ));
    }
    let mut found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
    let step = match (
        args.has('U') || args.has('L'),
        args.has('D') || args.has('R'),
    ) {
        (true, _) => Some("{previous}"),
        (_, true) => Some("{next}"),
        _ => None,
    };
    if let Some(step) = step {
        found = neighbour(server, found, step == "{next}")?;
    }
    if let Some(title) = args.get('T') {
        if let Some(p) = pane_mut(server, found) {
            p.title = title.to_owned();
        }
        return server.save();
    }
    if args.has('l') {
        let last = server
            .state
            .session(found.session)
            .and_then(|s| s.window(found.window))
            .and_then(|w| w.last_pane)
            .filter(|id| target::find_pane(&server.state, *id).is_some());
        match last {
            Some(id) => found.pane = id,
            None => return Err(TmuxError::msg("no last pane")),
        }
    }
    make_active(server, found);
    server.save()
}

/// Makes pane `f` its window's active pane and its window current.
fn make_active(server: &mut Server, f: Found) {
    if let Some(w) = server
        .state
        .session_mut(f.session)
        .and_then(|s| s.window_mut(f.window))
    {
        if w.active != f.pane {
            w.last_pane = Some(w.active);
            w.active = f.pane;
        }
    }
    super::window::make_current(server, f.session, f.window);
}

pub(crate) fn last(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let mut words = vec!["-l".to_owned()];
    if let Some(t) = args.get('t') {
        words.extend(["-t".to_owned(), t.to_owned()]);
    }
    select(c, &Args::parse("select-pane", "DdeLlMmRT:t:UZ", &words)?)
}

fn neighbour(server: &Server, f: Found, next: bool) -> Result<Found, TmuxError> {
    let w = server
        .state
        .session(f.session)
        .and_then(|s| s.window(f.window))
        .ok_or_else(|| TmuxError::msg("can't find window"))?;
    let n = w.panes.len().max(1);
    let pos = w.panes.iter().position(|p| p.id == f.pane).unwrap_or(0);
    let at = if next {
        (pos + 1) % n
    } else {
        (pos + n - 1) % n
    };
    Ok(Found {
        pane: w.panes.get(at).map(|p| p.id).unwrap_or(f.pane),
        ..f
    })
}

fn pane_mut(server: &mut Server, f: Found) -> Option<&mut PaneRec> {
    server
        .state
        .session_mut(f.session)?
        .window_mut(f.window)?
        .panes
        .iter_mut()
        .find(|p| p.id == f.pane)
}

pub(crate) fn resize(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    if args.has('Z') || args.has('M') || args.has('T') {
        return Err(TmuxError::msg(
            "resize-pane -Z/-M/-T: zoom, mouse resizing and trimming are not supported by ai-session",
        ));
    }
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
    let p = find(server, found)?;
    let (ww, wh) = server
        .state
        .session(found.session)
        .and_then(|s| s.window(found.window))
        .map(|w| (w.w, w.h))
        .unwrap_or((p.rect.w, p.rect.h));
    let adjust: u16 = match args.rest.first() {
        Some(a) => a
            .parse()
            .map_err(|_| TmuxError::msg("adjustment invalid"))?,
        None => 1,
    };
    let abs = |v: Option<&str>, total: u16, cur: u16| -> Result<u16, TmuxError> {
        match v {
            None => Ok(cur),
            Some(s) => match s.strip_suffix('%') {
                Some(n) => n
                    .parse::<u32>()
                    .map(|n| u16::try_from(u32::from(total) * n / 100).unwrap_or(total))
                    .map_err(|_| TmuxError::msg(format!("width {s} invalid"))),
                None => s
                    .parse()
                    .map_err(|_| TmuxError::msg(format!("size {s} invalid"))),
            },
        }
    };
    let mut w = abs(args.get('x'), ww, p.rect.w)?;
    let mut h = abs(args.get('y'), wh, p.rect.h)?;
    if args.has('L') {
        w = w.saturating_sub(adjust);
    }
    if args.has('R') {
        w = w.saturating_add(adjust);
    }
    if args.has('U') {
        h = h.saturating_sub(adjust);
    }
    if args.has('D') {
        h = h.saturating_add(adjust);
    }
    // A pane alone on its row or column spans the window and cannot change that size.
    let alone = |horizontal: bool| {
        server
            .state
            .session(found.session)
            .and_then(|s| s.window(found.window))
            .is_some_and(|win| {
                win.panes.iter().all(|q| {
                    q.id == p.id
                        || if horizontal {
                            q.rect.y + q.rect.h <= p.rect.y || q.rect.y >= p.rect.y + p.rect.h
                        } else {
                            q.rect.x + q.rect.w <= p.rect.x || q.rect.x >= p.rect.x + p.rect.w
                        }
                })
            })
    };
    if alone(true) {
        w = p.rect.w;
    }
    if alone(false) {
        h = p.rect.h;
    }
    resize_with_neighbour(server, found, w.clamp(1, ww), h.clamp(1, wh))?;
    server.save()
}

/// Gives pane `f` the size `w`x`h`, taking the difference from (or giving it to) the next
/// pane in its row or column, so the window keeps its size.
fn resize_with_neighbour(server: &mut Server, f: Found, w: u16, h: u16) -> Result<(), TmuxError> {
    let Some(win) = server
        .state
        .session_mut(f.session)
        .and_then(|s| s.window_mut(f.window))
    else {
        return Ok(());
    };
    let Some(pos) = win.panes.iter().position(|p| p.id == f.pane) else {
        return Ok(());
    };
    let me = win.panes[pos].rect;
    let mut changed = vec![pos];
    for horizontal in [true, false] {
        let (cur, want) = if horizontal { (me.w, w) } else { (me.h, h) };
        if cur == want {
            continue;
        }
        let touching = |q: &Rect| {
            if horizontal {
                q.x == me.x + me.w + 1 || q.x + q.w + 1 == me.x
            } else {
                q.y == me.y + me.h + 1 || q.y + q.h + 1 == me.y
            }
        };
        let Some(npos) = win
            .panes
            .iter()
            .position(|q| q.id != f.pane && touching(&q.rect))
        else {
            continue;
        };
        let n = win.panes[npos].rect;
        let (nsize, after) = if horizontal {
            (n.w, n.x > me.x)
        } else {
            (n.h, n.y > me.y)
        };
        let grown = i32::from(want) - i32::from(cur);
        let new_n = i32::from(nsize) - grown;
        if new_n < 1 {
            continue;
        }
        let new_n = u16::try_from(new_n).unwrap_or(1);
        if horizontal {
            win.panes[pos].rect.w = want;
            win.panes[npos].rect.w = new_n;
            if after {
                win.panes[npos].rect.x = me.x + want + 1;
            } else {
                win.panes[pos].rect.x = n.x + new_n + 1;
            }
        } else {
            win.panes[pos].rect.h = want;
            win.panes[npos].rect.h = new_n;
            if after {
                win.panes[npos].rect.y = me.y + want + 1;
            } else {
                win.panes[pos].rect.y = n.y + new_n + 1;
            }
        }
        changed.push(npos);
    }
    let panes: Vec<PaneRec> = changed.iter().map(|i| win.panes[*i].clone()).collect();
    for p in &panes {
        apply_size(server, p)?;
    }
    Ok(())
}

pub(crate) fn respawn(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
    let p = find(server, found)?;
    if !args.has('k') {
        return Err(TmuxError::msg(format!(
            "respawn pane failed: pane %{} still active",
            p.id
        )));
    }
    let cwd = start_dir(args).or_else(|| server.live.get(&p.daemon).map(|i| i.cwd.clone()));
    close(server, &p)?;
    let spec = PaneSpec {
        cwd,
        env: env_pairs(args)?,
        command: args.rest.clone(),
    };
    let mut new = server.spawn_pane(found.session, found.window, p.rect, &spec)?;
    // The pane keeps its id, as tmux's does.
    server.state.next_pane -= 1;
    new.id = p.id;
    new.title = p.title;
    if let Some(slot) = pane_mut(server, found) {
        *slot = new;
    }
    server.save()
}

pub(crate) fn display(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.server()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
    let view = View::new(server, found).ok_or_else(|| TmuxError::msg("no current pane"))?;
    if args.has('a') {
        let mut out = String::new();
        for name in crate::vars::NAMES {
            if let Some(v) = view.get(name) {
                out.push_str(&format!("{name}={v}\n"));
            }
        }
        out!("{out}");
        return Ok(());
    }
    let template = args
        .get('F')
        .map(str::to_owned)
        .or_else(|| args.rest.first().cloned())
        .unwrap_or_else(|| "[#{session_name}] #{window_index}:#{window_name}, current pane #{pane_index} - (%H:%M %d-%b-%y)".into());
    let text = if args.has('l') {
        template
    } else {
        view.expand(&template)
    };
    // Without -p the message goes to an attached client's status line; there is none.
    if args.has('p') {
        outln!("{text}");
    }
    Ok(())
}
