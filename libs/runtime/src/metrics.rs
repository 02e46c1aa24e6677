//! Prometheus metrics of one service, exposed on its admin port (`/metrics`, see [`crate::admin`]).
//!
//! Every service owns a [`Metrics`] registry whose series all carry `service="<name>"`, so an
//! in-process mesh (and parallel tests) keep their series apart and the Grafana dashboard
//! (`deploy/grafana/sentra.json`) can group by service. [`MetricsLayer`] records RED metrics for
//! every gRPC call: `sentra_rpc_requests_total{method,code}` and
//! `sentra_rpc_duration_seconds{method}`, measured until the response body ends (the status of a
//! gRPC call is in its trailers). Values that live in the database (projection and relay lag,
//! outbox depth, pool usage) are read when Prometheus scrapes, by samplers registered with
//! [`Metrics::on_scrape`], instead of by polling loops.
//!
//! Counter names are registered without `_total`: the OpenMetrics encoder appends it.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};
use tower::{Layer, Service};

/// Label pairs of one series (besides `service`, which every series has).
pub type Labels = Vec<(&'static str, String)>;
/// A counter per label set.
pub type Counters = Family<Labels, Counter>;
/// An integer gauge per label set.
pub type Gauges = Family<Labels, Gauge>;
/// A floating-point gauge per label set.
pub type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;
type Sampler = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// How long one scrape waits for a sampler; a slow database must not hang Prometheus.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// Latency buckets in seconds: 1 ms to ~16 s, doubling.
fn rpc_buckets() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15))
}

/// The metrics registry of one service. Cheap to clone; clones share the registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    service: String,
    registry: Mutex<Registry>,
    samplers: Mutex<Vec<Sampler>>,
    rpc_requests: Counters,
    rpc_duration: Histograms,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("service", &self.inner.service).finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry whose series carry `service="<service>"`, with the RPC metrics registered.
    pub fn new(service: &str) -> Self {
        let registry =
            Registry::with_labels(std::iter::once((Cow::Borrowed("service"), Cow::Owned(service.to_owned()))));
        let rpc_requests = Counters::default();
        let rpc_duration = Histograms::new_with_constructor(rpc_buckets as fn() -> Histogram);
        let metrics = Self {
            inner: Arc::new(Inner {
                service: service.to_owned(),
                registry: Mutex::new(registry),
                samplers: Mutex::new(Vec::new()),
                rpc_requests: rpc_requests.clone(),
                rpc_duration: rpc_duration.clone(),
            }),
        };
        metrics.register("sentra_rpc_requests", "gRPC calls handled, by method and status code", rpc_requests);
        metrics.register(
            "sentra_rpc_duration_seconds",
            "gRPC call latency until the last byte, by method",
            rpc_duration,
        );
        metrics
    }

    /// The `service` label of every series.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// Registers `metric` under `name` (counters without `_total`).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.lock_registry().register(name, help, metric);
    }

    /// Registers and returns a counter family.
    pub fn counters(&self, name: &str, help: &str) -> Counters {
        let family = Counters::default();
        self.register(name, help, family.clone());
        family
    }

    /// Registers and returns an integer gauge family.
    pub fn gauges(&self, name: &str, help: &str) -> Gauges {
        let family = Gauges::default();
        self.register(name, help, family.clone());
        family
    }

    /// Registers and returns a floating-point gauge family.
    pub fn float_gauges(&self, name: &str, help: &str) -> FloatGauges {
        let family = FloatGauges::default();
        self.register(name, help, family.clone());
        family
    }

    /// Runs `sample` before every scrape (concurrently with the other samplers, each bounded by
    /// a timeout); it updates gauges from state that lives elsewhere.
    pub fn on_scrape<F, Fut>(&self, sample: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let sampler: Sampler = Arc::new(move || Box::pin(sample()));
        self.inner.samplers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(sampler);
    }

    /// Connection pool usage: `sentra_db_pool_connections{state="idle"|"in_use"}` and
    /// `sentra_db_pool_max_connections`.
    pub fn observe_pool(&self, pool: &sqlx::PgPool) {
        let connections = self.gauges("sentra_db_pool_connections", "PostgreSQL pool connections, by state");
        let max = self.gauges("sentra_db_pool_max_connections", "PostgreSQL pool size limit");
        let pool = pool.clone();
        self.on_scrape(move || {
            let (size, idle) = (i64::from(pool.size()), i64::try_from(pool.num_idle()).unwrap_or(i64::MAX));
            connections.get_or_create(&vec![("state", "idle".to_owned())]).set(idle);
            connections.get_or_create(&vec![("state", "in_use".to_owned())]).set((size - idle).max(0));
            max.get_or_create(&Vec::new()).set(i64::from(pool.options().get_max_connections()));
            async {}
        });
    }

    /// Samples, then renders every series in the OpenMetrics text format.
    pub async fn render(&self) -> String {
        let samplers: Vec<Sampler> =
            self.inner.samplers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        futures::future::join_all(samplers.iter().map(|sample| async move {
            if tokio::time::timeout(SAMPLE_TIMEOUT, sample()).await.is_err() {
                tracing::warn!("A metrics sampler timed out; its series keep their last value.");
            }
        }))
        .await;
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.lock_registry());
        out
    }

    fn lock_registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record_rpc(&self, method: &str, code: &'static str, elapsed: Duration) {
        // An unknown method is answered UNIMPLEMENTED: one series for all of them, so a caller
        // cannot mint series with made-up paths.
        let method = if code == "UNIMPLEMENTED" { "unknown" } else { method };
        self.inner.rpc_requests.get_or_create(&vec![("method", method.to_owned()), ("code", code.to_owned())]).inc();
        self.inner.rpc_duration.get_or_create(&vec![("method", method.to_owned())]).observe(elapsed.as_secs_f64());
    }
}

/// The canonical name of a gRPC status code (`grpc-status` value).
fn code_name(status: &[u8]) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    std::str::from_utf8(status)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("UNKNOWN")
}

fn status_of(headers: &HeaderMap) -> Option<&'static str> {
    headers.get("grpc-status").map(|v| code_name(v.as_bytes()))
}

/// Tower layer recording RED metrics of every call into a [`Metrics`].
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    metrics: Metrics,
}

impl MetricsLayer {
    /// Records into `metrics`.
    pub fn new(metrics: Metrics) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner, metrics: self.metrics.clone() }
    }
}

/// Service produced by [`MetricsLayer`].
#[derive(Debug, Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B, RB> Service<Request<B>> for MetricsService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Send,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<RecordedBody<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let recording = Recording {
            metrics: self.metrics.clone(),
            method: req.uri().path().to_owned(),
            start: Instant::now(),
            code: None,
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            match fut.await {
                Ok(response) => {
                    let mut recording = recording;
                    // A trailers-only response (most errors) carries the status in its headers.
                    recording.code = status_of(response.headers());
                    Ok(response.map(|inner| RecordedBody { inner, recording: Some(recording) }))
                }
                Err(error) => {
                    recording.finish(Some("UNAVAILABLE"));
                    Err(error)
                }
            }
        })
    }
}

struct Recording {
    metrics: Metrics,
    method: String,
    start: Instant,
    code: Option<&'static str>,
}

impl Recording {
    fn finish(self, code: Option<&'static str>) {
        // No status at all means the body ended early: the client went away.
        let code = code.or(self.code).unwrap_or("CANCELLED");
        self.metrics.record_rpc(&self.method, code, self.start.elapsed());
    }
}

pin_project_lite::pin_project! {
    /// A response body that records its call when it ends (or is dropped).
    pub struct RecordedBody<B> {
        #[pin]
        inner: B,
        recording: Option<Recording>,
    }

    impl<B> PinnedDrop for RecordedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(recording) = this.project().recording.take() {
                recording.finish(None);
            }
        }
    }
}

impl<B: Body> Body for RecordedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(recording)) = (frame.trailers_ref(), this.recording.as_mut())
                    && let Some(code) = status_of(trailers)
                {
                    recording.code = Some(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(recording) = this.recording.take() {
                    recording.finish(Some("INTERNAL"));
                }
            }
            Poll::Ready(None) => {
                if let Some(recording) = this.recording.take() {
                    recording.finish(None);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_get_their_canonical_names() {
        assert_eq!(code_name(b"0"), "OK");
        assert_eq!(code_name(b"5"), "NOT_FOUND");
        assert_eq!(code_name(b"16"), "UNAUTHENTICATED");
        assert_eq!(code_name(b"17"), "UNKNOWN");
        assert_eq!(code_name(b"x"), "UNKNOWN");
    }

    #[tokio::test]
    async fn counters_get_total_and_every_series_names_its_service() {
        let metrics = Metrics::new("sales");
        metrics.record_rpc("/sentra.sales.v1.SalesService/GetLead", "NOT_FOUND", Duration::from_millis(3));
        metrics.record_rpc("/made.up/Path", "UNIMPLEMENTED", Duration::from_millis(1));
        let text = metrics.render().await;
        assert!(
            text.contains(
                r#"sentra_rpc_requests_total{service="sales",method="/sentra.sales.v1.SalesService/GetLead",code="NOT_FOUND"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"method="unknown",code="UNIMPLEMENTED""#), "{text}");
        assert!(!text.contains("made.up"), "{text}");
        assert!(text.contains(r#"sentra_rpc_duration_seconds_count{service="sales",method="unknown"} 1"#), "{text}");
    }
}
