//! `[[hooks]]`: programs to run and URLs to call when something happens in the daemon (a session
//! created or ended, a command finished, a task done or failed, an alert raised). Each hook is checked when the file is
//! read: an unknown event, both or neither of `command` and `url`, a URL that is not `http://`
//! are errors naming the hook's line, never a hook that silently never fires.

use serde::{Deserialize, Serialize};

/// The events a hook can listen to.
pub const HOOK_EVENTS: &[&str] = &[
    "session-created",
    "session-terminated",
    "command-finished",
    "task-done",
    "task-failed",
    "alert",
];

/// One `[[hooks]]` entry, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "HookToml", into = "HookToml")]
pub struct HookConfig {
    /// The name in logs, `daemon status` and dead letters: `name`, else the program or the URL.
    pub name: String,
    /// The events it fires on (one of [`HOOK_EVENTS`] each).
    pub on: Vec<String>,
    /// Where the event goes.
    pub target: HookTarget,
    /// How long a program may run, or one HTTP attempt may take, in seconds.
    pub timeout_secs: f64,
}

/// Where a hook sends its event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HookTarget {
    /// A program and its arguments; the event is its standard input, as one JSON object.
    Command(Vec<String>),
    /// An `http://` URL the event is POSTed to.
    Url {
        url: String,
        /// The HMAC-SHA256 key for `X-AI-Session-Signature` (from `secret` or `secret_env`).
        secret: Option<String>,
        /// Attempts after the first one fails.
        retries: u32,
        /// The wait before the first retry, in milliseconds; doubled before each next one.
        backoff_ms: u64,
    },
}

/// One hook as written in the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HookToml {
    pub name: Option<String>,
    /// One event name or a list of them.
    pub on: OneOrMany,
    pub command: Option<Vec<String>>,
    pub url: Option<String>,
    /// The signing key, written in the file.
    pub secret: Option<String>,
    /// The name of an environment variable of the daemon that holds the signing key.
    pub secret_env: Option<String>,
    pub timeout_secs: Option<f64>,
    pub retries: Option<u32>,
    pub backoff_ms: Option<u64>,
}

/// `on = "x"` or `on = ["x", "y"]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Default for OneOrMany {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

/// Seconds a hook's program or HTTP attempt may take when `timeout_secs` is not given.
pub const DEFAULT_HOOK_TIMEOUT_SECS: f64 = 10.0;
/// Retries of a webhook when `retries` is not given.
pub const DEFAULT_HOOK_RETRIES: u32 = 4;
/// The first retry's wait when `backoff_ms` is not given.
pub const DEFAULT_HOOK_BACKOFF_MS: u64 = 500;

impl TryFrom<HookToml> for HookConfig {
    type Error = String;

    fn try_from(raw: HookToml) -> Result<Self, String> {
        let on = match raw.on {
            OneOrMany::One(e) => vec![e],
            OneOrMany::Many(list) => list,
        };
        if on.is_empty() {
            return Err(format!(
                "a hook needs `on`, one or more of: {}",
                HOOK_EVENTS.join(", ")
            ));
        }
        if let Some(bad) = on.iter().find(|e| !HOOK_EVENTS.contains(&e.as_str())) {
            return Err(format!(
                "unknown hook event '{bad}'; the events are: {}",
                HOOK_EVENTS.join(", ")
            ));
        }
        let timeout_secs = raw.timeout_secs.unwrap_or(DEFAULT_HOOK_TIMEOUT_SECS);
        if !(timeout_secs > 0.0 && timeout_secs <= 3600.0) {
            return Err(format!(
                "hook timeout_secs must be above 0 and at most 3600, not {timeout_secs}"
            ));
        }
        let (target, default_name) = match (raw.command, raw.url) {
            (Some(command), None) => command_target(command, &raw.secret, &raw.secret_env)?,
            (None, Some(url)) => {
                url_target(url, raw.secret, raw.secret_env, raw.retries, raw.backoff_ms)?
            }
            (Some(_), Some(_)) => {
                return Err("a hook has either `command` or `url`, not both".into());
            }
            (None, None) => {
                return Err(
                    "a hook needs `command = [\"prog\", \"args\"]` or `url = \"http://...\"`"
                        .into(),
                );
            }
        };
        Ok(HookConfig {
            name: raw.name.unwrap_or(default_name),
            on,
            target,
            timeout_secs,
        })
    }
}

fn command_target(
    command: Vec<String>,
    secret: &Option<String>,
    secret_env: &Option<String>,
) -> Result<(HookTarget, String), String> {
    if command.first().is_none_or(|p| p.is_empty()) {
        return Err("a hook's `command` needs a program: command = [\"prog\", \"args\"]".into());
    }
    if secret.is_some() || secret_env.is_some() {
        return Err("`secret` signs webhook bodies: it goes with `url`, not `command`".into());
    }
    let name = command[0].clone();
    Ok((HookTarget::Command(command), name))
}

fn url_target(
    url: String,
    secret: Option<String>,
    secret_env: Option<String>,
    retries: Option<u32>,
    backoff_ms: Option<u64>,
) -> Result<(HookTarget, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!(
            "hook url '{url}' must start with http:// (put a TLS-terminating proxy in front \
             of an https receiver)"
        )
    })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("hook url '{url}' has no host"));
    }
    let secret = match (secret, secret_env) {
        (Some(_), Some(_)) => return Err("give `secret` or `secret_env`, not both".into()),
        (Some(s), None) => Some(s),
        (None, Some(var)) => Some(std::env::var(&var).map_err(|_| {
            format!("hook secret_env names '{var}', which is not set in the daemon's environment")
        })?),
        (None, None) => None,
    };
    if secret.as_ref().is_some_and(String::is_empty) {
        return Err("a hook's secret is empty".into());
    }
    let retries = retries.unwrap_or(DEFAULT_HOOK_RETRIES);
    if retries > 20 {
        return Err(format!("hook retries must be at most 20, not {retries}"));
    }
    let backoff_ms = backoff_ms.unwrap_or(DEFAULT_HOOK_BACKOFF_MS);
    if backoff_ms == 0 || backoff_ms > 600_000 {
        return Err(format!(
            "hook backoff_ms must be 1 to 600000, not {backoff_ms}"
        ));
    }
    let name = url.clone();
    Ok((
        HookTarget::Url {
            url,
            secret,
            retries,
            backoff_ms,
        },
        name,
    ))
}

impl From<HookConfig> for HookToml {
    fn from(hook: HookConfig) -> Self {
        let mut raw = HookToml {
            name: Some(hook.name),
            on: OneOrMany::Many(hook.on),
            timeout_secs: Some(hook.timeout_secs),
            ..HookToml::default()
        };
        match hook.target {
            HookTarget::Command(c) => raw.command = Some(c),
            HookTarget::Url {
                url,
                secret,
                retries,
                backoff_ms,
            } => {
                raw.url = Some(url);
                raw.secret = secret;
                raw.retries = Some(retries);
                raw.backoff_ms = Some(backoff_ms);
            }
        }
        raw
    }
}

impl HookConfig {
    /// Whether the hook fires on `event`.
    pub fn fires_on(&self, event: &str) -> bool {
        self.on.iter().any(|e| e == event)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn hooks_are_read_and_checked() {
        let c = Config::parse(
            "[[hooks]]\non = \"session-created\"\ncommand = [\"/bin/cat\"]\n\
             [[hooks]]\nname = \"ci\"\non = [\"command-finished\", \"task-done\"]\n\
             url = \"http://127.0.0.1:9/x\"\nsecret = \"k\"\nretries = 2\n",
        )
        .unwrap();
        assert_eq!(c.hooks.len(), 2);
        assert_eq!(c.hooks[0].name, "/bin/cat");
        assert!(c.hooks[0].fires_on("session-created"));
        assert_eq!(c.hooks[1].name, "ci");
        assert!(c.hooks[1].fires_on("task-done"));
        assert!(!c.hooks[1].fires_on("session-created"));
    }

    #[test]
    fn bad_hooks_are_errors_naming_the_problem_and_the_line() {
        for (text, want) in [
            (
                "[[hooks]]\non = \"sesion-created\"\ncommand = [\"x\"]\n",
                "unknown hook event",
            ),
            ("[[hooks]]\non = \"task-done\"\n", "needs `command"),
            (
                "[[hooks]]\non = \"task-done\"\ncommand = [\"x\"]\nurl = \"http://a\"\n",
                "not both",
            ),
            (
                "[[hooks]]\non = \"task-done\"\nurl = \"https://a\"\n",
                "http://",
            ),
            ("[[hooks]]\ncommand = [\"x\"]\n", "needs `on`"),
            (
                "[[hooks]]\non = \"task-done\"\ncommand = [\"x\"]\nbogus = 1\n",
                "bogus",
            ),
        ] {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.contains("line"), "{text}: {err}");
        }
    }
}
