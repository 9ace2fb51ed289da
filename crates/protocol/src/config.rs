//! The configuration file, `$AI_SESSION_HOME/config.toml` (or the file `$AI_SESSION_CONFIG`
//! names). Every key is optional; a missing file is the embedded defaults. A key the file does
//! not know is an error that names it and its line, never silently ignored: a misspelt
//! `idle_timout` must not leave an operator believing a setting is in force.
//!
//! One section per concern. A section is a struct with `#[serde(default, deny_unknown_fields)]`
//! and a `Default` that is the behaviour without a file; `docs/config.md` lists every key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    /// `[[hooks]]`: programs and URLs told of sessions, commands and tasks.
    pub hooks: Vec<HookConfig>,
}

/// `[exec]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecConfig {
    /// Hard timeout in seconds: the exec returns with status `timeout` (the command keeps running).
    pub timeout_secs: f64,
    /// Seconds without output after which the exec returns with status `running`; none by default.
    pub idle_timeout_secs: Option<f64>,
}

impl Default for ExecConfig {
    fn default() -> Self {
        Self {
            timeout_secs: 600.0,
            idle_timeout_secs: None,
        }
    }
}

/// `[session]`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Environment variables set in every new session, after the pager defaults and before
    /// `new -e`. An empty string sets the variable to the empty string.
    pub env: std::collections::BTreeMap<String, String>,
    /// `false` leaves `PAGER`, `GIT_PAGER`, `MANPAGER` and `SYSTEMD_PAGER` as the daemon's
    /// environment has them instead of disabling pagers.
    pub no_pager: Option<bool>,
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
    /// The address `ai-session serve` listens on when `--listen` is not given.
    pub listen: Option<String>,
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

    /// Parses the text of a configuration file; the error, on one line, says what is wrong and
    /// where (``unknown field `idle_timout` ... at line 3, column 1: `idle_timout = 1` ``).
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end().replace('\n', " ");
            match e.span() {
                Some(span) => {
                    let before = text.get(..span.start).unwrap_or(text);
                    let line = before.matches('\n').count() + 1;
                    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    let source = text[before.len()..].lines().next().unwrap_or("");
                    let source = before.rsplit('\n').next().unwrap_or("").to_owned() + source;
                    format!(
                        "{message} at line {line}, column {column}: `{}`",
                        source.trim()
                    )
                }
                None => message,
            }
        })
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
        assert_eq!(c.session.no_pager, Some(false));
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
