//! Long calls as tasks: the `io.modelcontextprotocol/tasks` extension (2026-07-28). A
//! `session_exec` or `session_wait` from a client that declares the extension is answered at
//! once with a task; the call runs on, `tasks/get` says `working` and then gives its result, and
//! `tasks/cancel` interrupts the session's command (`C-c`) and settles the task `cancelled`.
//! Clients that do not declare the extension get the result as before (with progress
//! notifications when they ask for them).

use ai_session_protocol::methods::SendParams;
use ai_session_protocol::registry::{self as reg, Method};
use rmcp::ErrorData as McpError;
use rmcp::RoleServer;
use rmcp::model::{CallToolRequestParams, CallToolResponse, CreateTaskResult};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskExit, TaskManager, TaskOptions};
use serde_json::Value;

use crate::AiSessionMcp;

/// Tools that may run long enough to be worth a task.
const LONG: &[&str] = &["session_exec", "session_wait"];

/// Whether this call runs as a task: a long tool, and a client that declared the extension.
pub(crate) fn wanted(
    request: &CallToolRequestParams,
    context: &RequestContext<RoleServer>,
) -> bool {
    LONG.contains(&request.name.as_ref())
        && context
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks())
}

/// Starts the call as a task of `tasks` and answers with it.
pub(crate) fn start(
    server: &AiSessionMcp,
    tasks: &TaskManager,
    request: CallToolRequestParams,
    context: RequestContext<RoleServer>,
) -> CallToolResponse {
    let server = server.clone();
    let session = request
        .arguments
        .as_ref()
        .and_then(|a| a.get("session").or_else(|| a.get("target")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let task = tasks.spawn(TaskOptions::new(), move |tctx| {
        Box::pin(async move {
            let call = server.run_tool(request, context);
            tokio::select! {
                out = call => match out {
                    Ok(CallToolResponse::Complete(result)) => Ok(result),
                    Ok(_) => Err(TaskExit::Error(McpError::internal_error(
                        "the tool answered with something other than a result",
                        None,
                    ))),
                    Err(e) => Err(TaskExit::Error(e)),
                },
                () = tctx.cancelled() => {
                    interrupt(&server, session).await;
                    Err(TaskExit::Cancelled)
                }
            }
        })
    });
    CallToolResponse::Task(CreateTaskResult::new(task))
}

/// Interrupts the command of a cancelled task's session, as `session_send_keys ["C-c"]` would.
async fn interrupt(server: &AiSessionMcp, session: Option<String>) {
    let Some(target) = session else { return };
    let params = SendParams {
        target,
        keys: vec!["C-c".into()],
        literal: false,
        paste: false,
    };
    if let Err(e) = server
        .daemon
        .call::<_, Value>(reg::SessionSend::NAME, params)
        .await
    {
        tracing::warn!("could not interrupt a cancelled task's command: {e}");
    }
}
