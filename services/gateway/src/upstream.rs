//! The gateway's HTTP/2 (h2c) client towards one bounded context: a few pooled connections per
//! address, balanced per call.
//!
//! Every forwarded call pays for its client, so this is the `h2` crate itself, driven from the
//! task that serves the call: a call takes the next connection round robin (over all addresses,
//! interleaved so consecutive calls alternate between them), opens a stream on it, and streams the
//! request body into it while it waits for the response head. Only the connection itself runs as
//! a task. hyper's client (used before) runs each call as two more tasks behind a channel (one to
//! send the request, one to pipe its body), and tonic's `Channel` adds a buffer task and a
//! balancer on top; each hop is a wake-up and a hand-over per call, which at the edge is most of
//! what a call costs the gateway.
//!
//! When the response head arrives before the request body has ended (a streaming call, or an
//! upstream that answers early), the rest of the body is piped by a task of its own. Flow control
//! is respected both ways: a request chunk is sent only as the upstream grants capacity, and
//! response data is released to the upstream only as the caller's side consumes it.
//!
//! Connections open lazily (the first calls wait for one; the other slots connect in the
//! background), each TCP connect bounded by `edge.connect_timeout`. A closed connection (replica
//! gone, GOAWAY) is skipped and reconnected in the background, with a growing pause between
//! failed attempts, so a dead replica stops getting calls as soon as its connections fail, and
//! gets them again once it answers. A call whose connection turns out closed before a stream was
//! opened is tried on the next one.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use http::uri::{Authority, Parts, Scheme};
use http::{HeaderMap, Request, Response, Uri};
use http_body::{Body, Frame};
use sentra_runtime::status::error_chain;
use sentra_runtime::tls::Connector;

use crate::hygiene::LimitedBody;

/// Stream-level receive window announced to upstreams (hyper's client default).
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
/// Connection-level receive window announced to upstreams (hyper's client default).
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// First pause after a failed connect; doubled per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between connect attempts to an address that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// An upstream address the gateway cannot use.
#[derive(Debug, thiserror::Error)]
#[error("upstream address {0:?} is not an http(s)://host:port URI")]
pub struct InvalidAddress(pub String);

/// Why a call could not be handed to (or answered by) the upstream.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No connection could be opened.
    #[error("connect to {address}: {detail}")]
    Connect {
        /// The address.
        address: Authority,
        /// What failed.
        detail: String,
    },
    /// The HTTP/2 exchange failed.
    #[error(transparent)]
    Http(#[from] h2::Error),
    /// The caller's request body failed (for example a message over the size limit).
    #[error("request body: {0}")]
    Body(tonic::Status),
}

/// The connections to one context's addresses.
#[derive(Debug)]
pub struct Upstream {
    slots: Box<[Arc<Slot>]>,
    next: AtomicUsize,
}

impl Upstream {
    /// `connections` lazily opened HTTP/2 connections to each of `addresses` (`http://host:port`);
    /// `None` without an address.
    pub fn new(
        addresses: &[String],
        connections: usize,
        connect_timeout: Duration,
        connector: &Connector,
    ) -> Result<Option<Self>, InvalidAddress> {
        let targets = addresses.iter().map(|a| Target::parse(a)).collect::<Result<Vec<_>, _>>()?;
        let mut builder = h2::client::Builder::new();
        builder.enable_push(false).initial_window_size(STREAM_WINDOW).initial_connection_window_size(CONNECTION_WINDOW);
        // Interleaved (a1, b1, a2, b2, ...): round robin alternates between addresses.
        let slots: Box<[Arc<Slot>]> = (0..connections.max(1))
            .flat_map(|_| targets.iter())
            .map(|target| {
                Arc::new(Slot {
                    target: target.clone(),
                    connector: connector.clone(),
                    connect_timeout,
                    builder: builder.clone(),
                    connection: Mutex::new(None),
                    gate: tokio::sync::Mutex::new(()),
                    backoff: Mutex::new(Backoff::default()),
                    reconnecting: AtomicBool::new(false),
                })
            })
            .collect();
        Ok((!slots.is_empty()).then(|| Self { slots, next: AtomicUsize::new(0) }))
    }

    /// Sends `request` (its path and headers as received) to the next connection and returns the
    /// upstream's response; its body streams from the upstream as the caller reads it.
    pub async fn send(&self, request: Request<LimitedBody>) -> Result<Response<ResponseBody>, ForwardError> {
        let (mut parts, body) = request.into_parts();
        let count = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut failure = None;
        // First the connections that are up, round robin from this call's turn; if none takes
        // the call (first calls, or every replica failing), wait for a connection.
        for wait in [false, true] {
            for slot in (0..count).map(|i| &self.slots[(start + i) % count]) {
                let connection = if wait {
                    match slot.connect().await {
                        Ok(connection) => connection,
                        Err(error) => {
                            failure = Some(error);
                            continue;
                        }
                    }
                } else {
                    let Some(connection) = slot.ready() else {
                        slot.reconnect_in_background();
                        continue;
                    };
                    connection
                };
                let sender = match connection.sender.ready().await {
                    Ok(sender) => sender,
                    Err(error) => {
                        // Closed before it took the call: nothing reached the upstream.
                        connection.closed.store(true, Ordering::Release);
                        slot.reconnect_in_background();
                        failure = Some(ForwardError::Http(error));
                        continue;
                    }
                };
                let head = slot.head(&mut parts);
                return exchange(sender, head, body).await;
            }
        }
        Err(failure.unwrap_or_else(|| self.slots[start % count].unreachable("no connection")))
    }
}

/// Opens the stream, streams the request body into it and waits for the response head, all from
/// the calling task; a body still going when the head arrives is finished by a task of its own.
async fn exchange(
    mut sender: SendRequest<Bytes>,
    head: Request<()>,
    body: LimitedBody,
) -> Result<Response<ResponseBody>, ForwardError> {
    let end = body.is_end_stream();
    let (mut response, stream) = sender.send_request(head, end)?;
    let mut pipe = (!end).then(|| Pipe { stream, body, pending: None });
    let response = std::future::poll_fn(|cx| {
        if let Some(running) = pipe.as_mut() {
            match Pin::new(running).poll(cx) {
                Poll::Ready(Ok(())) => pipe = None,
                // The caller's body failed: the upstream must not take a truncated request.
                Poll::Ready(Err(PipeError::Body(status))) => return Poll::Ready(Err(ForwardError::Body(status))),
                // The upstream reset or refused the stream: the response future says why (or
                // still brings a complete response, as a reset after answering is allowed).
                Poll::Ready(Err(PipeError::Stream)) => pipe = None,
                Poll::Pending => {}
            }
        }
        Pin::new(&mut response).poll(cx).map_err(ForwardError::Http)
    })
    .await?;
    if let Some(rest) = pipe {
        tokio::spawn(async move {
            if let Err(PipeError::Body(status)) = rest.await {
                tracing::debug!(%status, "Request body failed after the response began.");
            }
        });
    }
    Ok(response.map(|recv| ResponseBody { recv, data_done: false }))
}

/// Why piping a request body stopped early.
enum PipeError {
    /// The caller's body failed; the stream was reset.
    Body(tonic::Status),
    /// The upstream's side of the stream is gone (reset, or the connection failed).
    Stream,
}

/// Streams a request body into its HTTP/2 stream, a chunk at a time as the upstream grants
/// capacity (as hyper's own pipe does: nothing is reserved before a chunk is in hand).
struct Pipe {
    stream: SendStream<Bytes>,
    body: LimitedBody,
    /// A chunk waiting for capacity, and whether it ends the body.
    pending: Option<(Bytes, bool)>,
}

impl Future for Pipe {
    type Output = Result<(), PipeError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            // Registered while waiting for the body or for capacity, so a reset wakes the task.
            if this.stream.poll_reset(cx).is_ready() {
                return Poll::Ready(Err(PipeError::Stream));
            }
            if let Some((chunk, end)) = this.pending.take() {
                if this.stream.capacity() == 0 {
                    match this.stream.poll_capacity(cx) {
                        Poll::Ready(Some(Ok(_))) => {}
                        Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(Err(PipeError::Stream)),
                        Poll::Pending => {
                            this.pending = Some((chunk, end));
                            return Poll::Pending;
                        }
                    }
                    if this.stream.capacity() == 0 {
                        this.pending = Some((chunk, end));
                        continue;
                    }
                }
                this.stream.send_data(chunk, end).map_err(|_| PipeError::Stream)?;
                if end {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    // Never empty: `LimitedBody` drops empty DATA frames.
                    Ok(chunk) => {
                        this.stream.reserve_capacity(1);
                        this.pending = Some((chunk, this.body.is_end_stream()));
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            this.stream.reserve_capacity(0);
                            this.stream.send_trailers(trailers).map_err(|_| PipeError::Stream)?;
                            return Poll::Ready(Ok(()));
                        }
                    }
                },
                Some(Err(status)) => {
                    this.stream.send_reset(h2::Reason::CANCEL);
                    return Poll::Ready(Err(PipeError::Body(status)));
                }
                None => {
                    this.stream.send_data(Bytes::new(), true).map_err(|_| PipeError::Stream)?;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

/// The upstream's response body: data as it arrives (its flow-control window released as the
/// caller's side takes each chunk), then the trailers (gRPC's status).
#[derive(Debug)]
pub struct ResponseBody {
    recv: RecvStream,
    data_done: bool,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        if !this.data_done {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(chunk)) => {
                    // Only fails for a stream already gone, which the next poll reports.
                    let _ = this.recv.flow_control().release_capacity(chunk.len());
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => this.data_done = true,
            }
        }
        match ready!(this.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(error) => Poll::Ready(Some(Err(error))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

/// Where a slot connects.
#[derive(Debug, Clone)]
struct Target {
    /// `host:port`, also the `:authority` of forwarded calls (as tonic's channel sent it).
    authority: Authority,
    /// `http` or `https`, also the `:scheme` of forwarded calls.
    scheme: Scheme,
    /// The address, to connect to (resolved per connect).
    uri: Uri,
}

impl Target {
    fn parse(address: &str) -> Result<Self, InvalidAddress> {
        let invalid = || InvalidAddress(address.to_owned());
        let uri: Uri = address.parse().map_err(|_| invalid())?;
        let scheme = uri.scheme().filter(|s| **s == Scheme::HTTP || **s == Scheme::HTTPS).ok_or_else(invalid)?.clone();
        let authority = uri.authority().ok_or_else(invalid)?.clone();
        Ok(Self { authority, scheme, uri })
    }
}

#[derive(Debug, Default)]
struct Backoff {
    /// No connect attempt before this.
    retry_at: Option<Instant>,
    pause: Duration,
    last_error: String,
}

/// One connection (or none yet) to one address.
#[derive(Debug)]
struct Slot {
    target: Target,
    connector: Connector,
    connect_timeout: Duration,
    builder: h2::client::Builder,
    connection: Mutex<Option<Connection>>,
    /// Held while connecting, so concurrent callers wait for one attempt instead of racing.
    gate: tokio::sync::Mutex<()>,
    backoff: Mutex<Backoff>,
    /// A background reconnect is scheduled.
    reconnecting: AtomicBool,
}

impl Slot {
    /// The connection, if it is up.
    fn ready(&self) -> Option<Connection> {
        let connection = self.connection.lock().unwrap_or_else(PoisonError::into_inner);
        connection.as_ref().filter(|c| !c.closed.load(Ordering::Acquire)).cloned()
    }

    /// The request head towards this address: the headers as received (taken out of `parts`),
    /// the path as received, this address as authority.
    fn head(&self, parts: &mut http::request::Parts) -> Request<()> {
        let mut head = Request::new(());
        *head.method_mut() = parts.method.clone();
        *head.uri_mut() = self.uri_for(&parts.uri);
        *head.headers_mut() = std::mem::take(&mut parts.headers);
        strip_connection_headers(head.headers_mut());
        head
    }

    /// The call's URI towards this address: the path as received, this address as authority.
    fn uri_for(&self, uri: &Uri) -> Uri {
        let mut parts = Parts::default();
        parts.scheme = Some(self.target.scheme.clone());
        parts.authority = Some(self.target.authority.clone());
        parts.path_and_query = uri.path_and_query().cloned();
        // Scheme, authority and a path (or none) always make a valid URI.
        Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
    }

    fn unreachable(&self, detail: &str) -> ForwardError {
        ForwardError::Connect { address: self.target.authority.clone(), detail: detail.to_owned() }
    }

    /// Reconnects without holding up the call that noticed, unless an attempt is already
    /// scheduled or the address is pausing after failures.
    fn reconnect_in_background(self: &Arc<Self>) {
        let pausing =
            self.backoff.lock().unwrap_or_else(PoisonError::into_inner).retry_at.is_some_and(|at| Instant::now() < at);
        if pausing || self.reconnecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let slot = self.clone();
        tokio::spawn(async move {
            if let Err(error) = slot.connect().await {
                tracing::debug!(%error, "Upstream reconnect failed.");
            }
            slot.reconnecting.store(false, Ordering::Release);
        });
    }

    /// The connection, opened now if it is not up (one attempt at a time per slot).
    async fn connect(&self) -> Result<Connection, ForwardError> {
        let _gate = self.gate.lock().await;
        if let Some(connection) = self.ready() {
            return Ok(connection);
        }
        {
            let backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
            if backoff.retry_at.is_some_and(|at| Instant::now() < at) {
                return Err(self.unreachable(&backoff.last_error));
            }
        }
        match tokio::time::timeout(self.connect_timeout, self.handshake()).await {
            Ok(Ok(connection)) => {
                *self.connection.lock().unwrap_or_else(PoisonError::into_inner) = Some(connection.clone());
                *self.backoff.lock().unwrap_or_else(PoisonError::into_inner) = Backoff::default();
                Ok(connection)
            }
            Ok(Err(detail)) => Err(self.failed(detail)),
            Err(_) => Err(self.failed("connect timed out".to_owned())),
        }
    }

    fn failed(&self, detail: String) -> ForwardError {
        let mut backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
        backoff.pause = (backoff.pause * 2).clamp(MIN_BACKOFF, MAX_BACKOFF);
        backoff.retry_at = Some(Instant::now() + backoff.pause);
        backoff.last_error.clone_from(&detail);
        ForwardError::Connect { address: self.target.authority.clone(), detail }
    }

    async fn handshake(&self) -> Result<Connection, String> {
        // TLS for https:// addresses; TCP_NODELAY either way (small gRPC frames must not wait
        // for ACKs).
        let stream = self.connector.connect(&self.target.uri).await.map_err(|e| error_chain(&e))?;
        let (sender, connection) = self.builder.handshake::<_, Bytes>(stream).await.map_err(|e| error_chain(&e))?;
        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        let address = self.target.authority.clone();
        tokio::spawn(async move {
            // The connection ends when the upstream goes away (or sent GOAWAY and its last
            // streams ended); calls then skip it.
            if let Err(error) = connection.await {
                tracing::debug!(%address, %error, "Upstream connection ended.");
            }
            flag.store(true, Ordering::Release);
        });
        Ok(Connection { sender, closed })
    }
}

/// An open HTTP/2 connection: a handle to open streams on, and whether it has ended.
#[derive(Debug, Clone)]
struct Connection {
    sender: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
}

/// Headers that are about one HTTP/1 connection and are malformed in HTTP/2 (h2 refuses a
/// request carrying them); `te` may only say `trailers`, which gRPC requires.
fn strip_connection_headers(headers: &mut HeaderMap) {
    for name in ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"] {
        headers.remove(name);
    }
    if headers.get(http::header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(http::header::TE);
    }
}
