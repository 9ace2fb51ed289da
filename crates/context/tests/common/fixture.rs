//! Replays the recorded session (`fixtures/session.jsonl`) into a context the way the daemon
//! feeds it: each exec's output goes through `ai-session-output` (parse, then the compact view),
//! and the context gets the compact text and the parsed structure.

#![allow(dead_code)]

use ai_session_context::{ContextConfig, ContextError, ExecRecord, Role, SessionContext};
use ai_session_output::{Handle, compact, parse};
use serde::Deserialize;

/// One line of the transcript.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub kind: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub output: Option<String>,
}

/// One key fact of the session.
#[derive(Debug, Clone, Deserialize)]
pub struct Fact {
    pub id: String,
    pub must: bool,
    pub needles: Vec<String>,
    pub about: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Facts {
    pub project: String,
    pub execs: usize,
    pub messages: usize,
    pub facts: Vec<Fact>,
}

pub fn dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn records() -> Vec<Record> {
    let text = std::fs::read_to_string(dir().join("session.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn facts() -> Facts {
    let text = std::fs::read_to_string(dir().join("facts.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Facts {
        project: String::new(),
        execs: 0,
        messages: 0,
        facts: Vec::new(),
    })
}

/// What the daemon hands over for one recorded exec.
pub fn exec_record(r: &Record, at_ms: u64) -> ExecRecord {
    let command = r.command.clone().unwrap_or_default();
    let raw = r.output.clone().unwrap_or_default();
    let parsed = parse(Some(&command), &raw);
    let text = compact(&parsed, &raw, &Handle::command(&command)).text;
    let mut rec = ExecRecord::new(command, r.exit_code, r.cwd.clone().unwrap_or_default())
        .output(text)
        .parsed(parsed)
        .duration_ms(r.duration_ms.unwrap_or(0))
        .at_ms(at_ms);
    rec.task = r.task.clone();
    rec
}

/// The tasks of the recorded session: a root with two sub-tasks.
pub fn create_tasks(ctx: &mut SessionContext) -> Result<(), ContextError> {
    ctx.create_task("t-root", None, Some("slugkit: slugify in Rust and Python"))?;
    ctx.create_task("t-rust", Some("t-root"), Some("Rust crate"))?;
    ctx.create_task("t-py", Some("t-root"), Some("Python port"))?;
    Ok(())
}

/// Replays the whole transcript.
pub fn replay(config: ContextConfig) -> Result<SessionContext, ContextError> {
    let mut ctx = SessionContext::new("demo", config)?;
    create_tasks(&mut ctx)?;
    let t0 = 1_763_900_000_000u64;
    for (i, r) in records().iter().enumerate() {
        let at = t0 + i as u64 * 1000;
        if r.kind == "exec" {
            ctx.record_exec(exec_record(r, at))?;
        } else {
            let role: Role = r
                .role
                .as_deref()
                .unwrap_or("note")
                .parse()
                .unwrap_or(Role::Note);
            ctx.add_message_at(
                role,
                r.text.clone().unwrap_or_default(),
                r.task.as_deref(),
                at,
            )?;
        }
    }
    Ok(ctx)
}

/// Which facts a text keeps: every needle of a fact must appear.
pub fn kept<'a>(facts: &'a Facts, text: &str) -> Vec<(&'a Fact, bool)> {
    facts
        .facts
        .iter()
        .map(|f| (f, f.needles.iter().all(|n| text.contains(n.as_str()))))
        .collect()
}
