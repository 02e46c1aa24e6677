//! What the gateway asks Tenancy itself: host name -> brand (the verification keys come through
//! `sentra_auth::TenancyKeys`, on the channel made here).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use tonic::transport::{Channel, Endpoint};
use uuid::Uuid;

use crate::config::{AddressList, EdgeSettings};
use crate::error::EdgeError;
use sentra_runtime::tls::Connector;

/// The channel of the gateway's own calls to Tenancy (keys, brands): rare (both are cached), so a
/// plain tonic channel, balanced by tonic over the addresses; `None` without an address.
/// `https://` addresses connect through `connector` (TLS, client certificate), to the first
/// address only (a Kubernetes Service balances behind it): tonic balances only over its own
/// plaintext connector.
pub fn tenancy_channel(
    addresses: &AddressList,
    settings: &EdgeSettings,
    connector: &Connector,
) -> Result<Option<Channel>, tonic::transport::Error> {
    let endpoints = addresses
        .0
        .iter()
        .map(|address| {
            Ok(Endpoint::from_shared(address.clone())?
                .connect_timeout(settings.connect_timeout)
                .tcp_nodelay(true)
                .http2_adaptive_window(true))
        })
        .collect::<Result<Vec<_>, tonic::transport::Error>>()?;
    let https = addresses.0.iter().any(|a| a.starts_with("https://"));
    Ok(match endpoints.as_slice() {
        [] => None,
        [one] if https => Some(one.connect_with_connector_lazy(connector.clone())),
        [one] => Some(one.connect_lazy()),
        [first, ..] if https => {
            tracing::warn!("upstreams.tenancy: several https:// addresses; the gateway's own lookups use the first");
            Some(first.connect_with_connector_lazy(connector.clone()))
        }
        _ => Some(Channel::balance_list(endpoints.into_iter())),
    })
}

/// The brand served on a host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostBrand {
    /// The brand.
    pub brand_id: Uuid,
    /// Its organization.
    pub organization_id: Uuid,
}

/// Most entries kept; beyond that the cache starts over, so made-up host names cannot grow it
/// without bound.
const MAX_CACHED_HOSTS: usize = 10_000;

/// Host name -> brand via Tenancy `ResolveBrandByDomain`, cached in process for a short TTL
/// (answers "no brand here" included, so unknown hosts do not cost a call each).
#[derive(Debug)]
pub struct BrandResolver {
    client: TenancyServiceClient<Channel>,
    ttl: Duration,
    timeout: Duration,
    cache: Mutex<HashMap<String, (Option<HostBrand>, Instant)>>,
}

impl BrandResolver {
    /// A resolver calling Tenancy over `channel`.
    pub fn new(channel: Channel, ttl: Duration, timeout: Duration) -> Self {
        Self { client: TenancyServiceClient::new(channel), ttl, timeout, cache: Mutex::new(HashMap::new()) }
    }

    /// The brand of `host` (as sent: letter case, a port and a trailing dot are ignored); `None`
    /// for IP addresses, `localhost` and host names no brand uses.
    pub async fn resolve(&self, host: &str) -> Result<Option<HostBrand>, EdgeError> {
        let Some(host) = normalize(host) else { return Ok(None) };
        if let Some((hit, at)) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(host.as_ref())
            && at.elapsed() < self.ttl
        {
            return Ok(*hit);
        }
        // Boxed: the tonic call's future is large, and held inline it would grow every call's
        // future, cache hit or not.
        let host = host.into_owned();
        let resolved = Box::pin(self.fetch(&host)).await?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_HOSTS {
            cache.clear();
        }
        cache.insert(host, (resolved, Instant::now()));
        Ok(resolved)
    }

    /// Asks Tenancy (a cache miss).
    async fn fetch(&self, host: &str) -> Result<Option<HostBrand>, EdgeError> {
        let mut request = tonic::Request::new(pb::ResolveBrandByDomainRequest { host: host.to_owned() });
        request.set_timeout(self.timeout);
        let answer = tokio::time::timeout(self.timeout, self.client.clone().resolve_brand_by_domain(request))
            .await
            .map_err(|_| EdgeError::BrandLookup(tonic::Status::deadline_exceeded("ResolveBrandByDomain timed out")))?;
        match answer {
            Ok(answer) => {
                let answer = answer.into_inner();
                match (Uuid::parse_str(&answer.brand_id), Uuid::parse_str(&answer.organization_id)) {
                    (Ok(brand_id), Ok(organization_id)) => Ok(Some(HostBrand { brand_id, organization_id })),
                    _ => Err(EdgeError::BrandLookup(tonic::Status::internal(
                        "ResolveBrandByDomain answered malformed ids",
                    ))),
                }
            }
            Err(status) if matches!(status.code(), tonic::Code::NotFound | tonic::Code::InvalidArgument) => Ok(None),
            Err(status) => Err(EdgeError::BrandLookup(status)),
        }
    }
}

/// Lower case, without port and trailing dot; `None` when it cannot be a brand domain. Borrowed
/// unless the host has upper-case letters: this runs on every call that names a host.
fn normalize(host: &str) -> Option<Cow<'_, str>> {
    let host = host.trim();
    // IPv6 literals ("[::1]:8080") are never brand domains.
    if host.starts_with('[') {
        return None;
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_end_matches('.');
    let tld = name.rsplit('.').next().unwrap_or_default();
    let plausible = name.contains('.')
        && tld.bytes().any(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !plausible {
        return None;
    }
    Some(if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    })
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn only_plausible_domains_are_looked_up() {
        assert_eq!(normalize("Portal.Alpha.Example:443").as_deref(), Some("portal.alpha.example"));
        assert_eq!(normalize("app.urbanquill.com.").as_deref(), Some("app.urbanquill.com"));
        for skipped in ["127.0.0.1:8080", "localhost", "localhost:3000", "[::1]:80", "", "a b.com"] {
            assert_eq!(normalize(skipped), None, "{skipped}");
        }
    }
}
