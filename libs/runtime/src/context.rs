//! Request id and W3C `traceparent` propagation, and the spans around units of work.
//!
//! [`RequestContextLayer`] runs around every incoming call: it keeps the caller's `x-request-id`
//! (or creates one), opens a server span continuing the caller's trace (or starting one), exposes
//! both to the handler as [`RequestContext`] (task-local, and in the request headers), and echoes
//! the request id in the response. Outgoing calls made while handling the request copy them with
//! [`RequestContext::inject`]; other units of work (a relay publish, a consumed message) open
//! their span and context with [`RequestContext::start`].
//!
//! When traces are exported (see [`crate::telemetry`]) the trace and span ids are the
//! OpenTelemetry span's, so every `traceparent` written downstream (gRPC metadata, event
//! metadata, AMQP headers) names a span the collector receives. Without an exporter the ids are
//! still generated and carried, so logs of one request correlate across services.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt as _;
use tower::{Layer, Service};
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Header carrying the request id across hops.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Header carrying the W3C trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// Identity of the call being handled, for logs and for the calls it makes downstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The request id (caller's, or a new UUIDv7).
    pub request_id: String,
    /// 32 hex digits shared by every hop of one trace.
    pub trace_id: String,
    /// 16 hex digits naming this hop.
    pub span_id: String,
    /// Whether the trace is being recorded (the W3C `sampled` flag passed downstream).
    pub sampled: bool,
}

/// One `traceparent` value as an OpenTelemetry carrier.
struct TraceparentCarrier<'a>(Option<&'a str>);

impl Extractor for TraceparentCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.filter(|_| key.eq_ignore_ascii_case(TRACEPARENT_HEADER))
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT_HEADER]
    }
}

impl RequestContext {
    /// Context for an incoming request without a span of its own: continues what the caller
    /// sent, fills in what it did not.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Self::start(&Span::none(), header(REQUEST_ID_HEADER), header(TRACEPARENT_HEADER))
    }

    /// Context for the work done in `span`: makes `span` a child of `traceparent` (the remote
    /// parent: a caller, the event that caused this message) and names it as the parent of
    /// downstream work. Call it before `span` is first entered. A missing or malformed
    /// `traceparent` starts a new trace; a missing request id is generated.
    pub fn start(span: &Span, request_id: Option<&str>, traceparent: Option<&str>) -> Self {
        let request_id = request_id
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
        let remote = traceparent.and_then(parse_traceparent);
        if remote.is_some() {
            let parent =
                opentelemetry::global::get_text_map_propagator(|p| p.extract(&TraceparentCarrier(traceparent)));
            // Fails only without the OpenTelemetry layer (traces off) or for a disabled span.
            let _ = span.set_parent(parent);
        }
        let otel = span.context();
        let own = otel.span().span_context().clone();
        if own.is_valid() {
            return Self {
                request_id,
                trace_id: own.trace_id().to_string(),
                span_id: own.span_id().to_string(),
                sampled: own.is_sampled(),
            };
        }
        let (trace_id, sampled) = match remote {
            Some((trace_id, sampled)) => (trace_id, sampled),
            None => (uuid::Uuid::new_v4().simple().to_string(), true),
        };
        let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        Self { request_id, trace_id, span_id, sampled }
    }

    /// The `traceparent` value naming this hop as the parent of downstream calls.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, if self.sampled { "01" } else { "00" })
    }

    /// The context of the call being handled by this task, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Writes the request id and traceparent into outgoing metadata headers.
    pub fn inject(&self, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            headers.insert(REQUEST_ID_HEADER, v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.traceparent()) {
            headers.insert(TRACEPARENT_HEADER, v);
        }
    }

    /// Runs `fut` with this context as the current one.
    pub async fn scope<F: Future>(self, fut: F) -> F::Output {
        CURRENT.scope(self, fut).await
    }
}

/// A client span for the gRPC call `path` (`/package.Service/Method`), child of the current
/// span, and the context naming it: inject that into the call and instrument the call with the
/// span, so the server's span becomes its child.
pub fn client_call(path: &str) -> (Span, RequestContext) {
    let span = rpc_span(path, "client");
    let current = RequestContext::current();
    let request_id = current.as_ref().map(|c| c.request_id.as_str());
    let traceparent = current.as_ref().map(RequestContext::traceparent);
    // With traces exported, the span's parent is the current span already; without, the ids
    // continue the current context's trace.
    let ctx = RequestContext::start(&span, request_id, traceparent.as_deref());
    span.record("request_id", ctx.request_id.as_str());
    span.record("trace_id", ctx.trace_id.as_str());
    (span, ctx)
}

/// A request for the gRPC call `path` carrying the current request id and the traceparent of
/// a new client span, and that span: instrument the call with it.
pub fn outgoing<T>(path: &str, message: T) -> (tonic::Request<T>, Span) {
    let (span, ctx) = client_call(path);
    let mut request = tonic::Request::new(message);
    if let Ok(value) = ctx.request_id.parse() {
        request.metadata_mut().insert(REQUEST_ID_HEADER, value);
    }
    if let Ok(value) = ctx.traceparent().parse() {
        request.metadata_mut().insert(TRACEPARENT_HEADER, value);
    }
    (request, span)
}

/// The span of a gRPC call to `path` on the `kind` ("server" or "client") side, named and
/// attributed as OpenTelemetry's RPC conventions say; `request_id` and `trace_id` are recorded
/// once known.
fn rpc_span(path: &str, kind: &'static str) -> Span {
    let (service, method) = rpc_names(path);
    tracing::info_span!(
        "grpc",
        otel.name = %path.trim_start_matches('/'),
        otel.kind = kind,
        rpc.system = "grpc",
        rpc.service = %service,
        rpc.method = %method,
        request_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    )
}

/// `(service, method)` of a gRPC path, `("unknown", "unknown")` for anything else.
fn rpc_names(path: &str) -> (&str, &str) {
    path.trim_start_matches('/').split_once('/').unwrap_or(("unknown", "unknown"))
}

/// Trace id and sampled flag of a valid version-00 `traceparent`
/// (`00-<32 hex>-<16 hex>-<2 hex>`), else `None`.
fn parse_traceparent(value: &str) -> Option<(String, bool)> {
    let mut parts = value.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = parts.next().is_none()
        && version == "00"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    let sampled = u8::from_str_radix(flags, 16).ok()? & 1 == 1;
    valid.then(|| (trace.to_ascii_lowercase(), sampled))
}

/// Tower layer installing [`RequestContext`] around every call.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestContextLayer;

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContextService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestContextService { inner }
    }
}

/// Service produced by [`RequestContextLayer`].
#[derive(Debug, Clone)]
pub struct RequestContextService<S> {
    inner: S,
}

impl<S, B, RB> Service<Request<B>> for RequestContextService<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Send,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let span = rpc_span(req.uri().path(), "server");
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let ctx = RequestContext::start(&span, header(REQUEST_ID_HEADER), header(TRACEPARENT_HEADER));
        span.record("request_id", ctx.request_id.as_str());
        span.record("trace_id", ctx.trace_id.as_str());
        ctx.inject(req.headers_mut());
        let request_id = HeaderValue::from_str(&ctx.request_id).ok();
        let fut = self.inner.call(req);
        Box::pin(
            async move {
                let mut response = ctx.scope(fut).await?;
                if let Some(id) = request_id {
                    response.headers_mut().insert(REQUEST_ID_HEADER, id);
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_trace_and_replaces_the_span() {
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT_HEADER,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("req-1"));
        let ctx = RequestContext::from_headers(&headers);
        assert_eq!(ctx.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.request_id, "req-1");
        assert_ne!(ctx.span_id, "00f067aa0ba902b7");
        assert!(ctx.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    }

    #[test]
    fn starts_a_new_trace_for_missing_or_malformed_input() {
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-xyz-00f067aa0ba902b7-01",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(TRACEPARENT_HEADER, HeaderValue::from_str(bad).unwrap());
            let ctx = RequestContext::from_headers(&headers);
            assert_eq!(ctx.trace_id.len(), 32, "{bad}");
            assert!(!bad.contains(&ctx.trace_id), "{bad}");
            assert!(!ctx.request_id.is_empty());
        }
    }

    #[test]
    fn keeps_the_callers_sampling_decision() {
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT_HEADER,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        );
        let ctx = RequestContext::from_headers(&headers);
        assert!(!ctx.sampled);
        assert!(ctx.traceparent().ends_with("-00"));
        assert!(RequestContext::from_headers(&HeaderMap::new()).traceparent().ends_with("-01"));
    }
}
