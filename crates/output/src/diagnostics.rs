//! Diagnostics that point into files, in the one line shape editors read:
//! `file:line:col: severity: message`. VS Code's `$gcc` problem matcher, Vim's default
//! `errorformat` (`:cgetbuffer`) and Emacs's compilation mode all parse it, whatever tool
//! produced the diagnostic (cargo, tsc, go, gcc, pytest, jest ...).
//!
//! Compiler and linter messages come from [`BuildOutput`] (and the compile errors that stopped
//! a test run); failing tests with a location come from [`TestResults`], as errors. A
//! diagnostic without a file is not listed: an editor has nowhere to take the reader.
//!
//! [`BuildOutput`]: crate::BuildOutput
//! [`TestResults`]: crate::TestResults

use serde::{Deserialize, Serialize};

use crate::parsed::{Diagnostic, Parsed, ParsedOutput, Severity};

/// One diagnostic at a place in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDiagnostic {
    /// The path as the tool printed it.
    pub file: String,
    /// 1-based.
    pub line: Option<u32>,
    /// 1-based.
    pub column: Option<u32>,
    pub severity: Severity,
    /// The rule or error code, when the tool gave one.
    pub code: Option<String>,
    /// One line.
    pub message: String,
    /// The tool that reported it (`cargo`, `tsc`, `pytest`).
    pub source: String,
}

impl FileDiagnostic {
    /// `error`, `warning` or `note`.
    pub fn severity_name(&self) -> &'static str {
        match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }

    /// `file:line:col: severity: message [code]`; the column (or line and column) left out
    /// when unknown, as compilers do.
    pub fn line(&self) -> String {
        let mut out = self.file.clone();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(col) = self.column {
                out.push_str(&format!(":{col}"));
            }
        }
        out.push_str(&format!(": {}: {}", self.severity_name(), self.message));
        if let Some(code) = &self.code {
            out.push_str(&format!(" [{code}]"));
        }
        out
    }
}

/// Every diagnostic of `parsed` that names a file, in the order the tool printed them.
pub fn collect(parsed: &Parsed) -> Vec<FileDiagnostic> {
    match &parsed.output {
        ParsedOutput::BuildOutput(b) => from_diagnostics(&b.tool, &b.diagnostics),
        ParsedOutput::TestResults(t) => {
            let mut out = from_diagnostics(&t.tool, &t.diagnostics);
            out.extend(t.failures.iter().filter_map(|f| {
                let at = f.location.as_ref()?;
                let detail = f
                    .message
                    .iter()
                    .map(|l| l.trim())
                    .find(|l| !l.is_empty())
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default();
                Some(FileDiagnostic {
                    file: at.file.clone(),
                    line: at.line,
                    column: at.column,
                    severity: Severity::Error,
                    code: None,
                    message: one_line(&format!("test {} failed{detail}", f.name)),
                    source: t.tool.clone(),
                })
            }));
            out
        }
        _ => Vec::new(),
    }
}

fn from_diagnostics(tool: &str, diagnostics: &[Diagnostic]) -> Vec<FileDiagnostic> {
    diagnostics
        .iter()
        .filter_map(|d| {
            let at = d.location.as_ref()?;
            Some(FileDiagnostic {
                file: at.file.clone(),
                line: at.line,
                column: at.column,
                severity: d.severity,
                code: d.code.clone(),
                message: one_line(&d.message),
                source: tool.to_owned(),
            })
        })
        .collect()
}

/// Newlines would split one diagnostic into several for every line-based reader.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Every diagnostic of `parsed` as one line each (see [`FileDiagnostic::line`]).
pub fn render(parsed: &Parsed) -> String {
    let mut out = String::new();
    for d in collect(parsed) {
        out.push_str(&d.line());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VS Code's `$gcc` problem matcher's pattern (`problemMatcher.ts`).
    const GCC: &str = r"^(.*?):(\d+):(\d*):?\s+(?:fatal\s+)?(warning|error):\s+(.*)$";

    #[test]
    fn cargo_errors_become_gcc_lines() {
        let raw = include_str!("../fixtures/cargo_build_error.txt");
        let parsed = crate::parse(Some("cargo build"), raw);
        let lines = render(&parsed);
        assert!(!lines.is_empty(), "{parsed:?}");
        let re = regex::Regex::new(GCC).unwrap();
        for line in lines.lines() {
            let c = re.captures(line).unwrap_or_else(|| panic!("{line}"));
            assert!(c[2].parse::<u32>().unwrap() > 0, "{line}");
            assert!(matches!(&c[4], "error" | "warning"), "{line}");
        }
    }

    #[test]
    fn every_located_diagnostic_of_every_fixture_matches_the_gcc_pattern() {
        let re = regex::Regex::new(GCC).unwrap();
        let mut seen = 0;
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "txt") {
                continue;
            }
            let raw = std::fs::read_to_string(&path).unwrap();
            let stem = path
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .replace('_', " ");
            for d in collect(&crate::parse(Some(&stem), &raw)) {
                if d.severity == Severity::Note || d.line.is_none() {
                    continue; // $gcc reads errors and warnings with a line only
                }
                let line = d.line();
                let c = re
                    .captures(&line)
                    .unwrap_or_else(|| panic!("{}: {line}", path.display()));
                assert_eq!(c[1], d.file, "{line}");
                assert_eq!(c[4], *d.severity_name(), "{line}");
                seen += 1;
            }
        }
        assert!(seen > 20, "only {seen} diagnostics in the fixtures");
    }

    #[test]
    fn newlines_in_messages_do_not_split_a_diagnostic() {
        let d = FileDiagnostic {
            file: "a.rs".into(),
            line: Some(3),
            column: None,
            severity: Severity::Warning,
            code: Some("W1".into()),
            message: one_line("first\nsecond"),
            source: "x".into(),
        };
        assert_eq!(d.line(), "a.rs:3: warning: first second [W1]");
    }
}
