//! tmux options: the names a harness sets or reads, their scopes and defaults (tmux 3.3a's),
//! and the lookup order (window, session, global, default). User options (`@name`) are
//! accepted in every scope.

use crate::state::{SessionRec, State, WindowRec};

/// Where an option lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Server,
    Session,
    Window,
}

/// The known options with their scope and default value.
const TABLE: &[(&str, Scope, &str)] = &[
    ("buffer-limit", Scope::Server, "50"),
    ("command-alias", Scope::Server, ""),
    ("default-terminal", Scope::Server, "screen"),
    ("escape-time", Scope::Server, "500"),
    ("exit-empty", Scope::Server, "on"),
    ("exit-unattached", Scope::Server, "off"),
    ("extended-keys", Scope::Server, "off"),
    ("focus-events", Scope::Server, "off"),
    ("history-file", Scope::Server, ""),
    ("message-limit", Scope::Server, "1000"),
    ("set-clipboard", Scope::Server, "external"),
    ("terminal-features", Scope::Server, ""),
    ("terminal-overrides", Scope::Server, ""),
    ("activity-action", Scope::Session, "other"),
    ("assume-paste-time", Scope::Session, "1"),
    ("base-index", Scope::Session, "0"),
    ("bell-action", Scope::Session, "any"),
    ("default-command", Scope::Session, ""),
    ("default-shell", Scope::Session, ""),
    ("default-size", Scope::Session, "80x24"),
    ("destroy-unattached", Scope::Session, "off"),
    ("detach-on-destroy", Scope::Session, "on"),
    ("display-panes-time", Scope::Session, "1000"),
    ("display-time", Scope::Session, "750"),
    ("history-limit", Scope::Session, "2000"),
    ("key-table", Scope::Session, "root"),
    ("lock-after-time", Scope::Session, "0"),
    ("message-style", Scope::Session, "bg=yellow,fg=black"),
    ("mouse", Scope::Session, "off"),
    ("prefix", Scope::Session, "C-b"),
    ("prefix2", Scope::Session, "None"),
    ("renumber-windows", Scope::Session, "off"),
    ("repeat-time", Scope::Session, "500"),
    ("set-titles", Scope::Session, "off"),
    (
        "set-titles-string",
        Scope::Session,
        "#S:#I:#W - \"#T\" #{session_alerts}",
    ),
    ("silence-action", Scope::Session, "other"),
    ("status", Scope::Session, "on"),
    ("status-interval", Scope::Session, "15"),
    ("status-justify", Scope::Session, "left"),
    ("status-keys", Scope::Session, "emacs"),
    ("status-left", Scope::Session, "[#{session_name}] "),
    ("status-left-length", Scope::Session, "10"),
    ("status-position", Scope::Session, "bottom"),
    (
        "status-right",
        Scope::Session,
        "#{?window_bigger,[#{window_offset_x}#,#{window_offset_y}] ,}\"#{=21:pane_title}\" %H:%M %d-%b-%y",
    ),
    ("status-right-length", Scope::Session, "40"),
    ("status-style", Scope::Session, "bg=green,fg=black"),
    (
        "update-environment",
        Scope::Session,
        "DISPLAY KRB5CCNAME SSH_ASKPASS SSH_AUTH_SOCK SSH_AGENT_PID SSH_CONNECTION WINDOWID XAUTHORITY",
    ),
    ("visual-activity", Scope::Session, "off"),
    ("visual-bell", Scope::Session, "off"),
    ("visual-silence", Scope::Session, "off"),
    ("word-separators", Scope::Session, " "),
    ("aggressive-resize", Scope::Window, "off"),
    ("allow-passthrough", Scope::Window, "off"),
    ("allow-rename", Scope::Window, "off"),
    ("alternate-screen", Scope::Window, "on"),
    ("automatic-rename", Scope::Window, "on"),
    (
        "automatic-rename-format",
        Scope::Window,
        "#{?pane_in_mode,[tmux],#{pane_current_command}}#{?pane_dead,[dead],}",
    ),
    ("clock-mode-colour", Scope::Window, "blue"),
    ("main-pane-height", Scope::Window, "24"),
    ("main-pane-width", Scope::Window, "80"),
    ("mode-keys", Scope::Window, "emacs"),
    ("monitor-activity", Scope::Window, "off"),
    ("monitor-bell", Scope::Window, "on"),
    ("monitor-silence", Scope::Window, "0"),
    ("other-pane-height", Scope::Window, "0"),
    ("other-pane-width", Scope::Window, "0"),
    ("pane-base-index", Scope::Window, "0"),
    (
        "pane-border-format",
        Scope::Window,
        "#{?pane_active,#[reverse],}#{pane_index}#[default] \"#{pane_title}\"",
    ),
    ("pane-border-status", Scope::Window, "off"),
    ("remain-on-exit", Scope::Window, "off"),
    ("synchronize-panes", Scope::Window, "off"),
    ("window-size", Scope::Window, "latest"),
    ("wrap-search", Scope::Window, "on"),
];

/// The scope and default of a known option, or `None`.
pub fn find(name: &str) -> Option<(Scope, &'static str)> {
    TABLE
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, s, d)| (*s, *d))
}

/// Every known option of `scope`, in name order.
pub fn names(scope: Scope) -> impl Iterator<Item = &'static str> {
    TABLE
        .iter()
        .filter(move |(_, s, _)| *s == scope)
        .map(|(n, _, _)| *n)
}

/// An option's value as the pane's window in `session` sees it.
pub fn value(state: &State, s: Option<&SessionRec>, w: Option<&WindowRec>, name: &str) -> String {
    if let Some(v) = w.and_then(|w| w.options.get(name)) {
        return v.clone();
    }
    if let Some(v) = s.and_then(|s| s.options.get(name)) {
        return v.clone();
    }
    if let Some(v) = state
        .global_options
        .get(name)
        .or_else(|| state.server_options.get(name))
    {
        return v.clone();
    }
    match name {
        "default-shell" => shell_from_env(),
        _ => find(name).map(|(_, d)| d.to_owned()).unwrap_or_default(),
    }
}

/// A numeric option (`base-index`, `history-limit`), 0 when it is not a number.
pub fn number(state: &State, s: Option<&SessionRec>, w: Option<&WindowRec>, name: &str) -> i64 {
    value(state, s, w, name).parse().unwrap_or(0)
}

fn shell_from_env() -> String {
    std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into())
}

/// The shell a session's panes run, and that runs their commands.
pub fn default_shell(state: &State, s: &SessionRec) -> String {
    value(state, Some(s), None, "default-shell")
}

/// How `show-options` prints a value: quoted when it holds spaces or quotes, as tmux does.
pub fn quote(value: &str) -> String {
    if value.is_empty() {
        return "\"\"".into();
    }
    if value
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '#' | ';' | '$' | '\\'))
    {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('$', "\\$");
        format!("\"{escaped}\"")
    } else {
        value.to_owned()
    }
}
