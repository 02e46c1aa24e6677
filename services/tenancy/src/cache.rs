//! Redis cache of domain -> brand resolutions, the hottest read of the mesh (every white-label
//! request resolves its host). Entries expire after a TTL and are deleted on every brand change.
//! Redis being down never fails a resolution: the cache is skipped and PostgreSQL answers.

use std::time::Duration;

use fred::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a resolution returns: the brand's public face.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct ResolvedBrand {
    /// Brand id.
    pub id: Uuid,
    /// Owning organization.
    pub organization_id: Uuid,
    /// Its domain.
    pub domain: String,
    /// Name shown to clients.
    pub display_name: String,
    /// Logo URL.
    pub logo_url: String,
    /// Primary colour.
    pub primary_color: String,
    /// Support email.
    pub support_email: String,
}

/// The cache.
#[derive(Clone)]
pub struct BrandCache {
    client: Client,
    prefix: String,
    ttl: Duration,
}

impl BrandCache {
    /// A cache writing keys `<prefix>brand:domain:<domain>`.
    pub fn new(client: Client, prefix: &str, ttl: Duration) -> Self {
        Self { client, prefix: prefix.to_owned(), ttl }
    }

    fn key(&self, domain: &str) -> String {
        format!("{}brand:domain:{domain}", self.prefix)
    }

    /// The cached resolution, if any (a Redis failure counts as a miss).
    pub async fn get(&self, domain: &str) -> Option<ResolvedBrand> {
        match self.client.get::<Option<String>, _>(self.key(domain)).await {
            Ok(Some(json)) => serde_json::from_str(&json).ok(),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(%error, "Brand cache unavailable; reading PostgreSQL.");
                None
            }
        }
    }

    /// Stores a resolution.
    pub async fn put(&self, brand: &ResolvedBrand) {
        let Ok(json) = serde_json::to_string(brand) else { return };
        let ttl = i64::try_from(self.ttl.as_secs().max(1)).unwrap_or(300);
        let result: Result<(), _> =
            self.client.set(self.key(&brand.domain), json, Some(Expiration::EX(ttl)), None, false).await;
        if let Err(error) = result {
            tracing::warn!(%error, "Brand cache write failed.");
        }
    }

    /// Forgets the resolutions of `domains` (old and new domain on a change).
    pub async fn invalidate(&self, domains: &[&str]) {
        let keys: Vec<String> = domains.iter().map(|d| self.key(d)).collect();
        if let Err(error) = self.client.del::<i64, _>(keys).await {
            // A stale entry lives at most one TTL; log loudly so operators see it.
            tracing::error!(%error, "Brand cache invalidation failed; entries expire with their TTL.");
        }
    }
}
