//! Every method, declared once.
//!
//! Each entry of [`methods!`] names a method's wire name, its params and result types, the
//! capability it needs (and which field names its target), how it is audited, and where it is
//! exposed: the HTTP route, the MCP tool, the CLI command. From it come
//!
//! - a unit type per method implementing [`Method`] (typed calls: `client.call::<SessionExec>`),
//! - [`Call`], the request enum the daemon matches exhaustively (a method without a service
//!   function does not compile),
//! - [`METHODS`], the table the daemon's capability check, audit log, `method_not_found` hint,
//!   HTTP router and OpenAPI document read, and that the MCP server's tool list is checked
//!   against.
//!
//! Adding a method is two places: its entry here and its service function in the daemon.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::access as a;
use crate::alerts as al;
use crate::cluster as cl;
use crate::context as x;
use crate::coord as c;
use crate::decisions as d;
use crate::integration as i;
use crate::methods as m;
use crate::persist as p;
use crate::stats as st;
use crate::web as w;
use crate::{ErrorKind, RpcError};

/// A method: its wire name and its typed params and result.
pub trait Method {
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned + Send + 'static;
    type Result: Serialize + DeserializeOwned + Send + 'static;
    /// The method's entry in [`METHODS`].
    const SPEC: &'static MethodSpec;
}

/// The capability a call needs, computed from its params by [`MethodSpec::capability`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone may call it (`hello`).
    Nothing,
    /// Exactly this capability.
    Fixed(&'static str),
    /// `session:ACTION:TARGET`, the target from the `target` field (`*` when absent).
    Session(&'static str),
    /// As [`Need::Session`], except that a target `agent:NAME` (an agent's own context) is
    /// checked against the agent by the service.
    SessionOrAgent(&'static str),
    /// `snapshot:ACTION:TARGET`; without a target, `snapshot:ACTION:*`.
    Snapshot(&'static str),
}

/// What a call does to the daemon's state, which decides whether it is served while the audit
/// log cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Changes nothing: served even while the audit log is broken.
    Read,
    /// Changes something: refused while the audit log cannot record it.
    Write,
    /// The way out of a broken audit log (`audit.repair`, `daemon.stop`): always served.
    Exit,
}

/// How a call is recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Audit {
    pub effect: Effect,
    /// A successful call is not recorded (reads); a refused or failed one always is.
    pub quiet: bool,
    /// Params fields that make the entry's detail, in order: the first bare, the others as
    /// `field=value`; an array is joined by spaces, a multi-line policy is `custom`.
    pub record: &'static [&'static str],
    /// Params fields never written anywhere (tokens, raw bytes, passphrases).
    pub secret: &'static [&'static str],
}

/// An HTTP verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

/// Where an HTTP route takes its params from, besides the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    None,
    Body,
    Query,
}

/// A method's REST route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http {
    pub verb: Verb,
    pub path: &'static str,
    pub input: Input,
    /// `(path variable, params field)` pairs, e.g. `("name", "target")`.
    pub path_fields: &'static [(&'static str, &'static str)],
    /// Answers `201 Created` instead of `200 OK`.
    pub created: bool,
}

/// A method's MCP tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mcp {
    pub tool: &'static str,
    pub description: &'static str,
    /// A write that may destroy or overwrite something (MCP's `destructiveHint`); a write that
    /// only adds (a session, a note, a snapshot, a task) is not. Reads are neither.
    pub destructive: bool,
    /// Calling it again with the same arguments changes nothing more (`idempotentHint`). Reads
    /// always are.
    pub idempotent: bool,
}

/// MCP's tool annotations of a method, from its audit effect and its tool entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolHints {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
}

/// A JSON Schema generator for a params or result type.
#[cfg(feature = "schema")]
pub type SchemaFn = fn(&mut schemars::SchemaGenerator) -> schemars::Schema;

/// Everything known of one method.
#[derive(Debug, Clone, Copy)]
pub struct MethodSpec {
    pub name: &'static str,
    /// One line for people: `docs/protocol.md`, OpenAPI summaries, hints.
    pub summary: &'static str,
    pub need: Need,
    pub audit: Audit,
    pub http: Option<Http>,
    pub mcp: Option<Mcp>,
    /// The CLI command that calls it (`ai-session exec`), when one does.
    pub cli: Option<&'static str>,
    /// The params schema, inline (HTTP bodies and queries).
    #[cfg(feature = "schema")]
    pub params_schema: SchemaFn,
    /// The result schema, by reference.
    #[cfg(feature = "schema")]
    pub result_schema: SchemaFn,
}

#[cfg(feature = "schema")]
fn inline<T: schemars::JsonSchema>(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    T::json_schema(g)
}

#[cfg(feature = "schema")]
fn refer<T: schemars::JsonSchema>(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    g.subschema_for::<T>()
}

impl MethodSpec {
    /// The capability a call with these params needs; `None` for [`Need::Nothing`] and for an
    /// agent's own context (checked by the service).
    pub fn capability(&self, params: &Value) -> Option<String> {
        let target = params.get("target").and_then(Value::as_str);
        match self.need {
            Need::Nothing => None,
            Need::Fixed(cap) => Some(cap.to_string()),
            Need::Session(action) => Some(format!("session:{action}:{}", target.unwrap_or("*"))),
            Need::SessionOrAgent(action) => match target {
                Some(t) if t.starts_with("agent:") => None,
                t => Some(format!("session:{action}:{}", t.unwrap_or("*"))),
            },
            Need::Snapshot(action) => Some(format!("snapshot:{action}:{}", target.unwrap_or("*"))),
        }
    }

    /// The MCP tool's description (empty for a method without a tool).
    pub const fn mcp_description(&self) -> &'static str {
        match self.mcp {
            Some(t) => t.description,
            None => "",
        }
    }

    /// The MCP annotations of its tool: a read is read-only and idempotent; a write is
    /// destructive and idempotent as its tool entry says.
    pub const fn tool_hints(&self) -> Option<ToolHints> {
        let Some(tool) = self.mcp else { return None };
        let read_only = matches!(self.audit.effect, Effect::Read);
        Some(ToolHints {
            read_only,
            destructive: !read_only && tool.destructive,
            idempotent: read_only || tool.idempotent,
        })
    }

    /// The audit detail of a call: the recorded fields, bounded to 4 KiB.
    pub fn audit_detail(&self, params: &Value) -> String {
        let mut parts = Vec::new();
        for (i, field) in self.audit.record.iter().enumerate() {
            let Some(v) = params.get(field) else { continue };
            let text = match v {
                Value::String(s) if *field == "policy" && s.contains('\n') => "custom".to_string(),
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                Value::Null => continue,
                other => other.to_string(),
            };
            parts.push(if i == 0 {
                text
            } else {
                format!("{field}={text}")
            });
        }
        let mut text = parts.join(" ");
        if text.len() > 4096 {
            let mut cut = 4096;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("...");
        }
        text
    }
}

/// The entry of `name`, if it is a method.
pub fn spec(name: &str) -> Option<&'static MethodSpec> {
    METHODS.iter().find(|s| s.name == name)
}

/// Decodes params; a method without params may be called with `null` or none.
pub fn decode_params<T: DeserializeOwned>(value: Value) -> Result<T, RpcError> {
    let value = if value.is_null() {
        Value::Object(Default::default())
    } else {
        value
    };
    crate::decode::decode(value).map_err(|e| {
        let err = RpcError::new(ErrorKind::InvalidParams, e.message);
        if e.field.is_empty() {
            err
        } else {
            err.with_reason(format!("field:{}", e.field))
        }
    })
}

/// The `method_not_found` error, listing every method.
pub fn unknown_method(name: &str) -> RpcError {
    let names: Vec<&str> = METHODS.iter().map(|s| s.name).collect();
    RpcError::new(
        ErrorKind::MethodNotFound,
        format!("unknown method '{name}'"),
    )
    .with_hint(format!("methods: {}", names.join(", ")))
}

/// No params, or an empty result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Empty {}

/// A read whose success is not recorded.
const QUIET: Audit = Audit {
    effect: Effect::Read,
    quiet: true,
    record: &[],
    secret: &[],
};
/// A read that is recorded: a stream opened.
const STREAM: Audit = Audit {
    effect: Effect::Read,
    quiet: false,
    record: &[],
    secret: &["token"],
};
const LOUD: Audit = loud(&[]);
const EXIT: Audit = Audit {
    effect: Effect::Exit,
    quiet: false,
    record: &[],
    secret: &[],
};
const fn loud(record: &'static [&'static str]) -> Audit {
    secret(record, &[])
}
const fn secret(record: &'static [&'static str], secret: &'static [&'static str]) -> Audit {
    Audit {
        effect: Effect::Write,
        quiet: false,
        record,
        secret,
    }
}
const NAME: &[(&str, &str)] = &[("name", "target")];
const ID: &[(&str, &str)] = &[("id", "id")];
const fn route(verb: Verb, path: &'static str, input: Input) -> Option<Http> {
    Some(Http {
        verb,
        path,
        input,
        path_fields: &[],
        created: false,
    })
}
const fn on(verb: Verb, path: &'static str, input: Input) -> Option<Http> {
    Some(Http {
        verb,
        path,
        input,
        path_fields: NAME,
        created: false,
    })
}
const fn on_id(verb: Verb, path: &'static str, input: Input) -> Option<Http> {
    Some(Http {
        verb,
        path,
        input,
        path_fields: ID,
        created: false,
    })
}
const fn created(verb: Verb, path: &'static str, input: Input) -> Option<Http> {
    Some(Http {
        verb,
        path,
        input,
        path_fields: &[],
        created: true,
    })
}
/// A route whose path carries these `(variable, field)` pairs.
const fn at(
    verb: Verb,
    path: &'static str,
    input: Input,
    path_fields: &'static [(&'static str, &'static str)],
    created: bool,
) -> Option<Http> {
    Some(Http {
        verb,
        path,
        input,
        path_fields,
        created,
    })
}
/// A tool that may destroy something when it writes.
const fn tool(tool: &'static str, description: &'static str) -> Option<Mcp> {
    Some(Mcp {
        tool,
        description,
        destructive: true,
        idempotent: false,
    })
}
/// A tool that only adds (or, for a read, only reads).
const fn adding(tool: &'static str, description: &'static str) -> Option<Mcp> {
    Some(Mcp {
        tool,
        description,
        destructive: false,
        idempotent: false,
    })
}
/// A tool whose second call with the same arguments changes nothing more.
const fn repeatable(
    tool: &'static str,
    destructive: bool,
    description: &'static str,
) -> Option<Mcp> {
    Some(Mcp {
        tool,
        description,
        destructive,
        idempotent: true,
    })
}

macro_rules! methods {
    ($(
        $(#[doc = $doc:literal])+
        $Ty:ident = $name:literal ($Params:ty => $Result:ty) {
            need: $need:expr,
            audit: $audit:expr,
            http: $http:expr,
            mcp: $mcp:expr,
            cli: $cli:expr $(,)?
        }
    )*) => {
        $(
            $(#[doc = $doc])+
            #[derive(Debug, Clone, Copy)]
            pub struct $Ty;
            impl Method for $Ty {
                const NAME: &'static str = $name;
                type Params = $Params;
                type Result = $Result;
                const SPEC: &'static MethodSpec = &MethodSpec {
                    name: $name,
                    summary: concat!($($doc),+),
                    need: $need,
                    audit: $audit,
                    http: $http,
                    mcp: $mcp,
                    cli: $cli,
                    #[cfg(feature = "schema")]
                    params_schema: inline::<$Params>,
                    #[cfg(feature = "schema")]
                    result_schema: refer::<$Result>,
                };
            }
        )*

        /// A decoded request: the method and its typed params.
        #[derive(Debug, Clone)]
        #[allow(clippy::large_enum_variant)]
        pub enum Call {
            $( $Ty($Params), )*
        }

        impl Call {
            /// Decodes a request's params for its method.
            pub fn decode(method: &str, params: Value) -> Result<Call, RpcError> {
                match method {
                    $( $name => Ok(Call::$Ty(decode_params(params)?)), )*
                    other => Err(unknown_method(other)),
                }
            }

            /// The method's entry.
            pub fn spec(&self) -> &'static MethodSpec {
                match self {
                    $( Call::$Ty(_) => <$Ty as Method>::SPEC, )*
                }
            }
        }

        /// Every method, in the order `docs/protocol.md` lists them.
        pub static METHODS: &[MethodSpec] = &[ $( *<$Ty as Method>::SPEC, )* ];
    };
}

use Input::{Body, Query};
use Verb::{Delete, Get, Post};

methods! {
    /// Open a connection: the protocol version, and the token to act as (an agent's or an API token).
    Hello = "hello" (m::HelloParams => m::HelloResult) {
        need: Need::Nothing,
        audit: Audit { effect: Effect::Read, quiet: true, record: &["client"], secret: &["token"] },
        http: None, mcp: None, cli: None,
    }
    /// Start a session running a shell (or a program).
    SessionNew = "session.new" (m::NewParams => m::SessionInfo) {
        need: Need::Fixed("session:create"),
        audit: secret(&["name", "cwd", "policy", "program"], &["env", "set_env"]),
        http: created(Post, "/v1/sessions", Body),
        mcp: adding("session_create", "Create a terminal session running a persistent shell (or a program) in a \
        real PTY. Returns the session's info; its `name` is what every other tool takes as \
        `session`. Sessions outlive this conversation until session_kill."),
        cli: Some("new"),
    }
    /// List sessions.
    SessionList = "session.list" (Empty => m::ListResult) {
        need: Need::Fixed("session:list"), audit: QUIET,
        http: route(Get, "/v1/sessions", Input::None),
        mcp: tool("session_list", "List the sessions: name, state (starting, idle, busy, exited), program, \
        working directory, terminal size, log offsets and the foreground process if any."),
        cli: Some("ls"),
    }
    /// Run a command in the session's shell; its output and exit code.
    SessionExec = "session.exec" (m::ExecParams => m::ExecResult) {
        need: Need::Session("exec"), audit: loud(&["command"]),
        http: on(Post, "/v1/sessions/{name}/exec", Body),
        mcp: tool("session_exec", "Run a shell command line in a session and wait for it to finish. Returns \
        `exit_code` (0 = success), `status` (exited; running = no output for idle_timeout_ms; \
        timeout = still running at timeout_ms — in both cases the command keeps running), \
        the output as a token-lean `compact` view by default (recognised build, test, git, \
        package and log output condensed; its text says what it left out) or the plain `output` \
        with view \"full\", and `more`: how to fetch the rest (session_read from output_start). \
        The shell persists: cd and export carry over. A non-zero exit code is a normal result, \
        not an error. Do not use it for interactive programs: use session_send_keys. With a \
        progress token, progress notifications report the time and output every second."),
        cli: Some("exec"),
    }
    /// Type keys (tmux key names) or text.
    SessionSend = "session.send" (m::SendParams => m::SendResult) {
        need: Need::Session("send"), audit: loud(&["keys"]),
        http: on(Post, "/v1/sessions/{name}/send", Body),
        mcp: tool("session_send_keys", "Type keys into a session, for interactive programs (REPLs, editors, \
        pagers, prompts) or to interrupt a command (\"C-c\"). Strings that are tmux key names \
        are pressed (Enter, C-c, C-d, Up, Down, Tab, Escape, BSpace, F1-F12, M-x, PageUp); \
        other strings are typed as text. Returns `offset`: output after it is the program's \
        reply. Follow with session_wait to wait for the reply, then session_read or \
        session_capture."),
        cli: Some("send"),
    }
    /// Write raw bytes (base64) to the terminal.
    SessionWrite = "session.write" (m::WriteParams => m::SendResult) {
        need: Need::Session("send"), audit: secret(&[], &["data_b64"]),
        http: on(Post, "/v1/sessions/{name}/write", Body),
        mcp: None, cli: Some("attach"),
    }
    /// Read the output log from an offset, as plain text or raw bytes.
    SessionRead = "session.read" (m::ReadParams => m::ReadResult) {
        need: Need::Session("read"), audit: QUIET,
        http: on(Get, "/v1/sessions/{name}/read", Query),
        mcp: tool("session_read", "Read a session's output log as plain text from a byte offset: `since` = \
        an exec's output_start, a send_keys offset, or the previous read's `end` (nothing lost, \
        nothing repeated). Returns `data`, `start`, `end` (the next `since`), `more` (more \
        output after end) and `dropped` (bytes too old to keep)."),
        cli: Some("read"),
    }
    /// The screen as a person would see it, with the cursor.
    SessionCapture = "session.capture" (m::CaptureParams => m::CaptureResult) {
        need: Need::Session("read"), audit: QUIET,
        http: on(Get, "/v1/sessions/{name}/capture", Query),
        mcp: tool("session_capture", "Capture a session's screen as a person would see it (plain text lines), \
        with the cursor position, whether a full-screen program uses the alternate screen, the \
        window title, and optionally `scrollback` lines above the screen. Best for TUIs and \
        prompts; use session_read for long output."),
        cli: Some("capture"),
    }
    /// Wait for a regex in the output, the prompt, quiet output or the program's exit.
    SessionWait = "session.wait" (m::WaitParams => m::WaitResult) {
        need: Need::Session("read"), audit: QUIET,
        http: on(Post, "/v1/sessions/{name}/wait", Body),
        mcp: tool("session_wait", "Wait for a session: give exactly one of `regex` (the output since the \
        last input matches), `idle_ms` (no output for that long) or `prompt: true` (the shell is \
        back at its prompt; returns the last exit code). Returns the matched text and the log \
        offset after it. A timeout (default 30 s) is an error saying so; the session is unchanged. \
        With a progress token, progress notifications report the time and output every second."),
        cli: Some("wait"),
    }
    /// Change the terminal size.
    SessionResize = "session.resize" (m::ResizeParams => Empty) {
        need: Need::Session("resize"), audit: loud(&["size"]),
        http: on(Post, "/v1/sessions/{name}/resize", Body),
        mcp: repeatable("session_resize", false, "Change a session's terminal size (columns x rows)."),
        cli: Some("resize"),
    }
    /// Kill a session and every process in it.
    SessionKill = "session.kill" (m::Target => Empty) {
        need: Need::Session("kill"), audit: LOUD,
        http: on(Delete, "/v1/sessions/{name}", Input::None),
        mcp: repeatable("session_kill", true, "Kill a session and every process in it, and delete its log."),
        cli: Some("kill"),
    }
    /// Follow a session: output, state and command notifications on this connection.
    SessionSubscribe = "session.subscribe" (m::Target => m::SubscribeResult) {
        need: Need::Session("read"), audit: STREAM,
        http: None, mcp: None, cli: Some("attach"),
    }
    /// A session's finished commands with their parsed output, oldest first (for CI reports).
    SessionResults = "session.results" (i::HistoryParams => i::HistoryResult) {
        need: Need::Session("read"), audit: QUIET,
        http: on(Get, "/v1/sessions/{name}/results", Query),
        mcp: None, cli: Some("report"),
    }
    /// The compiler, linter and test diagnostics of a session's exec, one shape for editors.
    SessionDiagnostics = "session.diagnostics" (i::DiagnosticsParams => i::DiagnosticsResult) {
        need: Need::Session("read"), audit: QUIET,
        http: on(Get, "/v1/sessions/{name}/diagnostics", Query),
        mcp: None, cli: Some("exec --view diagnostics"),
    }
    /// The daemon's pid, uptime, sessions, store and audit log health.
    DaemonStatus = "daemon.status" (Empty => m::StatusResult) {
        need: Need::Fixed("daemon:status"), audit: QUIET,
        http: route(Get, "/v1/status", Input::None), mcp: None, cli: Some("daemon status"),
    }
    /// What the daemon runs, did since it started and costs: sessions, execs, tokens, requests.
    DaemonStats = "daemon.stats" (Empty => st::StatsResult) {
        need: Need::Fixed("daemon:status"), audit: QUIET,
        http: route(Get, "/v1/stats", Input::None), mcp: None, cli: Some("stats"),
    }
    /// The same figures in the Prometheus text format (what `GET /metrics` serves).
    DaemonMetrics = "daemon.metrics" (Empty => st::MetricsResult) {
        need: Need::Fixed("daemon:status"), audit: QUIET,
        http: None, mcp: None, cli: Some("stats --prometheus"),
    }
    /// The anomalies the daemon detected (retry loops, slow execs, error-rate spikes, output
    /// floods, denial bursts, token spikes, sessions left waiting for input), oldest first.
    AlertsList = "alerts.list" (al::AlertsParams => al::AlertsResult) {
        need: Need::Fixed("daemon:status"), audit: QUIET,
        http: route(Get, "/v1/alerts", Input::Query), mcp: None, cli: Some("alerts"),
    }
    /// Record a decision (what, why, how sure, the alternatives); the execs that follow in its
    /// session (or, without one, the agent's execs) set its outcome.
    DecisionRecord = "decision.record" (d::DecisionParams => d::DecisionInfo) {
        need: Need::Fixed("decision:record"), audit: loud(&["task", "target"]),
        http: created(Post, "/v1/decisions", Body),
        mcp: tool("decision_record", "Record a decision before acting on it: `decision` (what you \
        chose), `rationale`, `confidence` (0 to 1), `alternatives` not taken, and the `session` \
        (or `task`) it concerns. Returns its `id`. The execs you then run in that session set its \
        outcome (success when the last exits 0); your success rate and calibration are kept."),
        cli: Some("decide"),
    }
    /// Set a decision's outcome by hand (it then stops following the execs).
    DecisionOutcome = "decision.outcome" (d::OutcomeParams => d::DecisionInfo) {
        need: Need::Fixed("decision:record"), audit: loud(&["id", "outcome"]),
        http: route(Post, "/v1/decisions/outcome", Body), mcp: None,
        cli: Some("decide outcome"),
    }
    /// Decisions recorded, oldest first, by agent, session or task.
    DecisionList = "decision.list" (d::DecisionListParams => d::DecisionList) {
        need: Need::Fixed("decision:read"), audit: QUIET,
        http: route(Get, "/v1/decisions", Input::Query), mcp: None, cli: Some("decisions ls"),
    }
    /// One decision with its linked execs' counts and outcome.
    DecisionShow = "decision.show" (d::DecisionId => d::DecisionInfo) {
        need: Need::Fixed("decision:read"), audit: QUIET,
        http: route(Get, "/v1/decisions/show", Input::Query), mcp: None,
        cli: Some("decisions show"),
    }
    /// Success rates by agent and calibration (reliability bins, Brier score).
    DecisionStats = "decision.stats" (d::DecisionStatsParams => d::DecisionStats) {
        need: Need::Fixed("decision:read"), audit: QUIET,
        http: route(Get, "/v1/decisions/stats", Input::Query), mcp: None,
        cli: Some("decisions stats"),
    }
    /// Stop the daemon: sessions are checkpointed and come back at the next start.
    DaemonStop = "daemon.stop" (Empty => Empty) {
        need: Need::Fixed("daemon:stop"), audit: EXIT,
        http: None, mcp: None, cli: Some("daemon stop"),
    }
    /// Hand every session to a newly started daemon binary: programs keep running, with their
    /// pids, terminals and scrollback, while the daemon is replaced.
    DaemonUpgrade = "daemon.upgrade" (m::UpgradeParams => m::UpgradeResult) {
        need: Need::Fixed("daemon:upgrade"), audit: loud(&["binary"]),
        http: None, mcp: None, cli: Some("daemon upgrade"),
    }
    /// Start (or report) the HTTP and WebSocket server.
    DaemonServe = "daemon.serve" (m::ServeParams => m::ServeResult) {
        need: Need::Fixed("daemon:serve"), audit: loud(&["listen"]),
        http: None, mcp: None, cli: Some("serve"),
    }
    /// The daemons of the cluster this one joined: their sessions, load and last heartbeat.
    ClusterNodes = "cluster.nodes" (Empty => cl::NodesResult) {
        need: Need::Fixed("cluster:nodes"), audit: QUIET,
        http: route(Get, "/v1/cluster/nodes", Input::None), mcp: None, cli: Some("nodes"),
    }
    /// Bring a lost session (its node died) back from its last checkpoint, here or on `node`.
    ClusterRestore = "cluster.restore" (cl::RestoreLostParams => m::SessionInfo) {
        need: Need::Fixed("session:create"), audit: loud(&["name", "node", "as_name"]),
        http: route(Post, "/v1/cluster/restore", Input::Body), mcp: None,
        cli: Some("restore --from-lost"),
    }
    /// Move a damaged or unwritable audit log aside and start a new chained segment.
    AuditRepair = "audit.repair" (Empty => m::AuditRepairResult) {
        need: Need::Fixed("audit:repair"), audit: EXIT,
        http: None, mcp: None, cli: Some("audit repair"),
    }
    /// A one-time code that logs a browser into the web dashboard as the caller.
    WebLogin = "web.login" (Empty => w::WebLoginResult) {
        need: Need::Fixed("web:login"), audit: LOUD,
        http: None, mcp: None, cli: Some("web"),
    }
    /// A session's saved execs, newest last: exit code, duration, output offsets, compact view.
    SessionHistory = "session.history" (w::HistoryParams => w::HistoryResult) {
        need: Need::Session("read"), audit: QUIET,
        http: on(Get, "/v1/sessions/{name}/history", Query), mcp: None, cli: None,
    }
    /// The audit log's entries, filtered by session, principal and risk.
    AuditList = "audit.list" (w::AuditListParams => w::AuditListResult) {
        need: Need::Fixed("audit:list"), audit: QUIET,
        http: route(Get, "/v1/audit", Query), mcp: None, cli: None,
    }
    /// Check the audit log's keyed hash chain against its signed head.
    AuditVerify = "audit.verify" (Empty => w::AuditVerifyResult) {
        need: Need::Fixed("audit:verify"), audit: QUIET,
        http: route(Get, "/v1/audit/verify", Input::None), mcp: None, cli: None,
    }
    /// Save a snapshot of a session: settings, cwd, environment, history, scrollback, context.
    SnapshotCreate = "snapshot.create" (p::SnapshotParams => p::SnapshotInfo) {
        need: Need::Snapshot("create"), audit: loud(&["label"]),
        http: at(Post, "/v1/sessions/{name}/snapshots", Body, NAME, true),
        mcp: adding("snapshot_create", "Save a snapshot of a session: its settings, working directory, \
        environment, command history, scrollback and context. snapshot_restore starts a new \
        session from it later (also after a restart of the daemon). Returns the snapshot's `id`."),
        cli: Some("snapshot create"),
    }
    /// List snapshots, of one session or of every session the caller may list.
    SnapshotList = "snapshot.list" (p::SnapshotListParams => p::SnapshotListResult) {
        need: Need::Snapshot("list"), audit: QUIET,
        http: route(Get, "/v1/snapshots", Query),
        mcp: tool("snapshot_list", "List saved snapshots, oldest first, of one session or of all: id, \
        session name, label, time (created_ms), number of execs, scrollback lines, size."),
        cli: Some("snapshot ls"),
    }
    /// Start a new session from a snapshot.
    SnapshotRestore = "snapshot.restore" (p::RestoreParams => p::RestoreResult) {
        need: Need::Fixed("session:create"), audit: loud(&["id", "name"]),
        http: at(Post, "/v1/snapshots/{id}/restore", Body, &[("id", "snapshot")], true),
        mcp: adding("snapshot_restore", "Start a new session from a snapshot: same shell, working directory and \
        environment, with its scrollback and context. Give `name` when the snapshot's session \
        still exists. With rerun_last the snapshot's last command runs again and its result is \
        returned as `rerun`. Returns the new session's info as `session`."),
        cli: Some("restore"),
    }
    /// Remove old snapshots: keep the newest N per session, and/or all under a size on disk.
    SnapshotPrune = "snapshot.prune" (p::PruneParams => p::PruneResult) {
        need: Need::Snapshot("prune"), audit: loud(&["target", "keep", "max_bytes"]),
        http: route(Post, "/v1/snapshots/prune", Body), mcp: None, cli: Some("snapshot prune"),
    }
    /// A session's whole record, with its snapshots, as one self-contained file, in pieces.
    SessionExport = "session.export" (p::ExportParams => p::ExportResult) {
        need: Need::Session("export"), audit: LOUD,
        http: None, mcp: None, cli: Some("export"),
    }
    /// Add a session exported here or elsewhere, and start it.
    SessionImport = "session.import" (p::ImportParams => p::ImportResult) {
        need: Need::Fixed("session:create"), audit: secret(&["name", "source"], &["data_b64"]),
        http: None, mcp: None, cli: Some("import"),
    }
    /// The best working context of a session (or `agent:NAME`) within a token budget.
    ContextGet = "context.get" (x::ContextGetParams => x::ContextViewResult) {
        need: Need::SessionOrAgent("read"), audit: QUIET,
        http: on(Get, "/v1/sessions/{name}/context", Query),
        mcp: tool("context_get", "Get the best working context of a session within a token budget: what \
        its commands did (condensed), the workspace, what was learned, the last failure and \
        unresolved problems, and notes added with context_add. Use it to catch up on a session \
        (yours after a break, or another agent's) instead of re-reading its output. Returns \
        `text` (the context to read) and `tokens_used`, with the parts it is made of."),
        cli: Some("context"),
    }
    /// Add what the user asked, what the assistant concluded, or a note.
    ContextAdd = "context.add" (x::ContextAddParams => x::ContextAddResult) {
        need: Need::SessionOrAgent("context"), audit: loud(&["role", "task"]),
        http: at(Post, "/v1/sessions/{name}/context", Body, NAME, true),
        mcp: adding("context_add", "Add an entry to a session's context: what the user asked (role \"user\"), \
        what you concluded or decided (\"assistant\") or a fact worth keeping (\"note\"). \
        context_get returns it later, ranked with the session's commands. Returns its `id`."),
        cli: Some("context add"),
    }
    /// One context entry in full, by id.
    ContextShow = "context.show" (x::ContextShowParams => x::ContextEntryResult) {
        need: Need::SessionOrAgent("read"), audit: QUIET,
        http: at(Get, "/v1/sessions/{name}/context/{id}", Input::None, &[("name", "target"), ("id", "id")], false), mcp: None, cli: Some("context show"),
    }
    /// Create a task scope in a context, optionally the active one.
    ContextTask = "context.task" (x::ContextTaskParams => x::ContextTaskResult) {
        need: Need::SessionOrAgent("context"), audit: loud(&["id", "parent"]),
        http: at(Post, "/v1/sessions/{name}/context/tasks", Body, NAME, true), mcp: None, cli: Some("context task"),
    }
    /// Change a context's limits; answers the limits and compression stats.
    ContextConfig = "context.config" (x::ContextConfigParams => x::ContextConfigResult) {
        need: Need::SessionOrAgent("context"), audit: LOUD,
        http: on(Post, "/v1/sessions/{name}/context/config", Body), mcp: None, cli: Some("context config"),
    }
    /// Grant a capability to an agent or API token.
    AccessGrant = "access.grant" (a::GrantParams => Empty) {
        need: Need::Fixed("access:admin"), audit: loud(&["principal", "capability"]),
        http: None, mcp: None, cli: Some("access grant"),
    }
    /// Revoke a capability from an agent or API token.
    AccessRevoke = "access.revoke" (a::GrantParams => Empty) {
        need: Need::Fixed("access:admin"), audit: loud(&["principal", "capability"]),
        http: None, mcp: None, cli: Some("access revoke"),
    }
    /// Make an API token with exactly these capabilities (shown once).
    AccessToken = "access.token" (a::TokenParams => a::TokenResult) {
        need: Need::Fixed("access:admin"), audit: loud(&["label", "capabilities", "policy"]),
        http: None, mcp: None, cli: Some("access token"),
    }
    /// Bind a principal to a sandbox policy (or unbind it).
    AccessPolicy = "access.policy" (a::PolicyParams => Empty) {
        need: Need::Fixed("access:admin"), audit: loud(&["principal", "policy"]),
        http: None, mcp: None, cli: Some("access policy"),
    }
    /// Revoke an API token.
    AccessRevokeToken = "access.revoke_token" (a::RevokeTokenParams => Empty) {
        need: Need::Fixed("access:admin"), audit: loud(&["id"]),
        http: None, mcp: None, cli: Some("access revoke-token"),
    }
    /// Principals with their capabilities and bound policies.
    AccessList = "access.list" (Empty => a::AccessListResult) {
        need: Need::Fixed("access:admin"), audit: QUIET,
        http: None, mcp: None, cli: Some("access ls"),
    }
    /// Register an agent; its token is shown once.
    AgentRegister = "agent.register" (c::RegisterParams => c::RegisterResult) {
        need: Need::Fixed("agent:register"), audit: loud(&["name", "capabilities"]),
        http: created(Post, "/v1/agents", Body),
        mcp: adding("agent_register", "Register as an agent to coordinate with other agents through the daemon. \
        Returns `token`: keep it and pass it as `token` to task_claim, task_complete, task_fail \
        and (to sign messages) bus_publish. Tasks submitted with task_submit whose `needs` match \
        your `capabilities` are assigned to you. The agent stays registered while this MCP \
        server runs (or, with keep, until it misses its heartbeat deadline)."),
        cli: Some("agent register"),
    }
    /// Agents, active and recently departed.
    AgentList = "agent.list" (Empty => c::AgentListResult) {
        need: Need::Fixed("agent:list"), audit: QUIET,
        http: route(Get, "/v1/agents", Input::None),
        mcp: tool("agent_list", "List the agents registered with the daemon, active and recently departed: \
        name, id, capabilities, session, state and the tasks each holds."),
        cli: Some("agent ls"),
    }
    /// Tell the daemon an agent is alive.
    AgentHeartbeat = "agent.heartbeat" (c::AgentToken => Empty) {
        need: Need::Fixed("agent:heartbeat"),
        audit: Audit { effect: Effect::Read, quiet: true, record: &["agent"], secret: &["token"] },
        http: route(Post, "/v1/agents/heartbeat", Body), mcp: None, cli: Some("agent heartbeat"),
    }
    /// Leave: the agent's running tasks go back to the queue.
    AgentUnregister = "agent.unregister" (c::AgentToken => Empty) {
        need: Need::Fixed("agent:unregister"), audit: secret(&["agent"], &["token"]),
        http: route(Post, "/v1/agents/unregister", Body), mcp: None, cli: Some("agent unregister"),
    }
    /// Publish a message on a topic.
    BusPublish = "bus.publish" (c::PublishParams => c::DeliveryResult) {
        need: Need::Fixed("bus:publish"), audit: secret(&["topic"], &["token"]),
        http: route(Post, "/v1/bus/publish", Body),
        mcp: adding("bus_publish", "Publish a message on a topic of the daemon's message bus; every \
        subscriber of the topic gets a copy. Pass your agent `token` (from agent_register) to \
        sign it. Returns how many copies were `delivered` and `dead_lettered`."),
        cli: Some("bus publish"),
    }
    /// Follow a topic: `bus.message` notifications on this connection.
    BusSubscribe = "bus.subscribe" (c::SubscribeParams => c::SubscribeResult) {
        need: Need::Fixed("bus:subscribe"),
        audit: Audit { effect: Effect::Read, quiet: false, record: &["topic"], secret: &[] },
        http: None, mcp: None, cli: Some("bus subscribe"),
    }
    /// A direct message to one agent's inbox.
    BusSend = "bus.send" (c::SendParams => c::DeliveryResult) {
        need: Need::Fixed("bus:send"), audit: secret(&["to"], &["token"]),
        http: route(Post, "/v1/bus/send", Body), mcp: None, cli: Some("bus send"),
    }
    /// A message to every registered agent's inbox.
    BusBroadcast = "bus.broadcast" (c::BroadcastParams => c::DeliveryResult) {
        need: Need::Fixed("bus:broadcast"), audit: secret(&[], &["token"]),
        http: route(Post, "/v1/bus/broadcast", Body), mcp: None, cli: Some("bus broadcast"),
    }
    /// Send a request to an agent and wait for its reply.
    BusRequest = "bus.request" (c::RequestParams => c::RequestResult) {
        need: Need::Fixed("bus:request"), audit: secret(&["to"], &["token"]),
        http: route(Post, "/v1/bus/request", Body), mcp: None, cli: Some("bus request"),
    }
    /// Answer a request addressed to this agent.
    BusReply = "bus.reply" (c::ReplyParams => Empty) {
        need: Need::Fixed("bus:reply"), audit: secret(&["correlation"], &["token"]),
        http: route(Post, "/v1/bus/reply", Body), mcp: None, cli: Some("bus reply"),
    }
    /// Follow an agent's inbox: `bus.inbox_message` notifications on this connection.
    BusInbox = "bus.inbox" (c::AgentToken => c::SubscribeResult) {
        need: Need::Fixed("bus:inbox"),
        audit: Audit { effect: Effect::Read, quiet: false, record: &["agent"], secret: &["token"] },
        http: None, mcp: None, cli: Some("bus inbox"),
    }
    /// Messages and tasks that could not be delivered.
    BusDeadLetters = "bus.dead_letters" (Empty => c::DeadLettersResult) {
        need: Need::Fixed("bus:dead_letters"), audit: QUIET,
        http: route(Get, "/v1/bus/dead-letters", Input::None), mcp: None, cli: Some("bus dead-letters"),
    }
    /// Topics with at least one subscriber.
    BusTopics = "bus.topics" (Empty => c::TopicsResult) {
        need: Need::Fixed("bus:topics"), audit: QUIET,
        http: route(Get, "/v1/bus/topics", Input::None), mcp: None, cli: Some("bus topics"),
    }
    /// Submit a task to the queue.
    TaskSubmit = "task.submit" (c::SubmitParams => c::SubmitResult) {
        need: Need::Fixed("task:submit"), audit: loud(&["description", "needs", "after"]),
        http: created(Post, "/v1/tasks", Body),
        mcp: adding("task_submit", "Submit a task to the daemon's queue. It is assigned to a registered agent \
        whose capabilities cover `needs` (by priority, once the tasks in `after` are done); that \
        agent takes it with task_claim. Returns the task's `id` and the task as recorded."),
        cli: Some("task submit"),
    }
    /// Take the next task assigned to this agent.
    TaskClaim = "task.claim" (c::ClaimParams => c::ClaimResult) {
        need: Need::Fixed("task:claim"), audit: secret(&["agent"], &["token"]),
        http: route(Post, "/v1/tasks/claim", Body),
        mcp: adding("task_claim", "Take your next assigned task (it becomes `running`), as the agent whose \
        `token` agent_register returned. `task` is absent when none is assigned; give wait_ms \
        to wait for one. Finish it with task_complete or task_fail and its `id`."),
        cli: Some("task claim"),
    }
    /// Report a claimed task done, with its result.
    TaskDone = "task.done" (c::DoneParams => c::TaskResult) {
        need: Need::Fixed("task:done"), audit: secret(&["id"], &["token"]),
        http: on_id(Post, "/v1/tasks/{id}/done", Body),
        mcp: adding("task_complete", "Report a task you claimed as done, with an optional JSON `result`, as the \
        agent whose `token` agent_register returned. Tasks waiting on it (`after`) can start. \
        Returns the task."),
        cli: Some("task done"),
    }
    /// Report a claimed task failed; it is retried with backoff, then dead-lettered.
    TaskFail = "task.fail" (c::FailParams => c::TaskResult) {
        need: Need::Fixed("task:fail"), audit: secret(&["id", "reason"], &["token"]),
        http: on_id(Post, "/v1/tasks/{id}/fail", Body),
        mcp: adding("task_fail", "Report a task you claimed as failed, with the `reason`, as the agent whose \
        `token` agent_register returned. It is retried while it has retries left. Returns the \
        task."),
        cli: Some("task fail"),
    }
    /// Tasks, or only those in one state.
    TaskList = "task.list" (c::TaskListParams => c::TaskListResult) {
        need: Need::Fixed("task:list"), audit: QUIET,
        http: route(Get, "/v1/tasks", Query),
        mcp: tool("task_list", "List the daemon's tasks, or only those in one `state` (queued, assigned, \
        running, done, failed, dead_lettered): id, description, needs, state, the agent holding \
        it, retries and result."),
        cli: Some("task ls"),
    }
    /// One task.
    TaskShow = "task.show" (c::TaskShowParams => c::TaskResult) {
        need: Need::Fixed("task:show"), audit: QUIET,
        http: on_id(Get, "/v1/tasks/{id}", Input::None), mcp: None, cli: Some("task show"),
    }
    /// Follow the coordinator's events: `events.event` notifications on this connection.
    EventsSubscribe = "events.subscribe" (Empty => c::SubscribeResult) {
        need: Need::Fixed("events:subscribe"), audit: STREAM,
        http: None, mcp: None, cli: Some("events"),
    }
    /// Open an audit entry's detail sealed under the store passphrase; the opening is itself
    /// an audit entry.
    AuditOpen = "audit.open" (w::AuditOpenParams => w::AuditOpenResult) {
        need: Need::Fixed("audit:open"), audit: loud(&["seq"]),
        http: route(Post, "/v1/audit/open", Body), mcp: None, cli: None,
    }
    /// The last messages published on a topic (50 are kept per topic, subscribed or not).
    BusRecent = "bus.recent" (w::RecentParams => w::RecentResult) {
        need: Need::Fixed("bus:subscribe"), audit: QUIET,
        http: route(Get, "/v1/bus/recent", Query), mcp: None, cli: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_method_but_hello_needs_a_capability() {
        let mut names: Vec<&str> = METHODS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "a method is declared twice");
        for spec in METHODS {
            if spec.name != "hello" {
                assert_ne!(
                    spec.need,
                    Need::Nothing,
                    "{} needs no capability",
                    spec.name
                );
            }
            assert!(
                !spec.summary.trim().is_empty(),
                "{} has no summary",
                spec.name
            );
        }
    }

    #[test]
    fn decoding_treats_missing_params_as_empty_for_every_method_without_required_fields() {
        // The drift this pins: `snapshot.list` without params failed where `agent.list` worked.
        for name in [
            "snapshot.list",
            "agent.list",
            "session.list",
            "daemon.status",
            "task.list",
        ] {
            Call::decode(name, Value::Null).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }

    #[test]
    fn the_unknown_method_hint_lists_every_method() {
        let e = unknown_method("nope");
        let hint = e.data.hint.clone().unwrap_or_default();
        for spec in METHODS {
            assert!(hint.contains(spec.name), "hint leaves out {}", spec.name);
        }
    }

    #[test]
    fn capabilities_name_their_target() {
        let p = serde_json::json!({"target": "build"});
        assert_eq!(
            SessionExec::SPEC.capability(&p).as_deref(),
            Some("session:exec:build")
        );
        let agent = serde_json::json!({"target": "agent:a1"});
        assert_eq!(ContextGet::SPEC.capability(&agent), None);
        assert_eq!(
            SnapshotList::SPEC.capability(&Value::Null).as_deref(),
            Some("snapshot:list:*")
        );
    }

    #[test]
    fn secrets_are_never_in_the_detail() {
        for spec in METHODS {
            for field in spec.audit.secret {
                assert!(
                    !spec.audit.record.contains(field),
                    "{} records its secret field {field}",
                    spec.name
                );
            }
        }
        let p = serde_json::json!({"name": "w", "policy": "a\nb", "program": ["sh", "-c", "x"]});
        assert_eq!(
            SessionNew::SPEC.audit_detail(&p),
            "w policy=custom program=sh -c x"
        );
    }
}
