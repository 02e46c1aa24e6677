//! Request id and W3C `traceparent` propagation.
//!
//! [`RequestContextLayer`] runs around every incoming call: it keeps the caller's `x-request-id`
//! (or creates one), continues the caller's trace (or starts one) with a fresh span id, exposes
//! both to the handler as [`RequestContext`] (task-local, and in the request headers), opens a
//! tracing span carrying them, and echoes the request id in the response. Outgoing calls made
//! while handling the request copy them with [`RequestContext::inject`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;

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
}

impl RequestContext {
    /// Context for an incoming request: continues what the caller sent, fills in what it did not.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let request_id = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let trace_id = headers
            .get(TRACEPARENT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_trace_id)
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        Self { request_id, trace_id, span_id }
    }

    /// The `traceparent` value naming this hop as the parent of downstream calls.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
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

/// Trace id of a valid version-00 `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), else `None`.
fn parse_trace_id(value: &str) -> Option<String> {
    let mut parts = value.split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = parts.next().is_none()
        && version == "00"
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0');
    valid.then(|| trace.to_ascii_lowercase())
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
        let ctx = RequestContext::from_headers(req.headers());
        ctx.inject(req.headers_mut());
        let span = tracing::info_span!(
            "grpc",
            method = %req.uri().path(),
            request_id = %ctx.request_id,
            trace_id = %ctx.trace_id,
        );
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
}
