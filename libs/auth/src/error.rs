//! Errors of issuing, verifying and authorizing, and how they reach a gRPC caller.

use sentra_runtime::failure::Failure;

/// Everything that can go wrong between a token and a permission check.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The call carried no access token.
    #[error("missing access token")]
    MissingToken,
    /// The token is malformed, badly signed, uses another algorithm, or names the wrong issuer.
    #[error("invalid access token")]
    InvalidToken,
    /// The token's `exp` has passed.
    #[error("access token expired")]
    Expired,
    /// The token was issued before its subject's rights changed (or the user was deactivated).
    #[error("access token revoked")]
    Revoked,
    /// The token's `kid` names no key the verifier knows, even after asking the key source.
    #[error("access token signed by an unknown key")]
    UnknownKey,
    /// The principal lacks a permission.
    #[error("permission {permission} required")]
    PermissionDenied {
        /// The permission that was checked, e.g. `sales.lead.write`.
        permission: String,
    },
    /// A role name that is not one of ours.
    #[error("unknown role {0:?}")]
    InvalidRole(String),
    /// The key source could not be reached or answered with an error.
    #[error("signing keys unavailable: {0}")]
    KeySource(String),
    /// A signing key could not be read or could not sign.
    #[error("signing failed: {0}")]
    Signing(String),
}

impl From<AuthError> for Failure {
    /// Authentication failures share one message on purpose: telling a caller *which* check failed
    /// (signature, key, issuer) only helps someone forging tokens; the detail is in the service's
    /// debug log instead. A revoked token is worth a reason of its own: the client's right move is
    /// to refresh into its current rights.
    fn from(error: AuthError) -> Self {
        let unauthenticated = |reason, message| Failure::Unauthenticated { reason, message };
        match error {
            AuthError::MissingToken => unauthenticated("MISSING_TOKEN", "missing access token"),
            AuthError::InvalidToken | AuthError::Expired | AuthError::UnknownKey => {
                unauthenticated("INVALID_TOKEN", "invalid or expired access token")
            }
            AuthError::Revoked => unauthenticated("TOKEN_REVOKED", "access token revoked: rights changed; refresh it"),
            AuthError::PermissionDenied { permission } => {
                Failure::permission_denied(format!("permission {permission} required"))
            }
            AuthError::KeySource(detail) => {
                tracing::warn!(%detail, "token verification keys unavailable");
                Failure::Unavailable {
                    reason: "TOKEN_KEYS_UNAVAILABLE",
                    message: "token verification is temporarily unavailable".into(),
                    retry_after: Some(std::time::Duration::from_secs(1)),
                }
            }
            AuthError::InvalidRole(_) | AuthError::Signing(_) => Failure::Internal(Box::new(error)),
        }
    }
}

impl From<AuthError> for tonic::Status {
    /// Through the one error table ([`Failure`]).
    fn from(error: AuthError) -> Self {
        Failure::from(error).into()
    }
}

#[cfg(test)]
mod tests {
    use tonic::{Code, Status};

    use super::*;

    #[test]
    fn authentication_failures_look_alike() {
        let statuses: Vec<Status> = [AuthError::InvalidToken, AuthError::Expired, AuthError::UnknownKey]
            .into_iter()
            .map(Status::from)
            .collect();
        for status in &statuses {
            assert_eq!(status.code(), Code::Unauthenticated);
            assert_eq!(status.message(), "invalid or expired access token");
        }
        let missing = Status::from(AuthError::MissingToken);
        assert_eq!(missing.code(), Code::Unauthenticated);
        assert_eq!(missing.message(), "missing access token");
    }

    #[test]
    fn other_errors_map_to_their_codes_without_leaking_detail() {
        let denied = Status::from(AuthError::PermissionDenied { permission: "sales.lead.write".into() });
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert!(denied.message().contains("sales.lead.write"));

        let unavailable = Status::from(AuthError::KeySource("connection refused to 10.0.0.7".into()));
        assert_eq!(unavailable.code(), Code::Unavailable);
        assert!(!unavailable.message().contains("10.0.0.7"));

        for error in [AuthError::Signing("bad der".into()), AuthError::InvalidRole("root".into())] {
            let status = Status::from(error);
            assert_eq!(status.code(), Code::Internal);
            assert_eq!(status.message(), "internal error");
        }
    }
}
