//! One client connection: newline-delimited JSON-RPC requests in, responses and notifications
//! out. Requests run concurrently (an exec does not hold up a capture on the same connection);
//! a single writer task serialises everything written back.

use std::sync::Arc;

use ai_session_protocol::{ErrorKind, MAX_REQUEST_BYTES, Request, Response, RpcError};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::UnixStream;
use tokio::sync::{Semaphore, mpsc};

use crate::server::Daemon;

/// Requests one connection may have in flight; more wait for a slot.
const MAX_IN_FLIGHT: usize = 256;

/// Serialises a response; serialisation of our own types cannot fail, but if it ever did the
/// client still gets a well-formed error.
pub(crate) fn encode(resp: &Response) -> String {
    let mut line = serde_json::to_string(resp).unwrap_or_else(|e| {
        format!(r#"{{"jsonrpc":"2.0","id":null,"error":{{"code":-32603,"message":"cannot encode the response: {e}"}}}}"#)
    });
    line.push('\n');
    line
}

pub(crate) async fn run(stream: UnixStream, daemon: Arc<Daemon>) {
    let (read, write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<String>(1024);
    let writer = tokio::spawn(async move {
        let mut w = BufWriter::new(write);
        while let Some(line) = rx.recv().await {
            if w.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            // Batch whatever else is already queued before paying for the flush.
            while let Ok(more) = rx.try_recv() {
                if w.write_all(more.as_bytes()).await.is_err() {
                    return;
                }
            }
            if w.flush().await.is_err() {
                break;
            }
        }
    });
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let conn = crate::service::Caller::new(crate::access::Principal::Owner, tx.clone());
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
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let (tx, task_daemon, conn) = (tx.clone(), daemon.clone(), conn.clone());
        daemon.tasks.spawn(async move {
            let resp =
                match crate::service::handle(&task_daemon, &conn, &req.method, req.params).await {
                    Ok(value) => Response::ok(req.id, value),
                    Err(err) => Response::err(req.id, err),
                };
            // The client may have gone: nothing to do about an undeliverable response.
            tx.send(encode(&resp)).await.ok();
            drop(permit);
        });
    }
    // Requests in flight finish and are answered (their permits come back).
    let drained = slots.acquire_many(MAX_IN_FLIGHT as u32).await;
    drop(drained);
    // Agents registered on this connection leave with it; their tasks go back to the queue.
    conn.close(&daemon);
    drop(tx);
    writer.await.ok();
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
