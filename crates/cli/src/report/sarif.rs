//! SARIF 2.1.0: one run per command that reported diagnostics, its tool as the driver, its
//! command line, exit code and directory as the invocation, each diagnostic (and each failing
//! test with a location) as a result at its file, line and column. Relative paths are resolved
//! against the command's directory through `originalUriBaseIds`, as code-scanning services
//! expect.

use std::collections::BTreeSet;

use ai_session_output::Severity;
use ai_session_output::diagnostics::{FileDiagnostic, collect};
use serde_json::{Value, json};

use super::{Exec, Report};
use crate::error::CliError;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

pub(crate) fn render(report: &Report) -> Result<String, CliError> {
    let runs: Vec<Value> = report.execs.iter().filter_map(run).collect();
    let doc = json!({ "$schema": SCHEMA, "version": "2.1.0", "runs": runs });
    serde_json::to_string_pretty(&doc)
        .map(|s| s + "\n")
        .map_err(|e| CliError::Local(format!("cannot write the SARIF document: {e}")))
}

/// The command's run, when its output had diagnostics.
fn run(exec: &Exec) -> Option<Value> {
    let diagnostics = collect(exec.parsed.as_ref()?);
    if diagnostics.is_empty() {
        return None;
    }
    let tool = exec.tool();
    let rules: BTreeSet<String> = diagnostics.iter().map(|d| rule_id(&tool, d)).collect();
    let results: Vec<Value> = diagnostics.iter().map(|d| result(&tool, d)).collect();
    let mut invocation = json!({
        "commandLine": exec.entry.command,
        "executionSuccessful": !exec.failed(),
    });
    if let Some(code) = exec.entry.exit_code {
        invocation["exitCode"] = json!(code);
    }
    let mut run = json!({
        "tool": { "driver": {
            "name": tool,
            "rules": rules.iter().map(|id| json!({ "id": id })).collect::<Vec<_>>(),
        }},
        "invocations": [invocation],
        "results": results,
    });
    if let Some(cwd) = &exec.entry.cwd {
        let base = format!("file://{}/", uri_path(cwd.trim_end_matches('/')));
        run["invocations"][0]["workingDirectory"] = json!({ "uri": base });
        run["originalUriBaseIds"] = json!({ "SRCROOT": { "uri": base } });
    }
    Some(run)
}

/// The diagnostic's code, else the tool and the severity (`cargo/error`): every result names
/// a rule, which code-scanning services require.
fn rule_id(tool: &str, d: &FileDiagnostic) -> String {
    d.code
        .clone()
        .unwrap_or_else(|| format!("{tool}/{}", d.severity_name()))
}

fn result(tool: &str, d: &FileDiagnostic) -> Value {
    let level = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Note => "note",
    };
    let mut artifact = json!({ "uri": uri_path(&d.file) });
    if d.file.starts_with('/') {
        artifact["uri"] = json!(format!("file://{}", uri_path(&d.file)));
    } else {
        artifact["uriBaseId"] = json!("SRCROOT");
    }
    let mut location = json!({ "physicalLocation": { "artifactLocation": artifact } });
    if let Some(line) = d.line.filter(|l| *l > 0) {
        let mut region = json!({ "startLine": line });
        if let Some(col) = d.column.filter(|c| *c > 0) {
            region["startColumn"] = json!(col);
        }
        location["physicalLocation"]["region"] = region;
    }
    json!({
        "ruleId": rule_id(tool, d),
        "level": level,
        "message": { "text": d.message },
        "locations": [location],
    })
}

/// A path as a URI path: every byte outside the unreserved set and `/` percent-encoded.
fn uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_become_uri_references() {
        assert_eq!(super::uri_path("src/a b#c.rs"), "src/a%20b%23c.rs");
    }
}
