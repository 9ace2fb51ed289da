//! Commands about commands: list-commands, source-file, run-shell, if-shell. Shell commands
//! run here, in the calling process (there is no tmux server process to run them in), with
//! the target pane's directory.

use std::process::{Command, Stdio};

use super::Ctx;
use crate::args::Args;
use crate::error::TmuxError;
use crate::target::{self, Kind};

pub(crate) fn list_commands(_c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let mut out = String::new();
    for (name, alias, spec) in super::table() {
        if args
            .rest
            .first()
            .is_some_and(|want| want != name && want != alias)
        {
            continue;
        }
        let alias = if alias.is_empty() {
            String::new()
        } else {
            format!(" ({alias})")
        };
        let plain: String = spec
            .char_indices()
            .filter(|(i, c)| *c != ':' && !spec[i + 1..].starts_with(':'))
            .map(|(_, c)| c)
            .collect();
        let valued: Vec<String> = spec
            .char_indices()
            .filter(|(i, c)| *c != ':' && spec[i + 1..].starts_with(':'))
            .map(|(_, c)| format!("[-{c} value]"))
            .collect();
        let flags = if plain.is_empty() {
            String::new()
        } else {
            format!(" [-{plain}]")
        };
        let valued = if valued.is_empty() {
            String::new()
        } else {
            format!(" {}", valued.join(" "))
        };
        out.push_str(&format!("{name}{alias}{flags}{valued}\n"));
    }
    if out.is_empty() {
        if let Some(want) = args.rest.first() {
            return Err(TmuxError::msg(format!("unknown command: {want}")));
        }
    }
    out!("{out}");
    Ok(())
}

pub(crate) fn source_file(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    for path in &args.rest {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.has('q') => continue,
            Err(e) => return Err(TmuxError::msg(format!("{path}: {e}"))),
        };
        if args.has('n') {
            for (n, line) in text.lines().enumerate() {
                if shlex::split(line).is_none() {
                    return Err(TmuxError::msg(format!("{path}:{}: syntax error", n + 1)));
                }
            }
            continue;
        }
        c.source(std::path::Path::new(path), &text)?;
    }
    Ok(())
}

/// The directory commands run in: the target pane's, else this process's.
fn directory(c: &mut Ctx, args: &Args) -> Option<String> {
    let current = c.ctx.current_pane;
    let server = c.server().ok()?;
    let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane).ok()?;
    let daemon = super::session::pane_daemon(server, found).ok()?;
    server.live.get(&daemon).map(crate::vars::current_path)
}

fn shell(command: &str, dir: Option<&str>) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", command]).stdin(Stdio::null());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd
}

pub(crate) fn run_shell(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let Some(command) = args.rest.first().cloned() else {
        return Err(TmuxError::msg(
            "command run-shell: too few arguments (need 1)",
        ));
    };
    if args.has('C') {
        let words = shlex::split(&command)
            .ok_or_else(|| TmuxError::msg(format!("syntax error: {command}")))?;
        return c.exec(&words);
    }
    let dir = args
        .get('c')
        .map(str::to_owned)
        .or_else(|| directory(c, args));
    let mut cmd = shell(&command, dir.as_deref());
    if args.has('b') {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd.spawn()?;
        return Ok(());
    }
    let out = cmd.output()?;
    out!("{}", String::from_utf8_lossy(&out.stdout));
    if args.has('E') {
        err!("{}", String::from_utf8_lossy(&out.stderr));
    }
    match out.status.code() {
        Some(0) => Ok(()),
        Some(n) => Err(TmuxError::msg(format!("'{command}' returned {n}"))),
        None => Err(TmuxError::msg(format!("'{command}' terminated by signal"))),
    }
}

pub(crate) fn if_shell(c: &mut Ctx, args: &Args) -> Result<(), TmuxError> {
    let [condition, yes, rest @ ..] = args.rest.as_slice() else {
        return Err(TmuxError::msg(
            "command if-shell: too few arguments (need 2)",
        ));
    };
    let truth = if args.has('F') {
        let current = c.ctx.current_pane;
        let server = c.server()?;
        let found = target::resolve(&server.state, current, args.get('t'), Kind::Pane)?;
        let v = crate::vars::View::new(server, found)
            .map(|view| view.expand(condition))
            .unwrap_or_default();
        !v.is_empty() && v != "0"
    } else {
        let dir = directory(c, args);
        shell(condition, dir.as_deref())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success()
    };
    let chosen = if truth { Some(yes) } else { rest.first() };
    let Some(chosen) = chosen else {
        return Ok(());
    };
    let words =
        shlex::split(chosen).ok_or_else(|| TmuxError::msg(format!("syntax error: {chosen}")))?;
    for list in super::split_commands(&words) {
        if !list.is_empty() {
            c.exec(&list)?;
        }
    }
    Ok(())
}
