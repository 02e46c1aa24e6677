//! Every way a Sales call can fail, and the one place they become gRPC statuses.

use sentra_event_store::EventStoreError;
use sentra_runtime::status::{internal, invalid_argument, with_reason};
use tonic::{Code, Status};

use crate::domain::client::ClientError;
use crate::domain::lead::LeadError;
use crate::domain::order::OrderError;

/// A failed Sales operation.
#[derive(Debug, thiserror::Error)]
pub enum SalesError {
    /// Input that breaks a rule; names the field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field (`lead.email`).
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Not in the caller's organization (or nowhere).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The etag or expected version is stale.
    #[error("the record changed since it was read (stale etag)")]
    Stale,
    /// The state does not allow the operation (illegal transition).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller lacks a right.
    #[error("{0}")]
    PermissionDenied(String),
    /// Authentication or authorization failed in `sentra-auth`.
    #[error(transparent)]
    Auth(#[from] sentra_auth::AuthError),
    /// Tenancy, which Sales asks about brands and members, did not answer.
    #[error("tenancy unavailable")]
    TenancyUnavailable(#[source] tonic::Status),
    /// Something broke that the caller cannot fix.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl SalesError {
    /// Shorthand for [`SalesError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { field, reason: reason.into() }
    }
}

impl From<EventStoreError> for SalesError {
    fn from(error: EventStoreError) -> Self {
        match error {
            EventStoreError::Conflict { .. } => SalesError::Stale,
            EventStoreError::TenantMismatch | EventStoreError::MissingTenant => SalesError::NotFound("record"),
            other => SalesError::Internal(Box::new(other)),
        }
    }
}

impl From<sentra_directory::DirectoryError> for SalesError {
    fn from(error: sentra_directory::DirectoryError) -> Self {
        use sentra_directory::DirectoryError as D;
        match error {
            D::BrandNotFound => SalesError::NotFound("brand"),
            D::PermissionDenied => SalesError::PermissionDenied("no access to this brand".into()),
            D::Unauthenticated => SalesError::Auth(sentra_auth::AuthError::InvalidToken),
            D::Unavailable(code) => SalesError::TenancyUnavailable(tonic::Status::new(code, "tenancy call failed")),
        }
    }
}

impl From<sqlx::Error> for SalesError {
    fn from(error: sqlx::Error) -> Self {
        SalesError::Internal(Box::new(error))
    }
}

impl From<LeadError> for SalesError {
    fn from(error: LeadError) -> Self {
        match error {
            LeadError::NotFound => SalesError::NotFound("lead"),
            LeadError::AlreadyExists => SalesError::FailedPrecondition("lead already exists".into()),
            LeadError::IllegalTransition(msg) => SalesError::FailedPrecondition(msg),
        }
    }
}

impl From<ClientError> for SalesError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::NotFound => SalesError::NotFound("client"),
            ClientError::AlreadyExists => SalesError::FailedPrecondition("client already exists".into()),
            ClientError::Precondition(msg) => SalesError::FailedPrecondition(msg.into()),
        }
    }
}

impl From<OrderError> for SalesError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::NotFound => SalesError::NotFound("order"),
            OrderError::AlreadyExists => SalesError::FailedPrecondition("order already exists".into()),
            OrderError::IllegalTransition(msg) => SalesError::FailedPrecondition(msg),
        }
    }
}

impl From<SalesError> for Status {
    fn from(error: SalesError) -> Self {
        match error {
            SalesError::Invalid { field, reason } => invalid_argument(field, &reason),
            SalesError::NotFound(what) => {
                let reason = format!("{}_NOT_FOUND", what.to_ascii_uppercase());
                with_reason(Code::NotFound, &reason, format!("{what} not found"))
            }
            SalesError::Stale => {
                with_reason(Code::Aborted, "ETAG_MISMATCH", "the record changed since it was read (stale etag)")
            }
            SalesError::FailedPrecondition(msg) => with_reason(Code::FailedPrecondition, "ILLEGAL_TRANSITION", msg),
            SalesError::PermissionDenied(msg) => with_reason(Code::PermissionDenied, "PERMISSION_DENIED", msg),
            SalesError::Auth(auth) => auth.into(),
            SalesError::TenancyUnavailable(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "Tenancy call failed.");
                with_reason(Code::Unavailable, "TENANCY_UNAVAILABLE", "brand directory unavailable; retry")
            }
            SalesError::Internal(source) => internal(source.as_ref()),
        }
    }
}
