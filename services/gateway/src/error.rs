//! Every way the gateway refuses or fails a call, and the one mapping to `tonic::Status`.

use std::time::Duration;

use sentra_auth::AuthError;
use sentra_runtime::status::with_reason;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Why a call did not reach (or did not come back from) its upstream.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
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

impl From<EdgeError> for Status {
    fn from(error: EdgeError) -> Self {
        match error {
            EdgeError::UnknownMethod(path) => Status::unimplemented(format!("unknown method {path}")),
            EdgeError::Auth(auth) => auth.into(),
            EdgeError::PermissionDenied(permission) => {
                with_reason(Code::PermissionDenied, "PERMISSION_DENIED", format!("permission {permission} required"))
            }
            EdgeError::ForeignDomain => {
                with_reason(Code::PermissionDenied, "FOREIGN_DOMAIN", "this token is not valid on this domain")
            }
            EdgeError::BadBrandHeader => {
                sentra_runtime::status::invalid_argument("x-sentra-brand-id", "must be a brand id (UUID)")
            }
            EdgeError::RateLimited(wait) => Status::with_error_details(
                Code::ResourceExhausted,
                format!("rate limit exceeded; retry in {} ms", wait.as_millis().max(1)),
                ErrorDetails::with_retry_info(Some(wait)),
            ),
            EdgeError::LimiterDown => Status::with_error_details(
                Code::Unavailable,
                "temporarily unavailable",
                ErrorDetails::with_retry_info(Some(Duration::from_secs(1))),
            ),
            EdgeError::BrandLookup(status) => {
                tracing::warn!(code = ?status.code(), message = %status.message(), "Brand resolution failed.");
                Status::unavailable("brand resolution temporarily unavailable")
            }
            EdgeError::MessageTooLarge { size, max } => {
                Status::resource_exhausted(format!("request message of {size} bytes exceeds the limit of {max}"))
            }
            EdgeError::DeadlineExceeded => Status::deadline_exceeded("deadline exceeded at the gateway"),
            EdgeError::Upstream { context, detail } => {
                tracing::warn!(%context, %detail, "Upstream unavailable.");
                Status::unavailable(format!("{context} unavailable"))
            }
        }
    }
}
