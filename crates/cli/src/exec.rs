//! `exec`: run a command in a session's shell, print its output (as it arrives on a terminal or
//! with `--stream`) and exit with its exit status.

use std::io::IsTerminal;
use std::process::ExitCode;

use ai_session_client::{Client, Selector};
use ai_session_protocol::methods::*;
use ai_session_protocol::registry::{self as reg, Method};

use crate::commands::print_json;
use crate::error::{CliError, TIMED_OUT, phrase};
use crate::stream::Sink;
use base64::Engine;
use serde::Deserialize;

/// After this long still reading standard input, say so: a caller may have left a pipe open.
const STDIN_NOTICE: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) async fn run(
    client: &Client,
    sel: &Selector,
    a: crate::ExecArgs,
) -> Result<ExitCode, CliError> {
    let terminal = std::io::stdout().is_terminal();
    // On a terminal the output shows as it comes unless another view was asked for.
    let stream = a.stream || (terminal && !a.json && a.view == crate::View::Full);
    // A compact or diagnostics view printed alone needs no output: the daemon leaves it out.
    let view_only =
        !a.json && !stream && matches!(a.view, crate::View::Compact | crate::View::Diagnostics);
    let params = ExecParams {
        target: a.target.clone(),
        command: a.command.join(" "),
        timeout_ms: crate::duration::ms(a.timeout),
        idle_timeout_ms: crate::duration::ms(a.idle_timeout),
        max_output_bytes: None,
        view_budget: a.budget,
        stdin_b64: input(a.stdin.as_deref(), a.no_stdin)
            .await?
            .map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes)),
        view_only,
    };
    let (mut answer, streamed) = if stream {
        let sink = if terminal {
            Sink::terminal()
        } else {
            Sink::Text(Vec::new())
        };
        crate::stream::exec(client, params, sink).await?
    } else {
        (client.call(reg::SessionExec::NAME, params).await?, false)
    };
    if let Some(hint) = answer["hint"].as_str() {
        answer["hint"] = phrase(hint, sel).into();
    }
    // The daemon adds `persisted: false` and why when the exec's record could not be saved.
    if answer["persisted"] == false {
        errln!(
            "warning: this exec was not saved: {}",
            answer["persist_error"]
                .as_str()
                .unwrap_or("no reason given")
        );
    }
    if a.json {
        let r = ExecResult::deserialize(&answer)
            .map_err(|e| CliError::Local(format!("unexpected exec result: {e}")))?;
        print_json(&answer)?;
        return Ok(status(&r));
    }
    // The answer is taken apart, not copied: its output may be megabytes.
    let r: ExecResult = serde_json::from_value(answer)
        .map_err(|e| CliError::Local(format!("unexpected exec result: {e}")))?;
    show(&r, a.view, stream, streamed);
    Ok(status(&r))
}

/// Prints the view asked for. In stream mode the output comes first (what the stream did not
/// print yet: all of it when the command finished before its start was seen), then a compact
/// view if one was asked for; output already streamed is not printed again.
fn show(r: &ExecResult, view: crate::View, stream: bool, streamed: bool) {
    let compact = r.compact.as_ref().and_then(|c| c["text"].as_str());
    let output = if streamed { "" } else { r.output.as_str() };
    // A view's text ends with its newline (the output's own, or its footer's).
    let nl = |t: &str| {
        if t.is_empty() || t.ends_with('\n') {
            ""
        } else {
            "\n"
        }
    };
    match (view, compact) {
        (crate::View::Diagnostics, _) => out!("{}", diagnostic_lines(r)),
        (crate::View::Compact, Some(text)) if !stream => out!("{text}{}", nl(text)),
        (crate::View::Compact | crate::View::Both, Some(text)) => {
            out!("{output}{}", nl(output));
            out!("--- compact view ---\n{text}{}", nl(text));
        }
        _ => out!("{output}"),
    }
    crate::out::flush();
    if let Some(hint) = &r.hint {
        errln!("[{}] {hint}", r.status.as_str());
    }
}

/// The exec's diagnostics, one `file:line:col: severity: message` line each.
fn diagnostic_lines(r: &ExecResult) -> String {
    r.parsed
        .clone()
        .and_then(|v| serde_json::from_value::<ai_session_output::Parsed>(v).ok())
        .map(|p| ai_session_output::diagnostics::render(&p))
        .unwrap_or_default()
}

/// The command's own status when it finished; 124 when it had not.
fn status(r: &ExecResult) -> ExitCode {
    match (r.status, r.exit_code) {
        (ExecStatus::Exited, Some(code)) => ExitCode::from((code & 0xff) as u8),
        (ExecStatus::Exited, None) => ExitCode::from(1),
        _ => ExitCode::from(TIMED_OUT),
    }
}

/// The command's standard input: `--stdin FILE`, else ai-session's own stdin when it is a pipe,
/// a socket or a file with something in it; `None` for a terminal, /dev/null, `--no-stdin` or an
/// empty input.
async fn input(
    file: Option<&std::path::Path>,
    no_stdin: bool,
) -> Result<Option<Vec<u8>>, CliError> {
    if let Some(path) = file {
        let read = std::fs::File::open(path).and_then(read_bounded);
        return match read {
            Ok(bytes) => check_size(bytes).map(Some),
            Err(e) => Err(CliError::Local(format!(
                "cannot read --stdin {}: {e}",
                path.display()
            ))),
        };
    }
    if no_stdin || !stdin_is_data()? {
        return Ok(None);
    }
    let mut reading = tokio::task::spawn_blocking(|| read_bounded(std::io::stdin().lock()));
    let bytes = tokio::select! {
        r = &mut reading => r,
        () = tokio::time::sleep(STDIN_NOTICE) => {
            errln!(
                "ai-session: reading standard input for the command until it ends (--no-stdin runs without it)"
            );
            reading.await
        }
    }
    .map_err(|e| CliError::Local(format!("reading standard input: {e}")))??;
    if bytes.is_empty() {
        return Ok(None);
    }
    check_size(bytes).map(Some)
}

/// True when stdin is a pipe, a socket or a regular file: data for the command. A terminal
/// or a device such as /dev/null is not.
fn stdin_is_data() -> Result<bool, CliError> {
    use rustix::fs::FileType;
    let stat = rustix::fs::fstat(rustix::stdio::stdin()).map_err(std::io::Error::from)?;
    Ok(matches!(
        FileType::from_raw_mode(stat.st_mode),
        FileType::Fifo | FileType::Socket | FileType::RegularFile
    ))
}

/// Reads at most one byte more than the limit, so an input too large is refused without
/// reading all of it.
fn read_bounded(r: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    r.take(MAX_EXEC_STDIN as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn check_size(bytes: Vec<u8>) -> Result<Vec<u8>, CliError> {
    if bytes.len() <= MAX_EXEC_STDIN {
        return Ok(bytes);
    }
    Err(CliError::Refused(
        ai_session_protocol::RpcError::new(
            ai_session_protocol::ErrorKind::TooLarge,
            format!("the command's standard input is over {MAX_EXEC_STDIN} bytes, the most an exec takes"),
        )
        .with_hint("write the data to a file and redirect the command's input from it (`COMMAND < FILE`)"),
    ))
}
