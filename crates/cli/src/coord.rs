//! `agent`, `bus` and `task`: the coordinator's agents, message bus and task distributor.
//!
//! An agent registered by a connection lives as long as that connection. `agent register` keeps
//! its connection open (printing the token, heartbeating, unregistering on Ctrl-C or SIGTERM);
//! `agent register --keep` returns at once and the agent stays until it unregisters or goes a
//! heartbeat deadline without making a call.

use crate::duration::{Millis, ms};
use ai_session_protocol::registry::{self as reg, Method};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use ai_session_protocol::coord::{self as c, *};
use ai_session_protocol::{ErrorKind, RpcError};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::commands::{print_json, usage};
use crate::error::CliError;
use ai_session_client::{Client, Selector};

/// The environment variable holding an agent's token when `--token` is not given.
pub const TOKEN_ENV: &str = "AI_SESSION_AGENT_TOKEN";

#[derive(Subcommand)]
pub enum CoordCommand {
    /// Register, list and unregister agents.
    Agent {
        #[command(subcommand)]
        action: AgentAction,
    },
    /// The message bus: topics, direct messages, request/reply, dead letters.
    Bus {
        #[command(subcommand)]
        action: BusAction,
    },
    /// Tasks: submit a DAG of work, claim it as an agent, report the outcome.
    Task {
        #[command(subcommand)]
        action: TaskAction,
    },
}

/// Who is acting: the agent's token (`--token` or `$AI_SESSION_AGENT_TOKEN`), and optionally its
/// name, which must then be the token's agent.
#[derive(Args)]
pub struct AgentAuthArgs {
    /// The agent's name (or id); must be the token's agent.
    #[arg(long, value_name = "NAME")]
    agent: Option<String>,
    /// The token `agent register` printed (default: $AI_SESSION_AGENT_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

impl AgentAuthArgs {
    fn resolve(self) -> Result<AgentToken, CliError> {
        let token = match self.token {
            Some(t) => t,
            None => std::env::var(TOKEN_ENV).map_err(|_| {
                CliError::Refused(
                    RpcError::new(ErrorKind::InvalidParams, "no agent token given")
                        .with_hint(format!("pass --token TOKEN or set {TOKEN_ENV} to the token `ai-session agent register` printed")),
                )
            })?,
        };
        Ok(AgentToken {
            token,
            agent: self.agent,
        })
    }
}

#[derive(Subcommand)]
pub enum AgentAction {
    /// Register an agent and print its token. Without --keep, the agent lives while this command
    /// runs (Ctrl-C unregisters it); with --keep it stays after the command returns.
    Register {
        name: String,
        /// A capability (repeatable); tasks go to agents having all they need.
        #[arg(long = "capability", value_name = "CAP")]
        capabilities: Vec<String>,
        /// The terminal session this agent works in.
        #[arg(long, value_name = "SESSION")]
        session: Option<String>,
        /// Tasks the agent may hold at once (default 1).
        #[arg(long, value_name = "N")]
        max_tasks: Option<usize>,
        /// Return at once; the agent stays until `agent unregister` or until it makes no call for
        /// a heartbeat deadline (30 s; `agent heartbeat` and every call made with its token count).
        #[arg(long)]
        keep: bool,
        #[arg(long)]
        json: bool,
    },
    /// List active and recently departed agents.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Prove the agent is alive (pushes its heartbeat deadline back).
    Heartbeat(AgentAuthArgs),
    /// Unregister the agent; its tasks go back to the queue.
    Unregister(AgentAuthArgs),
}

#[derive(Subcommand)]
pub enum BusAction {
    /// Publish MESSAGE (JSON, or else a string) on TOPIC; every subscriber gets a copy.
    Publish {
        topic: String,
        message: String,
        /// Sign the message as this agent.
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print every message published on TOPIC until interrupted (`$system`: coordinator events).
    Subscribe {
        topic: String,
        /// Exit after N messages.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// One JSON message object per line instead of the payload.
        #[arg(long)]
        json: bool,
    },
    /// Send MESSAGE to an agent's inbox.
    Send {
        agent: String,
        message: String,
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Send MESSAGE to every registered agent's inbox.
    Broadcast {
        message: String,
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Send a request to an agent and print its reply's payload.
    Request {
        agent: String,
        message: String,
        /// How long to wait for the reply (500ms, 30s, 2m; a bare number is seconds; default
        /// 30s).
        #[arg(long, value_name = "DURATION", value_parser = crate::duration::secs_flag)]
        timeout: Option<Millis>,
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
        /// Print the whole reply message.
        #[arg(long)]
        json: bool,
    },
    /// Answer a request (by its correlation id) as the agent it was sent to.
    Reply {
        correlation: u64,
        message: String,
        #[command(flatten)]
        auth: AgentAuthArgs,
    },
    /// Print the agent's inbox (direct messages, broadcasts, requests) until interrupted.
    Inbox {
        #[command(flatten)]
        auth: AgentAuthArgs,
        /// Exit after N messages.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Topics with subscribers.
    Topics {
        #[arg(long)]
        json: bool,
    },
    /// Messages and tasks that could not be delivered or ran out of retries.
    DeadLetters {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum TaskAction {
    /// Submit a task; prints its id.
    Submit {
        description: String,
        /// A capability the agent must have (repeatable).
        #[arg(long, value_name = "CAP")]
        needs: Vec<String>,
        /// Higher runs first (default 0).
        #[arg(long, value_name = "N", allow_hyphen_values = true)]
        priority: Option<i32>,
        /// A task that must be done first (repeatable).
        #[arg(long, value_name = "ID")]
        after: Vec<String>,
        /// How long one attempt may take before it counts as failed (30s, 10m; a bare number is
        /// seconds).
        #[arg(long, value_name = "DURATION", value_parser = crate::duration::secs_flag)]
        timeout: Option<Millis>,
        /// Retries after the first failure before the task is dead-lettered (default 3).
        #[arg(long, value_name = "N")]
        max_retries: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Claim the agent's next assigned task; prints its id and description. Exits 3 when
    /// nothing is assigned (after --wait, if given).
    Claim {
        #[command(flatten)]
        auth: AgentAuthArgs,
        /// Wait up to DURATION for a task (500ms, 30s; a bare number is seconds).
        #[arg(long, value_name = "DURATION", value_parser = crate::duration::secs_flag)]
        wait: Option<Millis>,
        #[arg(long)]
        json: bool,
    },
    /// Report a claimed task as done.
    Done {
        id: String,
        /// The result, as JSON (or else a string).
        #[arg(long, value_name = "JSON")]
        result: Option<String>,
        #[command(flatten)]
        auth: AgentAuthArgs,
        #[arg(long)]
        json: bool,
    },
    /// Report a claimed task as failed; it is retried with backoff, then dead-lettered.
    Fail {
        id: String,
        #[arg(long, value_name = "TEXT")]
        reason: String,
        #[command(flatten)]
        auth: AgentAuthArgs,
        #[arg(long)]
        json: bool,
    },
    /// List tasks.
    Ls {
        /// Only tasks in this state (queued, assigned, running, done, failed, dead_lettered).
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one task as JSON.
    Show { id: String },
}

/// MESSAGE arguments: JSON when they parse as JSON, else the text as a JSON string.
pub fn message_arg(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// Task ids as printed (`task-3`) or bare (`3`).
fn task_id(s: &str) -> Result<u64, CliError> {
    s.trim_start_matches("task-")
        .parse()
        .map_err(|_| usage(format!("invalid task id '{s}': give a number such as 3")))
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn id_of(v: &Value) -> String {
    v.as_u64().map_or_else(|| v.to_string(), |n| n.to_string())
}

pub async fn run(sel: &Selector, command: CoordCommand) -> Result<ExitCode, CliError> {
    let client = crate::commands::connect(sel, true).await?;
    match command {
        CoordCommand::Agent { action } => agent(&client, action).await,
        CoordCommand::Bus { action } => bus(&client, action).await,
        CoordCommand::Task { action } => task(&client, action).await,
    }
}

async fn agent(client: &Client, action: AgentAction) -> Result<ExitCode, CliError> {
    match action {
        AgentAction::Register {
            name,
            capabilities,
            session,
            max_tasks,
            keep,
            json,
        } => {
            // Listen for Ctrl-C and SIGTERM before the token is out, so a signal sent as soon as
            // it is read still unregisters the agent.
            let signals = if keep { None } else { Some(Signals::new()?) };
            let params = RegisterParams {
                name,
                capabilities,
                session,
                max_tasks,
                keep,
            };
            let r: RegisterResult = client.call(reg::AgentRegister::NAME, params).await?;
            if json {
                print_json(&r)?;
            } else {
                outln!("{}", r.token);
            }
            std::io::stdout().flush()?;
            if let Some(signals) = signals {
                return hold(client, &r, signals).await;
            }
        }
        AgentAction::Ls { json } => {
            let r: AgentListResult = client.call(reg::AgentList::NAME, Value::Null).await?;
            if json {
                print_json(&r)?;
            } else {
                for a in &r.agents {
                    outln!("{}", describe_agent(&as_json(a)));
                }
            }
        }
        AgentAction::Heartbeat(auth) => {
            let _: Value = client
                .call(reg::AgentHeartbeat::NAME, auth.resolve()?)
                .await?;
        }
        AgentAction::Unregister(auth) => {
            let _: Value = client
                .call(reg::AgentUnregister::NAME, auth.resolve()?)
                .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Keeps a connection-bound agent alive: heartbeats at a third of the deadline, and
/// unregisters on Ctrl-C or SIGTERM.
async fn hold(
    client: &Client,
    r: &RegisterResult,
    mut signals: Signals,
) -> Result<ExitCode, CliError> {
    let every = Duration::from_millis((r.heartbeat_deadline_ms / 3).max(100));
    let auth = AgentToken {
        token: r.token.clone(),
        agent: None,
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {
                let _: Value = client.call(reg::AgentHeartbeat::NAME, &auth).await?;
            }
            _ = signals.term.recv() => break,
            _ = signals.int.recv() => break,
        }
    }
    let _: Value = client.call(reg::AgentUnregister::NAME, &auth).await?;
    Ok(ExitCode::SUCCESS)
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

fn describe_agent(a: &Value) -> String {
    let caps: Vec<&str> = a["capabilities"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut status = a["status"].as_str().unwrap_or("?").to_string();
    if let Some(reason) = a["reason"].as_str() {
        status = format!("{status} ({reason})");
    }
    let session = a["session"]
        .as_str()
        .map(|s| format!(" session {s}"))
        .unwrap_or_default();
    format!(
        "{} (agent-{}): {status}, load {}/{}, capabilities [{}]{session}",
        a["name"].as_str().unwrap_or("?"),
        id_of(&a["id"]),
        a["load"],
        a["max_tasks"],
        caps.join(", ")
    )
}

async fn stream(
    client: &Client,
    subscription: u64,
    count: Option<u64>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let mut seen = 0u64;
    if count == Some(0) {
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    while let Some(n) = client.notification().await {
        if n.params["subscription"].as_u64() != Some(subscription) {
            continue;
        }
        if n.method == c::NOTIFY_STREAM_CLOSED {
            errln!(
                "[stream closed: {}]",
                n.params["reason"].as_str().unwrap_or("")
            );
            return Ok(ExitCode::from(1));
        }
        let message = &n.params["message"];
        if json {
            writeln!(out, "{message}")?;
        } else if message["kind"] == "request" {
            writeln!(
                out,
                "request {}: {}",
                id_of(&message["correlation_id"]),
                compact(&message["payload"])
            )?;
        } else {
            writeln!(out, "{}", compact(&message["payload"]))?;
        }
        out.flush()?;
        seen += 1;
        if count.is_some_and(|c| seen >= c) {
            return Ok(ExitCode::SUCCESS);
        }
    }
    Err(ai_session_client::Error::Closed.into())
}

async fn bus(client: &Client, action: BusAction) -> Result<ExitCode, CliError> {
    match action {
        BusAction::Publish {
            topic,
            message,
            token,
            json,
        } => {
            let params = PublishParams {
                topic,
                message: Some(message_arg(&message)),
                messages: None,
                token: token.or_else(|| std::env::var(TOKEN_ENV).ok()),
            };
            let r: DeliveryResult = client.call(reg::BusPublish::NAME, params).await?;
            if json {
                print_json(&r)?;
            }
        }
        BusAction::Subscribe { topic, count, json } => {
            let r: SubscribeResult = client
                .call(reg::BusSubscribe::NAME, SubscribeParams { topic })
                .await?;
            return stream(client, r.subscription, count, json).await;
        }
        BusAction::Broadcast {
            message,
            token,
            json,
        } => {
            let params = c::BroadcastParams {
                message: message_arg(&message),
                token: token.or_else(|| std::env::var(TOKEN_ENV).ok()),
            };
            let r: DeliveryResult = client.call(reg::BusBroadcast::NAME, params).await?;
            if json {
                print_json(&r)?;
            }
        }
        BusAction::Send {
            agent,
            message,
            token,
            json,
        } => {
            let params = c::SendParams {
                to: agent,
                message: message_arg(&message),
                token: token.or_else(|| std::env::var(TOKEN_ENV).ok()),
            };
            let r: DeliveryResult = client.call(reg::BusSend::NAME, params).await?;
            if json {
                print_json(&r)?;
            }
        }
        BusAction::Request {
            agent,
            message,
            timeout,
            token,
            json,
        } => {
            let params = RequestParams {
                to: agent,
                message: message_arg(&message),
                timeout_ms: ms(timeout),
                token: token.or_else(|| std::env::var(TOKEN_ENV).ok()),
            };
            let r: RequestResult = client.call(reg::BusRequest::NAME, params).await?;
            if json {
                print_json(&r.reply)?;
            } else {
                outln!("{}", compact(&r.reply.payload));
            }
        }
        BusAction::Reply {
            correlation,
            message,
            auth,
        } => {
            let params = ReplyParams {
                auth: auth.resolve()?,
                correlation,
                message: message_arg(&message),
            };
            let _: Value = client.call(reg::BusReply::NAME, params).await?;
        }
        BusAction::Inbox { auth, count, json } => {
            let r: SubscribeResult = client.call(reg::BusInbox::NAME, auth.resolve()?).await?;
            return stream(client, r.subscription, count, json).await;
        }
        BusAction::Topics { json } => {
            let r: TopicsResult = client.call(reg::BusTopics::NAME, Value::Null).await?;
            if json {
                print_json(&r)?;
            } else {
                for t in &r.topics {
                    outln!("{}: {} subscriber(s)", t.topic, t.subscribers);
                }
                for n in &r.unanswered {
                    errln!(
                        "ai-session: node {:?} did not answer, its subscribers are not counted: {}",
                        n.node,
                        n.reason
                    );
                }
            }
        }
        BusAction::DeadLetters { json } => {
            let r: DeadLettersResult = client.call(reg::BusDeadLetters::NAME, Value::Null).await?;
            if json {
                print_json(&r)?;
            } else {
                // In a cluster, every node's (this one's included), each with its node.
                let letters: Vec<(Option<&str>, &DeadLetterInfo)> = match &r.cluster {
                    Some(all) => all
                        .iter()
                        .map(|n| (Some(n.node.as_str()), &n.letter))
                        .collect(),
                    None => r.dead_letters.iter().map(|d| (None, d)).collect(),
                };
                for (node, d) in letters {
                    let what = match d.kind.as_str() {
                        "task" => format!(
                            "task-{} {:?}",
                            id_of(&d.item["id"]),
                            d.item["description"].as_str().unwrap_or("")
                        ),
                        _ => format!("message {}", compact(&d.item["payload"])),
                    };
                    let to = d
                        .recipient
                        .as_deref()
                        .map(|r| format!(" for {r}"))
                        .unwrap_or_default();
                    let on = node.map(|n| format!(" on node {n}")).unwrap_or_default();
                    outln!("#{}{on} {}{to}: {what}", d.seq, d.reason);
                }
                errln!(
                    "[{} queued, {} total, {} discarded]",
                    r.stats.queued,
                    r.stats.total,
                    r.stats.discarded
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A wire object as JSON, for the formatting helpers below.
fn as_json(v: &impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn describe_task(t: &Value) -> String {
    let needs: Vec<&str> = t["needs"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let agent = t["agent"]
        .as_u64()
        .map(|a| format!(" agent-{a}"))
        .unwrap_or_default();
    format!(
        "task-{} {} p{} [{}]{agent}: {}",
        id_of(&t["id"]),
        t["state"].as_str().unwrap_or("?"),
        t["priority"],
        needs.join(", "),
        t["description"].as_str().unwrap_or("")
    )
}

async fn task(client: &Client, action: TaskAction) -> Result<ExitCode, CliError> {
    match action {
        TaskAction::Submit {
            description,
            needs,
            priority,
            after,
            timeout,
            max_retries,
            json,
        } => {
            let params = SubmitParams {
                description,
                needs,
                priority,
                after: after.iter().map(|a| task_id(a)).collect::<Result<_, _>>()?,
                timeout_ms: ms(timeout),
                max_retries,
            };
            let r: SubmitResult = client.call(reg::TaskSubmit::NAME, params).await?;
            if json {
                print_json(&r.task)?;
            } else {
                outln!("{}", r.id);
            }
        }
        TaskAction::Claim { auth, wait, json } => {
            let params = ClaimParams {
                auth: auth.resolve()?,
                wait_ms: ms(wait),
            };
            let r: ClaimResult = client.call(reg::TaskClaim::NAME, params).await?;
            match r.task {
                Some(t) if json => print_json(&t)?,
                Some(t) => outln!("{}\t{}", t.id, t.description),
                None => {
                    if json {
                        outln!("null");
                    }
                    errln!("no task is assigned to this agent");
                    return Ok(ExitCode::from(3));
                }
            }
        }
        TaskAction::Done {
            id,
            result,
            auth,
            json,
        } => {
            let params = DoneParams {
                auth: auth.resolve()?,
                id: task_id(&id)?,
                result: result.as_deref().map(message_arg).unwrap_or(Value::Null),
            };
            let r: TaskResult = client.call(reg::TaskDone::NAME, params).await?;
            if json {
                print_json(&r.task)?;
            }
        }
        TaskAction::Fail {
            id,
            reason,
            auth,
            json,
        } => {
            let params = FailParams {
                auth: auth.resolve()?,
                id: task_id(&id)?,
                reason,
            };
            let r: TaskResult = client.call(reg::TaskFail::NAME, params).await?;
            if json {
                print_json(&r.task)?;
            } else {
                outln!("{}", r.task.state);
            }
        }
        TaskAction::Ls { state, json } => {
            let r: TaskListResult = client
                .call(reg::TaskList::NAME, TaskListParams { state })
                .await?;
            if json {
                print_json(&r)?;
            } else {
                for t in &r.tasks {
                    outln!("{}", describe_task(&as_json(t)));
                }
            }
        }
        TaskAction::Show { id } => {
            let r: TaskResult = client
                .call(reg::TaskShow::NAME, TaskShowParams { id: task_id(&id)? })
                .await?;
            print_json(&r.task)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
