//! `ai-session alerts`: the anomalies the daemon detected (`alerts.list`), newest last.

use std::process::ExitCode;

use ai_session_client::Selector;
use ai_session_protocol::alerts::{AlertInfo, AlertsParams, AlertsResult};
use ai_session_protocol::registry::{AlertsList, Method as _};
use clap::Args;

use crate::commands::{connect, print_json};
use crate::error::CliError;

#[derive(Args)]
pub(crate) struct AlertsArgs {
    /// Only this rule's (retry_loop, slow_exec, error_rate, output_flood, denial_burst,
    /// token_spike, input_wait).
    #[arg(long)]
    rule: Option<String>,
    /// Only alerts with an id above this one (to follow new ones).
    #[arg(long, value_name = "ID")]
    after: Option<u64>,
    /// At most this many, the newest.
    #[arg(long, default_value_t = 100)]
    limit: usize,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(sel: &Selector, a: AlertsArgs) -> Result<ExitCode, CliError> {
    let client = connect(sel, true).await?;
    let params = AlertsParams {
        after: a.after,
        rule: a.rule,
        limit: Some(a.limit),
    };
    let r: AlertsResult = client.call(AlertsList::NAME, params).await?;
    if a.json {
        print_json(&r)?;
    } else if r.alerts.is_empty() {
        outln!("no alerts ({} raised since the daemon started)", r.total);
    } else {
        for alert in &r.alerts {
            outln!("{}", line(alert));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn line(a: &AlertInfo) -> String {
    let mut where_ = Vec::new();
    if let Some(s) = &a.session {
        where_.push(format!("session {s}"));
    }
    if let Some(c) = &a.caller {
        where_.push(format!("by {c}"));
    }
    if let Some(c) = &a.command {
        where_.push(format!("`{c}`"));
    }
    format!(
        "#{} {} risk {} [{}]: {}",
        a.id,
        a.rule,
        a.risk,
        where_.join(", "),
        a.message
    )
}
