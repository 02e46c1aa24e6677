//! A webhook receiver on loopback: records every request (headers and body) and answers with
//! scripted statuses, optionally slowly, so tests and benchmarks can watch deliveries, retries
//! and signatures the way an agency's own system would.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
}

impl Received {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Script {
    received: Vec<Received>,
    /// Statuses (and `Retry-After` seconds) for the next requests; 200 once empty.
    answers: VecDeque<(u16, Option<u64>)>,
    delay: Duration,
    /// Wakes slow answers when the receiver goes away, so no sender waits for a dead test.
    closing: Arc<tokio::sync::Notify>,
}

/// A running receiver; stops when the last clone is dropped.
#[derive(Clone)]
pub struct Receiver {
    script: Arc<Mutex<Script>>,
    addr: SocketAddr,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>, Arc<tokio::sync::Notify>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.1.notify_waiters();
        self.0.abort();
    }
}

async fn receive(State(script): State<Arc<Mutex<Script>>>, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let (answer, delay, closing) = {
        let mut s = script.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.received.push(Received { headers, body });
        (s.answers.pop_front().unwrap_or((200, None)), s.delay, s.closing.clone())
    };
    if !delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = closing.notified() => return (StatusCode::SERVICE_UNAVAILABLE, "closing").into_response(),
        }
    }
    let mut response = (StatusCode::from_u16(answer.0).unwrap_or(StatusCode::OK), "received").into_response();
    if let Some(secs) = answer.1
        && let Ok(value) = secs.to_string().parse()
    {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

impl Receiver {
    /// A receiver on a free loopback port.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind a receiver");
        let addr = listener.local_addr().expect("its address");
        let script = Arc::new(Mutex::new(Script::default()));
        let app = axum::Router::new().fallback(axum::routing::post(receive)).with_state(script.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let closing = script.lock().unwrap_or_else(std::sync::PoisonError::into_inner).closing.clone();
        Self { script, addr, _task: Arc::new(AbortOnDrop(task, closing)) }
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Its URL (`http://127.0.0.1:PORT/hooks`).
    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    /// The next requests are answered `status` (`retry_after` seconds in `Retry-After`), in order.
    pub fn answer(&self, status: u16, retry_after: Option<u64>) {
        self.lock().answers.push_back((status, retry_after));
    }

    /// Every answer waits `delay` first.
    pub fn slow(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// What it received so far.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// How many requests it received.
    pub fn count(&self) -> usize {
        self.lock().received.len()
    }
}
