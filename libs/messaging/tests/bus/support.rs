use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use sentra_bus::{BrokerConfig, Envelope, Handler, HandlerError, Payload};
use sentra_event_store::{EventMetadata, EventStore, NewEvent};
use sentra_proto::sentra::sales::events::v1::OrderConfirmed;
use sentra_testkit::{TestDatabase, amqp_url, unique_prefix};
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool};
use tokio::sync::oneshot;
use uuid::Uuid;

/// Upper bound of every wait: a bug fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(30);

/// A database migrated into schema `svc` (event store + bus + a test effects table) and a unique
/// broker prefix.
pub struct Env {
    pub store: EventStore,
    pub pool: PgPool,
    pub broker: BrokerConfig,
    _db: TestDatabase,
}

pub async fn env() -> Env {
    // `RUST_LOG=sentra_bus=debug cargo test -p sentra-bus` shows what the relay and consumers do.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let db = TestDatabase::create().await;
    let options = PgConnectOptions::from_str(db.url()).unwrap();
    let admin = PgPoolOptions::new().max_connections(1).connect_with(options.clone()).await.unwrap();
    sqlx::query("CREATE SCHEMA svc").execute(&admin).await.unwrap();
    admin.close().await;
    let pool =
        PgPoolOptions::new().max_connections(12).connect_with(options.options([("search_path", "svc")])).await.unwrap();
    for mut migrator in [sentra_event_store::migrator(), sentra_bus::migrator()] {
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await.unwrap();
    }
    sqlx::query(
        "CREATE TABLE effects (id bigserial PRIMARY KEY, message_id uuid NOT NULL, aggregate_id text NOT NULL, \
         sequence bigint NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let broker = fast(
        BrokerConfig::new(amqp_url())
            .with_prefix(format!("{}.", unique_prefix("bus")))
            .with_queue_expiry(std::time::Duration::from_secs(sentra_testkit::QUEUE_EXPIRY_SECS)),
    );
    Env { store: EventStore::new(pool.clone()), pool, broker, _db: db }
}

/// Short reconnect delays so outage tests run quickly.
pub fn fast(broker: BrokerConfig) -> BrokerConfig {
    broker.with_reconnect_backoff(Duration::from_millis(50), Duration::from_millis(500))
}

pub fn meta() -> EventMetadata {
    EventMetadata {
        correlation_id: Some("corr-1".into()),
        actor: Some("user:alice".into()),
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        ..Default::default()
    }
}

/// Appends `events` (types) to `aggregate_type`/`aggregate_id` at `expected` version.
pub async fn append(
    store: &EventStore,
    tenant: Uuid,
    aggregate_type: &str,
    aggregate_id: &str,
    expected: u64,
    types: &[&str],
) -> Vec<Uuid> {
    let events: Vec<NewEvent> = types.iter().map(|t| NewEvent::new(*t, "1", json!({ "kind": t }))).collect();
    let ids = events.iter().map(|e| e.event_id).collect();
    store.append(tenant, aggregate_type, aggregate_id, expected, events, &meta()).await.unwrap();
    ids
}

/// A stop signal for `run(shutdown)`.
pub fn stop_signal() -> (oneshot::Sender<()>, impl Future<Output = ()> + Send + 'static) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

/// Stops a task started with `stop_signal` and checks it ended cleanly and promptly.
pub async fn stop(stop: oneshot::Sender<()>, task: tokio::task::JoinHandle<sentra_bus::Result<()>>) {
    let _ = stop.send(());
    tokio::time::timeout(WAIT, task).await.expect("run did not stop").unwrap().unwrap();
}

/// Polls `condition` until true; panics after [`WAIT`].
pub async fn wait_until<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// An exclusive auto-ack queue bound to the bus exchange, to see exactly what was published.
pub struct Probe {
    _connection: Connection,
    consumer: lapin::Consumer,
}

impl Probe {
    pub async fn bind(broker: &BrokerConfig, keys: &[&str]) -> Self {
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let exchange = broker.exchange_name();
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions { durable: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let queue = format!("{}probe", broker.prefix);
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        for key in keys {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    exchange.as_str().into(),
                    (*key).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
        }
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions { no_ack: true, ..Default::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        Self { _connection: connection, consumer }
    }

    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(WAIT, self.consumer.next())
            .await
            .expect("timed out waiting for a published message")
            .expect("probe consumer ended")
            .expect("probe delivery failed")
    }

    /// Asserts nothing more arrives within `quiet`.
    pub async fn assert_quiet(&mut self, quiet: Duration) {
        if let Ok(Some(Ok(delivery))) = tokio::time::timeout(quiet, self.consumer.next()).await {
            let envelope = Envelope::from_message(&delivery.properties, &delivery.data).unwrap();
            panic!("unexpected message {} ({})", envelope.event_id, envelope.routing_key);
        }
    }
}

/// Publishes `envelope` to the bus exchange by hand (confirmed), like a relay would.
pub async fn publish_raw(broker: &BrokerConfig, envelope: &Envelope) {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    let confirm = channel
        .basic_publish(
            broker.exchange_name().as_str().into(),
            envelope.routing_key.as_str().into(),
            BasicPublishOptions::default(),
            &envelope.body().unwrap(),
            envelope.properties(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(confirm.is_ack());
    connection.close(200, "done".into()).await.unwrap();
}

/// Publishes a body that is not an envelope.
#[allow(dead_code)]
pub async fn publish_bytes(broker: &BrokerConfig, routing_key: &str, body: &[u8]) {
    let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await.unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel.confirm_select(ConfirmSelectOptions::default()).await.unwrap();
    channel
        .basic_publish(
            broker.exchange_name().as_str().into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    connection.close(200, "done".into()).await.unwrap();
}

pub fn envelope(routing_key: &str, aggregate_id: &str, sequence: u64) -> Envelope {
    let mut parts = routing_key.split('.').skip(1);
    Envelope {
        event_id: Uuid::now_v7(),
        tenant_id: Uuid::new_v4(),
        routing_key: routing_key.into(),
        aggregate_type: parts.next().unwrap_or_default().into(),
        aggregate_id: aggregate_id.into(),
        sequence,
        event_type: parts.next().unwrap_or_default().into(),
        event_version: "1".into(),
        recorded_at: chrono::Utc::now(),
        payload: Payload::Json(json!({ "n": sequence })),
        metadata: json!({ "correlation_id": "corr-raw" }),
    }
}

/// [`envelope`] carrying a protobuf `OrderConfirmed` of order `aggregate_id`, as Sales' relay
/// publishes it.
pub fn proto_envelope(routing_key: &str, aggregate_id: &str, sequence: u64) -> Envelope {
    let order = OrderConfirmed { order_id: aggregate_id.into(), ..Default::default() };
    Envelope { payload: Payload::proto(&order), ..envelope(routing_key, aggregate_id, sequence) }
}

/// Records every message it handles in `effects`, in the consumer's transaction; fails while
/// `failing` is set.
#[derive(Clone, Default)]
pub struct Recorder {
    pub calls: Arc<AtomicU32>,
    pub failing: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl Handler for Recorder {
    async fn handle(&self, tx: &mut PgConnection, message: &Envelope) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        // A protobuf message must arrive intact, whichever queues it went through.
        if let Payload::Proto { .. } = message.payload {
            let order: OrderConfirmed = message.decode().map_err(HandlerError::reject)?;
            if order.order_id != message.aggregate_id {
                return Err(HandlerError::reject("the decoded order is not the message's aggregate"));
            }
        }
        // Write first, then fail: the rollback must undo the write.
        sqlx::query("INSERT INTO effects (message_id, aggregate_id, sequence) VALUES ($1, $2, $3)")
            .bind(message.event_id)
            .bind(&message.aggregate_id)
            .bind(i64::try_from(message.sequence).unwrap())
            .execute(&mut *tx)
            .await?;
        if self.failing.load(Ordering::SeqCst) {
            return Err(HandlerError::retry("boom: downstream unavailable"));
        }
        Ok(())
    }
}
