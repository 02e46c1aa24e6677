//! Every way a Tenancy call can fail, and the one place they become gRPC statuses.

use sentra_runtime::status::{internal, invalid_argument, with_reason};
use tonic::{Code, Status};

/// A failed Tenancy operation.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// Input that breaks a rule; names the field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field, as named in the contract (`brand.domain`).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The resource does not exist in the caller's organization (or at all).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique value is taken.
    #[error("{what} already exists")]
    AlreadyExists {
        /// What is taken, for example "a brand with this domain".
        what: &'static str,
        /// Stable reason code.
        reason: &'static str,
    },
    /// The etag does not match the current version.
    #[error("the resource changed since it was read (stale etag)")]
    StaleEtag,
    /// The resource is in a state that does not allow the operation.
    #[error("{0}")]
    FailedPrecondition(&'static str),
    /// Login failed; deliberately the same for an unknown email and a wrong password.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// A refresh or invite token is unknown, spent, revoked or expired.
    #[error("invalid or expired token")]
    InvalidToken,
    /// Authentication or authorization failed.
    #[error(transparent)]
    Auth(#[from] sentra_auth::AuthError),
    /// Too many password checks are running; the caller should retry shortly.
    #[error("too many sign-ins at once; retry in a moment")]
    Busy,
    /// Something broke that the caller cannot fix.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl TenancyError {
    /// Shorthand for [`TenancyError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { field, reason: reason.into() }
    }
}

impl From<sqlx::Error> for TenancyError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(Box::new(error))
    }
}

impl From<TenancyError> for Status {
    fn from(error: TenancyError) -> Self {
        match error {
            TenancyError::Invalid { field, reason } => invalid_argument(field, &reason),
            TenancyError::NotFound(what) => {
                let reason = format!("{}_NOT_FOUND", what.to_ascii_uppercase().replace(' ', "_"));
                with_reason(Code::NotFound, &reason, format!("{what} not found"))
            }
            TenancyError::AlreadyExists { what, reason } => {
                with_reason(Code::AlreadyExists, reason, format!("{what} already exists"))
            }
            TenancyError::StaleEtag => {
                with_reason(Code::Aborted, "ETAG_MISMATCH", error_text(&TenancyError::StaleEtag))
            }
            TenancyError::FailedPrecondition(msg) => with_reason(Code::FailedPrecondition, "FAILED_PRECONDITION", msg),
            TenancyError::InvalidCredentials => {
                with_reason(Code::Unauthenticated, "INVALID_CREDENTIALS", "invalid email or password")
            }
            TenancyError::InvalidToken => {
                with_reason(Code::Unauthenticated, "INVALID_TOKEN", "invalid or expired token")
            }
            TenancyError::Auth(auth) => auth.into(),
            TenancyError::Busy => <Status as tonic_types::StatusExt>::with_error_details(
                Code::Unavailable,
                "too many sign-ins at once; retry in a moment",
                tonic_types::ErrorDetails::with_retry_info(Some(std::time::Duration::from_secs(1))),
            ),
            TenancyError::Internal(source) => internal(source.as_ref()),
        }
    }
}

fn error_text(error: &TenancyError) -> String {
    error.to_string()
}
