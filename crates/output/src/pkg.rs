//! Package managers: npm/yarn/pnpm install, pip install, cargo add/install/update.
//!
//! Yarn 2+ prefixes every line with `➤ YN0000: ` and draws step boxes (`┌ Fetch step`); the prefix is
//! read for its code (a few codes are errors) and dropped, the box drawing too.
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
    /// `npm`, `yarn`, `pnpm`, `pip` or `cargo`.
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
    r"^(npm (ERR!|error)|ERROR:|error(\[\w+\])?:|error |.*\bconflict|.*incompatible|.*requires .* but you have|Caused by:|\s+Caused by|\s*\[?ERR_PNPM_|\s*\[?ELIFECYCLE\]?|Failed with errors|\s+The user requested |\s+\S+ \S+ depends on )"
);
/// Yarn 2+ line prefix: `➤ YN0000: ` followed by box drawing.
static YARN_BERRY: LazyLock<Regex> = lazy_re!(r"^➤ YN(\d{4}): [│┌└]?\s*");
/// Yarn 2+ codes that report a failure (exception, build failed, checksum, lockfile, not found).
const YARN_ERROR_CODES: [&str; 7] = ["0001", "0009", "0018", "0028", "0035", "0071", "0082"];
/// `+ is-number 7.0.0` under pnpm's `dependencies:`.
static PNPM_ADDED: LazyLock<Regex> = lazy_re!(r"^\+ (\S+ \S+)");
static CARGO_UPDATED: LazyLock<Regex> = lazy_re!(r"^\s*Updating (\S+ v\S+ -> v\S+)");
static WARN: LazyLock<Regex> = lazy_re!(r"^(npm warn|npm WARN|WARNING:|warning:)");
static SUMMARY: LazyLock<Regex> = lazy_re!(
    r"^\s*(added|removed|changed|up to date|audited|found \d+|\d+ (packages?|vulnerabilit)|Successfully|Requirement already satisfied|Installing collected|Installed|Replaced|Replacing|Adding|Removing|Locking|Upgrading|Downgrading|Finished|Done in|Done with|Done$|success |Packages:|Progress: resolved.*done|dependencies:|Updating \S+ v\S+ -> )",
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
        let mut t = line.trim_end();
        if let Some(c) = YARN_BERRY.captures(t) {
            let code = c.get(1).map_or("", |m| m.as_str());
            t = &t[c.get(0).map_or(0, |m| m.end())..];
            if YARN_ERROR_CODES.contains(&code) {
                r.errors.push(format!("YN{code}: {t}"));
                continue;
            }
        }
        if let Some(c) = PNPM_ADDED.captures(t) {
            r.installed.push(c[1].to_string());
        }
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
            } else if let Some(c) = CARGO_UPDATED.captures(t) {
                r.installed.push(c[1].to_string());
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
            || s.starts_with("Done")
            || s.starts_with("success ")
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
    let unlisted: Vec<&str> = r
        .installed
        .iter()
        .filter(|i| !r.summary.iter().any(|s| s.contains(i.as_str())))
        .map(String::as_str)
        .collect();
    if !unlisted.is_empty() {
        outln!(out, "installed: {}", unlisted.join(", "));
    }
    for w in &r.warnings {
        outln!(out, "{}", crate::text::shorten(w, 200));
    }
    r.status
}
