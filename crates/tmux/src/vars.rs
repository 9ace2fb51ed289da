//! Format variables of a session, window and pane, from the layer's state and the daemon's
//! session (pid, size, foreground process) read when asked: `history_size`, the cursor and
//! `pane_command_status` cost a call each and are fetched only for formats that use them.

use ai_session_protocol::registry::{self as reg, Method};
use std::cell::OnceCell;

use ai_session_protocol::methods::{
    CaptureParams, CaptureResult, SessionInfo, WaitFor, WaitParams, WaitResult,
};

use crate::options;
use crate::server::Server;
use crate::state::{PaneRec, SessionRec, State, WindowRec};
use crate::target::Found;

/// The variables `display-message -a` lists.
pub const NAMES: &[&str] = &[
    "alternate_on",
    "cursor_x",
    "cursor_y",
    "history_bytes",
    "history_limit",
    "history_size",
    "host",
    "host_short",
    "pane_active",
    "pane_at_bottom",
    "pane_at_left",
    "pane_at_right",
    "pane_at_top",
    "pane_bottom",
    "pane_command_status",
    "pane_current_command",
    "pane_current_path",
    "pane_dead",
    "pane_height",
    "pane_id",
    "pane_index",
    "pane_left",
    "pane_pid",
    "pane_pipe",
    "pane_right",
    "pane_start_command",
    "pane_start_path",
    "pane_title",
    "pane_top",
    "pane_tty",
    "pane_width",
    "pid",
    "session_activity",
    "session_attached",
    "session_created",
    "session_id",
    "session_name",
    "session_path",
    "session_windows",
    "socket_path",
    "version",
    "window_active",
    "window_flags",
    "window_height",
    "window_id",
    "window_index",
    "window_layout",
    "window_name",
    "window_panes",
    "window_width",
];

/// A window's name.
pub fn window_name(_state: &State, _s: &SessionRec, w: &WindowRec) -> String {
    w.name.clone()
}

/// The values one format line sees: a session, a window and a pane.
pub struct View<'a> {
    server: &'a Server,
    s: &'a SessionRec,
    w: &'a WindowRec,
    p: &'a PaneRec,
    capture: OnceCell<Option<CaptureResult>>,
}

impl<'a> View<'a> {
    /// The view of a resolved target; `None` when it vanished from the state.
    pub fn new(server: &'a Server, f: Found) -> Option<Self> {
        let s = server.state.session(f.session)?;
        let w = s.window(f.window)?;
        let p = w.panes.iter().find(|p| p.id == f.pane)?;
        Some(Self {
            server,
            s,
            w,
            p,
            capture: OnceCell::new(),
        })
    }

    /// Expands `template` for this view.
    pub fn expand(&self, template: &str) -> String {
        crate::format::expand(template, &|name| self.get(name))
    }

    fn info(&self) -> Option<&SessionInfo> {
        self.server.live.get(&self.p.daemon)
    }

    fn captured(&self) -> Option<&CaptureResult> {
        self.capture
            .get_or_init(|| {
                let limit = options::number(
                    &self.server.state,
                    Some(self.s),
                    Some(self.w),
                    "history-limit",
                );
                let params = CaptureParams {
                    target: self.p.daemon.clone(),
                    scrollback: usize::try_from(limit).unwrap_or(0),
                    ansi: false,
                };
                self.server.call(reg::SessionCapture::NAME, params).ok()
            })
            .as_ref()
    }

    /// The exit status of the last command the pane's shell finished, while it is at its
    /// prompt; `None` while a command runs or when the shell reports no statuses.
    pub fn command_status(&self) -> Option<i32> {
        let params = WaitParams {
            target: self.p.daemon.clone(),
            condition: WaitFor::Prompt,
            timeout_ms: Some(0),
            since: None,
        };
        let r: WaitResult = self.server.call(reg::SessionWait::NAME, params).ok()?;
        r.exit_code
    }

    /// One variable's value; `None` for names this layer does not know (they expand to "").
    pub fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.session_var(name) {
            return Some(v);
        }
        if let Some(v) = self.window_var(name) {
            return Some(v);
        }
        self.pane_var(name)
    }

    fn session_var(&self, name: &str) -> Option<String> {
        let s = self.s;
        Some(match name {
            "session_name" => s.name.clone(),
            "session_id" => format!("${}", s.id),
            "session_created" | "session_activity" | "session_last_attached" => {
                s.created.to_string()
            }
            "session_windows" => s.windows.len().to_string(),
            "session_attached" | "session_many_attached" | "session_grouped" => "0".into(),
            "session_group" | "session_alerts" | "session_stack" => String::new(),
            "session_format" => "1".into(),
            "session_path" => self.info().map(|i| i.cwd.clone()).unwrap_or_default(),
            "host" => host(),
            "host_short" => host().split('.').next().unwrap_or("").to_owned(),
            "pid" => self.server.daemon_pid.to_string(),
            "socket_path" => self.server.ctx.socket(),
            "version" => crate::VERSION.into(),
            _ => return None,
        })
    }

    fn window_var(&self, name: &str) -> Option<String> {
        let (s, w) = (self.s, self.w);
        let active = s.active == w.index;
        let last = s.last == Some(w.index);
        Some(match name {
            "window_index" => w.index.to_string(),
            "window_id" => format!("@{}", w.id),
            "window_name" => window_name(&self.server.state, s, w),
            "window_active" => flag(active),
            "window_last_flag" => flag(last),
            "window_panes" => w.panes.len().to_string(),
            "window_width" => w.w.to_string(),
            "window_height" => w.h.to_string(),
            "window_layout" | "window_visible_layout" => layout(w),
            "window_flags" | "window_raw_flags" => {
                let f = if active {
                    "*"
                } else if last {
                    "-"
                } else {
                    ""
                };
                f.into()
            }
            "window_zoomed_flag"
            | "window_bell_flag"
            | "window_silence_flag"
            | "window_activity_flag"
            | "window_linked"
            | "window_marked_flag"
            | "window_bigger"
            | "window_offset_x"
            | "window_offset_y" => "0".into(),
            "window_format" => "1".into(),
            "window_activity" => w.activity.to_string(),
            "window_start_flag" => flag(s.windows.first().map(|x| x.index) == Some(w.index)),
            "window_end_flag" => flag(s.windows.last().map(|x| x.index) == Some(w.index)),
            "window_cell_width" | "window_cell_height" => "0".into(),
            _ => return None,
        })
    }

    fn pane_var(&self, name: &str) -> Option<String> {
        let (w, p) = (self.w, self.p);
        let pos = w.panes.iter().position(|x| x.id == p.id).unwrap_or(0);
        let base = options::number(&self.server.state, Some(self.s), Some(w), "pane-base-index");
        let info = self.info();
        Some(match name {
            "pane_id" => format!("%{}", p.id),
            "pane_index" => (pos as i64 + base).to_string(),
            "pane_active" => flag(w.active == p.id),
            "pane_last" => "0".into(),
            "pane_pid" => info.map(|i| i.pid.to_string()).unwrap_or_default(),
            "pane_tty" => info
                .and_then(|i| std::fs::read_link(format!("/proc/{}/fd/0", i.pid)).ok())
                .map(|t| t.display().to_string())
                .unwrap_or_default(),
            "pane_current_command" => info.map(current_command).unwrap_or_default(),
            "pane_current_path" => info.map(current_path).unwrap_or_default(),
            "pane_start_command" => p.start_command.clone(),
            "pane_start_path" => info.map(|i| i.cwd.clone()).unwrap_or_default(),
            "pane_width" => p.rect.w.to_string(),
            "pane_height" => p.rect.h.to_string(),
            "pane_left" => p.rect.x.to_string(),
            "pane_top" => p.rect.y.to_string(),
            "pane_right" => (p.rect.x + p.rect.w).saturating_sub(1).to_string(),
            "pane_bottom" => (p.rect.y + p.rect.h).saturating_sub(1).to_string(),
            "pane_at_left" => flag(p.rect.x == 0),
            "pane_at_top" => flag(p.rect.y == 0),
            "pane_at_right" => flag(p.rect.x + p.rect.w >= w.w),
            "pane_at_bottom" => flag(p.rect.y + p.rect.h >= w.h),
            "pane_title" => {
                if !p.title.is_empty() {
                    p.title.clone()
                } else {
                    self.captured()
                        .and_then(|c| c.title.clone())
                        .filter(|t| !t.is_empty())
                        .unwrap_or_else(host)
                }
            }
            "pane_dead"
            | "pane_in_mode"
            | "pane_synchronized"
            | "pane_marked"
            | "pane_marked_set"
            | "pane_input_off"
            | "pane_unseen_changes" => "0".into(),
            "pane_dead_status" | "pane_dead_signal" | "pane_dead_time" | "pane_mode" => {
                String::new()
            }
            "pane_pipe" => flag(p.pipe_pid.is_some()),
            "pane_format" => "1".into(),
            "history_limit" => {
                options::value(&self.server.state, Some(self.s), Some(w), "history-limit")
            }
            "history_size" => self
                .captured()?
                .scrollback_lines
                .saturating_sub(p.hidden_history)
                .to_string(),
            "history_bytes" => self
                .captured()?
                .lines
                .iter()
                .take(self.captured()?.scrollback_lines)
                .map(|l| l.len())
                .sum::<usize>()
                .to_string(),
            "cursor_x" => self.captured()?.cursor_col.to_string(),
            "cursor_y" => self.captured()?.cursor_row.to_string(),
            "alternate_on" => flag(self.captured()?.alternate_screen),
            "alternate_saved_x" | "alternate_saved_y" | "scroll_region_upper" => "0".into(),
            "scroll_region_lower" => p.rect.h.saturating_sub(1).to_string(),
            "pane_command_status" => self.command_status()?.to_string(),
            // tmux counts seconds; the daemon measured milliseconds.
            "pane_command_duration" => info?
                .last_command
                .filter(|_| self.command_status().is_some())
                .map(|c| (c.duration_ms / 1000).to_string())?,
            "pane_command_duration_ms" => info?
                .last_command
                .filter(|_| self.command_status().is_some())
                .map(|c| c.duration_ms.to_string())?,
            _ => return None,
        })
    }
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.into()
}

/// The program holding the pane's terminal: the foreground process, else the pane's program.
pub fn current_command(i: &SessionInfo) -> String {
    if let Some(f) = &i.foreground {
        return f.command.clone();
    }
    std::fs::read_to_string(format!("/proc/{}/comm", i.pid))
        .map(|c| c.trim_end().to_owned())
        .ok()
        .or_else(|| {
            i.program
                .first()
                .map(|p| p.rsplit('/').next().unwrap_or(p).to_owned())
        })
        .unwrap_or_default()
}

/// The working directory of the process holding the pane's terminal.
pub fn current_path(i: &SessionInfo) -> String {
    let pid = i.foreground.as_ref().map(|f| f.pid).unwrap_or(i.pid);
    std::fs::read_link(format!("/proc/{pid}/cwd"))
        .or_else(|_| std::fs::read_link(format!("/proc/{}/cwd", i.pid)))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| i.cwd.clone())
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// tmux's layout string, with its checksum: one cell per pane, side by side when the panes
/// share rows, stacked when they share columns.
pub fn layout(w: &WindowRec) -> String {
    let cell = |p: &PaneRec| format!("{}x{},{},{}", p.rect.w, p.rect.h, p.rect.x, p.rect.y);
    let body = match w.panes.as_slice() {
        [one] => format!("{},{}", cell(one), one.id),
        panes => {
            let side = panes.iter().all(|p| p.rect.y == panes[0].rect.y);
            let inner: Vec<String> = panes
                .iter()
                .map(|p| format!("{},{}", cell(p), p.id))
                .collect();
            let (open, close) = if side { ('{', '}') } else { ('[', ']') };
            format!("{}x{},0,0{open}{}{close}", w.w, w.h, inner.join(","))
        }
    };
    let mut csum: u16 = 0;
    for b in body.bytes() {
        csum = (csum >> 1) | ((csum & 1) << 15);
        csum = csum.wrapping_add(u16::from(b));
    }
    format!("{csum:04x},{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_checksum_matches_tmux() {
        let w = WindowRec {
            id: 0,
            index: 0,
            name: "bash".into(),
            panes: vec![PaneRec {
                id: 0,
                daemon: "a.0.0".into(),
                rect: crate::state::Rect {
                    x: 0,
                    y: 0,
                    w: 100,
                    h: 30,
                },
                title: String::new(),
                pipe_pid: None,
                hidden_history: 0,
                start_command: String::new(),
            }],
            active: 0,
            w: 100,
            h: 30,
            options: Default::default(),
            activity: 0,
            last_pane: None,
        };
        // From `tmux new -d -x 100 -y 30; tmux lsw`.
        assert_eq!(layout(&w), "a87d,100x30,0,0,0");
    }
}
