//! Every way a Finance call can fail, and the one place they become gRPC statuses.

use sentra_event_store::EventStoreError;
use sentra_runtime::status::{internal, invalid_argument, with_reason};
use tonic::{Code, Status};

use crate::domain::invoice::InvoiceError;

/// A failed Finance operation.
#[derive(Debug, thiserror::Error)]
pub enum FinanceError {
    /// Input that breaks a rule; names the field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Not in the caller's organization (or nowhere).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The etag or expected version is stale.
    #[error("the invoice changed since it was read (stale etag)")]
    Stale,
    /// The status does not allow the operation.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller lacks a right.
    #[error("{0}")]
    PermissionDenied(String),
    /// Authentication failed in `sentra-auth`.
    #[error(transparent)]
    Auth(#[from] sentra_auth::AuthError),
    /// Tenancy did not answer.
    #[error("tenancy unavailable")]
    TenancyUnavailable(tonic::Code),
    /// Something broke that the caller cannot fix.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl FinanceError {
    /// Shorthand for [`FinanceError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { field, reason: reason.into() }
    }
}

impl From<EventStoreError> for FinanceError {
    fn from(error: EventStoreError) -> Self {
        match error {
            EventStoreError::Conflict { .. } => FinanceError::Stale,
            EventStoreError::TenantMismatch | EventStoreError::MissingTenant => FinanceError::NotFound("invoice"),
            other => FinanceError::Internal(Box::new(other)),
        }
    }
}

impl From<sqlx::Error> for FinanceError {
    fn from(error: sqlx::Error) -> Self {
        FinanceError::Internal(Box::new(error))
    }
}

impl From<sentra_directory::DirectoryError> for FinanceError {
    fn from(error: sentra_directory::DirectoryError) -> Self {
        use sentra_directory::DirectoryError as D;
        match error {
            D::BrandNotFound => FinanceError::NotFound("brand"),
            D::PermissionDenied => FinanceError::PermissionDenied("no access to this brand".into()),
            D::Unauthenticated => FinanceError::Auth(sentra_auth::AuthError::InvalidToken),
            D::Unavailable(code) => FinanceError::TenancyUnavailable(code),
        }
    }
}

impl From<InvoiceError> for FinanceError {
    fn from(error: InvoiceError) -> Self {
        match error {
            InvoiceError::NotFound => FinanceError::NotFound("invoice"),
            InvoiceError::AlreadyExists => FinanceError::FailedPrecondition("invoice already exists".into()),
            InvoiceError::IllegalTransition(msg) => FinanceError::FailedPrecondition(msg),
            InvoiceError::InvalidAmount(msg) => FinanceError::Invalid { field: "amount", reason: msg },
        }
    }
}

impl From<FinanceError> for Status {
    fn from(error: FinanceError) -> Self {
        match error {
            FinanceError::Invalid { field, reason } => invalid_argument(field, &reason),
            FinanceError::NotFound(what) => with_reason(
                Code::NotFound,
                &format!("{}_NOT_FOUND", what.to_ascii_uppercase()),
                format!("{what} not found"),
            ),
            FinanceError::Stale => {
                with_reason(Code::Aborted, "ETAG_MISMATCH", "the invoice changed since it was read (stale etag)")
            }
            FinanceError::FailedPrecondition(msg) => with_reason(Code::FailedPrecondition, "ILLEGAL_TRANSITION", msg),
            FinanceError::PermissionDenied(msg) => with_reason(Code::PermissionDenied, "PERMISSION_DENIED", msg),
            FinanceError::Auth(auth) => auth.into(),
            FinanceError::TenancyUnavailable(code) => {
                tracing::warn!(?code, "Tenancy call failed.");
                with_reason(Code::Unavailable, "TENANCY_UNAVAILABLE", "brand directory unavailable; retry")
            }
            FinanceError::Internal(source) => internal(source.as_ref()),
        }
    }
}
