//! Brand aliases (the seed's EmailAlias): addresses a brand sends from, each sent through a
//! connected mailbox and usable only once that mailbox's provider lists it as a verified
//! send-as address. One alias per brand may be the default, for automated mail.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use crate::error::CommError;
use crate::mailboxes::{MailboxRecord, Mailboxes};

/// A stored alias: the contract's `EmailAlias` in storage types.
#[derive(Debug, Clone)]
#[allow(missing_docs, reason = "the fields are the contract's, documented there")]
pub struct AliasRecord {
    pub alias_id: Uuid,
    pub brand_id: Uuid,
    /// Address (lower case).
    pub email_address: String,
    /// Display name.
    pub display_name: String,
    /// The sending mailbox.
    pub mailbox_id: Uuid,
    /// In the mailbox's verified send-as list when last checked.
    pub verified: bool,
    /// When last verified.
    pub verified_at: Option<DateTime<Utc>>,
    /// The brand's default.
    pub is_default: bool,
}

/// A syntactically plausible address, lower-cased (the provider has the last word).
pub fn address(field: &'static str, value: &str) -> Result<String, CommError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(CommError::invalid(field, "is required"));
    }
    let valid = value.len() <= 254
        && !value.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && domain.contains('.')
        });
    if !valid {
        return Err(CommError::invalid(field, "is not an email address"));
    }
    Ok(value.to_lowercase())
}

const COLUMNS: &str = "alias_id, brand_id, email_address, display_name, mailbox_id, verified, verified_at, is_default";

fn record(row: &sqlx::postgres::PgRow) -> Result<AliasRecord, sqlx::Error> {
    Ok(AliasRecord {
        alias_id: row.try_get("alias_id")?,
        brand_id: row.try_get("brand_id")?,
        email_address: row.try_get("email_address")?,
        display_name: row.try_get("display_name")?,
        mailbox_id: row.try_get("mailbox_id")?,
        verified: row.try_get("verified")?,
        verified_at: row.try_get("verified_at")?,
        is_default: row.try_get("is_default")?,
    })
}

/// Brand aliases.
#[derive(Clone)]
pub struct Aliases {
    pool: PgPool,
    mailboxes: Mailboxes,
}

impl Aliases {
    /// Aliases in `pool`, verified through `mailboxes`.
    pub fn new(pool: PgPool, mailboxes: Mailboxes) -> Self {
        Self { pool, mailboxes }
    }

    async fn verified_by_provider(&self, mailbox: Uuid, address: &str) -> Result<bool, CommError> {
        let token = self.mailboxes.access_token(mailbox).await?;
        let list = self.mailboxes.gmail().send_as(&token).await.map_err(CommError::Provider)?;
        Ok(list.iter().any(|s| s.usable() && s.send_as_email.eq_ignore_ascii_case(address)))
    }

    /// Adds an alias sent through `mailbox`, checked against its send-as list now.
    pub async fn create(
        &self,
        organization: Uuid,
        brand: Uuid,
        address: &str,
        display_name: &str,
        mailbox: &MailboxRecord,
        is_default: bool,
    ) -> Result<AliasRecord, CommError> {
        let verified = self.verified_by_provider(mailbox.mailbox_id, address).await?;
        let mut tx = self.pool.begin().await?;
        if is_default {
            sqlx::query("UPDATE email_aliases SET is_default = false WHERE brand_id = $1 AND organization_id = $2")
                .bind(brand)
                .bind(organization)
                .execute(&mut *tx)
                .await?;
        }
        let row = sqlx::query(&format!(
            "INSERT INTO email_aliases (alias_id, organization_id, brand_id, email_address, display_name, mailbox_id, \
             verified, verified_at, is_default) VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 THEN now() END, $8) \
             ON CONFLICT (brand_id, email_address) DO NOTHING RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(organization)
        .bind(brand)
        .bind(address)
        .bind(display_name)
        .bind(mailbox.mailbox_id)
        .bind(verified)
        .bind(is_default)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(CommError::AlreadyExists("alias"))?;
        tx.commit().await?;
        Ok(record(&row)?)
    }

    /// A brand's aliases, default first.
    pub async fn of_brand(&self, organization: Uuid, brand: Uuid) -> Result<Vec<AliasRecord>, CommError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM email_aliases WHERE organization_id = $1 AND brand_id = $2 ORDER BY is_default \
             DESC, email_address"
        ))
        .bind(organization)
        .bind(brand)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }

    /// An alias of the organization.
    pub async fn get(&self, organization: Uuid, alias: Uuid) -> Result<Option<AliasRecord>, CommError> {
        let row =
            sqlx::query(&format!("SELECT {COLUMNS} FROM email_aliases WHERE organization_id = $1 AND alias_id = $2"))
                .bind(organization)
                .bind(alias)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.as_ref().map(record).transpose()?)
    }

    /// Checks the alias against its mailbox's send-as list again.
    pub async fn verify(&self, alias: &AliasRecord) -> Result<AliasRecord, CommError> {
        let verified = self.verified_by_provider(alias.mailbox_id, &alias.email_address).await?;
        let row = sqlx::query(&format!(
            "UPDATE email_aliases SET verified = $2, verified_at = CASE WHEN $2 THEN now() ELSE verified_at END WHERE \
             alias_id = $1 RETURNING {COLUMNS}"
        ))
        .bind(alias.alias_id)
        .bind(verified)
        .fetch_one(&self.pool)
        .await?;
        Ok(record(&row)?)
    }
}
