//! A Markdown summary for `$GITHUB_STEP_SUMMARY` (or any Markdown reader): one table row per
//! command with its outcome, then the failing tests and the diagnostics with their locations.

use std::fmt::Write;

use ai_session_output::ParsedOutput;
use ai_session_output::diagnostics::collect;

use super::{Exec, Report};

/// Diagnostics listed in full; the rest are counted.
const LISTED: usize = 50;

pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    let failed = report.execs.iter().filter(|e| e.failed()).count();
    let _ = writeln!(out, "## ai-session report: {}\n", escape(&report.title));
    let _ = writeln!(out, "{} commands, {} failed.\n", report.execs.len(), failed);
    if report.execs.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "| | command | exit | time | result |\n|---|---|---|---|---|"
    );
    for exec in &report.execs {
        let mark = match exec.entry.exit_code {
            Some(0) => "✅",
            Some(_) => "❌",
            None => "⏳",
        };
        let _ = writeln!(
            out,
            "| {mark} | {} | {} | {:.1} s | {} |",
            code(&exec.entry.command),
            exec.entry
                .exit_code
                .map_or("-".to_owned(), |c| c.to_string()),
            exec.entry.duration_ms / 1000.0,
            escape(&summary(exec)),
        );
    }
    failures(&mut out, report);
    diagnostics(&mut out, report);
    out
}

/// What the parsed output says, in a few words.
fn summary(exec: &Exec) -> String {
    match exec.parsed.as_ref().map(|p| &p.output) {
        Some(ParsedOutput::TestResults(t)) => format!(
            "{}: {} passed, {} failed, {} skipped",
            t.tool, t.passed, t.failed, t.skipped
        ),
        Some(ParsedOutput::BuildOutput(b)) => {
            let errors = b
                .diagnostics
                .iter()
                .filter(|d| d.severity == ai_session_output::Severity::Error)
                .count();
            let warnings = b
                .diagnostics
                .iter()
                .filter(|d| d.severity == ai_session_output::Severity::Warning)
                .count();
            format!("{}: {errors} errors, {warnings} warnings", b.tool)
        }
        Some(p) => format!("{:?}", p_kind(p)),
        None => String::new(),
    }
}

fn p_kind(p: &ParsedOutput) -> &'static str {
    match p {
        ParsedOutput::StructuredLog(_) => "log",
        ParsedOutput::GitOutput(_) => "git",
        ParsedOutput::NetworkOutput(_) => "network",
        ParsedOutput::ProcessList(_) => "processes",
        ParsedOutput::FileSystemOutput(_) => "files",
        _ => "output",
    }
}

fn failures(out: &mut String, report: &Report) {
    let failing: Vec<_> = report
        .execs
        .iter()
        .filter_map(|e| e.tests())
        .flat_map(|t| t.failures.iter())
        .collect();
    if failing.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### Failing tests\n");
    for f in failing {
        let at = f
            .location
            .as_ref()
            .map(|l| format!(" ({})", code(&l.to_string())));
        let _ = writeln!(out, "- {}{}", code(&f.name), at.unwrap_or_default());
        for line in f.message.iter().take(3) {
            let _ = writeln!(out, "  > {}", escape(line));
        }
    }
}

fn diagnostics(out: &mut String, report: &Report) {
    let all: Vec<_> = report
        .execs
        .iter()
        .filter_map(|e| e.parsed.as_ref())
        .flat_map(collect)
        .collect();
    if all.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n### Diagnostics\n");
    for d in all.iter().take(LISTED) {
        let at = match (d.line, d.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", d.file),
            (Some(l), None) => format!("{}:{l}", d.file),
            _ => d.file.clone(),
        };
        let _ = writeln!(
            out,
            "- **{}** {} {}",
            d.severity_name(),
            code(&at),
            escape(&d.message)
        );
    }
    if all.len() > LISTED {
        let _ = writeln!(out, "- … and {} more", all.len() - LISTED);
    }
}

/// Inline code that survives backticks and pipes in the text.
fn code(s: &str) -> String {
    let s = s.replace('|', "\\|").replace('\n', " ");
    if s.contains('`') {
        format!("`` {s} ``")
    } else {
        format!("`{s}`")
    }
}

/// Text in a table cell or list item: pipes and angle brackets escaped, one line.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', " ")
}
