//! The message body ([`Envelope`]) and the AMQP properties and headers around it.

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use sentra_event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::{BusError, Result};

/// Header names the bus sets on messages.
pub mod headers {
    /// The event's tenant (a UUID string).
    pub const TENANT_ID: &str = "tenant_id";
    /// The correlation id from the event metadata, when there is one.
    pub const CORRELATION_ID: &str = "correlation_id";
    /// The W3C trace context from the event metadata, when there is one.
    pub const TRACEPARENT: &str = "traceparent";
    /// The event type (`confirmed`).
    pub const EVENT_TYPE: &str = "event_type";
    /// Failed handling attempts so far (a long integer; absent means 0).
    pub const ATTEMPTS: &str = "x-sentra-attempts";
    /// The last handler error (on retried and dead-lettered messages).
    pub const ERROR: &str = "x-sentra-error";
    /// When the message was dead-lettered (RFC 3339).
    pub const DEAD_LETTERED_AT: &str = "x-sentra-dead-lettered-at";
}

/// The JSON body of every message on the bus.
///
/// ```json
/// {"event_id": "0190…", "tenant_id": "…", "routing_key": "sales.order.confirmed",
///  "aggregate_type": "order", "aggregate_id": "…", "sequence": 3, "event_type": "confirmed",
///  "event_version": "1", "recorded_at": "2026-01-01T12:00:00Z", "payload": {…},
///  "metadata": {"correlation_id": "…", "traceparent": "…", "actor": "…"}}
/// ```
///
/// `sequence` increases per aggregate, so a consumer can ignore stale events: for event-store
/// events it is the stream sequence (1-based, gap-free); for outbox-table rows it is the row's
/// `position` (increasing, with gaps).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique event id; also the AMQP `message_id` and the inbox key.
    pub event_id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// The routing key it was published with (`sales.order.confirmed`). Kept in the body because
    /// retries and replays travel through queues under other routing keys.
    pub routing_key: String,
    /// Aggregate type (`order`).
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Per-aggregate increasing number (see the type docs).
    pub sequence: u64,
    /// Event type (`confirmed`).
    pub event_type: String,
    /// Schema version of `payload`.
    pub event_version: String,
    /// When the event was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The event body.
    pub payload: Value,
    /// Request metadata (correlation id, causation id, actor, request id, traceparent…).
    #[serde(default)]
    pub metadata: Value,
}

/// `<context>.<aggregate>.<event>`, the routing key of an event (`sales.order.confirmed`).
pub fn routing_key(context: &str, aggregate_type: &str, event_type: &str) -> String {
    format!("{context}.{aggregate_type}.{event_type}")
}

impl Envelope {
    /// The envelope of an event-store event published by the `context` service.
    pub fn from_recorded(context: &str, event: &RecordedEvent) -> Self {
        Self {
            event_id: event.event_id,
            tenant_id: event.tenant_id,
            routing_key: routing_key(context, &event.aggregate_type, &event.event_type),
            aggregate_type: event.aggregate_type.clone(),
            aggregate_id: event.aggregate_id.clone(),
            sequence: event.sequence,
            event_type: event.event_type.clone(),
            event_version: event.event_version.clone(),
            recorded_at: event.recorded_at,
            payload: event.payload.clone(),
            metadata: event.metadata.clone(),
        }
    }

    /// Deserializes the payload.
    pub fn decode_payload<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        Ok(serde_json::from_value(self.payload.clone())?)
    }

    /// A string entry of the metadata.
    pub fn metadata_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }

    /// The correlation id from the metadata.
    pub fn correlation_id(&self) -> Option<&str> {
        self.metadata_str("correlation_id")
    }

    /// The W3C trace context from the metadata.
    pub fn traceparent(&self) -> Option<&str> {
        self.metadata_str("traceparent")
    }

    /// The JSON body.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Parses a JSON body.
    pub fn from_json(body: &[u8]) -> Result<Self> {
        Ok(serde_json::from_slice(body)?)
    }

    /// The AMQP properties the relay publishes with: persistent, JSON, `message_id` = event id,
    /// and the tenant/correlation/trace/event-type headers.
    pub fn properties(&self) -> BasicProperties {
        self.properties_traced(self.traceparent())
    }

    /// [`Envelope::properties`] with `traceparent` (the publishing span) as the trace header.
    pub fn properties_traced(&self, traceparent: Option<&str>) -> BasicProperties {
        let mut table = FieldTable::default();
        table.insert(headers::TENANT_ID.into(), long_string(self.tenant_id.to_string()));
        table.insert(headers::EVENT_TYPE.into(), long_string(self.event_type.as_str()));
        if let Some(correlation_id) = self.correlation_id() {
            table.insert(headers::CORRELATION_ID.into(), long_string(correlation_id));
        }
        if let Some(traceparent) = traceparent {
            table.insert(headers::TRACEPARENT.into(), long_string(traceparent));
        }
        let mut properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(PERSISTENT)
            .with_message_id(self.event_id.to_string().into())
            .with_headers(table);
        if let Ok(timestamp) = u64::try_from(self.recorded_at.timestamp()) {
            properties = properties.with_timestamp(timestamp);
        }
        // AMQP short strings hold 255 bytes; a longer type simply stays out of the property.
        if let Ok(kind) = ShortString::try_new(self.event_type.clone()) {
            properties = properties.with_type(kind);
        }
        properties
    }
}

/// AMQP delivery mode 2: the broker writes the message to disk (in a durable queue).
pub(crate) const PERSISTENT: u8 = 2;

pub(crate) fn long_string(value: impl Into<Vec<u8>>) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// A name as an AMQP short string (at most 255 bytes).
pub(crate) fn short(name: &str) -> Result<ShortString> {
    ShortString::try_new(name)
        .map_err(|_| BusError::InvalidName { name: name.to_owned(), reason: "longer than 255 bytes" })
}

/// A header as a string, whatever string-ish type the sender used.
pub fn header_str(properties: &BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(value) => Some(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        _ => None,
    }
}

/// A header as an integer, whatever integer type the sender used.
pub fn header_u32(properties: &BasicProperties, name: &str) -> Option<u32> {
    let value = properties.headers().as_ref()?.inner().get(name)?;
    let wide: i64 = match value {
        AMQPValue::ShortShortInt(v) => i64::from(*v),
        AMQPValue::ShortShortUInt(v) => i64::from(*v),
        AMQPValue::ShortInt(v) => i64::from(*v),
        AMQPValue::ShortUInt(v) => i64::from(*v),
        AMQPValue::LongInt(v) => i64::from(*v),
        AMQPValue::LongUInt(v) => i64::from(*v),
        AMQPValue::LongLongInt(v) => *v,
        AMQPValue::LongString(v) => String::from_utf8_lossy(v.as_bytes()).trim().parse().ok()?,
        _ => return None,
    };
    u32::try_from(wide).ok()
}
