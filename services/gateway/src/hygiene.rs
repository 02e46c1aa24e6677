//! What every call goes through on the way in: metadata only the gateway may set is removed,
//! deadlines are bounded, and request messages are size-checked as they stream past.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

/// Prefix of the metadata the gateway sets for upstreams; never accepted from outside.
pub const INTERNAL_PREFIX: &str = "x-sentra-";
/// The brand the call was authorized on (or the brand of the host name).
pub const BRAND_HEADER: &str = "x-sentra-brand-id";
/// The organization of the caller (or of the host name's brand, for public calls).
pub const ORGANIZATION_HEADER: &str = "x-sentra-organization-id";
/// gRPC deadline header.
pub const TIMEOUT_HEADER: &str = "grpc-timeout";

/// Removes every `x-sentra-*` header, returning the caller's `x-sentra-brand-id` (a brand
/// *selector*, checked before use, never forwarded as sent).
pub fn strip_internal(headers: &mut HeaderMap) -> Option<HeaderValue> {
    let requested = headers.get(BRAND_HEADER).cloned();
    let internal: Vec<_> = headers.keys().filter(|k| k.as_str().starts_with(INTERNAL_PREFIX)).cloned().collect();
    for name in internal {
        headers.remove(name);
    }
    requested
}

/// The host name the caller used: `x-forwarded-host` (set by a proxy that rewrote the host), else
/// the `:authority` (HTTP/2) or `host` header. Borrowed: this runs on every call.
pub fn host<'a>(headers: &'a HeaderMap, uri: &'a http::Uri) -> Option<&'a str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("x-forwarded-host")
        .map(|h| h.split(',').next().unwrap_or_default().trim())
        .or_else(|| uri.authority().map(http::uri::Authority::as_str))
        .or_else(|| header("host"))
}

/// The client's address: the right-most `x-forwarded-for` entry (the one Envoy appended from the
/// connection it accepted; entries left of it are whatever the client claimed), else the peer.
pub fn client_ip(headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    // Only the very last entry: when it is unreadable, falling back to the one before would
    // trust a value the client wrote.
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse::<IpAddr>().ok())
        .or_else(|| peer.map(|p| p.ip()))
}

/// The deadline bounds of `edge`, with their `grpc-timeout` values formatted once (not per call).
#[derive(Debug, Clone)]
pub struct Deadlines {
    default: Duration,
    max: Duration,
    default_value: HeaderValue,
    max_value: HeaderValue,
}

impl Deadlines {
    /// `default` for calls without a readable `grpc-timeout`, at most `max` (the default too).
    pub fn new(default: Duration, max: Duration) -> Self {
        let default = default.min(max);
        let value =
            |d: Duration| HeaderValue::from_str(&format_timeout(d)).unwrap_or_else(|_| HeaderValue::from_static("1m"));
        Self { default, max, default_value: value(default), max_value: value(max) }
    }
}

/// Sets the call's deadline: the default when absent or unreadable, the maximum when longer.
/// Returns it.
pub fn bound_deadline(headers: &mut HeaderMap, bounds: &Deadlines) -> Duration {
    match headers.get(TIMEOUT_HEADER).and_then(|v| v.to_str().ok()).and_then(parse_timeout) {
        Some(asked) if asked <= bounds.max => asked,
        Some(_) => {
            headers.insert(TIMEOUT_HEADER, bounds.max_value.clone());
            bounds.max
        }
        None => {
            headers.insert(TIMEOUT_HEADER, bounds.default_value.clone());
            bounds.default
        }
    }
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_timeout(value: &str) -> Option<Duration> {
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = value.split_at(split);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Formats a deadline for `grpc-timeout`, in milliseconds while they fit in 8 digits.
pub fn format_timeout(deadline: Duration) -> String {
    let millis = deadline.as_millis().max(1);
    if millis < 100_000_000 { format!("{millis}m") } else { format!("{}S", deadline.as_secs().min(99_999_999)) }
}

/// Set when a request body carried a message over the limit, so the failed upstream call is
/// reported as RESOURCE_EXHAUSTED instead of a transport error.
#[derive(Debug, Clone, Default)]
pub struct Oversize(Arc<AtomicUsize>);

impl Oversize {
    /// The declared size of the offending message, if any.
    pub fn get(&self) -> Option<usize> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            size => Some(size),
        }
    }
}

/// The request body, passed through unchanged, but failing as soon as a gRPC message header
/// (1 flag byte + 4 length bytes) announces more than `max` bytes; nothing is buffered.
pub fn limit_messages(body: axum::body::Body, max: usize, flag: Oversize) -> LimitedBody {
    LimitedBody { inner: body, frames: FrameCheck::new(max), flag }
}

/// See [`limit_messages`]: the body type the upstream client sends (a concrete type, so
/// forwarding does not box it). End-of-stream and size hints are the inner body's, so the last DATA
/// frame upstream carries END_STREAM; empty DATA frames are dropped, because HTTP/2 servers count
/// them as abuse (h2 answers `too_many_data_frames` with GOAWAY, failing every call on the
/// shared connection).
#[derive(Debug)]
pub struct LimitedBody {
    inner: axum::body::Body,
    frames: FrameCheck,
    flag: Oversize,
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        loop {
            let frame = match std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(error)) => return Poll::Ready(Some(Err(tonic::Status::from_error(error.into())))),
                Some(Ok(frame)) => frame,
            };
            if let Some(data) = frame.data_ref() {
                if data.is_empty() {
                    continue;
                }
                if let Err(size) = this.frames.feed(data) {
                    this.flag.0.store(size.max(1), Ordering::Relaxed);
                    return Poll::Ready(Some(Err(tonic::Status::resource_exhausted("request message too large"))));
                }
            }
            return Poll::Ready(Some(Ok(frame)));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Walks the gRPC length-prefixed framing across arbitrary chunk boundaries.
#[derive(Debug)]
struct FrameCheck {
    max: usize,
    header: [u8; 5],
    have: usize,
    remaining: usize,
}

impl FrameCheck {
    fn new(max: usize) -> Self {
        Self { max, header: [0; 5], have: 0, remaining: 0 }
    }

    /// Consumes one chunk; `Err(size)` on a message over the limit.
    fn feed(&mut self, chunk: &Bytes) -> Result<(), usize> {
        let mut data: &[u8] = chunk;
        while !data.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(data.len());
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (5 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 5 {
                self.have = 0;
                let len = u32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]);
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > self.max {
                    return Err(len);
                }
                self.remaining = len;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_every_internal_header_and_keeps_the_brand_selector() {
        let mut headers = HeaderMap::new();
        headers.insert("x-sentra-organization-id", HeaderValue::from_static("forged"));
        headers.insert("x-sentra-user-id", HeaderValue::from_static("forged"));
        headers.insert("x-sentra-brand-id", HeaderValue::from_static("b"));
        headers.insert("authorization", HeaderValue::from_static("Bearer t"));
        assert_eq!(strip_internal(&mut headers), Some(HeaderValue::from_static("b")));
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn deadlines_get_a_default_and_a_cap() {
        let (default, max) = (Duration::from_secs(10), Duration::from_secs(60));
        let bounds = Deadlines::new(default, max);
        let mut headers = HeaderMap::new();
        assert_eq!(bound_deadline(&mut headers, &bounds), default);
        assert_eq!(headers[TIMEOUT_HEADER], "10000m");
        headers.insert(TIMEOUT_HEADER, HeaderValue::from_static("2H"));
        assert_eq!(bound_deadline(&mut headers, &bounds), max);
        assert_eq!(headers[TIMEOUT_HEADER], "60000m");
        headers.insert(TIMEOUT_HEADER, HeaderValue::from_static("250m"));
        assert_eq!(bound_deadline(&mut headers, &bounds), Duration::from_millis(250));
        assert_eq!(headers[TIMEOUT_HEADER], "250m");
        headers.insert(TIMEOUT_HEADER, HeaderValue::from_static("soon"));
        assert_eq!(bound_deadline(&mut headers, &bounds), default);
        assert_eq!(headers[TIMEOUT_HEADER], "10000m");
        assert_eq!(parse_timeout("123456789S"), None);
        assert_eq!(parse_timeout("5x"), None);
        assert_eq!(parse_timeout("7u"), Some(Duration::from_micros(7)));
    }

    #[test]
    fn the_right_most_forwarded_address_counts() {
        let mut headers = HeaderMap::new();
        let peer: SocketAddr = "10.0.0.9:5000".parse().unwrap();
        assert_eq!(client_ip(&headers, Some(peer)), Some(peer.ip()));
        headers.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 203.0.113.7"));
        assert_eq!(client_ip(&headers, Some(peer)), "203.0.113.7".parse().ok());
    }

    #[test]
    fn frames_are_checked_across_chunks() {
        let mut check = FrameCheck::new(10);
        let mut message = vec![0u8, 0, 0, 0, 4, 1, 2, 3, 4];
        message.extend_from_slice(&[0, 0, 0, 0, 0]);
        for chunk in message.chunks(2) {
            assert!(check.feed(&Bytes::copy_from_slice(chunk)).is_ok());
        }
        let big = [0u8, 0, 0, 0, 11];
        assert_eq!(check.feed(&Bytes::copy_from_slice(&big[..3])), Ok(()));
        assert_eq!(check.feed(&Bytes::copy_from_slice(&big[3..])), Err(11));
    }
}
