//! The WebSocket streams: a session's events (`/v1/sessions/{name}/stream`) and a bus topic's
//! messages (`/v1/bus/stream?topic=T`). Each subscribes through `dispatch` (`session.subscribe`,
//! `bus.subscribe`) on a connection of its own and turns the notifications into JSON text
//! messages with a `type`; closing the WebSocket ends the subscription.

use ai_session_protocol::registry::{self as reg, Method};
use std::sync::Arc;

use ai_session_protocol::Notification;
use ai_session_protocol::coord as c;
use ai_session_protocol::methods as m;
use axum::extract::ws::{
    Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::error::{error_response, rpc_error_response, status_of};
use super::routes::{App, BusStreamQuery, StreamQuery};
use crate::service::Caller;

/// Notifications queued for one WebSocket before the subscription slows down (and a session
/// subscriber that falls behind gets a screen redraw, as on the socket).
const QUEUE: usize = 1024;

type Upgrade = Result<WebSocketUpgrade, WebSocketUpgradeRejection>;

/// `GET /v1/sessions/{name}/stream`.
pub(crate) async fn session(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, axum::extract::rejection::PathRejection>,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    ws: Upgrade,
) -> Response {
    let (Ok(Path(name)), Ok(Query(q))) = (path, query) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_params",
            "invalid path or query",
            Some("GET /v1/sessions/NAME/stream?encoding=text|base64"),
        );
    };
    let base64 = match q.encoding.as_deref() {
        None | Some("text") => false,
        Some("base64") => true,
        Some(other) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_params",
                &format!("unknown encoding '{other}'"),
                Some("use encoding=text (default) or encoding=base64"),
            );
        }
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return not_websocket(e),
    };
    let sub = match subscribe(&app, reg::SessionSubscribe::NAME, json!({ "target": name })).await {
        Ok(sub) => sub,
        Err(resp) => return resp,
    };
    let first = json!({
        "type": "subscribed",
        "session": name,
        "offset": sub.result.get("offset"),
        "size": sub.result.get("size"),
        "screen_ansi": sub.result.get("screen_ansi"),
    });
    let daemon = app.daemon.clone();
    ws.on_upgrade(move |socket| async move {
        let mut text = Utf8Carry::default();
        pump(socket, first, sub.rx, |n| {
            session_message(n, base64, &mut text)
        })
        .await;
        sub.conn.close(&daemon);
    })
}

/// `GET /v1/bus/stream?topic=T`.
pub(crate) async fn bus(
    State(app): State<Arc<App>>,
    query: Result<Query<BusStreamQuery>, axum::extract::rejection::QueryRejection>,
    ws: Upgrade,
) -> Response {
    let Ok(Query(q)) = query else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_params",
            "the query needs `topic`",
            Some("GET /v1/bus/stream?topic=NAME ($system for coordinator events)"),
        );
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(e) => return not_websocket(e),
    };
    let sub = match subscribe(&app, reg::BusSubscribe::NAME, json!({ "topic": q.topic })).await {
        Ok(sub) => sub,
        Err(resp) => return resp,
    };
    let mut first = sub.result.clone();
    first["type"] = json!("subscribed");
    let daemon = app.daemon.clone();
    ws.on_upgrade(move |socket| async move {
        pump(socket, first, sub.rx, |n| Some(bus_message(n))).await;
        sub.conn.close(&daemon);
    })
}

fn not_websocket(e: WebSocketUpgradeRejection) -> Response {
    let status = e.status();
    error_response(
        status,
        "invalid_request",
        &format!("not a WebSocket upgrade: {}", e.body_text()),
        Some(
            "connect with a WebSocket client, e.g. websocat -H 'Authorization: Bearer TOKEN' ws://HOST/PATH",
        ),
    )
}

struct Subscription {
    result: Value,
    rx: mpsc::Receiver<String>,
    conn: Arc<Caller>,
}

async fn subscribe(app: &App, method: &str, params: Value) -> Result<Subscription, Response> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let conn = Caller::new(crate::access::http_principal(), tx);
    match crate::service::handle(&app.daemon, &conn, method, params).await {
        Err(err) => {
            conn.close(&app.daemon);
            Err(rpc_error_response(status_of(&err), &err))
        }
        Ok(result) => Ok(Subscription { result, rx, conn }),
    }
}

/// What to do after a notification: send this message, and whether the stream ends with it.
struct Out {
    message: Value,
    last: bool,
}

/// Moves notifications to the WebSocket until either side ends. Messages from the client are
/// read (so pings are answered and a close is seen) and otherwise ignored.
async fn pump(
    mut socket: WebSocket,
    first: Value,
    mut rx: mpsc::Receiver<String>,
    mut convert: impl FnMut(Notification) -> Option<Out>,
) {
    if socket
        .send(Message::Text(first.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(line) = line else { break };
                let Ok(n) = serde_json::from_str::<Notification>(&line) else { continue };
                let Some(out) = convert(n) else { continue };
                if socket.send(Message::Text(out.message.to_string().into())).await.is_err() {
                    return;
                }
                if out.last {
                    break;
                }
            }
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
    socket.send(Message::Close(None)).await.ok();
}

/// `session.output` → `{type: output, offset, data | data_b64}`; `session.command`,
/// `session.state`, `session.closed` → `{type: command | state | closed, ...}`.
fn session_message(n: Notification, base64: bool, text: &mut Utf8Carry) -> Option<Out> {
    let Value::Object(mut params) = n.params else {
        return None;
    };
    params.remove("target");
    let kind = n
        .method
        .strip_prefix("session.")
        .unwrap_or(&n.method)
        .to_owned();
    if n.method == m::NOTIFY_OUTPUT && !base64 {
        let offset = params.get("offset").and_then(Value::as_u64)?;
        let b64 = params.get("data_b64").and_then(Value::as_str)?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let (start, data) = text.decode(offset, &bytes);
        if data.is_empty() {
            return None;
        }
        return Some(Out {
            message: json!({ "type": "output", "offset": start, "data": data }),
            last: false,
        });
    }
    params.insert("type".into(), Value::String(kind));
    Some(Out {
        message: Value::Object(params),
        last: n.method == m::NOTIFY_CLOSED,
    })
}

/// `bus.message` → `{type: message, message}`, `bus.closed` → `{type: closed, reason}`.
fn bus_message(n: Notification) -> Out {
    let last = n.method == c::NOTIFY_STREAM_CLOSED;
    let mut message = match n.params {
        Value::Object(mut p) => {
            p.remove("subscription");
            Value::Object(p)
        }
        other => json!({ "params": other }),
    };
    message["type"] = json!(if last { "closed" } else { "message" });
    Out { message, last }
}

/// Turns output chunks into text without breaking a character split between two chunks: its
/// first bytes wait for the rest. Invalid bytes become U+FFFD.
#[derive(Default)]
struct Utf8Carry {
    pending: Vec<u8>,
    /// The log offset of `pending[0]`.
    pending_offset: u64,
}

impl Utf8Carry {
    /// The text of `bytes` (at log `offset`), and the offset where that text starts.
    fn decode(&mut self, offset: u64, bytes: &[u8]) -> (u64, String) {
        let contiguous = self.pending_offset + self.pending.len() as u64 == offset;
        let (start, mut buf) = if contiguous && !self.pending.is_empty() {
            (self.pending_offset, std::mem::take(&mut self.pending))
        } else {
            self.pending.clear();
            (offset, Vec::new())
        };
        buf.extend_from_slice(bytes);
        let mut out = String::with_capacity(buf.len());
        let mut rest = &buf[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            rest = &after[n..];
                        }
                        None => {
                            self.pending = after.to_vec();
                            self.pending_offset = offset + bytes.len() as u64 - after.len() as u64;
                            break;
                        }
                    }
                }
            }
        }
        (start, out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_character_split_across_chunks_is_completed() {
        let mut c = Utf8Carry::default();
        let e = "é".as_bytes();
        assert_eq!(c.decode(0, &[b'a', e[0]]), (0, "a".to_owned()));
        assert_eq!(c.decode(2, &[e[1], b'b']), (1, "éb".to_owned()));
        assert_eq!(c.decode(4, &[0xff, b'c']), (4, "\u{FFFD}c".to_owned()));
    }
}
