//! Appending and loading aggregates.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::Value;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Connection, PgConnection, PgExecutor, Row};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::combine::{Combiner, DEFAULT_APPEND_CONCURRENCY};
use crate::error::{EventStoreError, Result};
use crate::feed::Feed;
use crate::model::{
    AppendOutcome, AppendedEvent, EventMetadata, Loaded, NewEvent, RecordedEvent, from_db_version, require_tenant,
    to_db_version,
};

/// Columns of `events` in the order [`event_from_row`] reads them.
pub(crate) const EVENT_COLUMNS: &str = "position, transaction_id::text::bigint AS transaction_id, tenant_id, \
     aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, event_id, recorded_at";

/// Inserts all of a command's events (UNNEST) in one statement. Optimistic concurrency costs one
/// index probe: the insert only happens if event `expected` exists and belongs to the tenant (or
/// `expected` is 0), so no gap can be created; a stale `expected` collides with an existing
/// sequence on `events_stream_sequence_key`, which also separates racing writers. Zero rows
/// inserted or a unique violation is then explained by `resolve`, off the fast path.
const INSERT_EVENTS: &str = "\
    INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                        metadata, event_id)
    SELECT $1, $2, $3, $4 + e.ord, e.event_type, e.event_version, e.payload, $9, e.event_id
    FROM unnest($5::text[], $6::text[], $7::jsonb[], $8::uuid[])
         WITH ORDINALITY AS e(event_type, event_version, payload, event_id, ord)
    WHERE $4 = 0 OR EXISTS (SELECT 1 FROM events h WHERE h.aggregate_type = $2 AND h.aggregate_id = $3
                                                     AND h.sequence = $4 AND h.tenant_id = $1)
    RETURNING sequence, position";

/// The append without a request id.
static APPEND_SQL: LazyLock<String> = LazyLock::new(|| INSERT_EVENTS.to_owned());

/// The append with a request id: the idempotency row is written by the same statement, only when
/// the events were.
static APPEND_IDEMPOTENT_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH ins AS ({INSERT_EVENTS}), idem AS (\
           INSERT INTO idempotency_keys (tenant_id, request_id, aggregate_type, aggregate_id, first_sequence, last_sequence) \
           SELECT $1, $10, $2, $3, min(sequence), max(sequence) FROM ins HAVING count(*) > 0) \
         SELECT sequence, position FROM ins"
    )
});

/// Notification channel for new events, per schema so services sharing a database do not wake
/// each other.
pub(crate) const CHANNEL_SQL: &str = "SELECT 'sentra_events:' || coalesce(current_schema(), 'public')";

pub(crate) struct Inner {
    pub(crate) pool: PgPool,
    pub(crate) upcasters: Vec<Box<dyn EventUpcaster>>,
    snapshot_every: HashMap<String, u64>,
    /// Wakes this process's feed readers right after a local append commits.
    pub(crate) local_wake: watch::Sender<u64>,
    /// Coalescing NOTIFY sender for other processes; started on first append.
    remote_wake: OnceLock<mpsc::Sender<()>>,
    /// The one LISTEN connection of this store, started by the first feed reader and shared by
    /// all of them (see `feed::shared_listener`).
    pub(crate) listener: OnceLock<crate::feed::SharedListener>,
    /// Writes concurrent appends together.
    combiner: Arc<Combiner>,
}

/// The event store: append, load, time travel, and the global [`Feed`]. Cheap to clone.
#[derive(Clone)]
pub struct EventStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("upcasters", &self.inner.upcasters.len())
            .field("snapshot_every", &self.inner.snapshot_every)
            .finish_non_exhaustive()
    }
}

/// Configures an [`EventStore`].
pub struct EventStoreBuilder {
    pool: PgPool,
    upcasters: Vec<Box<dyn EventUpcaster>>,
    snapshot_every: HashMap<String, u64>,
    append_concurrency: usize,
}

impl EventStoreBuilder {
    /// Registers an upcaster; they run in registration order on every read.
    pub fn upcaster(mut self, upcaster: impl EventUpcaster + 'static) -> Self {
        self.upcasters.push(Box::new(upcaster));
        self
    }

    /// Takes a snapshot of `aggregate_type` each time its version crosses a multiple of `every`
    /// (0 disables).
    pub fn snapshot_every(mut self, aggregate_type: &str, every: u64) -> Self {
        if every == 0 {
            self.snapshot_every.remove(aggregate_type);
        } else {
            self.snapshot_every.insert(aggregate_type.to_owned(), every);
        }
        self
    }

    /// How many combined append statements may be in flight at once (default
    /// [`DEFAULT_APPEND_CONCURRENCY`]); 0 writes every append on its own. See
    /// [`EventStore::append`].
    pub fn append_concurrency(mut self, statements: usize) -> Self {
        self.append_concurrency = statements;
        self
    }

    /// Builds the store.
    pub fn build(self) -> EventStore {
        let (local_wake, _) = watch::channel(0);
        EventStore {
            inner: Arc::new(Inner {
                pool: self.pool,
                upcasters: self.upcasters,
                snapshot_every: self.snapshot_every,
                local_wake,
                remote_wake: OnceLock::new(),
                listener: OnceLock::new(),
                combiner: Combiner::new(self.append_concurrency),
            }),
        }
    }
}

/// Why [`EventStore::execute`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The aggregate rejected the command.
    #[error("command rejected")]
    Rejected(#[source] E),
    /// Loading or appending failed.
    #[error(transparent)]
    Store(#[from] EventStoreError),
}

/// Where a load stops.
#[derive(Clone, Copy)]
pub(crate) enum Until {
    Head,
    Sequence(u64),
    Time(DateTime<Utc>),
}

/// What the append statement did, before duplicates and conflicts are told apart.
pub(crate) enum Attempt {
    Appended(Vec<AppendedEvent>),
    NotInserted,
    Unique { constraint: Option<String> },
}

/// One command's append, validated and owned, so that it can be handed to the task that writes
/// it together with other callers' appends (see [`crate::combine`]).
pub(crate) struct Append {
    pub(crate) tenant_id: Uuid,
    pub(crate) aggregate_type: String,
    pub(crate) aggregate_id: String,
    pub(crate) expected: u64,
    pub(crate) expected_db: i64,
    pub(crate) events: Vec<NewEvent>,
    pub(crate) metadata: EventMetadata,
}

impl EventStore {
    /// A store with no upcasters and no snapshots.
    pub fn new(pool: PgPool) -> Self {
        Self::builder(pool).build()
    }

    /// Starts configuring a store.
    pub fn builder(pool: PgPool) -> EventStoreBuilder {
        EventStoreBuilder {
            pool,
            upcasters: Vec::new(),
            snapshot_every: HashMap::new(),
            append_concurrency: DEFAULT_APPEND_CONCURRENCY,
        }
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The global feed of all events, for subscribers and projections.
    pub fn feed(&self) -> Feed {
        Feed::new(self.clone())
    }

    /// Appends one command's events to an aggregate in a single statement, atomically.
    ///
    /// While other appends are being written, this one may share a statement and a commit with
    /// theirs (write combining; each command keeps its own concurrency check and outcome, see
    /// `append_concurrency` on the builder). Once handed over, it is written even if the caller
    /// stops waiting.
    ///
    /// `expected_version` is the version the command was decided on (0 for a new aggregate).
    /// Fails with [`EventStoreError::Conflict`] when the aggregate moved on. When
    /// `metadata.request_id` (or the event ids) were already appended, nothing is appended again
    /// and the first attempt's result comes back with `duplicate: true`.
    #[tracing::instrument(
        name = "event_store.append",
        skip_all,
        fields(otel.kind = "internal", aggregate_type = %aggregate_type, events = events.len())
    )]
    pub async fn append(
        &self,
        tenant_id: Uuid,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: Vec<NewEvent>,
        metadata: &EventMetadata,
    ) -> Result<AppendOutcome> {
        let request = Append::new(tenant_id, aggregate_type, aggregate_id, expected_version, events, metadata)?;
        if request.events.is_empty() {
            return Ok(AppendOutcome { version: expected_version, events: Vec::new(), duplicate: false });
        }
        let outcome = self.inner.combiner.append(&self.inner.pool, request).await?;
        if !outcome.duplicate {
            self.wake();
        }
        Ok(outcome)
    }

    /// Appends inside a transaction the caller holds (`&mut *tx`), e.g. to write the events and
    /// other rows atomically. The append runs under a savepoint so a conflict or duplicate leaves
    /// the caller's transaction usable. Readers are woken by a NOTIFY delivered at commit.
    #[allow(clippy::too_many_arguments, reason = "mirrors `append` plus the caller's connection")]
    #[tracing::instrument(
        name = "event_store.append",
        skip_all,
        fields(otel.kind = "internal", aggregate_type = %aggregate_type, events = events.len())
    )]
    pub async fn append_in(
        &self,
        conn: &mut PgConnection,
        tenant_id: Uuid,
        aggregate_type: &str,
        aggregate_id: &str,
        expected_version: u64,
        events: Vec<NewEvent>,
        metadata: &EventMetadata,
    ) -> Result<AppendOutcome> {
        let request = Append::new(tenant_id, aggregate_type, aggregate_id, expected_version, events, metadata)?;
        if request.events.is_empty() {
            return Ok(AppendOutcome { version: expected_version, events: Vec::new(), duplicate: false });
        }
        let mut savepoint = conn.begin().await?;
        let attempt = try_append(&mut *savepoint, &request).await?;
        let outcome = match attempt {
            Attempt::Appended(events) => {
                savepoint.commit().await?;
                appended(events)
            }
            other => {
                savepoint.rollback().await?;
                resolve(conn, &request, other).await?
            }
        };
        if !outcome.duplicate {
            let channel: String = sqlx::query_scalar(CHANNEL_SQL).fetch_one(&mut *conn).await?;
            sqlx::query("SELECT pg_notify($1, '')").bind(channel).execute(&mut *conn).await?;
            // Local readers find nothing until the caller commits; their poll covers the gap.
            self.inner.local_wake.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(outcome)
    }

    /// The first attempt's result for a request id, if that request was appended.
    pub async fn find_request(&self, tenant_id: Uuid, request_id: &str) -> Result<Option<AppendOutcome>> {
        let tenant_id = require_tenant(tenant_id)?;
        let mut conn = self.inner.pool.acquire().await?;
        Ok(find_request(&mut conn, tenant_id, request_id).await?.map(|(_, _, outcome)| outcome))
    }

    /// Loads an aggregate at its latest version: latest snapshot (if readable) plus the events after
    /// it. An aggregate with no events loads as `A::default()` at version 0.
    pub async fn load<A: Aggregate>(&self, tenant_id: Uuid, aggregate_id: &str) -> Result<Loaded<A>> {
        self.load_until(tenant_id, aggregate_id, Until::Head).await
    }

    /// Loads an aggregate as it was right after event `sequence` (time travel).
    pub async fn load_as_of_sequence<A: Aggregate>(
        &self,
        tenant_id: Uuid,
        aggregate_id: &str,
        sequence: u64,
    ) -> Result<Loaded<A>> {
        self.load_until(tenant_id, aggregate_id, Until::Sequence(sequence)).await
    }

    /// Loads an aggregate as it was at `at`: every event up to (not including) the first one
    /// recorded after `at`, so the result is always a prefix of the stream.
    pub async fn load_as_of_time<A: Aggregate>(
        &self,
        tenant_id: Uuid,
        aggregate_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Loaded<A>> {
        self.load_until(tenant_id, aggregate_id, Until::Time(at)).await
    }

    /// Appends a cqrs-es aggregate's new events on top of `loaded` (expected version =
    /// `loaded.version`) and takes a snapshot when one is due.
    ///
    /// `loaded.state` must already include `events`: cqrs-es' `EventSink::write` applies each event
    /// while `handle` runs (see [`EventStore::execute`]). On success `loaded.version` advances; on a
    /// duplicate request it is left as it was (reload to see the first attempt's effect).
    pub async fn commit<A: Aggregate>(
        &self,
        loaded: &mut Loaded<A>,
        events: Vec<A::Event>,
        metadata: &EventMetadata,
    ) -> Result<AppendOutcome> {
        let new_events = events.iter().map(NewEvent::from_domain).collect::<Result<Vec<_>>>()?;
        let before = loaded.version;
        let outcome =
            self.append(loaded.tenant_id, A::TYPE, &loaded.aggregate_id, before, new_events, metadata).await?;
        if outcome.duplicate || outcome.events.is_empty() {
            return Ok(outcome);
        }
        loaded.version = outcome.version;
        if self.snapshot_due(A::TYPE, before, outcome.version) {
            // The events are committed; a failed snapshot only makes later loads replay more.
            if let Err(error) = self
                .write_snapshot(A::TYPE, &loaded.aggregate_id, loaded.tenant_id, outcome.version, &loaded.state)
                .await
            {
                tracing::warn!(aggregate_id = %loaded.aggregate_id, %error, "Snapshot not written.");
            }
        }
        Ok(outcome)
    }

    /// Runs a cqrs-es command end to end for a tenant: load, `A::handle`, append with `metadata`,
    /// snapshot if due. A conflict is returned, not retried (the caller decides; gRPC `ABORTED`).
    pub async fn execute<A>(
        &self,
        tenant_id: Uuid,
        aggregate_id: &str,
        command: A::Command,
        services: &A::Services,
        metadata: &EventMetadata,
    ) -> Result<AppendOutcome, CommandError<A::Error>>
    where
        A: Aggregate,
        A::Error: 'static,
    {
        let mut loaded = self.load::<A>(tenant_id, aggregate_id).await?;
        let sink = cqrs_es::event_sink::EventSink::<A>::default();
        loaded.state.handle(command, services, &sink).await.map_err(CommandError::Rejected)?;
        let events = sink.collect().await;
        Ok(self.commit(&mut loaded, events, metadata).await?)
    }

    /// Every event of one aggregate, upcast, in sequence order.
    pub async fn read_stream(
        &self,
        tenant_id: Uuid,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<RecordedEvent>> {
        let tenant_id = require_tenant(tenant_id)?;
        let events = self.stream_after(aggregate_type, aggregate_id, 0, Until::Head).await?;
        if events.iter().any(|e| e.tenant_id != tenant_id) {
            return Err(EventStoreError::TenantMismatch);
        }
        Ok(events)
    }

    /// Every stream of `aggregate_type` in the tenant as it stood at `as_of`, upcast, ordered by
    /// aggregate id then sequence: for "as of" views that fold many aggregates. Each stream is cut
    /// where [`EventStore::load_as_of_time`] cuts it (before its first event recorded after
    /// `as_of`), so a view and a single load agree.
    pub async fn read_type_as_of(
        &self,
        tenant_id: Uuid,
        aggregate_type: &str,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<RecordedEvent>> {
        let tenant_id = require_tenant(tenant_id)?;
        let rows = sqlx::query(&TYPE_AS_OF_SQL)
            .bind(tenant_id)
            .bind(aggregate_type)
            .bind(as_of)
            .fetch_all(&self.inner.pool)
            .await?;
        rows.iter().map(|row| event_from_row(row).map(|e| self.upcast(e))).collect()
    }

    /// Writes (or replaces with a newer) snapshot of an aggregate at `version`.
    pub async fn write_snapshot<A: serde::Serialize>(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        tenant_id: Uuid,
        version: u64,
        state: &A,
    ) -> Result<()> {
        let tenant_id = require_tenant(tenant_id)?;
        let state = serde_json::to_value(state)?;
        sqlx::query(
            "INSERT INTO snapshots (aggregate_type, aggregate_id, tenant_id, sequence, state) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE \
             SET sequence = excluded.sequence, state = excluded.state, taken_at = now() \
             WHERE snapshots.sequence < excluded.sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(tenant_id)
        .bind(to_db_version(version)?)
        .bind(state)
        .execute(&self.inner.pool)
        .await?;
        Ok(())
    }

    /// The configured snapshot interval of an aggregate type.
    pub fn snapshot_interval(&self, aggregate_type: &str) -> Option<u64> {
        self.inner.snapshot_every.get(aggregate_type).copied()
    }

    pub(crate) fn snapshot_due(&self, aggregate_type: &str, before: u64, after: u64) -> bool {
        self.snapshot_interval(aggregate_type).is_some_and(|every| before / every != after / every)
    }

    /// Runs the registered upcasters over a stored event.
    pub(crate) fn upcast(&self, mut event: RecordedEvent) -> RecordedEvent {
        if self.inner.upcasters.is_empty() {
            return event;
        }
        let mut serialized = SerializedEvent {
            aggregate_id: String::new(),
            sequence: usize::try_from(event.sequence).unwrap_or(usize::MAX),
            aggregate_type: String::new(),
            event_type: std::mem::take(&mut event.event_type),
            event_version: std::mem::take(&mut event.event_version),
            payload: std::mem::take(&mut event.payload),
            metadata: Value::Null,
        };
        for upcaster in &self.inner.upcasters {
            if upcaster.can_upcast(&serialized.event_type, &serialized.event_version) {
                serialized = upcaster.upcast(serialized);
            }
        }
        event.event_type = serialized.event_type;
        event.event_version = serialized.event_version;
        event.payload = serialized.payload;
        event
    }

    /// Events of one stream with sequence > `after`, up to `until`, upcast.
    pub(crate) async fn stream_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after: u64,
        until: Until,
    ) -> Result<Vec<RecordedEvent>> {
        let after = to_db_version(after)?;
        let query = match until {
            Until::Head => sqlx::query(&STREAM_SQL.head).bind(aggregate_type).bind(aggregate_id).bind(after),
            Until::Sequence(sequence) => sqlx::query(&STREAM_SQL.sequence)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(after)
                .bind(to_db_version(sequence)?),
            Until::Time(at) => {
                sqlx::query(&STREAM_SQL.time).bind(aggregate_type).bind(aggregate_id).bind(after).bind(at)
            }
        };
        let rows = query.fetch_all(&self.inner.pool).await?;
        rows.iter().map(|row| event_from_row(row).map(|e| self.upcast(e))).collect()
    }

    #[tracing::instrument(
        name = "event_store.load",
        skip_all,
        fields(otel.kind = "internal", aggregate_type = %A::TYPE)
    )]
    async fn load_until<A: Aggregate>(&self, tenant_id: Uuid, aggregate_id: &str, until: Until) -> Result<Loaded<A>> {
        let tenant_id = require_tenant(tenant_id)?;
        let mut loaded = Loaded {
            aggregate_id: aggregate_id.to_owned(),
            tenant_id,
            state: A::default(),
            version: 0,
            snapshot_version: None,
        };
        // A time bound cannot be checked against a snapshot (it has no per-event times).
        if !matches!(until, Until::Time(_)) {
            let row = sqlx::query(
                "SELECT sequence, tenant_id, state FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2",
            )
            .bind(A::TYPE)
            .bind(aggregate_id)
            .fetch_optional(&self.inner.pool)
            .await?;
            if let Some(row) = row {
                let sequence = from_db_version(row.try_get("sequence")?);
                let owner: Uuid = row.try_get("tenant_id")?;
                let usable = match until {
                    Until::Sequence(limit) => sequence <= limit,
                    _ => true,
                };
                if owner != tenant_id {
                    return Err(EventStoreError::TenantMismatch);
                }
                if usable {
                    match row
                        .try_get::<Value, _>("state")
                        .map_err(EventStoreError::from)
                        .and_then(|state| serde_json::from_value::<A>(state).map_err(EventStoreError::from))
                    {
                        Ok(state) => {
                            loaded.state = state;
                            loaded.version = sequence;
                            loaded.snapshot_version = Some(sequence);
                        }
                        Err(error) => {
                            tracing::warn!(aggregate_id = %aggregate_id, %error, "Snapshot unreadable; replaying.");
                        }
                    }
                }
            }
        }
        let events = self.stream_after(A::TYPE, aggregate_id, loaded.version, until).await?;
        for event in events {
            if event.tenant_id != tenant_id {
                return Err(EventStoreError::TenantMismatch);
            }
            let domain: A::Event = serde_json::from_value(event.payload)?;
            loaded.state.apply(domain);
            loaded.version = event.sequence;
        }
        Ok(loaded)
    }

    /// Wakes readers after a commit: local ones at once, other processes through a coalesced
    /// NOTIFY sent off the append's critical path (a NOTIFY inside the append transaction would
    /// serialize every commit on PostgreSQL's notify queue lock).
    fn wake(&self) {
        self.inner.local_wake.send_modify(|n| *n = n.wrapping_add(1));
        let sender = self.inner.remote_wake.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(1);
            tokio::spawn(notify_loop(self.inner.pool.clone(), receiver));
            sender
        });
        // Full means a NOTIFY is already pending and will cover this commit too.
        let _ = sender.try_send(());
    }
}

/// Shortest gap between two NOTIFYs: local readers are woken at once through `local_wake`, so
/// only other processes wait, and at most this long (their poll is the fallback).
const NOTIFY_GAP: std::time::Duration = std::time::Duration::from_millis(10);

async fn notify_loop(pool: PgPool, mut receiver: mpsc::Receiver<()>) {
    while receiver.recv().await.is_some() {
        if let Err(error) = notify(&pool).await {
            tracing::debug!(%error, "Event NOTIFY failed; readers will poll.");
        }
        // Appends arriving meanwhile coalesce into the one pending wake-up (channel of 1).
        tokio::time::sleep(NOTIFY_GAP).await;
    }
}

/// One NOTIFY in its own transaction, sent as one simple-protocol message (one round trip). A
/// NOTIFY gives its transaction an xid, so committing it would wait for a WAL flush like an
/// append; `synchronous_commit = off` spares appends that competition (a notification lost in a
/// crash only delays readers until their next poll).
async fn notify(pool: &PgPool) -> std::result::Result<(), sqlx::Error> {
    sqlx::raw_sql(
        "BEGIN; SET LOCAL synchronous_commit = off; \
         SELECT pg_notify(('sentra_events:' || coalesce(current_schema(), 'public')), ''); COMMIT",
    )
    .execute(pool)
    .await
    .map(drop)
}

struct StreamSql {
    head: String,
    sequence: String,
    time: String,
}

static STREAM_SQL: std::sync::LazyLock<StreamSql> = std::sync::LazyLock::new(|| {
    let base =
        format!("SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3");
    StreamSql {
        head: format!("{base} ORDER BY sequence"),
        sequence: format!("{base} AND sequence <= $4 ORDER BY sequence"),
        time: format!(
            "{base} AND sequence < coalesce((SELECT min(sequence) FROM events WHERE aggregate_type = $1 \
             AND aggregate_id = $2 AND recorded_at > $4), 9223372036854775807) ORDER BY sequence"
        ),
    }
});

static TYPE_AS_OF_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events e WHERE tenant_id = $1 AND aggregate_type = $2 \
         AND recorded_at <= $3 AND NOT EXISTS (SELECT 1 FROM events later \
         WHERE later.aggregate_type = e.aggregate_type AND later.aggregate_id = e.aggregate_id \
         AND later.sequence < e.sequence AND later.recorded_at > $3) \
         ORDER BY aggregate_id, sequence"
    )
});

impl Append {
    pub(crate) fn new(
        tenant_id: Uuid,
        aggregate_type: &str,
        aggregate_id: &str,
        expected: u64,
        events: Vec<NewEvent>,
        metadata: &EventMetadata,
    ) -> Result<Self> {
        let tenant_id = require_tenant(tenant_id)?;
        if aggregate_type.is_empty() {
            return Err(EventStoreError::InvalidArgument("aggregate type is empty"));
        }
        if aggregate_id.is_empty() {
            return Err(EventStoreError::InvalidArgument("aggregate id is empty"));
        }
        let expected_db = to_db_version(expected)?;
        let count = u64::try_from(events.len()).unwrap_or(u64::MAX);
        if expected.checked_add(count).is_none_or(|last| last > i64::MAX as u64) {
            return Err(EventStoreError::InvalidArgument("version exceeds i64::MAX"));
        }
        Ok(Self {
            tenant_id,
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            expected,
            expected_db,
            events,
            metadata: metadata.clone(),
        })
    }

    /// The idempotency key, if the command has one.
    pub(crate) fn request_id(&self) -> Option<&str> {
        self.metadata.request_id.as_deref().filter(|id| !id.is_empty())
    }
}

/// Appends one command on its own (its own statement), telling conflicts from duplicates.
pub(crate) async fn append_one(pool: &PgPool, request: &Append) -> Result<AppendOutcome> {
    match try_append(pool, request).await? {
        Attempt::Appended(events) => Ok(appended(events)),
        other => {
            let mut conn = pool.acquire().await?;
            resolve(&mut conn, request, other).await
        }
    }
}

pub(crate) fn appended(events: Vec<AppendedEvent>) -> AppendOutcome {
    let version = events.last().map_or(0, |e| e.sequence);
    AppendOutcome { version, events, duplicate: false }
}

async fn try_append<'e>(executor: impl PgExecutor<'e>, request: &Append) -> Result<Attempt> {
    let len = request.events.len();
    let mut types = Vec::with_capacity(len);
    let mut versions = Vec::with_capacity(len);
    let mut payloads = Vec::with_capacity(len);
    let mut ids = Vec::with_capacity(len);
    for event in &request.events {
        types.push(event.event_type.as_str());
        versions.push(event.event_version.as_str());
        payloads.push(&event.payload);
        ids.push(event.event_id);
    }
    let sql = if request.request_id().is_some() { &*APPEND_IDEMPOTENT_SQL } else { &*APPEND_SQL };
    let mut query = sqlx::query(sql)
        .bind(request.tenant_id)
        .bind(&request.aggregate_type)
        .bind(&request.aggregate_id)
        .bind(request.expected_db)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&ids)
        // Serialized straight into the statement's buffer (no intermediate `Value`).
        .bind(sqlx::types::Json(&request.metadata));
    if let Some(request_id) = request.request_id() {
        query = query.bind(request_id);
    }
    let rows = match query.fetch_all(executor).await {
        Ok(rows) => rows,
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23505") => {
            return Ok(Attempt::Unique { constraint: error.constraint().map(str::to_owned) });
        }
        Err(error) => return Err(error.into()),
    };
    if rows.is_empty() {
        return Ok(Attempt::NotInserted);
    }
    let mut events = Vec::with_capacity(len);
    for row in &rows {
        let sequence: i64 = row.try_get(0)?;
        let position: i64 = row.try_get(1)?;
        let sequence = from_db_version(sequence);
        // Sequences are expected + 1..=len, in the order of the input events.
        let index = usize::try_from(sequence.saturating_sub(request.expected + 1)).unwrap_or(usize::MAX);
        let Some(event_id) = ids.get(index) else {
            return Err(EventStoreError::InvalidArgument("append returned an unexpected sequence"));
        };
        events.push(AppendedEvent { event_id: *event_id, sequence, position });
    }
    if events.len() != len {
        // The statement inserts all rows or none; anything else is a driver-level surprise.
        return Err(EventStoreError::InvalidArgument("append returned an unexpected row count"));
    }
    events.sort_by_key(|e| e.sequence);
    Ok(Attempt::Appended(events))
}

/// Tells a duplicate (success) from a conflict after the append statement did not insert.
pub(crate) async fn resolve(conn: &mut PgConnection, request: &Append, attempt: Attempt) -> Result<AppendOutcome> {
    if let Some(request_id) = request.request_id()
        && let Some((aggregate_type, aggregate_id, outcome)) = find_request(conn, request.tenant_id, request_id).await?
    {
        if aggregate_type != request.aggregate_type || aggregate_id != request.aggregate_id {
            return Err(EventStoreError::InvalidArgument("request id was used for another aggregate"));
        }
        return Ok(outcome);
    }
    if let Attempt::Appended(events) = attempt {
        return Ok(appended(events));
    }
    if let Attempt::Unique { constraint } = &attempt
        && constraint.as_deref() != Some("events_event_id_key")
        && constraint.as_deref() != Some("events_stream_sequence_key")
    {
        // Another unique constraint (the request id raced with its own retry and lost, but the
        // winner's row is not visible yet): report a conflict so the caller retries and finds it.
        tracing::debug!(constraint = ?constraint, "Append hit an unexpected unique constraint.");
    }
    if let Some(outcome) = find_event_ids(conn, request).await? {
        return Ok(outcome);
    }
    let head: Option<(i64, Uuid)> = sqlx::query_as(
        "SELECT sequence, tenant_id FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 \
         ORDER BY sequence DESC LIMIT 1",
    )
    .bind(&request.aggregate_type)
    .bind(&request.aggregate_id)
    .fetch_optional(&mut *conn)
    .await?;
    match head {
        Some((_, owner)) if owner != request.tenant_id => Err(EventStoreError::TenantMismatch),
        head => Err(EventStoreError::Conflict {
            expected: request.expected,
            actual: head.map_or(0, |(version, _)| from_db_version(version)),
        }),
    }
}

async fn find_request(
    conn: &mut PgConnection,
    tenant_id: Uuid,
    request_id: &str,
) -> Result<Option<(String, String, AppendOutcome)>> {
    let rows = sqlx::query(
        "SELECT k.aggregate_type, k.aggregate_id, e.event_id, e.sequence, e.position \
         FROM idempotency_keys k JOIN events e ON e.aggregate_type = k.aggregate_type \
          AND e.aggregate_id = k.aggregate_id AND e.sequence BETWEEN k.first_sequence AND k.last_sequence \
         WHERE k.tenant_id = $1 AND k.request_id = $2 ORDER BY e.sequence",
    )
    .bind(tenant_id)
    .bind(request_id)
    .fetch_all(&mut *conn)
    .await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let aggregate_type: String = first.try_get(0)?;
    let aggregate_id: String = first.try_get(1)?;
    let events = rows.iter().map(appended_from_row).collect::<Result<Vec<_>>>()?;
    let version = events.last().map_or(0, |e| e.sequence);
    Ok(Some((aggregate_type, aggregate_id, AppendOutcome { version, events, duplicate: true })))
}

async fn find_event_ids(conn: &mut PgConnection, request: &Append) -> Result<Option<AppendOutcome>> {
    let ids: Vec<Uuid> = request.events.iter().map(|e| e.event_id).collect();
    let rows = sqlx::query(
        "SELECT aggregate_type, aggregate_id, event_id, sequence, position FROM events \
         WHERE event_id = ANY($1) ORDER BY sequence",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let same_stream = rows.iter().all(|row| {
        row.try_get::<&str, _>(0).is_ok_and(|t| t == request.aggregate_type)
            && row.try_get::<&str, _>(1).is_ok_and(|i| i == request.aggregate_id)
    });
    if rows.len() != ids.len() || !same_stream {
        return Ok(None);
    }
    let events = rows.iter().map(appended_from_row).collect::<Result<Vec<_>>>()?;
    let version = events.last().map_or(0, |e| e.sequence);
    Ok(Some(AppendOutcome { version, events, duplicate: true }))
}

fn appended_from_row(row: &PgRow) -> Result<AppendedEvent> {
    Ok(AppendedEvent {
        event_id: row.try_get(2)?,
        sequence: from_db_version(row.try_get(3)?),
        position: row.try_get(4)?,
    })
}

/// Reads a row selected with [`EVENT_COLUMNS`].
pub(crate) fn event_from_row(row: &PgRow) -> Result<RecordedEvent> {
    Ok(RecordedEvent {
        position: row.try_get(0)?,
        transaction_id: row.try_get(1)?,
        tenant_id: row.try_get(2)?,
        aggregate_type: row.try_get(3)?,
        aggregate_id: row.try_get(4)?,
        sequence: from_db_version(row.try_get(5)?),
        event_type: row.try_get(6)?,
        event_version: row.try_get(7)?,
        payload: row.try_get(8)?,
        metadata: row.try_get(9)?,
        event_id: row.try_get(10)?,
        recorded_at: row.try_get(11)?,
    })
}
