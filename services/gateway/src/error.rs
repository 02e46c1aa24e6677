//! Every way the gateway refuses or fails a call, and how each enters the runtime's one error
//! table.

use std::time::Duration;

use sentra_auth::AuthError;
use sentra_runtime::failure::Failure;
use tonic::Status;

/// Why a call did not reach (or did not come back from) its upstream.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The brand named by `x-sentra-brand-id` is not one the caller can see.
    #[error("brand not found")]
    BrandNotFound,
    /// No RPC with a usable rule has this path, or its context has no upstream.
    #[error("unknown method {0}")]
    UnknownMethod(String),
    /// Missing, malformed, expired or forged token (or keys unavailable).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The principal lacks the rule's permission.
    #[error("permission {0} required")]
    PermissionDenied(String),
    /// A token used on the domain of a brand (or organization) it does not belong to.
    #[error("this token is not valid on this domain")]
    ForeignDomain,
    /// `x-sentra-brand-id` is not a UUID.
    #[error("x-sentra-brand-id must be a brand id")]
    BadBrandHeader,
    /// Over a rate limit.
    #[error("rate limit exceeded")]
    RateLimited(Duration),
    /// The limiter could not be asked and the call is one that fails closed.
    #[error("rate limiter unavailable")]
    LimiterDown,
    /// Tenancy could not resolve the host name.
    #[error("brand resolution failed: {0}")]
    BrandLookup(Status),
    /// A request message larger than `edge.max_message_bytes`.
    #[error("request message of {size} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// Declared size of the message.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The upstream did not answer before the call's deadline.
    #[error("deadline exceeded")]
    DeadlineExceeded,
    /// The upstream could not be reached.
    #[error("upstream {context} unavailable: {detail}")]
    Upstream {
        /// The bounded context.
        context: String,
        /// Transport error.
        detail: String,
    },
}

impl From<EdgeError> for Failure {
    fn from(error: EdgeError) -> Self {
        match error {
            EdgeError::UnknownMethod(path) => Failure::Unimplemented { message: format!("unknown method {path}") },
            EdgeError::BrandNotFound => Failure::NotFound { what: "brand" },
            EdgeError::Auth(auth) => auth.into(),
            EdgeError::PermissionDenied(permission) => {
                Failure::permission_denied(format!("permission {permission} required"))
            }
            EdgeError::ForeignDomain => Failure::PermissionDenied {
                reason: "FOREIGN_DOMAIN",
                message: "this token is not valid on this domain".into(),
            },
            EdgeError::BadBrandHeader => Failure::invalid("x-sentra-brand-id", "must be a brand id (UUID)"),
            EdgeError::RateLimited(wait) => Failure::Exhausted {
                reason: "RATE_LIMITED",
                message: format!("rate limit exceeded; retry in {} ms", wait.as_millis().max(1)),
                retry_after: Some(wait),
            },
            EdgeError::LimiterDown => Failure::Unavailable {
                reason: "RATE_LIMITER_UNAVAILABLE",
                message: "temporarily unavailable".into(),
                retry_after: Some(Duration::from_secs(1)),
            },
            EdgeError::BrandLookup(status) => {
                tracing::warn!(code = ?status.code(), message = %status.message(), "Brand resolution failed.");
                Failure::Unavailable {
                    reason: "TENANCY_UNAVAILABLE",
                    message: "brand resolution temporarily unavailable".into(),
                    retry_after: Some(Duration::from_secs(1)),
                }
            }
            EdgeError::MessageTooLarge { size, max } => Failure::Exhausted {
                reason: "MESSAGE_TOO_LARGE",
                message: format!("request message of {size} bytes exceeds the limit of {max}"),
                retry_after: None,
            },
            EdgeError::DeadlineExceeded => {
                Failure::DeadlineExceeded { message: "deadline exceeded at the gateway".into() }
            }
            EdgeError::Upstream { context, detail } => {
                tracing::warn!(%context, %detail, "Upstream unavailable.");
                Failure::Unavailable {
                    reason: "UPSTREAM_UNAVAILABLE",
                    message: format!("{context} unavailable"),
                    retry_after: Some(Duration::from_secs(1)),
                }
            }
        }
    }
}

impl From<EdgeError> for Status {
    fn from(error: EdgeError) -> Self {
        Failure::from(error).into()
    }
}
