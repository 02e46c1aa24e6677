//! Connected mailboxes: the OAuth 2.0 consent (authorization code with PKCE and a signed,
//! expiring `state`), tokens sealed with the mailbox's own data key, lazy refresh, and key
//! rotation.
//!
//! Tokens are never logged, returned or put in events: they exist in plaintext only inside
//! [`Mailboxes::access_token`] and the provider call that uses them.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac as _};
use rand::RngCore as _;
use sentra_crypto::{DataKey, KeyRing, WrappedKey};
use sha2::{Digest as _, Sha256};
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use crate::error::CommError;
use crate::gmail::{Gmail, GmailError};

/// How long a consent may take.
pub const CONSENT_TTL: Duration = Duration::from_secs(10 * 60);
/// Access tokens closer than this to expiry are refreshed before use.
const REFRESH_MARGIN_SECS: i64 = 60;

/// A mailbox as the API shows it (no secrets): the stored columns of the contract's `Mailbox`.
#[derive(Debug, Clone)]
#[allow(missing_docs, reason = "the fields are the contract's, documented there")]
pub struct MailboxRecord {
    pub mailbox_id: Uuid,
    pub organization_id: Uuid,
    pub user_id: Uuid,
    pub email_address: String,
    pub provider: String,
    /// Stored stage (`pending`, `listing`, `importing`, `active`, `needs_reauth`).
    pub stage: String,
    /// Set while throttled.
    pub throttled_until: Option<DateTime<Utc>>,
    /// Failures in a row.
    pub consecutive_failures: i32,
    /// Last failure.
    pub last_error: Option<String>,
    /// Last completed pass.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// Connected at.
    pub created_at: DateTime<Utc>,
}

/// Failures in a row after which a mailbox shows FAILED (it is still retried, with backoff).
pub const FAILED_AFTER: i32 = 5;

const SELECT: &str = "SELECT mb.mailbox_id, mb.organization_id, mb.user_id, mb.email_address, mb.provider, \
     mb.stage, mb.throttled_until, mb.consecutive_failures, mb.last_error, mb.last_synced_at, mb.created_at FROM \
     mailboxes mb";

fn record(row: &sqlx::postgres::PgRow) -> Result<MailboxRecord, sqlx::Error> {
    Ok(MailboxRecord {
        mailbox_id: row.try_get("mailbox_id")?,
        organization_id: row.try_get("organization_id")?,
        user_id: row.try_get("user_id")?,
        email_address: row.try_get("email_address")?,
        provider: row.try_get("provider")?,
        stage: row.try_get("stage")?,
        throttled_until: row.try_get("throttled_until")?,
        consecutive_failures: row.try_get("consecutive_failures")?,
        last_error: row.try_get("last_error")?,
        last_synced_at: row.try_get("last_synced_at")?,
        created_at: row.try_get("created_at")?,
    })
}

fn key_aad(mailbox: Uuid) -> Vec<u8> {
    mailbox.as_bytes().to_vec()
}

fn token_aad(mailbox: Uuid, which: &str) -> Vec<u8> {
    let mut aad = mailbox.as_bytes().to_vec();
    aad.extend_from_slice(which.as_bytes());
    aad
}

/// Connected mailboxes and their tokens.
#[derive(Clone)]
pub struct Mailboxes {
    pool: PgPool,
    ring: Arc<KeyRing>,
    gmail: Gmail,
    state_key: Arc<[u8]>,
}

impl Mailboxes {
    /// Mailboxes in `pool`, tokens sealed through `ring`, `state` values signed with `state_key`.
    pub fn new(pool: PgPool, ring: Arc<KeyRing>, gmail: Gmail, state_key: Arc<[u8]>) -> Self {
        Self { pool, ring, gmail, state_key }
    }

    /// The provider client.
    pub fn gmail(&self) -> &Gmail {
        &self.gmail
    }

    fn sign(&self, payload: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length.
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.state_key).expect("HMAC takes any key length");
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }

    /// Starts a consent for `user` from a page of `origin`: remembers a PKCE verifier and the
    /// redirect URI, and returns the consent URL and the signed state
    /// (`base64url(state id ‖ expiry) . base64url(HMAC)`).
    pub async fn start_connection(
        &self,
        organization: Uuid,
        user: Uuid,
        origin: Option<&str>,
    ) -> Result<(String, String), CommError> {
        let redirect = self.gmail.redirect_uri(origin).ok_or_else(|| {
            CommError::Precondition(
                "ORIGIN_REQUIRED",
                "start the connection from the dashboard: the callback address comes from the page's origin".into(),
            )
        })?;
        let mut verifier_bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut verifier_bytes);
        let verifier = URL_SAFE_NO_PAD.encode(verifier_bytes);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let state_id = Uuid::new_v4();
        let expires = Utc::now() + CONSENT_TTL;
        sqlx::query("DELETE FROM mailbox_connections WHERE expires_at < now()").execute(&self.pool).await?;
        sqlx::query(
            "INSERT INTO mailbox_connections (state_id, organization_id, user_id, code_verifier, redirect_uri, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(state_id)
        .bind(organization)
        .bind(user)
        .bind(&verifier)
        .bind(&redirect)
        .bind(expires)
        .execute(&self.pool)
        .await?;
        let mut payload = state_id.as_bytes().to_vec();
        payload.extend_from_slice(&expires.timestamp().to_be_bytes());
        let state = format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(self.sign(&payload)));
        let url = self.gmail.authorization_url(&state, &challenge, &redirect).map_err(CommError::Provider)?;
        Ok((url, state))
    }

    fn verify_state(&self, state: &str) -> Result<Uuid, CommError> {
        let bad = || CommError::invalid("state", "is not a state this service issued, or it expired");
        let (payload, signature) = state.split_once('.').ok_or_else(bad)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| bad())?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| bad())?;
        #[allow(clippy::expect_used)]
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.state_key).expect("HMAC takes any key length");
        mac.update(&payload);
        mac.verify_slice(&signature).map_err(|_| bad())?;
        let (id, expiry) = payload.split_at_checked(16).ok_or_else(bad)?;
        let expiry = i64::from_be_bytes(expiry.try_into().map_err(|_| bad())?);
        if expiry < Utc::now().timestamp() {
            return Err(bad());
        }
        Uuid::from_slice(id).map_err(|_| bad())
    }

    /// Finishes a consent: the state must be this user's and unexpired; exchanges the code,
    /// reads the profile, stores sealed tokens, and makes the mailbox due for sync. The same
    /// address connected again keeps its mail and resumes.
    pub async fn complete_connection(
        &self,
        organization: Uuid,
        user: Uuid,
        code: &str,
        state: &str,
    ) -> Result<MailboxRecord, CommError> {
        let state_id = self.verify_state(state)?;
        // Single use: the row goes whatever happens next.
        let pending: Option<(String, String)> = sqlx::query_as(
            "DELETE FROM mailbox_connections WHERE state_id = $1 AND organization_id = $2 AND user_id = $3 AND \
             expires_at > now() RETURNING code_verifier, redirect_uri",
        )
        .bind(state_id)
        .bind(organization)
        .bind(user)
        .fetch_optional(&self.pool)
        .await?;
        let (verifier, redirect) =
            pending.ok_or_else(|| CommError::invalid("state", "is not a state this service issued, or it expired"))?;
        let tokens = self.gmail.exchange_code(code, &verifier, &redirect).await.map_err(|e| match e {
            GmailError::Grant(_) => CommError::invalid("code", "the provider refused the authorization code"),
            other => CommError::Provider(other),
        })?;
        let refresh = tokens.refresh_token.clone().ok_or_else(|| {
            CommError::Precondition("NO_REFRESH_TOKEN", "the provider granted no offline access; connect again".into())
        })?;
        let profile = self.gmail.profile(&tokens.access_token).await.map_err(CommError::Provider)?;
        let address = profile.email_address.trim().to_lowercase();

        let mut tx = self.pool.begin().await?;
        let existing: Option<Uuid> = sqlx::query_scalar(
            "SELECT mailbox_id FROM mailboxes WHERE organization_id = $1 AND user_id = $2 AND email_address = $3 FOR \
             UPDATE",
        )
        .bind(organization)
        .bind(user)
        .bind(&address)
        .fetch_optional(&mut *tx)
        .await?;
        let mailbox_id = existing.unwrap_or_else(Uuid::now_v7);
        let (key, wrapped) = self.ring.generate_data_key(&key_aad(mailbox_id));
        let refresh_ct = key.seal(refresh.as_bytes(), &token_aad(mailbox_id, "refresh"));
        let access_ct = key.seal(tokens.access_token.as_bytes(), &token_aad(mailbox_id, "access"));
        let expires = Utc::now() + chrono::Duration::seconds(tokens.expires_in.max(0));
        if existing.is_some() {
            sqlx::query(
                // History ids only grow: a profile behind the stored one is another mailbox behind
                // the same address (restored, migrated), so it gets a full sync (which imports
                // nothing twice).
                "UPDATE mailboxes SET kek_id = $2, wrapped_key = $3, refresh_token = $4, access_token = $5, \
                 access_expires_at = $6, stage = CASE WHEN history_id > $7 THEN 'pending' WHEN stage = \
                 'needs_reauth' THEN (CASE WHEN history_id IS NULL THEN 'pending' ELSE 'active' END) ELSE stage END, \
                 list_page_token = CASE WHEN history_id > $7 THEN NULL ELSE list_page_token END, due_at = now(), \
                 consecutive_failures = 0, last_error = NULL WHERE mailbox_id = $1",
            )
            .bind(mailbox_id)
            .bind(&wrapped.kek_id)
            .bind(&wrapped.ciphertext)
            .bind(&refresh_ct)
            .bind(&access_ct)
            .bind(expires)
            .bind(i64::try_from(profile.history_id).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO mailboxes (mailbox_id, organization_id, user_id, email_address, kek_id, wrapped_key, \
                 refresh_token, access_token, access_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(mailbox_id)
            .bind(organization)
            .bind(user)
            .bind(&address)
            .bind(&wrapped.kek_id)
            .bind(&wrapped.ciphertext)
            .bind(&refresh_ct)
            .bind(&access_ct)
            .bind(expires)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.get(organization, mailbox_id).await?.ok_or(CommError::NotFound("mailbox"))
    }

    /// A mailbox of the organization.
    pub async fn get(&self, organization: Uuid, mailbox: Uuid) -> Result<Option<MailboxRecord>, CommError> {
        let row = sqlx::query(&format!("{SELECT} WHERE mb.organization_id = $1 AND mb.mailbox_id = $2"))
            .bind(organization)
            .bind(mailbox)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    /// A user's mailboxes, oldest first.
    pub async fn of_user(&self, organization: Uuid, user: Uuid) -> Result<Vec<MailboxRecord>, CommError> {
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE mb.organization_id = $1 AND mb.user_id = $2 ORDER BY mb.created_at, mb.mailbox_id"
        ))
        .bind(organization)
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// Makes a mailbox due now.
    pub async fn make_due(&self, mailbox: Uuid) -> Result<(), CommError> {
        sqlx::query("UPDATE mailboxes SET due_at = now() WHERE mailbox_id = $1")
            .bind(mailbox)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn data_key(
        &self,
        mailbox: Uuid,
    ) -> Result<(DataKey, Vec<u8>, Option<Vec<u8>>, Option<DateTime<Utc>>), CommError> {
        let row = sqlx::query(
            "SELECT kek_id, wrapped_key, refresh_token, access_token, access_expires_at FROM mailboxes WHERE \
             mailbox_id = $1",
        )
        .bind(mailbox)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(CommError::NotFound("mailbox"))?;
        let wrapped = WrappedKey { kek_id: row.try_get("kek_id")?, ciphertext: row.try_get("wrapped_key")? };
        let key = self.ring.unwrap(&wrapped, &key_aad(mailbox)).map_err(CommError::Crypto)?;
        Ok((key, row.try_get("refresh_token")?, row.try_get("access_token")?, row.try_get("access_expires_at")?))
    }

    /// A usable access token: the stored one unless it expires within a minute, else a fresh one
    /// from the refresh token (stored sealed). A refused grant marks the mailbox NEEDS_REAUTH;
    /// network errors and 5xx leave it as it is.
    pub async fn access_token(&self, mailbox: Uuid) -> Result<String, CommError> {
        let (key, refresh_ct, access_ct, expires) = self.data_key(mailbox).await?;
        if let (Some(access), Some(expires)) = (access_ct, expires)
            && expires > Utc::now() + chrono::Duration::seconds(REFRESH_MARGIN_SECS)
        {
            let token = key.open(&access, &token_aad(mailbox, "access")).map_err(CommError::Crypto)?;
            return String::from_utf8(token.to_vec()).map_err(|_| CommError::corrupt("access token is not UTF-8"));
        }
        let refresh = key.open(&refresh_ct, &token_aad(mailbox, "refresh")).map_err(CommError::Crypto)?;
        let refresh =
            String::from_utf8(refresh.to_vec()).map_err(|_| CommError::corrupt("refresh token is not UTF-8"))?;
        match self.gmail.refresh(&refresh).await {
            Ok(tokens) => {
                let sealed = key.seal(tokens.access_token.as_bytes(), &token_aad(mailbox, "access"));
                let expires = Utc::now() + chrono::Duration::seconds(tokens.expires_in.max(0));
                sqlx::query("UPDATE mailboxes SET access_token = $2, access_expires_at = $3 WHERE mailbox_id = $1")
                    .bind(mailbox)
                    .bind(&sealed)
                    .bind(expires)
                    .execute(&self.pool)
                    .await?;
                Ok(tokens.access_token)
            }
            Err(GmailError::Grant(reason)) => {
                self.needs_reauth(mailbox, &reason).await?;
                Err(CommError::Provider(GmailError::Grant(reason)))
            }
            Err(other) => Err(CommError::Provider(other)),
        }
    }

    /// Forgets the access token (the API refused it), so the next call refreshes.
    pub async fn drop_access_token(&self, mailbox: Uuid) -> Result<(), CommError> {
        sqlx::query("UPDATE mailboxes SET access_token = NULL, access_expires_at = NULL WHERE mailbox_id = $1")
            .bind(mailbox)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks the mailbox NEEDS_REAUTH and, in the same transaction, records the event
    /// `comm.mailbox.needs_reauth` in the outbox, so its owner is told (notifications) exactly
    /// once per refused grant.
    async fn needs_reauth(&self, mailbox: Uuid, reason: &str) -> Result<(), CommError> {
        let mut tx = self.pool.begin().await?;
        let changed: Option<(Uuid, Uuid, String)> = sqlx::query_as(
            "UPDATE mailboxes SET stage = 'needs_reauth', access_token = NULL, access_expires_at = NULL, last_error \
             = $2 WHERE mailbox_id = $1 AND stage <> 'needs_reauth' RETURNING organization_id, user_id, email_address",
        )
        .bind(mailbox)
        .bind(format!("the provider refused the grant ({reason}); connect the mailbox again"))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((organization, user, address)) = changed {
            tracing::warn!(%mailbox, reason, "Mailbox needs re-authorisation.");
            sqlx::query("INSERT INTO sync_log (mailbox_id, kind, detail) VALUES ($1, 'needs_reauth', $2)")
                .bind(mailbox)
                .bind(reason)
                .execute(&mut *tx)
                .await?;
            let payload = serde_json::json!({
                "mailbox_id": mailbox,
                "user_id": user,
                "email_address": address,
                "reason": reason,
            });
            sqlx::query(
                "INSERT INTO outbox (event_id, routing_key, tenant_id, aggregate_id, payload, metadata) VALUES ($1, \
                 'comm.mailbox.needs_reauth', $2, $3, $4, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(organization)
            .bind(mailbox)
            .bind(payload)
            .bind(serde_json::json!({ "actor": "system:comm" }))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Re-wraps every data key not under the active key-encryption key; returns how many moved
    /// (see [`crate::pg::rewrap_table`]).
    pub async fn rewrap_all(&self) -> Result<u64, CommError> {
        crate::pg::rewrap_table(&self.pool, &self.ring, "mailboxes", "mailbox_id", key_aad).await
    }
}
