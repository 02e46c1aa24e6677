//! What Sales and Finance ask Tenancy: is a brand one of the caller's organization (and what are
//! its settings), and who works on it.
//!
//! Calls carry the caller's own token, so Tenancy applies its own isolation and rights, plus the
//! request id and `traceparent` of the call being served. Brand answers are cached for a minute
//! per (organization, brand) — brands rarely change and every command checks one; membership is
//! always asked fresh, since it decides an assignment. Every call has a deadline: a slow Tenancy
//! makes a command fail UNAVAILABLE within it rather than hang.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_runtime::context::outgoing;
use tonic::transport::Channel;
use tracing::Instrument;
use uuid::Uuid;

/// Why a question to Tenancy got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The brand is not one of the caller's organization (or does not exist).
    #[error("brand not found")]
    BrandNotFound,
    /// Tenancy refused the caller.
    #[error("no access to this brand")]
    PermissionDenied,
    /// The caller's token was refused.
    #[error("invalid token")]
    Unauthenticated,
    /// Tenancy did not answer.
    #[error("tenancy unavailable: {0}")]
    Unavailable(tonic::Code),
}

/// The brand settings services need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandInfo {
    /// Brand id.
    pub id: Uuid,
    /// Owning organization.
    pub organization_id: Uuid,
    /// Invoice number prefix.
    pub invoice_prefix: String,
    /// Default currency.
    pub default_currency: String,
    /// Whether archived.
    pub archived: bool,
}

/// Tenancy, as seen by the other services.
pub struct Directory {
    client: TenancyServiceClient<Channel>,
    brands: Mutex<HashMap<(Uuid, Uuid), (Instant, BrandInfo)>>,
    ttl: Duration,
    timeout: Duration,
}

/// The call `path` with the caller's token, deadline, request id and a client span (returned,
/// to instrument the call with).
fn with_token<T>(
    token: &str,
    message: T,
    timeout: Duration,
    path: &str,
) -> Result<(tonic::Request<T>, tracing::Span), DirectoryError> {
    let (mut request, span) = outgoing(path, message);
    request.set_timeout(timeout);
    let value = format!("Bearer {token}").parse().map_err(|_| DirectoryError::Unauthenticated)?;
    request.metadata_mut().insert("authorization", value);
    Ok((request, span))
}

fn fail(status: tonic::Status) -> DirectoryError {
    match status.code() {
        tonic::Code::NotFound => DirectoryError::BrandNotFound,
        tonic::Code::PermissionDenied => DirectoryError::PermissionDenied,
        tonic::Code::Unauthenticated => DirectoryError::Unauthenticated,
        code => DirectoryError::Unavailable(code),
    }
}

impl Directory {
    /// A client of Tenancy at `channel`; each call must be answered within `timeout`.
    pub fn new(channel: Channel, timeout: Duration) -> Self {
        Self {
            client: TenancyServiceClient::new(channel),
            brands: Mutex::new(HashMap::new()),
            ttl: Duration::from_secs(60),
            timeout,
        }
    }

    /// Awaits a call within the deadline.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, DirectoryError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(answer) => answer.map(tonic::Response::into_inner).map_err(fail),
            Err(_) => Err(DirectoryError::Unavailable(tonic::Code::DeadlineExceeded)),
        }
    }

    /// The brand, if it belongs to `organization` (`BrandNotFound` otherwise, archived or not).
    pub async fn brand(&self, token: &str, organization: Uuid, brand: Uuid) -> Result<BrandInfo, DirectoryError> {
        if let Ok(cache) = self.brands.lock()
            && let Some((at, info)) = cache.get(&(organization, brand))
            && at.elapsed() < self.ttl
        {
            return Ok(info.clone());
        }
        let (request, span) = with_token(
            token,
            tpb::GetBrandRequest { brand_id: brand.to_string() },
            self.timeout,
            "/sentra.tenancy.v1.TenancyService/GetBrand",
        )?;
        let found = self.bounded(self.client.clone().get_brand(request)).instrument(span).await?.brand;
        let found = found.ok_or(DirectoryError::BrandNotFound)?;
        if found.organization_id != organization.to_string() {
            return Err(DirectoryError::BrandNotFound);
        }
        let info = BrandInfo {
            id: brand,
            organization_id: organization,
            invoice_prefix: found.invoice_prefix,
            default_currency: found.default_currency,
            archived: found.archived,
        };
        if let Ok(mut cache) = self.brands.lock() {
            cache.insert((organization, brand), (Instant::now(), info.clone()));
        }
        Ok(info)
    }

    /// Whether `user` holds one of `roles` on `brand`.
    pub async fn has_role(
        &self,
        token: &str,
        brand: Uuid,
        user: Uuid,
        roles: &[tpb::BrandRole],
    ) -> Result<bool, DirectoryError> {
        let (request, span) = with_token(
            token,
            tpb::ListBrandMembersRequest { brand_id: brand.to_string() },
            self.timeout,
            "/sentra.tenancy.v1.TenancyService/ListBrandMembers",
        )?;
        let members = self.bounded(self.client.clone().list_brand_members(request)).instrument(span).await?.accesses;
        Ok(members.iter().any(|m| m.user_id == user.to_string() && roles.iter().any(|r| *r as i32 == m.role)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Tenancy that takes connections and never answers: every call ends at the deadline.
    #[tokio::test]
    async fn a_silent_tenancy_fails_within_the_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).expect("uri").connect_lazy();
        let directory = Directory::new(channel, Duration::from_millis(200));
        let started = Instant::now();
        let answer = directory.brand("token", Uuid::nil(), Uuid::nil()).await;
        assert!(matches!(answer, Err(DirectoryError::Unavailable(_))), "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
        let answer = directory.has_role("token", Uuid::nil(), Uuid::nil(), &[]).await;
        assert!(matches!(answer, Err(DirectoryError::Unavailable(_))), "{answer:?}");
        silent.abort();
    }
}
