//! Logs and traces: a `tracing` subscriber writing human-readable or JSON lines, and, when an OTLP
//! endpoint is configured, an OpenTelemetry layer exporting the same spans over OTLP/gRPC.
//!
//! Tracing is configured by the standard variables and off unless `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: `OTEL_SERVICE_NAME` (default
//! `sentra-<service>`), `OTEL_TRACES_SAMPLER`, `OTEL_SDK_DISABLED=true`, ... The W3C trace-context
//! propagator is installed globally: [`crate::context`] reads `traceparent` from incoming calls
//! and writes it into outgoing calls and events, the bus into AMQP headers.
//!
//! Spans are exported at INFO and above whatever the log filter says, so quiet logs do not mean
//! missing traces.

use std::io::IsTerminal;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

use crate::config::LogConfig;

/// Keeps the trace exporter alive; dropping it flushes the spans not yet exported.
#[must_use = "dropping the guard stops the trace export"]
#[derive(Debug, Default)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// True when spans are exported over OTLP.
    pub fn exports_traces(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("trace export did not flush: {error}");
        }
    }
}

/// Where spans go.
#[derive(Debug, Clone, Default)]
pub enum Export {
    /// As the standard `OTEL_*` variables say: nowhere unless an OTLP endpoint is set.
    #[default]
    FromEnv,
    /// To this OTLP/gRPC endpoint (`http://host:port`), batched every 100 ms: for tests that
    /// run their own collector.
    Otlp(String),
}

fn otlp_configured() -> bool {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The tracer provider exporting over OTLP (needs a Tokio runtime).
fn otlp_provider(
    service: &str,
    endpoint: Option<&str>,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig as _;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if let Some(endpoint) = endpoint {
        exporter = exporter.with_endpoint(endpoint);
    }
    let exporter = exporter.build()?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if endpoint.is_some() || std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(format!("sentra-{service}"));
    }
    let mut batch = opentelemetry_sdk::trace::BatchConfigBuilder::default();
    if endpoint.is_some() {
        batch = batch.with_scheduled_delay(Duration::from_millis(100));
    }
    let processor =
        opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter).with_batch_config(batch.build()).build();
    Ok(SdkTracerProvider::builder().with_span_processor(processor).with_resource(resource.build()).build())
}

/// Installs the global subscriber for `service` (and the OTLP exporter when configured);
/// `RUST_LOG` wins over the configured log filter. Calling it twice (as tests do) keeps the first
/// subscriber. Keep the returned guard until the process ends.
pub fn init(service: &str, config: &LogConfig) -> Telemetry {
    init_with(service, config, &Export::FromEnv)
}

/// [`init`], exporting spans as `export` says.
pub fn init_with(service: &str, config: &LogConfig, export: &Export) -> Telemetry {
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.filter));
    let built = match export {
        Export::FromEnv if otlp_configured() => Some(otlp_provider(service, None)),
        Export::FromEnv => None,
        Export::Otlp(endpoint) => Some(otlp_provider(service, Some(endpoint))),
    };
    let provider = match built {
        Some(Ok(provider)) => Some(provider),
        Some(Err(error)) => {
            eprintln!("traces are not exported: {error}");
            None
        }
        None => None,
    };
    let otel = provider.as_ref().map(|provider| {
        opentelemetry::global::set_tracer_provider(provider.clone());
        tracing_opentelemetry::layer().with_tracer(provider.tracer("sentra")).with_filter(LevelFilter::INFO)
    });
    let registry = tracing_subscriber::registry().with(otel);
    let result = if config.json {
        registry.with(fmt::layer().json().flatten_event(true).with_current_span(true).with_filter(filter)).try_init()
    } else {
        registry.with(fmt::layer().compact().with_ansi(std::io::stdout().is_terminal()).with_filter(filter)).try_init()
    };
    // An already installed subscriber is fine: tests initialise once per process.
    if result.is_err() {
        return Telemetry::default();
    }
    Telemetry { provider }
}
