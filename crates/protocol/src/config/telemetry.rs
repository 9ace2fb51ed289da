//! `[telemetry]` (spans exported over OTLP) and `[alerts]` (the anomaly rules' thresholds).

use serde::{Deserialize, Serialize};

/// `[telemetry]`: tracing. Without an endpoint here or in `OTEL_EXPORTER_OTLP_ENDPOINT` /
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, no span is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL (`http://127.0.0.1:4318`); spans go to
    /// `<endpoint>/v1/traces` as protobuf. Wins over the environment variables.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the spans' resource.
    pub service_name: String,
    /// Put each exec's command line in its span (`ai_session.exec.command`), with secrets
    /// masked (`PASSWORD=...`, `--token ...`, `Authorization: ...`, `user:pass@`). Off: only the
    /// program's name (`process.executable.name`).
    pub record_commands: bool,
    /// Spans waiting for export at most; more are dropped (a dead collector never grows the
    /// daemon).
    pub max_queue_spans: usize,
    /// How often a batch is sent, in milliseconds.
    pub export_interval_ms: u64,
    /// How long one export may take before it is abandoned, in milliseconds.
    pub export_timeout_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "ai-session".into(),
            record_commands: false,
            max_queue_spans: 2048,
            export_interval_ms: 1000,
            export_timeout_ms: 5000,
        }
    }
}

/// `[alerts]`: the anomaly rules run on the daemon's events, each with its threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Retry loop: this many identical failing commands in one session...
    pub retry_count: u32,
    /// ...within this many seconds.
    pub retry_window_secs: u64,
    /// Slow exec: robust z-score (median and MAD of the command's earlier durations) above
    /// which an exec is far slower than its history...
    pub slow_z: f64,
    /// ...once the command has run this many times before...
    pub slow_min_history: usize,
    /// ...and only when the exec took at least this many seconds.
    pub slow_min_secs: f64,
    /// Error-rate spike: this fraction of an agent's last `error_window` execs failed.
    pub error_rate: f64,
    /// The execs the error rate is taken over.
    pub error_window: usize,
    /// Output flood: one exec wrote at least this many bytes.
    pub flood_bytes: u64,
    /// Denial burst: this many capability denials or sandbox refusals by one caller...
    pub denials: u32,
    /// ...within this many seconds.
    pub denial_window_secs: u64,
    /// Token consumption: an agent's exec returned this many times its median tokens...
    pub token_factor: f64,
    /// ...once the agent has this many execs with a view...
    pub token_min_history: usize,
    /// ...and the exec returned at least this many tokens.
    pub token_min: u64,
    /// Waiting for input: a session left waiting for input this many seconds.
    pub input_wait_secs: u64,
    /// Alerts kept for `alerts.list` (the oldest go first).
    pub keep: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            retry_count: 3,
            retry_window_secs: 600,
            slow_z: 5.0,
            slow_min_history: 5,
            slow_min_secs: 1.0,
            error_rate: 0.6,
            error_window: 10,
            flood_bytes: 10 << 20,
            denials: 5,
            denial_window_secs: 60,
            token_factor: 5.0,
            token_min_history: 10,
            token_min: 2000,
            input_wait_secs: 300,
            keep: 1000,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use crate::config::Config;

    #[test]
    fn telemetry_and_alerts_keys_are_read_and_misspellings_refused() {
        let c = Config::parse(
            "[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nrecord_commands = true\n\
             max_queue_spans = 64\n[alerts]\nretry_count = 4\nslow_z = 3.5\ninput_wait_secs = 60\n",
        )
        .unwrap();
        assert_eq!(
            c.telemetry.otlp_endpoint.as_deref(),
            Some("http://127.0.0.1:4318")
        );
        assert!(c.telemetry.record_commands);
        assert_eq!(c.telemetry.max_queue_spans, 64);
        assert_eq!(c.telemetry.export_interval_ms, 1000, "the default stays");
        assert_eq!(
            (
                c.alerts.retry_count,
                c.alerts.slow_z,
                c.alerts.input_wait_secs
            ),
            (4, 3.5, 60)
        );
        let err = Config::parse("[alerts]\nretry_cuont = 4\n").unwrap_err();
        assert!(err.contains("retry_cuont"), "{err}");
    }
}
