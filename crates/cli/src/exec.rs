//! `exec`: run a command in a session's shell, print its output (as it arrives on a terminal or
//! with `--stream`) and exit with its exit status. What it sends and prints is in `answer`,
//! shared with the small client (`src/thin`), which runs `exec` itself unless it streams.

use std::io::IsTerminal;
use std::process::ExitCode;

use ai_session_client::{Client, Selector};
use ai_session_protocol::registry::{self as reg, Method};

use crate::answer::{self, check_size, read_bounded, stdin_is_data};
use crate::error::CliError;
use crate::stream::Sink;

/// After this long still reading standard input, say so: a caller may have left a pipe open.
const STDIN_NOTICE: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) async fn run(
    client: &Client,
    sel: &Selector,
    a: crate::ExecArgs,
) -> Result<ExitCode, CliError> {
    let terminal = std::io::stdout().is_terminal();
    let stream = answer::streams(&a, terminal);
    let params = answer::exec_params(&a, stream, input(a.stdin.as_deref(), a.no_stdin).await?);
    let (reply, streamed) = if stream {
        let sink = if terminal {
            Sink::terminal()
        } else {
            Sink::Text(Vec::new())
        };
        crate::stream::exec(client, params, sink).await?
    } else {
        (client.call(reg::SessionExec::NAME, params).await?, false)
    };
    answer::exec_answer(reply, &a, sel, stream, streamed)
}

/// The command's standard input: `--stdin FILE`, else ai-session's own stdin when it is a pipe,
/// a socket or a file with something in it; `None` for a terminal, /dev/null, `--no-stdin` or an
/// empty input.
async fn input(
    file: Option<&std::path::Path>,
    no_stdin: bool,
) -> Result<Option<Vec<u8>>, CliError> {
    if let Some(path) = file {
        return answer::stdin_file(path).map(Some);
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
