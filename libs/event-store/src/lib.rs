//! PostgreSQL event store for Sentra's event-sourced services (Sales, Finance), built for
//! [`cqrs_es`] aggregates.
//!
//! # Layout
//!
//! - [`EventStore`] (`store`): append one command's events in one statement with optimistic
//!   concurrency and idempotency; load aggregates (snapshot + tail), time travel, upcasting.
//! - [`Feed`] / [`Subscription`] (`feed`): the global feed of all events with per-subscriber
//!   checkpoints, LISTEN/NOTIFY wake-ups and a polling fallback; [`ReadAhead`] fetches the next
//!   batch while the caller handles the current one (catch-ups and rebuilds); [`LeaderLock`] for
//!   single-instance consumers.
//! - [`Projection`] / [`ProjectionRunner`] (`projection`): read tables with exactly-once effect,
//!   rebuild-and-swap, one active runner per projection, lag.
//! - [`CqrsRepository`] (`cqrs`): the `cqrs_es::persist::PersistedEventRepository` adapter, so
//!   `PersistedEventStore` and `CqrsFramework` run on this store.
//! - [`MIGRATOR`] / [`migrator`]: the schema (`migrations/event-store`), versions 1, 2, 3, 4…, run in
//!   the service's schema next to its own timestamp-versioned migrations. All SQL uses unqualified
//!   names, so `search_path` decides the schema.
//!
//! # Tenancy and metadata
//!
//! Every event carries a non-nil `tenant_id` (a column, checked in Rust and by the schema); a nil
//! tenant is [`EventStoreError::MissingTenant`]. An aggregate never changes tenant: appending or
//! loading under another tenant is [`EventStoreError::TenantMismatch`]. Per-command
//! [`EventMetadata`] (correlation, causation, actor, request id, traceparent, extras) is stored as a
//! flat JSON object of strings in `metadata`, the shape cqrs-es reads back.
//!
//! # Appends
//!
//! One statement per command: it reads the stream head, inserts all events with `UNNEST` only if
//! the head equals the expected version, and writes the request id to `idempotency_keys`. Two
//! writers racing for the same sequence are separated by the unique
//! `(aggregate_type, aggregate_id, sequence)` constraint; the loser gets
//! [`EventStoreError::Conflict`] (map to gRPC `ABORTED`). A retried command (same request id or
//! same event ids) appends nothing and returns the first attempt's [`AppendOutcome`] with
//! `duplicate: true`.
//!
//! Write combining: when appends arrive while others are being written, the waiting commands
//! (of different aggregates, a few events each, no request id) go into one shared `INSERT` and
//! one commit, each keeping its own expected-version check and its own outcome; see the
//! `combine` module. A lone append is written inline, so an idle store pays nothing for it;
//! [`EventStoreBuilder::append_concurrency`] bounds the shared statements in flight (0 turns
//! combining off). This is what lets single-event appends at concurrency 16 keep pace with raw
//! one-row inserts, which otherwise each pay a round trip, a commit and a WAL flush wait.
//!
//! # Feed order
//!
//! `position` is allocated at insert, not at commit, so a reader following positions alone would
//! skip an event whose transaction took a lower position but committed later. Readers therefore
//! order by `(transaction_id, position)` and only read rows with
//! `transaction_id < pg_snapshot_xmin(pg_current_snapshot())`: every such transaction has ended, so
//! no row can ever appear behind the cursor, and a rolled-back transaction simply leaves nothing.
//! The price: while any transaction that was assigned an id before an event's transaction is
//! still open, that event waits (keep transactions short). The cursor is
//! [`Cursor`] `(transaction_id, position)`, which is also the table's primary key: one index
//! serves the feed and row identity (`position` is an identity column appends never override).
//!
//! Wake-ups: an append wakes this process's readers at once and sends a coalesced `NOTIFY` from a
//! background task after commit (a `NOTIFY` inside every append transaction would serialize all
//! commits on PostgreSQL's notify lock); [`EventStore::append_in`] notifies inside the caller's
//! transaction. Readers also poll (default 500 ms), which covers lost notifications.
//!
//! # Outbox
//!
//! The feed itself is the outbox. What must be published is exactly what the append transaction
//! committed to `events`, so there is no second table to keep consistent and nothing to decide
//! later. The RabbitMQ relay is a feed subscriber with its own checkpoint: it calls
//! [`Feed::try_lead`] (one active relay), [`Feed::subscribe`], publishes each
//! [`Subscription::next_batch`] and then [`Subscription::commit`]s. Delivery is at-least-once
//! (a crash between publish and commit republishes the batch); consumers deduplicate by
//! `event_id`.
//!
//! # Projections
//!
//! A [`ProjectionRunner`] reads batches from the feed and applies each batch and its checkpoint
//! update in one transaction: delivery is at-least-once, the effect exactly-once. The checkpoint
//! update is a compare-and-set, so even two runners that both believe they are active cannot apply
//! a batch twice; normally only one is active, elected by `pg_try_advisory_lock` on a dedicated
//! connection. [`ActiveProjection::rebuild`] replays everything into `<table>_rebuild` and swaps it
//! in atomically with the checkpoint. [`ProjectionRunner::lag`] gives events behind and the age
//! of the oldest unapplied event.
//!
//! # Snapshots, upcasting, time travel
//!
//! Snapshots are taken every N events per aggregate type ([`EventStoreBuilder::snapshot_every`]),
//! after the append commits; a snapshot that no longer deserializes is logged and ignored (full
//! replay). Upcasters are cqrs-es [`cqrs_es::persist::EventUpcaster`]s keyed on `event_type` and
//! `event_version` and run on every read (loads, feed, cqrs-es). [`EventStore::load_as_of_sequence`]
//! and [`EventStore::load_as_of_time`] replay a prefix of the stream.

mod combine;
mod cqrs;
mod error;
mod feed;
mod model;
mod projection;
pub mod rows;
mod store;

pub use async_trait::async_trait;
pub use combine::DEFAULT_APPEND_CONCURRENCY;
pub use cqrs::CqrsRepository;
pub use error::{BoxError, EventStoreError, Result};
pub use feed::{
    DEFAULT_POLL_INTERVAL, Feed, LeaderLock, ReadAhead, SubscriberStatus, Subscription, save_checkpoint_in,
};
pub use model::{
    AppendOutcome, AppendedEvent, Cursor, EventMetadata, Lag, Loaded, NewEvent, RecordedEvent, TENANT_METADATA_KEY,
    parse_tenant, require_tenant,
};
pub use projection::{ActiveProjection, Projection, ProjectionRunner};
pub use store::{CommandError, EventStore, EventStoreBuilder};

/// The event store's migrations (versions 1, 2, 3…), to run in the service's schema.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/event-store");

/// A fresh copy of the migrations, for APIs that take a `Migrator` by value
/// (`sentra_runtime::db::connect_and_migrate(&config, [sentra_event_store::migrator(), ...])`).
pub fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("../../migrations/event-store")
}

/// Runs `command` against `state` the way cqrs-es does (events are applied to `state` as they
/// are written) and returns the events, for callers that append themselves — for example
/// several aggregates in one transaction with [`EventStore::append_in`].
pub async fn decide<A: cqrs_es::Aggregate>(
    state: &mut A,
    command: A::Command,
    services: &A::Services,
) -> std::result::Result<Vec<A::Event>, A::Error> {
    let sink = cqrs_es::event_sink::EventSink::<A>::default();
    state.handle(command, services, &sink).await?;
    Ok(sink.collect().await)
}

/// The store's form of a command's domain events.
pub fn new_events<E: cqrs_es::DomainEvent>(events: &[E]) -> Result<Vec<NewEvent>> {
    events.iter().map(NewEvent::from_domain).collect()
}
