//! [`SessionContext`]: one session's (or agent's) token-aware history. Entries come in through
//! [`SessionContext::record_exec`] and [`SessionContext::add_message`]; past the compression
//! threshold the oldest leave the live window for the archive and the running summary; trackers
//! of the last failure, unresolved errors, workspace and agent state stay current throughout.

use std::collections::{HashMap, VecDeque};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use ai_session_output::{ParsedOutput, count_tokens};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::ContextError;
use crate::agent::AgentState;
use crate::archive::Archive;
use crate::config::ContextConfig;
use crate::entry::{
    CommandRun, Entry, EntryBody, ExecRecord, Message, Role, command_line, exit_text, render_brief,
    render_full,
};
use crate::extract::{self, one_line};
use crate::summary::{Extractive, Summarizer, Summary, SummaryLimits};
use crate::task::Tasks;
use crate::workspace::{WorkspaceProbe, WorkspaceState, probe_workspace};

/// A failed run as the trackers keep it, independent of the live window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The entry.
    pub seq: u64,
    /// Its task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// The command line.
    pub command: String,
    /// Where it ran.
    pub cwd: String,
    /// Its exit code.
    pub exit_code: Option<i32>,
    /// Error lines.
    pub errors: Vec<String>,
    /// The entry that resolved it, once one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<u64>,
    /// One-line form for views (starts with `[`, ends with `\n`).
    pub text: String,
    /// Tokens of `text`.
    pub tokens: u32,
    words: Vec<String>,
}

/// Counters of what compression did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextStats {
    /// Entries ever added.
    pub entries_added: u64,
    /// Times compression ran.
    pub compressions: u64,
    /// Entries moved to the archive.
    pub entries_archived: u64,
    /// Bytes of entry text (commands, outputs, messages) moved to the archive.
    pub text_bytes_archived: u64,
    /// Time spent compressing: choosing entries, summarizing, JSON encoding, zstd, appending.
    #[serde(with = "duration_nanos")]
    pub compress_time: Duration,
}

mod duration_nanos {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_nanos() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_nanos(u64::deserialize(d)?))
    }
}

/// Derived per live entry, for scoring without touching strings. Rebuilt after loading.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    pub failed: bool,
    pub noise: bool,
    pub superseded: bool,
    pub has_errors: bool,
    pub role: Option<Role>,
    pub task: Option<u32>,
    pub files: Vec<u64>,
    /// One bit per file key (`key % 64`): a cheap first test against the files in play.
    pub files_mask: u64,
    pub cmd_key: u64,
}

/// One session's context.
pub struct SessionContext {
    pub(crate) owner: String,
    pub(crate) config: ContextConfig,
    pub(crate) next_seq: u64,
    pub(crate) live: VecDeque<Entry>,
    pub(crate) meta: VecDeque<Meta>,
    pub(crate) live_tokens: usize,
    pub(crate) summary: Summary,
    pub(crate) archive: Archive,
    pub(crate) tasks: Tasks,
    pub(crate) active_task: Option<String>,
    pub(crate) agent: AgentState,
    pub(crate) workspace: WorkspaceState,
    pub(crate) last_failure: Option<Failure>,
    pub(crate) open_errors: Vec<Failure>,
    pub(crate) stats: ContextStats,
    pub(crate) summarizer: Box<dyn Summarizer>,
    pub(crate) task_ids: HashMap<String, u32>,
    pub(crate) last_by_cmd: HashMap<u64, u64>,
    pub(crate) memo: crate::view::TokenMemo,
    /// The latest `at_ms` of an exec recorded (0 before the first).
    pub(crate) last_exec_ms: u64,
}

impl std::fmt::Debug for SessionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionContext")
            .field("owner", &self.owner)
            .field("live", &self.live.len())
            .field("live_tokens", &self.live_tokens)
            .field("archive", &self.archive)
            .field("summarizer", &self.summarizer.name())
            .finish()
    }
}

static SWITCHED: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // A constant pattern.
    Regex::new(r"Switched to (?:a new )?branch '([^']+)'").expect("constant regex")
});

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl SessionContext {
    /// An empty context for `owner` (a session or agent name).
    pub fn new(owner: impl Into<String>, config: ContextConfig) -> Result<Self, ContextError> {
        config.validate()?;
        let config_encoding = config.encoding;
        Ok(Self {
            owner: owner.into(),
            config,
            next_seq: 1,
            live: VecDeque::new(),
            meta: VecDeque::new(),
            live_tokens: 0,
            summary: Summary::default(),
            archive: Archive::default(),
            tasks: Tasks::default(),
            active_task: None,
            agent: AgentState::default(),
            workspace: WorkspaceState::default(),
            last_failure: None,
            open_errors: Vec::new(),
            stats: ContextStats::default(),
            summarizer: Box::new(Extractive),
            task_ids: HashMap::new(),
            last_by_cmd: HashMap::new(),
            memo: crate::view::TokenMemo::new(config_encoding),
            last_exec_ms: 0,
        })
    }

    /// Replaces the summarizer (the extractive one is the default, also after loading).
    pub fn set_summarizer(&mut self, s: Box<dyn Summarizer>) {
        self.summarizer = s;
    }

    /// The owner's name.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The configuration.
    pub fn config(&self) -> &ContextConfig {
        &self.config
    }

    /// Changes the configuration: recounts live entries when the encoding or the output cap
    /// changed, then compresses if the new threshold asks for it.
    pub fn set_config(&mut self, config: ContextConfig) -> Result<(), ContextError> {
        config.validate()?;
        let recount = config.encoding != self.config.encoding
            || config.max_entry_chars != self.config.max_entry_chars;
        self.memo = crate::view::TokenMemo::new(config.encoding);
        self.config = config;
        if recount {
            let mut total = 0;
            for i in 0..self.live.len() {
                let (t, b) = self.count_forms(&self.live[i])?;
                self.live[i].tokens = t;
                self.live[i].brief_tokens = b;
                total += t as usize;
            }
            self.live_tokens = total;
            for f in self
                .open_errors
                .iter_mut()
                .chain(self.last_failure.as_mut())
            {
                f.tokens = count_tokens(&f.text, self.config.encoding) as u32;
            }
        }
        self.maybe_compress()?;
        Ok(())
    }

    /// Creates (or updates) a task; `parent` must exist.
    pub fn create_task(
        &mut self,
        id: &str,
        parent: Option<&str>,
        title: Option<&str>,
    ) -> Result<(), ContextError> {
        self.tasks.upsert(id, parent, title)
    }

    /// Sets the task new entries are scoped to when they do not name one.
    pub fn set_active_task(&mut self, task: Option<&str>) -> Result<(), ContextError> {
        if let Some(t) = task {
            if self.tasks.get(t).is_none() {
                return Err(ContextError::UnknownTask(t.to_string()));
            }
        }
        self.active_task = task.map(str::to_string);
        Ok(())
    }

    /// Tasks.
    pub fn tasks(&self) -> &Tasks {
        &self.tasks
    }

    /// Agent state.
    pub fn agent(&self) -> &AgentState {
        &self.agent
    }

    /// Agent state, to declare capabilities and preferences.
    pub fn agent_mut(&mut self) -> &mut AgentState {
        &mut self.agent
    }

    /// Workspace state.
    pub fn workspace(&self) -> &WorkspaceState {
        &self.workspace
    }

    /// The most recent failure.
    pub fn last_failure(&self) -> Option<&Failure> {
        self.last_failure.as_ref()
    }

    /// Failures no later run has resolved, oldest first.
    pub fn unresolved(&self) -> &[Failure] {
        &self.open_errors
    }

    /// The running summary of archived entries.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Entries in the live window, oldest first.
    pub fn live(&self) -> impl Iterator<Item = &Entry> {
        self.live.iter()
    }

    /// Tokens of the live window plus the summary: what compression keeps under the threshold.
    pub fn tokens(&self) -> usize {
        self.live_tokens + self.summary.tokens()
    }

    /// Compression counters.
    pub fn stats(&self) -> ContextStats {
        self.stats
    }

    /// The archive (read-only).
    pub fn archive(&self) -> &Archive {
        &self.archive
    }

    /// Seals the archive's open tail into a frame (on session close), so the frames alone hold
    /// every archived entry.
    pub fn seal_archive(&mut self) -> Result<(), ContextError> {
        self.archive.seal(self.config.zstd_level)
    }

    /// Archive frames written since the last call, as bytes to append to the archive file.
    pub fn take_archive_frames(&mut self) -> Vec<u8> {
        self.archive.take_unpersisted()
    }

    /// Any entry ever added, by id: from the live window or, decompressing one frame, the
    /// archive. `None` only for ids never given out.
    pub fn get(&self, seq: u64) -> Result<Option<Entry>, ContextError> {
        if let Some(front) = self.live.front() {
            if seq >= front.seq {
                return Ok(self.live.get((seq - front.seq) as usize).cloned());
            }
        }
        self.archive.get(seq)
    }

    /// Records one exec: history entry, failure trackers, agent lessons, workspace. Returns the
    /// entry's id.
    pub fn record_exec(&mut self, record: ExecRecord) -> Result<u64, ContextError> {
        let (run, facts) = CommandRun::from_record(&record);
        let words = extract::primary_words(&run.command);
        let seq = self.next_seq;
        self.observe_workspace(&record, &run, facts.changed_files, seq);
        let lesson = self.agent.observe(
            seq,
            &words,
            &run.cwd,
            run.exit_code,
            run.failed,
            &run.output,
        );
        let task = record.task.or_else(|| self.active_task.clone());
        if run.failed {
            let f = self.failure(seq, task.clone(), &run, words.clone())?;
            let key = (
                extract::command_family(&words),
                extract::positional_words(&words),
            );
            self.open_errors.retain(|o| {
                (
                    extract::command_family(&o.words),
                    extract::positional_words(&o.words),
                ) != key
                    || o.cwd != run.cwd
            });
            self.open_errors.push(f.clone());
            self.last_failure = Some(f);
        } else if run.exit_code == Some(0) {
            let cwd = run.cwd.clone();
            let taught = lesson.map(|l| l.failed_seq);
            let mut resolved = Vec::new();
            self.open_errors.retain(|o| {
                let done = Some(o.seq) == taught
                    || (extract::covers(&o.words, &words) && related_dirs(&o.cwd, &cwd));
                if done {
                    resolved.push(o.seq);
                }
                !done
            });
            if let Some(lf) = &mut self.last_failure {
                if resolved.contains(&lf.seq) {
                    lf.resolved_by = Some(seq);
                }
            }
        }
        let at_ms = record.at_ms.unwrap_or_else(now_ms);
        self.last_exec_ms = self.last_exec_ms.max(at_ms);
        self.push(at_ms, task, EntryBody::Command(run))
    }

    /// The latest time (`ExecRecord::at_ms`, Unix ms) of an exec this context recorded, 0 if
    /// none: whoever replays a saved exec history into a context saved earlier (after a crash)
    /// records the execs that started after it.
    pub fn last_exec_ms(&self) -> u64 {
        self.last_exec_ms
    }

    /// Adds a message; `task` `None` takes the active task. Returns the entry's id.
    pub fn add_message(
        &mut self,
        role: Role,
        text: impl Into<String>,
        task: Option<&str>,
    ) -> Result<u64, ContextError> {
        let task = task
            .map(str::to_string)
            .or_else(|| self.active_task.clone());
        let body = EntryBody::Message(Message {
            role,
            text: text.into(),
        });
        self.push(now_ms(), task, body)
    }

    /// Like `add_message`, with the time given (replays, tests).
    pub fn add_message_at(
        &mut self,
        role: Role,
        text: impl Into<String>,
        task: Option<&str>,
        at_ms: u64,
    ) -> Result<u64, ContextError> {
        let seq = self.add_message(role, text, task)?;
        if let Some(e) = self.live.back_mut().filter(|e| e.seq == seq) {
            e.at_ms = at_ms;
        }
        Ok(seq)
    }

    /// Marks an unresolved error as dealt with (the agent decided to leave it).
    pub fn dismiss_error(&mut self, seq: u64) -> bool {
        let before = self.open_errors.len();
        self.open_errors.retain(|o| o.seq != seq);
        before != self.open_errors.len()
    }

    /// Probes the current directory's git state (reads `.git/HEAD`, no process) and takes it.
    /// The daemon calls this after each exec; it costs a few `stat`s and one small read.
    pub fn refresh_workspace(&mut self) {
        if let Some(cwd) = self.workspace.cwd.clone() {
            self.apply_probe(probe_workspace(std::path::Path::new(&cwd)));
        }
    }

    /// Takes a probe's result (from [`probe_workspace`]).
    pub fn apply_probe(&mut self, probe: WorkspaceProbe) {
        self.workspace.apply_probe(probe);
    }

    fn observe_workspace(
        &mut self,
        record: &ExecRecord,
        run: &CommandRun,
        changed: Option<Vec<String>>,
        seq: u64,
    ) {
        if !run.cwd.is_empty() {
            self.workspace.cwd = Some(run.cwd.clone());
        }
        if let Some(files) = changed {
            self.workspace.changed_files = files;
            self.workspace.changed_files_seq = Some(seq);
        }
        if let Some(ParsedOutput::GitOutput(g)) = record.parsed.as_ref().map(|p| &p.output) {
            for line in &g.branch {
                let b = line.strip_prefix("On branch ").or_else(|| {
                    line.strip_prefix("## ")
                        .map(|r| r.split("...").next().unwrap_or(r))
                });
                if let Some(b) = b {
                    self.workspace.git_branch = Some(b.trim().to_string());
                }
            }
        }
        if run.exit_code == Some(0) {
            if let Some(c) = SWITCHED.captures(&run.output) {
                if let Some(b) = c.get(1) {
                    self.workspace.git_branch = Some(b.as_str().to_string());
                }
            }
        }
    }

    fn failure(
        &self,
        seq: u64,
        task: Option<String>,
        run: &CommandRun,
        words: Vec<String>,
    ) -> Result<Failure, ContextError> {
        let mut text = format!(
            "[#{seq}] $ {} -> {} in {}",
            command_line(&run.command, 160),
            exit_text(run.exit_code),
            run.cwd
        );
        let errs: Vec<String> = run
            .errors
            .iter()
            .take(3)
            .map(|e| one_line(e, 200))
            .collect();
        if !errs.is_empty() {
            text.push_str(": ");
            text.push_str(&errs.join(" | "));
        }
        text.push('\n');
        let tokens = count_tokens(&text, self.config.encoding) as u32;
        Ok(Failure {
            seq,
            task,
            command: run.command.clone(),
            cwd: run.cwd.clone(),
            exit_code: run.exit_code,
            errors: run.errors.clone(),
            resolved_by: None,
            text,
            tokens,
            words,
        })
    }

    fn count_forms(&self, e: &Entry) -> Result<(u32, u32), ContextError> {
        let full = render_full(e, self.config.max_entry_chars);
        let enc = self.config.encoding;
        Ok((
            count_tokens(&full, enc) as u32,
            count_tokens(&render_brief(e), enc) as u32,
        ))
    }

    fn push(
        &mut self,
        at_ms: u64,
        task: Option<String>,
        body: EntryBody,
    ) -> Result<u64, ContextError> {
        let seq = self.next_seq;
        let mut e = Entry {
            seq,
            at_ms,
            task,
            body,
            tokens: 0,
            brief_tokens: 0,
        };
        (e.tokens, e.brief_tokens) = self.count_forms(&e)?;
        if let Some(t) = &e.task {
            self.tasks.count_entry(t);
        }
        let meta = self.meta_for(&e);
        if let Some(prev) = self.last_by_cmd.insert(meta.cmd_key, seq) {
            if let Some(front) = self.live.front().map(|f| f.seq) {
                if prev >= front && meta.cmd_key != 0 {
                    if let Some(m) = self.meta.get_mut((prev - front) as usize) {
                        m.superseded = true;
                    }
                }
            }
        }
        self.next_seq += 1;
        self.stats.entries_added += 1;
        self.live_tokens += e.tokens as usize;
        self.live.push_back(e);
        self.meta.push_back(meta);
        self.maybe_compress()?;
        Ok(seq)
    }

    pub(crate) fn task_index(&mut self, task: &str) -> u32 {
        let n = self.task_ids.len() as u32;
        *self.task_ids.entry(task.to_string()).or_insert(n)
    }

    pub(crate) fn meta_for(&mut self, e: &Entry) -> Meta {
        let task = e.task.as_deref().map(|t| self.task_index(t));
        match &e.body {
            EntryBody::Command(c) => {
                let words = extract::primary_words(&c.command);
                let files: Vec<u64> = c.files.iter().map(|f| extract::path_key(f)).collect();
                Meta {
                    failed: c.failed,
                    noise: !c.failed && extract::is_noise(&words),
                    superseded: false,
                    has_errors: !c.errors.is_empty() || !c.tests_failed.is_empty(),
                    role: None,
                    task,
                    files_mask: files.iter().fold(0, |m, k| m | 1 << (k % 64)),
                    files,
                    cmd_key: extract::fnv(c.command.as_bytes()) | 1,
                }
            }
            EntryBody::Message(m) => Meta {
                role: Some(m.role),
                task,
                ..Meta::default()
            },
        }
    }

    /// Compresses now if the live window plus summary is over the threshold. Returns whether
    /// it did.
    pub fn maybe_compress(&mut self) -> Result<bool, ContextError> {
        if self.tokens() <= self.config.threshold_tokens() {
            return Ok(false);
        }
        let start = Instant::now();
        let target = self.config.target_tokens();
        let summary_cap = target / 3;
        let mut n = self.live.len().saturating_sub(self.config.window_entries);
        let mut after: usize = self.live.iter().skip(n).map(|e| e.tokens as usize).sum();
        // The summary may grow up to its cap; the window shrinks until both fit the target.
        while n < self.live.len() && after + summary_cap > target {
            after -= self.live[n].tokens as usize;
            n += 1;
        }
        let n = n.max(1);
        let moved: Vec<Entry> = self.live.drain(..n).collect();
        self.meta.drain(..n);
        self.archive.append(&moved, self.config.zstd_level)?;
        let limits = SummaryLimits {
            encoding: self.config.encoding,
            max_lines: self.config.max_summary_lines,
            max_tokens: summary_cap,
        };
        self.summarizer.fold(&mut self.summary, &moved, limits)?;
        self.live_tokens = self.live.iter().map(|e| e.tokens as usize).sum();
        // A summary that grew past its share pushes more entries out (rare: many distinct lines).
        while self.tokens() > target && !self.live.is_empty() {
            let more = self.live.len().div_ceil(2);
            let moved: Vec<Entry> = self.live.drain(..more).collect();
            self.meta.drain(..more);
            self.archive.append(&moved, self.config.zstd_level)?;
            self.summarizer.fold(&mut self.summary, &moved, limits)?;
            self.live_tokens = self.live.iter().map(|e| e.tokens as usize).sum();
            self.account(&moved);
        }
        self.account(&moved);
        self.stats.compressions += 1;
        self.stats.compress_time += start.elapsed();
        Ok(true)
    }

    fn account(&mut self, moved: &[Entry]) {
        self.stats.entries_archived += moved.len() as u64;
        self.stats.text_bytes_archived += moved
            .iter()
            .map(|e| match &e.body {
                EntryBody::Command(c) => (c.command.len() + c.output.len()) as u64,
                EntryBody::Message(m) => m.text.len() as u64,
            })
            .sum::<u64>();
    }
}

/// The same directory, or one inside the other (a run at the root covers a subdirectory).
fn related_dirs(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}
