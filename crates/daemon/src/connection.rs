//! One client connection: newline-delimited JSON-RPC requests in, responses and notifications
//! out. Requests run concurrently (an exec does not hold up a capture on the same connection);
//! a single writer task serialises everything written back.
//!
//! Memory per connection is bounded: each request reserves, before it starts, what its answer
//! may take ([`weight`]: a read its `max_bytes`, an exec its output cap, twice for JSON
//! escaping) out of a [`BUDGET`], and gives it back once the writer has handed the answer to
//! the socket. A client that stops reading stops being read: its requests wait for the budget,
//! and the daemon's memory does not grow with what it asked for.

use std::sync::Arc;

use ai_session_protocol::registry::{Hello, Method};
use ai_session_protocol::{ErrorKind, MAX_REQUEST_BYTES, Request, Response, RpcError};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::UnixStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::server::Daemon;

/// Requests one connection may have in flight; more wait for a slot.
const MAX_IN_FLIGHT: usize = 256;

/// KiB of answers one connection may have computed and not yet written to its socket.
const BUDGET: u32 = 64 * 1024;

/// KiB an answer may take, reserved from [`BUDGET`] before the request runs.
fn weight(req: &Request) -> u32 {
    use ai_session_protocol::registry::{SessionCapture, SessionExec, SessionRead};
    let field = |name: &str| req.params.get(name).and_then(Value::as_u64);
    let bytes: u64 = match req.method.as_str() {
        m if m == SessionRead::NAME => field("max_bytes").unwrap_or(1 << 20).min(16 << 20),
        m if m == SessionExec::NAME => field("max_output_bytes").unwrap_or(8 << 20).min(64 << 20),
        m if m == SessionCapture::NAME => 1 << 20,
        _ => 16 << 10,
    };
    // Text is escaped in JSON: up to six bytes for one (`\u001b`); two covers what programs
    // print, and the writer's socket buffer absorbs the rest.
    u32::try_from((bytes * 2) >> 10)
        .unwrap_or(BUDGET)
        .clamp(1, BUDGET)
}

/// Serialises a response; serialisation of our own types cannot fail, but if it ever did the
/// client still gets a well-formed error. The line is allocated once at about its final size
/// ([`json_size`]) rather than grown by doubling: an exec's answer carries megabytes of output,
/// and each doubling copied what was written so far into fresh pages.
pub(crate) fn encode(resp: &Response) -> String {
    let size = resp.result.as_ref().map_or(0, json_size) + 256;
    let mut line = Vec::with_capacity(size);
    match serde_json::to_writer(&mut line, resp) {
        Ok(()) => {
            line.push(b'\n');
            // serde_json writes UTF-8: the check is one vectorised pass and never fails.
            String::from_utf8(line).unwrap_or_else(|e| encode_failed(&e))
        }
        Err(e) => encode_failed(&e),
    }
}

fn encode_failed(e: &dyn std::fmt::Display) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{{\"code\":-32603,\"message\":\"cannot encode the response: {e}\"}}}}\n"
    )
}

/// About the bytes `value` takes as compact JSON, at least its strings' bytes (escaping only
/// adds to them).
fn json_size(value: &Value) -> usize {
    match value {
        Value::String(s) => s.len() + 2,
        Value::Array(items) => items.iter().map(|v| json_size(v) + 1).sum::<usize>() + 2,
        Value::Object(fields) => {
            fields
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
                + 2
        }
        _ => 20,
    }
}

pub(crate) async fn run(stream: UnixStream, daemon: Arc<Daemon>) {
    let _open = daemon.telemetry.connection();
    let (read, write) = stream.into_split();
    // Notifications and protocol errors on one queue, answers (with their reservation) on
    // the other; one writer takes from both.
    let (tx, mut rx) = mpsc::channel::<String>(1024);
    let (answers, mut answered) = mpsc::channel::<(String, OwnedSemaphorePermit)>(MAX_IN_FLIGHT);
    // Lines whose sender waits until the socket has them (an inbox's messages).
    let (receipts, mut receipted) = mpsc::channel::<crate::service::Receipted>(16);
    let writer = tokio::spawn(async move {
        let mut w = BufWriter::new(write);
        loop {
            let written = tokio::select! {
                // Notifications and a hello's answer first: a hello's answer then always
                // comes before the answers to requests sent behind it.
                biased;
                Some(line) = rx.recv() => w.write_all(line.as_bytes()).await,
                // The reservation goes once the socket has the answer.
                Some((line, _reserved)) = answered.recv() => w.write_all(line.as_bytes()).await,
                Some((line, done)) = receipted.recv() => {
                    if w.write_all(line.as_bytes()).await.is_err() || w.flush().await.is_err() {
                        return;
                    }
                    done.send(()).ok();
                    continue;
                }
                else => return,
            };
            if written.is_err() {
                return;
            }
            // Batch whatever else is already queued before paying for the flush.
            while let Ok(more) = rx.try_recv() {
                if w.write_all(more.as_bytes()).await.is_err() {
                    return;
                }
            }
            while let Ok((more, _reserved)) = answered.try_recv() {
                if w.write_all(more.as_bytes()).await.is_err() {
                    return;
                }
            }
            if w.flush().await.is_err() {
                return;
            }
        }
    });
    let budget = Arc::new(Semaphore::new(BUDGET as usize));
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let conn = crate::service::Caller::with_receipts(
        crate::access::Principal::Owner,
        tx.clone(),
        receipts,
    );
    let mut typing = crate::order::Line::default();
    // Why this connection's hello was refused: every request after it is.
    let mut refused: Option<String> = None;
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        match read_line(&mut reader, &mut line).await {
            Ok(Line::Eof) => break,
            Ok(Line::Complete) => {}
            Ok(Line::TooLong) => {
                let err = RpcError::new(
                    ErrorKind::TooLarge,
                    format!("request line longer than {MAX_REQUEST_BYTES} bytes; the connection is closed"),
                )
                .with_hint("send large input in pieces, or write it to a file and exec a command that reads it");
                tx.send(encode(&Response::err(Value::Null, err))).await.ok();
                break;
            }
            Err(e) => {
                tracing::debug!("connection read failed: {e}");
                break;
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let req = match parse(&line) {
            Ok(req) => req,
            Err(resp) => {
                if tx.send(encode(&resp)).await.is_err() {
                    break;
                }
                continue;
            }
        };
        // While an upgrade hands the sessions over, requests wait here (then run, or are
        // answered below if this daemon handed over).
        daemon.upgrade.gate().await;
        if daemon.cancel.is_cancelled() {
            // The daemon is stopping: those in flight finish, nothing new starts. The
            // connection itself stays open until the process exits (`daemon stop` waits for
            // its own connection to close to know the daemon is gone).
            let err = RpcError::new(ErrorKind::ShuttingDown, "the daemon is shutting down")
                .with_hint("retry in a moment: the next call starts a new daemon");
            if tx.send(encode(&Response::err(req.id, err))).await.is_err() {
                break;
            }
            continue;
        }
        if let Some(why) = &refused {
            let err = RpcError::new(
                ErrorKind::PermissionDenied,
                format!("this connection's hello was refused ({why}): nothing more runs on it"),
            )
            .with_hint("open a new connection and send a hello the daemon accepts first");
            if tx.send(encode(&Response::err(req.id, err))).await.is_err() {
                break;
            }
            continue;
        }
        // A hello runs before the next line is read: what a client sends behind it without
        // waiting for the answer (the small CLI sends its exec with it) runs as the identity
        // the hello set, and never runs when the hello is refused.
        if req.method == Hello::NAME {
            // The handler's future is built in the call: a local holding it would be a second
            // copy in this connection's future.
            let resp = match unless_it_panics(crate::service::handle_traced(
                &daemon,
                &conn,
                &req.method,
                req.params,
                req.trace,
            ))
            .await
            {
                Ok(value) => Response::ok(req.id, value),
                Err(err) => {
                    refused = Some(err.message.clone());
                    Response::err(req.id, err)
                }
            };
            if tx.send(encode(&resp)).await.is_err() {
                break;
            }
            continue;
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        // Waits while the client has not read enough of what it asked for.
        let Ok(reserved) = budget.clone().acquire_many_owned(weight(&req)).await else {
            break;
        };
        // Typing requests reach their sessions in the order they were read (`order`).
        let turn = crate::order::types(&req.method).then(|| typing.next());
        let (answers, task_daemon, conn) = (answers.clone(), daemon.clone(), conn.clone());
        daemon.tasks.spawn(async move {
            let resp = match unless_it_panics(crate::order::holding(
                turn,
                crate::service::handle_traced(
                    &task_daemon,
                    &conn,
                    &req.method,
                    req.params,
                    req.trace,
                ),
            ))
            .await
            {
                Ok(value) => Response::ok(req.id, value),
                Err(err) => Response::err(req.id, err),
            };
            // The client may have gone: nothing to do about an undeliverable response.
            answers.send((encode(&resp), reserved)).await.ok();
            drop(permit);
        });
    }
    // The client closed its end (or half-closed it): streams go on writing what they take
    // while requests in flight finish; a line the socket refuses goes back where it came from.
    // Requests in flight finish and are answered (their permits come back).
    let drained = slots.acquire_many(MAX_IN_FLIGHT as u32).await;
    drop(drained);
    // Agents registered on this connection leave with it; their tasks go back to the queue.
    conn.close(&daemon);
    drop(tx);
    drop(answers);
    writer.await.ok();
}

/// Runs a request's handler; a handler that panics is answered with an internal error (and
/// logged) rather than left unanswered, its client waiting forever. A plain function, not an
/// `async fn`, which would hold the handler's future twice (kilobytes, copied at each spawn).
fn unless_it_panics(
    handled: impl std::future::Future<Output = Result<Value, RpcError>>,
) -> impl std::future::Future<Output = Result<Value, RpcError>> {
    use futures_util::FutureExt as _;
    std::panic::AssertUnwindSafe(handled)
        .catch_unwind()
        .map(|caught| match caught {
            Ok(answer) => answer,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".into());
                tracing::error!("a request's handler panicked: {what}");
                Err(RpcError::new(
                    ErrorKind::Internal,
                    format!("the daemon failed while handling this request: {what}"),
                )
                .with_hint("this is a bug in ai-session: the daemon's log has the details; other requests and sessions are unaffected"))
            }
        })
}

fn parse(line: &[u8]) -> Result<Request, Box<Response>> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        let err = RpcError::new(ErrorKind::ParseError, format!("not valid JSON: {e}"))
            .with_hint("send one JSON-RPC 2.0 request per line, UTF-8 encoded");
        Box::new(Response::err(Value::Null, err))
    })?;
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    serde_json::from_value::<Request>(value).map_err(|e| {
        let err = RpcError::new(
            ErrorKind::InvalidRequest,
            format!("not a JSON-RPC request: {e}"),
        )
        .with_hint(r#"expected {"jsonrpc":"2.0","id":1,"method":"...","params":{...}}"#);
        Box::new(Response::err(id, err))
    })
}

enum Line {
    Complete,
    TooLong,
    Eof,
}

/// Reads one line (without its newline) of at most `MAX_REQUEST_BYTES`.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    out: &mut Vec<u8>,
) -> std::io::Result<Line> {
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(if out.is_empty() {
                Line::Eof
            } else {
                Line::Complete
            });
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                out.extend_from_slice(&buf[..i]);
                r.consume(i + 1);
                return Ok(if out.len() > MAX_REQUEST_BYTES {
                    Line::TooLong
                } else {
                    Line::Complete
                });
            }
            None => {
                let n = buf.len();
                out.extend_from_slice(buf);
                r.consume(n);
                if out.len() > MAX_REQUEST_BYTES {
                    return Ok(Line::TooLong);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<A, B, Fut>(_: impl FnOnce(A, B) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// The future of a handler (`handle_traced`, `handle_from`: their last argument differs)
    /// called with borrows for `'a`.
    fn handler_size<'a, Last, Fut>(
        _: impl FnOnce(&'a Arc<Daemon>, &'a Arc<crate::service::Caller>, &'a str, Value, Last) -> Fut,
    ) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// A connection's future and each request's are copied whole when they are spawned, so
    /// what wraps a handler's future holds it once: wrappers written as `async fn`s held it
    /// twice each, and a connection's future was 84 KB, a request's task 112 KB (release).
    #[test]
    fn a_connections_future_holds_one_handler() {
        let inner = handler_size(crate::service::handle_from);
        let handler = handler_size(crate::service::handle_traced);
        let connection = future_size(run);
        assert!(
            handler < inner * 3 / 2,
            "the traced handler's future is {handler} bytes for the {inner} it wraps"
        );
        assert!(
            connection < handler * 3 / 2,
            "a connection's future is {connection} bytes for a handler's {handler}"
        );
    }

    #[test]
    fn a_response_is_encoded_as_serde_json_encodes_it() {
        let output: String = (0..2000)
            .map(|i| format!("line {i}\t\"quoted\" \\ \u{1b}[0m é ✓ 🦀 \u{7f}\u{0}\r\n"))
            .collect();
        let answer = serde_json::json!({
            "compact": {"text": "head\n[lines 3-9 left out]\ntail\n", "raw_tokens": 123_456_789_u64, "whole": false},
            "duration_ms": 812.25,
            "exit_code": -1,
            "output": output,
            "parsed": {"items": [1, "two", null, [], {}, {"a": [true, false]}], "empty": ""},
            "status": "exited",
        });
        let responses = [
            Response::ok(Value::from(7), answer),
            Response::ok(Value::from("an id"), Value::Null),
            Response::ok(Value::Null, Value::String(String::new())),
            Response::ok(Value::from(1), serde_json::json!([[], {}, "x", 1e300])),
            Response::err(
                Value::from(3),
                RpcError::new(ErrorKind::InvalidParams, "bad \"target\"\n").with_hint("fix it"),
            ),
        ];
        for resp in &responses {
            let want = serde_json::to_string(resp).expect("encodes") + "\n";
            assert_eq!(encode(resp), want);
        }
    }

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_with_an_error() {
        let answer = unless_it_panics(async {
            if true {
                panic!("boom in a handler");
            }
            Ok(Value::Null)
        })
        .await;
        let err = answer.expect_err("an error, not a lost request");
        assert_eq!(err.kind(), Some(ErrorKind::Internal));
        assert!(err.message.contains("boom in a handler"), "{}", err.message);
        assert_eq!(
            unless_it_panics(async { Ok(Value::Bool(true)) }).await.ok(),
            Some(Value::Bool(true))
        );
    }
}
