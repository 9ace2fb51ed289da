//! Span export over OTLP/HTTP (protobuf), off the request path and bounded: a finished span
//! goes into the SDK's batch queue (`[telemetry] max_queue_spans`, dropped when full) and the
//! SDK's export thread sends batches every `export_interval_ms`. The HTTP request itself runs
//! on the daemon's tokio runtime (hyper, already the HTTP server's), abandoned after
//! `export_timeout_ms`: a collector that is down or slow costs the export thread its time,
//! never a request.

use std::time::Duration;

use ai_session_protocol::config::TelemetryConfig;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tokio::runtime::Handle;

/// Why spans cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The endpoint (from `[telemetry] otlp_endpoint` or `OTEL_EXPORTER_OTLP_*ENDPOINT`) is not
    /// a URL the exporter accepts: fix it in the config file or the environment.
    #[error(
        "cannot export spans to {endpoint}: {message}; set [telemetry] otlp_endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT) to an http:// URL such as http://127.0.0.1:4318"
    )]
    Endpoint { endpoint: String, message: String },
}

/// Where spans go: the config's endpoint (a base URL, `/v1/traces` appended as the OTLP
/// specification says for `OTEL_EXPORTER_OTLP_ENDPOINT`), else the environment's; `None` when
/// neither names one (tracing is off).
fn endpoint(config: &TelemetryConfig) -> Option<Option<String>> {
    if let Some(base) = config
        .otlp_endpoint
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        return Some(Some(format!("{}/v1/traces", base.trim_end_matches('/'))));
    }
    let set = |var: &str| std::env::var(var).is_ok_and(|v| !v.trim().is_empty());
    // The exporter reads these variables itself (the per-signal one as it is, the general
    // one with `/v1/traces` appended).
    (set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .then_some(None)
}

/// The tracer provider exporting to the configured endpoint, or `None` when none is.
pub(crate) fn provider(
    config: &TelemetryConfig,
    runtime: Handle,
) -> Result<Option<SdkTracerProvider>, SetupError> {
    let Some(url) = endpoint(config) else {
        return Ok(None);
    };
    let timeout = Duration::from_millis(config.export_timeout_ms.max(1));
    let client = OnRuntime {
        client: opentelemetry_http::hyper::HyperClient::with_default_connector(timeout, None),
        runtime,
    };
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(client)
        .with_timeout(timeout);
    if let Some(url) = &url {
        builder = builder.with_endpoint(url.clone());
    }
    let exporter = builder.build().map_err(|e| SetupError::Endpoint {
        endpoint: url.unwrap_or_else(|| "the environment's OTLP endpoint".into()),
        message: e.to_string(),
    })?;
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(config.max_queue_spans.max(1))
        .with_max_export_batch_size(config.max_queue_spans.clamp(1, 512))
        .with_scheduled_delay(Duration::from_millis(config.export_interval_ms.max(1)))
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batch)
        .build();
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build(),
    ))
}

/// hyper's client needs a tokio runtime, which the SDK's export thread does not have: each
/// request is run on the daemon's runtime and its answer awaited from the export thread.
#[derive(Debug)]
struct OnRuntime {
    client: opentelemetry_http::hyper::HyperClient,
    runtime: Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime
            .spawn(async move { client.send_bytes(request).await })
            .await?
    }
}
