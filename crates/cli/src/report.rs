//! `ai-session report`: a session's (or a task's) finished commands as a CI report, built from
//! the parsed output the daemon kept for each (`session.results`): JUnit XML from test runs,
//! SARIF 2.1.0 from compiler and linter diagnostics, GitHub Actions workflow commands, and a
//! Markdown summary for `$GITHUB_STEP_SUMMARY`.
//!
//! `--task ID` reports the commands run in the session of the agent that took the task, from
//! the task's creation to its end.

mod github;
mod junit;
mod markdown;
mod sarif;

use std::io::Write;
use std::process::ExitCode;

use ai_session_client::Selector;
use ai_session_output::{Parsed, ParsedOutput, TestResults};
use ai_session_protocol::coord::{AgentListResult, TaskResult, TaskShowParams};
use ai_session_protocol::integration::{HistoryEntry, HistoryParams, HistoryResult};
use ai_session_protocol::registry::{self as reg, Method};

use crate::commands::usage;
use crate::error::CliError;

/// `ai-session report`.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["target", "task"])))]
pub struct ReportArgs {
    /// The session whose commands to report.
    #[arg(short = 't', value_name = "SESSION")]
    target: Option<String>,
    /// A task (`ai-session task submit`): the commands its agent ran in its session while the
    /// task was open.
    #[arg(long, value_name = "ID")]
    task: Option<u64>,
    /// junit (test results), sarif (diagnostics), github (workflow commands), markdown.
    #[arg(long, value_enum)]
    format: Format,
    /// Only the last N commands.
    #[arg(long, value_name = "N")]
    last: Option<usize>,
    /// Write the report to FILE instead of standard output.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Junit,
    Sarif,
    Github,
    Markdown,
}

/// One finished command and its parsed output.
pub(crate) struct Exec {
    pub entry: HistoryEntry,
    pub parsed: Option<Parsed>,
}

impl Exec {
    fn new(entry: HistoryEntry) -> Self {
        let parsed = entry
            .parsed
            .clone()
            .and_then(|v| serde_json::from_value::<Parsed>(v).ok());
        Exec { entry, parsed }
    }

    /// The test run this command was, if it was one.
    pub fn tests(&self) -> Option<&TestResults> {
        match &self.parsed.as_ref()?.output {
            ParsedOutput::TestResults(t) => Some(t),
            _ => None,
        }
    }

    pub fn failed(&self) -> bool {
        self.entry.exit_code.is_some_and(|c| c != 0)
    }

    /// The tool the output was recognised as (`cargo`, `pytest`), else the command's program.
    pub fn tool(&self) -> String {
        match self.parsed.as_ref().map(|p| &p.output) {
            Some(ParsedOutput::BuildOutput(b)) => b.tool.clone(),
            Some(ParsedOutput::TestResults(t)) => t.tool.clone(),
            _ => self
                .entry
                .command
                .split_whitespace()
                .next()
                .unwrap_or("shell")
                .to_owned(),
        }
    }
}

/// What the report is about: its title and its commands.
pub(crate) struct Report {
    pub title: String,
    pub execs: Vec<Exec>,
}

pub(crate) async fn run(sel: &Selector, a: ReportArgs) -> Result<ExitCode, CliError> {
    let client = crate::commands::connect(sel, false).await?;
    let (target, title, since_ms, until_ms) = match (a.target, a.task) {
        (Some(t), _) => (t.clone(), format!("session {t}"), None, None),
        (None, Some(id)) => task_window(&client, id).await?,
        (None, None) => return Err(usage("give -t SESSION or --task ID".into())),
    };
    let history: HistoryResult = client
        .call(
            reg::SessionResults::NAME,
            HistoryParams {
                target,
                since_ms,
                until_ms,
                limit: a.last,
            },
        )
        .await?;
    let report = Report {
        title,
        execs: history.execs.into_iter().map(Exec::new).collect(),
    };
    let text = match a.format {
        Format::Junit => junit::render(&report),
        Format::Sarif => sarif::render(&report)?,
        Format::Github => github::render(&report),
        Format::Markdown => markdown::render(&report),
    };
    match a.output {
        Some(path) => std::fs::write(&path, text)
            .map_err(|e| CliError::Local(format!("cannot write {}: {e}", path.display())))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The session and time window of task `id`: its agent's session, from its creation to its
/// end (now while it is open).
async fn task_window(
    client: &ai_session_client::Client,
    id: u64,
) -> Result<(String, String, Option<u64>, Option<u64>), CliError> {
    let task: TaskResult = client
        .call(reg::TaskShow::NAME, TaskShowParams { id })
        .await?;
    let task = task.task;
    let agent = task.agent.ok_or_else(|| {
        usage(format!(
            "task {id} ({}) has not been taken by an agent yet: no commands ran for it",
            task.state
        ))
    })?;
    let agents: AgentListResult = client
        .call(reg::AgentList::NAME, serde_json::json!({}))
        .await?;
    let session = agents
        .agents
        .into_iter()
        .find(|a| a.id == agent)
        .and_then(|a| a.session)
        .ok_or_else(|| {
            usage(format!(
                "task {id}'s agent {agent} registered no session (agent register --session); \
                 report on the session it used with -t SESSION"
            ))
        })?;
    let open = matches!(task.state.as_str(), "queued" | "assigned" | "running");
    let until = (!open).then_some(task.updated_at_ms);
    Ok((
        session.clone(),
        format!("task {id} ({}) in session {session}", task.description),
        Some(task.created_at_ms),
        until,
    ))
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS` (UTC).
pub(crate) fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso8601_dates() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00");
        assert_eq!(super::iso8601(951_782_400_000), "2000-02-29T00:00:00");
        assert_eq!(super::iso8601(1_796_000_000_123), "2026-11-30T00:53:20");
    }
}
