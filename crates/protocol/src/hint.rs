//! Hints phrased by the front end that returns them.
//!
//! A hint that tells the caller what to do next names an operation ("wait for the prompt") or a
//! parameter ("raise the timeout"), and each front end spells those its own way: the CLI as
//! `ai-session wait -t build --prompt` and `--timeout`, MCP as `session_wait {"session": "build",
//! "prompt": true}` and `timeout_secs`, HTTP as `POST /v1/sessions/build/wait {...}` and
//! `timeout_ms`. So the daemon does not write the hint's text once: it writes an [`Advice`], a
//! sentence whose `{0}`, `{1}`... stand for [`Step`]s (a method with its params, or a params
//! field), and each front end renders it with its own [`Phrasing`]. [`Cli`] is the default, the
//! phrasing of `hint` on the socket (whose clients are the CLI and the library).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::registry;

/// A hint before it is phrased: `text` with `{0}`, `{1}`... where `steps` go.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Advice {
    /// The sentence, with `{N}` for the N-th step.
    pub text: String,
    /// What the sentence refers to, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
}

/// An operation or a parameter a hint refers to, in no front end's syntax.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", tag = "step")]
pub enum Step {
    /// Call `method` with `params` (the protocol's params; `target` absent when unknown).
    Call { method: String, params: Value },
    /// The params field `field` of `method`, e.g. `session.exec`'s `timeout_ms`.
    Field { method: String, field: String },
}

/// How a front end spells a step.
pub trait Phrasing {
    /// An operation, e.g. `ai-session wait -t build --prompt`.
    fn call(&self, method: &str, params: &Value) -> String;
    /// A parameter, e.g. `--timeout`.
    fn field(&self, method: &str, field: &str) -> String;
}

impl Advice {
    /// A hint with no steps yet.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            steps: Vec::new(),
        }
    }

    /// Adds a method call as the next step.
    pub fn call(mut self, method: &str, params: Value) -> Self {
        self.steps.push(Step::Call {
            method: method.to_owned(),
            params,
        });
        self
    }

    /// Adds a params field as the next step.
    pub fn field(mut self, method: &str, field: &str) -> Self {
        self.steps.push(Step::Field {
            method: method.to_owned(),
            field: field.to_owned(),
        });
        self
    }

    /// The hint in `phrasing`'s syntax: each `{N}` replaced by step N. A `{` not followed by a
    /// step number and `}` is kept as written.
    pub fn render(&self, phrasing: &dyn Phrasing) -> String {
        let mut out = String::with_capacity(self.text.len() + 64);
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let step = (digits > 0 && after[digits..].starts_with('}'))
                .then(|| after[..digits].parse::<usize>().ok())
                .flatten()
                .and_then(|i| self.steps.get(i));
            match step {
                Some(Step::Call { method, params }) => {
                    out.push_str(&phrasing.call(method, params));
                    rest = &after[digits + 1..];
                }
                Some(Step::Field { method, field }) => {
                    out.push_str(&phrasing.field(method, field));
                    rest = &after[digits + 1..];
                }
                None => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// The CLI's phrasing: `ai-session COMMAND -t NAME --flag value`, in a form a shell accepts.
#[derive(Debug, Clone)]
pub struct Cli {
    /// What starts every command: `ai-session`, or `ai-session -L work` for a caller that
    /// selected a daemon.
    pub program: String,
}

impl Default for Cli {
    fn default() -> Self {
        Self {
            program: "ai-session".into(),
        }
    }
}

/// `word` as one shell word: as is when it needs no quoting, else in single quotes.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Milliseconds as a CLI duration flag takes them: `30s`, `1500ms`.
fn duration(ms: u64) -> String {
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Cli {
    /// The flags of a params object, in the CLI's spelling, without the ones `skip` names.
    fn flags(&self, method: &str, params: &Map<String, Value>, skip: &[&str]) -> String {
        let mut out = String::new();
        for (key, value) in params {
            if skip.contains(&key.as_str()) || value.is_null() {
                continue;
            }
            out.push(' ');
            out.push_str(&self.field(method, key));
            match value {
                Value::Bool(true) => {}
                Value::Number(n) if key.ends_with("_ms") => {
                    out.push(' ');
                    out.push_str(&duration(n.as_u64().unwrap_or_default()));
                }
                Value::Array(items) => {
                    for item in items {
                        out.push(' ');
                        out.push_str(&shell_word(&text_of(item)));
                    }
                }
                other => {
                    out.push(' ');
                    out.push_str(&shell_word(&text_of(other)));
                }
            }
        }
        out
    }
}

/// The params a method's CLI command takes as positional arguments, in their order.
fn positional(method: &str) -> &'static [&'static str] {
    match method {
        "access.grant" | "access.revoke" => &["principal", "capability"],
        "decision.outcome" => &["id", "outcome"],
        "decision.show" | "context.show" => &["id"],
        _ => &[],
    }
}

impl Phrasing for Cli {
    fn call(&self, method: &str, params: &Value) -> String {
        let Some(command) = registry::spec(method).and_then(|s| s.cli) else {
            return format!("the daemon method `{method}`");
        };
        let empty = Map::new();
        let obj = params.as_object().unwrap_or(&empty);
        let target = obj.get("target").and_then(Value::as_str).unwrap_or("NAME");
        let mut line = format!("{} {command}", self.program);
        let needs_target = matches!(
            registry::spec(method).map(|s| s.need),
            Some(registry::Need::Session(_) | registry::Need::SessionOrAgent(_))
        );
        if needs_target {
            line.push_str(" -t ");
            line.push_str(&shell_word(target));
        }
        match method {
            "session.wait" => {
                line.push_str(&match obj.get("condition") {
                    Some(c) if c.get("kind").and_then(Value::as_str) == Some("regex") => {
                        let p = c.get("pattern").map(text_of).unwrap_or_default();
                        format!(" --for {}", shell_word(&p))
                    }
                    Some(c) if c.get("kind").and_then(Value::as_str) == Some("idle") => {
                        let ms = c.get("ms").and_then(Value::as_u64).unwrap_or_default();
                        format!(" --idle {}", duration(ms))
                    }
                    _ => " --prompt".to_owned(),
                });
                line.push_str(&self.flags(method, obj, &["target", "condition"]));
            }
            "session.send" => {
                line.push_str(&self.flags(method, obj, &["target", "keys"]));
                for key in obj
                    .get("keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    line.push(' ');
                    line.push_str(&shell_word(&text_of(key)));
                }
            }
            "session.exec" => {
                line.push_str(&self.flags(method, obj, &["target", "command"]));
                if let Some(c) = obj.get("command") {
                    line.push(' ');
                    line.push_str(&shell_word(&text_of(c)));
                }
            }
            _ => {
                // Commands whose arguments are positional: `access grant PRINCIPAL CAP`.
                let positional = positional(method);
                let mut skip = vec!["target"];
                skip.extend_from_slice(positional);
                line.push_str(&self.flags(method, obj, &skip));
                for field in positional {
                    line.push(' ');
                    line.push_str(&match obj.get(*field) {
                        Some(v) => shell_word(&text_of(v)),
                        None => field.to_uppercase(),
                    });
                }
            }
        }
        line
    }

    fn field(&self, method: &str, field: &str) -> String {
        match (method, field) {
            ("session.new", "name") => "-s".into(),
            ("session.new", "cwd") => "-c".into(),
            (_, "target") => "-t".into(),
            (_, "timeout_ms") => "--timeout".into(),
            (_, "idle_timeout_ms") => "--idle-timeout".into(),
            ("session.exec", "view_budget") => "--budget".into(),
            ("session.send", "literal") => "-l".into(),
            _ => format!("--{}", field.replace('_', "-")),
        }
    }
}

/// Rephrases, in text written for the CLI (a compact view's footer), the commands that point
/// back at a session's output: `` `ai-session read -t NAME --since N` `` and
/// `` `ai-session capture -t NAME` ``.
pub fn rephrase_commands(text: &str, phrasing: &dyn Phrasing) -> String {
    const READ: &str = "`ai-session read -t ";
    const CAPTURE: &str = "`ai-session capture -t ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = [READ, CAPTURE]
            .iter()
            .filter_map(|p| rest.find(p).map(|at| (at, *p)))
            .min_by_key(|(at, _)| *at);
        let Some((at, prefix)) = next else { break };
        let after = &rest[at + prefix.len()..];
        let Some(end) = after.find('`') else { break };
        let inner = &after[..end];
        let call = if prefix == READ {
            inner.rsplit_once(" --since ").and_then(|(name, since)| {
                since.parse::<u64>().ok().map(|since| {
                    phrasing.call(
                        "session.read",
                        &serde_json::json!({ "target": name, "since": since }),
                    )
                })
            })
        } else {
            Some(phrasing.call("session.capture", &serde_json::json!({ "target": inner })))
        };
        out.push_str(&rest[..at]);
        match call {
            Some(c) => {
                out.push('`');
                out.push_str(&c);
                out.push('`');
            }
            None => out.push_str(&rest[at..at + prefix.len() + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_cli_phrasing_writes_commands_a_shell_runs() {
        let a = Advice::new("wait for it ({0}), interrupt it ({1}), or raise {2}")
            .call(
                "session.wait",
                json!({"target": "my build", "condition": {"kind": "prompt"}}),
            )
            .call("session.send", json!({"target": "b", "keys": ["C-c"]}))
            .field("session.exec", "timeout_ms");
        assert_eq!(
            a.render(&Cli::default()),
            "wait for it (ai-session wait -t 'my build' --prompt), interrupt it \
             (ai-session send -t b C-c), or raise --timeout"
        );
        let cli = Cli {
            program: "ai-session -L work".into(),
        };
        let read = Advice::new("{0}").call("session.read", json!({"target": "b", "since": 42}));
        assert_eq!(read.render(&cli), "ai-session -L work read -t b --since 42");
        let grant = Advice::new("{0}").call(
            "access.grant",
            json!({"principal": "token:ab", "capability": "session:exec:*"}),
        );
        assert_eq!(
            grant.render(&Cli::default()),
            "ai-session access grant token:ab 'session:exec:*'"
        );
    }

    #[test]
    fn text_without_steps_and_stray_braces_render_as_written() {
        let a = Advice::new(r#"send {"a": 1} or {7} or {x}"#);
        assert_eq!(a.render(&Cli::default()), r#"send {"a": 1} or {7} or {x}"#);
    }

    struct Upper;
    impl Phrasing for Upper {
        fn call(&self, method: &str, params: &Value) -> String {
            format!("{method} {params}")
        }
        fn field(&self, _: &str, field: &str) -> String {
            field.to_uppercase()
        }
    }

    #[test]
    fn commands_in_cli_text_are_rephrased() {
        let text = "12 lines omitted: `ai-session read -t b 1 --since 40` (log bytes 40..90); \
                    screen: `ai-session capture -t b`; `ai-session read -t x --since oops`";
        assert_eq!(
            rephrase_commands(text, &Upper),
            "12 lines omitted: `session.read {\"since\":40,\"target\":\"b 1\"}` (log bytes 40..90); \
             screen: `session.capture {\"target\":\"b\"}`; `ai-session read -t x --since oops`"
        );
    }

    #[test]
    fn advice_survives_the_wire() {
        let a = Advice::new("{0}").call("session.new", json!({}));
        let back: Advice = serde_json::from_value(serde_json::to_value(&a).unwrap()).unwrap();
        assert_eq!(a, back);
        assert_eq!(back.render(&Cli::default()), "ai-session new");
    }
}
