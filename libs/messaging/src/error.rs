//! The crate's error type.

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker refused or dropped the connection, or an AMQP operation failed.
    #[error("broker operation failed: {0}")]
    Broker(#[from] lapin::Error),
    /// The connection or channel went away (detected by a status check rather than an error).
    #[error("broker connection lost: {0}")]
    Disconnected(&'static str),
    /// The broker did not answer within the configured time (connect, confirm).
    #[error("broker did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The broker negatively acknowledged a published message (it did not take responsibility).
    #[error("broker rejected (nacked) message {message_id}")]
    Nacked {
        /// The rejected message's id.
        message_id: String,
    },
    /// A PostgreSQL statement failed.
    #[error("database operation failed: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the event-store feed or saving its checkpoint failed.
    #[error("event store operation failed: {0}")]
    EventStore(#[from] sentra_event_store::EventStoreError),
    /// An envelope could not be encoded or decoded.
    #[error("message body is not a valid envelope: {0}")]
    Envelope(#[from] serde_json::Error),
    /// A protobuf body could not be decoded.
    #[error("message body is not a valid protobuf message: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The message carries another payload type than the one asked for.
    #[error("expected a {expected} payload, found {found}")]
    WrongType {
        /// The type asked for.
        expected: String,
        /// The message's type.
        found: String,
    },
    /// A header a protobuf message needs is missing.
    #[error("message lacks the {0} property")]
    MissingHeader(&'static str),
    /// A header has an unusable value.
    #[error("message property {name} is invalid: {reason}")]
    InvalidHeader {
        /// The header.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An event could not be mapped to its integration event.
    #[error("cannot map the event to its integration event: {0}")]
    Mapping(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A configured or derived name (exchange, queue, routing key, table) is not usable.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The offending name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Result with [`BusError`].
pub type Result<T, E = BusError> = std::result::Result<T, E>;
