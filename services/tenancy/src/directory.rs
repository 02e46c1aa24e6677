//! Organizations, brands, users, brand access and portal identities: the rules and their SQL.
//!
//! Every operation takes the caller's [`Principal`] and works inside its organization only: a
//! row of another organization is indistinguishable from a missing row (`NOT_FOUND`). Brand-level
//! rights are checked after the brand is found in the caller's organization.

use chrono::{DateTime, Utc};
use sentra_auth::{OrgRole, Principal, permissions as perm};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::cache::{BrandCache, ResolvedBrand};
use crate::commands::{
    BrandSettings, CreateBrand, GrantAccess, NewPortalUser, NewUser, Page, SignUp, UpdateBrand, UpdateOrganization,
};
use crate::error::TenancyError;
use crate::outbox;
use crate::passwords::Passwords;
use crate::sessions::{AuthSettings, bump_session, new_token, revoke_subject, token_hash};

type Result<T> = std::result::Result<T, TenancyError>;

/// An organization row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Organization {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Version (etag).
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A brand row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Brand {
    /// Id.
    pub id: Uuid,
    /// Owning organization.
    pub organization_id: Uuid,
    /// Internal name.
    pub name: String,
    /// Domain.
    pub domain: String,
    /// Client-facing name.
    pub display_name: String,
    /// Logo URL.
    pub logo_url: String,
    /// Colour.
    pub primary_color: String,
    /// Support email.
    pub support_email: String,
    /// Invoice prefix.
    pub invoice_prefix: String,
    /// Default currency.
    pub default_currency: String,
    /// Time zone.
    pub time_zone: String,
    /// Sender addresses.
    pub email_aliases: Vec<String>,
    /// When archived.
    pub archived_at: Option<DateTime<Utc>>,
    /// Version (etag).
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

impl Brand {
    fn settings(&self) -> BrandSettings {
        BrandSettings {
            name: self.name.clone(),
            domain: self.domain.clone(),
            display_name: self.display_name.clone(),
            logo_url: self.logo_url.clone(),
            primary_color: self.primary_color.clone(),
            support_email: self.support_email.clone(),
            invoice_prefix: self.invoice_prefix.clone(),
            default_currency: self.default_currency.clone(),
            time_zone: self.time_zone.clone(),
            email_aliases: self.email_aliases.clone(),
        }
    }

    fn event(&self) -> serde_json::Value {
        json!({
            "brand_id": self.id, "organization_id": self.organization_id, "name": self.name,
            "domain": self.domain, "display_name": self.display_name, "invoice_prefix": self.invoice_prefix,
            "default_currency": self.default_currency, "time_zone": self.time_zone,
            "archived": self.archived_at.is_some(), "version": self.version,
        })
    }
}

/// A staff user row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    /// Id.
    pub id: Uuid,
    /// Organization.
    pub organization_id: Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// `owner`, `admin` or `member`.
    pub org_role: String,
    /// `invited`, `active` or `deactivated`.
    pub state: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A brand access row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Access {
    /// User.
    pub user_id: Uuid,
    /// Brand.
    pub brand_id: Uuid,
    /// Role name.
    pub role: String,
    /// Last granted or changed.
    pub updated_at: DateTime<Utc>,
}

/// A portal user row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PortalUser {
    /// Id.
    pub id: Uuid,
    /// Organization.
    pub organization_id: Uuid,
    /// Brand.
    pub brand_id: Uuid,
    /// Sales client.
    pub client_id: Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

const BRAND_COLUMNS: &str = "id, organization_id, name, domain, display_name, logo_url, primary_color, support_email,
    invoice_prefix, default_currency, time_zone, email_aliases, archived_at, version, created_at, updated_at";
const USER_COLUMNS: &str = "id, organization_id, email, display_name, org_role, state, created_at";

/// True when `error` is a unique violation of `constraint`.
fn violates(error: &sqlx::Error, constraint: &str) -> bool {
    error.as_database_error().is_some_and(|e| e.is_unique_violation() && e.constraint() == Some(constraint))
}

fn check_version(expected: Option<i64>, actual: i64) -> Result<()> {
    match expected {
        Some(v) if v != actual => Err(TenancyError::StaleEtag),
        _ => Ok(()),
    }
}

/// Claims an idempotency key inside `conn`'s transaction; returns the resource of an earlier
/// request with the same key, if there was one.
async fn claim_request(
    conn: &mut PgConnection,
    scope: &str,
    request_id: Option<&str>,
    resource: Uuid,
) -> Result<Option<Uuid>> {
    let Some(request_id) = request_id else { return Ok(None) };
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (scope, request_id, resource_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(scope)
    .bind(request_id)
    .bind(resource)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(None);
    }
    let earlier: (Uuid,) =
        sqlx::query_as("SELECT resource_id FROM idempotency_keys WHERE scope = $1 AND request_id = $2")
            .bind(scope)
            .bind(request_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(Some(earlier.0))
}

/// The directory of organizations and their people.
#[derive(Clone)]
pub struct Directory {
    pool: PgPool,
    cache: BrandCache,
    settings: AuthSettings,
    passwords: Passwords,
}

impl Directory {
    /// A directory over the tenancy schema, hashing new passwords with `passwords`.
    pub fn new(pool: PgPool, cache: BrandCache, settings: AuthSettings, passwords: Passwords) -> Self {
        Self { pool, cache, settings, passwords }
    }

    // ---- organizations ------------------------------------------------------------------

    /// Creates an organization and its owner.
    pub async fn sign_up(&self, cmd: SignUp) -> Result<(Organization, User)> {
        let hash = self.passwords.hash(cmd.password.clone()).await?;
        let org_id = Uuid::now_v7();
        let user_id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        if let Some(earlier) = claim_request(&mut tx, "signup", cmd.request_id.as_deref(), org_id).await? {
            drop(tx);
            let org = self.organization(earlier).await?;
            let owner: User = sqlx::query_as(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE organization_id = $1 AND org_role = 'owner' ORDER BY created_at LIMIT 1"
            ))
            .bind(earlier)
            .fetch_one(&self.pool)
            .await?;
            return Ok((org, owner));
        }
        let org: Organization = sqlx::query_as(
            "INSERT INTO organizations (id, name) VALUES ($1, $2) RETURNING id, name, version, created_at, updated_at",
        )
        .bind(org_id)
        .bind(&cmd.organization_name)
        .fetch_one(&mut *tx)
        .await?;
        let owner: User = sqlx::query_as(&format!(
            "INSERT INTO users (id, organization_id, email, display_name, password_hash, org_role, state)
             VALUES ($1, $2, $3, $4, $5, 'owner', 'active') RETURNING {USER_COLUMNS}"
        ))
        .bind(user_id)
        .bind(org_id)
        .bind(&cmd.owner_email)
        .bind(&cmd.owner_display_name)
        .bind(hash)
        .fetch_one(&mut *tx)
        .await?;
        outbox::record(
            &mut tx,
            "tenancy.organization.created",
            org_id,
            org_id,
            None,
            json!({
                "organization_id": org_id, "name": org.name, "owner_user_id": user_id,
            }),
        )
        .await?;
        outbox::record(
            &mut tx,
            "tenancy.user.created",
            org_id,
            user_id,
            None,
            json!({
                "user_id": user_id, "organization_id": org_id, "email": owner.email, "org_role": "owner",
            }),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(organization_id = %org_id, owner = %user_id, "Organization signed up.");
        Ok((org, owner))
    }

    async fn organization(&self, id: Uuid) -> Result<Organization> {
        sqlx::query_as("SELECT id, name, version, created_at, updated_at FROM organizations WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(TenancyError::NotFound("organization"))
    }

    /// The caller's organization.
    pub async fn get_organization(&self, who: &Principal, id: Uuid) -> Result<Organization> {
        // An organization-wide right is checked first: its absence says nothing about existence.
        who.require(perm::ORGANIZATION_READ, None)?;
        if id != who.organization_id {
            return Err(TenancyError::NotFound("organization"));
        }
        self.organization(id).await
    }

    /// Renames the caller's organization.
    pub async fn update_organization(&self, who: &Principal, cmd: UpdateOrganization) -> Result<Organization> {
        who.require(perm::ORGANIZATION_WRITE, None)?;
        if cmd.id != who.organization_id {
            return Err(TenancyError::NotFound("organization"));
        }
        let mut tx = self.pool.begin().await?;
        let current: (i64,) = sqlx::query_as("SELECT version FROM organizations WHERE id = $1 FOR UPDATE")
            .bind(cmd.id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(TenancyError::NotFound("organization"))?;
        check_version(cmd.expected_version, current.0)?;
        let org: Organization = sqlx::query_as(
            "UPDATE organizations SET name = $2, version = version + 1, updated_at = now() WHERE id = $1
             RETURNING id, name, version, created_at, updated_at",
        )
        .bind(cmd.id)
        .bind(&cmd.name)
        .fetch_one(&mut *tx)
        .await?;
        outbox::record(
            &mut tx,
            "tenancy.organization.updated",
            org.id,
            org.id,
            Some(who),
            json!({
                "organization_id": org.id, "name": org.name, "version": org.version,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(org)
    }

    // ---- brands ---------------------------------------------------------------------------

    /// The brand, if the caller can see it: one of their organization's, and one they hold a role
    /// on unless they are an owner or admin (anything else they may not know exists: NOT_FOUND).
    async fn brand_in_org(&self, conn: &mut PgConnection, who: &Principal, id: Uuid, lock: bool) -> Result<Brand> {
        if !who.may_see_brand(id) {
            return Err(TenancyError::NotFound("brand"));
        }
        let sql = format!(
            "SELECT {BRAND_COLUMNS} FROM brands WHERE id = $1 AND organization_id = $2{}",
            if lock { " FOR UPDATE" } else { "" }
        );
        sqlx::query_as(&sql)
            .bind(id)
            .bind(who.organization_id)
            .fetch_optional(conn)
            .await?
            .ok_or(TenancyError::NotFound("brand"))
    }

    fn domain_taken(error: sqlx::Error) -> TenancyError {
        if violates(&error, "brands_live_domain") {
            TenancyError::AlreadyExists { what: "a brand with this domain", reason: "DOMAIN_TAKEN" }
        } else {
            error.into()
        }
    }

    /// Creates a brand in the caller's organization.
    pub async fn create_brand(&self, who: &Principal, cmd: CreateBrand) -> Result<Brand> {
        who.require(perm::BRAND_CREATE, None)?;
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        let scope = format!("{}:create_brand", who.organization_id);
        if let Some(earlier) = claim_request(&mut tx, &scope, cmd.request_id.as_deref(), id).await? {
            drop(tx);
            let mut conn = self.pool.acquire().await?;
            return self.brand_in_org(&mut conn, who, earlier, false).await;
        }
        let s = &cmd.settings;
        let brand: Brand = sqlx::query_as(&format!(
            "INSERT INTO brands (id, organization_id, name, domain, display_name, logo_url, primary_color, support_email,
                                 invoice_prefix, default_currency, time_zone, email_aliases)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {BRAND_COLUMNS}"
        ))
        .bind(id)
        .bind(who.organization_id)
        .bind(&s.name)
        .bind(&s.domain)
        .bind(&s.display_name)
        .bind(&s.logo_url)
        .bind(&s.primary_color)
        .bind(&s.support_email)
        .bind(&s.invoice_prefix)
        .bind(&s.default_currency)
        .bind(&s.time_zone)
        .bind(&s.email_aliases)
        .fetch_one(&mut *tx)
        .await
        .map_err(Self::domain_taken)?;
        outbox::record(&mut tx, "tenancy.brand.created", who.organization_id, id, Some(who), brand.event()).await?;
        tx.commit().await?;
        self.cache.invalidate(&[&brand.domain]).await;
        tracing::info!(brand_id = %id, domain = %brand.domain, "Brand created.");
        Ok(brand)
    }

    /// A brand the caller may read.
    pub async fn get_brand(&self, who: &Principal, id: Uuid) -> Result<Brand> {
        let mut conn = self.pool.acquire().await?;
        let brand = self.brand_in_org(&mut conn, who, id, false).await?;
        who.require(perm::BRAND_READ, Some(id))?;
        Ok(brand)
    }

    /// The brands the caller may read, by name.
    pub async fn list_brands(
        &self,
        who: &Principal,
        page: Page,
        show_archived: bool,
    ) -> Result<(Vec<Brand>, Option<(String, Uuid)>)> {
        let visible = who.brands_with(perm::BRAND_READ);
        let (after_name, after_id) = page.after.clone().unwrap_or_default();
        let rows: Vec<Brand> = sqlx::query_as(&format!(
            "SELECT {BRAND_COLUMNS} FROM brands
             WHERE organization_id = $1
               AND ($2::uuid[] IS NULL OR id = ANY($2))
               AND ($3 OR archived_at IS NULL)
               AND ($4::bool IS FALSE OR (name, id) > ($5, $6))
             ORDER BY name, id LIMIT $7"
        ))
        .bind(who.organization_id)
        .bind(visible)
        .bind(show_archived)
        .bind(page.after.is_some())
        .bind(after_name)
        .bind(after_id)
        .bind(page.size + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(paginate(rows, page.size, |b| (b.name.clone(), b.id)))
    }

    /// Applies an update (update_mask, etag).
    pub async fn update_brand(&self, who: &Principal, cmd: UpdateBrand) -> Result<Brand> {
        let mut tx = self.pool.begin().await?;
        let current = self.brand_in_org(&mut tx, who, cmd.id, true).await?;
        who.require(perm::BRAND_WRITE, Some(cmd.id))?;
        if current.archived_at.is_some() {
            return Err(TenancyError::FailedPrecondition {
                reason: "BRAND_ARCHIVED",
                message: "an archived brand cannot be changed",
            });
        }
        check_version(cmd.expected_version, current.version)?;
        let s = cmd.apply(&current.settings())?;
        let brand: Brand = sqlx::query_as(&format!(
            "UPDATE brands SET name = $2, domain = $3, display_name = $4, logo_url = $5, primary_color = $6,
                 support_email = $7, invoice_prefix = $8, default_currency = $9, time_zone = $10, email_aliases = $11,
                 version = version + 1, updated_at = now()
             WHERE id = $1 RETURNING {BRAND_COLUMNS}"
        ))
        .bind(cmd.id)
        .bind(&s.name)
        .bind(&s.domain)
        .bind(&s.display_name)
        .bind(&s.logo_url)
        .bind(&s.primary_color)
        .bind(&s.support_email)
        .bind(&s.invoice_prefix)
        .bind(&s.default_currency)
        .bind(&s.time_zone)
        .bind(&s.email_aliases)
        .fetch_one(&mut *tx)
        .await
        .map_err(Self::domain_taken)?;
        outbox::record(&mut tx, "tenancy.brand.updated", who.organization_id, brand.id, Some(who), brand.event())
            .await?;
        tx.commit().await?;
        self.cache.invalidate(&[&current.domain, &brand.domain]).await;
        Ok(brand)
    }

    /// Archives a brand and releases its domain.
    pub async fn archive_brand(&self, who: &Principal, id: Uuid, expected: Option<i64>) -> Result<Brand> {
        let mut tx = self.pool.begin().await?;
        let current = self.brand_in_org(&mut tx, who, id, true).await?;
        who.require(perm::BRAND_WRITE, Some(id))?;
        check_version(expected, current.version)?;
        if current.archived_at.is_some() {
            return Ok(current);
        }
        let brand: Brand = sqlx::query_as(&format!(
            "UPDATE brands SET archived_at = now(), version = version + 1, updated_at = now() WHERE id = $1
             RETURNING {BRAND_COLUMNS}"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        outbox::record(&mut tx, "tenancy.brand.archived", who.organization_id, id, Some(who), brand.event()).await?;
        tx.commit().await?;
        self.cache.invalidate(&[&brand.domain]).await;
        Ok(brand)
    }

    /// The live brand served on `domain` (cache first).
    pub async fn resolve(&self, domain: &str) -> Result<ResolvedBrand> {
        if let Some(hit) = self.cache.get(domain).await {
            return Ok(hit);
        }
        let brand: ResolvedBrand = sqlx::query_as(
            "SELECT id, organization_id, domain, display_name, logo_url, primary_color, support_email
             FROM brands WHERE domain = $1 AND archived_at IS NULL",
        )
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(TenancyError::NotFound("brand"))?;
        self.cache.put(&brand).await;
        Ok(brand)
    }

    // ---- users ----------------------------------------------------------------------------

    async fn insert_user(
        &self,
        who: &Principal,
        cmd: &NewUser,
        state: &str,
        hash: Option<String>,
        op: &str,
    ) -> Result<(User, bool)> {
        who.require(perm::USER_WRITE, None)?;
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        let scope = format!("{}:{op}", who.organization_id);
        if let Some(earlier) = claim_request(&mut tx, &scope, cmd.request_id.as_deref(), id).await? {
            drop(tx);
            return Ok((self.get_user(who, earlier).await?, false));
        }
        let user: User = sqlx::query_as(&format!(
            "INSERT INTO users (id, organization_id, email, display_name, password_hash, org_role, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {USER_COLUMNS}"
        ))
        .bind(id)
        .bind(who.organization_id)
        .bind(&cmd.email)
        .bind(&cmd.display_name)
        .bind(hash)
        .bind(cmd.org_role.as_str())
        .bind(state)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if violates(&e, "users_organization_id_email_key") {
                TenancyError::AlreadyExists { what: "a user with this email", reason: "EMAIL_TAKEN" }
            } else {
                e.into()
            }
        })?;
        let key = if state == "invited" { "tenancy.user.invited" } else { "tenancy.user.created" };
        outbox::record(
            &mut tx,
            key,
            who.organization_id,
            id,
            Some(who),
            json!({
                "user_id": id, "organization_id": who.organization_id, "email": user.email, "org_role": user.org_role,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok((user, true))
    }

    /// Creates an active user with a password.
    pub async fn create_user(&self, who: &Principal, cmd: NewUser) -> Result<User> {
        let hash = match &cmd.password {
            Some(p) => Some(self.passwords.hash(p.clone()).await?),
            None => None,
        };
        Ok(self.insert_user(who, &cmd, "active", hash, "create_user").await?.0)
    }

    /// Invites a user; returns the user and the one-time token (None on an idempotent retry,
    /// since the first token is not stored in clear).
    pub async fn invite_user(&self, who: &Principal, cmd: NewUser) -> Result<(User, Option<String>)> {
        let (user, created) = self.insert_user(who, &cmd, "invited", None, "invite_user").await?;
        if !created {
            return Ok((user, None));
        }
        let token = new_token();
        sqlx::query("INSERT INTO invitations (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(token_hash(&token))
            .bind(user.id)
            .bind(Utc::now() + self.settings.invite_ttl())
            .execute(&self.pool)
            .await?;
        Ok((user, Some(token)))
    }

    /// Accepts an invitation: sets the password and activates the user.
    pub async fn accept_invite(&self, token: &str, password: String) -> Result<User> {
        let hash = self.passwords.hash(password).await?;
        let mut tx = self.pool.begin().await?;
        let invite: Option<(Uuid, DateTime<Utc>, Option<DateTime<Utc>>)> =
            sqlx::query_as("SELECT user_id, expires_at, accepted_at FROM invitations WHERE token_hash = $1 FOR UPDATE")
                .bind(token_hash(token))
                .fetch_optional(&mut *tx)
                .await?;
        let Some((user_id, expires_at, None)) = invite else { return Err(TenancyError::InvalidToken) };
        if expires_at <= Utc::now() {
            return Err(TenancyError::InvalidToken);
        }
        sqlx::query("UPDATE invitations SET accepted_at = now() WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(&mut *tx)
            .await?;
        let user: Option<User> = sqlx::query_as(&format!(
            "UPDATE users SET password_hash = $2, state = 'active', updated_at = now()
             WHERE id = $1 AND state = 'invited' RETURNING {USER_COLUMNS}"
        ))
        .bind(user_id)
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        let user = user.ok_or(TenancyError::InvalidToken)?;
        outbox::record(
            &mut tx,
            "tenancy.user.activated",
            user.organization_id,
            user.id,
            None,
            json!({
                "user_id": user.id, "organization_id": user.organization_id,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    /// A user of the caller's organization.
    pub async fn get_user(&self, who: &Principal, id: Uuid) -> Result<User> {
        who.require(perm::USER_READ, None)?;
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1 AND organization_id = $2"))
            .bind(id)
            .bind(who.organization_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(TenancyError::NotFound("user"))
    }

    /// The organization's users by email.
    pub async fn list_users(&self, who: &Principal, page: Page) -> Result<(Vec<User>, Option<(String, Uuid)>)> {
        who.require(perm::USER_READ, None)?;
        let (after_email, after_id) = page.after.clone().unwrap_or_default();
        let rows: Vec<User> = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE organization_id = $1
               AND ($2::bool IS FALSE OR (email, id) > ($3, $4))
             ORDER BY email, id LIMIT $5"
        ))
        .bind(who.organization_id)
        .bind(page.after.is_some())
        .bind(after_email)
        .bind(after_id)
        .bind(page.size + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(paginate(rows, page.size, |u| (u.email.clone(), u.id)))
    }

    /// Deactivates a user and revokes its refresh tokens.
    pub async fn deactivate_user(&self, who: &Principal, id: Uuid) -> Result<User> {
        // The right first (as the gateway checks it), then whether the user is one of ours.
        who.require(perm::USER_WRITE, None)?;
        let target = self.get_user(who, id).await?;
        if target.org_role == OrgRole::Owner.as_str() {
            return Err(TenancyError::FailedPrecondition {
                reason: "OWNER_PROTECTED",
                message: "the owner cannot be deactivated",
            });
        }
        if target.id == who.user_id {
            return Err(TenancyError::FailedPrecondition {
                reason: "SELF_DEACTIVATION",
                message: "you cannot deactivate yourself",
            });
        }
        let mut tx = self.pool.begin().await?;
        let user: User = sqlx::query_as(&format!(
            "UPDATE users SET state = 'deactivated', updated_at = now() WHERE id = $1 RETURNING {USER_COLUMNS}"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        revoke_subject(&mut tx, id).await?;
        bump_session(&mut tx, id).await?;
        outbox::record(
            &mut tx,
            "tenancy.user.deactivated",
            who.organization_id,
            id,
            Some(who),
            json!({
                "user_id": id, "organization_id": who.organization_id,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }

    // ---- brand access ---------------------------------------------------------------------

    /// Grants or changes a user's role on a brand.
    pub async fn grant_access(&self, who: &Principal, cmd: GrantAccess) -> Result<Access> {
        let mut tx = self.pool.begin().await?;
        self.brand_in_org(&mut tx, who, cmd.brand_id, false).await?;
        who.require(perm::BRAND_ACCESS_WRITE, Some(cmd.brand_id))?;
        let user: Option<(String,)> = sqlx::query_as("SELECT state FROM users WHERE id = $1 AND organization_id = $2")
            .bind(cmd.user_id)
            .bind(who.organization_id)
            .fetch_optional(&mut *tx)
            .await?;
        match user {
            None => return Err(TenancyError::NotFound("user")),
            Some((state,)) if state == "deactivated" => {
                return Err(TenancyError::FailedPrecondition {
                    reason: "USER_DEACTIVATED",
                    message: "a deactivated user cannot be granted access",
                });
            }
            Some(_) => {}
        }
        let access: Access = sqlx::query_as(
            "INSERT INTO brand_access (user_id, brand_id, organization_id, role) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, brand_id) DO UPDATE SET role = EXCLUDED.role, updated_at = now()
             RETURNING user_id, brand_id, role, updated_at",
        )
        .bind(cmd.user_id)
        .bind(cmd.brand_id)
        .bind(who.organization_id)
        .bind(cmd.role.as_str())
        .fetch_one(&mut *tx)
        .await?;
        // The user's tokens carry their old roles: end them, so the new rights (or the loss of
        // old ones, on a change) apply within seconds.
        bump_session(&mut tx, cmd.user_id).await?;
        outbox::record(
            &mut tx,
            "tenancy.brand_access.granted",
            who.organization_id,
            cmd.brand_id,
            Some(who),
            json!({
                "user_id": cmd.user_id, "brand_id": cmd.brand_id, "role": access.role,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(access)
    }

    /// Revokes a user's role on a brand.
    pub async fn revoke_access(&self, who: &Principal, brand_id: Uuid, user_id: Uuid) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        self.brand_in_org(&mut tx, who, brand_id, false).await?;
        who.require(perm::BRAND_ACCESS_WRITE, Some(brand_id))?;
        let removed = sqlx::query("DELETE FROM brand_access WHERE user_id = $1 AND brand_id = $2")
            .bind(user_id)
            .bind(brand_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(TenancyError::NotFound("brand access"));
        }
        bump_session(&mut tx, user_id).await?;
        outbox::record(
            &mut tx,
            "tenancy.brand_access.revoked",
            who.organization_id,
            brand_id,
            Some(who),
            json!({
                "user_id": user_id, "brand_id": brand_id,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user's roles (the user may always see its own).
    pub async fn user_access(&self, who: &Principal, user_id: Uuid) -> Result<Vec<Access>> {
        if user_id != who.user_id {
            self.get_user(who, user_id).await?;
        } else if who.portal.is_some() {
            return Err(TenancyError::NotFound("user"));
        }
        Ok(sqlx::query_as(
            "SELECT a.user_id, a.brand_id, a.role, a.updated_at FROM brand_access a JOIN users u ON u.id = a.user_id
             WHERE a.user_id = $1 AND u.organization_id = $2 ORDER BY a.brand_id",
        )
        .bind(user_id)
        .bind(who.organization_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// A brand's members.
    pub async fn brand_members(&self, who: &Principal, brand_id: Uuid) -> Result<Vec<Access>> {
        let mut conn = self.pool.acquire().await?;
        self.brand_in_org(&mut conn, who, brand_id, false).await?;
        who.require(perm::BRAND_ACCESS_READ, Some(brand_id))?;
        Ok(sqlx::query_as(
            "SELECT user_id, brand_id, role, updated_at FROM brand_access WHERE brand_id = $1 ORDER BY user_id",
        )
        .bind(brand_id)
        .fetch_all(&mut *conn)
        .await?)
    }

    // ---- portal users ---------------------------------------------------------------------

    /// Creates a portal identity for a client of a brand.
    pub async fn create_portal_user(&self, who: &Principal, cmd: NewPortalUser) -> Result<PortalUser> {
        {
            let mut conn = self.pool.acquire().await?;
            let brand = self.brand_in_org(&mut conn, who, cmd.brand_id, false).await?;
            who.require(perm::PORTAL_USER_WRITE, Some(cmd.brand_id))?;
            if brand.archived_at.is_some() {
                return Err(TenancyError::FailedPrecondition {
                    reason: "BRAND_ARCHIVED",
                    message: "an archived brand has no portal",
                });
            }
        }
        let hash = self.passwords.hash(cmd.password.clone()).await?;
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        let scope = format!("{}:create_portal_user", who.organization_id);
        const COLUMNS: &str = "id, organization_id, brand_id, client_id, email, display_name, created_at";
        if let Some(earlier) = claim_request(&mut tx, &scope, cmd.request_id.as_deref(), id).await? {
            drop(tx);
            return Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM portal_users WHERE id = $1"))
                .bind(earlier)
                .fetch_one(&self.pool)
                .await?);
        }
        let user: PortalUser = sqlx::query_as(&format!(
            "INSERT INTO portal_users (id, organization_id, brand_id, client_id, email, display_name, password_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(who.organization_id)
        .bind(cmd.brand_id)
        .bind(cmd.client_id)
        .bind(&cmd.email)
        .bind(&cmd.display_name)
        .bind(hash)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| {
            if violates(&e, "portal_users_brand_id_email_key") {
                TenancyError::AlreadyExists {
                    what: "a portal user with this email on this brand",
                    reason: "EMAIL_TAKEN",
                }
            } else {
                e.into()
            }
        })?;
        outbox::record(
            &mut tx,
            "tenancy.portal_user.created",
            who.organization_id,
            id,
            Some(who),
            json!({
                "portal_user_id": id, "brand_id": cmd.brand_id, "client_id": cmd.client_id, "email": user.email,
            }),
        )
        .await?;
        tx.commit().await?;
        Ok(user)
    }
}

/// Splits a `size + 1` fetch into a page and the cursor of the next one.
fn paginate<T>(mut rows: Vec<T>, size: i64, key: impl Fn(&T) -> (String, Uuid)) -> (Vec<T>, Option<(String, Uuid)>) {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() > size {
        rows.truncate(size);
        let next = rows.last().map(key);
        (rows, next)
    } else {
        (rows, None)
    }
}
