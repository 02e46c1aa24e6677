//! The one error table: every kind of failure a Sentra server reports, with the one gRPC code and
//! the one `ErrorInfo` reason it gets, whichever service (or the gateway) reports it.
//!
//! Services keep their own error enums (what went wrong, in their words) and convert them into a
//! [`Failure`]; only this module builds statuses from them (AIP-193, the quickwit habit of one
//! mapping table):
//!
//! | kind | code | `ErrorInfo.reason` | details |
//! | --- | --- | --- | --- |
//! | [`Failure::Invalid`] | INVALID_ARGUMENT | `INVALID_ARGUMENT` | `BadRequest` naming the field |
//! | [`Failure::NotFound`] | NOT_FOUND | `<WHAT>_NOT_FOUND` | |
//! | [`Failure::AlreadyExists`] | ALREADY_EXISTS | the given reason | |
//! | [`Failure::Stale`] | ABORTED | `ETAG_MISMATCH` | |
//! | [`Failure::Precondition`] | FAILED_PRECONDITION | which precondition (`ILLEGAL_TRANSITION`, `BRAND_ARCHIVED`, …) | |
//! | [`Failure::PermissionDenied`] | PERMISSION_DENIED | `PERMISSION_DENIED` or `FOREIGN_DOMAIN` | |
//! | [`Failure::Unauthenticated`] | UNAUTHENTICATED | `MISSING_TOKEN`, `INVALID_TOKEN`, `TOKEN_REVOKED`, `INVALID_CREDENTIALS` | |
//! | [`Failure::Exhausted`] | RESOURCE_EXHAUSTED | `RATE_LIMITED`, `MESSAGE_TOO_LARGE` | `RetryInfo` when known |
//! | [`Failure::Unavailable`] | UNAVAILABLE | which dependency or `BUSY` | `RetryInfo` when known |
//! | [`Failure::DeadlineExceeded`] | DEADLINE_EXCEEDED | `DEADLINE_EXCEEDED` | |
//! | [`Failure::Unimplemented`] | UNIMPLEMENTED | `UNKNOWN_METHOD` | |
//! | [`Failure::Internal`] | INTERNAL | `INTERNAL` | nothing: the cause is logged, never sent |
//!
//! Isolation and rights follow one rule everywhere: what a caller may not know exists (anything of
//! another organization, a brand they hold no role on and what lies in it) is NOT_FOUND; what they
//! can see but may not do is PERMISSION_DENIED; an organization-wide right the caller lacks is
//! PERMISSION_DENIED before anything is looked up, so it tells nothing about existence.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::status::ERROR_DOMAIN;

/// A failure, classified; `Status::from` is the one table.
#[derive(Debug)]
pub enum Failure {
    /// A request field breaks a rule.
    Invalid {
        /// The field, as named in the contract (`lead.email`).
        field: String,
        /// What is wrong with it.
        description: String,
    },
    /// The caller cannot see such a thing (it does not exist, or not for them).
    NotFound {
        /// What, in words ("lead", "brand access").
        what: &'static str,
    },
    /// A create met something that exists already.
    AlreadyExists {
        /// What exists, in words.
        what: String,
        /// The reason code, e.g. `DOMAIN_TAKEN`.
        reason: &'static str,
    },
    /// The etag (expected version) is stale.
    Stale,
    /// The state does not allow the operation.
    Precondition {
        /// Which precondition failed, e.g. `ILLEGAL_TRANSITION`.
        reason: &'static str,
        /// The sentence for people.
        message: String,
    },
    /// The caller may see it but not do this.
    PermissionDenied {
        /// `PERMISSION_DENIED`, or `FOREIGN_DOMAIN` for a token used on another brand's host.
        reason: &'static str,
        /// The sentence for people.
        message: String,
    },
    /// No valid identity.
    Unauthenticated {
        /// `MISSING_TOKEN`, `INVALID_TOKEN`, `TOKEN_REVOKED` or `INVALID_CREDENTIALS`.
        reason: &'static str,
        /// The sentence for people (deliberately vague about which check failed).
        message: &'static str,
    },
    /// Over a limit.
    Exhausted {
        /// `RATE_LIMITED` or `MESSAGE_TOO_LARGE`.
        reason: &'static str,
        /// The sentence for people.
        message: String,
        /// When to try again, if known.
        retry_after: Option<Duration>,
    },
    /// A dependency cannot answer right now, or the server is too busy.
    Unavailable {
        /// Which one, e.g. `TENANCY_UNAVAILABLE`, `BUSY`.
        reason: &'static str,
        /// The sentence for people.
        message: String,
        /// When to try again, if known.
        retry_after: Option<Duration>,
    },
    /// The deadline passed before an answer.
    DeadlineExceeded {
        /// Where.
        message: String,
    },
    /// No such method.
    Unimplemented {
        /// Which.
        message: String,
    },
    /// Something broke that the caller cannot fix; logged with its whole chain, never sent.
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl Failure {
    /// [`Failure::Invalid`] naming `field`.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Failure::Invalid { field: field.into(), description: description.into() }
    }

    /// [`Failure::Precondition`] with its reason code.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Failure::Precondition { reason, message: message.into() }
    }

    /// [`Failure::PermissionDenied`] (reason `PERMISSION_DENIED`).
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Failure::PermissionDenied { reason: "PERMISSION_DENIED", message: message.into() }
    }

    /// The gRPC code this failure gets.
    pub fn code(&self) -> Code {
        match self {
            Failure::Invalid { .. } => Code::InvalidArgument,
            Failure::NotFound { .. } => Code::NotFound,
            Failure::AlreadyExists { .. } => Code::AlreadyExists,
            Failure::Stale => Code::Aborted,
            Failure::Precondition { .. } => Code::FailedPrecondition,
            Failure::PermissionDenied { .. } => Code::PermissionDenied,
            Failure::Unauthenticated { .. } => Code::Unauthenticated,
            Failure::Exhausted { .. } => Code::ResourceExhausted,
            Failure::Unavailable { .. } => Code::Unavailable,
            Failure::DeadlineExceeded { .. } => Code::DeadlineExceeded,
            Failure::Unimplemented { .. } => Code::Unimplemented,
            Failure::Internal(_) => Code::Internal,
        }
    }
}

fn info(reason: &str) -> ErrorDetails {
    ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::<String, String>::new())
}

fn with_retry(reason: &str, retry_after: Option<Duration>) -> ErrorDetails {
    let mut details = info(reason);
    if let Some(delay) = retry_after {
        details.set_retry_info(Some(delay));
    }
    details
}

impl From<Failure> for Status {
    fn from(failure: Failure) -> Self {
        let code = failure.code();
        match failure {
            Failure::Invalid { field, description } => {
                let mut details = ErrorDetails::with_bad_request_violation(field.clone(), description.clone());
                details.set_error_info("INVALID_ARGUMENT", ERROR_DOMAIN, HashMap::<String, String>::new());
                Status::with_error_details(code, format!("{field}: {description}"), details)
            }
            Failure::NotFound { what } => {
                let reason = format!("{}_NOT_FOUND", what.to_ascii_uppercase().replace(' ', "_"));
                Status::with_error_details(code, format!("{what} not found"), info(&reason))
            }
            Failure::AlreadyExists { what, reason } => {
                Status::with_error_details(code, format!("{what} already exists"), info(reason))
            }
            Failure::Stale => Status::with_error_details(
                code,
                "the record changed since it was read (stale etag); read it again",
                info("ETAG_MISMATCH"),
            ),
            Failure::Precondition { reason, message } => Status::with_error_details(code, message, info(reason)),
            Failure::PermissionDenied { reason, message } => Status::with_error_details(code, message, info(reason)),
            Failure::Unauthenticated { reason, message } => Status::with_error_details(code, message, info(reason)),
            Failure::Exhausted { reason, message, retry_after } => {
                Status::with_error_details(code, message, with_retry(reason, retry_after))
            }
            Failure::Unavailable { reason, message, retry_after } => {
                Status::with_error_details(code, message, with_retry(reason, retry_after))
            }
            Failure::DeadlineExceeded { message } => {
                Status::with_error_details(code, message, info("DEADLINE_EXCEEDED"))
            }
            Failure::Unimplemented { message } => Status::with_error_details(code, message, info("UNKNOWN_METHOD")),
            Failure::Internal(source) => crate::status::internal(source.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(status: &Status) -> String {
        status.get_details_error_info().map(|i| i.reason).unwrap_or_default()
    }

    #[test]
    fn every_kind_has_its_code_and_reason() {
        let cases: Vec<(Failure, Code, &str)> = vec![
            (Failure::invalid("lead.email", "must be an email"), Code::InvalidArgument, "INVALID_ARGUMENT"),
            (Failure::NotFound { what: "brand access" }, Code::NotFound, "BRAND_ACCESS_NOT_FOUND"),
            (
                Failure::AlreadyExists { what: "a brand with this domain".into(), reason: "DOMAIN_TAKEN" },
                Code::AlreadyExists,
                "DOMAIN_TAKEN",
            ),
            (Failure::Stale, Code::Aborted, "ETAG_MISMATCH"),
            (
                Failure::precondition("ILLEGAL_TRANSITION", "a paid invoice cannot be paid"),
                Code::FailedPrecondition,
                "ILLEGAL_TRANSITION",
            ),
            (Failure::permission_denied("no"), Code::PermissionDenied, "PERMISSION_DENIED"),
            (
                Failure::Unauthenticated { reason: "TOKEN_REVOKED", message: "revoked" },
                Code::Unauthenticated,
                "TOKEN_REVOKED",
            ),
            (
                Failure::Exhausted {
                    reason: "RATE_LIMITED",
                    message: "slow down".into(),
                    retry_after: Some(Duration::from_millis(5)),
                },
                Code::ResourceExhausted,
                "RATE_LIMITED",
            ),
            (
                Failure::Unavailable { reason: "BUSY", message: "busy".into(), retry_after: None },
                Code::Unavailable,
                "BUSY",
            ),
            (Failure::DeadlineExceeded { message: "late".into() }, Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
            (Failure::Unimplemented { message: "no".into() }, Code::Unimplemented, "UNKNOWN_METHOD"),
            (Failure::Internal("secret sql text".into()), Code::Internal, "INTERNAL"),
        ];
        for (failure, code, expected) in cases {
            let status = Status::from(failure);
            assert_eq!(status.code(), code);
            assert_eq!(reason(&status), expected, "{status:?}");
            assert!(!status.message().contains("secret"), "internals leaked: {status:?}");
        }
    }

    #[test]
    fn field_violations_and_retry_hints_travel() {
        let status = Status::from(Failure::invalid("lines.quantity", "must be positive"));
        assert_eq!(status.message(), "lines.quantity: must be positive");
        assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "lines.quantity");
        let status = Status::from(Failure::Exhausted {
            reason: "RATE_LIMITED",
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(2)),
        });
        assert_eq!(status.get_details_retry_info().unwrap().retry_delay, Some(Duration::from_secs(2)));
    }
}
