//! `attach`: this terminal becomes the session's terminal until Ctrl-\ detaches it.

use ai_session_protocol::registry::{self as reg, Method};
use std::io::Write;
use std::process::ExitCode;

use ai_session_protocol::methods::{self as m, *};
use ai_session_protocol::{ErrorKind, RpcError};
use base64::Engine;
use rustix::termios::{self, OptionalActions, Termios};
use tokio::io::AsyncReadExt;

use crate::error::CliError;
use ai_session_client::Client;

/// Ctrl-\ : the byte that detaches.
const DETACH: u8 = 0x1c;

/// Puts the terminal in raw mode and restores it when dropped, whatever way attach ends.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> std::io::Result<Self> {
        let stdin = rustix::stdio::stdin();
        let saved = termios::tcgetattr(stdin)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin, OptionalActions::Flush, &raw)?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Err(e) =
            termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Flush, &self.saved)
        {
            errln!("warning: cannot restore the terminal: {e}");
        }
    }
}

fn terminal_size() -> Option<Size> {
    let ws = termios::tcgetwinsize(rustix::stdio::stdout()).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then_some(Size {
        cols: ws.ws_col,
        rows: ws.ws_row,
    })
}

/// Attaches to `target`. Clipboard writes (OSC 52) from the session reach the terminal only
/// with `allow_clipboard`; terminal queries never do (see `guard`).
pub async fn run(
    client: &Client,
    target: &str,
    allow_clipboard: bool,
) -> Result<ExitCode, CliError> {
    if !termios::isatty(rustix::stdio::stdin()) {
        return Err(CliError::Refused(
            RpcError::new(ErrorKind::Unsupported, "attach needs a terminal on stdin")
                .with_hint("programs should use `exec`, `send`, `read` and `capture` instead"),
        ));
    }
    if let Some(size) = terminal_size() {
        let _: serde_json::Value = client
            .call(
                reg::SessionResize::NAME,
                ResizeParams {
                    target: target.into(),
                    size,
                },
            )
            .await?;
    }
    let sub: SubscribeResult = client
        .call(
            reg::SessionSubscribe::NAME,
            Target {
                target: target.into(),
            },
        )
        .await?;
    let raw = RawMode::enter()?;
    let mut out = std::io::stdout();
    out.write_all(sub.screen_ansi.as_bytes())?;
    out.flush()?;
    let mut guard = crate::guard::OutputGuard::new(allow_clipboard);
    let outcome = pump(client, target, &mut out, &mut guard).await;
    drop(raw);
    match outcome? {
        Some(code) => {
            outln!(
                "\r\n[session {target} exited{}]",
                code.map(|c| format!(" with code {c}")).unwrap_or_default()
            );
        }
        None => outln!("\r\n[detached from {target}]"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Copies output to the terminal and keystrokes to the session. Returns `Some(exit code)` when
/// the session closed, `None` on detach.
async fn pump(
    client: &Client,
    target: &str,
    out: &mut std::io::Stdout,
    guard: &mut crate::guard::OutputGuard,
) -> Result<Option<Option<i32>>, CliError> {
    let mut shown = Vec::with_capacity(4096);
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 4096];
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    loop {
        tokio::select! {
            n = client.notification() => {
                let Some(n) = n else { return Ok(Some(None)) };
                if n.method == m::NOTIFY_CLOSED {
                    let closed: Option<ClosedEvent> = serde_json::from_value(n.params).ok();
                    return Ok(Some(closed.and_then(|c| c.exit_code)));
                }
                if let Ok(ev) = serde_json::from_value::<OutputEvent>(n.params) {
                    if let Ok(data) = b64.decode(ev.data_b64) {
                        shown.clear();
                        guard.filter(&data, &mut shown);
                        out.write_all(&shown)?;
                        out.flush()?;
                    }
                }
            }
            read = stdin.read(&mut buf) => {
                let n = read?;
                if n == 0 {
                    return Ok(None);
                }
                let input = &buf[..n];
                let (send, detach) = match input.iter().position(|b| *b == DETACH) {
                    Some(i) => (&input[..i], true),
                    None => (input, false),
                };
                if !send.is_empty() {
                    let params = WriteParams { target: target.into(), data_b64: b64.encode(send) };
                    let _: SendResult = client.call(reg::SessionWrite::NAME, params).await?;
                }
                if detach {
                    return Ok(None);
                }
            }
            _ = winch.recv() => {
                if let Some(size) = terminal_size() {
                    let _: serde_json::Value = client.call(reg::SessionResize::NAME, ResizeParams { target: target.into(), size }).await?;
                }
            }
        }
    }
}
