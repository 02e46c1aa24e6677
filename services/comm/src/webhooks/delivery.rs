//! From bus events to signed requests.
//!
//! [`Fanout`] consumes Sales' and Finance's integration events and, in the inbox's transaction
//! (so once per event), stores the webhook message and one pending delivery per enabled endpoint
//! whose filter selects it. [`Dispatcher`] claims due deliveries with a lease (a crashed worker's
//! claim expires and is taken again), sends each with bounded concurrency overall and per
//! endpoint, and records the attempt: 2xx succeeds, 410 disables the endpoint, anything else is
//! retried on the schedule (or after the receiver's `Retry-After`, if later) until it runs out.
//! Requests run as independent tasks, so a slow endpoint only ever holds its own slots.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use prost_reflect::{DescriptorPool, DynamicMessage};
use rand::Rng as _;
use sentra_bus::{Envelope, Handler, HandlerError, Payload};
use sqlx::{PgConnection, PgPool, Row as _};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use uuid::Uuid;

use super::endpoints::{Endpoints, disable};
use super::{WebhookConfig, selects, signature};
use crate::error::CommError;

/// The events webhooks carry: every public integration event of Sales and Finance.
pub const ROUTING_KEYS: [&str; 2] = ["sales.#", "finance.#"];

const CHANNEL: &str = "comm_webhooks";

/// How much of a response body the log keeps.
const RESPONSE_LOG_BYTES: usize = 1024;

/// Turns bus events into webhook messages and deliveries.
pub struct Fanout {
    descriptors: DescriptorPool,
}

impl Fanout {
    /// Reads payloads with the contracts' descriptors.
    pub fn new() -> Result<Self, prost_reflect::DescriptorError> {
        Ok(Self { descriptors: DescriptorPool::decode(sentra_proto::FILE_DESCRIPTOR_SET)? })
    }

    /// The request body: `{"type", "timestamp", "data"}` with the event in the proto JSON mapping.
    fn body(&self, message: &Envelope) -> Result<String, HandlerError> {
        let data = match &message.payload {
            Payload::Proto { type_name, bytes, .. } => {
                let descriptor = self
                    .descriptors
                    .get_message_by_name(type_name)
                    .ok_or_else(|| HandlerError::reject(format!("unknown payload type {type_name}")))?;
                let decoded = DynamicMessage::decode(descriptor, bytes.as_slice()).map_err(HandlerError::reject)?;
                serde_json::to_value(&decoded).map_err(HandlerError::reject)?
            }
            Payload::Json(value) => value.clone(),
        };
        let body = serde_json::json!({
            "type": message.routing_key,
            "timestamp": message.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "data": data,
        });
        serde_json::to_string(&body).map_err(HandlerError::reject)
    }
}

#[async_trait::async_trait]
impl Handler for Fanout {
    async fn handle(&self, tx: &mut PgConnection, message: &Envelope) -> Result<(), HandlerError> {
        let endpoints: Vec<(Uuid, Vec<String>)> = sqlx::query_as(
            "SELECT endpoint_id, event_types FROM webhook_endpoints WHERE organization_id = $1 AND enabled",
        )
        .bind(message.tenant_id)
        .fetch_all(&mut *tx)
        .await
        .map_err(HandlerError::retry)?;
        let targets: Vec<Uuid> = endpoints
            .into_iter()
            .filter(|(_, filter)| selects(filter, &message.routing_key))
            .map(|(id, _)| id)
            .collect();
        if targets.is_empty() {
            return Ok(());
        }
        let message_id = format!("msg_{}", message.event_id.simple());
        sqlx::query(
            "INSERT INTO webhook_messages (message_id, organization_id, event_type, payload, occurred_at) VALUES ($1, \
             $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(&message_id)
        .bind(message.tenant_id)
        .bind(&message.routing_key)
        .bind(self.body(message)?)
        .bind(message.recorded_at)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::retry)?;
        let ids: Vec<Uuid> = targets.iter().map(|_| Uuid::now_v7()).collect();
        sqlx::query(
            "INSERT INTO webhook_deliveries (delivery_id, endpoint_id, message_id) SELECT d, e, $3 FROM unnest($1::uuid[], \
             $2::uuid[]) AS t(d, e)",
        )
        .bind(&ids)
        .bind(&targets)
        .bind(&message_id)
        .execute(&mut *tx)
        .await
        .map_err(HandlerError::retry)?;
        sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(&mut *tx).await.map_err(HandlerError::retry)?;
        Ok(())
    }
}

/// Wakes the dispatchers of every replica (after a replay, say) once `tx` commits.
pub async fn wake(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')").bind(CHANNEL).execute(&mut *tx).await.map(|_| ())
}

/// A delivery claimed for one attempt.
#[derive(Debug)]
struct Claimed {
    delivery: Uuid,
    endpoint: Uuid,
    message: String,
    attempts: i32,
    url: String,
    enabled: bool,
    payload: String,
}

/// What the receiver did with one request.
enum Outcome {
    /// It answered.
    Answered { status: u16, body: String, retry_after: Option<Duration> },
    /// It could not be reached (refused address, timeout, connection error).
    Unreached(String),
}

/// Sends due deliveries.
pub struct Dispatcher {
    pool: PgPool,
    endpoints: Endpoints,
    http: reqwest::Client,
    config: WebhookConfig,
}

impl Dispatcher {
    /// A dispatcher whose requests resolve names through the endpoints' SSRF guard.
    pub fn new(pool: PgPool, endpoints: Endpoints, config: WebhookConfig) -> Result<Self, reqwest::Error> {
        let timeout = Duration::try_from_secs_f64(config.timeout_secs).unwrap_or(Duration::from_secs(15));
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(super::guard::GuardedResolver(endpoints.policy().clone())))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent("Sentra-Webhooks/1")
            .build()?;
        Ok(Self { pool, endpoints, http, config })
    }

    /// Runs until `stop`: claims due deliveries whenever there is room and something is due.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) -> Result<(), std::convert::Infallible> {
        let this = Arc::new(self);
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(crate::pg::listen(this.pool.clone(), CHANNEL, wake.clone()));
        let mut running: JoinSet<Uuid> = JoinSet::new();
        let mut in_flight: HashMap<Uuid, i32> = HashMap::new();
        tokio::pin!(stop);
        let release = |in_flight: &mut HashMap<Uuid, i32>, done: Result<Uuid, tokio::task::JoinError>| {
            if let Ok(endpoint) = done
                && let Some(n) = in_flight.get_mut(&endpoint)
            {
                *n -= 1;
                if *n <= 0 {
                    in_flight.remove(&endpoint);
                }
            }
        };
        loop {
            while let Some(done) = running.try_join_next() {
                release(&mut in_flight, done);
            }
            let room = this.config.concurrency.saturating_sub(running.len());
            // Claims come in batches: one claim per freed slot would cost a query per request.
            let worth = running.is_empty() || room >= (this.config.concurrency / 4).max(1);
            let mut claimed = 0;
            if worth {
                match this.claim(room, &in_flight).await {
                    Ok(batch) => {
                        claimed = batch.len();
                        for delivery in batch {
                            *in_flight.entry(delivery.endpoint).or_default() += 1;
                            let worker = this.clone();
                            running.spawn(async move {
                                let endpoint = delivery.endpoint;
                                if let Err(error) = worker.attempt(&delivery).await {
                                    tracing::warn!(%error, delivery = %delivery.delivery, "Webhook attempt not recorded; retried when its lease expires.");
                                }
                                endpoint
                            });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "Claiming webhook deliveries failed."),
                }
            }
            if claimed > 0 && running.len() < this.config.concurrency {
                continue;
            }
            tokio::select! {
                () = &mut stop => break,
                () = wake.notified() => {}
                Some(done) = running.join_next() => release(&mut in_flight, done),
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        listener.abort();
        // Attempts in flight get a few seconds to finish and be recorded; any still waiting on a
        // slow receiver is dropped, its lease expires and a replica sends it again (receivers
        // deduplicate by `webhook-id`).
        let drained =
            tokio::time::timeout(Duration::from_secs(5), async { while running.join_next().await.is_some() {} });
        if drained.await.is_err() {
            running.abort_all();
        }
        Ok(())
    }

    fn lease(&self) -> f64 {
        self.config.timeout_secs.max(1.0) * 2.0 + 30.0
    }

    async fn claim(&self, room: usize, in_flight: &HashMap<Uuid, i32>) -> Result<Vec<Claimed>, sqlx::Error> {
        let cap = i32::try_from(self.config.per_endpoint_concurrency.max(1)).unwrap_or(4);
        let (busy, counts): (Vec<Uuid>, Vec<i32>) = in_flight.iter().map(|(e, n)| (*e, *n)).unzip();
        let full: Vec<Uuid> = in_flight.iter().filter(|(_, n)| **n >= cap).map(|(e, _)| *e).collect();
        // A bounded set of candidates first (the due index; endpoints at their cap left out), then
        // at most `cap - in flight` per endpoint among them: a claim costs the same with ten or a
        // million deliveries waiting. The target comes along, so an attempt reads nothing more.
        let rows = sqlx::query(
            "WITH busy AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS b(endpoint_id, n)), \
             candidates AS (SELECT delivery_id, endpoint_id, due_at FROM webhook_deliveries WHERE status = 'pending' \
               AND due_at <= now() AND (lease_until IS NULL OR lease_until < now()) AND NOT (endpoint_id = ANY($6)) \
               ORDER BY due_at LIMIT $7), \
             ready AS (SELECT delivery_id, endpoint_id, due_at, row_number() OVER (PARTITION BY endpoint_id ORDER BY \
               due_at, delivery_id) AS rank FROM candidates), \
             picked AS (SELECT r.delivery_id FROM ready r LEFT JOIN busy b USING (endpoint_id) WHERE r.rank <= $3 - \
               coalesce(b.n, 0) ORDER BY r.due_at LIMIT $4) \
             UPDATE webhook_deliveries d SET lease_until = now() + make_interval(secs => $5) FROM picked, \
             webhook_endpoints e, webhook_messages m WHERE d.delivery_id = picked.delivery_id AND e.endpoint_id = \
             d.endpoint_id AND m.message_id = d.message_id AND d.status = 'pending' AND (d.lease_until IS NULL OR \
             d.lease_until < now()) RETURNING d.delivery_id, d.endpoint_id, d.message_id, d.attempts, e.url, \
             e.enabled, m.payload",
        )
        .bind(&busy)
        .bind(&counts)
        .bind(cap)
        .bind(i64::try_from(room).unwrap_or(64))
        .bind(self.lease())
        .bind(&full)
        .bind(i64::try_from(room.saturating_mul(8)).unwrap_or(512))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Claimed {
                    delivery: r.try_get("delivery_id")?,
                    endpoint: r.try_get("endpoint_id")?,
                    message: r.try_get("message_id")?,
                    attempts: r.try_get("attempts")?,
                    url: r.try_get("url")?,
                    enabled: r.try_get("enabled")?,
                    payload: r.try_get("payload")?,
                })
            })
            .collect()
    }

    /// Makes one request for `claimed` and records it.
    async fn attempt(&self, claimed: &Claimed) -> Result<(), CommError> {
        if !claimed.enabled {
            sqlx::query("UPDATE webhook_deliveries SET status = 'failed', lease_until = NULL WHERE delivery_id = $1")
                .bind(claimed.delivery)
                .execute(&self.pool)
                .await?;
            return Ok(());
        }
        let keys = self.endpoints.signing_keys(claimed.endpoint).await?;
        let started_at = Utc::now();
        let started = Instant::now();
        let outcome = self.send(&claimed.url, &claimed.message, &keys, claimed.payload.clone()).await;
        let took = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        self.record(claimed, started_at, took, outcome).await
    }

    async fn send(&self, url: &str, id: &str, keys: &[Vec<u8>], body: String) -> Outcome {
        let Ok(parsed) = reqwest::Url::parse(url) else { return Outcome::Unreached("the URL does not parse".into()) };
        if let Err(refused) = self.endpoints.policy().check_url(&parsed) {
            return Outcome::Unreached(format!("refused: {refused}"));
        }
        let timestamp = Utc::now().timestamp();
        let signatures: Vec<String> = keys.iter().map(|k| signature(k, id, timestamp, &body)).collect();
        let sent = self
            .http
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.join(" "))
            .body(body)
            .send()
            .await;
        match sent {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = crate::gmail::retry_after(&response);
                let mut kept = Vec::new();
                while kept.len() < RESPONSE_LOG_BYTES {
                    match response.chunk().await {
                        Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                        Ok(None) | Err(_) => break,
                    }
                }
                kept.truncate(RESPONSE_LOG_BYTES);
                Outcome::Answered { status, body: String::from_utf8_lossy(&kept).into_owned(), retry_after }
            }
            Err(error) => Outcome::Unreached(describe(&error)),
        }
    }

    async fn record(
        &self,
        claimed: &Claimed,
        at: chrono::DateTime<Utc>,
        took: i32,
        outcome: Outcome,
    ) -> Result<(), CommError> {
        let attempt = claimed.attempts + 1;
        let (status, body, error, retry_after) = match &outcome {
            Outcome::Answered { status, body, retry_after } => (i32::from(*status), body.as_str(), "", *retry_after),
            Outcome::Unreached(error) => (0, "", error.as_str(), None),
        };
        if (200..300).contains(&status) {
            // The common case in one round trip: the attempt, the delivery, the streak ended.
            sqlx::query(
                "WITH logged AS (INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, response_status, \
                 response_body, duration_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING), delivered AS \
                 (UPDATE webhook_deliveries SET status = 'succeeded', attempts = $2, lease_until = NULL WHERE \
                 delivery_id = $1) UPDATE webhook_endpoints SET failing_since = NULL WHERE endpoint_id = $7 AND \
                 failing_since IS NOT NULL",
            )
            .bind(claimed.delivery)
            .bind(attempt)
            .bind(at)
            .bind(status)
            .bind(body)
            .bind(took)
            .bind(claimed.endpoint)
            .execute(&self.pool)
            .await?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, response_status, response_body, error, \
             duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(claimed.delivery)
        .bind(attempt)
        .bind(at)
        .bind(status)
        .bind(body)
        .bind(error)
        .bind(took)
        .execute(&mut *tx)
        .await?;
        if status == 410 {
            sqlx::query("UPDATE webhook_deliveries SET status = 'failed', attempts = $2, lease_until = NULL WHERE delivery_id = $1")
                .bind(claimed.delivery)
                .bind(attempt)
                .execute(&mut *tx)
                .await?;
            disable(&mut tx, claimed.endpoint, "the receiver answered 410 Gone").await?;
        } else {
            let next = self.delay(usize::try_from(attempt).unwrap_or(usize::MAX), retry_after);
            sqlx::query(
                "UPDATE webhook_deliveries SET status = CASE WHEN $3::float8 IS NULL THEN 'failed' ELSE 'pending' END, \
                 attempts = $2, due_at = now() + make_interval(secs => coalesce($3, 0)), lease_until = NULL WHERE \
                 delivery_id = $1",
            )
            .bind(claimed.delivery)
            .bind(attempt)
            .bind(next.map(|d| d.as_secs_f64()))
            .execute(&mut *tx)
            .await?;
            let since: Option<chrono::DateTime<Utc>> = sqlx::query_scalar(
                "UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now()) WHERE endpoint_id = $1 \
                 RETURNING failing_since",
            )
            .bind(claimed.endpoint)
            .fetch_optional(&mut *tx)
            .await?;
            let limit = chrono::Duration::milliseconds((self.config.disable_after_secs * 1000.0) as i64);
            if since.is_some_and(|since| Utc::now() - since >= limit) {
                let days = self.config.disable_after_secs / 86400.0;
                disable(&mut tx, claimed.endpoint, &format!("every delivery failed for {days:.1} days")).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The wait before attempt `done + 1`, or `None` when the schedule is exhausted. A later
    /// `Retry-After` (capped at a day) wins over the schedule.
    fn delay(&self, done: usize, retry_after: Option<Duration>) -> Option<Duration> {
        let base = *self.config.retry_schedule_secs.get(done)?;
        let jitter = self.config.jitter.clamp(0.0, 1.0);
        let factor = if jitter > 0.0 { rand::thread_rng().gen_range(1.0 - jitter..=1.0 + jitter) } else { 1.0 };
        let scheduled = Duration::try_from_secs_f64((base * factor).max(0.0)).unwrap_or_default();
        Some(match retry_after {
            Some(asked) => scheduled.max(asked.min(Duration::from_secs(86400))),
            None => scheduled,
        })
    }
}

/// A transport error's causes, without the URL (it may carry the receiver's credentials).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    match causes.last() {
        Some(root) if causes.iter().any(|c| c.contains("refused: ") || c.contains(" resolves to ")) => {
            format!("refused: {}", causes.iter().find(|c| c.contains(" resolves to ")).unwrap_or(root))
        }
        Some(root) => format!("connection failed: {root}"),
        None => "request failed".into(),
    }
}
