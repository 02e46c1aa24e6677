//! Building gRPC statuses the same way in every service (AIP-193).
//!
//! Services map their domain errors to `tonic::Status` in one `From` impl each; these helpers
//! give those statuses a stable machine-readable reason (`ErrorInfo`) and, for bad input, the
//! offending field (`BadRequest`), so clients can act on them without parsing messages.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every Sentra error.
pub const ERROR_DOMAIN: &str = "sentra.dev";

/// `INVALID_ARGUMENT` naming `field`: message `"<field>: <description>"`, plus a field violation.
pub fn invalid_argument(field: &str, description: &str) -> Status {
    let details = ErrorDetails::with_bad_request_violation(field, description);
    Status::with_error_details(Code::InvalidArgument, format!("{field}: {description}"), details)
}

/// A status with an `ErrorInfo` reason such as `LEAD_NOT_FOUND`.
pub fn with_reason(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let details =
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::<String, String>::new());
    Status::with_error_details(code, message, details)
}

/// `INTERNAL` for failures the caller cannot act on; the cause is logged with its whole chain and
/// never sent (it may hold SQL or infrastructure details).
pub fn internal(error: &(dyn std::error::Error + 'static)) -> Status {
    tracing::error!(error = %error_chain(error), "Internal error.");
    with_reason(Code::Internal, "INTERNAL", "internal error")
}

/// An error and its sources, `outer: inner: root`, for logs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}
