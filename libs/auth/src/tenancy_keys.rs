//! The key source every service but Tenancy uses: Tenancy's `AuthService.GetSigningKeys`.

use sentra_proto::sentra::tenancy::v1::GetSigningKeysRequest;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use tonic::transport::Channel;

use crate::{AuthError, KeySource, PublicKey};

/// Fetches the published verification keys from Tenancy over gRPC.
#[derive(Clone)]
pub struct TenancyKeys {
    client: AuthServiceClient<Channel>,
}

impl TenancyKeys {
    /// A source calling Tenancy on `channel` (typically `Endpoint::connect_lazy`).
    pub fn new(channel: Channel) -> Self {
        Self { client: AuthServiceClient::new(channel) }
    }
}

#[async_trait::async_trait]
impl KeySource for TenancyKeys {
    async fn fetch(&self) -> Result<Vec<PublicKey>, AuthError> {
        let answer = self
            .client
            .clone()
            .get_signing_keys(GetSigningKeysRequest {})
            .await
            .map_err(|status| AuthError::KeySource(format!("GetSigningKeys failed: {}", status.code())))?;
        Ok(answer.into_inner().keys.into_iter().map(|k| PublicKey { kid: k.kid, x: k.x }).collect())
    }
}
