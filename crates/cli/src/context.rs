//! `ai-session context`: the budgeted context of a session, messages added to it, entries
//! fetched back, tasks, and the context's configuration.

use ai_session_protocol::registry::{self as reg, Method};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::commands::print_json;
use crate::error::CliError;
use ai_session_client::Client;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ContextArgs {
    #[command(subcommand)]
    action: Option<ContextAction>,
    /// The session.
    #[arg(short = 't', value_name = "NAME")]
    target: Option<String>,
    /// Most tokens the context may take (default 4000).
    #[arg(long, value_name = "TOKENS")]
    budget: Option<u64>,
    /// Scope to a task (its entries, then its parents' relevant ones).
    #[arg(long, value_name = "ID")]
    task: Option<String>,
    /// Print JSON with a stable shape (the structured view; `text` is the rendered form).
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum ContextAction {
    /// Add a message to the session's history: what the user asked, what the agent decided.
    Add {
        #[arg(short = 't', value_name = "NAME")]
        target: String,
        /// user, assistant or note.
        #[arg(long, value_name = "ROLE")]
        role: String,
        /// The task the message belongs to (default: the active task).
        #[arg(long, value_name = "ID")]
        task: Option<String>,
        /// The text.
        #[arg(required = true, num_args = 1.., value_name = "TEXT")]
        text: Vec<String>,
    },
    /// Print one entry in full, wherever it is (live or compressed in the archive).
    Show {
        #[arg(short = 't', value_name = "NAME")]
        target: String,
        #[arg(value_name = "ID")]
        id: u64,
        /// Print JSON with a stable shape.
        #[arg(long)]
        json: bool,
    },
    /// Create or update a task (a sub-task inherits its parent's relevant context).
    Task {
        #[arg(short = 't', value_name = "NAME")]
        target: String,
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long, value_name = "ID")]
        parent: Option<String>,
        #[arg(long, value_name = "TEXT")]
        title: Option<String>,
        /// New commands and messages go to this task from now on.
        #[arg(long)]
        activate: bool,
    },
    /// Show or change the context's limits: when history passes threshold x max-tokens,
    /// older entries are folded into the summary and archived.
    Config {
        #[arg(short = 't', value_name = "NAME")]
        target: String,
        #[arg(long, value_name = "TOKENS")]
        max_tokens: Option<u64>,
        /// A fraction of max-tokens, e.g. 0.8.
        #[arg(long, value_name = "FRACTION")]
        threshold: Option<f64>,
        /// Most recent entries always kept in full.
        #[arg(long, value_name = "N")]
        window: Option<u64>,
        /// Print JSON with a stable shape.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(client: &Client, a: ContextArgs) -> Result<(), CliError> {
    match a.action {
        None => {
            let target = a.target.ok_or_else(|| {
                crate::commands::usage("name the session: ai-session context -t NAME".into())
            })?;
            let mut params = json!({ "target": target });
            if let Some(b) = a.budget {
                params["budget"] = json!(b);
            }
            if let Some(t) = a.task {
                params["task"] = json!(t);
            }
            let view: Value = client.call(reg::ContextGet::NAME, params).await?;
            if a.json {
                print_json(&view)?;
            } else {
                out!("{}", view["text"].as_str().unwrap_or_default());
            }
        }
        Some(ContextAction::Add {
            target,
            role,
            task,
            text,
        }) => {
            let mut params = json!({ "target": target, "role": role, "text": text.join(" ") });
            if let Some(t) = task {
                params["task"] = json!(t);
            }
            let r: Value = client.call(reg::ContextAdd::NAME, params).await?;
            outln!("{}", r["id"]);
        }
        Some(ContextAction::Show { target, id, json }) => {
            let entry: Value = client
                .call(
                    reg::ContextShow::NAME,
                    json!({ "target": target, "id": id }),
                )
                .await?;
            if json {
                print_json(&entry)?;
            } else {
                print_entry(&entry);
            }
        }
        Some(ContextAction::Task {
            target,
            id,
            parent,
            title,
            activate,
        }) => {
            let _: Value = client
                .call(
                    reg::ContextTask::NAME,
                    json!({ "target": target, "id": id, "parent": parent, "title": title, "activate": activate }),
                )
                .await?;
        }
        Some(ContextAction::Config {
            target,
            max_tokens,
            threshold,
            window,
            json,
        }) => {
            let mut params = json!({ "target": target });
            if let Some(n) = max_tokens {
                params["max_tokens"] = json!(n);
            }
            if let Some(t) = threshold {
                params["compression_threshold"] = json!(t);
            }
            if let Some(w) = window {
                params["window_entries"] = json!(w);
            }
            let r: Value = client.call(reg::ContextConfig::NAME, params).await?;
            if json {
                print_json(&r)?;
            } else {
                let c = &r["config"];
                outln!(
                    "max_tokens {} compression_threshold {} window_entries {}",
                    c["max_tokens"],
                    c["compression_threshold"],
                    c["window_entries"]
                );
            }
        }
    }
    Ok(())
}

/// An entry as text: a command with its exit code and output, or a message.
fn print_entry(e: &Value) {
    let body = &e["body"];
    let text = |k: &str| body[k].as_str().unwrap_or_default().to_string();
    match body["kind"].as_str() {
        Some("command") => {
            outln!(
                "#{} $ {}  (exit {}, in {})",
                e["seq"],
                text("command"),
                body["exit_code"],
                text("cwd")
            );
            out!("{}", text("output"));
        }
        Some("message") => outln!("#{} {}: {}", e["seq"], text("role"), text("text")),
        _ => outln!("{e}"),
    }
}
