//! Every way a Tenancy call can fail, and how each enters the runtime's one error table.

use sentra_runtime::failure::Failure;
use tonic::Status;

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
    #[error("{message}")]
    FailedPrecondition {
        /// Which precondition, e.g. `OWNER_PROTECTED`.
        reason: &'static str,
        /// The sentence for people.
        message: &'static str,
    },
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

impl From<TenancyError> for Failure {
    fn from(error: TenancyError) -> Self {
        match error {
            TenancyError::Invalid { field, reason } => Failure::invalid(field, reason),
            TenancyError::NotFound(what) => Failure::NotFound { what },
            TenancyError::AlreadyExists { what, reason } => Failure::AlreadyExists { what: what.to_owned(), reason },
            TenancyError::StaleEtag => Failure::Stale,
            TenancyError::FailedPrecondition { reason, message } => Failure::precondition(reason, message),
            TenancyError::InvalidCredentials => {
                Failure::Unauthenticated { reason: "INVALID_CREDENTIALS", message: "invalid email or password" }
            }
            TenancyError::InvalidToken => {
                Failure::Unauthenticated { reason: "INVALID_TOKEN", message: "invalid or expired token" }
            }
            TenancyError::Auth(auth) => auth.into(),
            TenancyError::Busy => Failure::Unavailable {
                reason: "BUSY",
                message: "too many sign-ins at once; retry in a moment".into(),
                retry_after: Some(std::time::Duration::from_secs(1)),
            },
            TenancyError::Internal(source) => Failure::Internal(source),
        }
    }
}

impl From<TenancyError> for Status {
    fn from(error: TenancyError) -> Self {
        Failure::from(error).into()
    }
}
