//! GitHub Actions workflow commands: `::error file=F,line=L,col=C,title=T::message` for each
//! diagnostic and failing test with a location (shown as annotations on the pull request),
//! `::warning` and `::notice` for the others, and one `::error` per failed command that has
//! none, so no failure goes unannotated.

use std::fmt::Write;

use ai_session_output::Severity;
use ai_session_output::diagnostics::collect;

use super::Report;

pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    for exec in &report.execs {
        let diagnostics = exec.parsed.as_ref().map(collect).unwrap_or_default();
        for d in &diagnostics {
            let command = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "notice",
            };
            let mut props = format!("file={}", property(&d.file));
            if let Some(line) = d.line {
                let _ = write!(props, ",line={line}");
                if let Some(col) = d.column {
                    let _ = write!(props, ",col={col}");
                }
            }
            let title = match &d.code {
                Some(code) => format!("{} {code}", d.source),
                None => d.source.clone(),
            };
            let _ = write!(props, ",title={}", property(&title));
            let _ = writeln!(out, "::{command} {props}::{}", data(&d.message));
        }
        let has_error = diagnostics.iter().any(|d| d.severity == Severity::Error);
        if exec.failed() && !has_error {
            let code = exec.entry.exit_code.unwrap_or_default();
            let _ = writeln!(
                out,
                "::error title={}::{}",
                property(&format!("exit code {code}")),
                data(&format!("`{}` exited with {code}", exec.entry.command))
            );
        }
    }
    out
}

/// A message: `%`, CR and LF escaped as the runner expects.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A property value: as [`data`], plus `:` and `,`, which separate properties.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping() {
        assert_eq!(super::data("50%\nnext"), "50%25%0Anext");
        assert_eq!(super::property("a:b,c"), "a%3Ab%2Cc");
    }
}
