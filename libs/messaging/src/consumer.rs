//! Consumers: a durable queue per consuming service and event set, an inbox for effectively-once
//! handling, retries through a delay queue, and a dead-letter queue.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicQosOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use sentra_runtime::context::RequestContext;
use sentra_runtime::metrics::{Counters, Labels, Metrics};
use sqlx::{PgConnection, PgPool};
use tracing::Instrument;

use crate::broker::{LinkState, Outgoing, Publisher, close, connect, declare_exchange};
use crate::config::{Backoff, BrokerConfig};
use crate::envelope::{Envelope, PERSISTENT, header_str, header_u32, headers, long_string, short};
use crate::error::{BusError, Result};

/// Handles one message inside the consumer's database transaction.
///
/// `tx` is the transaction that also records the message in the inbox: write every effect through
/// it, and the effect commits exactly once per message id. Do not commit or roll it back.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Applies `message`. An error rolls the transaction back and schedules a retry
    /// ([`HandlerError::Retry`]) or dead-letters the message at once ([`HandlerError::Reject`]).
    async fn handle(&self, tx: &mut PgConnection, message: &Envelope) -> Result<(), HandlerError>;
}

/// Why a handler did not apply a message.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Possibly transient: retried after a delay, dead-lettered after the configured attempts.
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (malformed payload, unknown event version): dead-lettered at once.
    #[error("{0}")]
    Reject(String),
}

impl HandlerError {
    /// A retryable failure described by `error`.
    pub fn retry(error: impl std::fmt::Display) -> Self {
        Self::Retry(error.to_string())
    }

    /// A permanent failure described by `error`.
    pub fn reject(error: impl std::fmt::Display) -> Self {
        Self::Reject(error.to_string())
    }
}

impl From<sqlx::Error> for HandlerError {
    fn from(error: sqlx::Error) -> Self {
        Self::retry(error)
    }
}

impl From<serde_json::Error> for HandlerError {
    fn from(error: serde_json::Error) -> Self {
        Self::reject(error)
    }
}

/// How often an idle consumer checks that its connection and channel are still open.
const WATCHDOG: Duration = Duration::from_secs(1);

/// Settings of one consumer (one queue).
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The broker.
    pub broker: BrokerConfig,
    /// The consuming service (`finance`).
    pub service: String,
    /// The event set this consumer handles (`sales-orders`); with `service` it names the queue.
    pub name: String,
    /// Routing keys (topic patterns allowed: `sales.order.*`, `sales.#`) bound to the queue.
    pub bindings: Vec<String>,
    /// Unacknowledged messages the broker may push ahead (`basic.qos`). Default 32.
    pub prefetch: u16,
    /// Handling attempts before a message is dead-lettered. Default 5.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per attempt. Default 1 s.
    pub retry_delay: Duration,
    /// Ceiling of the retry delay. Default 5 min.
    pub retry_delay_max: Duration,
    /// Declares the queue with `x-single-active-consumer`, so replicas fail over instead of
    /// sharing the queue and per-aggregate order survives scaling out. Default true. Changing it
    /// for an existing queue requires deleting the queue (the broker refuses other arguments).
    pub single_active_consumer: bool,
}

impl ConsumerConfig {
    /// A consumer of `bindings` for `service`, queue `<prefix><service>.<name>`.
    pub fn new(
        broker: BrokerConfig,
        service: impl Into<String>,
        name: impl Into<String>,
        bindings: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            broker,
            service: service.into(),
            name: name.into(),
            bindings: bindings.into_iter().map(Into::into).collect(),
            prefetch: 32,
            max_attempts: 5,
            retry_delay: Duration::from_secs(1),
            retry_delay_max: Duration::from_secs(300),
            single_active_consumer: true,
        }
    }

    /// Sets the prefetch count.
    pub fn with_prefetch(mut self, prefetch: u16) -> Self {
        self.prefetch = prefetch.max(1);
        self
    }

    /// Sets the attempts before dead-lettering.
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets the first retry delay and its ceiling.
    pub fn with_retry_delay(mut self, first: Duration, max: Duration) -> Self {
        self.retry_delay = first;
        self.retry_delay_max = max.max(first);
        self
    }

    /// Enables or disables `x-single-active-consumer`.
    pub fn with_single_active_consumer(mut self, enabled: bool) -> Self {
        self.single_active_consumer = enabled;
        self
    }

    /// `<prefix><service>.<name>`, the main queue.
    pub fn queue_name(&self) -> String {
        format!("{}{}.{}", self.broker.prefix, self.service, self.name)
    }

    /// `<prefix><service>.<name>.retry`, where failed messages wait out their delay.
    pub fn retry_queue_name(&self) -> String {
        format!("{}.retry", self.queue_name())
    }

    /// `<prefix><service>.<name>.dlq`, the dead letters.
    pub fn dead_letter_queue_name(&self) -> String {
        format!("{}.dlq", self.queue_name())
    }

    /// `<service>.<name>`, the consumer's key in the inbox (no prefix: it lives in the service's
    /// own schema and must survive a change of broker prefix).
    pub fn inbox_name(&self) -> String {
        format!("{}.{}", self.service, self.name)
    }

    /// The delay after the `attempts`-th failure.
    pub fn retry_delay_after(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
        self.retry_delay.saturating_mul(factor).min(self.retry_delay_max)
    }
}

/// The queue names, validated.
struct Names {
    queue: ShortString,
    retry: ShortString,
    dead: ShortString,
}

impl Names {
    fn of(config: &ConsumerConfig) -> Result<Self> {
        Ok(Self {
            queue: short(&config.queue_name())?,
            retry: short(&config.retry_queue_name())?,
            dead: short(&config.dead_letter_queue_name())?,
        })
    }
}

/// Declares the exchange, the three queues and the bindings (idempotent).
async fn declare_topology(channel: &Channel, config: &ConsumerConfig, names: &Names) -> Result<()> {
    let exchange = declare_exchange(channel, &config.broker).await?;
    let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    let expiring = |mut args: FieldTable| {
        if let Some(expiry) = config.broker.queue_expiry {
            let millis = i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX);
            args.insert("x-expires".into(), AMQPValue::LongLongInt(millis));
        }
        args
    };
    let mut main_args = FieldTable::default();
    if config.single_active_consumer {
        main_args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
    }
    channel.queue_declare(names.queue.clone(), durable, expiring(main_args)).await?;
    for binding in &config.bindings {
        channel
            .queue_bind(
                names.queue.clone(),
                exchange.clone(),
                short(binding)?,
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    // Messages expire here (per-message TTL = the retry delay) and the broker dead-letters them
    // through the default exchange straight back to the main queue.
    let mut retry_args = FieldTable::default();
    retry_args.insert("x-dead-letter-exchange".into(), long_string(""));
    retry_args.insert("x-dead-letter-routing-key".into(), long_string(names.queue.as_str()));
    channel.queue_declare(names.retry.clone(), durable, expiring(retry_args)).await?;
    channel.queue_declare(names.dead.clone(), durable, expiring(FieldTable::default())).await?;
    Ok(())
}

/// What happened to one message in the database.
enum Outcome {
    Processed,
    Duplicate,
}

/// Why one message was not handled.
enum Failure {
    Handler(HandlerError),
    /// The inbox transaction itself failed (database down): not the message's fault, not counted.
    Database(sqlx::Error),
}

/// Consumes one queue with a [`Handler`]: see the crate docs for the guarantees.
pub struct Consumer<H> {
    config: ConsumerConfig,
    pool: PgPool,
    handler: H,
    state: LinkState,
    counters: Option<ConsumerCounters>,
}

/// `sentra_consumer_retries_total` and `sentra_consumer_dead_letters_total`, by queue.
struct ConsumerCounters {
    retries: Counters,
    dead_letters: Counters,
    labels: Labels,
}

impl<H> std::fmt::Debug for Consumer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").field("queue", &self.config.queue_name()).finish_non_exhaustive()
    }
}

impl<H: Handler> Consumer<H> {
    /// A consumer writing its inbox and effects through `pool` (the service's schema, migrated with
    /// [`crate::migrator`]).
    pub fn new(config: ConsumerConfig, pool: PgPool, handler: H) -> Self {
        Self { config, pool, handler, state: LinkState::default(), counters: None }
    }

    /// Counts retries and dead letters in `metrics` (label `queue`). Call it once per registry
    /// and consumer.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        self.counters = Some(ConsumerCounters {
            retries: metrics.counters("sentra_consumer_retries", "Messages scheduled for another attempt"),
            dead_letters: metrics.counters("sentra_consumer_dead_letters", "Messages moved to the dead-letter queue"),
            labels: vec![("queue", self.config.queue_name())],
        });
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// True while the consumer holds an open broker connection (a dependency probe).
    pub fn is_connected(&self) -> bool {
        self.state.is_connected()
    }

    /// Declares the exchange, queues and bindings now. Call it at start-up before anything is
    /// published that this consumer must see: the broker drops messages no queue is bound for.
    /// [`Consumer::run`] declares them as well.
    pub async fn declare(&self) -> Result<()> {
        let names = Names::of(&self.config)?;
        let connection = connect(&self.config.broker, &self.purpose("declare")).await?;
        let channel = connection.create_channel().await?;
        let declared = declare_topology(&channel, &self.config, &names).await;
        close(&connection).await;
        declared
    }

    /// Messages waiting in the dead-letter queue.
    pub async fn dead_letter_count(&self) -> Result<u32> {
        let names = Names::of(&self.config)?;
        let connection = connect(&self.config.broker, &self.purpose("inspect")).await?;
        let channel = connection.create_channel().await?;
        let declared = async {
            declare_topology(&channel, &self.config, &names).await?;
            let queue = channel
                .queue_declare(
                    names.dead.clone(),
                    QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() },
                    FieldTable::default(),
                )
                .await?;
            Ok(queue.message_count())
        }
        .await;
        close(&connection).await;
        declared
    }

    /// Moves up to `max` dead letters back to the main queue (oldest first) with their attempt
    /// count reset, and returns how many moved. Each is confirmed on the main queue before it is
    /// removed from the dead-letter queue, so a failure midway loses nothing (at worst a message
    /// is in both). Only the messages waiting when the replay starts are moved: one that fails
    /// again while the replay runs is dead-lettered behind them and stays there.
    pub async fn replay_dead_letters(&self, max: usize) -> Result<usize> {
        let names = Names::of(&self.config)?;
        let publisher = Publisher::open(&self.config.broker, &self.purpose("replay")).await?;
        let moved = async {
            declare_topology(publisher.channel(), &self.config, &names).await?;
            let waiting = publisher
                .channel()
                .queue_declare(
                    names.dead.clone(),
                    QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() },
                    FieldTable::default(),
                )
                .await?
                .message_count();
            let max = max.min(usize::try_from(waiting).unwrap_or(usize::MAX));
            let mut moved = 0;
            while moved < max {
                let Some(message) =
                    publisher.channel().basic_get(names.dead.clone(), BasicGetOptions { no_ack: false }).await?
                else {
                    break;
                };
                let delivery = &message.delivery;
                let properties = republished(
                    &delivery.properties,
                    &[],
                    &[headers::ATTEMPTS, headers::ERROR, headers::DEAD_LETTERED_AT, "x-death"],
                );
                publisher.publish_all(&[to_queue(&names.queue, delivery.data.clone(), properties)]).await?;
                publisher.settle(delivery.acker.ack(BasicAckOptions::default())).await?;
                moved += 1;
            }
            Ok(moved)
        }
        .await;
        publisher.close().await;
        if let Ok(moved) = moved
            && moved > 0
        {
            tracing::info!(queue = %names.queue, moved, "Dead letters replayed.");
        }
        moved
    }

    /// Consumes until `shutdown` resolves, reconnecting with backoff whenever the broker
    /// connection or channel fails. Only returns early on a configuration error.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        let names = Names::of(&self.config)?;
        for binding in &self.config.bindings {
            short(binding)?;
        }
        let mut shutdown = std::pin::pin!(shutdown);
        let mut backoff = Backoff::for_broker(&self.config.broker);
        loop {
            let session = tokio::select! {
                () = shutdown.as_mut() => return Ok(()),
                session = tokio::time::timeout(self.config.broker.connect_timeout, self.open(&names)) => {
                    session.unwrap_or(Err(BusError::Timeout(self.config.broker.connect_timeout)))
                }
            };
            let (publisher, channel, mut deliveries) = match session {
                Ok(session) => session,
                Err(error) => {
                    tracing::warn!(%error, queue = %names.queue, "Cannot connect to the broker; retrying.");
                    tokio::select! {
                        () = shutdown.as_mut() => return Ok(()),
                        () = tokio::time::sleep(backoff.next_delay()) => continue,
                    }
                }
            };
            self.state.set_connection(Some(publisher.connection()));
            tracing::info!(queue = %names.queue, "Consumer connected.");
            let mut db_backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            let error = loop {
                let next = tokio::select! {
                    () = shutdown.as_mut() => {
                        // Unacknowledged prefetched messages go back to the queue with the channel.
                        let cancel = channel.basic_cancel(deliveries.tag(), BasicCancelOptions::default());
                        let _ = tokio::time::timeout(Duration::from_secs(2), cancel).await;
                        self.state.set_connection(None);
                        publisher.close().await;
                        return Ok(());
                    }
                    next = deliveries.next() => next,
                    // The stream normally ends with an error when the connection dies; this check
                    // also catches a connection that died without telling the consumer.
                    () = tokio::time::sleep(WATCHDOG) => {
                        if publisher.is_connected() && channel.status().connected() {
                            continue;
                        }
                        break BusError::Disconnected("connection or channel closed");
                    }
                };
                let delivery = match next {
                    Some(Ok(delivery)) => delivery,
                    Some(Err(error)) => break BusError::from(error),
                    None => break BusError::Disconnected("consumer cancelled by the broker"),
                };
                match self.process(&publisher, &names, &delivery).await {
                    Ok(()) => {
                        backoff.reset();
                        db_backoff.reset();
                    }
                    Err(Step::Broker(error)) => break error,
                    Err(Step::Database(error)) => {
                        tracing::warn!(%error, queue = %names.queue, "Inbox transaction failed; requeueing.");
                        tokio::time::sleep(db_backoff.next_delay()).await;
                        let requeue = BasicNackOptions { requeue: true, ..BasicNackOptions::default() };
                        if let Err(error) = publisher.settle(delivery.acker.nack(requeue)).await {
                            break error;
                        }
                    }
                }
            };
            tracing::warn!(%error, queue = %names.queue, "Broker connection lost; reconnecting.");
            self.state.set_connection(None);
            publisher.close().await;
            tokio::select! {
                () = shutdown.as_mut() => return Ok(()),
                () = tokio::time::sleep(backoff.next_delay()) => {}
            }
        }
    }

    fn purpose(&self, what: &str) -> String {
        format!("sentra-bus {what} {}", self.config.inbox_name())
    }

    /// Connects, declares the topology, and starts consuming with manual acks.
    async fn open(&self, names: &Names) -> Result<(Publisher, Channel, lapin::Consumer)> {
        let connection = connect(&self.config.broker, &self.purpose("consumer")).await?;
        let channel = connection.create_channel().await?;
        // Retries and dead letters are published with confirms on a channel of their own, so
        // their confirms never mix with the consuming channel's acks.
        let publisher = Publisher::on(connection, &self.config.broker).await?;
        declare_topology(&channel, &self.config, names).await?;
        channel.basic_qos(self.config.prefetch, BasicQosOptions::default()).await?;
        let deliveries = channel
            .basic_consume(
                names.queue.clone(),
                "".into(),
                BasicConsumeOptions { no_ack: false, ..BasicConsumeOptions::default() },
                FieldTable::default(),
            )
            .await?;
        Ok((publisher, channel, deliveries))
    }

    /// Handles one delivery and settles it (ack, or retry/dead-letter then ack).
    async fn process(&self, publisher: &Publisher, names: &Names, delivery: &lapin::message::Delivery) -> StepResult {
        let failed_before = header_u32(&delivery.properties, headers::ATTEMPTS).unwrap_or(0);
        let envelope = match Envelope::from_message(&delivery.properties, &delivery.data) {
            Ok(envelope) => envelope,
            Err(error) => {
                let reason = format!("undecodable envelope: {error}");
                return self.give_up(publisher, names, delivery, failed_before, &reason).await;
            }
        };
        // The handler runs in a consumer span, child of the publisher's (the AMQP header), with
        // that context current: what it appends or calls carries the same trace.
        let span = tracing::info_span!(
            "consume",
            otel.name = %format_args!("{} process", names.queue),
            otel.kind = "consumer",
            messaging.system = "rabbitmq",
            messaging.operation.type = "process",
            messaging.destination.name = %names.queue,
            messaging.message.id = %envelope.event_id,
        );
        let traceparent = header_str(&delivery.properties, headers::TRACEPARENT);
        let ctx =
            RequestContext::start(&span, envelope.correlation_id(), traceparent.as_deref().or(envelope.traceparent()));
        let handled = ctx.scope(self.handle_once(&envelope)).instrument(span).await;
        match handled {
            Ok(Outcome::Processed) => {}
            Ok(Outcome::Duplicate) => {
                tracing::debug!(queue = %names.queue, message_id = %envelope.event_id, "Duplicate message skipped.");
            }
            Err(Failure::Database(error)) => return Err(Step::Database(error)),
            Err(Failure::Handler(HandlerError::Reject(reason))) => {
                return self.give_up(publisher, names, delivery, failed_before + 1, &reason).await;
            }
            Err(Failure::Handler(HandlerError::Retry(reason))) => {
                let attempts = failed_before + 1;
                if attempts >= self.config.max_attempts {
                    return self.give_up(publisher, names, delivery, attempts, &reason).await;
                }
                let delay = self.config.retry_delay_after(attempts);
                tracing::warn!(
                    queue = %names.queue, message_id = %envelope.event_id, attempts, ?delay, error = %reason,
                    "Handler failed; retrying later."
                );
                let mut properties = republished(
                    &delivery.properties,
                    &[(headers::ATTEMPTS, AMQPValue::LongLongInt(i64::from(attempts))), error_header(&reason)],
                    &[],
                );
                properties = properties.with_expiration(delay.as_millis().to_string().into());
                publisher.publish_all(&[to_queue(&names.retry, delivery.data.clone(), properties)]).await?;
                if let Some(counters) = &self.counters {
                    counters.retries.get_or_create(&counters.labels).inc();
                }
            }
        }
        publisher.settle(delivery.acker.ack(BasicAckOptions::default())).await?;
        Ok(())
    }

    /// Publishes the delivery to the dead-letter queue (confirmed), then acks it.
    async fn give_up(
        &self,
        publisher: &Publisher,
        names: &Names,
        delivery: &lapin::message::Delivery,
        attempts: u32,
        reason: &str,
    ) -> StepResult {
        tracing::error!(
            queue = %names.queue, message_id = ?delivery.properties.message_id(), attempts, error = %reason,
            "Message dead-lettered."
        );
        let properties = republished(
            &delivery.properties,
            &[
                (headers::ATTEMPTS, AMQPValue::LongLongInt(i64::from(attempts))),
                error_header(reason),
                (headers::DEAD_LETTERED_AT, long_string(chrono::Utc::now().to_rfc3339())),
            ],
            &[],
        );
        publisher.publish_all(&[to_queue(&names.dead, delivery.data.clone(), properties)]).await?;
        if let Some(counters) = &self.counters {
            counters.dead_letters.get_or_create(&counters.labels).inc();
        }
        publisher.settle(delivery.acker.ack(BasicAckOptions::default())).await?;
        Ok(())
    }

    /// The inbox transaction: record the message id, run the handler, commit.
    async fn handle_once(&self, envelope: &Envelope) -> Result<Outcome, Failure> {
        let mut tx = self.pool.begin().await.map_err(Failure::Database)?;
        let inserted = sqlx::query("INSERT INTO inbox (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(self.config.inbox_name())
            .bind(envelope.event_id)
            .execute(&mut *tx)
            .await
            .map_err(Failure::Database)?
            .rows_affected();
        if inserted == 0 {
            // Already processed (or being processed by a replica that just committed): no effect.
            return Ok(Outcome::Duplicate);
        }
        if let Err(error) = self.handler.handle(&mut tx, envelope).await {
            let _ = tx.rollback().await;
            return Err(Failure::Handler(error));
        }
        tx.commit().await.map_err(Failure::Database)?;
        Ok(Outcome::Processed)
    }
}

/// The result of handling one delivery.
type StepResult = std::result::Result<(), Step>;

/// Why a delivery could not be settled.
enum Step {
    /// The channel or connection failed: reconnect (the delivery comes back by itself).
    Broker(BusError),
    /// The inbox transaction failed: requeue after a pause.
    Database(sqlx::Error),
}

impl From<BusError> for Step {
    fn from(error: BusError) -> Self {
        Self::Broker(error)
    }
}

impl From<lapin::Error> for Step {
    fn from(error: lapin::Error) -> Self {
        Self::Broker(error.into())
    }
}

/// Error text in a header, cut to a size brokers and UIs handle comfortably.
fn error_header(reason: &str) -> (&'static str, AMQPValue) {
    const MAX: usize = 2000;
    let mut end = reason.len().min(MAX);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    (headers::ERROR, long_string(&reason[..end]))
}

/// A message to `queue` through the default exchange.
fn to_queue(queue: &ShortString, body: Vec<u8>, properties: BasicProperties) -> Outgoing {
    let message_id = properties.message_id().as_ref().map(ToString::to_string).unwrap_or_default();
    Outgoing { exchange: "".into(), routing_key: queue.clone(), body, properties, message_id }
}

/// The properties of a message being moved between queues: the original's, without any
/// expiration, with headers `set` and `remove`d.
fn republished(original: &BasicProperties, set: &[(&str, AMQPValue)], remove: &[&str]) -> BasicProperties {
    let mut table: BTreeMap<ShortString, AMQPValue> =
        original.headers().as_ref().map(|headers| headers.inner().clone()).unwrap_or_default();
    for name in remove {
        table.remove(*name);
    }
    for (name, value) in set {
        table.insert((*name).into(), value.clone());
    }
    let mut properties = BasicProperties::default().with_delivery_mode(PERSISTENT).with_headers(table.into());
    if let Some(content_type) = original.content_type() {
        properties = properties.with_content_type(content_type.clone());
    }
    if let Some(message_id) = original.message_id() {
        properties = properties.with_message_id(message_id.clone());
    }
    if let Some(timestamp) = original.timestamp() {
        properties = properties.with_timestamp(*timestamp);
    }
    if let Some(kind) = original.kind() {
        properties = properties.with_type(kind.clone());
    }
    properties
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_carry_the_prefix_and_delays_grow_to_the_cap() {
        let config =
            ConsumerConfig::new(BrokerConfig::new("amqp://x").with_prefix("t1."), "finance", "orders", ["a.#"])
                .with_retry_delay(Duration::from_secs(1), Duration::from_secs(5));
        assert_eq!(config.queue_name(), "t1.finance.orders");
        assert_eq!(config.retry_queue_name(), "t1.finance.orders.retry");
        assert_eq!(config.dead_letter_queue_name(), "t1.finance.orders.dlq");
        assert_eq!(config.inbox_name(), "finance.orders");
        let delays: Vec<u64> = (1..=5).map(|n| config.retry_delay_after(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
    }

    #[test]
    fn republished_messages_drop_the_expiration_and_keep_their_identity() {
        let original = BasicProperties::default()
            .with_message_id("m-1".into())
            .with_expiration("100".into())
            .with_headers(FieldTable::from(BTreeMap::from([
                (ShortString::from("tenant_id"), long_string("t")),
                (ShortString::from(headers::ERROR), long_string("old")),
            ])));
        let properties = republished(&original, &[(headers::ATTEMPTS, AMQPValue::LongLongInt(2))], &[headers::ERROR]);
        assert_eq!(properties.expiration(), &None);
        assert_eq!(properties.message_id().as_ref().map(ShortString::as_str), Some("m-1"));
        assert_eq!(header_u32(&properties, headers::ATTEMPTS), Some(2));
        assert_eq!(crate::header_str(&properties, "tenant_id").as_deref(), Some("t"));
        assert_eq!(crate::header_str(&properties, headers::ERROR), None);
    }
}
