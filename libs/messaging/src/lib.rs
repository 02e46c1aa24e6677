//! Sentra's event bus on RabbitMQ: outbox relays that publish committed events, and consumers that
//! apply them effectively once.
//!
//! # Layout
//!
//! - One durable **topic exchange** `<prefix>sentra.events` ([`BrokerConfig::exchange_name`]). The
//!   prefix is empty in production and unique per test, and every exchange and queue name carries
//!   it, so parallel tests never share broker state.
//! - **Routing keys** `<context>.<aggregate>.<event>` ([`routing_key`]): `sales.order.confirmed`,
//!   `tenancy.brand.created`. For event-store events the relay builds
//!   `{context}.{aggregate_type}.{event_type}` from its configured context; outbox tables carry
//!   the routing key in a column.
//! - **Relays**: [`FeedRelay`] publishes a service's event-store feed (the feed *is* the outbox);
//!   [`TableRelay`] publishes a classic outbox table (Tenancy) and sets `published_at`.
//! - **Consumers** ([`Consumer`]): per consuming service and event set, a durable queue
//!   `<prefix><service>.<name>` bound to the configured keys (patterns allowed), its delay queue
//!   `<…>.retry` and its dead-letter queue `<…>.dlq`.
//! - **Inbox**: the table `inbox(consumer, message_id, processed_at)` from [`migrator`] (version
//!   101 in `migrations/bus`, next to the event store's 1–3 in the service's schema).
//!
//! # The envelope
//!
//! Every message is an [`Envelope`]: `event_id`, `tenant_id`, `routing_key`, `aggregate_type`,
//! `aggregate_id`, `sequence`, `event_type`, `event_version`, `recorded_at`, `payload` (the event
//! itself) and `metadata` (correlation/causation ids, actor, request id, traceparent). Consumers
//! need the aggregate id and the per-aggregate sequence to ignore stale events, which a bare
//! payload would not give them. Messages are persistent (delivery mode 2), `message_id` = event
//! id, `timestamp` = recorded at, with the headers [`headers::TENANT_ID`],
//! [`headers::CORRELATION_ID`], [`headers::TRACEPARENT`] and [`headers::EVENT_TYPE`] so routing
//! and tracing need not parse the body.
//!
//! Two body forms ([`Payload`]):
//! - **Protobuf** (`content_type` `application/protobuf`): the body is the encoded integration
//!   event from `proto/sentra/<context>/events/v1`, the AMQP `type` its full message name, the
//!   header [`headers::SCHEMA_VERSION`] its version, and the envelope's other fields `x-sentra-*`
//!   headers. Sales and Finance publish every event this way ([`FeedRelay::with_mapper`]), so a
//!   consumer depends on the published contract, never on another context's types.
//! - **JSON** (`application/json`): a JSON envelope holding the payload; Tenancy's outbox table
//!   and anything published before the switch. [`Envelope::from_message`] reads both, so messages
//!   already queued when a producer switches still decode.
//!
//! # Delivery guarantees
//!
//! **Publishing is at-least-once.** A relay publishes a batch in feed (or `position`) order on one
//! confirm-mode channel, waits for the broker's confirms of the whole batch, and only then commits
//! its checkpoint (feed) or sets `published_at` (table). On a nack, a timeout, a broken connection
//! or a failed commit nothing is recorded and the whole batch is published again, so some events
//! may arrive twice; none is lost once it committed in PostgreSQL.
//!
//! **Handling is effectively once.** The consumer opens a transaction, inserts
//! `(consumer, message_id)` into the inbox (`ON CONFLICT DO NOTHING`), calls the [`Handler`] with
//! that transaction, commits, and only then acks. A redelivered or republished message finds its
//! inbox row, is acked and has no second effect. A crash after commit and before the ack is
//! exactly such a redelivery.
//!
//! **Ordering.** Events of one aggregate are published in sequence order, and one channel into one
//! queue keeps that order. A consumer handles its deliveries one at a time, in order, and its
//! queue is declared `x-single-active-consumer` by default so replicas fail over rather than
//! compete. Order is only given up by failures: a republished batch repeats earlier events (the
//! inbox drops them), and a message sent to the delay queue is overtaken by later messages
//! (consumers that care compare [`Envelope::sequence`]).
//!
//! # Leadership
//!
//! Exactly one relay per service publishes at a time, whatever the number of replicas.
//! [`FeedRelay`] takes the event store's [`sentra_event_store::Feed::try_lead`] lock (a session
//! advisory lock on a dedicated connection, named `sentra-bus:<context>:<relay name>`).
//! [`TableRelay`] takes `pg_try_advisory_lock` on `sentra_bus:table_relay:<schema>.<table>`, also
//! on a dedicated connection; `FOR UPDATE SKIP LOCKED` was rejected because it lets replicas
//! publish interleaved batches and so breaks per-aggregate order. Standby replicas retry every
//! [`RelayConfig::standby_interval`] and take over when the leader's connection dies. Even a split
//! brain only causes duplicates, which the inbox absorbs.
//!
//! # Retries and dead letters
//!
//! A failed handler ([`HandlerError::Retry`]) has its transaction rolled back. The message is
//! republished (confirmed) to the delay queue `<…>.retry` with the header
//! [`headers::ATTEMPTS`] = failures so far, [`headers::ERROR`] = the error text, and a per-message
//! TTL of [`ConsumerConfig::retry_delay_after`] (exponential, default 1 s doubling up to 5 min);
//! then the original is acked. The delay queue dead-letters expired messages through the default
//! exchange back to the main queue. The count travels with the message and the wait happens in the
//! broker, so retries survive restarts of the consumer and never block other messages in it. (A
//! per-message TTL only expires at the head of the delay queue, so a short delay behind a long one
//! waits longer; never less.) After [`ConsumerConfig::max_attempts`] failures (default 5), or at
//! once for [`HandlerError::Reject`] and bodies that are not an envelope, the message goes to the
//! durable `<…>.dlq` with the attempt count, error text and time in headers, then the original is
//! acked. [`Consumer::replay_dead_letters`] moves dead letters back to the main queue with the
//! count reset. A failure of the inbox transaction itself (database down) is not the message's
//! fault: the message is requeued after a pause and no attempt is counted.
//!
//! # Reconnects
//!
//! Relays and consumers own their connections and recover by themselves: on any broker error
//! (dropped TCP connection, broker restart, closed channel, confirm timeout) they close what is
//! left, wait with exponential backoff ([`BrokerConfig::reconnect_min`] to
//! [`BrokerConfig::reconnect_max`]), reconnect, declare their topology again and carry on. A relay
//! republishes its unconfirmed batch; a consumer's unacknowledged deliveries are requeued by the
//! broker when the channel dies and come back (duplicates are caught by the inbox).
//! `is_connected()` on relays and consumers tells a health probe whether a broker connection is
//! currently open.

mod broker;
mod config;
mod consumer;
mod envelope;
mod error;
mod relay;

pub use config::{BrokerConfig, EXCHANGE};
pub use consumer::{Consumer, ConsumerConfig, Handler, HandlerError};
pub use envelope::{Envelope, Payload, header_str, header_u32, header_u64, headers, routing_key};
pub use error::{BusError, Result};
pub use relay::{EventMapper, FeedRelay, RelayConfig, TableRelay, observe_projections};

/// Re-exported so handlers can implement [`Handler`] without depending on `async-trait` themselves.
pub use async_trait::async_trait;

/// The bus migrations (the inbox; versions 101…), to run in the service's schema next to its own
/// and the event store's (`sentra_runtime::db::connect_and_migrate(&config, [..., sentra_bus::migrator()])`).
pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("../../migrations/bus")
}

/// Deletes inbox rows processed before `older_than` ago and returns how many. Keep them longer
/// than any message can be redelivered (relay outages, dead-letter replays): a pruned id is no
/// longer recognized as a duplicate.
pub async fn prune_inbox(pool: &sqlx::PgPool, older_than: std::time::Duration) -> Result<u64> {
    let seconds = older_than.as_secs_f64();
    let done = sqlx::query("DELETE FROM inbox WHERE processed_at < now() - make_interval(secs => $1)")
        .bind(seconds)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
