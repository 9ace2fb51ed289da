//! Options and environments: set-option, show-options (and their window forms),
//! set-environment, show-environment.

use std::collections::BTreeMap;

use super::Ctx;
use crate::args::Args;
use crate::error::TmuxError;
use crate::options::{self, Scope};
use crate::server::Server;
use crate::target::{self, Found, Kind};

/// Which map an option command reads or writes.
enum Place {
    Server,
    Global,
    Session(u32),
    Window(Found),
}

fn scope_of(args: &Args, name: Option<&str>) -> Result<Scope, TmuxError> {
    if args.has('s') {
        return Ok(Scope::Server);
    }
    if args.has('w') || args.has('p') {
        return Ok(Scope::Window);
    }
    match name {
        Some(n) if n.starts_with('@') => Ok(Scope::Session),
        Some(n) => options::find(n)
            .map(|(s, _)| s)
            .ok_or_else(|| TmuxError::msg(format!("invalid option: {n}"))),
        None => Ok(Scope::Session),
    }
}

fn place(
    server: &Server,
    current: Option<u32>,
    args: &Args,
    scope: Scope,
) -> Result<Place, TmuxError> {
    Ok(match scope {
        Scope::Server => Place::Server,
        _ if args.has('g') => Place::Global,
        Scope::Session => Place::Session(
            target::resolve(&server.state, current, args.get('t'), Kind::Session)?.session,
        ),
        Scope::Window => Place::Window(target::resolve(
            &server.state,
            current,
            args.get('t'),
            Kind::Window,
        )?),
    })
}

fn map_mut<'a>(server: &'a mut Server, place: &Place) -> Option<&'a mut BTreeMap<String, String>> {
    Some(match place {
        Place::Server => &mut server.state.server_options,
        Place::Global => &mut server.state.global_options,
        Place::Session(id) => &mut server.state.session_mut(*id)?.options,
        Place::Window(f) => {
            &mut server
                .state
                .session_mut(f.session)?
                .window_mut(f.window)?
                .options
        }
    })
}

fn map<'a>(server: &'a Server, place: &Place) -> Option<&'a BTreeMap<String, String>> {
    Some(match place {
        Place::Server => &server.state.server_options,
        Place::Global => &server.state.global_options,
        Place::Session(id) => &server.state.session(*id)?.options,
        Place::Window(f) => &server.state.session(f.session)?.window(f.window)?.options,
    })
}

/// Checks and normalises a value for a known option: numbers stay numbers, flags are on/off.
fn check_value(name: &str, value: &str) -> Result<String, TmuxError> {
    let Some((_, default)) = options::find(name) else {
        return Ok(value.to_owned());
    };
    if matches!(default, "on" | "off") {
        return match value.to_ascii_lowercase().as_str() {
            "on" | "yes" | "1" => Ok("on".into()),
            "off" | "no" | "0" => Ok("off".into()),
            _ => Err(TmuxError::msg(format!("bad value: {value}"))),
        };
    }
    if !default.is_empty() && default.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse::<u64>()
            .map(|n| n.to_string())
            .map_err(|_| TmuxError::msg(format!("value is invalid: {value}")));
    }
    Ok(value.to_owned())
}

pub(crate) fn set(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.open(true)?;
    let Some(name) = args.rest.first().cloned() else {
        return Err(TmuxError::msg(
            "command set-option: too few arguments (need 1)",
        ));
    };
    let scope = match scope_of(args, Some(&name)) {
        Ok(s) => s,
        Err(_) if args.has('q') => return Ok(()),
        Err(e) => return Err(e),
    };
    let place = place(server, current, args, scope)?;
    let mut value = args.rest.get(1).cloned();
    if args.has('F') {
        if let (Some(v), Ok(f)) = (
            &value,
            target::resolve(&server.state, current, args.get('t'), Kind::Pane),
        ) {
            value = crate::vars::View::new(server, f).map(|view| view.expand(v));
        }
    }
    let existing = map(server, &place).and_then(|m| m.get(&name).cloned());
    if args.has('u') || args.has('U') {
        if let Some(m) = map_mut(server, &place) {
            m.remove(&name);
        }
        return server.save();
    }
    if args.has('o') && existing.is_some() {
        return Err(TmuxError::msg(format!("already set: {name}")));
    }
    let value = match value {
        Some(v) if args.has('a') => format!("{}{v}", existing.unwrap_or_default()),
        Some(v) => check_value(&name, &v)?,
        None => {
            let now = options::value(&server.state, None, None, &name);
            match now.as_str() {
                "on" => "off".into(),
                "off" => "on".into(),
                _ => return Err(TmuxError::msg(format!("empty value: {name}"))),
            }
        }
    };
    if let Some(m) = map_mut(server, &place) {
        m.insert(name, value);
    }
    server.save()
}

pub(crate) fn set_window(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let mut words = vec!["-w".to_owned()];
    words.extend(flags_back(args, "aFgoqu", "t"));
    let a = Args::parse("set-option", "aFgopqst:uUw", &words)?;
    set(c, &a)
}

pub(crate) fn show_window(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let mut words = vec!["-w".to_owned()];
    words.extend(flags_back(args, "gv", "t"));
    let a = Args::parse("show-options", "AgHpqst:vw", &words)?;
    show(c, &a)
}

/// Rebuilds the words of `args` (flags then the rest), to pass them to another command.
fn flags_back(args: &Args, plain: &str, valued: &str) -> Vec<String> {
    let mut out = Vec::new();
    for f in plain.chars().filter(|f| args.has(*f)) {
        out.push(format!("-{f}"));
    }
    for f in valued.chars() {
        if let Some(v) = args.get(f) {
            out.push(format!("-{f}"));
            out.push(v.to_owned());
        }
    }
    out.push("--".into());
    out.extend(args.rest.iter().cloned());
    out
}

pub(crate) fn show(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.open(true)?;
    if args.has('H') {
        return Ok(());
    }
    let name = args.rest.first().map(String::as_str);
    let scope = match scope_of(args, name) {
        Ok(s) => s,
        Err(_) if args.has('q') => return Ok(()),
        Err(e) => return Err(e),
    };
    let place = place(server, current, args, scope)?;
    let local = map(server, &place).cloned().unwrap_or_default();
    let mut rows: Vec<(String, String, bool)> = Vec::new();
    let global = matches!(place, Place::Global | Place::Server);
    let inherited = |n: &str| options::value(&server.state, None, None, n);
    match name {
        Some(n) => match local.get(n) {
            Some(v) => rows.push((n.to_owned(), v.clone(), false)),
            None if global && !n.starts_with('@') => rows.push((n.to_owned(), inherited(n), false)),
            None if args.has('A') => rows.push((n.to_owned(), inherited(n), true)),
            None if n.starts_with('@') && !args.has('q') => {
                return Err(TmuxError::msg(format!("invalid option: {n}")));
            }
            None => {}
        },
        None => {
            let mut names: Vec<String> = if global || args.has('A') {
                options::names(scope).map(str::to_owned).collect()
            } else {
                Vec::new()
            };
            names.extend(local.keys().cloned());
            names.sort();
            names.dedup();
            for n in names {
                match local.get(&n) {
                    Some(v) => rows.push((n, v.clone(), false)),
                    None => {
                        let v = inherited(&n);
                        rows.push((n, v, !global));
                    }
                }
            }
        }
    }
    let mut out = String::new();
    for (n, v, star) in rows {
        if args.has('v') {
            out.push_str(&v);
        } else {
            out.push_str(&n);
            if star {
                out.push('*');
            }
            out.push(' ');
            out.push_str(&options::quote(&v));
        }
        out.push('\n');
    }
    out!("{out}");
    Ok(())
}

pub(crate) fn set_environment(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.open(true)?;
    let Some(name) = args.rest.first().cloned() else {
        return Err(TmuxError::msg(
            "command set-environment: too few arguments (need 1)",
        ));
    };
    if name.is_empty() || name.contains('=') {
        return Err(TmuxError::msg("empty variable name"));
    }
    let value = if args.has('u') {
        None
    } else if args.has('r') {
        Some(None)
    } else {
        match args.rest.get(1) {
            Some(v) => Some(Some(v.clone())),
            None => return Err(TmuxError::msg("no value specified")),
        }
    };
    let env = if args.has('g') {
        &mut server.state.global_env
    } else {
        let sid = target::resolve(&server.state, current, args.get('t'), Kind::Session)?.session;
        &mut server
            .state
            .session_mut(sid)
            .ok_or_else(|| TmuxError::msg("no current session"))?
            .env
    };
    match value {
        None => {
            env.remove(&name);
        }
        Some(v) => {
            env.insert(name, v);
        }
    }
    server.save()
}

pub(crate) fn show_environment(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let current = c.ctx.current_pane;
    let server = c.open(true)?;
    let env: BTreeMap<String, Option<String>> = if args.has('g') {
        let mut all: BTreeMap<String, Option<String>> =
            std::env::vars().map(|(k, v)| (k, Some(v))).collect();
        all.remove("TMUX");
        all.remove("TMUX_PANE");
        all.extend(server.state.global_env.clone());
        all
    } else {
        let sid = target::resolve(&server.state, current, args.get('t'), Kind::Session)?.session;
        server
            .state
            .session(sid)
            .map(|s| s.env.clone())
            .unwrap_or_default()
    };
    let rows: Vec<(&String, &Option<String>)> = match args.rest.first() {
        Some(n) => match env.get_key_value(n) {
            Some(kv) => vec![kv],
            None => return Err(TmuxError::msg(format!("unknown variable: {n}"))),
        },
        None => env.iter().collect(),
    };
    let mut out = String::new();
    for (k, v) in rows {
        match (v, args.has('s')) {
            (Some(v), false) => out.push_str(&format!("{k}={v}\n")),
            (None, false) => out.push_str(&format!("-{k}\n")),
            (Some(v), true) => {
                let q = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('$', "\\$");
                out.push_str(&format!("{k}=\"{q}\"; export {k};\n"));
            }
            (None, true) => out.push_str(&format!("unset {k};\n")),
        }
    }
    out!("{out}");
    Ok(())
}
