//! A `[[hooks]]` entry with `url`: each event POSTed as JSON, signed, retried.
//!
//! The body is signed with HMAC-SHA256 under the hook's secret, sent as
//! `X-AI-Session-Signature: sha256=<hex>` (the receiver computes the same over the raw body
//! and compares in constant time). A connection error, a timeout, a 5xx, 408 or 429 is tried
//! again after `backoff_ms`, doubled each time (at most a minute), `retries` times; any other
//! answer outside 2xx is final. An event still undelivered goes to the bus's dead-letter list
//! (`ai-session bus dead-letters`) with the hook's name, the attempts and the last error.

use std::time::Duration;

use ai_session_coord::Coordinator;
use ai_session_core::integration::IntegrationError;
use ai_session_protocol::config::HookConfig;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::Uri;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Sha256;

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub(crate) struct WebHook {
    name: String,
    uri: Uri,
    secret: Option<String>,
    retries: u32,
    backoff: Duration,
    timeout: Duration,
    coord: Coordinator,
}

/// How one attempt went.
enum Attempt {
    Delivered,
    /// Worth trying again: no connection, a timeout, 5xx, 408, 429.
    Retry(String),
    /// The receiver refused it for good (another 4xx).
    Refused(String),
}

impl WebHook {
    /// `None` when the URL does not parse (the config check makes that rare: it tests the
    /// scheme and host only).
    pub(crate) fn new(
        hook: &HookConfig,
        url: &str,
        secret: Option<String>,
        retries: u32,
        backoff_ms: u64,
        coord: Coordinator,
    ) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("hook '{}': invalid url '{url}': {e}", hook.name))?;
        if uri.host().is_none() {
            return Err(format!("hook '{}': url '{url}' has no host", hook.name));
        }
        Ok(WebHook {
            name: hook.name.clone(),
            uri,
            secret,
            retries,
            backoff: Duration::from_millis(backoff_ms),
            timeout: Duration::from_secs_f64(hook.timeout_secs),
            coord,
        })
    }

    /// `sha256=<hex>` of the body under the secret.
    fn signature(&self, body: &[u8]) -> Option<String> {
        let secret = self.secret.as_ref()?;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
        mac.update(body);
        let digest = mac.finalize().into_bytes();
        Some(format!(
            "sha256={}",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ))
    }

    async fn attempt(&self, kind: &str, body: Bytes, signature: Option<&str>) -> Attempt {
        match tokio::time::timeout(self.timeout, self.post(kind, body, signature)).await {
            Err(_) => Attempt::Retry(format!(
                "no answer within {:.1}s (timeout_secs)",
                self.timeout.as_secs_f64()
            )),
            Ok(Err(e)) => Attempt::Retry(e),
            Ok(Ok(status)) if (200..300).contains(&status) => Attempt::Delivered,
            Ok(Ok(status)) if status >= 500 || status == 408 || status == 429 => {
                Attempt::Retry(format!("the receiver answered HTTP {status}"))
            }
            Ok(Ok(status)) => Attempt::Refused(format!("the receiver answered HTTP {status}")),
        }
    }

    /// One POST on a fresh connection; the answer's status.
    async fn post(&self, kind: &str, body: Bytes, signature: Option<&str>) -> Result<u16, String> {
        let host = self.uri.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = self.uri.port_u16().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        let conn = tokio::spawn(conn);
        let path = self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut req = hyper::Request::post(path)
            .header(
                hyper::header::HOST,
                self.uri.authority().map_or(host, |a| a.as_str()),
            )
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("ai-session/", env!("CARGO_PKG_VERSION")),
            )
            .header("X-AI-Session-Event", kind);
        if let Some(sig) = signature {
            req = req.header("X-AI-Session-Signature", sig);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let status = sender
            .send_request(req)
            .await
            .map_err(|e| format!("request failed: {e}"))?
            .status()
            .as_u16();
        // The answer's body is not read: only its status counts. Closing the connection ends it.
        conn.abort();
        Ok(status)
    }
}

#[async_trait::async_trait]
impl super::Deliver for WebHook {
    async fn deliver(&self, kind: &str, envelope: Value) -> Result<(), IntegrationError> {
        let body = Bytes::from(envelope.to_string());
        let signature = self.signature(&body);
        let mut wait = self.backoff;
        let mut attempts = 0;
        let last_error = loop {
            attempts += 1;
            match self.attempt(kind, body.clone(), signature.as_deref()).await {
                Attempt::Delivered => return Ok(()),
                Attempt::Refused(e) => break e,
                Attempt::Retry(e) if attempts > self.retries => break e,
                Attempt::Retry(e) => {
                    tracing::info!(hook = %self.name, event = kind, attempts, "webhook attempt failed, retrying in {wait:?}: {e}");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        };
        tracing::warn!(hook = %self.name, event = kind, attempts, "webhook undeliverable, dead-lettered: {last_error}");
        self.coord
            .dead_letter_hook_event(&self.name, attempts, last_error.clone(), envelope);
        Err(IntegrationError::Failed(format!(
            "undeliverable after {attempts} attempts (on the dead-letter list): {last_error}"
        )))
    }
}
