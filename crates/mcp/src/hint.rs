//! Hints in MCP's own terms: tool names with their arguments, and argument names (see
//! `ai_session_protocol::hint`). The daemon's advice names protocol methods and params; this
//! maps them onto the tools of this server (`target` is `session`, a wait's condition is one of
//! `regex`, `idle_ms`, `prompt`; durations are milliseconds, as in the protocol).

use ai_session_protocol::hint::{Advice, Phrasing};
use ai_session_protocol::registry;
use serde_json::{Map, Value};

/// The MCP phrasing: `session_wait {"session": "build", "prompt": true}`.
pub(crate) struct Mcp;

impl Phrasing for Mcp {
    fn call(&self, method: &str, params: &Value) -> String {
        let Some(tool) = registry::spec(method).and_then(|s| s.mcp) else {
            return match params.as_object() {
                Some(p) if !p.is_empty() => {
                    format!("the daemon method `{method}` {params} (no MCP tool calls it)")
                }
                _ => format!("the daemon method `{method}` (no MCP tool calls it)"),
            };
        };
        let args = arguments(method, params);
        if args.is_empty() {
            tool.tool.to_owned()
        } else {
            format!("{} {}", tool.tool, Value::Object(args))
        }
    }

    fn field(&self, method: &str, field: &str) -> String {
        format!("`{}`", argument(method, field))
    }
}

/// The tool argument a params field is given as.
pub(crate) fn argument(method: &str, field: &str) -> String {
    match (method, field) {
        (_, "target") => "session".into(),
        ("session.new", "set_env") => "env".into(),
        ("session.new", "size") => "cols` and `rows".into(),
        (_, f) => f.to_owned(),
    }
}

/// A method's params as the arguments of its tool.
fn arguments(method: &str, params: &Value) -> Map<String, Value> {
    let mut args = Map::new();
    let Some(obj) = params.as_object() else {
        return args;
    };
    for (key, value) in obj {
        match (method, key.as_str()) {
            ("session.wait", "condition") => match value.get("kind").and_then(Value::as_str) {
                Some("regex") => {
                    args.insert("regex".into(), value.get("pattern").cloned().into());
                }
                Some("idle") => {
                    args.insert("idle_ms".into(), value.get("ms").cloned().into());
                }
                _ => {
                    args.insert("prompt".into(), Value::Bool(true));
                }
            },
            ("session.new", "size") => {
                args.insert("cols".into(), value.get("cols").cloned().into());
                args.insert("rows".into(), value.get("rows").cloned().into());
            }
            (_, k) => {
                args.insert(argument(method, k), value.clone());
            }
        }
    }
    if method.starts_with("session.") && method != "session.new" && method != "session.list" {
        args.entry("session").or_insert_with(|| Value::from("NAME"));
    }
    args
}

/// `advice` phrased for MCP.
pub(crate) fn render(advice: &Advice) -> String {
    advice.render(&Mcp)
}

/// A compact view whose footer points back at the output in MCP's terms.
pub(crate) fn rephrase_view(mut compact: Value) -> Value {
    if let Some(Value::String(text)) = compact.get_mut("text") {
        *text = ai_session_protocol::hint::rephrase_commands(text, &Mcp);
    }
    compact
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn calls_are_tools_with_their_arguments() {
        let a = Advice::new("{0}, {1}, {2}, {3}; raise {4}")
            .call(
                "session.wait",
                json!({"target": "b", "condition": {"kind": "prompt"}}),
            )
            .call("session.send", json!({"target": "b", "keys": ["C-c"]}))
            .call("session.capture", json!({}))
            .call("daemon.stop", json!({}))
            .field("session.wait", "timeout_ms");
        assert_eq!(
            render(&a),
            "session_wait {\"prompt\":true,\"session\":\"b\"}, \
             session_send_keys {\"keys\":[\"C-c\"],\"session\":\"b\"}, \
             session_capture {\"session\":\"NAME\"}, \
             the daemon method `daemon.stop` (no MCP tool calls it); raise `timeout_ms`"
        );
    }
}
