//! Revocation that takes effect in seconds, not when the access token expires.
//!
//! Tenancy keeps a session version per subject and bumps it whenever the subject's rights change
//! (a brand role granted, changed or revoked) or the user is deactivated. Each access token
//! carries the version it was issued under (claim `sv`); a [`Verifier`](crate::Verifier) with a
//! [`SessionSource`] refuses tokens whose version is no longer current, with
//! [`AuthError::Revoked`]. The client then refreshes and gets a token with the current rights
//! (or, for a deactivated user, is refused the refresh).
//!
//! What a source answers is remembered per subject for a short time (`ttl`, 2 s by default):
//! one question per subject per replica in that time, so the cost does not grow with traffic,
//! and a change is seen everywhere within `ttl` plus one round trip. When the source cannot be
//! reached, tokens are judged by the last answer (or let through without one): revocation is
//! best effort during a Tenancy outage, the service stays available.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sentra_proto::sentra::tenancy::v1::GetSessionRequest;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::{AuthError, Principal};
use sentra_runtime::context::outgoing;
use tracing::Instrument;

/// How long an answer about a subject's session is trusted.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(2);

/// Subjects remembered at most; beyond that the memory starts over.
const MAX_SUBJECTS: usize = 50_000;

/// Where a verifier learns a subject's current session version.
#[async_trait::async_trait]
pub trait SessionSource: Send + Sync {
    /// The lowest session version that still stands for `principal`'s subject. `token` is the
    /// caller's own token, for sources that ask on the caller's behalf.
    async fn current(&self, token: &str, principal: &Principal) -> Result<u64, AuthError>;
}

/// Tenancy's `AuthService.GetSession`, asked with the caller's own token: it answers while the
/// token stands (with the current version) and refuses it UNAUTHENTICATED once it does not.
#[derive(Debug, Clone)]
pub struct TenancySessions {
    client: AuthServiceClient<Channel>,
    timeout: Duration,
}

impl TenancySessions {
    /// A source calling Tenancy on `channel`, each call bounded by `timeout`.
    pub fn new(channel: Channel, timeout: Duration) -> Self {
        Self { client: AuthServiceClient::new(channel), timeout }
    }
}

#[async_trait::async_trait]
impl SessionSource for TenancySessions {
    async fn current(&self, token: &str, principal: &Principal) -> Result<u64, AuthError> {
        let (mut request, span) = outgoing("/sentra.tenancy.v1.AuthService/GetSession", GetSessionRequest {});
        request.set_timeout(self.timeout);
        let bearer = format!("Bearer {token}").parse().map_err(|_| AuthError::InvalidToken)?;
        request.metadata_mut().insert("authorization", bearer);
        match tokio::time::timeout(self.timeout, self.client.clone().get_session(request)).instrument(span).await {
            Ok(Ok(answer)) => Ok(u64::try_from(answer.into_inner().session_version).unwrap_or(0)),
            // This token no longer stands: the current version is beyond it.
            Ok(Err(status)) if status.code() == tonic::Code::Unauthenticated => {
                Ok(principal.session_version.saturating_add(1))
            }
            Ok(Err(status)) => Err(AuthError::KeySource(format!("GetSession failed: {}", status.code()))),
            Err(_) => Err(AuthError::KeySource("GetSession timed out".into())),
        }
    }
}

/// The answers of a [`SessionSource`], per subject, for `ttl`.
pub(crate) struct SessionCheck {
    source: std::sync::Arc<dyn SessionSource>,
    ttl: Duration,
    answers: Mutex<HashMap<Uuid, (Instant, u64)>>,
}

impl SessionCheck {
    pub(crate) fn new(source: std::sync::Arc<dyn SessionSource>, ttl: Duration) -> Self {
        Self { source, ttl, answers: Mutex::new(HashMap::new()) }
    }

    /// Refuses `principal` when its token's session version is no longer current.
    pub(crate) async fn check(&self, token: &str, principal: &Principal) -> Result<(), AuthError> {
        let remembered = self.answers.lock().unwrap_or_else(PoisonError::into_inner).get(&principal.user_id).copied();
        let current = match remembered {
            Some((at, version)) if at.elapsed() < self.ttl => version,
            _ => match self.source.current(token, principal).await {
                Ok(version) => {
                    let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
                    if answers.len() >= MAX_SUBJECTS {
                        answers.clear();
                    }
                    // An answer is about the subject, not the token: a newer token of the same
                    // subject must not be judged by an older token's refusal.
                    let version = answers.get(&principal.user_id).map_or(version, |(_, v)| version.max(*v));
                    answers.insert(principal.user_id, (Instant::now(), version));
                    version
                }
                Err(error) => {
                    tracing::warn!(%error, subject = %principal.user_id, "Session source unavailable; judging by the last answer.");
                    remembered.map_or(0, |(_, version)| version)
                }
            },
        };
        if principal.session_version < current { Err(AuthError::Revoked) } else { Ok(()) }
    }
}
