//! Webhook endpoints and their signing secrets.
//!
//! A secret is sealed with the endpoint's own data key (wrapped by the key ring's active
//! key-encryption key, like mailbox tokens), so it can sign every request yet never sits in the
//! database in clear. Rotation keeps the previous secret, sealed the same way, until its grace
//! period ends; requests meanwhile carry both signatures.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sentra_crypto::{DataKey, KeyRing, WrappedKey};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row as _};
use uuid::Uuid;

use super::guard::AddressPolicy;
use super::{display_secret, new_secret};
use crate::error::CommError;
use crate::notifications::{Notice, notify};
use sentra_proto::sentra::comm::v1::NotificationKind;

/// A stored endpoint (secrets stay sealed in the table).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Id.
    pub id: Uuid,
    /// The tenant.
    pub organization: Uuid,
    /// Where events are POSTed.
    pub url: String,
    /// For people.
    pub description: String,
    /// The event filter (see [`super::selects`]).
    pub event_types: Vec<String>,
    /// Whether deliveries are made.
    pub enabled: bool,
    /// Why the server disabled it.
    pub disabled_reason: String,
    /// Since when every delivery has failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// When the previous secret stops signing.
    pub previous_expires: Option<DateTime<Utc>>,
    /// Who created it (notified when the server disables it).
    pub created_by: Uuid,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version (the etag).
    pub version: i64,
}

const COLUMNS: &str = "endpoint_id, organization_id, url, description, event_types, enabled, disabled_reason, \
                       failing_since, previous_secret_expires_at, created_by, created_at, updated_at, version";

fn endpoint(r: &PgRow) -> Result<Endpoint, sqlx::Error> {
    Ok(Endpoint {
        id: r.try_get("endpoint_id")?,
        organization: r.try_get("organization_id")?,
        url: r.try_get("url")?,
        description: r.try_get("description")?,
        event_types: r.try_get("event_types")?,
        enabled: r.try_get("enabled")?,
        disabled_reason: r.try_get("disabled_reason")?,
        failing_since: r.try_get("failing_since")?,
        previous_expires: r.try_get("previous_secret_expires_at")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version: r.try_get("version")?,
    })
}

/// A validated CreateWebhookEndpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Where to POST.
    pub url: reqwest::Url,
    /// For people.
    pub description: String,
    /// The filter.
    pub event_types: Vec<String>,
    /// Enabled at once.
    pub enabled: bool,
    /// Idempotency key.
    pub request_id: Option<Uuid>,
}

/// A validated UpdateWebhookEndpoint: `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    /// New URL.
    pub url: Option<reqwest::Url>,
    /// New description.
    pub description: Option<String>,
    /// New filter.
    pub event_types: Option<Vec<String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// The endpoints repository.
#[derive(Clone)]
pub struct Endpoints {
    pool: PgPool,
    ring: Arc<KeyRing>,
    policy: Arc<AddressPolicy>,
}

fn key_aad(endpoint: Uuid) -> Vec<u8> {
    format!("webhook:{endpoint}:key").into_bytes()
}

fn secret_aad(endpoint: Uuid, which: &str) -> Vec<u8> {
    format!("webhook:{endpoint}:{which}").into_bytes()
}

impl Endpoints {
    /// Endpoints in `pool`, secrets sealed through `ring`, URLs vetted by `policy`.
    pub fn new(pool: PgPool, ring: Arc<KeyRing>, policy: Arc<AddressPolicy>) -> Self {
        Self { pool, ring, policy }
    }

    /// The address policy requests obey.
    pub fn policy(&self) -> &Arc<AddressPolicy> {
        &self.policy
    }

    /// Refuses a URL whose host is, or only resolves to, a refused address. A name that does not
    /// resolve yet is accepted (its deliveries fail until it does).
    pub async fn vet_url(&self, url: &reqwest::Url) -> Result<(), CommError> {
        self.policy.check_url(url).map_err(|why| CommError::invalid("url", format!("refused: {why}")))?;
        let host = url.host_str().unwrap_or_default();
        if host.parse::<std::net::IpAddr>().is_err() && !host.starts_with('[') {
            let port = url.port_or_known_default().unwrap_or(443);
            if let Err(why) = self.policy.resolve(host, port).await
                && why.contains(" resolves to ")
            {
                return Err(CommError::invalid("url", format!("refused: {why}")));
            }
        }
        Ok(())
    }

    /// Creates an endpoint with a new secret; a retry with the same request id returns the same
    /// endpoint and secret.
    pub async fn create(
        &self,
        organization: Uuid,
        user: Uuid,
        new: NewEndpoint,
    ) -> Result<(Endpoint, String), CommError> {
        if let Some(request) = new.request_id
            && let Some(found) = self.by_request(organization, request).await?
        {
            return Ok(found);
        }
        self.vet_url(&new.url).await?;
        let id = Uuid::now_v7();
        let (key, wrapped) = self.ring.generate_data_key(&key_aad(id));
        let secret = new_secret();
        let inserted = sqlx::query(&format!(
            "INSERT INTO webhook_endpoints (endpoint_id, organization_id, url, description, event_types, enabled, \
             kek_id, wrapped_key, secret, created_by, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11) ON CONFLICT (organization_id, request_id) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(organization)
        .bind(new.url.as_str())
        .bind(&new.description)
        .bind(&new.event_types)
        .bind(new.enabled)
        .bind(&wrapped.kek_id)
        .bind(&wrapped.ciphertext)
        .bind(key.seal(&secret, &secret_aad(id, "secret")))
        .bind(user)
        .bind(new.request_id)
        .fetch_optional(&self.pool)
        .await?;
        match inserted {
            Some(row) => Ok((endpoint(&row)?, display_secret(&secret))),
            // A concurrent retry won the insert: answer what it answered.
            None => match new.request_id {
                Some(request) => {
                    self.by_request(organization, request).await?.ok_or(CommError::NotFound("webhook endpoint"))
                }
                None => Err(CommError::corrupt("endpoint insert without a request id conflicted")),
            },
        }
    }

    async fn by_request(&self, organization: Uuid, request: Uuid) -> Result<Option<(Endpoint, String)>, CommError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE organization_id = $1 AND request_id = $2"
        ))
        .bind(organization)
        .bind(request)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let found = endpoint(&row)?;
        let (key, secret, _) = self.sealed(found.id).await?;
        let secret = key.open(&secret, &secret_aad(found.id, "secret")).map_err(CommError::Crypto)?;
        Ok(Some((found, display_secret(&secret))))
    }

    /// The endpoint's data key, its sealed secret, and the sealed previous one while its grace
    /// period lasts.
    async fn sealed(&self, id: Uuid) -> Result<(DataKey, Vec<u8>, Option<Vec<u8>>), CommError> {
        let row = sqlx::query(
            "SELECT kek_id, wrapped_key, secret, CASE WHEN previous_secret_expires_at > now() THEN previous_secret \
             END AS previous_secret FROM webhook_endpoints WHERE endpoint_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(CommError::NotFound("webhook endpoint"))?;
        let wrapped = WrappedKey { kek_id: row.try_get("kek_id")?, ciphertext: row.try_get("wrapped_key")? };
        let key = self.ring.unwrap(&wrapped, &key_aad(id)).map_err(CommError::Crypto)?;
        Ok((key, row.try_get("secret")?, row.try_get("previous_secret")?))
    }

    /// The keys that sign requests to `id` now: the current secret, and the previous one during
    /// its grace period.
    pub async fn signing_keys(&self, id: Uuid) -> Result<Vec<Vec<u8>>, CommError> {
        let (key, secret, previous) = self.sealed(id).await?;
        let mut keys = vec![key.open(&secret, &secret_aad(id, "secret")).map_err(CommError::Crypto)?.to_vec()];
        if let Some(previous) = previous {
            keys.push(key.open(&previous, &secret_aad(id, "previous")).map_err(CommError::Crypto)?.to_vec());
        }
        Ok(keys)
    }

    /// One endpoint of `organization`.
    pub async fn get(&self, organization: Uuid, id: Uuid) -> Result<Endpoint, CommError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE organization_id = $1 AND endpoint_id = $2"
        ))
        .bind(organization)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(CommError::NotFound("webhook endpoint"))?;
        Ok(endpoint(&row)?)
    }

    /// A page of `organization`'s endpoints after `after`, oldest first (ids are UUIDv7).
    pub async fn list(&self, organization: Uuid, after: Option<Uuid>, limit: i64) -> Result<Vec<Endpoint>, CommError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM webhook_endpoints WHERE organization_id = $1 AND ($2::uuid IS NULL OR endpoint_id \
             > $2) ORDER BY endpoint_id LIMIT $3"
        ))
        .bind(organization)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(endpoint).collect::<Result<_, _>>()?)
    }

    /// Applies `patch` when `version` is still current (else [`CommError::Stale`]). Enabling
    /// clears the server's reason and the failure streak.
    pub async fn update(
        &self,
        organization: Uuid,
        id: Uuid,
        version: i64,
        patch: EndpointPatch,
    ) -> Result<Endpoint, CommError> {
        if let Some(url) = &patch.url {
            self.vet_url(url).await?;
        }
        let row = sqlx::query(&format!(
            "UPDATE webhook_endpoints SET url = coalesce($4, url), description = coalesce($5, description), \
             event_types = coalesce($6, event_types), enabled = coalesce($7, enabled), disabled_reason = CASE WHEN \
             $7 THEN '' ELSE disabled_reason END, failing_since = CASE WHEN $7 THEN NULL ELSE failing_since END, \
             version = version + 1, updated_at = now() WHERE organization_id = $1 AND endpoint_id = $2 AND version \
             = $3 RETURNING {COLUMNS}"
        ))
        .bind(organization)
        .bind(id)
        .bind(version)
        .bind(patch.url.as_ref().map(reqwest::Url::as_str))
        .bind(patch.description)
        .bind(patch.event_types)
        .bind(patch.enabled)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(endpoint(&row)?),
            None => {
                self.get(organization, id).await?;
                Err(CommError::Stale)
            }
        }
    }

    /// Deletes an endpoint with its deliveries; `version`, when given, must be current.
    pub async fn delete(&self, organization: Uuid, id: Uuid, version: Option<i64>) -> Result<(), CommError> {
        let deleted = sqlx::query(
            "DELETE FROM webhook_endpoints WHERE organization_id = $1 AND endpoint_id = $2 AND ($3::bigint IS NULL \
             OR version = $3)",
        )
        .bind(organization)
        .bind(id)
        .bind(version)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if deleted == 0 {
            self.get(organization, id).await?;
            return Err(CommError::Stale);
        }
        Ok(())
    }

    /// Replaces the secret; the old one keeps signing for `grace` (zero drops it at once).
    pub async fn rotate(&self, organization: Uuid, id: Uuid, grace: Duration) -> Result<(Endpoint, String), CommError> {
        self.get(organization, id).await?;
        let (key, current, _) = self.sealed(id).await?;
        let old = key.open(&current, &secret_aad(id, "secret")).map_err(CommError::Crypto)?;
        let secret = new_secret();
        let expires = (!grace.is_zero())
            .then(|| Utc::now() + chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::days(1)));
        let row = sqlx::query(&format!(
            "UPDATE webhook_endpoints SET secret = $3, previous_secret = $4, previous_secret_expires_at = $5, \
             version = version + 1, updated_at = now() WHERE organization_id = $1 AND endpoint_id = $2 RETURNING \
             {COLUMNS}"
        ))
        .bind(organization)
        .bind(id)
        .bind(key.seal(&secret, &secret_aad(id, "secret")))
        .bind(expires.map(|_| key.seal(&old, &secret_aad(id, "previous"))))
        .bind(expires)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(CommError::NotFound("webhook endpoint"))?;
        Ok((endpoint(&row)?, display_secret(&secret)))
    }

    /// Re-wraps every endpoint's data key not under the active key-encryption key; returns how
    /// many moved (see [`crate::pg::rewrap_table`]).
    pub async fn rewrap_all(&self) -> Result<u64, CommError> {
        crate::pg::rewrap_table(&self.pool, &self.ring, "webhook_endpoints", "endpoint_id", key_aad).await
    }
}

/// Disables `endpoint` for `reason`, gives up its pending deliveries and notifies whoever
/// created it; does nothing when it is already disabled.
pub async fn disable(tx: &mut PgConnection, endpoint: Uuid, reason: &str) -> Result<(), sqlx::Error> {
    let row = sqlx::query(
        "UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, version = version + 1, updated_at = \
         now() WHERE endpoint_id = $1 AND enabled RETURNING organization_id, created_by, url",
    )
    .bind(endpoint)
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(()) };
    sqlx::query("UPDATE webhook_deliveries SET status = 'failed', lease_until = NULL WHERE endpoint_id = $1 AND status = 'pending'")
        .bind(endpoint)
        .execute(&mut *tx)
        .await?;
    let url: String = row.try_get("url")?;
    let notice = Notice {
        user: row.try_get("created_by")?,
        kind: NotificationKind::WebhookDisabled,
        title: format!("Webhook {url} was disabled: {reason}"),
        subject: format!("webhooks/{endpoint}"),
        brand: None,
    };
    notify(tx, row.try_get("organization_id")?, Uuid::now_v7(), notice).await
}
