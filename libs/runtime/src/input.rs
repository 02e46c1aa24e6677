//! The front door of every server: a request is a well-formed gRPC call with one message, or it
//! gets a clean, short answer before any handler (or the gateway's proxy) sees it.
//!
//! Every Sentra method takes exactly one request message (browsers cannot stream requests), so
//! [`InputGuardLayer`] reads the whole request body of a `/sentra.*` call, up to the message
//! limit, and checks its framing:
//!
//! | input | answer |
//! | --- | --- |
//! | not `POST` | HTTP 405 |
//! | content type not `application/grpc…` | HTTP 415 (the gRPC spec's answer) |
//! | no message, a truncated frame, a compression flag other than 0, bytes after the message | `INVALID_ARGUMENT` |
//! | a message larger than `server.max_message_bytes` | `RESOURCE_EXHAUSTED` |
//!
//! and then hands the handler the buffered body. A message whose bytes are not the method's
//! protobuf (random bytes, a truncated field, invalid UTF-8 in a string) fails tonic's decoder
//! with `INTERNAL` and the decoder's field paths in the message; the layer turns that answer into
//! `INVALID_ARGUMENT` "request message is malformed" and drops the internals. Health and
//! reflection (`/grpc.*`, where reflection streams requests) pass untouched.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use tonic::body::Body;
use tower::{Layer, Service};

/// The grpc-message prefix tonic's protobuf decoder failures carry.
const DECODE_FAILURE: &str = "failed to decode Protobuf message";

/// Why a request was refused at the door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a POST.
    Method,
    /// Not a gRPC content type.
    ContentType,
    /// Framing or message count is wrong: the sentence says what.
    Malformed(&'static str),
    /// The message is larger than the limit.
    TooLarge {
        /// The limit, in bytes.
        max: usize,
    },
}

impl Refusal {
    /// The answer to send: an HTTP status for non-gRPC requests, a gRPC status otherwise.
    pub fn into_response(self) -> Response<Body> {
        match self {
            Refusal::Method => plain(StatusCode::METHOD_NOT_ALLOWED, "gRPC calls are POST requests\n"),
            Refusal::ContentType => plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected application/grpc\n"),
            Refusal::Malformed(what) => tonic::Status::invalid_argument(what).into_http(),
            Refusal::TooLarge { max } => {
                tonic::Status::resource_exhausted(format!("request message larger than {max} bytes")).into_http()
            }
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(Bytes::from_static(text.as_bytes()))));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// Checks the headers of a Sentra call: POST with a gRPC content type.
pub fn check_headers<B>(request: &Request<B>) -> Result<(), Refusal> {
    if request.method() != Method::POST {
        return Err(Refusal::Method);
    }
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    if grpc { Ok(()) } else { Err(Refusal::ContentType) }
}

/// Checks a whole request body: exactly one uncompressed length-prefixed message of at most
/// `max` bytes.
pub fn check_frames(mut body: &[u8], max: usize) -> Result<(), Refusal> {
    if body.is_empty() {
        return Err(Refusal::Malformed("missing request message"));
    }
    if body.len() < 5 {
        return Err(Refusal::Malformed("truncated message frame"));
    }
    let flag = body.get_u8();
    let length = body.get_u32() as usize;
    if flag != 0 {
        return Err(Refusal::Malformed("compressed or unknown message frame (flag must be 0)"));
    }
    if length > max {
        return Err(Refusal::TooLarge { max });
    }
    match body.len().cmp(&length) {
        std::cmp::Ordering::Less => Err(Refusal::Malformed("truncated request message")),
        std::cmp::Ordering::Greater => Err(Refusal::Malformed("a call takes exactly one request message")),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// Whether a response is tonic's answer to an undecodable message.
fn is_decode_failure(response: &Response<Body>) -> bool {
    let headers = response.headers();
    headers.get("grpc-status").is_some_and(|v| v == "13")
        && headers.get("grpc-message").and_then(|v| v.to_str().ok()).is_some_and(|m| {
            let decoded = percent_decode(m);
            decoded.starts_with(DECODE_FAILURE)
        })
}

/// gRPC percent-decoding of `grpc-message` (RFC 3986 style, as the gRPC spec prescribes).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The guard as a tower layer, for a server's whole router.
#[derive(Debug, Clone, Copy)]
pub struct InputGuardLayer {
    max_message_bytes: usize,
}

impl InputGuardLayer {
    /// A guard accepting request messages of at most `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self { max_message_bytes }
    }
}

impl<S> Layer<S> for InputGuardLayer {
    type Service = InputGuard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InputGuard { inner, max: self.max_message_bytes }
    }
}

/// Service produced by [`InputGuardLayer`].
#[derive(Debug, Clone)]
pub struct InputGuard<S> {
    inner: S,
    max: usize,
}

impl<S> Service<Request<Body>> for InputGuard<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if !request.uri().path().starts_with("/sentra.") {
            return Box::pin(self.inner.call(request));
        }
        // The clone is the one made ready by poll_ready; the new clone waits for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let max = self.max;
        Box::pin(async move {
            if let Err(refusal) = check_headers(&request) {
                return Ok(refusal.into_response());
            }
            let (parts, body) = request.into_parts();
            // Room for the frame header and one byte more than allowed, to tell "too large".
            let bytes = match Limited::new(body, max.saturating_add(6)).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                    return Ok(Refusal::TooLarge { max }.into_response());
                }
                Err(_) => {
                    return Ok(tonic::Status::cancelled("the request body ended abnormally").into_http());
                }
            };
            if let Err(refusal) = check_frames(&bytes, max) {
                return Ok(refusal.into_response());
            }
            let response = inner.call(Request::from_parts(parts, Body::new(Full::new(bytes)))).await?;
            if is_decode_failure(&response) {
                return Ok(tonic::Status::invalid_argument("request message is malformed").into_http());
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![flag];
        out.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn one_whole_uncompressed_message_passes() {
        assert_eq!(check_frames(&frame(0, b"abc"), 10), Ok(()));
        assert_eq!(check_frames(&frame(0, b""), 10), Ok(()));
    }

    #[test]
    fn framing_errors_are_named() {
        let malformed = |r: Result<(), Refusal>| matches!(r, Err(Refusal::Malformed(_)));
        assert!(malformed(check_frames(b"", 10)));
        assert!(malformed(check_frames(&[0, 0, 0], 10)));
        assert!(malformed(check_frames(&frame(7, b"abc"), 10)));
        assert!(malformed(check_frames(&frame(1, b"abc"), 10)));
        assert!(malformed(check_frames(&frame(0, b"abc")[..6], 10)));
        let mut two = frame(0, b"abc");
        two.extend(frame(0, b"def"));
        assert!(malformed(check_frames(&two, 10)));
        assert_eq!(check_frames(&frame(0, &[0; 11]), 10), Err(Refusal::TooLarge { max: 10 }));
    }

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(
            percent_decode("failed to decode Protobuf message: x%25y%0A"),
            "failed to decode Protobuf message: x%y\n"
        );
        assert_eq!(percent_decode("bad %zz"), "bad %zz");
    }
}
