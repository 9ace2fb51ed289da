//! What tmux knows and the daemon does not: session, window and pane ids, window names and
//! indexes, pane order and geometry, options, session environments, wait-for channels. Kept in
//! `tmux.json` beside the daemon's own state (`servers/<label>/`), read and written under an
//! exclusive `flock` on `tmux.lock`, so concurrent tmux commands (panes calling `tmux` while a
//! harness drives them) see one another's changes. The daemon's session list stays the truth
//! about which panes exist: [`crate::server`] reconciles the two on every command.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TmuxError;

/// A rectangle of cells in its window.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaneRec {
    /// `%N`.
    pub id: u32,
    /// The daemon session that is this pane.
    pub daemon: String,
    pub rect: Rect,
    #[serde(default)]
    pub title: String,
    /// The `pipe-pane` process, while one runs.
    #[serde(default)]
    pub pipe_pid: Option<i32>,
    /// The command the pane was started with (empty for a shell).
    #[serde(default)]
    pub start_command: String,
    /// Scrollback lines hidden by `clear-history` (the oldest ones).
    #[serde(default)]
    pub hidden_history: usize,
}

/// A paste buffer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Buffer {
    pub name: String,
    pub data: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowRec {
    /// `@N`.
    pub id: u32,
    pub index: u32,
    pub name: String,
    /// Panes in tmux order (their index is the position).
    pub panes: Vec<PaneRec>,
    /// The active pane's id.
    pub active: u32,
    pub w: u16,
    pub h: u16,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// The previously active pane's id (`select-pane -l`).
    #[serde(default)]
    pub last_pane: Option<u32>,
    /// The time the window was last made active, for `window_activity` ordering.
    #[serde(default)]
    pub activity: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRec {
    /// `$N`.
    pub id: u32,
    pub name: String,
    /// The daemon-name prefix of its panes (fixed at creation: a renamed session keeps it).
    pub prefix: String,
    /// Unix seconds.
    pub created: u64,
    pub windows: Vec<WindowRec>,
    /// The current window's index.
    pub active: u32,
    /// The previously current window's index.
    #[serde(default)]
    pub last: Option<u32>,
    /// `set-environment` settings: `None` removes the variable (`-u`/`-r`).
    #[serde(default)]
    pub env: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub next_session: u32,
    pub next_window: u32,
    pub next_pane: u32,
    pub sessions: Vec<SessionRec>,
    /// `set-option -g`: session and window options for every session.
    #[serde(default)]
    pub global_options: BTreeMap<String, String>,
    /// `set-option -s`.
    #[serde(default)]
    pub server_options: BTreeMap<String, String>,
    /// `set-environment -g`.
    #[serde(default)]
    pub global_env: BTreeMap<String, Option<String>>,
    /// `wait-for -S` on a channel nobody waited on: the next wait returns at once.
    #[serde(default)]
    pub woken: BTreeSet<String>,
    /// Channels held with `wait-for -L`.
    #[serde(default)]
    pub locked: BTreeSet<String>,
    /// Paste buffers, newest first.
    #[serde(default)]
    pub buffers: Vec<Buffer>,
    #[serde(default)]
    pub next_buffer: u32,
    /// The configuration files were read (once per tmux "server": until kill-server).
    #[serde(default)]
    pub configured: bool,
}

/// The state file, held locked from [`Store::lock`] until the guard drops.
pub struct Store {
    path: PathBuf,
    _lock: File,
}

impl Store {
    /// Takes the exclusive lock of the layer's state in the daemon's directory `dir`.
    pub fn lock(dir: &Path) -> Result<Self, TmuxError> {
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("tmux.lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)?;
        Ok(Self {
            path: dir.join("tmux.json"),
            _lock: lock,
        })
    }

    /// The saved state; empty when none was saved yet. A file that does not parse (written by
    /// another version) is started over: the daemon's sessions are adopted again from their
    /// names.
    pub fn load(&self) -> State {
        std::fs::read(&self.path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Writes `state` atomically (a temporary file renamed over the old one).
    pub fn save(&self, state: &State) -> Result<(), TmuxError> {
        let tmp = self.path.with_extension("json.tmp");
        let data = serde_json::to_vec(state).map_err(|e| TmuxError::msg(e.to_string()))?;
        let mut f = File::create(&tmp)?;
        f.write_all(&data)?;
        std::fs::rename(&tmp, &self.path)?;
        Ok(())
    }
}

impl State {
    pub fn session(&self, id: u32) -> Option<&SessionRec> {
        self.sessions.iter().find(|s| s.id == id)
    }

    pub fn session_mut(&mut self, id: u32) -> Option<&mut SessionRec> {
        self.sessions.iter_mut().find(|s| s.id == id)
    }
}

impl SessionRec {
    pub fn window(&self, index: u32) -> Option<&WindowRec> {
        self.windows.iter().find(|w| w.index == index)
    }

    pub fn window_mut(&mut self, index: u32) -> Option<&mut WindowRec> {
        self.windows.iter_mut().find(|w| w.index == index)
    }
}

impl WindowRec {
    /// The active pane's position in `panes`.
    pub fn active_pos(&self) -> usize {
        self.panes
            .iter()
            .position(|p| p.id == self.active)
            .unwrap_or(0)
    }
}
