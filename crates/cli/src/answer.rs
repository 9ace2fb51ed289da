//! What `exec`, `new` and `ls` send and what they print of the answer: one definition, compiled into
//! both binaries (the whole command line, `src/main.rs`, and the small client,
//! `src/thin/main.rs`), so a command prints the same bytes and exits with the same status
//! whichever binary ran it. Nothing here waits on a runtime.

use std::collections::BTreeMap;
use std::process::ExitCode;

use ai_session_client::Selector;
use ai_session_protocol::cluster::LostSession;
use ai_session_protocol::methods::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::args::{ExecArgs, NewArgs, View};
use crate::error::{CliError, TIMED_OUT, phrase};

/// Prints `value` as pretty JSON with a newline.
pub(crate) fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Local(e.to_string()))?;
    outln!("{text}");
    Ok(())
}

/// A bad argument found by the CLI, in the daemon's words.
pub(crate) fn usage(msg: String) -> CliError {
    CliError::Refused(ai_session_protocol::RpcError::new(
        ai_session_protocol::ErrorKind::InvalidParams,
        msg,
    ))
}

/// Whether `exec` prints the output as it arrives: asked for, or the default on a terminal
/// when no other view was asked for.
pub(crate) fn streams(a: &ExecArgs, terminal: bool) -> bool {
    a.stream || (terminal && !a.json && a.view == View::Full)
}

/// `session.exec`'s params for `a`, with the command's standard input if it has one.
pub(crate) fn exec_params(a: &ExecArgs, stream: bool, stdin: Option<Vec<u8>>) -> ExecParams {
    use base64::Engine;
    // A compact or diagnostics view printed alone needs no output: the daemon leaves it out.
    let view_only = !a.json && !stream && matches!(a.view, View::Compact | View::Diagnostics);
    ExecParams {
        target: a.target.clone(),
        command: a.command.join(" "),
        timeout_ms: crate::duration::ms(a.timeout),
        idle_timeout_ms: crate::duration::ms(a.idle_timeout),
        max_output_bytes: None,
        view_budget: a.budget,
        stdin_b64: stdin.map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes)),
        view_only,
    }
}

/// Prints an exec's answer as `a` asks and gives the exit status: the command's own, or 124
/// when it had not finished. `streamed`: the output was already printed as it came.
pub(crate) fn exec_answer(
    mut answer: Value,
    a: &ExecArgs,
    sel: &Selector,
    stream: bool,
    streamed: bool,
) -> Result<ExitCode, CliError> {
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
fn show(r: &ExecResult, view: View, stream: bool, streamed: bool) {
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
        (View::Diagnostics, _) => out!("{}", diagnostic_lines(r)),
        (View::Compact, Some(text)) if !stream => out!("{text}{}", nl(text)),
        (View::Compact | View::Both, Some(text)) => {
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

/// True when stdin is a pipe, a socket or a regular file: data for the command. A terminal
/// or a device such as /dev/null is not.
pub(crate) fn stdin_is_data() -> Result<bool, CliError> {
    use rustix::fs::FileType;
    let stat = rustix::fs::fstat(rustix::stdio::stdin()).map_err(std::io::Error::from)?;
    Ok(matches!(
        FileType::from_raw_mode(stat.st_mode),
        FileType::Fifo | FileType::Socket | FileType::RegularFile
    ))
}

/// Reads at most one byte more than the limit, so an input too large is refused without
/// reading all of it.
pub(crate) fn read_bounded(r: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    r.take(MAX_EXEC_STDIN as u64 + 1).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `bytes`, unless there are more than an exec takes.
pub(crate) fn check_size(bytes: Vec<u8>) -> Result<Vec<u8>, CliError> {
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

/// `--stdin FILE`'s bytes.
pub(crate) fn stdin_file(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    match std::fs::File::open(path).and_then(read_bounded) {
        Ok(bytes) => check_size(bytes),
        Err(e) => Err(CliError::Local(format!(
            "cannot read --stdin {}: {e}",
            path.display()
        ))),
    }
}

/// The text of a `--policy` argument (a file or a built-in profile).
pub(crate) type PolicyText = fn(&str) -> Result<String, CliError>;

/// `session.new`'s params for `a`, reading its `--policy` with `policy_text`.
pub(crate) fn new_params(a: NewArgs, policy_text: PolicyText) -> Result<Value, CliError> {
    let mut set_env = BTreeMap::new();
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| usage(format!("invalid -e '{kv}': write KEY=VALUE")))?;
        set_env.insert(k.to_owned(), v.to_owned());
    }
    let cwd = match a.cwd {
        Some(c) => Some(std::path::absolute(c)?),
        None => Some(std::env::current_dir()?),
    };
    let policy = a.policy.as_deref().map(policy_text).transpose()?;
    let params = NewParams {
        name: a.name,
        cwd: cwd.map(|c| c.display().to_string()),
        shell: a.shell,
        env: Some(std::env::vars().collect()),
        set_env,
        size: a.size.as_deref().map(parse_size).transpose()?,
        program: (!a.program.is_empty()).then_some(a.program),
        policy,
    };
    let mut params = serde_json::to_value(params).map_err(|e| CliError::Local(e.to_string()))?;
    if let (Some(node), Some(map)) = (a.node, params.as_object_mut()) {
        // Read by a clustered daemon's placement, before the session library.
        map.insert("node".into(), Value::String(node));
    }
    Ok(params)
}

/// Prints the session `new` started: its name, or all of it as JSON.
pub(crate) fn new_answer(info: &SessionInfo, json: bool) -> Result<ExitCode, CliError> {
    if json {
        print_json(info)?
    } else {
        outln!("{}", info.name)
    }
    Ok(ExitCode::SUCCESS)
}

/// `COLSxROWS`.
pub(crate) fn parse_size(s: &str) -> Result<Size, CliError> {
    let bad = || {
        usage(format!(
            "invalid size '{s}': write it as COLSxROWS, for example 120x40"
        ))
    };
    let (c, r) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok(Size {
        cols: c.trim().parse().map_err(|_| bad())?,
        rows: r.trim().parse().map_err(|_| bad())?,
    })
}

/// Prints `ls`: a line per session (and per session lost with its node), or all of it as JSON.
pub(crate) fn ls_answer(list: &ListResult, json: bool) -> Result<ExitCode, CliError> {
    if json {
        print_json(list)?;
        return Ok(ExitCode::SUCCESS);
    }
    for s in &list.sessions {
        outln!("{}", describe(s));
    }
    for l in &list.lost {
        outln!("{}", describe_lost(l));
    }
    for n in &list.unanswered {
        errln!(
            "ai-session: node {:?} did not answer, its sessions are not listed: {}",
            n.node,
            n.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A session as `ls` shows it: one line, then its notes.
pub(crate) fn describe(s: &SessionInfo) -> String {
    let state = match (s.state, s.exit_code) {
        (SessionState::Exited, Some(code)) => format!("exited({code})"),
        (state, _) => format!("{state:?}").to_lowercase(),
    };
    let fg = s
        .foreground
        .as_ref()
        .map(|f| format!(" running {} ({})", f.command, f.pid))
        .unwrap_or_default();
    let mut line = format!(
        "{}: {state}{fg} [{}x{}] pid {} {} in {}",
        s.name,
        s.size.cols,
        s.size.rows,
        s.pid,
        s.program.join(" "),
        s.cwd
    );
    if let Some(last) = s.last_command.filter(|_| s.state != SessionState::Exited) {
        match last.exit_code {
            Some(code) => line.push_str(&format!(", last command exited {code}")),
            None => line.push_str(", last command: no exit code"),
        }
    }
    if s.restored {
        line.push_str(" (restored)");
    }
    if let Some(node) = &s.node {
        line.push_str(&format!(" on node {node}"));
    }
    if let Some(reason) = &s.stop_reason {
        line.push_str(&format!("\n    {reason}"));
    }
    match &s.sandbox {
        None => line.push_str(" (unconfined)"),
        Some(sb) => {
            line.push_str(&format!(
                "\n    sandbox '{}': {}",
                sb.policy,
                sb.active.join("; ")
            ));
            if !sb.missing.is_empty() {
                line.push_str(&format!("\n    NOT enforced: {}", sb.missing.join("; ")));
            }
        }
    }
    line
}

/// A lost session, as `ls` and `nodes` show it.
pub(crate) fn describe_lost(l: &LostSession) -> String {
    format!(
        "{}: lost with node {} (checkpoint of {} bytes at {} ms): ai-session restore --from-lost {}",
        l.name, l.node, l.bytes, l.checkpoint_ms, l.name
    )
}
