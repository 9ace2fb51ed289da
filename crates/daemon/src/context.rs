//! Each session's token-aware context (`ai-session-context`): fed with every exec's command and
//! compact result, queried with `context.get` for the best context under a token budget.
//!
//! Recording an exec counts its tokens with a real BPE tokenizer (about 5 MB/s), too slow for
//! the exec's own reply, so every session's context lives on one worker thread: the exec
//! result goes back to the client at once and its record is queued; a later `context.*` call
//! for the session queues behind it, so it sees every exec that returned before it was asked.
//!
//! Contexts are keyed on ids, never names: a session's on its immutable id (`SessionInfo.id`,
//! kept across a restart), an agent's own on its agent id (never handed out twice). A new
//! session or agent reusing a name starts empty; a session brought back by a restart keeps
//! its context.

use std::collections::HashMap;

use ai_session_context::{ContextConfig, ContextError, ExecRecord, Role, SessionContext};
use ai_session_protocol::context::*;
use ai_session_protocol::methods::ExecResult;
use ai_session_protocol::{ErrorKind, RpcError};
use serde_json::Value;

use crate::service::{Event, Observer, Reaction, wire};
use crate::worker::Worker;

type Map = HashMap<String, SessionContext>;

/// Budget of `context.get` when the caller names none.
const DEFAULT_BUDGET: usize = 4_000;

/// Jobs the contexts' thread may have queued; an exec's answer waits for room beyond that.
const QUEUE: usize = 4096;

/// The contexts' worker thread.
pub(crate) struct Contexts {
    worker: Worker<Map>,
}

fn context_error(e: ContextError) -> RpcError {
    let kind = match &e {
        // The caller's values: a budget, a task, a parent that makes a cycle, a limit out of
        // range. Not the daemon's failure.
        ContextError::BudgetTooSmall { .. }
        | ContextError::UnknownTask(_)
        | ContextError::TaskCycle(_)
        | ContextError::Config(_) => ErrorKind::InvalidParams,
        _ => ErrorKind::Internal,
    };
    RpcError::new(kind, e.to_string())
}

/// The key of agent `id`'s own context (`context -t agent:NAME`).
pub(crate) fn agent_key(id: u64) -> String {
    format!("agent#{id}")
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

impl Contexts {
    pub(crate) fn start() -> std::io::Result<Self> {
        Ok(Contexts {
            worker: Worker::start("contexts", QUEUE, Map::new())?,
        })
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Map) -> Result<T, RpcError> + Send + 'static,
    ) -> Result<T, RpcError> {
        self.worker.call(f).await
    }

    /// The job that records an exec's command and compact result into `session`'s context.
    /// `started_ms` is the exec's start as the store's history records it: the time a context
    /// saved before a crash is caught up from (see [`Contexts::recover`]).
    fn record_job(
        session: &str,
        command: &str,
        started_ms: u64,
        result: &ExecResult,
    ) -> impl FnOnce(&mut Map) + Send + 'static {
        let output = result
            .compact
            .as_ref()
            .and_then(|c| c.get("text"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| result.output.clone());
        let mut record = ExecRecord::new(
            command.to_string(),
            result.exit_code,
            result.cwd.clone().unwrap_or_default(),
        )
        .output(output)
        .duration_ms(result.duration_ms.round() as u64)
        .at_ms(started_ms);
        if let Some(parsed) = &result.parsed {
            record = record.parsed_json(parsed);
        }
        let session = session.to_string();
        let has_cwd = result.cwd.is_some();
        move |map: &mut Map| {
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
        }
    }

    /// The whole context as bytes (for snapshots and the store), if the session (by id) has
    /// one.
    pub(crate) async fn to_bytes(&self, session: &str) -> Result<Option<Vec<u8>>, RpcError> {
        let session = session.to_string();
        self.call(move |map| match map.get(&session) {
            // Self-contained: entries not yet sealed into an archive frame travel in the state.
            Some(ctx) => ctx.to_bytes().map(Some).map_err(context_error),
            None => Ok(None),
        })
        .await
    }

    /// A session's context brought back at start (by id): the one saved by
    /// [`Contexts::to_bytes`] (or an empty one), caught up with the execs of the store's history
    /// that started after its last exec: those a crash kept from the two-second checkpoint.
    /// They come back with their command, exit code, directory and times; their output is
    /// not in the history. Returns how many were replayed.
    pub(crate) async fn recover(
        &self,
        session: &str,
        saved: Option<Vec<u8>>,
        history: Vec<ExecRecord>,
    ) -> Result<usize, RpcError> {
        let session = session.to_string();
        let restored = saved.is_some();
        self.call(move |map| {
            let mut ctx = match saved {
                Some(bytes) => SessionContext::from_bytes(&bytes).map_err(context_error)?,
                None => SessionContext::new(&session, ContextConfig::default())
                    .map_err(context_error)?,
            };
            let after = ctx.last_exec_ms();
            let mut replayed = 0;
            for record in history {
                if record.at_ms.is_some_and(|at| at > after) {
                    ctx.record_exec(record).map_err(context_error)?;
                    replayed += 1;
                }
            }
            if restored || replayed > 0 {
                map.insert(session, ctx);
            }
            Ok(replayed)
        })
        .await
    }

    /// `context.get`; the target was checked by the service and resolved to its `key`.
    pub(crate) async fn get(
        &self,
        key: String,
        p: ContextGetParams,
    ) -> Result<ContextViewResult, RpcError> {
        let budget = p.budget.map_or(DEFAULT_BUDGET, |b| b as usize);
        self.call(move |map| {
            let view = entry(map, &key)?
                .build(budget, p.task.as_deref())
                .map_err(context_error)?;
            wire(&view)
        })
        .await
    }

    pub(crate) async fn add(
        &self,
        key: String,
        p: ContextAddParams,
    ) -> Result<ContextAddResult, RpcError> {
        let role: Role = p.role.parse().map_err(|_| {
            RpcError::new(
                ErrorKind::InvalidParams,
                format!("invalid role '{}'", p.role),
            )
            .with_hint("the role is user, assistant or note")
        })?;
        if p.text.trim().is_empty() {
            return Err(RpcError::new(ErrorKind::InvalidParams, "empty text")
                .with_hint("say what the entry records"));
        }
        self.call(move |map| {
            let id = entry(map, &key)?
                .add_message(role, p.text, p.task.as_deref())
                .map_err(context_error)?;
            Ok(ContextAddResult { id })
        })
        .await
    }

    pub(crate) async fn show(
        &self,
        key: String,
        p: ContextShowParams,
    ) -> Result<ContextEntryResult, RpcError> {
        self.call(
            move |map| match entry(map, &key)?.get(p.id).map_err(context_error)? {
                Some(e) => wire(&e),
                None => Err(RpcError::new(
                    ErrorKind::NotFound,
                    format!("no context entry {} in '{}'", p.id, p.target),
                )
                .with_advice(
                    ai_session_protocol::hint::Advice::new("{0} lists the entries with their ids")
                        .call("context.get", serde_json::json!({ "target": p.target })),
                )),
            },
        )
        .await
    }

    pub(crate) async fn task(
        &self,
        key: String,
        p: ContextTaskParams,
    ) -> Result<ContextTaskResult, RpcError> {
        self.call(move |map| {
            let ctx = entry(map, &key)?;
            ctx.create_task(&p.id, p.parent.as_deref(), p.title.as_deref())
                .map_err(context_error)?;
            if p.activate {
                ctx.set_active_task(Some(&p.id)).map_err(context_error)?;
            }
            Ok(ContextTaskResult {
                task: p.id,
                active: p.activate,
            })
        })
        .await
    }

    pub(crate) async fn config(
        &self,
        key: String,
        p: ContextConfigParams,
    ) -> Result<ContextConfigResult, RpcError> {
        self.call(move |map| {
            let ctx = entry(map, &key)?;
            let mut config = ctx.config().clone();
            if let Some(n) = p.max_tokens {
                config.max_tokens = n as usize;
            }
            if let Some(t) = p.compression_threshold {
                config.compression_threshold = t;
            }
            if let Some(w) = p.window_entries {
                config.window_entries = w as usize;
            }
            ctx.set_config(config).map_err(context_error)?;
            Ok(ContextConfigResult {
                config: wire(ctx.config())?,
                stats: wire(ctx.stats())?,
            })
        })
        .await
    }
}

impl Contexts {
    /// Drops the context kept under `key` (after the jobs queued before it).
    fn forget(&self, key: String) -> Reaction {
        let worker = self.worker.handle();
        Reaction::ack(async move {
            let forget = move |map: &mut Map| {
                map.remove(&key);
            };
            if let Err(e) = worker.send(forget).await {
                tracing::warn!("a context that should go stays: {}", e.message);
            }
        })
    }
}

impl Observer for Contexts {
    fn observe(&self, event: &Event<'_>) -> Reaction {
        match event {
            Event::ExecFinished {
                session_id,
                command,
                started_ms,
                result,
                agent_id,
                ..
            } => {
                // The answer waits for room in the queue, not for the tokenizer.
                let mut jobs = vec![Self::record_job(session_id, command, *started_ms, result)];
                if let Some(agent) = agent_id {
                    let key = agent_key(*agent);
                    jobs.push(Self::record_job(&key, command, *started_ms, result));
                }
                let worker = self.worker.handle();
                Reaction::ack(async move {
                    for job in jobs {
                        if let Err(e) = worker.send(job).await {
                            tracing::error!("context not updated: {}", e.message);
                        }
                    }
                })
            }
            Event::SessionKilled { id: Some(id), .. } => self.forget(id.to_string()),
            Event::AgentLeft { agent } => self.forget(agent_key(*agent)),
            _ => Reaction::default(),
        }
    }
}
