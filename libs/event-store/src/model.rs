//! The values that go in and come out of the store.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{EventStoreError, Result};

/// Rejects a nil tenant id: every event must belong to a tenant.
pub fn require_tenant(tenant_id: Uuid) -> Result<Uuid> {
    if tenant_id.is_nil() { Err(EventStoreError::MissingTenant) } else { Ok(tenant_id) }
}

/// Parses a tenant id as it arrives in a request header; empty, nil or malformed is `MissingTenant`.
pub fn parse_tenant(raw: &str) -> Result<Uuid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(EventStoreError::MissingTenant);
    }
    Uuid::parse_str(raw).map_err(|_| EventStoreError::MissingTenant).and_then(require_tenant)
}

pub(crate) fn to_db_version(version: u64) -> Result<i64> {
    i64::try_from(version).map_err(|_| EventStoreError::InvalidArgument("version exceeds i64::MAX"))
}

pub(crate) fn from_db_version(version: i64) -> u64 {
    // Sequences are CHECKed positive in the schema; a negative value can only mean "none".
    u64::try_from(version).unwrap_or(0)
}

/// An event a command wants to append.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// Unique id; retrying with the same id appends nothing twice.
    pub event_id: Uuid,
    /// The event's type name (`OrderPlaced`).
    pub event_type: String,
    /// The schema version of `payload` (`"2"`, `"1.1"`): upcasters key on it.
    pub event_version: String,
    /// The event body.
    pub payload: Value,
}

impl NewEvent {
    /// An event with a fresh time-ordered (v7) id.
    pub fn new(event_type: impl Into<String>, event_version: impl Into<String>, payload: Value) -> Self {
        Self { event_id: Uuid::now_v7(), event_type: event_type.into(), event_version: event_version.into(), payload }
    }

    /// Serializes a cqrs-es domain event, taking its type and version from the event.
    pub fn from_domain<E: cqrs_es::DomainEvent>(event: &E) -> Result<Self> {
        Ok(Self::new(event.event_type(), event.event_version(), serde_json::to_value(event)?))
    }

    /// Replaces the generated id, e.g. with one derived from the command so retries reuse it.
    pub fn with_event_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }
}

/// Per-command metadata, stored as a flat JSON object of strings in `events.metadata` (the shape
/// cqrs-es expects for `EventEnvelope::metadata`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Id shared by everything one user action caused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Id of the command or event that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Who acted (user or service principal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The request id; when set it is also the idempotency key of the append.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// W3C trace context of the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// Anything else a service wants to record.
    #[serde(flatten)]
    pub extra: BTreeMap<String, String>,
}

/// The metadata key carrying the tenant id through cqrs-es, whose repository API has no tenant.
pub const TENANT_METADATA_KEY: &str = "tenant_id";

impl EventMetadata {
    /// Builds metadata from a cqrs-es metadata map; known keys go to their fields, the tenant key
    /// is dropped (the tenant is a column), the rest lands in `extra`.
    pub fn from_map<'a>(map: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        let mut metadata = Self::default();
        for (key, value) in map {
            let value = value.clone();
            match key.as_str() {
                "correlation_id" => metadata.correlation_id = Some(value),
                "causation_id" => metadata.causation_id = Some(value),
                "actor" => metadata.actor = Some(value),
                "request_id" => metadata.request_id = Some(value),
                "traceparent" => metadata.traceparent = Some(value),
                TENANT_METADATA_KEY => {}
                _ => {
                    metadata.extra.insert(key.clone(), value);
                }
            }
        }
        metadata
    }
}

/// A point in the global feed: the last (transaction id, position) a reader has handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// The writing transaction's id (`xid8`, as a number).
    pub transaction_id: i64,
    /// The event's global position.
    pub position: i64,
}

impl Cursor {
    /// Before the first event.
    pub const START: Self = Self { transaction_id: 0, position: 0 };
}

/// The resume token readers outside the store are given (`ReadEvents`, exports):
/// `<transaction id>-<position>`.
impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.transaction_id, self.position)
    }
}

/// Parses [`Cursor`]'s `Display` form; anything else is refused.
impl std::str::FromStr for Cursor {
    type Err = EventStoreError;

    fn from_str(token: &str) -> Result<Self> {
        let invalid = || EventStoreError::InvalidArgument("not a feed position");
        let (transaction_id, position) = token.split_once('-').ok_or_else(invalid)?;
        let cursor = Cursor {
            transaction_id: transaction_id.parse().map_err(|_| invalid())?,
            position: position.parse().map_err(|_| invalid())?,
        };
        if cursor.transaction_id < 0 || cursor.position < 0 {
            return Err(invalid());
        }
        Ok(cursor)
    }
}

/// An event as stored, with its payload already upcast to the current shape.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    /// Global position (allocation order).
    pub position: i64,
    /// Id of the transaction that wrote it.
    pub transaction_id: i64,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// Aggregate type (`A::TYPE`).
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// 1-based sequence within the aggregate.
    pub sequence: u64,
    /// Event type name.
    pub event_type: String,
    /// Schema version of `payload` (after upcasting).
    pub event_version: String,
    /// The event body.
    pub payload: Value,
    /// Per-command metadata (see [`EventMetadata`]).
    pub metadata: Value,
    /// Unique event id.
    pub event_id: Uuid,
    /// When the writing transaction started.
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    /// The feed cursor just after this event.
    pub fn cursor(&self) -> Cursor {
        Cursor { transaction_id: self.transaction_id, position: self.position }
    }

    /// Deserializes the payload into a domain event.
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E> {
        Ok(serde_json::from_value(self.payload.clone())?)
    }

    /// The metadata as the typed struct (unknown keys in `extra`).
    pub fn typed_metadata(&self) -> Result<EventMetadata> {
        Ok(serde_json::from_value(self.metadata.clone())?)
    }
}

/// One appended event's place in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendedEvent {
    /// Its id.
    pub event_id: Uuid,
    /// Its sequence in the aggregate.
    pub sequence: u64,
    /// Its global position.
    pub position: i64,
}

/// What an append did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The aggregate's version after the command (the last appended sequence).
    pub version: u64,
    /// The command's events, in order.
    pub events: Vec<AppendedEvent>,
    /// True when this was a retry: nothing was appended and `events` are the first attempt's.
    pub duplicate: bool,
}

/// An aggregate rebuilt from its events.
#[derive(Debug)]
pub struct Loaded<A> {
    /// Aggregate id.
    pub aggregate_id: String,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// The state.
    pub state: A,
    /// The sequence of the last applied event; 0 means the aggregate does not exist yet.
    pub version: u64,
    /// The snapshot the load started from, if any.
    pub snapshot_version: Option<u64>,
}

impl<A> Loaded<A> {
    /// True when no event has been applied (the aggregate does not exist).
    pub fn is_new(&self) -> bool {
        self.version == 0
    }
}

/// How far a subscriber is behind the head of the feed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lag {
    /// Committed events after the subscriber's checkpoint.
    pub events: u64,
    /// Age of the oldest of them (0 when caught up).
    pub seconds: f64,
    /// The checkpoint's position in the feed (0 before the first batch).
    pub position: u64,
}
