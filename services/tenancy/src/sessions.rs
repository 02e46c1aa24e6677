//! Sign-in: passwords, signing keys, access tokens and rotating refresh tokens.
//!
//! - Passwords are hashed with argon2id (`passwords`: bounded concurrency and pooled memory).
//!   An unknown email still costs one verification against a dummy hash, so timing does not
//!   tell whether an account exists.
//! - Access tokens are EdDSA JWTs from `sentra-auth`, signed by the newest key. A key signs for
//!   `key_rotate_after`, then a new one is made; old keys keep verifying until the last token
//!   they signed has expired, and `GetSigningKeys` publishes all of them.
//! - Refresh tokens are 256 random bits, stored as SHA-256 hashes, single-use: each refresh spends
//!   the token and issues the next one of the same family. Presenting a spent token means it was
//!   stolen (or replayed), so the whole family is revoked.

use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sentra_auth::{AuthError, BrandRole, Claims, KeySource, OrgRole, PrincipalKind, PublicKey, SigningKey};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::commands::Login;
use crate::error::TenancyError;
use crate::passwords::Passwords;

type Result<T> = std::result::Result<T, TenancyError>;

/// Lifetimes of credentials.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct AuthSettings {
    /// Lifetime of an access token, in seconds.
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token family member, in seconds.
    pub refresh_ttl_secs: u64,
    /// How long one key signs before a new one is made, in seconds.
    pub key_rotate_after_secs: u64,
    /// Lifetime of an invitation, in seconds.
    pub invite_ttl_secs: u64,
    /// How long a sign-in waits for a free password check before it is refused as busy.
    pub password_wait_secs: u64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            key_rotate_after_secs: 7 * 24 * 3600,
            invite_ttl_secs: 7 * 24 * 3600,
            password_wait_secs: 5,
        }
    }
}

impl AuthSettings {
    fn access_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.access_ttl_secs).unwrap_or(900))
    }
    fn refresh_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.refresh_ttl_secs).unwrap_or(86_400))
    }
    fn rotate_after(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.key_rotate_after_secs).unwrap_or(86_400))
    }
    /// Lifetime of an invitation.
    pub fn invite_ttl(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.invite_ttl_secs).unwrap_or(86_400))
    }
}

/// A hash no password matches, verified against when the email is unknown.
fn dummy_hash() -> String {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let Ok(salt) = SaltString::encode_b64(&[7u8; 16]) else { return String::new() };
            Argon2::default()
                .hash_password(&rand::random::<[u8; 32]>(), &salt)
                .map(|h| h.to_string())
                .unwrap_or_default()
        })
        .clone()
}

/// SHA-256 of a bearer secret (refresh or invite token), which is what the database keeps.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new random bearer secret.
pub fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The signing keys, with the current one cached in memory.
pub struct KeyRing {
    pool: PgPool,
    settings: AuthSettings,
    current: RwLock<Option<(Arc<SigningKey>, DateTime<Utc>)>>,
}

impl KeyRing {
    /// A key ring over the `signing_keys` table.
    pub fn new(pool: PgPool, settings: AuthSettings) -> Self {
        Self { pool, settings, current: RwLock::new(None) }
    }

    /// The key to sign with now, making a new one when the current one is due for rotation.
    pub async fn signing_key(&self) -> Result<Arc<SigningKey>> {
        let now = Utc::now();
        if let Some((key, retire_at)) = self.current.read().await.as_ref()
            && *retire_at > now
        {
            return Ok(key.clone());
        }
        let mut current = self.current.write().await;
        let row: Option<(String, Vec<u8>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT kid, private_der, retire_at FROM signing_keys WHERE retire_at > now()
             ORDER BY created_at DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        let (key, retire_at) = match row {
            Some((kid, der, retire_at)) => (SigningKey::from_pkcs8_der(kid, &der)?, retire_at),
            None => {
                let key = SigningKey::generate(Uuid::now_v7().simple().to_string());
                let retire_at = now + self.settings.rotate_after();
                // Tokens signed just before retirement stay valid for one access TTL (plus a minute of clock skew).
                let expires_at = retire_at + self.settings.access_ttl() + chrono::Duration::minutes(1);
                sqlx::query(
                    "INSERT INTO signing_keys (kid, private_der, public_x, retire_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(key.kid())
                .bind(key.pkcs8_der())
                .bind(&key.public_key().x)
                .bind(retire_at)
                .bind(expires_at)
                .execute(&self.pool)
                .await?;
                tracing::info!(kid = key.kid(), %retire_at, "Signing key created.");
                (key, retire_at)
            }
        };
        let key = Arc::new(key);
        *current = Some((key.clone(), retire_at));
        Ok(key)
    }

    /// Every key that may still verify a token.
    pub async fn public_keys(&self) -> std::result::Result<Vec<PublicKey>, sqlx::Error> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT kid, public_x FROM signing_keys WHERE expires_at > now() ORDER BY created_at")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(kid, x)| PublicKey { kid, x }).collect())
    }
}

/// Tenancy verifies tokens with its own keys, read from its database.
pub struct DbKeys(pub Arc<KeyRing>);

#[async_trait::async_trait]
impl KeySource for DbKeys {
    async fn fetch(&self) -> std::result::Result<Vec<PublicKey>, AuthError> {
        self.0.public_keys().await.map_err(|e| AuthError::KeySource(e.to_string()))
    }
}

/// An access token and the refresh token that goes with it.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The JWT.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: i64,
    /// The single-use refresh token.
    pub refresh_token: String,
}

/// Who a token is for.
#[derive(Debug, Clone, Copy)]
enum Subject {
    Staff { user_id: Uuid, organization_id: Uuid },
    Client { portal_user_id: Uuid, organization_id: Uuid, brand_id: Uuid, client_id: Uuid },
}

impl Subject {
    fn id(&self) -> Uuid {
        match self {
            Subject::Staff { user_id, .. } => *user_id,
            Subject::Client { portal_user_id, .. } => *portal_user_id,
        }
    }
    fn organization_id(&self) -> Uuid {
        match self {
            Subject::Staff { organization_id, .. } | Subject::Client { organization_id, .. } => *organization_id,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Subject::Staff { .. } => "staff",
            Subject::Client { .. } => "client",
        }
    }
}

/// Login, refresh and logout.
pub struct Sessions {
    pool: PgPool,
    keys: Arc<KeyRing>,
    settings: AuthSettings,
    passwords: Passwords,
}

impl Sessions {
    /// Sessions signing with `keys`, checking passwords with `passwords`.
    pub fn new(pool: PgPool, keys: Arc<KeyRing>, settings: AuthSettings, passwords: Passwords) -> Self {
        Self { pool, keys, settings, passwords }
    }

    /// Checks the credentials and issues a new token family.
    pub async fn login(&self, cmd: Login) -> Result<Tokens> {
        let subject = self.authenticate(cmd).await?;
        let mut tx = self.pool.begin().await?;
        let tokens = self.issue(&mut tx, subject, Uuid::now_v7()).await?;
        tx.commit().await?;
        Ok(tokens)
    }

    async fn authenticate(&self, cmd: Login) -> Result<Subject> {
        // Candidates: (subject, password hash). The host narrows staff to one organization and
        // is the only way to reach a portal identity (unique per brand, not globally).
        let mut candidates: Vec<(Subject, String)> = Vec::new();
        if let Some(host) = &cmd.host {
            let brand: Option<(Uuid, Uuid)> =
                sqlx::query_as("SELECT id, organization_id FROM brands WHERE domain = $1 AND archived_at IS NULL")
                    .bind(host)
                    .fetch_optional(&self.pool)
                    .await?;
            let Some((brand_id, organization_id)) = brand else {
                return Err(TenancyError::invalid("host", "no brand is served on this host"));
            };
            let staff: Option<(Uuid, String)> = sqlx::query_as(
                "SELECT id, password_hash FROM users
                 WHERE organization_id = $1 AND email = $2 AND state = 'active' AND password_hash IS NOT NULL",
            )
            .bind(organization_id)
            .bind(&cmd.email)
            .fetch_optional(&self.pool)
            .await?;
            if let Some((user_id, hash)) = staff {
                candidates.push((Subject::Staff { user_id, organization_id }, hash));
            }
            let client: Option<(Uuid, Uuid, String)> = sqlx::query_as(
                "SELECT id, client_id, password_hash FROM portal_users WHERE brand_id = $1 AND email = $2",
            )
            .bind(brand_id)
            .bind(&cmd.email)
            .fetch_optional(&self.pool)
            .await?;
            if let Some((portal_user_id, client_id, hash)) = client {
                candidates.push((Subject::Client { portal_user_id, organization_id, brand_id, client_id }, hash));
            }
        } else {
            let staff: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
                "SELECT id, organization_id, password_hash FROM users
                 WHERE email = $1 AND state = 'active' AND password_hash IS NOT NULL ORDER BY created_at LIMIT 5",
            )
            .bind(&cmd.email)
            .fetch_all(&self.pool)
            .await?;
            candidates.extend(
                staff
                    .into_iter()
                    .map(|(user_id, organization_id, hash)| (Subject::Staff { user_id, organization_id }, hash)),
            );
        }

        if candidates.is_empty() {
            self.passwords.verify(cmd.password, dummy_hash()).await?;
            return Err(TenancyError::InvalidCredentials);
        }
        let mut matched = Vec::new();
        for (subject, hash) in candidates {
            if self.passwords.verify(cmd.password.clone(), hash).await? {
                matched.push(subject);
            }
        }
        match matched.as_slice() {
            [] => Err(TenancyError::InvalidCredentials),
            [subject] => Ok(*subject),
            _ => Err(TenancyError::invalid(
                "host",
                "this email belongs to several organizations; sign in on your brand's domain",
            )),
        }
    }

    async fn issue(&self, conn: &mut PgConnection, subject: Subject, family: Uuid) -> Result<Tokens> {
        let now = Utc::now();
        let exp = now + self.settings.access_ttl();
        let mut claims = Claims {
            sub: subject.id(),
            org: subject.organization_id(),
            kind: PrincipalKind::Staff,
            org_role: None,
            brands: Default::default(),
            portal_brand: None,
            client_id: None,
            sv: 0,
            exp: exp.timestamp(),
            iat: now.timestamp(),
            jti: Uuid::now_v7().to_string(),
            iss: "sentra".into(),
        };
        match subject {
            Subject::Staff { user_id, .. } => {
                let (role, version): (String, i64) =
                    sqlx::query_as("SELECT org_role, session_version FROM users WHERE id = $1")
                        .bind(user_id)
                        .fetch_one(&mut *conn)
                        .await?;
                claims.org_role = Some(role.parse::<OrgRole>()?);
                claims.sv = u64::try_from(version).unwrap_or(0);
                let brands: Vec<(Uuid, String)> = sqlx::query_as(
                    "SELECT a.brand_id, a.role FROM brand_access a JOIN brands b ON b.id = a.brand_id
                     WHERE a.user_id = $1 AND b.archived_at IS NULL",
                )
                .bind(user_id)
                .fetch_all(&mut *conn)
                .await?;
                for (brand, role) in brands {
                    claims.brands.insert(brand, role.parse::<BrandRole>()?);
                }
            }
            Subject::Client { portal_user_id, brand_id, client_id, .. } => {
                let (version,): (i64,) = sqlx::query_as("SELECT session_version FROM portal_users WHERE id = $1")
                    .bind(portal_user_id)
                    .fetch_one(&mut *conn)
                    .await?;
                claims.sv = u64::try_from(version).unwrap_or(0);
                claims.kind = PrincipalKind::Client;
                claims.portal_brand = Some(brand_id);
                claims.client_id = Some(client_id);
            }
        }
        let access_token = self.keys.signing_key().await?.sign(&claims)?;
        let refresh_token = new_token();
        sqlx::query(
            "INSERT INTO refresh_tokens (id, family_id, token_hash, subject_kind, subject_id, organization_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(Uuid::now_v7())
        .bind(family)
        .bind(token_hash(&refresh_token))
        .bind(subject.kind())
        .bind(subject.id())
        .bind(subject.organization_id())
        .bind(now + self.settings.refresh_ttl())
        .execute(&mut *conn)
        .await?;
        Ok(Tokens { access_token, expires_in: self.settings.access_ttl().num_seconds(), refresh_token })
    }

    /// The session version of the caller's own subject, for `AuthService.GetSession`.
    pub async fn session_version(&self, principal: &sentra_auth::Principal) -> Result<u64> {
        use sentra_auth::SessionSource as _;
        DbSessions(self.pool.clone()).current("", principal).await.map_err(TenancyError::Auth)
    }

    /// Spends `token` and issues the next pair of its family; a spent token revokes the family.
    pub async fn refresh(&self, token: &str) -> Result<Tokens> {
        let mut tx = self.pool.begin().await?;
        type Row = (Uuid, Uuid, String, Uuid, Uuid, DateTime<Utc>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT id, family_id, subject_kind, subject_id, organization_id, expires_at, used_at, revoked_at
             FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
        )
        .bind(token_hash(token))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, family, kind, subject_id, organization_id, expires_at, used_at, revoked_at)) = row else {
            return Err(TenancyError::InvalidToken);
        };
        if revoked_at.is_some() {
            return Err(TenancyError::InvalidToken);
        }
        if used_at.is_some() {
            revoke_family(&mut tx, family).await?;
            tx.commit().await?;
            tracing::warn!(%family, subject = %subject_id, "Spent refresh token presented again; family revoked.");
            return Err(TenancyError::InvalidToken);
        }
        if expires_at <= Utc::now() {
            return Err(TenancyError::InvalidToken);
        }
        let subject = match kind.as_str() {
            "staff" => {
                let active: Option<(String,)> = sqlx::query_as("SELECT state FROM users WHERE id = $1")
                    .bind(subject_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if active.as_ref().map(|s| s.0.as_str()) != Some("active") {
                    revoke_family(&mut tx, family).await?;
                    tx.commit().await?;
                    return Err(TenancyError::InvalidToken);
                }
                Subject::Staff { user_id: subject_id, organization_id }
            }
            _ => {
                let portal: Option<(Uuid, Uuid)> =
                    sqlx::query_as("SELECT brand_id, client_id FROM portal_users WHERE id = $1")
                        .bind(subject_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                let Some((brand_id, client_id)) = portal else { return Err(TenancyError::InvalidToken) };
                Subject::Client { portal_user_id: subject_id, organization_id, brand_id, client_id }
            }
        };
        sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE id = $1").bind(id).execute(&mut *tx).await?;
        let tokens = self.issue(&mut tx, subject, family).await?;
        tx.commit().await?;
        Ok(tokens)
    }

    /// Revokes the family of `token`; unknown tokens are ignored (logout is idempotent).
    pub async fn logout(&self, token: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let family: Option<(Uuid,)> = sqlx::query_as("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(token_hash(token))
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((family,)) = family {
            revoke_family(&mut tx, family).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn revoke_family(conn: &mut PgConnection, family: Uuid) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL")
        .bind(family)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Revokes every refresh token of a subject (deactivation).
pub async fn revoke_subject(conn: &mut PgConnection, subject: Uuid) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE subject_id = $1 AND revoked_at IS NULL")
        .bind(subject)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Ends every access token of a user issued so far (they are refused within seconds, see
/// `sentra_auth::SessionSource`); the user's next refresh gets a token with current rights.
pub async fn bump_session(conn: &mut PgConnection, user_id: Uuid) -> Result<()> {
    sqlx::query("UPDATE users SET session_version = session_version + 1 WHERE id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Tenancy's own answer to "is this token's session still current", from its tables: the
/// version of the subject, or beyond any version when the user is no longer active.
pub struct DbSessions(pub PgPool);

#[async_trait::async_trait]
impl sentra_auth::SessionSource for DbSessions {
    async fn current(
        &self,
        _token: &str,
        principal: &sentra_auth::Principal,
    ) -> std::result::Result<u64, sentra_auth::AuthError> {
        let row: Option<(i64, bool)> = match principal.kind {
            PrincipalKind::Staff => {
                sqlx::query_as("SELECT session_version, state = 'active' FROM users WHERE id = $1")
                    .bind(principal.user_id)
                    .fetch_optional(&self.0)
                    .await
            }
            PrincipalKind::Client => {
                sqlx::query_as("SELECT session_version, true FROM portal_users WHERE id = $1")
                    .bind(principal.user_id)
                    .fetch_optional(&self.0)
                    .await
            }
        }
        .map_err(|e| sentra_auth::AuthError::KeySource(format!("session lookup failed: {e}")))?;
        Ok(match row {
            Some((version, true)) => u64::try_from(version).unwrap_or(0),
            // Deactivated or gone: no token of theirs stands.
            _ => u64::MAX,
        })
    }
}
