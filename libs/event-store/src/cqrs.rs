//! The cqrs-es persistence adapter.

use std::sync::LazyLock;

use cqrs_es::Aggregate;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot};
use serde_json::{Map, Value};
use sqlx::Row;

use crate::error::EventStoreError;
use crate::model::{EventMetadata, NewEvent, RecordedEvent, TENANT_METADATA_KEY, from_db_version, parse_tenant};
use crate::store::{EVENT_COLUMNS, EventStore, Until, event_from_row};

/// [`PersistedEventRepository`] over the event store, for `PersistedEventStore` / `CqrsFramework`.
///
/// cqrs-es has no notion of tenants, so the tenant travels in the command metadata under
/// [`TENANT_METADATA_KEY`] (`cqrs.execute_with_metadata(id, cmd, metadata)`); a command without it
/// fails with [`EventStoreError::MissingTenant`] (inside `PersistenceError::UnknownError`). The
/// other metadata keys (`correlation_id`, `causation_id`, `actor`, `request_id`, `traceparent`)
/// land in the events' metadata, and `request_id` makes the append idempotent (a retried command
/// is acknowledged without appending; note that cqrs-es still dispatches its in-process queries
/// with the re-decided events, so drive read models from the [`crate::Feed`] instead).
///
/// Upcasters and the snapshot interval come from the [`EventStore`]. Snapshots are rebuilt by the
/// store after the events commit (the `snapshot_update` cqrs-es 0.5 passes is double-applied and
/// is ignored); use `PersistedEventStore::new_snapshot_store(repo, n)` so loads start from them,
/// or `new_event_store(repo)` to always replay. Do not also register upcasters on
/// `PersistedEventStore` (they would run twice; harmless for `SemanticVersionEventUpcaster`).
#[derive(Clone, Debug)]
pub struct CqrsRepository {
    store: EventStore,
}

impl EventStore {
    /// The cqrs-es adapter for this store.
    pub fn cqrs_repository(&self) -> CqrsRepository {
        CqrsRepository { store: self.clone() }
    }
}

fn persistence(error: EventStoreError) -> PersistenceError {
    match error {
        EventStoreError::Conflict { .. } => PersistenceError::OptimisticLockError,
        error @ EventStoreError::Database(_) => PersistenceError::ConnectionError(Box::new(error)),
        error @ EventStoreError::Serialization(_) => PersistenceError::DeserializationError(Box::new(error)),
        error => PersistenceError::UnknownError(Box::new(error)),
    }
}

/// cqrs-es reads metadata as `HashMap<String, String>`: add the tenant, stringify anything else.
fn serialized(event: RecordedEvent) -> SerializedEvent {
    let mut metadata = Map::new();
    if let Value::Object(map) = event.metadata {
        for (key, value) in map {
            let value = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            metadata.insert(key, Value::String(value));
        }
    }
    metadata.insert(TENANT_METADATA_KEY.to_owned(), Value::String(event.tenant_id.to_string()));
    SerializedEvent {
        aggregate_id: event.aggregate_id,
        sequence: usize::try_from(event.sequence).unwrap_or(usize::MAX),
        aggregate_type: event.aggregate_type,
        event_type: event.event_type,
        event_version: event.event_version,
        payload: event.payload,
        metadata: Value::Object(metadata),
    }
}

async fn replay(events: Vec<SerializedEvent>) -> ReplayStream {
    // The channel holds every event, so the pushes below never wait for a consumer.
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    for event in events {
        if feed.push(Ok(event)).await.is_err() {
            break;
        }
    }
    stream
}

static ALL_EVENTS_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_type = $1 ORDER BY events.transaction_id, events.position"
    )
});

impl CqrsRepository {
    async fn events_after<A: Aggregate>(
        &self,
        aggregate_id: &str,
        after: u64,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = self.store.stream_after(A::TYPE, aggregate_id, after, Until::Head).await.map_err(persistence)?;
        Ok(events.into_iter().map(serialized).collect())
    }
}

impl PersistedEventRepository for CqrsRepository {
    async fn get_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.events_after::<A>(aggregate_id, 0).await
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.events_after::<A>(aggregate_id, u64::try_from(last_sequence).unwrap_or(u64::MAX)).await
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let row = sqlx::query("SELECT sequence, state FROM snapshots WHERE aggregate_type = $1 AND aggregate_id = $2")
            .bind(A::TYPE)
            .bind(aggregate_id)
            .fetch_optional(self.store.pool())
            .await
            .map_err(|e| persistence(e.into()))?;
        let Some(row) = row else { return Ok(None) };
        let sequence = usize::try_from(from_db_version(row.try_get("sequence").map_err(|e| persistence(e.into()))?))
            .unwrap_or(usize::MAX);
        let state: Value = row.try_get("state").map_err(|e| persistence(e.into()))?;
        Ok(Some(SerializedSnapshot {
            aggregate_id: aggregate_id.to_owned(),
            aggregate: state,
            current_sequence: sequence,
            current_snapshot: sequence,
        }))
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let Some(first) = events.first() else { return Ok(()) };
        let strings: Vec<(String, String)> = match &first.metadata {
            Value::Object(map) => {
                map.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect()
            }
            _ => Vec::new(),
        };
        let tenant =
            strings.iter().find(|(k, _)| k == TENANT_METADATA_KEY).map(|(_, v)| v.as_str()).unwrap_or_default();
        let tenant_id = parse_tenant(tenant).map_err(persistence)?;
        let metadata = EventMetadata::from_map(strings.iter().map(|(k, v)| (k, v)));
        let expected = u64::try_from(first.sequence.saturating_sub(1)).unwrap_or(u64::MAX);
        let new_events = events
            .iter()
            .map(|e| NewEvent::new(e.event_type.clone(), e.event_version.clone(), e.payload.clone()))
            .collect();
        let outcome = self
            .store
            .append(tenant_id, A::TYPE, &first.aggregate_id, expected, new_events, &metadata)
            .await
            .map_err(persistence)?;
        // cqrs-es 0.5 computes `snapshot_update` from an aggregate that `EventSink::write` has
        // already applied the events to, then applies them again; that state is not trusted.
        // The snapshot is rebuilt from the store instead (snapshot + tail), after the commit.
        drop(snapshot_update);
        let count = u64::try_from(events.len()).unwrap_or(0);
        if !outcome.duplicate && self.store.snapshot_due(A::TYPE, expected, expected + count) {
            let aggregate_id = first.aggregate_id.as_str();
            let written = async {
                let loaded = self.store.load::<A>(tenant_id, aggregate_id).await?;
                self.store.write_snapshot(A::TYPE, aggregate_id, tenant_id, loaded.version, &loaded.state).await
            };
            if let Err(error) = written.await {
                tracing::warn!(aggregate_id = %aggregate_id, %error, "Snapshot not written.");
            }
        }
        Ok(())
    }

    async fn stream_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<ReplayStream, PersistenceError> {
        Ok(replay(self.events_after::<A>(aggregate_id, 0).await?).await)
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let rows = sqlx::query(&ALL_EVENTS_SQL)
            .bind(A::TYPE)
            .fetch_all(self.store.pool())
            .await
            .map_err(|e| persistence(e.into()))?;
        let events = rows
            .iter()
            .map(|row| event_from_row(row).map(|e| serialized(self.store.upcast(e))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(persistence)?;
        Ok(replay(events).await)
    }
}
