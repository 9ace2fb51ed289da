//! Sessions as MCP resources: `ai-session://sessions/{name}/screen` (the rendered screen) and
//! `ai-session://sessions/{name}/log` (the tail of the output log as plain text), and the
//! subscriptions that follow them: a subscribed session is followed on a daemon connection of
//! its own (`session.subscribe`), and its output turns into `notifications/resources/updated`,
//! at most one per resource every [`DEBOUNCE`].

use ai_session_protocol::registry::{self as reg, Method};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ai_session_protocol::ErrorKind;
use ai_session_protocol::methods::{
    self as m, CaptureParams, CaptureResult, ListResult, ReadParams, ReadResult,
};
use rmcp::ErrorData as McpError;
use rmcp::model::SubscriptionFilter;
use rmcp::model::{
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ResourceUpdatedNotificationParam,
};
use rmcp::service::SubscriptionSink;
use rmcp::{Peer, RoleServer};
use serde_json::{Value, json};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::daemon::{Daemon, Subscription};
use ai_session_client::Error as CallError;

const PREFIX: &str = "ai-session://sessions/";
/// The `log` resource holds at most this many bytes of the log's end (before escapes are removed).
pub(crate) const LOG_TAIL_BYTES: u64 = 64 * 1024;
/// At most one `resources/updated` per resource in this time.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Screen,
    Log,
}

impl Kind {
    fn suffix(self) -> &'static str {
        match self {
            Self::Screen => "screen",
            Self::Log => "log",
        }
    }
}

pub(crate) fn uri(session: &str, kind: Kind) -> String {
    format!("{PREFIX}{session}/{}", kind.suffix())
}

/// The session and resource a URI names, or an invalid-params error saying what URIs exist.
pub(crate) fn parse(uri: &str) -> Result<(String, Kind), McpError> {
    let parsed = uri.strip_prefix(PREFIX).and_then(|rest| {
        let (session, kind) = rest.rsplit_once('/')?;
        let kind = match kind {
            "screen" => Kind::Screen,
            "log" => Kind::Log,
            _ => return None,
        };
        (!session.is_empty() && !session.contains('/')).then(|| (session.to_owned(), kind))
    });
    parsed.ok_or_else(|| {
        McpError::resource_not_found(
            format!(
                "unknown resource '{uri}': session resources are \
                 {PREFIX}{{name}}/screen and {PREFIX}{{name}}/log"
            ),
            Some(json!({ "uri": uri })),
        )
    })
}

/// A daemon failure as a protocol error: an unknown session is `resource not found` (with the
/// existing sessions), anything else an internal error with the daemon's message and hint.
pub(crate) fn resource_error(uri: &str, e: CallError) -> McpError {
    match e {
        CallError::Rpc(mut rpc) => {
            rpc.rephrase(&crate::hint::Mcp);
            let mut message = rpc.message.clone();
            if let Some(h) = &rpc.data.hint {
                message.push_str(&format!(" (hint: {h})"));
            }
            let mut data = serde_json::to_value(&rpc.data).unwrap_or(Value::Null);
            if let Some(obj) = data.as_object_mut() {
                obj.insert("uri".into(), Value::from(uri));
            }
            if rpc.data.kind == Some(ErrorKind::SessionNotFound) {
                McpError::resource_not_found(message, Some(data))
            } else {
                McpError::internal_error(message, Some(data))
            }
        }
        other => McpError::internal_error(
            format!(
                "{other} (hint: the ai-session daemon is unreachable; retry, or ask the user \
                 to check the daemon)"
            ),
            Some(json!({ "kind": "daemon_unreachable", "uri": uri })),
        ),
    }
}

/// Both resources of every session.
pub(crate) async fn list(daemon: &Daemon) -> Result<Vec<Resource>, McpError> {
    let list: ListResult = daemon
        .call(reg::SessionList::NAME, json!({}))
        .await
        .map_err(|e| resource_error("", e))?;
    let mut out = Vec::with_capacity(list.sessions.len() * 2);
    for s in &list.sessions {
        out.push(
            Resource::new(uri(&s.name, Kind::Screen), format!("{} screen", s.name))
                .with_title(format!("Session {}: screen", s.name))
                .with_description(format!(
                    "The terminal screen of session '{}' as plain text lines ({}x{}, {:?})",
                    s.name, s.size.cols, s.size.rows, s.state
                ))
                .with_mime_type("text/plain"),
        );
        out.push(
            Resource::new(uri(&s.name, Kind::Log), format!("{} log", s.name))
                .with_title(format!("Session {}: recent output", s.name))
                .with_description(format!(
                    "The last {} KiB of session '{}''s output as plain text",
                    LOG_TAIL_BYTES / 1024,
                    s.name
                ))
                .with_mime_type("text/plain")
                .with_size(s.log_end.saturating_sub(s.log_start).min(LOG_TAIL_BYTES)),
        );
    }
    Ok(out)
}

pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{PREFIX}{{name}}/screen"), "session screen")
            .with_title("A session's screen")
            .with_description(
                "The terminal screen of a session as plain text lines, as a person would see it",
            )
            .with_mime_type("text/plain"),
        ResourceTemplate::new(format!("{PREFIX}{{name}}/log"), "session log")
            .with_title("A session's recent output")
            .with_description(format!(
                "The last {} KiB of a session's output log as plain text (escapes removed)",
                LOG_TAIL_BYTES / 1024
            ))
            .with_mime_type("text/plain"),
    ]
}

pub(crate) async fn read(daemon: &Daemon, uri_: &str) -> Result<ReadResourceResult, McpError> {
    let (session, kind) = parse(uri_)?;
    let text = match kind {
        Kind::Screen => {
            let params = CaptureParams {
                target: session,
                scrollback: 0,
                ansi: false,
            };
            let cap: CaptureResult = daemon
                .call(reg::SessionCapture::NAME, params)
                .await
                .map_err(|e| resource_error(uri_, e))?;
            let mut screen = cap.lines.join("\n");
            let trimmed = screen.trim_end_matches(['\n', ' ']).len();
            screen.truncate(trimmed);
            screen
        }
        Kind::Log => {
            let list: ListResult = daemon
                .call(reg::SessionList::NAME, json!({}))
                .await
                .map_err(|e| resource_error(uri_, e))?;
            // An unknown session: let session.read produce the daemon's own error.
            let since = list
                .sessions
                .iter()
                .find(|s| s.name == session)
                .map(|s| s.log_start.max(s.log_end.saturating_sub(LOG_TAIL_BYTES)));
            let params = ReadParams {
                target: session,
                since,
                max_bytes: Some(LOG_TAIL_BYTES as usize),
                raw: false,
                encoding: Default::default(),
            };
            let read: ReadResult = daemon
                .call(reg::SessionRead::NAME, params)
                .await
                .map_err(|e| resource_error(uri_, e))?;
            read.data
        }
    };
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri_).with_mime_type("text/plain"),
    ]))
}

/// Where change notifications go: the client that sent `resources/subscribe` (protocol
/// versions up to 2025-11-25), or a `subscriptions/listen` stream (2026-07-28).
#[derive(Clone)]
pub(crate) enum Notifier {
    Peer(Peer<RoleServer>),
    Listen(SubscriptionSink),
}

impl Notifier {
    /// False once the client is gone (or its stream ended).
    async fn updated(&self, uri: &str) -> bool {
        match self {
            Notifier::Peer(p) => p
                .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                .await
                .is_ok(),
            Notifier::Listen(sink) => sink.notify_resource_updated(uri).await.is_ok(),
        }
    }

    pub(crate) async fn list_changed(&self) -> bool {
        match self {
            Notifier::Peer(p) => p.notify_resource_list_changed().await.is_ok(),
            Notifier::Listen(sink) => sink.notify_resource_list_changed().await.is_ok(),
        }
    }
}

/// The `subscriptions/listen` streams that asked for `resources/list_changed`.
#[derive(Default)]
pub(crate) struct Listeners(Mutex<Vec<SubscriptionSink>>);

impl Listeners {
    pub(crate) fn add(&self, sink: SubscriptionSink) {
        lock(&self.0).push(sink);
    }

    pub(crate) fn remove(&self, id: &rmcp::model::RequestId) {
        lock(&self.0).retain(|s| s.id() != id);
    }

    /// Tells every stream that the resource list changed; forgets streams that ended.
    pub(crate) async fn list_changed(&self) {
        let sinks: Vec<SubscriptionSink> = lock(&self.0).clone();
        for sink in sinks {
            if sink.notify_resource_list_changed().await.is_err() {
                self.remove(sink.id());
            }
        }
    }
}

/// What of a `subscriptions/listen` filter this server serves: the resource list, and the
/// updates of well-formed session resource URIs (an unknown session is refused when the
/// stream starts following it).
pub(crate) fn acceptable(requested: &SubscriptionFilter) -> SubscriptionFilter {
    let uris: Vec<String> = requested
        .resource_subscriptions
        .iter()
        .flatten()
        .filter(|u| parse(u).is_ok())
        .cloned()
        .collect();
    let mut accepted = SubscriptionFilter::new();
    accepted.resources_list_changed = requested.resources_list_changed;
    accepted.resource_subscriptions = (!uris.is_empty()).then_some(uris);
    accepted
}

type Uris = Arc<Mutex<BTreeSet<String>>>;

struct Watch {
    uris: Uris,
    task: AbortHandle,
}

/// The sessions one MCP client subscribed to, each followed by a task.
#[derive(Default)]
pub(crate) struct Watches {
    map: Mutex<HashMap<String, Watch>>,
}

impl Drop for Watches {
    fn drop(&mut self) {
        for w in self
            .map
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            w.task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watches {
    /// Follows the URI's session (once per session) and reports changes to `notifier`; `ready`
    /// is the session's subscription when one was made already (see `listen`).
    pub(crate) async fn subscribe(
        &self,
        daemon: &Daemon,
        notifier: Notifier,
        uri_: &str,
        ready: Option<Subscription>,
    ) -> Result<(), McpError> {
        let (session, _) = parse(uri_)?;
        {
            let map = lock(&self.map);
            if let Some(w) = map.get(&session)
                && !w.task.is_finished()
            {
                lock(&w.uris).insert(uri_.to_owned());
                return Ok(());
            }
        }
        let sub = match ready {
            Some(sub) => sub,
            None => daemon
                .subscribe(&session)
                .await
                .map_err(|e| resource_error(uri_, e))?,
        };
        let uris: Uris = Arc::new(Mutex::new(BTreeSet::from([uri_.to_owned()])));
        let task = tokio::spawn(follow(sub, uris.clone(), notifier)).abort_handle();
        let mut map = lock(&self.map);
        if let Some(old) = map.insert(
            session,
            Watch {
                uris: uris.clone(),
                task,
            },
        ) {
            // A concurrent subscribe to the same session, or a session that closed and came
            // back: one task follows it, for every URI subscribed.
            old.task.abort();
            let old_uris = std::mem::take(&mut *lock(&old.uris));
            lock(&uris).extend(old_uris);
        }
        Ok(())
    }

    /// Stops reporting the URI; the session stops being followed with its last URI.
    pub(crate) fn unsubscribe(&self, uri_: &str) -> Result<(), McpError> {
        let (session, _) = parse(uri_)?;
        let mut map = lock(&self.map);
        let empty = match map.get(&session) {
            Some(w) => {
                let mut uris = lock(&w.uris);
                uris.remove(uri_);
                uris.is_empty()
            }
            None => false,
        };
        if empty && let Some(w) = map.remove(&session) {
            w.task.abort();
        }
        Ok(())
    }
}

/// Turns a session's notifications into `resources/updated` for its subscribed URIs, at most
/// one per URI every [`DEBOUNCE`], the last change always reported. Ends when the session
/// closes (after a last update and `resources/list_changed`), when the daemon connection ends,
/// or when the client is gone.
pub(crate) async fn follow(sub: Subscription, uris: Uris, notifier: Notifier) {
    let mut last: Option<Instant> = None;
    while let Some(n) = sub.next().await {
        let mut closed = n.method == m::NOTIFY_CLOSED;
        if !closed && n.method != m::NOTIFY_OUTPUT {
            continue;
        }
        if let Some(t) = last {
            tokio::time::sleep_until(t + DEBOUNCE).await;
        }
        // Everything that arrived meanwhile is covered by this update.
        while let Some(n) = sub.try_next() {
            closed |= n.method == m::NOTIFY_CLOSED;
        }
        let targets: Vec<String> = lock(&uris).iter().cloned().collect();
        for uri_ in &targets {
            if !notifier.updated(uri_).await {
                return;
            }
        }
        last = Some(Instant::now());
        if closed {
            notifier.list_changed().await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        for kind in [Kind::Screen, Kind::Log] {
            let u = uri("build-1.x", kind);
            let (s, k) = parse(&u).unwrap();
            assert_eq!((s.as_str(), k), ("build-1.x", kind));
        }
        assert!(parse("ai-session://sessions/a/b/screen").is_err());
        assert!(parse("ai-session://sessions//log").is_err());
        assert!(parse("ai-session://sessions/a/other").is_err());
        assert!(parse("file:///etc/passwd").is_err());
    }
}
