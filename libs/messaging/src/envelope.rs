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
    /// Schema version of a protobuf body (`v1`).
    pub const SCHEMA_VERSION: &str = "x-sentra-schema-version";
    /// The routing key it was first published with (protobuf bodies).
    pub const ROUTING_KEY: &str = "x-sentra-routing-key";
    /// The aggregate type (protobuf bodies).
    pub const AGGREGATE_TYPE: &str = "x-sentra-aggregate-type";
    /// The aggregate id (protobuf bodies).
    pub const AGGREGATE_ID: &str = "x-sentra-aggregate-id";
    /// The per-aggregate sequence (protobuf bodies; a long integer).
    pub const SEQUENCE: &str = "x-sentra-sequence";
    /// The stored domain event's version (protobuf bodies).
    pub const EVENT_VERSION: &str = "x-sentra-event-version";
    /// When the event was recorded, RFC 3339 with sub-second precision (protobuf bodies).
    pub const RECORDED_AT: &str = "x-sentra-recorded-at";
    /// The event metadata as a JSON object (protobuf bodies).
    pub const METADATA: &str = "x-sentra-metadata";
}

/// What a message carries: a protobuf integration event, or JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// An encoded protobuf integration event (`sentra.<context>.events.v1.*`): the message body
    /// itself, named by `type_name` in the AMQP `type` property.
    Proto {
        /// The message's full type name (`sentra.sales.events.v1.OrderConfirmed`).
        type_name: String,
        /// The schema version of the message (the package's major version, `v1`).
        schema_version: String,
        /// The encoded message.
        bytes: Vec<u8>,
    },
    /// A JSON payload inside a JSON envelope body: outbox tables, and messages published before
    /// the switch to protobuf.
    Json(Value),
}

impl Payload {
    /// The payload of an encoded protobuf message `M`, schema version taken from its package
    /// (`sentra.sales.events.v1.OrderConfirmed` -> `v1`).
    pub fn proto<M: prost::Name>(message: &M) -> Self {
        let type_name = M::full_name();
        let schema_version = type_name.rsplit('.').nth(1).unwrap_or_default().to_owned();
        Self::Proto { type_name, schema_version, bytes: message.encode_to_vec() }
    }

    /// The payload as a `google.protobuf.Any` (`type.googleapis.com/<full name>`); `None` for
    /// JSON payloads, which have no protobuf type.
    pub fn into_any(self) -> Option<prost_types::Any> {
        match self {
            Payload::Proto { type_name, bytes, .. } => {
                Some(prost_types::Any { type_url: format!("type.googleapis.com/{type_name}"), value: bytes })
            }
            Payload::Json(_) => None,
        }
    }
}

/// One message on the bus: an integration event and what consumers need around it.
///
/// A protobuf payload travels as the message body, with every other field in AMQP properties and
/// headers (see [`Envelope::properties_traced`]), so any AMQP client can decode the event with
/// the published `.proto` files alone. A JSON payload travels in a JSON body that holds every
/// field:
///
/// ```json
/// {"event_id": "0190…", "tenant_id": "…", "routing_key": "tenancy.brand.created",
///  "aggregate_type": "brand", "aggregate_id": "…", "sequence": 3, "event_type": "created",
///  "event_version": "1", "recorded_at": "2026-01-01T12:00:00Z", "payload": {…},
///  "metadata": {"correlation_id": "…", "traceparent": "…", "actor": "…"}}
/// ```
///
/// `sequence` increases per aggregate, so a consumer can ignore stale events: for event-store
/// events it is the stream sequence (1-based, gap-free); for outbox-table rows it is the row's
/// `position` (increasing, with gaps).
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// Unique event id; also the AMQP `message_id` and the inbox key.
    pub event_id: Uuid,
    /// Owning tenant.
    pub tenant_id: Uuid,
    /// The routing key it was published with (`sales.order.confirmed`). Kept with the message
    /// because retries and replays travel through queues under other routing keys.
    pub routing_key: String,
    /// Aggregate type (`order`).
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Per-aggregate increasing number (see the type docs).
    pub sequence: u64,
    /// Event type (`confirmed`).
    pub event_type: String,
    /// Schema version of the stored domain event the message was made from.
    pub event_version: String,
    /// When the event was recorded.
    pub recorded_at: DateTime<Utc>,
    /// The event body.
    pub payload: Payload,
    /// Request metadata (correlation id, causation id, actor, request id, traceparent…).
    pub metadata: Value,
}

/// The JSON body of a message with a JSON payload.
#[derive(Serialize, Deserialize)]
struct JsonBody {
    event_id: Uuid,
    tenant_id: Uuid,
    routing_key: String,
    aggregate_type: String,
    aggregate_id: String,
    sequence: u64,
    event_type: String,
    event_version: String,
    recorded_at: DateTime<Utc>,
    payload: Value,
    #[serde(default)]
    metadata: Value,
}

/// `<context>.<aggregate>.<event>`, the routing key of an event (`sales.order.confirmed`).
pub fn routing_key(context: &str, aggregate_type: &str, event_type: &str) -> String {
    format!("{context}.{aggregate_type}.{event_type}")
}

/// Content type of a message whose body is an encoded protobuf integration event.
pub const PROTOBUF: &str = "application/protobuf";
/// Content type of a message whose body is a JSON envelope.
pub const JSON: &str = "application/json";

impl Envelope {
    /// The envelope of an event-store event published by the `context` service, with `payload`
    /// (the event's public form).
    pub fn from_recorded(context: &str, event: &RecordedEvent, payload: Payload) -> Self {
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
            payload,
            metadata: event.metadata.clone(),
        }
    }

    /// Decodes a protobuf payload of type `M`; refuses JSON payloads and other message types.
    pub fn decode<M: prost::Message + prost::Name + Default>(&self) -> Result<M> {
        match &self.payload {
            Payload::Proto { type_name, bytes, .. } if *type_name == M::full_name() => Ok(M::decode(bytes.as_slice())?),
            Payload::Proto { type_name, .. } => {
                Err(BusError::WrongType { expected: M::full_name(), found: type_name.clone() })
            }
            Payload::Json(_) => Err(BusError::WrongType { expected: M::full_name(), found: "JSON".into() }),
        }
    }

    /// Deserializes a JSON payload; refuses protobuf payloads.
    pub fn decode_payload<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        match &self.payload {
            Payload::Json(value) => Ok(T::deserialize(value)?),
            Payload::Proto { type_name, .. } => {
                Err(BusError::WrongType { expected: "JSON".into(), found: type_name.clone() })
            }
        }
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

    /// The message body: the encoded protobuf event, or the JSON envelope.
    pub fn body(&self) -> Result<Vec<u8>> {
        match &self.payload {
            Payload::Proto { bytes, .. } => Ok(bytes.clone()),
            Payload::Json(payload) => Ok(serde_json::to_vec(&JsonBody {
                event_id: self.event_id,
                tenant_id: self.tenant_id,
                routing_key: self.routing_key.clone(),
                aggregate_type: self.aggregate_type.clone(),
                aggregate_id: self.aggregate_id.clone(),
                sequence: self.sequence,
                event_type: self.event_type.clone(),
                event_version: self.event_version.clone(),
                recorded_at: self.recorded_at,
                payload: payload.clone(),
                metadata: self.metadata.clone(),
            })?),
        }
    }

    /// Parses a JSON envelope body.
    fn from_json(body: &[u8]) -> Result<Self> {
        let body: JsonBody = serde_json::from_slice(body)?;
        Ok(Self {
            event_id: body.event_id,
            tenant_id: body.tenant_id,
            routing_key: body.routing_key,
            aggregate_type: body.aggregate_type,
            aggregate_id: body.aggregate_id,
            sequence: body.sequence,
            event_type: body.event_type,
            event_version: body.event_version,
            recorded_at: body.recorded_at,
            payload: Payload::Json(body.payload),
            metadata: body.metadata,
        })
    }

    /// The envelope of a received message: a protobuf body with its fields in the properties, or
    /// a JSON envelope (any other content type, so messages from before the switch still decode).
    pub fn from_message(properties: &BasicProperties, body: &[u8]) -> Result<Self> {
        let content_type = properties.content_type().as_ref().map(ShortString::as_str);
        if content_type != Some(PROTOBUF) {
            return Self::from_json(body);
        }
        let header = |name: &'static str| header_str(properties, name).ok_or(BusError::MissingHeader(name));
        let uuid = |name: &'static str, value: &str| {
            Uuid::parse_str(value).map_err(|_| BusError::InvalidHeader { name, reason: "not a UUID" })
        };
        let message_id = properties.message_id().as_ref().ok_or(BusError::MissingHeader("message_id"))?;
        let type_name = properties.kind().as_ref().ok_or(BusError::MissingHeader("type"))?;
        let recorded_at = DateTime::parse_from_rfc3339(&header(headers::RECORDED_AT)?)
            .map_err(|_| BusError::InvalidHeader { name: headers::RECORDED_AT, reason: "not an RFC 3339 time" })?
            .with_timezone(&Utc);
        let metadata = match header_str(properties, headers::METADATA) {
            Some(json) => serde_json::from_str(&json)
                .map_err(|_| BusError::InvalidHeader { name: headers::METADATA, reason: "not JSON" })?,
            None => Value::Null,
        };
        Ok(Self {
            event_id: uuid("message_id", message_id.as_str())?,
            tenant_id: uuid(headers::TENANT_ID, &header(headers::TENANT_ID)?)?,
            routing_key: header(headers::ROUTING_KEY)?,
            aggregate_type: header(headers::AGGREGATE_TYPE)?,
            aggregate_id: header(headers::AGGREGATE_ID)?,
            sequence: header_u64(properties, headers::SEQUENCE).ok_or(BusError::MissingHeader(headers::SEQUENCE))?,
            event_type: header(headers::EVENT_TYPE)?,
            event_version: header(headers::EVENT_VERSION)?,
            recorded_at,
            payload: Payload::Proto {
                type_name: type_name.to_string(),
                schema_version: header(headers::SCHEMA_VERSION)?,
                bytes: body.to_vec(),
            },
            metadata,
        })
    }

    /// The AMQP properties the relay publishes with (see [`Envelope::properties_traced`]).
    pub fn properties(&self) -> BasicProperties {
        self.properties_traced(self.traceparent())
    }

    /// The AMQP properties: persistent, `message_id` = event id, `timestamp` = recorded at, and
    /// the tenant/correlation/trace/event-type headers, with `traceparent` (the publishing span)
    /// as the trace header. A protobuf payload adds `content_type` `application/protobuf`,
    /// `type` = the message's full type name, and the envelope's other fields as `x-sentra-*`
    /// headers; a JSON payload has `content_type` `application/json` and `type` = event type.
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
        let (content_type, kind) = match &self.payload {
            Payload::Proto { type_name, schema_version, .. } => {
                table.insert(headers::SCHEMA_VERSION.into(), long_string(schema_version.as_str()));
                table.insert(headers::ROUTING_KEY.into(), long_string(self.routing_key.as_str()));
                table.insert(headers::AGGREGATE_TYPE.into(), long_string(self.aggregate_type.as_str()));
                table.insert(headers::AGGREGATE_ID.into(), long_string(self.aggregate_id.as_str()));
                table.insert(
                    headers::SEQUENCE.into(),
                    AMQPValue::LongLongInt(i64::try_from(self.sequence).unwrap_or(i64::MAX)),
                );
                table.insert(headers::EVENT_VERSION.into(), long_string(self.event_version.as_str()));
                table.insert(
                    headers::RECORDED_AT.into(),
                    long_string(self.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                );
                if !self.metadata.is_null() {
                    table.insert(headers::METADATA.into(), long_string(self.metadata.to_string()));
                }
                (PROTOBUF, type_name.as_str())
            }
            Payload::Json(_) => (JSON, self.event_type.as_str()),
        };
        let mut properties = BasicProperties::default()
            .with_content_type(content_type.into())
            .with_delivery_mode(PERSISTENT)
            .with_message_id(self.event_id.to_string().into())
            .with_headers(table);
        if let Ok(timestamp) = u64::try_from(self.recorded_at.timestamp()) {
            properties = properties.with_timestamp(timestamp);
        }
        // AMQP short strings hold 255 bytes; a longer type simply stays out of the property.
        if let Ok(kind) = ShortString::try_new(kind) {
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
    u32::try_from(header_i64(properties, name)?).ok()
}

/// A header as an unsigned 64-bit integer.
pub fn header_u64(properties: &BasicProperties, name: &str) -> Option<u64> {
    u64::try_from(header_i64(properties, name)?).ok()
}

fn header_i64(properties: &BasicProperties, name: &str) -> Option<i64> {
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
    Some(wide)
}
