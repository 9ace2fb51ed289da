//! `ai-session web`: makes sure the HTTP server runs, asks the daemon for a one-time login
//! code bound to this caller (the owner, or the principal of `$AI_SESSION_TOKEN`), and prints
//! the dashboard's login link; `--open` hands it to a browser.

use std::process::ExitCode;

use ai_session_client::Selector;
use ai_session_protocol::methods::{ServeParams, ServeResult};
use ai_session_protocol::registry::{DaemonServe, Method, WebLogin};
use ai_session_protocol::web::WebLoginResult;
use ai_session_protocol::{ErrorKind, RpcError};

use crate::commands::{connect, print_json};
use crate::error::CliError;

#[derive(clap::Args)]
pub(crate) struct WebArgs {
    /// Where the HTTP server listens if it is not running yet (as `serve --listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Open the link in a browser: $BROWSER, else xdg-open.
    #[arg(long)]
    open: bool,
    /// Print JSON with a stable shape.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn run(sel: &Selector, a: WebArgs) -> Result<ExitCode, CliError> {
    let client = connect(sel, true).await?;
    let serve = ServeParams {
        listen: a.listen,
        allow_remote: false,
        metrics_listen: None,
    };
    // A token without daemon:serve can still log in to a server the owner started.
    match client
        .call::<_, ServeResult>(DaemonServe::NAME, serve)
        .await
    {
        Ok(_) => {}
        Err(e) if e.rpc().and_then(RpcError::kind) == Some(ErrorKind::PermissionDenied) => {}
        Err(e) => return Err(e.into()),
    }
    let login: WebLoginResult = client.call(WebLogin::NAME, serde_json::json!({})).await?;
    if a.json {
        print_json(&login)?;
    } else {
        outln!("{}", login.login_url);
        errln!(
            "the dashboard is at {}; this link logs a browser in once, within {} s",
            login.url,
            login.expires_in_ms / 1000
        );
    }
    if a.open {
        open_browser(&login.login_url)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts `$BROWSER URL` (or `xdg-open URL`) without waiting for it.
fn open_browser(url: &str) -> Result<(), CliError> {
    let browser = std::env::var("BROWSER")
        .ok()
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "xdg-open".to_owned());
    std::process::Command::new(&browser)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| {
            crate::commands::usage(format!(
                "cannot start {browser}: {e}; open the link above by hand, or set $BROWSER"
            ))
        })
}
