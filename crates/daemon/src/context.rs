//! Each session's token-aware context (`ai-session-context`): fed with every exec's command and
//! compact result, queried with `context.get` for the best context under a token budget.
//!
//! Recording an exec counts its tokens with a real BPE tokenizer (about 5 MB/s), too slow for
//! the exec's own reply, so every session's context lives on one worker thread: the exec
//! result goes back to the client at once and its record is queued; a later `context.*` call
//! for the session queues behind it, so it sees every exec that returned before it was asked.

use std::collections::HashMap;
use std::sync::mpsc;

use ai_session_context::{ContextConfig, ContextError, ExecRecord, Role, SessionContext};
use ai_session_protocol::methods::ExecResult;
use ai_session_protocol::{ErrorKind, RpcError};
use serde_json::{Value, json};

type Map = HashMap<String, SessionContext>;
type Job = Box<dyn FnOnce(&mut Map) + Send>;

/// Budget of `context.get` when the caller names none.
const DEFAULT_BUDGET: usize = 4_000;

/// The contexts' worker thread.
pub(crate) struct Contexts {
    tx: mpsc::Sender<Job>,
}

fn context_error(e: ContextError) -> RpcError {
    let kind = match &e {
        ContextError::BudgetTooSmall { .. } | ContextError::UnknownTask(_) => {
            ErrorKind::InvalidParams
        }
        _ => ErrorKind::Internal,
    };
    RpcError::new(kind, e.to_string())
}

/// The context of `name`, created with the default configuration on first use.
fn entry<'a>(map: &'a mut Map, name: &str) -> Result<&'a mut SessionContext, RpcError> {
    if !map.contains_key(name) {
        let ctx = SessionContext::new(name, ContextConfig::default()).map_err(context_error)?;
        map.insert(name.to_string(), ctx);
    }
    map.get_mut(name)
        .ok_or_else(|| RpcError::new(ErrorKind::Internal, "context vanished"))
}

fn s<'a>(params: &'a Value, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str)
}

fn need<'a>(params: &'a Value, key: &str) -> Result<&'a str, RpcError> {
    s(params, key).ok_or_else(|| {
        RpcError::new(
            ErrorKind::InvalidParams,
            format!("invalid params: missing string '{key}'"),
        )
    })
}

impl Contexts {
    pub(crate) fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("contexts".into())
            .spawn(move || {
                let mut map = Map::new();
                while let Ok(job) = rx.recv() {
                    job(&mut map);
                }
            })?;
        Ok(Contexts { tx })
    }

    fn submit(&self, job: Job) {
        if self.tx.send(job).is_err() {
            tracing::error!("the contexts thread is gone; context not updated");
        }
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Map) -> Result<T, RpcError> + Send + 'static,
    ) -> Result<T, RpcError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move |map| {
            reply.send(f(map)).ok();
        }));
        rx.await
            .map_err(|_| RpcError::new(ErrorKind::Internal, "the contexts thread is gone"))?
    }

    /// Queues an exec's command and compact result into the session's context.
    pub(crate) fn record(&self, session: &str, command: String, result: &ExecResult) {
        let output = result
            .compact
            .as_ref()
            .and_then(|c| c.get("text"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| result.output.clone());
        let mut record = ExecRecord::new(
            command,
            result.exit_code,
            result.cwd.clone().unwrap_or_default(),
        )
        .output(output)
        .duration_ms(result.duration_ms.round() as u64);
        if let Some(parsed) = &result.parsed {
            record = record.parsed_json(parsed);
        }
        let session = session.to_string();
        let has_cwd = result.cwd.is_some();
        self.submit(Box::new(move |map| {
            let result = entry(map, &session).and_then(|ctx| {
                ctx.record_exec(record).map_err(context_error)?;
                if has_cwd {
                    ctx.refresh_workspace();
                }
                Ok(())
            });
            if let Err(e) = result {
                tracing::warn!(session = %session, "context not updated: {}", e.message);
            }
        }));
    }

    /// Forgets a killed session's context.
    pub(crate) fn forget(&self, session: &str) {
        let session = session.to_string();
        self.submit(Box::new(move |map| {
            map.remove(&session);
        }));
    }

    /// The whole context as bytes (for snapshots and the store), if the session has one.
    pub(crate) async fn to_bytes(&self, session: &str) -> Result<Option<Vec<u8>>, RpcError> {
        let session = session.to_string();
        self.call(move |map| match map.get(&session) {
            // Self-contained: entries not yet sealed into an archive frame travel in the state.
            Some(ctx) => ctx.to_bytes().map(Some).map_err(context_error),
            None => Ok(None),
        })
        .await
    }

    /// Replaces a session's context with one saved by [`Contexts::to_bytes`].
    pub(crate) async fn restore(&self, session: &str, bytes: Vec<u8>) -> Result<(), RpcError> {
        let session = session.to_string();
        self.call(move |map| {
            let ctx = SessionContext::from_bytes(&bytes).map_err(context_error)?;
            map.insert(session, ctx);
            Ok(())
        })
        .await
    }

    /// The `context.*` methods; the session must exist (checked by the caller).
    pub(crate) async fn route(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let target = need(&params, "target")?.to_string();
        match method {
            "context.get" => {
                let budget = params
                    .get("budget")
                    .and_then(Value::as_u64)
                    .map_or(DEFAULT_BUDGET, |b| b as usize);
                let task = s(&params, "task").map(str::to_owned);
                self.call(move |map| {
                    let view = entry(map, &target)?
                        .build(budget, task.as_deref())
                        .map_err(context_error)?;
                    crate::dispatch::json(view)
                })
                .await
            }
            "context.add" => {
                let role: Role = need(&params, "role")?.parse().map_err(|_| {
                    RpcError::new(ErrorKind::InvalidParams, "invalid role")
                        .with_hint("the role is user, assistant or note")
                })?;
                let text = need(&params, "text")?.to_string();
                if text.trim().is_empty() {
                    return Err(RpcError::new(ErrorKind::InvalidParams, "empty text"));
                }
                let task = s(&params, "task").map(str::to_owned);
                self.call(move |map| {
                    let id = entry(map, &target)?
                        .add_message(role, text, task.as_deref())
                        .map_err(context_error)?;
                    Ok(json!({ "id": id }))
                })
                .await
            }
            "context.show" => {
                let id = params.get("id").and_then(Value::as_u64).ok_or_else(|| {
                    RpcError::new(ErrorKind::InvalidParams, "invalid params: missing number 'id'")
                })?;
                self.call(move |map| {
                    match entry(map, &target)?.get(id).map_err(context_error)? {
                        Some(e) => crate::dispatch::json(e),
                        None => Err(RpcError::new(
                            ErrorKind::NotFound,
                            format!("no context entry {id} in session '{target}'"),
                        )
                        .with_hint("entry ids are shown in `ai-session context -t NAME --json`")),
                    }
                })
                .await
            }
            "context.task" => {
                let id = need(&params, "id")?.to_string();
                let parent = s(&params, "parent").map(str::to_owned);
                let title = s(&params, "title").map(str::to_owned);
                let activate = params.get("activate").and_then(Value::as_bool).unwrap_or(false);
                self.call(move |map| {
                    let ctx = entry(map, &target)?;
                    ctx.create_task(&id, parent.as_deref(), title.as_deref())
                        .map_err(context_error)?;
                    if activate {
                        ctx.set_active_task(Some(&id)).map_err(context_error)?;
                    }
                    Ok(json!({ "task": id, "active": activate }))
                })
                .await
            }
            "context.config" => {
                let max_tokens = params.get("max_tokens").and_then(Value::as_u64);
                let threshold = params.get("compression_threshold").and_then(Value::as_f64);
                let window = params.get("window_entries").and_then(Value::as_u64);
                self.call(move |map| {
                    let ctx = entry(map, &target)?;
                    let mut config = ctx.config().clone();
                    if let Some(n) = max_tokens {
                        config.max_tokens = n as usize;
                    }
                    if let Some(t) = threshold {
                        config.compression_threshold = t;
                    }
                    if let Some(w) = window {
                        config.window_entries = w as usize;
                    }
                    ctx.set_config(config).map_err(context_error)?;
                    Ok(json!({
                        "config": crate::dispatch::json(ctx.config())?,
                        "stats": crate::dispatch::json(ctx.stats())?,
                    }))
                })
                .await
            }
            other => Err(RpcError::new(
                ErrorKind::MethodNotFound,
                format!("unknown method '{other}'"),
            )
            .with_hint("context methods: context.get, context.add, context.show, context.task, context.config")),
        }
    }
}
