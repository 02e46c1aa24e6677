//! Outbox relays: the event-store feed ([`FeedRelay`]) and Tenancy-style outbox tables
//! ([`TableRelay`]) to the topic exchange, with publisher confirms.

use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sentra_event_store::{EventStore, Feed, Lag, LeaderLock, RecordedEvent, Subscription};
use sentra_runtime::context::RequestContext;
use sentra_runtime::metrics::{FloatGauges, Gauges, Metrics};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::broker::{LinkState, Outgoing, Publisher};
use crate::config::{Backoff, BrokerConfig};
use crate::envelope::{Envelope, Payload, short};
use crate::error::{BusError, Result};

/// Settings of a relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The broker.
    pub broker: BrokerConfig,
    /// The relay's name: the feed subscriber whose checkpoint it keeps, and part of its
    /// leadership lock key. Default `sentra-bus.relay`.
    pub name: String,
    /// Events published (and confirmed) per checkpoint. Default 200.
    pub batch_size: usize,
    /// How often the relay looks for new rows without a notification (the event-store feed's
    /// fallback for lost NOTIFYs; the only wake-up of a [`TableRelay`]). Default 500 ms.
    pub poll_interval: Duration,
    /// How often an idle active relay re-checks its leadership lock and broker connection (and
    /// re-reads its source, which also bounds the delay of a missed wake-up). Default 1 s.
    pub idle_check_interval: Duration,
    /// How often a standby replica tries to take over leadership. Default 2 s.
    pub standby_interval: Duration,
}

impl RelayConfig {
    /// Defaults for `broker`.
    pub fn new(broker: BrokerConfig) -> Self {
        Self {
            broker,
            name: "sentra-bus.relay".into(),
            batch_size: 200,
            poll_interval: sentra_event_store::DEFAULT_POLL_INTERVAL,
            idle_check_interval: Duration::from_secs(1),
            standby_interval: Duration::from_secs(2),
        }
    }

    /// Sets the relay name (checkpoint and lock).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the batch size.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// Sets the poll interval.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// Sets how often an idle active relay re-checks its lock and broker connection.
    pub fn with_idle_check_interval(mut self, idle_check_interval: Duration) -> Self {
        self.idle_check_interval = idle_check_interval;
        self
    }

    /// Sets how often a standby replica retries leadership.
    pub fn with_standby_interval(mut self, standby_interval: Duration) -> Self {
        self.standby_interval = standby_interval;
        self
    }
}

/// Publishes the event-store feed of one service (`context`: `sales`, `finance`) to
/// `<prefix>sentra.events` with routing keys `<context>.<aggregate_type>.<event_type>`.
///
/// The checkpoint is the feed subscriber [`RelayConfig::name`]; it only moves after the broker
/// confirmed the whole batch. One replica is active at a time ([`Feed::try_lead`] on
/// `sentra-bus:<context>:<name>`); the others stand by and take over when its connection dies.
#[derive(Debug)]
pub struct FeedRelay {
    feed: Feed,
    context: String,
    config: RelayConfig,
    state: LinkState,
    mapper: Mapper,
}

/// The function that turns a recorded domain event into what the bus carries: its integration
/// event ([`Payload::proto`]), or `None` for an event that stays inside its context. An error
/// (an event that cannot be decoded) stops the relay at that event, loudly, rather than lose it.
pub type EventMapper =
    Arc<dyn Fn(&RecordedEvent) -> std::result::Result<Option<Payload>, Box<dyn Error + Send + Sync>> + Send + Sync>;

/// A relay's mapper; without one the stored JSON payload is published as is.
#[derive(Clone, Default)]
struct Mapper(Option<EventMapper>);

impl std::fmt::Debug for Mapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Mapper(custom)" } else { "Mapper(json)" })
    }
}

impl Mapper {
    fn envelope(&self, context: &str, event: &RecordedEvent) -> Result<Option<Envelope>> {
        let payload = match &self.0 {
            Some(map) => map(event).map_err(BusError::Mapping)?,
            None => Some(Payload::Json(event.payload.clone())),
        };
        Ok(payload.map(|payload| Envelope::from_recorded(context, event, payload)))
    }
}

impl FeedRelay {
    /// A relay of `store`'s feed for the `context` service.
    pub fn new(store: &EventStore, context: impl Into<String>, config: RelayConfig) -> Self {
        let feed = store.feed().with_poll_interval(config.poll_interval);
        Self { feed, context: context.into(), config, state: LinkState::default(), mapper: Mapper::default() }
    }

    /// Publishes what `mapper` makes of each event instead of its stored JSON payload.
    pub fn with_mapper(mut self, mapper: EventMapper) -> Self {
        self.mapper = Mapper(Some(mapper));
        self
    }

    /// Runs until `shutdown` resolves: stands by while another replica is active, otherwise
    /// publishes new events as they are appended, reconnecting with backoff after broker errors.
    /// Only returns early on a configuration error (a name the broker cannot take).
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        drive(self, &self.config, &self.state, shutdown).await
    }

    /// True while this replica is the active relay.
    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }

    /// True while this replica is active and its broker connection is open (a dependency probe;
    /// a standby replica reports false).
    pub fn is_connected(&self) -> bool {
        self.state.is_connected()
    }

    /// Events appended but not yet published (confirmed), and the age of the oldest.
    pub async fn lag(&self) -> Result<Lag> {
        Ok(self.feed.lag(&self.config.name).await?)
    }

    /// Reports `sentra_outbox_depth` (events not yet published) and `sentra_relay_lag_seconds`
    /// (age of the oldest) to `metrics` at every scrape. Every replica reports the same figures:
    /// they are the shared checkpoint's, not this replica's.
    pub fn observe(&self, metrics: &Metrics) {
        let gauges = RelayGauges::register(metrics);
        let (feed, name) = (self.feed.clone(), self.config.name.clone());
        metrics.on_scrape(move || {
            let (feed, name, gauges) = (feed.clone(), name.clone(), gauges.clone());
            async move {
                match feed.lag(&name).await {
                    Ok(lag) => gauges.set(lag.events, lag.seconds),
                    Err(error) => tracing::warn!(%error, relay = %name, "Cannot read the relay's lag."),
                }
            }
        });
    }
}

/// The relay's gauges.
#[derive(Clone)]
struct RelayGauges {
    depth: Gauges,
    lag: FloatGauges,
}

impl RelayGauges {
    fn register(metrics: &Metrics) -> Self {
        Self {
            depth: metrics.gauges("sentra_outbox_depth", "Committed events the relay has not yet published"),
            lag: metrics.float_gauges("sentra_relay_lag_seconds", "Age of the oldest unpublished event"),
        }
    }

    fn set(&self, events: u64, seconds: f64) {
        self.depth.get_or_create(&Vec::new()).set(i64::try_from(events).unwrap_or(i64::MAX));
        self.lag.get_or_create(&Vec::new()).set(seconds);
    }
}

/// Reports `sentra_projection_position` and `sentra_projection_lag_events` of the named
/// projections of `store` (label `projection`) at every scrape.
pub fn observe_projections(metrics: &Metrics, store: &EventStore, projections: &[&str]) {
    let position = metrics.gauges("sentra_projection_position", "Feed position of the projection's checkpoint");
    let behind = metrics.gauges("sentra_projection_lag_events", "Committed events the projection has not applied");
    let age = metrics.float_gauges("sentra_projection_lag_seconds", "Age of the oldest event not yet applied");
    let feed = store.feed();
    let names: Vec<String> = projections.iter().map(|p| (*p).to_owned()).collect();
    metrics.on_scrape(move || {
        let (feed, names, position, behind, age) =
            (feed.clone(), names.clone(), position.clone(), behind.clone(), age.clone());
        async move {
            for name in names {
                match feed.lag(&name).await {
                    Ok(lag) => {
                        let labels = vec![("projection", name)];
                        position.get_or_create(&labels).set(i64::try_from(lag.position).unwrap_or(i64::MAX));
                        behind.get_or_create(&labels).set(i64::try_from(lag.events).unwrap_or(i64::MAX));
                        age.get_or_create(&labels).set(lag.seconds);
                    }
                    Err(error) => tracing::warn!(%error, projection = %name, "Cannot read the projection's lag."),
                }
            }
        }
    });
}

/// Publishes a Tenancy-style outbox table (`position bigserial, event_id uuid, routing_key text,
/// tenant_id uuid, aggregate_id uuid, payload jsonb, metadata jsonb, created_at timestamptz,
/// published_at timestamptz`) in `position` order and sets `published_at` once the broker
/// confirmed the batch.
///
/// Leadership is a session `pg_try_advisory_lock` on `sentra_bus:table_relay:<schema>.<table>`
/// held on a dedicated connection, not `FOR UPDATE SKIP LOCKED`: skip-locked would let two
/// replicas publish interleaved batches at the same time and break per-aggregate order.
#[derive(Debug)]
pub struct TableRelay {
    pool: PgPool,
    table: String,
    select_sql: String,
    mark_sql: String,
    config: RelayConfig,
    state: LinkState,
}

impl TableRelay {
    /// A relay of `table` (a plain or schema-qualified lower-case identifier; unqualified means
    /// the pool's `search_path`).
    pub fn new(pool: PgPool, table: &str, config: RelayConfig) -> Result<Self> {
        let quoted = quote_table(table)?;
        let select_sql = format!(
            "SELECT position, event_id, routing_key, tenant_id, aggregate_id, payload, metadata, created_at \
             FROM {quoted} WHERE published_at IS NULL ORDER BY position LIMIT $1"
        );
        let mark_sql = format!("UPDATE {quoted} SET published_at = now() WHERE position = ANY($1)");
        Ok(Self { pool, table: table.to_owned(), select_sql, mark_sql, config, state: LinkState::default() })
    }

    /// Runs until `shutdown` resolves (see [`FeedRelay::run`]).
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
        drive(self, &self.config, &self.state, shutdown).await
    }

    /// True while this replica is the active relay.
    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }

    /// True while this replica is active and its broker connection is open.
    pub fn is_connected(&self) -> bool {
        self.state.is_connected()
    }

    /// Reports `sentra_outbox_depth` (rows not yet published) and `sentra_relay_lag_seconds`
    /// (age of the oldest) to `metrics` at every scrape.
    pub fn observe(&self, metrics: &Metrics) -> Result<()> {
        let gauges = RelayGauges::register(metrics);
        let sql = format!(
            "SELECT count(*)::bigint, coalesce(extract(epoch FROM clock_timestamp() - min(created_at))::float8, 0) \
             FROM {} WHERE published_at IS NULL",
            quote_table(&self.table)?
        );
        let (pool, table) = (self.pool.clone(), self.table.clone());
        metrics.on_scrape(move || {
            let (pool, sql, table, gauges) = (pool.clone(), sql.clone(), table.clone(), gauges.clone());
            async move {
                match sqlx::query_as::<_, (i64, f64)>(&sql).fetch_one(&pool).await {
                    Ok((rows, seconds)) => gauges.set(u64::try_from(rows).unwrap_or(0), seconds.max(0.0)),
                    Err(error) => tracing::warn!(%error, %table, "Cannot read the outbox depth."),
                }
            }
        });
        Ok(())
    }

    /// Rows not yet published.
    pub async fn pending(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {} WHERE published_at IS NULL",
            quote_table(&self.table)?
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

fn quote_table(table: &str) -> Result<String> {
    let parts: Vec<&str> = table.split('.').collect();
    let valid = parts.len() <= 2
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.len() <= 63
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                && !part.as_bytes()[0].is_ascii_digit()
        });
    if !valid {
        return Err(BusError::InvalidName {
            name: table.to_owned(),
            reason: "not a lower-case identifier (optionally schema-qualified)",
        });
    }
    Ok(parts.iter().map(|part| format!("\"{part}\"")).collect::<Vec<_>>().join("."))
}

/// A batch read from the source, not yet published.
struct Pending {
    envelopes: Vec<Envelope>,
    /// Outbox positions to mark (table relay only).
    positions: Vec<i64>,
}

/// The single-active-replica lock.
enum Leadership {
    Feed(LeaderLock),
    Table(PgConnection),
}

impl Leadership {
    async fn is_held(&mut self) -> bool {
        match self {
            Self::Feed(lock) => lock.is_held().await,
            Self::Table(conn) => sqlx::query("SELECT 1").execute(conn).await.is_ok(),
        }
    }

    async fn release(self) {
        let result = match self {
            Self::Feed(lock) => lock.release().await.map_err(BusError::from),
            Self::Table(mut conn) => {
                sqlx::query(TABLE_UNLOCK_SQL).execute(&mut conn).await.map(|_| ()).map_err(Into::into)
            }
        };
        if let Err(error) = result {
            // The lock dies with its connection anyway.
            tracing::debug!(%error, "Releasing the relay lock failed.");
        }
    }
}

const TABLE_LOCK_SQL: &str = "SELECT pg_try_advisory_lock(hashtextextended('sentra_bus:table_relay:' || \
     coalesce(current_schema(), '') || '.' || $1, 0))";
const TABLE_UNLOCK_SQL: &str = "SELECT pg_advisory_unlock_all()";

/// What differs between the two relays: where batches come from, how leadership is taken and how
/// a published batch is recorded.
#[async_trait::async_trait]
trait Source: Send + Sync {
    type Session: Send;

    /// For logs.
    fn describe(&self) -> String;

    async fn try_lead(&self) -> Result<Option<Leadership>>;

    /// Starts reading from the last recorded point.
    async fn open(&self) -> Result<Self::Session>;

    /// The next batch, or `None` when nothing arrived within `wait`.
    async fn next(&self, session: &mut Self::Session, wait: Duration) -> Result<Option<Pending>>;

    /// Records a confirmed batch.
    async fn commit(&self, session: &mut Self::Session, pending: Pending) -> Result<()>;
}

#[async_trait::async_trait]
impl Source for FeedRelay {
    type Session = Subscription;

    fn describe(&self) -> String {
        format!("feed:{}", self.context)
    }

    async fn try_lead(&self) -> Result<Option<Leadership>> {
        let name = format!("sentra-bus:{}:{}", self.context, self.config.name);
        Ok(self.feed.try_lead(&name).await?.map(Leadership::Feed))
    }

    async fn open(&self) -> Result<Subscription> {
        Ok(self.feed.subscribe(&self.config.name, self.config.batch_size).await?)
    }

    async fn next(&self, session: &mut Subscription, wait: Duration) -> Result<Option<Pending>> {
        // `next_batch` only moves the read cursor after a completed read, so cancelling it on
        // timeout loses nothing.
        let Ok(batch) = tokio::time::timeout(wait, session.next_batch()).await else { return Ok(None) };
        let mut envelopes = Vec::new();
        for event in batch?.iter() {
            envelopes.extend(self.mapper.envelope(&self.context, event)?);
        }
        Ok(Some(Pending { envelopes, positions: Vec::new() }))
    }

    async fn commit(&self, session: &mut Subscription, _pending: Pending) -> Result<()> {
        Ok(session.commit().await?)
    }
}

#[async_trait::async_trait]
impl Source for TableRelay {
    type Session = ();

    fn describe(&self) -> String {
        format!("table:{}", self.table)
    }

    async fn try_lead(&self) -> Result<Option<Leadership>> {
        let mut conn = self.pool.acquire().await?.detach();
        let locked: bool = sqlx::query_scalar(TABLE_LOCK_SQL).bind(&self.table).fetch_one(&mut conn).await?;
        Ok(locked.then_some(Leadership::Table(conn)))
    }

    async fn open(&self) -> Result<()> {
        Ok(())
    }

    async fn next(&self, _session: &mut (), wait: Duration) -> Result<Option<Pending>> {
        let limit = i64::try_from(self.config.batch_size).unwrap_or(i64::MAX);
        let rows: Vec<OutboxRow> = sqlx::query_as(&self.select_sql).bind(limit).fetch_all(&self.pool).await?;
        if rows.is_empty() {
            tokio::time::sleep(self.config.poll_interval.min(wait)).await;
            return Ok(None);
        }
        let positions = rows.iter().map(|row| row.0).collect();
        let envelopes = rows.into_iter().map(outbox_envelope).collect();
        Ok(Some(Pending { envelopes, positions }))
    }

    async fn commit(&self, _session: &mut (), pending: Pending) -> Result<()> {
        sqlx::query(&self.mark_sql).bind(&pending.positions).execute(&self.pool).await?;
        Ok(())
    }
}

type OutboxRow = (i64, Uuid, String, Uuid, Uuid, Value, Value, DateTime<Utc>);

/// An outbox row as an envelope: the routing key `<context>.<aggregate>.<event>` gives the
/// aggregate and event types; the outbox has no event version (`"1"`) and no stream sequence, so
/// `sequence` is the row's position (increasing per aggregate).
fn outbox_envelope(row: OutboxRow) -> Envelope {
    let (position, event_id, routing_key, tenant_id, aggregate_id, payload, metadata, created_at) = row;
    let mut parts = routing_key.split('.');
    let _context = parts.next();
    let rest: Vec<&str> = parts.collect();
    let (aggregate_type, event_type) = match rest.split_last() {
        Some((event, aggregate)) => (aggregate.join("."), (*event).to_owned()),
        None => (String::new(), routing_key.clone()),
    };
    Envelope {
        event_id,
        tenant_id,
        routing_key,
        aggregate_type,
        aggregate_id: aggregate_id.to_string(),
        sequence: u64::try_from(position).unwrap_or(0),
        event_type,
        event_version: "1".into(),
        recorded_at: created_at,
        payload: Payload::Json(payload),
        metadata,
    }
}

/// The message for `envelope`, and its producer span: a child of the span that appended the
/// event (the event metadata's `traceparent`), named in the message's `traceparent` header so
/// the consumer's span becomes its child. The span ends when the caller drops it.
fn outgoing(exchange: &lapin::types::ShortString, envelope: &Envelope) -> Result<(Outgoing, tracing::Span)> {
    let span = tracing::info_span!(
        "relay.publish",
        otel.name = %format_args!("{} publish", envelope.routing_key),
        otel.kind = "producer",
        messaging.system = "rabbitmq",
        messaging.operation.type = "publish",
        messaging.destination.name = %exchange,
        messaging.rabbitmq.destination.routing_key = %envelope.routing_key,
        messaging.message.id = %envelope.event_id,
    );
    let ctx = RequestContext::start(&span, envelope.correlation_id(), envelope.traceparent());
    let message = Outgoing {
        exchange: exchange.clone(),
        routing_key: short(&envelope.routing_key)?,
        body: envelope.body()?,
        properties: envelope.properties_traced(Some(&ctx.traceparent())),
        message_id: envelope.event_id.to_string(),
    };
    Ok((message, span))
}

/// Sleeps for `delay` unless shutdown comes first (true = shut down).
async fn pause(shutdown: &mut Pin<&mut (impl Future<Output = ()> + Send)>, delay: Duration) -> bool {
    tokio::select! {
        () = shutdown.as_mut() => true,
        () = tokio::time::sleep(delay) => false,
    }
}

/// The relay loop shared by both sources.
async fn drive<S: Source>(
    source: &S,
    config: &RelayConfig,
    state: &LinkState,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    let relay = source.describe();
    // Fail fast on a prefix the broker cannot take rather than looping on it.
    short(&config.broker.exchange_name())?;
    let mut backoff = Backoff::for_broker(&config.broker);
    loop {
        let lead = tokio::select! {
            () = shutdown.as_mut() => return Ok(()),
            lead = source.try_lead() => lead,
        };
        let leadership = match lead {
            Ok(Some(leadership)) => leadership,
            Ok(None) => {
                if pause(&mut shutdown, config.standby_interval).await {
                    return Ok(());
                }
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, relay = %relay, "Cannot take relay leadership; retrying.");
                if pause(&mut shutdown, config.standby_interval).await {
                    return Ok(());
                }
                continue;
            }
        };
        tracing::info!(relay = %relay, "Relay active.");
        state.set_active(true);
        let stopped = lead_loop(source, config, state, &mut shutdown, &mut backoff, leadership, &relay).await;
        state.set_active(false);
        state.set_connection(None);
        if stopped {
            return Ok(());
        }
    }
}

/// Publishes while this replica leads. Returns true on shutdown, false when leadership was lost.
async fn lead_loop<S: Source>(
    source: &S,
    config: &RelayConfig,
    state: &LinkState,
    shutdown: &mut Pin<&mut (impl Future<Output = ()> + Send)>,
    backoff: &mut Backoff,
    mut leadership: Leadership,
    relay: &str,
) -> bool {
    let mut publisher: Option<Publisher> = None;
    let mut session: Option<S::Session> = None;
    let purpose = format!("sentra-bus relay {relay}");
    let stopped = loop {
        if !leadership.is_held().await {
            tracing::warn!(relay = %relay, "Relay lock connection lost; standing by.");
            break false;
        }
        let current = match publisher.take() {
            Some(current) if current.is_connected() => current,
            stale => {
                if let Some(stale) = stale {
                    tracing::warn!(relay = %relay, "Broker connection lost; reconnecting.");
                    stale.close().await;
                }
                state.set_connection(None);
                match Publisher::open(&config.broker, &purpose).await {
                    Ok(fresh) => {
                        state.set_connection(Some(fresh.connection()));
                        tracing::info!(relay = %relay, "Relay connected to the broker.");
                        fresh
                    }
                    Err(error) => {
                        tracing::warn!(%error, relay = %relay, "Cannot connect to the broker; retrying.");
                        if pause(shutdown, backoff.next_delay()).await {
                            break true;
                        }
                        continue;
                    }
                }
            }
        };
        let publisher_ref = publisher.insert(current);
        if session.is_none() {
            match source.open().await {
                Ok(opened) => session = Some(opened),
                Err(error) => {
                    tracing::warn!(%error, relay = %relay, "Cannot read the outbox; retrying.");
                    if pause(shutdown, backoff.next_delay()).await {
                        break true;
                    }
                    continue;
                }
            }
        }
        let Some(reading) = session.as_mut() else { continue };
        let next = tokio::select! {
            () = shutdown.as_mut() => break true,
            next = source.next(reading, config.idle_check_interval) => next,
        };
        let pending = match next {
            Ok(Some(pending)) => pending,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(%error, relay = %relay, "Cannot read the outbox; retrying.");
                session = None;
                if pause(shutdown, backoff.next_delay()).await {
                    break true;
                }
                continue;
            }
        };
        let messages: Result<Vec<(Outgoing, tracing::Span)>> =
            pending.envelopes.iter().map(|envelope| outgoing(publisher_ref.exchange(), envelope)).collect();
        // The spans end (and are exported) when the batch is confirmed or fails.
        let (messages, _spans): (Vec<Outgoing>, Vec<tracing::Span>) = match messages {
            Ok(messages) => messages.into_iter().unzip(),
            Err(error) => {
                // A routing key over 255 bytes: nothing later can fix it, but skipping would lose
                // the event, so the relay stays stuck and loud until someone intervenes.
                tracing::error!(%error, relay = %relay, "Cannot encode an outbox batch; retrying.");
                session = None;
                if pause(shutdown, config.broker.reconnect_max).await {
                    break true;
                }
                continue;
            }
        };
        // Not raced against shutdown: the batch is bounded by the confirm timeout, and finishing it
        // avoids republishing it on the next start.
        if let Err(error) = publisher_ref.publish_all(&messages).await {
            tracing::warn!(%error, relay = %relay, "Broker connection lost; reconnecting.");
            if let Some(broken) = publisher.take() {
                broken.close().await;
            }
            state.set_connection(None);
            // Dropping the session rewinds to the last checkpoint: the batch is republished.
            session = None;
            if pause(shutdown, backoff.next_delay()).await {
                break true;
            }
            continue;
        }
        backoff.reset();
        let count = messages.len();
        if let Err(error) = source.commit(reading, pending).await {
            tracing::warn!(%error, relay = %relay, "Cannot record a published batch; it will be republished.");
            session = None;
            if pause(shutdown, backoff.next_delay()).await {
                break true;
            }
            continue;
        }
        tracing::debug!(relay = %relay, count, "Relay published a batch.");
    };
    if let Some(publisher) = publisher {
        publisher.close().await;
    }
    leadership.release().await;
    stopped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_validated_and_quoted() {
        assert_eq!(quote_table("outbox").unwrap(), "\"outbox\"");
        assert_eq!(quote_table("tenancy.outbox").unwrap(), "\"tenancy\".\"outbox\"");
        for bad in ["", "Outbox", "a.b.c", "out box", "1outbox", "outbox;drop", "x\""] {
            assert!(quote_table(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn outbox_rows_split_their_routing_key() {
        let row = (
            7,
            Uuid::nil(),
            "tenancy.brand.created".to_owned(),
            Uuid::max(),
            Uuid::max(),
            Value::Null,
            Value::Null,
            Utc::now(),
        );
        let envelope = outbox_envelope(row);
        assert_eq!((envelope.aggregate_type.as_str(), envelope.event_type.as_str()), ("brand", "created"));
        assert_eq!(envelope.sequence, 7);
        assert_eq!(envelope.routing_key, "tenancy.brand.created");
    }
}
