//! `policy check`, `audit verify`, `audit ls`, and reading `new --policy`: these work on
//! local files and the host's kernel, without the daemon.

use ai_session_protocol::registry::{self as reg, Method};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use ai_session_sandbox::audit::{self, Query};
use ai_session_sandbox::{Policy, Sandbox};
use serde::Serialize;

use crate::commands::{print_json, usage};
use crate::error::CliError;
use ai_session_client::Selector;

/// What `new --policy` sends: the file's TOML (checked here, so a typo is reported with
/// its line before anything starts) or a profile name.
pub(crate) fn policy_text(spec: &str) -> Result<String, CliError> {
    let path = Path::new(spec);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read policy file {spec}: {e}")))?;
        Policy::from_toml(&text, spec).map_err(|e| usage(e.to_string()))?;
        return Ok(text);
    }
    Policy::load(spec).map_err(|e| usage(e.to_string()))?;
    Ok(spec.to_string())
}

#[derive(Serialize)]
struct PolicyReport {
    policy: String,
    valid: bool,
    enforceable: bool,
    error: Option<String>,
    workspace: String,
    allow_degrade: bool,
    explanation: String,
    active: Vec<String>,
    missing: Vec<String>,
    notes: Vec<String>,
}

/// `policy check FILE|PROFILE`: validates the policy, explains what it allows, and says which
/// protections this host would enforce for a session working in `workspace`.
pub(crate) fn policy_check(
    spec: &str,
    workspace: Option<&Path>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let policy = Policy::load(spec).map_err(|e| usage(e.to_string()))?;
    let workspace = match workspace {
        Some(w) => std::path::absolute(w)?,
        None => std::env::current_dir()?,
    };
    let caps = ai_session_sandbox::probe();
    let mut report = PolicyReport {
        policy: spec.to_string(),
        valid: true,
        enforceable: true,
        error: None,
        workspace: workspace.display().to_string(),
        allow_degrade: policy.allow_degrade,
        explanation: policy.explain(),
        active: Vec::new(),
        missing: Vec::new(),
        notes: caps.notes.clone(),
    };
    match Sandbox::prepare(&policy, &caps, &workspace) {
        Ok(prepared) => {
            report.active = prepared.active().iter().map(ToString::to_string).collect();
            report.missing = prepared.missing().to_vec();
            report.notes = prepared.notes().to_vec();
        }
        Err(e) => {
            report.enforceable = false;
            report.error = Some(e.to_string());
        }
    }
    if json {
        print_json(&report)?;
    } else {
        outln!("policy {spec}: valid");
        out!("{}", report.explanation);
        outln!("on this host, for a session in {}:", report.workspace);
        for p in &report.active {
            outln!("  active:      {p}");
        }
        for m in &report.missing {
            outln!("  NOT active:  {m}");
        }
        for n in &report.notes {
            outln!("  note:        {n}");
        }
        if let Some(e) = &report.error {
            outln!("  cannot start: {e}");
        }
    }
    Ok(if report.enforceable {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Serialize)]
struct VerifyReport {
    log: String,
    intact: bool,
    entries: usize,
    error: Option<String>,
    /// The seq the signed head names.
    head_seq: u64,
    /// Recorded breaks: repairs, a file deleted under the daemon, an older log moved aside.
    breaks: Vec<audit::Entry>,
    /// Files verified: the sealed segments (`audit.<seq>.jsonl`) and the live log.
    files: usize,
    /// Where the kept log starts when old segments were pruned (as an entry records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pruned_before: Option<u64>,
}

/// The daemon's audit log, which must exist (or have a head saying it should).
fn audit_log(sel: &Selector) -> Result<std::path::PathBuf, CliError> {
    let path = sel.paths().audit_log();
    let (_, head) = audit::seal::beside(&path);
    if !path.exists() && !head.exists() {
        return Err(usage(format!(
            "no audit log at {}: the daemon writes it from its first request on",
            path.display()
        )));
    }
    Ok(path)
}

/// `audit verify`: checks the keyed chain of the whole log against its signed head; exit
/// status 1 when damaged.
pub(crate) fn audit_verify(sel: &Selector, json: bool) -> Result<ExitCode, CliError> {
    let path = audit_log(sel)?;
    let mut report = VerifyReport {
        log: path.display().to_string(),
        intact: false,
        entries: 0,
        error: None,
        head_seq: 0,
        breaks: Vec::new(),
        files: 0,
        pruned_before: None,
    };
    match audit::verify(&path) {
        Ok(r) => {
            report.intact = true;
            report.entries = r.entries;
            report.head_seq = r.head_seq;
            report.breaks = r.breaks;
            report.files = r.files;
            report.pruned_before = r.pruned_before;
        }
        Err(e) => report.error = Some(e.to_string()),
    }
    if json {
        print_json(&report)?;
    } else if let Some(e) = &report.error {
        outln!("audit log {}: DAMAGED: {e}", report.log);
    } else {
        outln!(
            "audit log {}: intact, {} entries in {} file(s)",
            report.log,
            report.entries,
            report.files
        );
        if let Some(seq) = report.pruned_before {
            outln!("  older segments were pruned (recorded): the kept log starts at #{seq}");
        }
        for b in &report.breaks {
            outln!(
                "  recorded break #{} at {} ({}): {}",
                b.seq,
                b.time,
                b.action,
                b.detail
            );
        }
    }
    Ok(if report.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `audit repair`: asks the daemon (started if need be) to move a damaged log aside and start
/// a new segment recording the break.
pub(crate) async fn audit_repair(sel: &Selector, json: bool) -> Result<ExitCode, CliError> {
    use ai_session_protocol::methods::AuditRepairResult;
    use ai_session_protocol::registry::{AuditRepair, Method};
    let client = crate::commands::connect(sel, true).await?;
    let r: AuditRepairResult = client
        .call(AuditRepair::NAME, serde_json::json!({}))
        .await?;
    if json {
        print_json(&r)?;
    } else if r.repaired {
        outln!(
            "audit log repaired: {}",
            r.problem.as_deref().unwrap_or_default()
        );
        if let Some(moved) = &r.moved_to {
            outln!("  the damaged log was moved to {moved}");
        }
        outln!(
            "  a new segment starts at entry #{}, recording the break",
            r.seq
        );
    } else {
        outln!(
            "audit log intact (last entry #{}): nothing to repair",
            r.seq
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit ls`: the entries since a time, at or above a risk, for a session.
pub(crate) fn audit_ls(
    sel: &Selector,
    since: Option<&str>,
    min_risk: u8,
    session: Option<String>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let path = audit_log(sel)?;
    let since = since.map(parse_since).transpose()?;
    let entries = audit::query(
        &path,
        &Query {
            since,
            min_risk,
            session,
        },
    )
    .map_err(|e| usage(e.to_string()))?;
    let entries = open_sealed(&path, entries)?;
    if json {
        print_json(&entries)?;
    } else {
        for e in &entries {
            let who = match &e.actor {
                audit::Actor::Owner => "owner".to_string(),
                audit::Actor::Agent(a) => format!("agent {a}"),
                audit::Actor::HttpToken(_) => "owner (http)".to_string(),
                audit::Actor::Token(t) => format!("token {t}"),
                audit::Actor::Anonymous => "anonymous".to_string(),
                audit::Actor::Daemon => "daemon".to_string(),
            };
            outln!(
                "{} #{} risk {:>3} {who} {}{} {} -> {}",
                e.time,
                e.seq,
                e.risk,
                e.action,
                e.session
                    .as_ref()
                    .map(|s| format!(" [{s}]"))
                    .unwrap_or_default(),
                e.detail,
                e.result
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The store's passphrase variable (`ai_session_store::PASSPHRASE_ENV`; the CLI does not link
/// the store), which also seals audit details.
const PASSPHRASE_ENV: &str = "AI_SESSION_PASSPHRASE";

/// Details sealed under a passphrase are shown in clear when `AI_SESSION_PASSPHRASE` opens
/// them, as a note saying so otherwise.
fn open_sealed(path: &Path, mut entries: Vec<audit::Entry>) -> Result<Vec<audit::Entry>, CliError> {
    if !entries.iter().any(|e| audit::secret::is_sealed(&e.detail)) {
        return Ok(entries);
    }
    let passphrase = std::env::var(PASSPHRASE_ENV).ok().filter(|p| !p.is_empty());
    let cipher = passphrase
        .map(|p| audit::DetailCipher::for_log(path, &p, false))
        .transpose()
        .map_err(|e| usage(e.to_string()))?;
    for e in entries
        .iter_mut()
        .filter(|e| audit::secret::is_sealed(&e.detail))
    {
        e.detail = match cipher.as_ref().and_then(|c| c.open(e.seq, &e.detail)) {
            Some(plain) => plain,
            None if cipher.is_some() => "[sealed: does not open with this passphrase]".into(),
            None => format!("[sealed: set {} to read]", PASSPHRASE_ENV),
        };
    }
    Ok(entries)
}

/// `--since`: a duration back from now (`90s`, `15m`, `2h`, `7d`) or an RFC 3339 UTC time
/// (`2026-11-23T10:00:00Z`).
fn parse_since(text: &str) -> Result<SystemTime, CliError> {
    let bad = || {
        usage(format!(
            "invalid --since '{text}': give a duration like 15m, 2h, 7d, or a UTC time like 2026-11-23T10:00:00Z"
        ))
    };
    let t = text.trim();
    if let Some(unit) = t.chars().last().filter(char::is_ascii_alphabetic) {
        if !t.contains('T') {
            let n: u64 = t[..t.len() - 1].parse().map_err(|_| bad())?;
            let secs = match unit {
                's' => n,
                'm' => n * 60,
                'h' => n * 3600,
                'd' => n * 86_400,
                _ => return Err(bad()),
            };
            return SystemTime::now()
                .checked_sub(Duration::from_secs(secs))
                .ok_or_else(bad);
        }
    }
    parse_rfc3339(t).ok_or_else(bad)
}

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` to a time.
fn parse_rfc3339(t: &str) -> Option<SystemTime> {
    let t = t.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut h = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let millis: i64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    // Days from civil (H. Hinnant's algorithm), the inverse of the audit log's formatting.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    let ms = u64::try_from(secs * 1000 + millis).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

/// `access token|grant|revoke|revoke-token|ls`.
pub(crate) async fn access(
    client: &ai_session_client::Client,
    action: crate::AccessAction,
) -> Result<(), CliError> {
    use crate::AccessAction as A;
    use serde_json::{Value, json};
    match action {
        A::Token {
            caps,
            label,
            policy,
            json,
        } => {
            let policy = policy.as_deref().map(policy_text).transpose()?;
            let r: Value = client
                .call(
                    reg::AccessToken::NAME,
                    json!({ "capabilities": caps, "label": label, "policy": policy }),
                )
                .await?;
            if json {
                print_json(&r)?;
            } else {
                outln!("{}", r["token"].as_str().unwrap_or_default());
                errln!(
                    "token {} holds: {}; give it to the agent as AI_SESSION_TOKEN (it is shown once)",
                    r["principal"].as_str().unwrap_or_default(),
                    caps.join(", ")
                );
            }
        }
        A::Grant { principal, cap } => {
            let _: Value = client
                .call(
                    reg::AccessGrant::NAME,
                    json!({ "principal": principal, "capability": cap }),
                )
                .await?;
        }
        A::Revoke { principal, cap } => {
            let _: Value = client
                .call(
                    reg::AccessRevoke::NAME,
                    json!({ "principal": principal, "capability": cap }),
                )
                .await?;
        }
        A::Policy {
            principal,
            policy,
            clear,
        } => {
            let policy = if clear {
                None
            } else {
                policy.as_deref().map(policy_text).transpose()?
            };
            let _: Value = client
                .call(
                    reg::AccessPolicy::NAME,
                    json!({ "principal": principal, "policy": policy }),
                )
                .await?;
        }
        A::RevokeToken { id } => {
            let id = id.strip_prefix("token:").unwrap_or(&id).to_string();
            let _: Value = client
                .call(reg::AccessRevokeToken::NAME, json!({ "id": id }))
                .await?;
        }
        A::Ls(a) => {
            let r: Value = client.call(reg::AccessList::NAME, json!({})).await?;
            if a.json {
                print_json(&r)?;
            } else {
                let defaults: Vec<&str> = r["agent_defaults"]
                    .as_array()
                    .map(|d| d.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                outln!("every agent holds: {}", defaults.join(", "));
                for p in r["principals"].as_array().into_iter().flatten() {
                    // A capability on one session shows the id it is bound to.
                    let bound = |cap: &str| {
                        p["sessions"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .find_map(|b| {
                                (b["capability"] == cap).then(|| b["session_id"].as_str())?
                            })
                    };
                    let caps: Vec<String> = p["capabilities"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(|c| match bound(c) {
                            Some(id) => format!("{c} (session id {id})"),
                            None => c.to_string(),
                        })
                        .collect();
                    let label = p["label"]
                        .as_str()
                        .filter(|l| !l.is_empty())
                        .map(|l| format!(" ({l})"))
                        .unwrap_or_default();
                    let policy = p["policy"]
                        .as_str()
                        .map(|p| format!(" [sessions sandboxed: {p}]"))
                        .unwrap_or_default();
                    outln!(
                        "{}{label}: {}{policy}",
                        p["principal"].as_str().unwrap_or_default(),
                        caps.join(", ")
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn since_parses_durations_and_times() {
        let t = parse_rfc3339("2024-02-29T23:59:59.123Z").unwrap();
        assert_eq!(audit::format_time(t), "2024-02-29T23:59:59.123Z");
        let t = parse_rfc3339("1970-01-01T00:00:00Z").unwrap();
        assert_eq!(t, SystemTime::UNIX_EPOCH);
        assert!(parse_since("15m").is_ok());
        assert!(parse_since("2026-13-01T00:00:00Z").is_err());
        assert!(parse_since("yesterday").is_err());
    }
}
