//! Output as it arrives: `exec` on a terminal (or with `--stream`) prints its command's output
//! while the command runs, and `read --follow` follows a session until interrupted.
//!
//! Both subscribe to the session's output on the connection (`session.subscribe`) before they
//! act, so no byte falls between what was read and what is notified. On a terminal the bytes go
//! through as written (colours kept; terminal queries and clipboard writes dropped, as `attach`
//! does); into a pipe or a file they become plain text line by line, as `read` gives it.

use std::process::ExitCode;

use ai_session_client::Client;
use ai_session_protocol::methods::{self as m, *};
use ai_session_protocol::registry::{self as reg, Method};
use base64::Engine;

use crate::error::CliError;

/// Where streamed bytes go.
pub(crate) enum Sink {
    /// A terminal: the bytes as written, without what `attach` keeps from a terminal
    /// (queries, clipboard writes).
    Terminal(crate::guard::OutputGuard),
    /// `read --raw`: the bytes as written.
    Raw,
    /// Plain text, a whole line at a time; the bytes of the line not finished yet.
    Text(Vec<u8>),
}

impl Sink {
    pub(crate) fn terminal() -> Self {
        Self::Terminal(crate::guard::OutputGuard::new(false))
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        match self {
            Self::Terminal(guard) => {
                let mut shown = Vec::with_capacity(bytes.len());
                guard.filter(bytes, &mut shown);
                crate::out::write_bytes(&shown);
            }
            Self::Raw => crate::out::write_bytes(bytes),
            Self::Text(pending) => {
                pending.extend_from_slice(bytes);
                if let Some(end) = pending.iter().rposition(|b| *b == b'\n') {
                    let lines: Vec<u8> = pending.drain(..=end).collect();
                    text(&lines);
                }
            }
        }
    }

    /// Prints what is left of an unfinished line.
    pub(crate) fn finish(&mut self) {
        if let Self::Text(pending) = self {
            let rest = std::mem::take(pending);
            if !rest.is_empty() {
                text(&rest);
            }
        }
        crate::out::flush();
    }
}

fn text(bytes: &[u8]) {
    let decoded = ai_session_output::text::decode(bytes);
    out!("{}", ai_session_output::text::clean(&decoded));
    crate::out::flush();
}

fn decode_b64(data: &str) -> Result<Vec<u8>, CliError> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| CliError::Local(format!("bad output notification from the daemon: {e}")))
}

/// One notification about `target`, as the streams use it.
enum Seen {
    Output { offset: u64, data: Vec<u8> },
    Started(u64),
    Closed,
    Other,
}

fn seen(n: &ai_session_protocol::Notification, target: &str) -> Result<Seen, CliError> {
    if n.params["target"].as_str() != Some(target) {
        return Ok(Seen::Other);
    }
    Ok(match n.method.as_str() {
        m::NOTIFY_OUTPUT => {
            let e: OutputEvent = serde_json::from_value(n.params.clone())
                .map_err(|e| CliError::Local(format!("bad output notification: {e}")))?;
            Seen::Output {
                offset: e.offset,
                data: decode_b64(&e.data_b64)?,
            }
        }
        m::NOTIFY_COMMAND => {
            let e: CommandEvent = serde_json::from_value(n.params.clone())
                .map_err(|e| CliError::Local(format!("bad command notification: {e}")))?;
            match e.phase {
                CommandPhase::Started => Seen::Started(e.offset),
                CommandPhase::Finished => Seen::Other,
            }
        }
        m::NOTIFY_CLOSED => Seen::Closed,
        _ => Seen::Other,
    })
}

/// Subscribes to `target`'s output; notifications start at the returned offset.
async fn subscribe(client: &Client, target: &str) -> Result<u64, CliError> {
    let r: SubscribeResult = client
        .call(
            reg::SessionSubscribe::NAME,
            Target {
                target: target.to_owned(),
            },
        )
        .await?;
    Ok(r.offset)
}

/// Prints the raw log from `from` to `to` (exclusive) through `sink`; returns where it stopped.
async fn replay(
    client: &Client,
    target: &str,
    mut from: u64,
    to: u64,
    sink: &mut Sink,
) -> Result<u64, CliError> {
    while from < to {
        let params = ReadParams {
            target: target.to_owned(),
            since: Some(from),
            max_bytes: Some(
                usize::try_from(to - from)
                    .unwrap_or(usize::MAX)
                    .min(1 << 20),
            ),
            raw: true,
            encoding: Default::default(),
        };
        let r: ReadResult = client.call(reg::SessionRead::NAME, params).await?;
        if r.end <= from {
            break;
        }
        sink.push(r.data.as_bytes());
        from = r.end;
    }
    Ok(from)
}

/// The start of an OSC 133 mark: after the command's start, the first one is its end mark
/// (followed by the prompt), which is not output.
const MARK: &[u8] = b"\x1b]133;";

/// The command's output, printed from its start mark to its end mark as the chunks come.
#[derive(Default)]
struct Window {
    /// Where the output starts, once the daemon said so.
    start: Option<u64>,
    /// Every byte before this offset was printed.
    printed: u64,
    /// Bytes from `printed` on, held back because they may begin the end mark.
    held: Vec<u8>,
    /// The end mark was seen: everything was printed.
    ended: bool,
    /// A chunk was missed: the rest comes from the log at the end.
    missed: bool,
    /// The latest chunk before the start was known: the start mark is in it, and so may be
    /// the output's first bytes.
    last: Option<(u64, Vec<u8>)>,
}

impl Window {
    fn chunk(&mut self, offset: u64, data: Vec<u8>, sink: &mut Sink) {
        if self.start.is_none() {
            self.last = Some((offset, data));
        } else {
            self.feed(offset, &data, sink);
        }
    }

    fn started(&mut self, at: u64, sink: &mut Sink) {
        if self.start.is_some() {
            return;
        }
        self.start = Some(at);
        self.printed = at;
        if let Some((offset, data)) = self.last.take() {
            self.feed(offset, &data, sink);
        }
    }

    fn feed(&mut self, offset: u64, data: &[u8], sink: &mut Sink) {
        let seen = self.printed + self.held.len() as u64;
        let end = offset + data.len() as u64;
        if self.ended || self.missed || end <= seen {
            return;
        }
        if offset > seen {
            // A chunk went missing (a lagging subscription): stop here, keep the order.
            self.missed = true;
            return;
        }
        let mut buf = std::mem::take(&mut self.held);
        buf.extend_from_slice(&data[(seen - offset) as usize..]);
        if let Some(i) = find(&buf, MARK) {
            sink.push(&buf[..i]);
            self.printed += i as u64;
            self.ended = true;
            return;
        }
        let keep = (1..MARK.len())
            .rev()
            .find(|n| buf.len() >= *n && buf.ends_with(&MARK[..*n]))
            .unwrap_or(0);
        let cut = buf.len() - keep;
        sink.push(&buf[..cut]);
        self.printed += cut as u64;
        self.held = buf[cut..].to_vec();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Runs `params` and prints its output as it arrives. The answer is the exec's result as
/// JSON, and whether its output was streamed (false when the session's shell reports no
/// command start, e.g. a shell without ai-session's hooks: then nothing was printed).
pub(crate) async fn exec(
    client: &Client,
    params: ExecParams,
    mut sink: Sink,
) -> Result<(serde_json::Value, bool), CliError> {
    let target = params.target.clone();
    subscribe(client, &target).await?;
    let mut win = Window::default();
    let call = client.call::<_, serde_json::Value>(reg::SessionExec::NAME, params);
    tokio::pin!(call);
    let answer = loop {
        tokio::select! {
            answer = &mut call => break answer?,
            n = client.notification() => {
                // The connection closed: the call says why.
                let Some(n) = n else { break (&mut call).await? };
                match seen(&n, &target)? {
                    Seen::Output { offset, data } => win.chunk(offset, data, &mut sink),
                    Seen::Started(at) => win.started(at, &mut sink),
                    _ => {}
                }
            }
        }
    };
    // Notifications may trail the answer: what was not printed yet comes from the log.
    let streamed = win.start.is_some();
    if let (true, false, Some(end)) = (streamed, win.ended, answer["output_end"].as_u64()) {
        replay(client, &target, win.printed, end, &mut sink).await?;
    }
    sink.finish();
    Ok((answer, streamed))
}

/// `read --follow`: prints the log from `since` (the oldest kept when absent), then output as it
/// comes, until the session ends (exit 0) or SIGINT (exit 130).
pub(crate) async fn follow(
    client: &Client,
    target: &str,
    since: Option<u64>,
    mut sink: Sink,
) -> Result<ExitCode, CliError> {
    // Listening from now on: a SIGINT at any point below ends the follow cleanly.
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let now = subscribe(client, target).await?;
    let first = match since {
        Some(s) => s,
        None => oldest(client, target).await?,
    };
    let mut printed = replay(client, target, first.min(now), now, &mut sink).await?;
    // A session that ended before the subscription sends no `closed`: print what it left.
    if let Some(end) = exited_at(client, target).await? {
        replay(client, target, printed.max(now), end, &mut sink).await?;
        sink.finish();
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        tokio::select! {
            _ = interrupt.recv() => {
                sink.finish();
                return Ok(ExitCode::from(130));
            }
            n = client.notification() => {
                let Some(n) = n else {
                    sink.finish();
                    return Err(ai_session_client::Error::Closed.into());
                };
                match seen(&n, target)? {
                    Seen::Output { offset, data } => {
                        let end = offset + data.len() as u64;
                        if end > printed {
                            let skip = printed.saturating_sub(offset) as usize;
                            sink.push(&data[skip..]);
                            printed = end;
                        }
                    }
                    Seen::Closed => {
                        sink.finish();
                        return Ok(ExitCode::SUCCESS);
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The end of the session's log when its program has exited.
async fn exited_at(client: &Client, target: &str) -> Result<Option<u64>, CliError> {
    let list: ListResult = client
        .call(reg::SessionList::NAME, serde_json::json!({}))
        .await?;
    Ok(list
        .sessions
        .into_iter()
        .find(|s| s.name == target && s.state == SessionState::Exited)
        .map(|s| s.log_end))
}

/// The oldest offset the session's log still holds.
async fn oldest(client: &Client, target: &str) -> Result<u64, CliError> {
    let params = ReadParams {
        target: target.to_owned(),
        since: None,
        max_bytes: Some(1),
        raw: true,
        encoding: Default::default(),
    };
    let r: ReadResult = client.call(reg::SessionRead::NAME, params).await?;
    Ok(r.start)
}
