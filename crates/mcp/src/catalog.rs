//! The tool list as clients see it: each tool's annotations (`readOnlyHint`, `destructiveHint`,
//! `idempotentHint`, from the registry) and its `outputSchema` (the registry's result type, or
//! this server's own shape for the four tools that reshape the daemon's answer), and which
//! groups of tools this server offers (`--tools`, `[mcp] tools`).

use std::sync::Arc;

use ai_session_protocol::registry::{self as reg, MethodSpec};
use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{JsonObject, ToolAnnotations};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::Serialize;
use serde_json::Value;

use ai_session_protocol::methods::{ExecStatus, Foreground, Size};

/// `session_exec`'s result: what happened first, then the view asked for, then how to get the
/// rest.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecAnswer {
    /// `exited` (finished), `running` (quiet for idle_timeout_ms), `timeout`,
    /// `waiting_for_input` or `starting`; the command keeps running unless `exited`.
    pub status: ExecStatus,
    /// The command's exit code, once it has exited.
    pub exit_code: Option<i32>,
    pub duration_ms: f64,
    /// The token-lean view of a finished command's output (views `compact` and `both`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compact: Option<Value>,
    /// The plain output (views `full` and `both`, or a command without a compact view).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The output was cut to `max_output_bytes` (head and tail kept).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// Log offsets of the command's output: session_read from `output_start` returns it.
    pub output_start: u64,
    pub output_end: u64,
    /// What to do next, when the command has not simply finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The program holding the terminal, when the command is still running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreground: Option<Foreground>,
    /// The question a command waiting for input asks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// The screen's last lines, for a command waiting for input or a shell still starting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen: Option<Vec<String>>,
    /// How to get the rest of the output.
    pub more: String,
}

/// `session_capture`'s result: the screen as one text block.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CaptureAnswer {
    /// The screen's lines (and the scrollback asked for above them), trailing blanks removed.
    pub screen: String,
    pub size: Size,
    pub cursor_row: usize,
    pub cursor_col: usize,
    /// A full-screen program (an editor, a pager) uses the alternate screen.
    pub alternate_screen: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Scrollback lines at the top of `screen`.
    pub scrollback_lines: usize,
}

/// `session_kill`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct KillAnswer {
    /// The session killed.
    pub killed: String,
}

/// `session_resize`'s result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ResizeAnswer {
    pub session: String,
    pub cols: u16,
    pub rows: u16,
}

/// The output schema of a tool: its own answer type, or its method's result type.
fn output_schema(spec: &MethodSpec, tool: &str) -> Option<Arc<JsonObject>> {
    match tool {
        "session_exec" => Some(schema_for_output::<ExecAnswer>()),
        "session_capture" => Some(schema_for_output::<CaptureAnswer>()),
        "session_kill" => Some(schema_for_output::<KillAnswer>()),
        "session_resize" => Some(schema_for_output::<ResizeAnswer>()),
        _ => result_schema(spec),
    }
}

/// A method's result schema as a self-contained object schema (its definitions under `$defs`),
/// for what the daemon writes.
fn result_schema(spec: &MethodSpec) -> Option<Arc<JsonObject>> {
    let mut g = SchemaSettings::draft2020_12()
        .for_serialize()
        .with(|s| s.meta_schema = None)
        .into_generator();
    let root = (spec.result_schema)(&mut g);
    let mut defs = g.take_definitions(true);
    let root = match root.get("$ref").and_then(Value::as_str) {
        Some(r) => defs.remove(r.trim_start_matches("#/$defs/"))?,
        None => root.to_value(),
    };
    let Value::Object(mut root) = root else {
        return None;
    };
    if !defs.is_empty() {
        root.insert("$defs".into(), Value::Object(defs));
    }
    (root.get("type") == Some(&Value::from("object"))).then(|| Arc::new(root))
}

/// A tool's result schema, or the error a failed call (`isError: true`) carries as
/// `structuredContent`: `{"error": {message, kind, code?, hint?, sessions?, field?, ...}}`.
/// Clients that check structured content against the output schema on errors too (the
/// TypeScript SDK 1.x does) then accept both.
fn or_error(result: &JsonObject) -> Arc<JsonObject> {
    let mut result = result.clone();
    let defs = result.remove("$defs");
    let meta = result.remove("$schema");
    let error = serde_json::json!({
        "type": "object",
        "description": "A failed call (isError: true): what went wrong and what to do",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "message": { "type": "string" },
                    "kind": { "type": "string", "description": "The daemon's error kind (docs/protocol.md), invalid_params or daemon_unreachable" },
                    "code": { "type": "integer" },
                    "hint": { "type": "string", "description": "What to do, in this server's terms" },
                    "sessions": { "type": "array", "items": { "type": "string" } },
                    "reason": { "type": "string" },
                    "field": { "description": "The argument that did not decode" }
                }
            }
        }
    });
    let mut root = JsonObject::new();
    if let Some(meta) = meta {
        root.insert("$schema".into(), meta);
    }
    root.insert("type".into(), Value::from("object"));
    root.insert(
        "anyOf".into(),
        Value::Array(vec![Value::Object(result), error]),
    );
    if let Some(defs) = defs {
        root.insert("$defs".into(), defs);
    }
    Arc::new(root)
}

/// Puts the registry's annotations and the output schemas on every tool of `router`.
pub(crate) fn describe(router: &mut ToolRouter<crate::AiSessionMcp>) {
    for route in router.map.values_mut() {
        let name = route.attr.name.to_string();
        let Some(spec) = reg::METHODS
            .iter()
            .find(|s| s.mcp.is_some_and(|m| m.tool == name))
        else {
            continue;
        };
        if let Some(h) = spec.tool_hints() {
            let mut a = ToolAnnotations::new().read_only(h.read_only);
            a.idempotent_hint = Some(h.idempotent);
            if !h.read_only {
                a.destructive_hint = Some(h.destructive);
            }
            route.attr.annotations = Some(a);
        }
        route.attr.output_schema = output_schema(spec, &name).map(|s| or_error(&s));
    }
}

/// The tool groups, each the tools of one family of daemon methods.
pub const GROUPS: &[(&str, &str)] = &[
    ("sessions", "session."),
    ("context", "context."),
    ("snapshots", "snapshot."),
    ("agents", "agent."),
    ("bus", "bus."),
    ("tasks", "task."),
    ("decisions", "decision."),
];

/// The groups offered when neither `--tools` nor `[mcp] tools` says otherwise (see
/// `docs/mcp.md` for the token cost of each group, which decided it).
pub const DEFAULT_GROUPS: &[&str] = &["sessions", "context", "snapshots"];

/// A `--tools` or `[mcp] tools` value naming no group.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown tool group '{0}': the groups are sessions, context, snapshots, agents, bus, tasks, decisions, or all"
)]
pub struct UnknownGroup(pub String);

/// The groups of tools a server offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSet(Vec<&'static str>);

impl Default for ToolSet {
    fn default() -> Self {
        Self(DEFAULT_GROUPS.to_vec())
    }
}

impl ToolSet {
    /// Every tool.
    pub fn all() -> Self {
        Self(GROUPS.iter().map(|(g, _)| *g).collect())
    }

    /// The groups named in `names` (`all` for every group).
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownGroup> {
        let mut groups = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            if name.is_empty() {
                continue;
            }
            if name == "all" {
                return Ok(Self::all());
            }
            let Some((g, _)) = GROUPS.iter().find(|(g, _)| *g == name) else {
                return Err(UnknownGroup(name.to_owned()));
            };
            if !groups.contains(g) {
                groups.push(*g);
            }
        }
        Ok(Self(groups))
    }

    /// The groups, comma-separated, as `--tools` takes them.
    pub fn names(&self) -> String {
        self.0.join(",")
    }

    /// Whether the tool of `method` is offered.
    pub fn offers(&self, method: &str) -> bool {
        GROUPS
            .iter()
            .any(|(g, prefix)| self.0.contains(g) && method.starts_with(prefix))
    }
}

/// Removes from `router` the tools of groups `set` leaves out.
pub(crate) fn restrict(router: &mut ToolRouter<crate::AiSessionMcp>, set: &ToolSet) {
    for spec in reg::METHODS {
        if let Some(tool) = spec.mcp
            && !set.offers(spec.name)
        {
            router.remove_route(tool.tool);
        }
    }
}
