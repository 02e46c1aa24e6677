//! The one error type of the event-sourced services, and its place in the runtime's error table.

use sentra_event_store::EventStoreError;
use sentra_runtime::failure::Failure;

/// A result of the kernel and the services built on it.
pub type Result<T> = std::result::Result<T, AppError>;

/// Every way a Sales or Finance call can fail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Input that breaks a rule; names the field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field (`lead.email`).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The caller cannot see such a thing (another organization's, or nowhere).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A create met something that exists.
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// The etag or expected version is stale.
    #[error("the record changed since it was read (stale etag)")]
    Stale,
    /// A state does not allow the operation; `reason` says which precondition.
    #[error("{message}")]
    FailedPrecondition {
        /// The reason code, e.g. `ILLEGAL_TRANSITION`.
        reason: &'static str,
        /// The sentence for people.
        message: String,
    },
    /// The caller can see it but lacks a right.
    #[error("{0}")]
    PermissionDenied(String),
    /// Authentication or authorization failed in `sentra-auth`.
    #[error(transparent)]
    Auth(#[from] sentra_auth::AuthError),
    /// Tenancy, which the services ask about brands and members, did not answer.
    #[error("tenancy unavailable ({0:?})")]
    TenancyUnavailable(tonic::Code),
    /// A read model did not catch up with the writes before the call's wait ran out (a stalled
    /// projection); retrying later helps.
    #[error("the {0} read model is catching up; retry")]
    Behind(&'static str),
    /// Something broke that the caller cannot fix.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// [`AppError::Invalid`] naming `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { field, reason: reason.into() }
    }

    /// A state machine refused the step: FAILED_PRECONDITION `ILLEGAL_TRANSITION`.
    pub fn illegal(message: impl Into<String>) -> Self {
        Self::FailedPrecondition { reason: "ILLEGAL_TRANSITION", message: message.into() }
    }

    /// The brand is archived: FAILED_PRECONDITION `BRAND_ARCHIVED`.
    pub fn brand_archived() -> Self {
        Self::FailedPrecondition {
            reason: "BRAND_ARCHIVED",
            message: "the brand is archived: its records can no longer change".into(),
        }
    }

    /// Wraps an error the caller cannot act on.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }

    /// Stored data that breaks what its writer guarantees (a corrupt row, a stream in an
    /// impossible order): an internal error whose `message` goes to the log, never the caller.
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::Internal(message.into().into())
    }
}

impl From<EventStoreError> for AppError {
    fn from(error: EventStoreError) -> Self {
        match error {
            EventStoreError::Conflict { .. } => AppError::Stale,
            EventStoreError::TenantMismatch | EventStoreError::MissingTenant => AppError::NotFound("record"),
            other => AppError::internal(other),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        AppError::internal(error)
    }
}

impl From<serde_json::Error> for AppError {
    fn from(error: serde_json::Error) -> Self {
        AppError::internal(error)
    }
}

impl From<sentra_directory::DirectoryError> for AppError {
    fn from(error: sentra_directory::DirectoryError) -> Self {
        use sentra_directory::DirectoryError as D;
        match error {
            D::BrandNotFound => AppError::NotFound("brand"),
            D::PermissionDenied => AppError::PermissionDenied("no access to this brand".into()),
            D::Unauthenticated => AppError::Auth(sentra_auth::AuthError::InvalidToken),
            D::Unavailable(code) => AppError::TenancyUnavailable(code),
        }
    }
}

impl From<AppError> for Failure {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Invalid { field, reason } => Failure::invalid(field, reason),
            AppError::NotFound(what) => Failure::NotFound { what },
            AppError::AlreadyExists(what) => {
                let reason = match what {
                    "lead" => "LEAD_ALREADY_EXISTS",
                    "client" => "CLIENT_ALREADY_EXISTS",
                    "order" => "ORDER_ALREADY_EXISTS",
                    "invoice" => "INVOICE_ALREADY_EXISTS",
                    _ => "ALREADY_EXISTS",
                };
                Failure::AlreadyExists { what: what.to_owned(), reason }
            }
            AppError::Stale => Failure::Stale,
            AppError::FailedPrecondition { reason, message } => Failure::precondition(reason, message),
            AppError::PermissionDenied(message) => Failure::permission_denied(message),
            AppError::Auth(auth) => auth.into(),
            AppError::TenancyUnavailable(code) => {
                tracing::warn!(?code, "Tenancy call failed.");
                Failure::Unavailable {
                    reason: "TENANCY_UNAVAILABLE",
                    message: "the brand directory is unavailable; retry".into(),
                    retry_after: Some(std::time::Duration::from_secs(1)),
                }
            }
            AppError::Behind(what) => {
                tracing::warn!(read_model = what, "A read model is behind; the call gave up waiting.");
                Failure::Unavailable {
                    reason: "READ_MODEL_BEHIND",
                    message: format!("the {what} read model is catching up; retry"),
                    retry_after: Some(std::time::Duration::from_secs(1)),
                }
            }
            AppError::Internal(source) => Failure::Internal(source),
        }
    }
}

impl From<AppError> for tonic::Status {
    fn from(error: AppError) -> Self {
        Failure::from(error).into()
    }
}
