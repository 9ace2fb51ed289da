//! Anomaly detection: the [`rules`] run on the service's events (as part of the telemetry
//! observer) with the thresholds of `[alerts]`. Each anomaly raised is
//!
//! - kept for `alerts.list` (the last `[alerts] keep`),
//! - counted in `ai_session_alerts_total{rule}`,
//! - an event (`ai_session.alert`) on the span of the request that raised it,
//! - and, off the request path, a message on the bus topic `$alerts` (without the command
//!   line: any agent may subscribe) and an audit entry (`alert.<rule>`) whose risk score is the
//!   rule's weight.
//!
//! The rules' state is one mutex held for a few map operations per exec; delivery goes through
//! a bounded queue to a task of its own (an alert that finds it full is still kept, counted
//! and listed, and the drop is logged).

mod rules;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ai_session_protocol::alerts::{AlertInfo, AlertsParams, AlertsResult};
use ai_session_protocol::config::AlertsConfig;
use ai_session_protocol::methods::{ExecResult, ExecStatus};
use ai_session_protocol::registry::{self as reg, Method as _};
use ai_session_protocol::{ErrorKind, RpcError};
use ai_session_sandbox::audit::{Actor, Record};
use opentelemetry::KeyValue;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::access::Principal;
use crate::server::Daemon;
pub(crate) use rules::Rule;
use rules::{ExecSeen, Finding, Rules};

/// The bus topic anomalies are published on.
pub(crate) const TOPIC: &str = "$alerts";

/// Alerts waiting for delivery to the bus and the audit log.
const OUTBOX: usize = 1024;

/// How often sessions waiting for input are checked.
const TICK: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The detector: rules, the alerts kept, their counts, the delivery queue.
pub(crate) struct Alerts {
    rules: Mutex<Rules>,
    kept: Mutex<VecDeque<AlertInfo>>,
    keep: usize,
    total: AtomicU64,
    by_rule: [AtomicU64; Rule::ALL.len()],
    outbox: mpsc::Sender<AlertInfo>,
    inbox: Mutex<Option<mpsc::Receiver<AlertInfo>>>,
}

impl Alerts {
    pub(crate) fn new(config: AlertsConfig) -> Self {
        let (outbox, inbox) = mpsc::channel(OUTBOX);
        Self {
            keep: config.keep.max(1),
            rules: Mutex::new(Rules::new(config)),
            kept: Mutex::new(VecDeque::new()),
            total: AtomicU64::new(0),
            by_rule: std::array::from_fn(|_| AtomicU64::new(0)),
            outbox,
            inbox: Mutex::new(Some(inbox)),
        }
    }

    /// An exec finished: the exec rules.
    pub(crate) fn exec(
        &self,
        session: &str,
        command: &str,
        result: &ExecResult,
        agent: Option<&str>,
    ) {
        let returned_tokens = result
            .compact
            .as_ref()
            .and_then(|c| c.get("compact_tokens"))
            .and_then(Value::as_u64);
        let finished = result.status == ExecStatus::Exited;
        let seen = ExecSeen {
            session,
            command,
            caller: agent.unwrap_or("owner"),
            failed: finished && result.exit_code.is_some_and(|c| c != 0),
            finished,
            waiting_for_input: result.status == ExecStatus::WaitingForInput,
            duration_ms: result.duration_ms,
            output_bytes: result.output_end.saturating_sub(result.output_start),
            returned_tokens,
        };
        let found = lock(&self.rules).exec(&seen, now_ms());
        self.raise(found);
    }

    /// A request was handled: denials count towards a burst; input sent to a session ends its
    /// wait.
    pub(crate) fn handled(
        &self,
        who: &Principal,
        method: &str,
        session: Option<&str>,
        result: &Result<Value, RpcError>,
    ) {
        if let Err(e) = result
            && e.kind() == Some(ErrorKind::PermissionDenied)
        {
            let caller = super::trace::principal_label(who);
            let found = lock(&self.rules).denied(&caller, session, now_ms());
            self.raise(found.into_iter().collect());
            return;
        }
        let input = [
            reg::SessionSend::NAME,
            reg::SessionWrite::NAME,
            reg::SessionKill::NAME,
        ];
        if let (Ok(_), Some(s)) = (result, session)
            && input.contains(&method)
        {
            lock(&self.rules).answered(s);
        }
    }

    fn raise(&self, found: Vec<Finding>) {
        for f in found {
            let alert = self.alert(f);
            tracing::warn!(rule = %alert.rule, "anomaly: {}", alert.message);
            let mut attrs = vec![
                KeyValue::new("ai_session.alert.id", alert.id as i64),
                KeyValue::new("ai_session.alert.rule", alert.rule.clone()),
                KeyValue::new("ai_session.alert.risk", i64::from(alert.risk)),
                KeyValue::new("ai_session.alert.message", alert.message.clone()),
            ];
            if let Some(c) = &alert.caller {
                attrs.push(KeyValue::new("ai_session.alert.caller", c.clone()));
            }
            super::trace::add_event("ai_session.alert", attrs);
            if self.outbox.try_send(alert.clone()).is_err() {
                tracing::warn!(
                    "alert {} not published on {TOPIC} nor audited: delivery queue full",
                    alert.id
                );
            }
            let mut kept = lock(&self.kept);
            if kept.len() >= self.keep {
                kept.pop_front();
            }
            kept.push_back(alert);
        }
    }

    fn alert(&self, f: Finding) -> AlertInfo {
        let id = self.total.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(c) = Rule::ALL
            .iter()
            .position(|r| *r == f.rule)
            .and_then(|i| self.by_rule.get(i))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let action = format!("alert.{}", f.rule.as_str());
        AlertInfo {
            id,
            rule: f.rule.as_str().to_owned(),
            time_ms: now_ms(),
            risk: ai_session_sandbox::risk::score(&action, "", "raised").score,
            message: f.message,
            session: f.session,
            caller: f.caller,
            command: f.command,
            figures: f.figures,
        }
    }

    /// `alerts.list`.
    pub(crate) fn list(&self, p: &AlertsParams) -> AlertsResult {
        let kept = lock(&self.kept);
        let mut alerts: Vec<AlertInfo> = kept
            .iter()
            .filter(|a| p.after.is_none_or(|after| a.id > after))
            .filter(|a| p.rule.as_deref().is_none_or(|r| a.rule == r))
            .cloned()
            .collect();
        let limit = p.limit.unwrap_or(100);
        if alerts.len() > limit {
            alerts.drain(..alerts.len() - limit);
        }
        AlertsResult {
            alerts,
            total: self.total.load(Ordering::Relaxed),
        }
    }

    /// Alerts raised since start, by rule.
    pub(crate) fn counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Rule::ALL
            .iter()
            .zip(&self.by_rule)
            .map(|(r, c)| (r.as_str(), c.load(Ordering::Relaxed)))
    }
}

/// Starts delivering alerts (bus and audit) and checking sessions left waiting for input.
pub(crate) fn start(daemon: &Arc<Daemon>) {
    let Some(inbox) = lock(&daemon.telemetry.alerts.inbox).take() else {
        return;
    };
    tokio::spawn(deliver(Arc::downgrade(daemon), inbox));
    tokio::spawn(check_waits(Arc::downgrade(daemon)));
}

async fn deliver(daemon: Weak<Daemon>, mut inbox: mpsc::Receiver<AlertInfo>) {
    while let Some(alert) = inbox.recv().await {
        let Some(d) = daemon.upgrade() else {
            return;
        };
        // The daemon raised it; whose requests caused it is in the detail.
        let detail = match &alert.caller {
            Some(c) => format!("caller={c} {}", alert.message),
            None => alert.message.clone(),
        };
        d.access.record(Record {
            session: alert.session.clone(),
            ..Record::new(
                Actor::Daemon,
                &format!("alert.{}", alert.rule),
                detail,
                "raised",
            )
        });
        // Hooks are the operator's own configuration: they get the whole alert.
        let integrations = d.manager.integrations();
        if !integrations.is_empty() {
            match serde_json::to_value(&alert) {
                Ok(data) => {
                    integrations.fire(ai_session_core::integration::IntegrationEvent::Other {
                        kind: "alert".to_owned(),
                        data,
                    })
                }
                Err(e) => tracing::warn!("alert {} not given to the hooks: {e}", alert.id),
            }
        }
        // Any agent may subscribe to the bus: the command line (perhaps another's) stays in
        // `alerts.list`, which needs `daemon:status`.
        let public = AlertInfo {
            command: None,
            ..alert.clone()
        };
        match serde_json::to_value(&public) {
            Ok(payload) => {
                d.coord.publish_reserved(TOPIC, payload).await;
            }
            Err(e) => tracing::warn!("alert {} not published: {e}", alert.id),
        }
    }
}

async fn check_waits(daemon: Weak<Daemon>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(d) = daemon.upgrade() else {
            return;
        };
        if d.cancel.is_cancelled() {
            return;
        }
        let alerts = &d.telemetry.alerts;
        let found = lock(&alerts.rules).tick(now_ms());
        alerts.raise(found);
    }
}

/// `alerts.list` as a service function.
pub(crate) fn list(daemon: &Daemon, p: &AlertsParams) -> Result<AlertsResult, RpcError> {
    Ok(daemon.telemetry.alerts.list(p))
}
