//! The command table and the entry point: tmux's global flags, `;`-separated command lists,
//! command names, aliases and unique prefixes, and one module per command family.

mod io;
mod misc;
mod option;
mod pane;
mod session;
mod wait;
mod window;

use std::path::PathBuf;

use ai_session_client::Selector;

use crate::args::Args;
use crate::error::TmuxError;
use crate::server::{Context, Server};

type Handler = fn(&mut Ctx, &Args) -> Result<(), TmuxError>;

/// One command: its name, alias, getopt spec and handler.
struct Command {
    name: &'static str,
    alias: &'static str,
    spec: &'static str,
    run: Handler,
}

/// What a handler works with: the context and, once opened, the server.
pub(crate) struct Ctx {
    pub ctx: Context,
    server: Option<Server>,
}

impl Ctx {
    /// The server, connected without starting the daemon.
    pub fn server(&mut self) -> Result<&mut Server, TmuxError> {
        self.open(false)
    }

    /// The server, starting the daemon when none runs. A server that starts (the first
    /// command after kill-server, or ever) reads its configuration files.
    pub fn open(&mut self, start: bool) -> Result<&mut Server, TmuxError> {
        if self.server.is_none() {
            let mut server = Server::open(&self.ctx, start)?;
            let configure = start && !server.state.configured;
            server.state.configured = true;
            self.server = Some(server);
            if configure {
                self.source_config();
            }
        }
        self.server
            .as_mut()
            .ok_or_else(|| TmuxError::msg("no server"))
    }

    /// Runs the configuration's commands in the server just started: `-f FILE`, else tmux's
    /// own list (`/etc/tmux.conf`, `~/.tmux.conf`, `$XDG_CONFIG_HOME/tmux/tmux.conf`,
    /// `~/.config/tmux/tmux.conf`). As in tmux, a line that fails is reported on stderr and
    /// the rest still runs.
    fn source_config(&mut self) {
        let files: Vec<PathBuf> = match &self.ctx.config {
            Some(f) => vec![f.clone()],
            None => {
                let home = std::env::var_os("HOME").map(PathBuf::from);
                let xdg = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
                [
                    Some(PathBuf::from("/etc/tmux.conf")),
                    home.as_ref().map(|h| h.join(".tmux.conf")),
                    xdg.map(|x| x.join("tmux/tmux.conf")),
                    home.map(|h| h.join(".config/tmux/tmux.conf")),
                ]
                .into_iter()
                .flatten()
                .collect()
            }
        };
        for path in files {
            if let Ok(text) = std::fs::read_to_string(&path) {
                if let Err(e) = self.source(&path, &text) {
                    errln!("{e}");
                }
            }
        }
    }

    /// Runs a configuration file's commands, one line each (`;` separates commands).
    pub fn source(&mut self, path: &std::path::Path, text: &str) -> Result<(), TmuxError> {
        let mut errors = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words = shlex::split(line).ok_or_else(|| {
                TmuxError::msg(format!("{}:{}: syntax error", path.display(), n + 1))
            })?;
            for list in split_commands(&words) {
                if list.is_empty() {
                    continue;
                }
                if let Err(e) = self.exec(&list) {
                    errors.push(format!("{}:{}: {e}", path.display(), n + 1));
                }
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(TmuxError::msg(errors.join("\n"))),
        }
    }

    pub fn exec(&mut self, words: &[String]) -> Result<(), TmuxError> {
        let command = lookup(&words[0])?;
        let args = Args::parse(command.name, command.spec, &words[1..])?;
        (command.run)(self, &args)
    }
}

/// The commands, for `list-commands`: name, alias and flags.
pub(crate) fn table() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    COMMANDS
        .iter()
        .filter(|c| !c.name.starts_with('_'))
        .map(|c| (c.name, c.alias, c.spec))
}

#[rustfmt::skip]
const COMMANDS: &[Command] = &[
    Command { name: "_pipe-pane", alias: "", spec: "", run: io::pipe_runner },
    Command { name: "attach-session", alias: "attach", spec: "c:dEf:rt:x", run: session::attach },
    Command { name: "capture-pane", alias: "capturep", spec: "ab:CeE:JNpPqS:t:", run: io::capture },
    Command { name: "clear-history", alias: "clearhist", spec: "Ht:", run: io::clear_history },
    Command { name: "delete-buffer", alias: "deleteb", spec: "b:", run: io::delete_buffer },
    Command { name: "display-message", alias: "display", spec: "aCc:d:lINpt:F:v", run: pane::display },
    Command { name: "has-session", alias: "has", spec: "t:", run: session::has },
    Command { name: "if-shell", alias: "if", spec: "bFt:", run: misc::if_shell },
    Command { name: "last-pane", alias: "lastp", spec: "det:Z", run: pane::last },
    Command { name: "last-window", alias: "last", spec: "t:", run: window::last },
    Command { name: "kill-pane", alias: "killp", spec: "at:", run: pane::kill },
    Command { name: "kill-server", alias: "", spec: "", run: session::kill_server },
    Command { name: "kill-session", alias: "", spec: "aCt:", run: session::kill },
    Command { name: "kill-window", alias: "killw", spec: "at:", run: window::kill },
    Command { name: "list-buffers", alias: "lsb", spec: "F:f:", run: io::list_buffers },
    Command { name: "list-commands", alias: "lscm", spec: "F:", run: misc::list_commands },
    Command { name: "list-panes", alias: "lsp", spec: "asF:f:t:", run: pane::list },
    Command { name: "list-sessions", alias: "ls", spec: "F:f:", run: session::list },
    Command { name: "list-windows", alias: "lsw", spec: "aF:f:t:", run: window::list },
    Command { name: "load-buffer", alias: "loadb", spec: "b:t:w", run: io::load_buffer },
    Command { name: "new-session", alias: "new", spec: "Ac:dDe:EF:f:n:Ps:t:x:Xy:", run: session::new },
    Command { name: "new-window", alias: "neww", spec: "abc:de:F:kn:PSt:", run: window::new },
    Command { name: "next-window", alias: "next", spec: "at:", run: window::next },
    Command { name: "paste-buffer", alias: "pasteb", spec: "b:dprs:t:", run: io::paste_buffer },
    Command { name: "pipe-pane", alias: "pipep", spec: "IOot:", run: io::pipe_pane },
    Command { name: "previous-window", alias: "prev", spec: "at:", run: window::previous },
    Command { name: "rename-session", alias: "rename", spec: "t:", run: session::rename },
    Command { name: "rename-window", alias: "renamew", spec: "t:", run: window::rename },
    Command { name: "resize-pane", alias: "resizep", spec: "DLMRTt:Ux:y:Z", run: pane::resize },
    Command { name: "resize-window", alias: "resizew", spec: "aADLRt:Ux:y:", run: window::resize },
    Command { name: "respawn-pane", alias: "respawnp", spec: "c:e:kt:", run: pane::respawn },
    Command { name: "run-shell", alias: "run", spec: "bd:Ct:Ec:", run: misc::run_shell },
    Command { name: "save-buffer", alias: "saveb", spec: "ab:", run: io::save_buffer },
    Command { name: "select-pane", alias: "selectp", spec: "DdeLlMmRT:t:UZ", run: pane::select },
    Command { name: "select-window", alias: "selectw", spec: "lnpTt:", run: window::select },
    Command { name: "send-keys", alias: "send", spec: "c:FHKlMN:RXt:", run: io::send_keys },
    Command { name: "set-buffer", alias: "setb", spec: "ab:t:n:w", run: io::set_buffer },
    Command { name: "set-environment", alias: "setenv", spec: "Fhgrt:u", run: option::set_environment },
    Command { name: "set-option", alias: "set", spec: "aFgopqst:uUw", run: option::set },
    Command { name: "set-window-option", alias: "setw", spec: "aFgoqt:u", run: option::set_window },
    Command { name: "show-buffer", alias: "showb", spec: "b:", run: io::show_buffer },
    Command { name: "show-environment", alias: "showenv", spec: "hgst:", run: option::show_environment },
    Command { name: "show-options", alias: "show", spec: "AgHpqst:vw", run: option::show },
    Command { name: "show-window-options", alias: "showw", spec: "gvt:", run: option::show_window },
    Command { name: "source-file", alias: "source", spec: "Fnqt:v", run: misc::source_file },
    Command { name: "split-window", alias: "splitw", spec: "bc:de:fF:hIl:p:Pt:vZ", run: pane::split },
    Command { name: "start-server", alias: "start", spec: "", run: session::start_server },
    Command { name: "wait-for", alias: "wait", spec: "ELSUt:", run: wait::wait_for },
];

/// Commands tmux has that this layer refuses, each with the reason `docs/tmux.md` gives.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("break-pane", "panes cannot move between windows"),
    ("join-pane", "panes cannot move between windows"),
    ("move-pane", "panes cannot move between windows"),
    (
        "move-window",
        "window indexes are part of the panes' daemon names",
    ),
    (
        "swap-window",
        "window indexes are part of the panes' daemon names",
    ),
    ("link-window", "a window belongs to one session"),
    ("swap-pane", "pane geometry is not a layout tree"),
    ("rotate-window", "pane geometry is not a layout tree"),
    ("select-layout", "pane geometry is not a layout tree"),
    (
        "copy-mode",
        "there is no copy mode: capture-pane reads the history",
    ),
    (
        "choose-tree",
        "an interactive chooser needs tmux's own client",
    ),
    (
        "command-prompt",
        "an interactive prompt needs tmux's own client",
    ),
    ("display-popup", "popups need tmux's own client"),
    ("display-menu", "menus need tmux's own client"),
    ("detach-client", "clients attach with ai-session attach"),
    ("switch-client", "clients attach with ai-session attach"),
    ("list-clients", "clients attach with ai-session attach"),
    ("refresh-client", "clients attach with ai-session attach"),
    ("bind-key", "key bindings need tmux's own client"),
    ("unbind-key", "key bindings need tmux's own client"),
    ("list-keys", "key bindings need tmux's own client"),
    (
        "set-hook",
        "hooks are not run; subscribe to the daemon's events instead",
    ),
    (
        "show-hooks",
        "hooks are not run; subscribe to the daemon's events instead",
    ),
    ("lock-server", "there is no lock screen"),
    ("lock-session", "there is no lock screen"),
    ("lock-client", "there is no lock screen"),
    ("suspend-client", "clients attach with ai-session attach"),
    ("show-messages", "messages are shown to tmux's own client"),
    (
        "show-prompt-history",
        "an interactive prompt needs tmux's own client",
    ),
    (
        "clear-prompt-history",
        "an interactive prompt needs tmux's own client",
    ),
    (
        "server-access",
        "access is the daemon's: see ai-session access",
    ),
    ("clock-mode", "interactive modes need tmux's own client"),
    (
        "choose-buffer",
        "an interactive chooser needs tmux's own client",
    ),
    (
        "choose-client",
        "an interactive chooser needs tmux's own client",
    ),
    ("customize-mode", "interactive modes need tmux's own client"),
    (
        "find-window",
        "an interactive chooser needs tmux's own client",
    ),
    (
        "display-panes",
        "pane numbers are shown on tmux's own client",
    ),
    ("send-prefix", "key bindings need tmux's own client"),
    ("next-layout", "pane geometry is not a layout tree"),
    ("previous-layout", "pane geometry is not a layout tree"),
    (
        "respawn-window",
        "a window is its panes: respawn-pane -k each one",
    ),
    ("unlink-window", "a window belongs to one session"),
];

fn lookup(word: &str) -> Result<&'static Command, TmuxError> {
    if let Some(c) = COMMANDS.iter().find(|c| c.name == word || c.alias == word) {
        return Ok(c);
    }
    if let Some((name, why)) = UNSUPPORTED.iter().find(|(n, _)| *n == word) {
        return Err(TmuxError::msg(format!(
            "{name}: not supported by ai-session ({why})"
        )));
    }
    let matches: Vec<&Command> = COMMANDS
        .iter()
        .filter(|c| c.name.starts_with(word) && !c.name.starts_with('_'))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(TmuxError::msg(format!("unknown command: {word}"))),
        many => Err(TmuxError::msg(format!(
            "ambiguous command: {word}, could be: {}",
            many.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Runs tmux's command line `args` (without the program name) and returns the exit status.
pub fn run(args: &[String]) -> i32 {
    match run_inner(args) {
        Ok(()) => 0,
        Err(e) => {
            let msg = e.to_string();
            if !msg.is_empty() {
                errln!("{msg}");
            }
            e.status()
        }
    }
}

fn run_inner(args: &[String]) -> Result<(), TmuxError> {
    let global = Args::parse("tmux", "2c:CDf:lL:NS:T:uvV", args)
        .map_err(|_| TmuxError::msg("usage: tmux [-2CDlNuvV] [-c shell-command] [-f file] [-L socket-name] [-S socket-path] [-T features] [command [flags]]"))?;
    if global.has('V') {
        outln!("tmux {}", crate::VERSION);
        return Ok(());
    }
    if global.has('C') || global.has('D') {
        return Err(TmuxError::msg(
            "control mode and server-only mode are not supported by ai-session (subscribe to the daemon's output instead)",
        ));
    }
    if global.has('c') {
        return Err(TmuxError::msg(
            "-c (run a shell command as a login shell) is not supported by ai-session",
        ));
    }
    let mut ctx = Context {
        config: global.get('f').map(PathBuf::from),
        ..Context::default()
    };
    let from_env = std::env::var("TMUX").ok().filter(|t| !t.is_empty());
    match (global.get('S'), global.get('L'), from_env) {
        (Some(path), _, _) => ctx.sel = Selector::socket(path),
        (None, Some(label), _) => {
            ctx.sel = Selector {
                label: Some(label.to_owned()),
                socket: None,
            }
        }
        (None, None, Some(tmux)) => {
            // `$TMUX` is `SOCKET,PID,SESSION` inside a pane: commands go to the same daemon.
            if let Some(socket) = tmux.rsplitn(3, ',').nth(2) {
                ctx.sel = Selector::socket(socket);
                ctx.current_pane = std::env::var("TMUX_PANE")
                    .ok()
                    .and_then(|p| p.strip_prefix('%').and_then(|n| n.parse().ok()));
            }
        }
        _ => {}
    }
    let mut ctx = Ctx { ctx, server: None };
    let words = &global.rest;
    if words.is_empty() {
        return ctx.exec(&["new-session".to_owned()]);
    }
    for list in split_commands(words) {
        if !list.is_empty() {
            ctx.exec(&list)?;
        }
    }
    if let Some(server) = &ctx.server {
        server.save()?;
    }
    Ok(())
}

/// Splits at `;` words; a word ending in `\;` is one more command's end too.
fn split_commands(words: &[String]) -> Vec<Vec<String>> {
    let mut out = vec![Vec::new()];
    for w in words {
        if w == ";" {
            out.push(Vec::new());
        } else if let Some(head) = w.strip_suffix("\\;") {
            if let Some(last) = out.last_mut() {
                last.push(head.to_owned());
            }
            out.push(Vec::new());
        } else if let Some(last) = out.last_mut() {
            last.push(w.clone());
        }
    }
    out
}

/// Prints one line per item for a list command's `-F` and `-f`.
pub(crate) fn print_rows(
    server: &Server,
    rows: &[crate::target::Found],
    format: &str,
    filter: Option<&str>,
) {
    let mut out = String::new();
    for f in rows {
        let Some(view) = crate::vars::View::new(server, *f) else {
            continue;
        };
        if let Some(filter) = filter {
            let v = view.expand(filter);
            if v.is_empty() || v == "0" {
                continue;
            }
        }
        out.push_str(&view.expand(format));
        out.push('\n');
    }
    out!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_prefixes() {
        assert_eq!(lookup("ls").map(|c| c.name).ok(), Some("list-sessions"));
        assert_eq!(lookup("new").map(|c| c.name).ok(), Some("new-session"));
        assert_eq!(lookup("kill-ser").map(|c| c.name).ok(), Some("kill-server"));
        assert!(lookup("li").is_err());
        assert_eq!(
            lookup("nope").err().map(|e| e.to_string()),
            Some("unknown command: nope".into())
        );
        let words: Vec<String> = ["new", "-d", ";", "ls"].map(String::from).to_vec();
        assert_eq!(split_commands(&words).len(), 2);
    }
}
