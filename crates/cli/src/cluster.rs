//! The cluster from the command line: `ai-session nodes`, and which cluster `daemon run`
//! joins (`--cluster`, `--node`, `--creds`, else `[cluster]` in config.toml).

use std::process::ExitCode;

use ai_session_client::Selector;
use ai_session_daemon::ClusterJoin;
use ai_session_protocol::cluster::{NodeInfo, NodesResult};
use ai_session_protocol::config::Config;
use ai_session_protocol::registry::{ClusterNodes, Method as _};

use crate::commands::{connect, print_json};
use crate::error::CliError;

/// The cluster `daemon run` joins: `--cluster` and `--node` over the configuration file's
/// `[cluster]`; `None` when neither names a server (the daemon stays on its own).
pub(crate) fn join(
    sel: &Selector,
    url: Option<String>,
    node: Option<String>,
    creds: Option<std::path::PathBuf>,
) -> Result<Option<ClusterJoin>, String> {
    let config = Config::load(&sel.paths().home).map_err(|e| e.to_string())?;
    let mut config = config.cluster;
    let creds_given = creds.is_some();
    if let Some(creds) = creds {
        config.creds_file = Some(creds);
        config.nkey_file = None;
    }
    let Some(url) = url.or_else(|| config.url.clone()) else {
        if node.is_some() || creds_given {
            return Err(
                "--node and --creds need --cluster nats://HOST:PORT (or url in [cluster])".into(),
            );
        }
        return Ok(None);
    };
    config.check()?;
    let node = node
        .or_else(|| config.node.clone())
        .unwrap_or_else(ai_session_daemon::default_node_name);
    Ok(Some(ClusterJoin { config, url, node }))
}

/// `ai-session nodes [--json]`.
pub(crate) async fn nodes(sel: &Selector, json: bool) -> Result<ExitCode, CliError> {
    let client = connect(sel, true).await?;
    let result: NodesResult = client
        .call(ClusterNodes::NAME, serde_json::json!({}))
        .await?;
    if json {
        print_json(&result)?;
    } else {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        out!("{}", render(&result, now_ms));
    }
    Ok(ExitCode::SUCCESS)
}

fn render(result: &NodesResult, now_ms: u64) -> String {
    let mut out = format!(
        "{:<16} {:<20} {:>8} {:>6} {:>10}  SESSIONS\n",
        "NODE", "HOST", "PID", "LOAD", "HEARTBEAT"
    );
    for n in &result.nodes {
        out.push_str(&line(n, &result.node, now_ms));
    }
    for l in &result.lost {
        out.push_str(&crate::answer::describe_lost(l));
        out.push('\n');
    }
    out
}

fn line(n: &NodeInfo, this: &str, now_ms: u64) -> String {
    let name = if n.node == this {
        format!("{}*", n.node)
    } else {
        n.node.clone()
    };
    let age = now_ms.saturating_sub(n.heartbeat_ms) as f64 / 1000.0;
    format!(
        "{:<16} {:<20} {:>8} {:>6.2} {:>9.1}s  {}\n",
        name,
        n.host,
        n.pid,
        n.load,
        age,
        if n.sessions.is_empty() {
            "-".to_string()
        } else {
            n.sessions.join(" ")
        }
    )
}
