//! The gateway's HTTP/2 (h2c) client towards one bounded context: a few pooled connections per
//! address, balanced per call.
//!
//! Every forwarded call pays for its client, so this is hyper's HTTP/2 connection API with as
//! little around it as possible: a call takes the next connection round robin (over all addresses,
//! interleaved so consecutive calls alternate between them) and hands the request to it directly.
//! tonic's `Channel` puts a buffer in front (one more channel hop and task wake-up per call) and a
//! balancer that polls its endpoints' readiness per call; neither is needed here, because an
//! HTTP/2 connection is always ready for one more stream (h2 queues it within the peer's
//! concurrency limit).
//!
//! Connections open lazily (the first calls wait for one; the other slots connect in the
//! background), each TCP connect bounded by `edge.connect_timeout`. A closed connection (replica
//! gone, GOAWAY) is skipped and reconnected in the background, with a growing pause between
//! failed attempts, so a dead replica stops getting calls as soon as its connections fail, and
//! gets them again once it answers. A request a dying connection did not take is retried on the
//! next one.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::uri::{Authority, Parts, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::hygiene::LimitedBody;

/// First pause after a failed connect; doubled per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between connect attempts to an address that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// An upstream address the gateway cannot use.
#[derive(Debug, thiserror::Error)]
#[error("upstream address {0:?} is not an http://host:port URI")]
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
    Http(#[from] hyper::Error),
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
    ) -> Result<Option<Self>, InvalidAddress> {
        let targets = addresses.iter().map(|a| Target::parse(a)).collect::<Result<Vec<_>, _>>()?;
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder.timer(TokioTimer::new()).adaptive_window(true);
        // Interleaved (a1, b1, a2, b2, ...): round robin alternates between addresses.
        let slots: Box<[Arc<Slot>]> = (0..connections.max(1))
            .flat_map(|_| targets.iter())
            .map(|target| {
                Arc::new(Slot {
                    target: target.clone(),
                    connect_timeout,
                    builder: builder.clone(),
                    sender: Mutex::new(None),
                    gate: tokio::sync::Mutex::new(()),
                    backoff: Mutex::new(Backoff::default()),
                    reconnecting: AtomicBool::new(false),
                })
            })
            .collect();
        Ok((!slots.is_empty()).then(|| Self { slots, next: AtomicUsize::new(0) }))
    }

    /// Sends `request` (its path and headers as received) to the next connection.
    pub async fn send(&self, mut request: Request<LimitedBody>) -> Result<Response<Incoming>, ForwardError> {
        let count = self.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut failure = None;
        // First the connections that are up, round robin from this call's turn; if none takes
        // the call (first calls, or every replica failing), wait for a connection.
        for wait in [false, true] {
            for slot in (0..count).map(|i| &self.slots[(start + i) % count]) {
                let sender = if wait {
                    match slot.connect().await {
                        Ok(sender) => sender,
                        Err(error) => {
                            failure = Some(error);
                            continue;
                        }
                    }
                } else {
                    let Some(sender) = slot.ready() else {
                        slot.reconnect_in_background();
                        continue;
                    };
                    sender
                };
                match slot.send(sender, request).await {
                    Ok(response) => return Ok(response),
                    Err(Retry::No(error)) => return Err(error),
                    Err(Retry::Yes(back, error)) => {
                        request = *back;
                        failure = Some(error);
                    }
                }
            }
        }
        Err(failure.unwrap_or_else(|| self.slots[start % count].unreachable("no connection")))
    }
}

/// Where a slot connects.
#[derive(Debug, Clone)]
struct Target {
    /// `host:port`, also the `:authority` of forwarded calls (as tonic's channel sent it).
    authority: Authority,
    /// For the TCP connect (resolved per connect).
    host_port: String,
}

impl Target {
    fn parse(address: &str) -> Result<Self, InvalidAddress> {
        let invalid = || InvalidAddress(address.to_owned());
        let uri: Uri = address.parse().map_err(|_| invalid())?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(invalid());
        }
        let authority = uri.authority().ok_or_else(invalid)?.clone();
        let host_port = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
        Ok(Self { authority, host_port })
    }
}

/// A request back from a connection that did not take it, or a final error.
enum Retry {
    /// Boxed: only the rare retry pays for moving it.
    Yes(Box<Request<LimitedBody>>, ForwardError),
    No(ForwardError),
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
    connect_timeout: Duration,
    builder: http2::Builder<TokioExecutor>,
    sender: Mutex<Option<SendRequest<LimitedBody>>>,
    /// Held while connecting, so concurrent callers wait for one attempt instead of racing.
    gate: tokio::sync::Mutex<()>,
    backoff: Mutex<Backoff>,
    /// A background reconnect is scheduled.
    reconnecting: AtomicBool,
}

impl Slot {
    /// The connection, if it is up.
    fn ready(&self) -> Option<SendRequest<LimitedBody>> {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        sender.as_ref().filter(|s| !s.is_closed()).cloned()
    }

    async fn send(
        &self,
        mut sender: SendRequest<LimitedBody>,
        mut request: Request<LimitedBody>,
    ) -> Result<Response<Incoming>, Retry> {
        *request.uri_mut() = self.uri_for(request.uri());
        sender.try_send_request(request).await.map_err(|mut error| match error.take_message() {
            // The connection closed before taking the request: nothing reached the upstream.
            Some(request) => Retry::Yes(Box::new(request), ForwardError::Http(error.into_error())),
            None => Retry::No(ForwardError::Http(error.into_error())),
        })
    }

    /// The call's URI towards this address: the path as received, this address as authority.
    fn uri_for(&self, uri: &Uri) -> Uri {
        let mut parts = Parts::default();
        parts.scheme = Some(Scheme::HTTP);
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
    async fn connect(&self) -> Result<SendRequest<LimitedBody>, ForwardError> {
        let _gate = self.gate.lock().await;
        if let Some(sender) = self.ready() {
            return Ok(sender);
        }
        {
            let backoff = self.backoff.lock().unwrap_or_else(PoisonError::into_inner);
            if backoff.retry_at.is_some_and(|at| Instant::now() < at) {
                return Err(self.unreachable(&backoff.last_error));
            }
        }
        match tokio::time::timeout(self.connect_timeout, self.handshake()).await {
            Ok(Ok(sender)) => {
                *self.sender.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
                *self.backoff.lock().unwrap_or_else(PoisonError::into_inner) = Backoff::default();
                Ok(sender)
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

    async fn handshake(&self) -> Result<SendRequest<LimitedBody>, String> {
        let stream = tokio::net::TcpStream::connect(&self.target.host_port).await.map_err(|e| e.to_string())?;
        // Small gRPC frames must not wait for ACKs (Nagle).
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) =
            self.builder.handshake(TokioIo::new(stream)).await.map_err(|e| crate::proxy::error_chain(&e))?;
        let address = self.target.authority.clone();
        tokio::spawn(async move {
            // The connection ends when the upstream goes away; its sender then reports closed.
            if let Err(error) = connection.await {
                tracing::debug!(%address, %error, "Upstream connection ended.");
            }
        });
        Ok(sender)
    }
}
