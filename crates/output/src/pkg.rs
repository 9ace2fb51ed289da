//! Package managers: npm/yarn/pnpm install, pip install, cargo add/install/update.
//!
//! Download and progress lines are dropped; what was installed, the tool's summary, every error and
//! every resolver conflict are kept. The result is a [`Custom`] of kind `package` holding a [`PackageReport`].

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::parsed::{Custom, Status};

/// What a package manager did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageReport {
    /// `npm`, `pip` or `cargo`.
    pub tool: String,
    /// Failed when an error line shows.
    pub status: Status,
    /// Packages installed or added, as printed (`requests-2.32.3`, `smallvec v1.16.6`).
    pub installed: Vec<String>,
    /// Summary lines (`added 268 packages in 8s`, `Locking 1 package`), verbatim.
    pub summary: Vec<String>,
    /// Error and conflict lines, verbatim.
    pub errors: Vec<String>,
    /// Warning lines, verbatim, identical ones once.
    pub warnings: Vec<String>,
}

static ERROR: LazyLock<Regex> = lazy_re!(
    r"^(npm (ERR!|error)|ERROR:|error(\[\w+\])?:|error |.*\bconflict|.*incompatible|.*requires .* but you have|Caused by:|\s+Caused by)"
);
static WARN: LazyLock<Regex> = lazy_re!(r"^(npm warn|npm WARN|WARNING:|warning:)");
static SUMMARY: LazyLock<Regex> = lazy_re!(
    r"^\s*(added|removed|changed|up to date|audited|found \d+|\d+ (packages?|vulnerabilit)|Successfully|Requirement already satisfied|Installing collected|Installed|Replaced|Replacing|Adding|Removing|Locking|Upgrading|Downgrading|Finished|Done in|Packages:|Progress: resolved|dependencies:)",
);
static PIP_INSTALLED: LazyLock<Regex> = lazy_re!(r"^Successfully installed (.+)$");
static CARGO_ADDED: LazyLock<Regex> =
    lazy_re!(r"^\s*(?:Adding|Installed|Upgrading|Updating) (\S+ v\S+)");

/// Parses package manager output; `tool` is `npm`, `pip` or `cargo`.
pub fn parse(tool: &str, lines: &[&str]) -> Custom {
    let mut r = PackageReport {
        tool: tool.into(),
        status: Status::Unknown,
        installed: vec![],
        summary: vec![],
        errors: vec![],
        warnings: vec![],
    };
    for line in lines {
        let t = line.trim_end();
        if ERROR.is_match(t) {
            r.errors.push(t.trim().to_string());
        } else if WARN.is_match(t) {
            if !r.warnings.iter().any(|w| w == t) {
                r.warnings.push(t.to_string());
            }
        } else if SUMMARY.is_match(t) {
            if let Some(c) = PIP_INSTALLED.captures(t) {
                r.installed
                    .extend(c[1].split_whitespace().map(str::to_string));
            } else if let Some(c) = CARGO_ADDED.captures(t) {
                r.installed.push(c[1].to_string());
            }
            if !t.trim_start().starts_with("Requirement already satisfied") || r.summary.len() < 5 {
                r.summary.push(t.trim().to_string());
            }
        }
    }
    let ok = r.summary.iter().any(|s| {
        s.starts_with("Successfully")
            || s.starts_with("added")
            || s.starts_with("up to date")
            || s.starts_with("Adding")
            || s.starts_with("Installed")
            || s.starts_with("Locking")
    });
    r.status = if !r.errors.is_empty() {
        Status::Failed
    } else if ok {
        Status::Success
    } else {
        Status::Unknown
    };
    let data = serde_json::to_value(&r).unwrap_or(serde_json::Value::Null);
    Custom {
        kind: "package".into(),
        data,
    }
}

/// Renders a package report stored in a [`Custom`].
pub fn render(c: &Custom, out: &mut String) -> Status {
    let Ok(r) = serde_json::from_value::<PackageReport>(c.data.clone()) else {
        outln!(out, "{}", c.data);
        return Status::Unknown;
    };
    let state = match r.status {
        Status::Success => "ok",
        Status::Failed => "FAILED",
        Status::Unknown => "outcome not stated in output",
    };
    outln!(out, "{}: {state}", r.tool);
    for e in &r.errors {
        outln!(out, "{}", crate::text::shorten(e, 400));
    }
    for s in &r.summary {
        outln!(out, "{s}");
    }
    for w in &r.warnings {
        outln!(out, "{}", crate::text::shorten(w, 200));
    }
    r.status
}
