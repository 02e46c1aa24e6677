//! The key source every service but Tenancy uses: Tenancy's `AuthService.GetSigningKeys`.

use std::time::Duration;

use sentra_proto::sentra::tenancy::v1::GetSigningKeysRequest;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use tonic::transport::Channel;

use crate::{AuthError, KeySource, PublicKey};
use sentra_runtime::context::outgoing;
use tracing::Instrument;

/// Fetches the published verification keys from Tenancy over gRPC; the [`crate::Verifier`] over
/// it caches them and refetches on an unknown `kid`.
#[derive(Debug, Clone)]
pub struct TenancyKeys {
    client: AuthServiceClient<Channel>,
    timeout: Duration,
}

impl TenancyKeys {
    /// A source calling Tenancy on `channel` (typically `Endpoint::connect_lazy`), each fetch
    /// bounded by `timeout` (sent along as the call's deadline, and enforced here).
    pub fn new(channel: Channel, timeout: Duration) -> Self {
        Self { client: AuthServiceClient::new(channel), timeout }
    }
}

#[async_trait::async_trait]
impl KeySource for TenancyKeys {
    async fn fetch(&self) -> Result<Vec<PublicKey>, AuthError> {
        let (mut request, span) = outgoing("/sentra.tenancy.v1.AuthService/GetSigningKeys", GetSigningKeysRequest {});
        request.set_timeout(self.timeout);
        let answer = tokio::time::timeout(self.timeout, self.client.clone().get_signing_keys(request))
            .instrument(span)
            .await
            .map_err(|_| AuthError::KeySource("GetSigningKeys timed out".into()))?
            .map_err(|status| AuthError::KeySource(format!("GetSigningKeys failed: {}", status.code())))?;
        Ok(answer.into_inner().keys.into_iter().map(|k| PublicKey { kid: k.kid, x: k.x }).collect())
    }
}
