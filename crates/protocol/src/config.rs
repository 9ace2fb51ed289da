//! The configuration file, `$AI_SESSION_HOME/config.toml` (or the file `$AI_SESSION_CONFIG`
//! names). Every key is optional; a missing file is the embedded defaults. A key the file does
//! not know is an error that names it and its line, never silently ignored: a misspelt
//! `idle_timout` must not leave an operator believing a setting is in force.
//!
//! One section per concern. A section is a struct with `#[serde(default, deny_unknown_fields)]`
//! and a `Default` that is the behaviour without a file; `docs/config.md` lists every key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod telemetry;
pub use telemetry::{AlertsConfig, TelemetryConfig};
mod cluster;
pub use cluster::ClusterConfig;
mod hooks;
pub use hooks::{HOOK_EVENTS, HookConfig, HookTarget};

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Defaults for `exec` when a call does not give them.
    pub exec: ExecConfig,
    /// Defaults for new sessions.
    pub session: SessionConfig,
    /// The MCP server (`ai-session mcp` and `/mcp`).
    pub mcp: McpConfig,
    /// The HTTP server (`ai-session serve`).
    pub http: HttpConfig,
    /// Spans exported over OTLP.
    pub telemetry: TelemetryConfig,
    /// The anomaly rules' thresholds.
    pub alerts: AlertsConfig,
    /// Joining a cluster of daemons over NATS (`daemon run --cluster`).
    pub cluster: ClusterConfig,
    /// `[[hooks]]`: programs and URLs told of sessions, commands and tasks.
    pub hooks: Vec<HookConfig>,
}

/// `[exec]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecConfig {
    /// Hard timeout in seconds: the exec returns with status `timeout` (the command keeps running).
    #[serde(deserialize_with = "secs")]
    pub timeout_secs: f64,
    /// Seconds without output after which the exec returns with status `running`; none by default.
    #[serde(deserialize_with = "some_secs")]
    pub idle_timeout_secs: Option<f64>,
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self {
            timeout_secs: 120.0,
            idle_timeout_secs: None,
        }
    }
}

impl ExecConfig {
    /// [`ExecConfig::timeout_secs`] in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        (self.timeout_secs * 1000.0).round() as u64
    }

    /// [`ExecConfig::idle_timeout_secs`] in milliseconds.
    pub fn idle_timeout_ms(&self) -> Option<u64> {
        self.idle_timeout_secs.map(|s| (s * 1000.0).round() as u64)
    }
}

/// The longest duration a key accepts: one year, as the CLI's `--timeout`.
const MAX_SECS: f64 = 86_400.0 * 365.0;

fn secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let s = f64::deserialize(d)?;
    if s.is_nan() || !(s > 0.0 && s <= MAX_SECS) {
        return Err(serde::de::Error::custom(format!(
            "{s} is out of range: give seconds above 0 and at most one year ({MAX_SECS})"
        )));
    }
    Ok(s)
}

fn some_secs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    secs(d).map(Some)
}

/// `[session]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Environment variables set in every new session: over the caller's environment and the
    /// pager defaults, under `new -e`. An empty string sets the variable to the empty string.
    #[serde(deserialize_with = "env_table")]
    pub env: BTreeMap<String, String>,
    /// `true` (the default) gives new sessions `PAGER=cat`, `GIT_PAGER=cat`, `MANPAGER=cat` and
    /// `SYSTEMD_PAGER=` unless the caller's environment, `env` or `new -e` sets them; `false`
    /// leaves them as the caller's environment has them.
    pub no_pager: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            env: BTreeMap::new(),
            no_pager: true,
        }
    }
}

fn env_table<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let env = BTreeMap::<String, String>::deserialize(d)?;
    for (k, v) in &env {
        if k.is_empty() || k.contains(['=', '\0']) {
            return Err(serde::de::Error::custom(format!(
                "invalid variable name {k:?}: a name is not empty and has no '=' or NUL"
            )));
        }
        if v.contains('\0') {
            return Err(serde::de::Error::custom(format!(
                "the value of {k} contains a NUL byte, which an environment cannot hold"
            )));
        }
    }
    Ok(env)
}

/// `[mcp]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpConfig {
    /// The tool groups the MCP server lists (`sessions`, `context`, ...); all when absent.
    pub tools: Option<Vec<String>>,
}

/// `[http]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The address `ai-session serve` (and `daemon.serve` from any front end) listens on when
    /// no address is given; `127.0.0.1:7717` when absent.
    #[serde(deserialize_with = "some_addr")]
    pub listen: Option<String>,
}

fn some_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.parse::<std::net::SocketAddr>().is_err() {
        return Err(serde::de::Error::custom(format!(
            "invalid address '{s}': give IP:PORT, e.g. 127.0.0.1:7717 (port 0 picks a free one)"
        )));
    }
    Ok(Some(s))
}

/// Why the configuration file could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// The file exists but could not be read.
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or has the wrong type. `message` names
    /// the key and its line.
    Invalid { path: PathBuf, message: String },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            ConfigError::Invalid { path, message } => write!(
                f,
                "{}: {}; fix or remove the key (docs/config.md lists every key)",
                path.display(),
                message.trim_end()
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            ConfigError::Invalid { .. } => None,
        }
    }
}

impl Config {
    /// Where the file is: `$AI_SESSION_CONFIG`, else `config.toml` in the state directory.
    pub fn path(home: &Path) -> PathBuf {
        match std::env::var_os("AI_SESSION_CONFIG").filter(|p| !p.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => home.join("config.toml"),
        }
    }

    /// Reads the file at [`Config::path`]; the defaults when there is none.
    pub fn load(home: &Path) -> Result<Config, ConfigError> {
        Self::load_from(&Self::path(home))
    }

    /// Reads `path`; the defaults when it does not exist.
    pub fn load_from(path: &Path) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(|message| ConfigError::Invalid {
                path: path.to_owned(),
                message,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses the text of a configuration file. The error is one line naming the line, the
    /// text on it (so the key) and what is wrong.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| one_line(text, &e))
    }
}

/// `line N (`KEY = VALUE`): what is wrong`: the daemon's first stderr line is what a client
/// that started it shows, so the whole error fits on one.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', "; ");
    let Some(span) = e.span() else {
        return message;
    };
    let at = span.start.min(text.len());
    let line_no = text[..at].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    if line.is_empty() {
        format!("line {line_no}: {message}")
    } else {
        format!("line {line_no} (`{line}`): {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn known_keys_are_read() {
        let c = Config::parse(
            "[exec]\ntimeout_secs = 30\nidle_timeout_secs = 2.5\n\
             [session]\nenv = { FOO = \"bar\" }\nno_pager = false\n\
             [mcp]\ntools = [\"sessions\"]\n[http]\nlisten = \"127.0.0.1:7777\"\n",
        )
        .unwrap();
        assert_eq!(c.exec.timeout_secs, 30.0);
        assert_eq!(c.exec.idle_timeout_secs, Some(2.5));
        assert_eq!(c.session.env.get("FOO").map(String::as_str), Some("bar"));
        assert!(!c.session.no_pager);
        assert_eq!(c.mcp.tools, Some(vec!["sessions".to_string()]));
        assert_eq!(c.http.listen.as_deref(), Some("127.0.0.1:7777"));
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it_and_its_line() {
        let err = Config::parse("[exec]\ntimeout_secs = 3\nidle_timout = 1\n").unwrap_err();
        assert!(err.contains("idle_timout"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let err = Config::parse("[execs]\n").unwrap_err();
        assert!(err.contains("execs"), "{err}");
    }

    #[test]
    fn errors_are_one_line_with_the_line_text() {
        let err = Config::parse("[exec]\ntimeout_secs = 3\nidle_timout = 1\n").unwrap_err();
        assert!(!err.contains('\n'), "{err}");
        assert!(err.starts_with("line 3 (`idle_timout = 1`)"), "{err}");
    }

    #[test]
    fn values_out_of_range_are_errors_naming_the_key() {
        for (text, key) in [
            ("[exec]\ntimeout_secs = -1\n", "timeout_secs"),
            ("[exec]\ntimeout_secs = 0\n", "timeout_secs"),
            ("[exec]\nidle_timeout_secs = nan\n", "idle_timeout_secs"),
            ("[session]\nenv = { \"A=B\" = \"x\" }\n", "env"),
            ("[http]\nlisten = \"localhost\"\n", "listen"),
        ] {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(key) && err.contains("line 2"), "{text}: {err}");
        }
    }

    #[test]
    fn the_defaults_are_the_behaviour_without_a_file() {
        let c = Config::default();
        assert_eq!(c.exec.timeout_ms(), 120_000);
        assert_eq!(c.exec.idle_timeout_ms(), None);
        assert!(c.session.no_pager && c.session.env.is_empty());
        assert_eq!(c.http.listen, None);
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let err = Config::parse("[exec]\ntimeout_secs = \"ten\"\n").unwrap_err();
        assert!(err.contains("timeout_secs"), "{err}");
    }

    #[test]
    fn a_missing_file_is_the_defaults_and_a_bad_one_names_its_path() {
        let dir = std::env::temp_dir().join(format!("ais-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        assert_eq!(Config::load_from(&path).unwrap(), Config::default());
        std::fs::write(&path, "bogus = 1\n").unwrap();
        let err = Config::load_from(&path).unwrap_err().to_string();
        assert!(
            err.contains("config.toml") && err.contains("bogus"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
