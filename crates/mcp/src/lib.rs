//! The ai-session MCP server: the Model Context Protocol over stdio, built on the official Rust
//! SDK (`rmcp`). Each tool is one daemon method; the server is a client of the daemon selected
//! with `-L`/`-S` and starts it on first use. Sessions are also resources (their screen and
//! log), followed for subscribed clients; long calls report progress. `docs/mcp.md` lists the
//! tools and resources.

#![forbid(unsafe_code)]

mod args;
mod catalog;
mod daemon;
mod decide;
mod extra;
mod hint;
mod listen;
mod progress;
mod resources;
mod tasks;
mod trace;

use ai_session_protocol::registry::{self as reg, Method};
use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::args::Parameters;
use ai_session_protocol::methods::{
    CaptureParams, CaptureResult, ExecParams, ExecResult, ExecStatus, ListResult, NewParams,
    ReadParams, ReadResult, ResizeParams, SendParams, SendResult, SessionInfo, Size, Target,
    WaitFor, WaitParams, WaitResult,
};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, SubscribeRequestParams, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{
    ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt, tool, tool_handler,
    tool_router,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use ai_session_client::Error as CallError;
pub use ai_session_client::Selector;
pub use catalog::{DEFAULT_GROUPS, GROUPS, ToolSet, UnknownGroup};
use daemon::Daemon;
pub use daemon::{Backend, BoxFuture};
pub use trace::current as current_trace;

const INSTRUCTIONS: &str = "ai-session runs real shells in real terminals (PTYs) that persist \
between calls. Create a session once (session_create), then run commands with session_exec: it \
returns the exit code and the command's own output (a token-lean compact view by default). `cd` \
and `export` carry over to the next exec. For interactive programs (python, node, gdb, vim, \
TUIs) use session_send_keys then session_wait, and session_capture to see the screen. \
session_read fetches raw output by log offset (nothing lost, nothing twice). Kill sessions you \
no longer need with session_kill. context_get condenses what happened in a session within a \
token budget; snapshot_create/snapshot_restore save and bring back a session. To work with \
other agents: agent_register (keep its token), task_submit, task_claim, task_complete, \
bus_publish. Each session is also a resource (ai-session://sessions/NAME/screen and .../log) \
that can be subscribed to.";

/// Serves MCP on stdin/stdout, offering the tools of `tools`, until the client closes stdin.
pub async fn serve_stdio(sel: Selector, tools: &ToolSet) -> std::io::Result<()> {
    let service = listen::Server(AiSessionMcp::new(sel, tools))
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| std::io::Error::other(format!("MCP initialisation failed: {e}")))?;
    service
        .waiting()
        .await
        .map_err(|e| std::io::Error::other(format!("MCP server stopped: {e}")))?;
    Ok(())
}

/// `ai-session mcp -L label` / `-S socket` `--tools GROUPS` in one call: the tool groups from
/// `--tools`, else from `[mcp] tools` in the configuration file, else the default ones.
pub async fn serve_stdio_with(
    label: Option<String>,
    socket: Option<PathBuf>,
    tools: Option<&str>,
) -> std::io::Result<()> {
    let home = ai_session_protocol::paths::home();
    let set = tool_set(&home, tools).map_err(std::io::Error::other)?;
    serve_stdio(Selector { label, socket }, &set).await
}

/// The tool groups to offer: `flag` (`--tools a,b`), else `[mcp] tools` of the configuration
/// file in the state directory `home`, else [`ToolSet::default`]. The error says what to fix.
pub fn tool_set(home: &std::path::Path, flag: Option<&str>) -> Result<ToolSet, String> {
    if let Some(list) = flag {
        let names: Vec<&str> = list.split(',').collect();
        return ToolSet::parse(&names).map_err(|e| format!("--tools: {e}"));
    }
    let config = ai_session_protocol::config::Config::load(home).map_err(|e| e.to_string())?;
    match config.mcp.tools {
        Some(names) => ToolSet::parse(&names).map_err(|e| {
            format!(
                "{}: [mcp] tools: {e}",
                ai_session_protocol::config::Config::path(home).display()
            )
        }),
        None => Ok(ToolSet::default()),
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CreateArgs {
    /// Session name. Default: the lowest free number ("0", "1", ...).
    #[serde(default)]
    pub name: Option<String>,
    /// Working directory. Default: the MCP server's own working directory.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Shell to run, e.g. "/bin/bash". Default: $SHELL, then bash, then sh.
    #[serde(default)]
    pub shell: Option<String>,
    /// Extra environment variables, e.g. {"RUST_LOG": "debug"}.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Terminal width in columns (default 80).
    #[serde(default)]
    pub cols: Option<u16>,
    /// Terminal height in rows (default 24).
    #[serde(default)]
    pub rows: Option<u16>,
    /// Run this program and its arguments instead of a shell, e.g. ["python3", "-q"]. Such a
    /// session has no session_exec: drive it with session_send_keys and session_wait.
    #[serde(default)]
    pub program: Option<Vec<String>>,
    /// Run the session in an OS sandbox: a built-in profile ("default": read system and
    /// workspace, write only the workspace and a private /tmp, loopback network; "read-only";
    /// "workspace-write": like default with full network; "no-network") or a policy in TOML.
    /// Unconfined when absent. session_list shows the protections in force.
    #[serde(default)]
    pub policy: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionArgs {
    /// The session's name (see session_list).
    #[serde(alias = "target")]
    pub session: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResizeArgs {
    /// The session's name.
    #[serde(alias = "target")]
    pub session: String,
    /// New width in columns.
    pub cols: u16,
    /// New height in rows.
    pub rows: u16,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// The token-lean view: recognised build/test/git/... output condensed, with what was left out.
    #[default]
    Compact,
    /// The command's whole output as plain text.
    Full,
    /// Both.
    Both,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ExecArgs {
    /// The session's name. It must run a shell (the default) and be at its prompt.
    #[serde(alias = "target")]
    pub session: String,
    /// A shell command line, e.g. "cargo test 2>&1". Multi-line scripts work.
    pub command: String,
    /// Stop waiting after this many milliseconds (default 120000). The command keeps running;
    /// the result has status "timeout" and a hint.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Return early after this many milliseconds without output (status "running", partial
    /// output); useful for servers and prompts. The command keeps running.
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    /// The old name of `timeout_ms`, in seconds: still accepted, not offered.
    #[serde(default)]
    #[schemars(skip)]
    pub timeout_secs: Option<f64>,
    /// The old name of `idle_timeout_ms`, in seconds: still accepted, not offered.
    #[serde(default)]
    #[schemars(skip)]
    pub idle_timeout_secs: Option<f64>,
    /// What output to return: "compact" (default), "full" or "both".
    #[serde(default)]
    pub view: View,
    /// Cap on the full output in bytes (head and tail kept, `truncated` set).
    #[serde(default)]
    pub max_output_bytes: Option<usize>,
    /// Most tokens of the compact view (default 1500, at least 200).
    #[serde(default)]
    pub view_budget: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SendKeysArgs {
    /// The session's name.
    #[serde(alias = "target")]
    pub session: String,
    /// Keys in order. tmux key names are pressed ("Enter", "C-c", "C-d", "Up", "Tab", "Escape",
    /// "BSpace", "F5", "M-x", "PageUp"); any other string is typed as text. Example:
    /// ["print(2 ** 10)", "Enter"].
    pub keys: Vec<String>,
    /// Type every string literally, even ones that look like key names.
    #[serde(default)]
    pub literal: bool,
    /// Send the text as one bracketed paste (for long or multi-line text into editors and REPLs
    /// that support it).
    #[serde(default)]
    pub paste: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct WaitArgs {
    /// The session's name.
    #[serde(alias = "target")]
    pub session: String,
    /// Wait until this regular expression matches the plain-text output since the last input
    /// (multi-line mode: ^ and $ match at line ends), e.g. ">>> $" or "^1024$".
    #[serde(default)]
    pub regex: Option<String>,
    /// Wait until the session has printed nothing for this many milliseconds.
    #[serde(default)]
    pub idle_ms: Option<u64>,
    /// Wait until the shell is back at its prompt; reports the last exit code.
    #[serde(default)]
    pub prompt: bool,
    /// Give up after this many milliseconds (default 30000); a timeout is an error.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// The old name of `timeout_ms`, in seconds: still accepted, not offered.
    #[serde(default)]
    #[schemars(skip)]
    pub timeout_secs: Option<f64>,
    /// Match the regex from this log offset instead of the last input.
    #[serde(default)]
    pub since: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadArgs {
    /// The session's name.
    #[serde(alias = "target")]
    pub session: String,
    /// First log offset wanted (e.g. an exec's output_start, or a previous read's `end`).
    /// Default: the oldest output kept.
    #[serde(default)]
    pub since: Option<u64>,
    /// At most this many bytes (default 64 KiB here, to save tokens); `more` says if there is more.
    #[serde(default)]
    pub max_bytes: Option<usize>,
    /// Keep terminal escape sequences (default: plain text).
    #[serde(default)]
    pub raw: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CaptureArgs {
    /// The session's name.
    #[serde(alias = "target")]
    pub session: String,
    /// Also include this many lines of scrollback above the screen (default 0).
    #[serde(default)]
    pub scrollback: usize,
}

/// The default `session_read` size: enough for a page of output, small in tokens.
const DEFAULT_READ_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct AiSessionMcp {
    daemon: std::sync::Arc<Daemon>,
    tool_router: ToolRouter<Self>,
    /// The resources this client subscribed to (`resources/subscribe`).
    watches: std::sync::Arc<resources::Watches>,
    /// The `subscriptions/listen` streams following the resource list.
    listeners: std::sync::Arc<resources::Listeners>,
    /// Calls running as tasks (`io.modelcontextprotocol/tasks`).
    tasks: std::sync::Arc<rmcp::task_manager::TaskManager>,
}

/// The longest duration an argument takes: one year, in milliseconds.
const MAX_MS: u64 = 86_400_000 * 365;

/// A duration argument: `ms` under its name `ms_name` (milliseconds, as everywhere in this
/// API), or `secs` under the old name `secs_name` (seconds, still accepted); not both.
fn millis(
    (ms_name, ms): (&str, Option<u64>),
    (secs_name, secs): (&str, Option<f64>),
) -> Result<Option<u64>, CallToolResult> {
    let invalid = |message: String, hint: String| {
        Err(tool_error(
            &message,
            Some(&hint),
            json!({"kind": "invalid_params", "field": ms_name}),
        ))
    };
    match (ms, secs) {
        (Some(_), Some(_)) => invalid(
            format!("both `{ms_name}` and `{secs_name}` were given"),
            format!("give `{ms_name}` (milliseconds) alone; `{secs_name}` is its old name"),
        ),
        (Some(ms), None) if ms > MAX_MS => invalid(
            format!("`{ms_name}` {ms} is more than one year"),
            format!("give `{ms_name}` in milliseconds, at most {MAX_MS}"),
        ),
        (Some(ms), None) => Ok(Some(ms)),
        (None, Some(s)) if s.is_nan() || !(0.0..=(MAX_MS / 1000) as f64).contains(&s) => invalid(
            format!("invalid `{secs_name}` {s}"),
            format!("give `{ms_name}` in milliseconds, between 0 and {MAX_MS}"),
        ),
        (None, Some(s)) => Ok(Some((s * 1000.0).round() as u64)),
        (None, None) => Ok(None),
    }
}

fn tool_error(message: &str, hint: Option<&str>, data: Value) -> CallToolResult {
    let mut text = format!("error: {message}");
    if let Some(h) = hint {
        text.push_str("\nhint: ");
        text.push_str(h);
    }
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    let mut error = json!({ "message": message });
    if let (Some(obj), Value::Object(extra)) = (error.as_object_mut(), data) {
        obj.extend(extra);
    }
    if let (Some(obj), Some(h)) = (error.as_object_mut(), hint) {
        obj.insert("hint".into(), Value::from(h));
    }
    result.structured_content = Some(json!({ "error": error }));
    result
}

fn call_error(e: CallError) -> CallToolResult {
    match e {
        CallError::Rpc(mut rpc) => {
            rpc.rephrase(&hint::Mcp);
            let mut hint = rpc.data.hint.clone();
            if let Some(sessions) = &rpc.data.sessions {
                let list = if sessions.is_empty() {
                    "existing sessions: none (create one with session_create)".to_owned()
                } else {
                    format!("existing sessions: {}", sessions.join(", "))
                };
                hint = Some(match hint {
                    Some(h) if !sessions.is_empty() && !h.contains("existing sessions") => {
                        format!("{h}; {list}")
                    }
                    Some(h) => h,
                    None => list,
                });
            }
            let data = serde_json::to_value(&rpc.data).unwrap_or(Value::Null);
            let mut extra = json!({ "code": rpc.code });
            if let (Some(obj), Value::Object(d)) = (extra.as_object_mut(), data) {
                obj.extend(d.into_iter().filter(|(k, _)| k != "hint"));
            }
            tool_error(&rpc.message, hint.as_deref(), extra)
        }
        other => tool_error(
            &other.to_string(),
            Some(
                "the ai-session daemon is unreachable; retry, or ask the user to check the daemon",
            ),
            json!({ "kind": "daemon_unreachable" }),
        ),
    }
}

fn success(value: Value) -> CallToolResult {
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    result
}

fn to_value(v: &impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The exec result shaped for an agent: what happened first, then the view asked for, then how
/// to get the rest.
fn exec_view(session: &str, r: ExecResult, view: View) -> catalog::ExecAnswer {
    let want_full = view != View::Compact || r.compact.is_none();
    let mut more = format!(
        "session_read {{\"session\": \"{session}\", \"since\": {}}} returns this command's raw output",
        r.output_start
    );
    if view == View::Compact && r.compact.is_some() {
        more.push_str("; or run session_exec again with view \"full\"");
    }
    if r.status != ExecStatus::Exited {
        more.push_str(
            "; the command is still running: session_wait {\"prompt\": true} waits for it, \
             session_send_keys [\"C-c\"] interrupts it",
        );
    }
    let hint = match &r.advice {
        Some(advice) => Some(hint::render(advice)),
        None => r.hint.clone(),
    };
    catalog::ExecAnswer {
        status: r.status,
        exit_code: r.exit_code,
        duration_ms: (r.duration_ms * 10.0).round() / 10.0,
        compact: r
            .compact
            .filter(|_| view != View::Full)
            .map(hint::rephrase_view),
        output: want_full.then_some(r.output),
        truncated: want_full.then_some(r.truncated),
        output_start: r.output_start,
        output_end: r.output_end,
        hint,
        foreground: r.foreground,
        prompt: r.prompt,
        screen: r.screen,
        more,
    }
}

#[tool_router]
impl AiSessionMcp {
    /// A server whose tools call the daemon on its socket (`ai-session mcp`).
    pub fn new(sel: Selector, tools: &ToolSet) -> Self {
        Self::over(Daemon::new(sel), tools)
    }

    /// A server whose tools call the daemon's service in-process (`/mcp`).
    pub fn with_backend(backend: std::sync::Arc<dyn Backend>, tools: &ToolSet) -> Self {
        Self::over(Daemon::InProcess(backend), tools)
    }

    fn over(daemon: Daemon, tools: &ToolSet) -> Self {
        Self {
            daemon: std::sync::Arc::new(daemon),
            tool_router: {
                let mut router = Self::tool_router() + Self::extra_router() + Self::decide_router();
                catalog::describe(&mut router);
                catalog::restrict(&mut router, tools);
                router
            },
            watches: std::sync::Arc::default(),
            listeners: std::sync::Arc::default(),
            tasks: std::sync::Arc::default(),
        }
    }

    /// Tells the client that the resource list changed (a session came or went).
    async fn sessions_changed(&self, peer: &Peer<RoleServer>) {
        resources::Notifier::Peer(peer.clone()).list_changed().await;
        self.listeners.list_changed().await;
    }

    /// Runs a daemon call, reporting progress meanwhile when the client asked for it (a
    /// `progressToken` in the request's `_meta`).
    async fn with_progress<F: std::future::Future>(
        &self,
        ctx: &RequestContext<RoleServer>,
        session: &str,
        call: F,
    ) -> F::Output {
        match ctx.meta.get_progress_token() {
            None => call.await,
            Some(token) => {
                let reporter = progress::Reporter::start(
                    self.daemon.clone(),
                    ctx.peer.clone(),
                    token,
                    session.to_owned(),
                )
                .await;
                let out = call.await;
                reporter.finish().await;
                out
            }
        }
    }

    /// Runs a tool call; arguments that do not decode are a tool error naming the argument.
    pub(crate) async fn run_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, McpError> {
        let tcc = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        match self.tool_router.call(tcc).await {
            // Arguments that do not decode: a tool error the model reads and can fix, naming
            // the argument, rather than a protocol error clients show as a failure.
            Err(e) if e.message.starts_with(args::PREFIX) => {
                let message = e.message.trim_start_matches(args::PREFIX).to_owned();
                let field = e
                    .data
                    .as_ref()
                    .and_then(|d| d.get("field"))
                    .cloned()
                    .unwrap_or(Value::Null);
                Ok(tool_error(
                    &message,
                    Some("the tool's inputSchema lists its arguments and their types"),
                    json!({ "kind": "invalid_params", "field": field }),
                )
                .into())
            }
            other => other,
        }
    }

    async fn call<P: Serialize, R: DeserializeOwnedValue>(
        &self,
        method: &str,
        params: P,
    ) -> Result<R, CallToolResult> {
        self.daemon.call(method, params).await.map_err(call_error)
    }

    /// Calls `method` and answers the tool with its result, read as `R` (so a daemon answering
    /// another shape is an error, not passed on), or with the daemon's error.
    async fn answer<R: DeserializeOwnedValue + Serialize>(
        &self,
        method: &str,
        params: impl Serialize,
    ) -> CallToolResult {
        match self.call::<_, R>(method, params).await {
            Ok(v) => success(to_value(&v)),
            Err(e) => e,
        }
    }

    #[tool(description = reg::SessionNew::SPEC.mcp_description())]
    async fn session_create(
        &self,
        Parameters(a): Parameters<CreateArgs>,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let cwd = match a.cwd {
            Some(c) => Some(c),
            None => std::env::current_dir()
                .ok()
                .map(|d| d.display().to_string()),
        };
        let size = match (a.cols, a.rows) {
            (None, None) => None,
            (c, r) => Some(Size {
                cols: c.unwrap_or(80),
                rows: r.unwrap_or(24),
            }),
        };
        let params = NewParams {
            name: a.name,
            cwd,
            shell: a.shell,
            env: Some(std::env::vars().collect()),
            set_env: a.env,
            size,
            program: a.program.filter(|p| !p.is_empty()),
            policy: a.policy,
        };
        Ok(
            match self
                .call::<_, SessionInfo>(reg::SessionNew::NAME, params)
                .await
            {
                Ok(info) => {
                    self.sessions_changed(&peer).await;
                    success(to_value(&info))
                }
                Err(e) => e,
            },
        )
    }

    #[tool(description = reg::SessionList::SPEC.mcp_description())]
    async fn session_list(&self) -> Result<CallToolResult, McpError> {
        Ok(self
            .answer::<ListResult>(reg::SessionList::NAME, json!({}))
            .await)
    }

    #[tool(description = reg::SessionKill::SPEC.mcp_description())]
    async fn session_kill(
        &self,
        Parameters(a): Parameters<SessionArgs>,
        peer: Peer<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let params = Target {
            target: a.session.clone(),
        };
        Ok(
            match self.call::<_, Value>(reg::SessionKill::NAME, params).await {
                Ok(_) => {
                    self.sessions_changed(&peer).await;
                    success(to_value(&catalog::KillAnswer { killed: a.session }))
                }
                Err(e) => e,
            },
        )
    }

    #[tool(description = reg::SessionResize::SPEC.mcp_description())]
    async fn session_resize(
        &self,
        Parameters(a): Parameters<ResizeArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = ResizeParams {
            target: a.session.clone(),
            size: Size {
                cols: a.cols,
                rows: a.rows,
            },
        };
        Ok(
            match self
                .call::<_, Value>(reg::SessionResize::NAME, params)
                .await
            {
                Ok(_) => success(to_value(&catalog::ResizeAnswer {
                    session: a.session,
                    cols: a.cols,
                    rows: a.rows,
                })),
                Err(e) => e,
            },
        )
    }

    #[tool(description = reg::SessionExec::SPEC.mcp_description())]
    async fn session_exec(
        &self,
        Parameters(a): Parameters<ExecArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let timeout_ms = match millis(
            ("timeout_ms", a.timeout_ms),
            ("timeout_secs", a.timeout_secs),
        ) {
            Ok(t) => t,
            Err(e) => return Ok(e),
        };
        let idle_timeout_ms = match millis(
            ("idle_timeout_ms", a.idle_timeout_ms),
            ("idle_timeout_secs", a.idle_timeout_secs),
        ) {
            Ok(t) => t,
            Err(e) => return Ok(e),
        };
        let params = ExecParams {
            target: a.session.clone(),
            command: a.command,
            timeout_ms,
            idle_timeout_ms,
            max_output_bytes: a.max_output_bytes,
            view_budget: a.view_budget,
            stdin_b64: None,
            view_only: false,
        };
        let call = self.call::<_, ExecResult>(reg::SessionExec::NAME, params);
        Ok(match self.with_progress(&ctx, &a.session, call).await {
            Ok(r) => success(to_value(&exec_view(&a.session, r, a.view))),
            Err(e) => e,
        })
    }

    #[tool(description = reg::SessionSend::SPEC.mcp_description())]
    async fn session_send_keys(
        &self,
        Parameters(a): Parameters<SendKeysArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = SendParams {
            target: a.session,
            keys: a.keys,
            literal: a.literal,
            paste: a.paste,
        };
        Ok(self
            .answer::<SendResult>(reg::SessionSend::NAME, params)
            .await)
    }

    #[tool(description = reg::SessionWait::SPEC.mcp_description())]
    async fn session_wait(
        &self,
        Parameters(a): Parameters<WaitArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, McpError> {
        let condition = match (a.regex, a.idle_ms, a.prompt) {
            (Some(pattern), None, false) => WaitFor::Regex { pattern },
            (None, Some(ms), false) => WaitFor::Idle { ms },
            (None, None, true) => WaitFor::Prompt,
            _ => {
                return Ok(tool_error(
                    "session_wait needs exactly one condition",
                    Some("give one of `regex`, `idle_ms` or `prompt: true`"),
                    json!({ "kind": "invalid_params" }),
                ));
            }
        };
        let timeout_ms = match millis(
            ("timeout_ms", a.timeout_ms),
            ("timeout_secs", a.timeout_secs),
        ) {
            Ok(t) => t,
            Err(e) => return Ok(e),
        };
        let params = WaitParams {
            target: a.session.clone(),
            condition,
            timeout_ms,
            since: a.since,
        };
        let call = self.call::<_, WaitResult>(reg::SessionWait::NAME, params);
        Ok(match self.with_progress(&ctx, &a.session, call).await {
            Ok(r) => success(to_value(&r)),
            Err(e) => e,
        })
    }

    #[tool(description = reg::SessionRead::SPEC.mcp_description())]
    async fn session_read(
        &self,
        Parameters(a): Parameters<ReadArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = ReadParams {
            target: a.session,
            since: a.since,
            max_bytes: Some(a.max_bytes.unwrap_or(DEFAULT_READ_BYTES)),
            raw: a.raw,
            encoding: Default::default(),
        };
        Ok(self
            .answer::<ReadResult>(reg::SessionRead::NAME, params)
            .await)
    }

    #[tool(description = reg::SessionCapture::SPEC.mcp_description())]
    async fn session_capture(
        &self,
        Parameters(a): Parameters<CaptureArgs>,
    ) -> Result<CallToolResult, McpError> {
        let params = CaptureParams {
            target: a.session,
            scrollback: a.scrollback,
            ansi: false,
        };
        Ok(
            match self
                .call::<_, CaptureResult>(reg::SessionCapture::NAME, params)
                .await
            {
                Ok(r) => {
                    // The screen as one text block reads better than a JSON array of lines.
                    let mut screen = r.lines.join("\n");
                    let trimmed = screen.trim_end_matches(['\n', ' ']).len();
                    screen.truncate(trimmed);
                    success(to_value(&catalog::CaptureAnswer {
                        screen,
                        size: r.size,
                        cursor_row: r.cursor_row,
                        cursor_col: r.cursor_col,
                        alternate_screen: r.alternate_screen,
                        title: r.title,
                        scrollback_lines: r.scrollback_lines,
                    }))
                }
                Err(e) => e,
            },
        )
    }
}

/// Results decoded from the daemon's JSON.
trait DeserializeOwnedValue: serde::de::DeserializeOwned {}
impl<T: serde::de::DeserializeOwned> DeserializeOwnedValue for T {}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AiSessionMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_resources_list_changed()
            .enable_tasks()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("ai-session", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    /// A long command runs as a task for clients that ask for one; every other call runs inside
    /// its call's trace (`_meta.traceparent`), which every daemon call it makes carries.
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, McpError> {
        if tasks::wanted(&request, &context) {
            return Ok(tasks::start(self, &self.tasks, request, context));
        }
        let trace = trace::of(&request, &context);
        trace::scope(trace, self.run_tool(request, context)).await
    }

    async fn get_task(
        &self,
        request: rmcp::model::GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::GetTaskResult, McpError> {
        Ok(rmcp::model::GetTaskResult::new(
            self.tasks.get_task(&request.task_id)?,
        ))
    }

    async fn update_task(
        &self,
        request: rmcp::model::UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        // No tool of this server asks for input mid-task: there is nothing to route.
        self.tasks
            .update_task(&request.task_id, std::iter::empty::<(String, Value)>())
    }

    async fn cancel_task(
        &self,
        request: rmcp::model::CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.tasks.cancel_task(&request.task_id)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        Ok(ListResourcesResult::with_all_items(
            resources::list(&self.daemon).await?,
        ))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        Ok(resources::read(&self.daemon, &request.uri).await?.into())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        Some(resources::acceptable(requested))
    }

    /// A `subscriptions/listen` stream (2026-07-28): the sessions of its resource URIs are
    /// followed until the client cancels it, and the resource list's changes reported on it.
    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        let sink = context.sink().clone();
        let watches = resources::Watches::default();
        let prepared = listen::Prepared::of(context.request_context());
        for uri in context.accepted().resource_subscriptions.iter().flatten() {
            let notifier = resources::Notifier::Listen(sink.clone());
            let (session, _) = resources::parse(uri)?;
            let ready = prepared.take(&session);
            watches
                .subscribe(&self.daemon, notifier, uri, ready)
                .await?;
        }
        let lists = context.accepted().resources_list_changed == Some(true);
        if lists {
            self.listeners.add(sink.clone());
        }
        context.cancelled().await;
        if lists {
            self.listeners.remove(sink.id());
        }
        // Dropping `watches` stops following its sessions.
        Ok(())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let notifier = resources::Notifier::Peer(context.peer);
        self.watches
            .subscribe(&self.daemon, notifier, &request.uri, None)
            .await
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.watches.unsubscribe(&request.uri)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// The tool list is the registry's: every tool is a method's, with the method's
    /// description, and every method with a tool has one here.
    #[test]
    fn tools_match_the_registry() {
        let server = AiSessionMcp::new(
            Selector {
                label: None,
                socket: Some("/nonexistent".into()),
            },
            &ToolSet::all(),
        );
        let tools = server.tool_router.list_all();
        let declared: Vec<&reg::MethodSpec> =
            reg::METHODS.iter().filter(|s| s.mcp.is_some()).collect();
        assert_eq!(tools.len(), declared.len());
        for spec in declared {
            let mcp = spec.mcp.unwrap();
            let tool = tools
                .iter()
                .find(|t| t.name == mcp.tool)
                .unwrap_or_else(|| panic!("no tool {} for {}", mcp.tool, spec.name));
            assert_eq!(tool.description.as_deref(), Some(mcp.description));
        }
    }

    /// Every tool has the registry's annotations, and an object output schema.
    #[test]
    fn tools_carry_annotations_and_output_schemas() {
        let server = AiSessionMcp::new(
            Selector {
                label: None,
                socket: Some("/nonexistent".into()),
            },
            &ToolSet::all(),
        );
        for tool in server.tool_router.list_all() {
            let a = tool.annotations.as_ref().expect("annotations");
            let schema = tool.output_schema.as_ref().expect("output schema");
            assert_eq!(schema.get("type"), Some(&json!("object")), "{}", tool.name);
            let read_only = a.read_only_hint == Some(true);
            match tool.name.as_ref() {
                "session_list" | "session_read" | "session_capture" | "context_get" => {
                    assert!(read_only, "{}", tool.name)
                }
                "session_exec" | "session_kill" | "session_send_keys" => {
                    assert!(
                        !read_only && a.destructive_hint == Some(true),
                        "{}",
                        tool.name
                    )
                }
                "session_create" | "snapshot_create" => {
                    assert!(
                        !read_only && a.destructive_hint == Some(false),
                        "{}",
                        tool.name
                    )
                }
                _ => {}
            }
        }
    }

    /// A subset offers exactly its groups' tools.
    #[test]
    fn tool_sets_offer_their_groups_only() {
        let set = ToolSet::parse(&["sessions"]).unwrap();
        let server = AiSessionMcp::new(
            Selector {
                label: None,
                socket: Some("/nonexistent".into()),
            },
            &set,
        );
        let names: Vec<String> = server
            .tool_router
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        assert!(names.iter().all(|n| n.starts_with("session_")), "{names:?}");
        assert_eq!(names.len(), 9, "{names:?}");
        assert!(ToolSet::parse(&["sessions", "bogus"]).is_err());
        assert_eq!(ToolSet::parse(&["all"]).unwrap(), ToolSet::all());
    }
}
