//! Comm's one error type and its place in the runtime's error table (`sentra_runtime::failure`).

use std::time::Duration;

use sentra_runtime::failure::Failure;

use crate::gmail::GmailError;

/// Every way a Comm call or job can fail.
#[derive(Debug, thiserror::Error)]
pub enum CommError {
    /// Input that breaks a rule; names the field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The request field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The caller cannot see such a thing.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A create met something that exists.
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// The caller can see it but lacks a right.
    #[error(transparent)]
    Auth(#[from] sentra_auth::AuthError),
    /// The caller's etag is not the current version.
    #[error("the etag is stale")]
    Stale,
    /// A state does not allow the operation.
    #[error("{1}")]
    Precondition(&'static str, String),
    /// The shared access rule refused (or Tenancy did not answer).
    #[error(transparent)]
    Access(#[from] sentra_kernel::AppError),
    /// The mail provider failed or refused.
    #[error(transparent)]
    Provider(GmailError),
    /// A sealed value did not open (a key-encryption key removed too early, or tampering).
    #[error("token decryption failed")]
    Crypto(#[source] sentra_crypto::CryptoError),
    /// PostgreSQL failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The mail store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Stored data breaks what its writer guarantees.
    #[error("{0}")]
    Corrupt(String),
}

impl CommError {
    /// [`CommError::Invalid`] naming `field`.
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { field, reason: reason.into() }
    }

    /// A broken stored invariant (logged, never shown).
    pub fn corrupt(message: impl Into<String>) -> Self {
        Self::Corrupt(message.into())
    }
}

impl From<CommError> for Failure {
    fn from(error: CommError) -> Self {
        match error {
            CommError::Invalid { field, reason } => Failure::invalid(field, reason),
            CommError::NotFound(what) => Failure::NotFound { what },
            CommError::AlreadyExists(what) => {
                Failure::AlreadyExists { what: what.to_owned(), reason: "ALIAS_ALREADY_EXISTS" }
            }
            CommError::Stale => Failure::Stale,
            CommError::Auth(auth) => auth.into(),
            CommError::Access(app) => app.into(),
            CommError::Precondition(reason, message) => Failure::precondition(reason, message),
            CommError::Provider(GmailError::Grant(_)) => Failure::precondition(
                "MAILBOX_NEEDS_REAUTH",
                "the mail provider refused the mailbox's grant; connect the mailbox again",
            ),
            CommError::Provider(GmailError::RateLimited { retry_after }) => Failure::Unavailable {
                reason: "PROVIDER_RATE_LIMITED",
                message: "the mail provider asked us to slow down; retry later".into(),
                retry_after: Some(retry_after.unwrap_or(Duration::from_secs(5))),
            },
            CommError::Provider(GmailError::Transient(detail)) => {
                tracing::warn!(%detail, "Mail provider unavailable.");
                Failure::Unavailable {
                    reason: "PROVIDER_UNAVAILABLE",
                    message: "the mail provider is unavailable; retry".into(),
                    retry_after: Some(Duration::from_secs(2)),
                }
            }
            CommError::Provider(other) => {
                tracing::warn!(error = %other, "Mail provider refused a request.");
                Failure::precondition("PROVIDER_REFUSED", "the mail provider refused the request")
            }
            other @ (CommError::Crypto(_) | CommError::Database(_) | CommError::Store(_) | CommError::Corrupt(_)) => {
                Failure::Internal(Box::new(other))
            }
        }
    }
}

impl From<CommError> for tonic::Status {
    fn from(error: CommError) -> Self {
        Failure::from(error).into()
    }
}
