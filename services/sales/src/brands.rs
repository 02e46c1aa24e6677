//! What Sales asks Tenancy: does a brand belong to the caller's organization, and who works on
//! it. Calls carry the caller's own token, so Tenancy applies its own isolation and rights.
//! Answers about brand ownership are cached briefly; membership is always asked fresh (it
//! decides an assignment).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::error::SalesError;

/// Tenancy as seen by Sales.
pub struct Brands {
    client: TenancyServiceClient<Channel>,
    known: Mutex<HashMap<(Uuid, Uuid), Instant>>,
    ttl: Duration,
}

fn with_token<T>(token: &str, message: T) -> Result<tonic::Request<T>, SalesError> {
    let mut request = tonic::Request::new(message);
    let value =
        format!("Bearer {token}").parse().map_err(|_| SalesError::Auth(sentra_auth::AuthError::InvalidToken))?;
    request.metadata_mut().insert("authorization", value);
    if let Some(ctx) = sentra_runtime::context::RequestContext::current() {
        if let Ok(value) = ctx.request_id.parse() {
            request.metadata_mut().insert(sentra_runtime::context::REQUEST_ID_HEADER, value);
        }
        if let Ok(value) = ctx.traceparent().parse() {
            request.metadata_mut().insert(sentra_runtime::context::TRACEPARENT_HEADER, value);
        }
    }
    Ok(request)
}

fn fail(status: tonic::Status) -> SalesError {
    match status.code() {
        tonic::Code::NotFound => SalesError::NotFound("brand"),
        tonic::Code::PermissionDenied => SalesError::PermissionDenied("no access to this brand".into()),
        tonic::Code::Unauthenticated => SalesError::Auth(sentra_auth::AuthError::InvalidToken),
        _ => SalesError::TenancyUnavailable(status),
    }
}

impl Brands {
    /// A client of Tenancy at `channel`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: TenancyServiceClient::new(channel),
            known: Mutex::new(HashMap::new()),
            ttl: Duration::from_secs(60),
        }
    }

    /// Ok when `brand` is a brand of `organization` (NOT_FOUND otherwise).
    pub async fn ensure_in_org(&self, token: &str, organization: Uuid, brand: Uuid) -> Result<(), SalesError> {
        let fresh = |at: &Instant| at.elapsed() < self.ttl;
        if self.known.lock().map(|k| k.get(&(organization, brand)).is_some_and(fresh)).unwrap_or(false) {
            return Ok(());
        }
        let answer = self
            .client
            .clone()
            .get_brand(with_token(token, tpb::GetBrandRequest { brand_id: brand.to_string() })?)
            .await;
        let found = answer.map_err(fail)?.into_inner().brand.ok_or(SalesError::NotFound("brand"))?;
        if found.organization_id != organization.to_string() || found.archived {
            return Err(SalesError::NotFound("brand"));
        }
        if let Ok(mut known) = self.known.lock() {
            known.insert((organization, brand), Instant::now());
        }
        Ok(())
    }

    /// Whether `user` may work leads of `brand`: an agent or a manager there.
    pub async fn is_member(&self, token: &str, brand: Uuid, user: Uuid) -> Result<bool, SalesError> {
        let request = with_token(token, tpb::ListBrandMembersRequest { brand_id: brand.to_string() })?;
        let members = self.client.clone().list_brand_members(request).await.map_err(fail)?.into_inner().accesses;
        let works = |role: i32| role == tpb::BrandRole::Agent as i32 || role == tpb::BrandRole::Manager as i32;
        Ok(members.iter().any(|m| m.user_id == user.to_string() && works(m.role)))
    }
}
