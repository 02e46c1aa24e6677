//! The one error type of the crate.

/// A boxed error from code the store calls back into (a projection's own failure).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an event store operation failed.
///
/// Display strings never contain database text, so services may log them freely; the underlying
/// error stays reachable through [`std::error::Error::source`] for logs.
#[derive(Debug, thiserror::Error)]
pub enum EventStoreError {
    /// The tenant id was empty or nil; every event belongs to a tenant.
    #[error("tenant id is required")]
    MissingTenant,
    /// The aggregate already exists under another tenant.
    #[error("aggregate belongs to another tenant")]
    TenantMismatch,
    /// Optimistic concurrency: the aggregate is not at the version the command was decided on.
    /// Services map it to gRPC `ABORTED` (reload and retry the command).
    #[error("aggregate changed concurrently (expected version {expected})")]
    Conflict {
        /// The version the caller expected.
        expected: u64,
        /// The version found (read after the failed attempt, so possibly newer still).
        actual: u64,
    },
    /// A payload, metadata or snapshot did not (de)serialize.
    #[error("event serialization failed")]
    Serialization(#[source] serde_json::Error),
    /// PostgreSQL failed or was unreachable.
    #[error("event store database error")]
    Database(#[source] sqlx::Error),
    /// An argument is out of range or malformed (a version above `i64::MAX`, a bad table name).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A projection's read table does not exist: the service's migrations have not run.
    #[error("read table {0} does not exist (run the service's migrations)")]
    MissingTable(String),
    /// No projection has a checkpoint under this name.
    #[error("no projection named {0}")]
    UnknownProjection(String),
    /// A projection's `apply` failed with its own error.
    #[error("projection failed")]
    Projection(#[source] BoxError),
    /// Another runner advanced this projection's checkpoint; this runner must stop.
    #[error("projection checkpoint moved under this runner")]
    Fenced,
    /// The task writing a combined append stopped before answering (the runtime is shutting
    /// down); whether the events were written is unknown, so retry with the same event ids.
    #[error("append interrupted before it was confirmed")]
    Interrupted,
}

impl From<sqlx::Error> for EventStoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error)
    }
}

impl From<serde_json::Error> for EventStoreError {
    fn from(error: serde_json::Error) -> Self {
        Self::Serialization(error)
    }
}

/// Result alias for the crate.
pub type Result<T, E = EventStoreError> = std::result::Result<T, E>;
