//! The Gmail API and Google's OAuth 2.0 token endpoint, as Comm uses them.
//!
//! Only what sync and sending need: `users.getProfile`, `users.messages.list`,
//! `users.messages.get` (`format=raw`), `users.history.list`, `users.messages.send`,
//! `users.settings.sendAs.list`, and the token endpoint (authorization code with PKCE, refresh).
//! Base URLs are configuration, so tests point them at `sentra_testkit::gmail::FakeGmail`.
//!
//! Errors are classified for the caller's decision, never by string matching elsewhere:
//! a rate limit (429, or 403 with a `rateLimitExceeded`/`userRateLimitExceeded` reason) carries
//! its `Retry-After`; 404 is its own kind (a stale history id means "full sync"); only the token
//! endpoint's `invalid_grant`, `invalid_client` and `unauthorized_client` mean the grant is gone.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

/// Where Google's endpoints are and who we are to them.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct GoogleConfig {
    /// The consent page (`https://accounts.google.com/o/oauth2/v2/auth`).
    pub auth_url: String,
    /// The token endpoint (`https://oauth2.googleapis.com/token`).
    pub token_url: String,
    /// The Gmail API root (`https://gmail.googleapis.com`).
    pub api_url: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The OAuth client secret.
    #[serde(skip_serializing)]
    pub client_secret: SecretString,
    /// Where the consent page sends the browser back (the dashboard's callback page): an absolute
    /// URL, or a path (`/app/mailboxes/callback`) joined to the Origin of the page that started
    /// the consent, for white-label domains. Either way the provider only redirects to URIs
    /// registered for the client, so a forged Origin gets no code.
    pub redirect_uri: String,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// Per-request timeout, seconds.
    pub timeout_secs: f64,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        Self {
            auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            api_url: "https://gmail.googleapis.com".into(),
            client_id: String::new(),
            client_secret: SecretString::from(String::new()),
            redirect_uri: "/app/mailboxes/callback".into(),
            scopes: vec![
                "https://www.googleapis.com/auth/gmail.readonly".into(),
                "https://www.googleapis.com/auth/gmail.send".into(),
                "https://www.googleapis.com/auth/gmail.settings.basic".into(),
            ],
            timeout_secs: 30.0,
        }
    }
}

impl GoogleConfig {
    /// Google's endpoints on another server speaking the same API at `base` (a proxy, or the
    /// fake of `sentra-testkit`): consent at `/o/oauth2/v2/auth`, tokens at `/token`, Gmail under
    /// `/gmail/v1`, with this OAuth client; the rest as configured.
    pub fn at(self, base: &str, client_id: &str, client_secret: &str) -> Self {
        let base = base.trim_end_matches('/');
        Self {
            auth_url: format!("{base}/o/oauth2/v2/auth"),
            token_url: format!("{base}/token"),
            api_url: base.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: SecretString::from(client_secret.to_owned()),
            ..self
        }
    }
}

/// Gmail's published quota cost of each method, in units (per user: 250 units per second).
pub mod cost {
    /// `users.getProfile`.
    pub const PROFILE: u32 = 1;
    /// `users.messages.list`.
    pub const LIST: u32 = 5;
    /// `users.messages.get`.
    pub const GET: u32 = 5;
    /// `users.history.list`.
    pub const HISTORY: u32 = 2;
    /// `users.messages.send`.
    pub const SEND: u32 = 100;
    /// `users.settings.sendAs.list`.
    pub const SEND_AS: u32 = 1;
}

/// What went wrong talking to Google, classified for the caller's decision.
#[derive(Debug, thiserror::Error)]
pub enum GmailError {
    /// Slow down; retry after the given delay (when the server said).
    #[error("rate limited by the provider")]
    RateLimited {
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// 404: the message or the history id is gone.
    #[error("not found at the provider")]
    NotFound,
    /// The grant is revoked or the client is refused (`invalid_grant`, `invalid_client`,
    /// `unauthorized_client`): only re-consent helps.
    #[error("the provider refused the grant ({0})")]
    Grant(String),
    /// 401 from the API: the access token is not (or no longer) accepted.
    #[error("the provider refused the access token")]
    Unauthorized,
    /// Network errors, timeouts and 5xx: retry later.
    #[error("provider unavailable: {0}")]
    Transient(String),
    /// Anything else the provider refused (4xx): retrying will not help.
    #[error("provider refused the request: {0}")]
    Refused(String),
}

impl GmailError {
    fn from_transport(error: reqwest::Error) -> Self {
        // The error's Display can carry the URL; ours carry no secrets (tokens travel in headers
        // and form bodies), but keep it short anyway.
        GmailError::Transient(if error.is_timeout() { "timeout".into() } else { "connection failed".into() })
    }
}

/// The token endpoint's answer.
#[derive(Debug, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Seconds until it expires.
    #[serde(default)]
    pub expires_in: i64,
    /// Present on the code exchange (with `access_type=offline`), absent on refresh.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// `users.getProfile`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The mailbox's address.
    pub email_address: String,
    /// The current history id (a decimal string in the API).
    #[serde(deserialize_with = "decimal")]
    pub history_id: u64,
}

/// A message reference in lists and history.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    /// Gmail id.
    pub id: String,
    /// Gmail thread id.
    #[serde(default)]
    pub thread_id: String,
}

/// One page of `users.messages.list`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    /// The ids (absent when empty).
    #[serde(default)]
    pub messages: Vec<MessageRef>,
    /// The next page, if any.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// `users.messages.get?format=raw`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMessage {
    /// Gmail id.
    pub id: String,
    /// Gmail thread id.
    pub thread_id: String,
    /// Labels.
    #[serde(default)]
    pub label_ids: Vec<String>,
    /// Milliseconds since the epoch, as a decimal string.
    #[serde(default, deserialize_with = "decimal_or_zero")]
    pub internal_date: u64,
    /// The RFC 5322 bytes, base64url.
    #[serde(default)]
    pub raw: String,
}

impl RawMessage {
    /// The message's bytes (Gmail's base64url, padded or not).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        let raw = self.raw.trim_end_matches('=');
        URL_SAFE_NO_PAD.decode(raw).ok()
    }
}

#[derive(Debug, Deserialize)]
struct Added {
    message: MessageRef,
}

/// One history record.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryRecord {
    #[serde(default)]
    messages_added: Vec<Added>,
    #[serde(default)]
    messages_deleted: Vec<Added>,
}

/// One page of `users.history.list`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryPageJson {
    #[serde(default)]
    history: Vec<HistoryRecord>,
    #[serde(default)]
    next_page_token: Option<String>,
    #[serde(deserialize_with = "decimal")]
    history_id: u64,
}

/// What one page of history says happened.
#[derive(Debug, Default)]
pub struct HistoryPage {
    /// Messages added, in order.
    pub added: Vec<MessageRef>,
    /// Ids deleted.
    pub deleted: Vec<String>,
    /// The next page, if any.
    pub next_page_token: Option<String>,
    /// The mailbox's history id at the time of the call.
    pub history_id: u64,
}

/// `users.settings.sendAs` entry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendAs {
    /// The address.
    pub send_as_email: String,
    /// `accepted` when verified; primary addresses have no status.
    #[serde(default)]
    pub verification_status: Option<String>,
    /// The account's own address.
    #[serde(default)]
    pub is_primary: bool,
}

impl SendAs {
    /// Whether Gmail lets the mailbox send as this address.
    pub fn usable(&self) -> bool {
        self.is_primary || self.verification_status.as_deref() == Some("accepted")
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendAsList {
    #[serde(default)]
    send_as: Vec<SendAs>,
}

/// `users.messages.send`'s answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sent {
    /// Gmail id.
    pub id: String,
    /// Gmail thread id.
    pub thread_id: String,
}

fn decimal<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        S(String),
        N(u64),
    }
    match Num::deserialize(d)? {
        Num::S(s) => s.parse().map_err(serde::de::Error::custom),
        Num::N(n) => Ok(n),
    }
}

fn decimal_or_zero<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    decimal(d).or(Ok(0))
}

/// A client of Google's token endpoint and the Gmail API.
#[derive(Clone)]
pub struct Gmail {
    http: reqwest::Client,
    config: GoogleConfig,
}

impl std::fmt::Debug for Gmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gmail").field("api_url", &self.config.api_url).finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct OAuthError {
    #[serde(default)]
    error: String,
}

#[derive(Debug, Deserialize)]
struct ApiErrorBody {
    error: ApiError,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    errors: Vec<ApiErrorItem>,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct ApiErrorItem {
    #[serde(default)]
    reason: String,
}

impl Gmail {
    /// A client for `config` (no connection is made yet).
    pub fn new(config: GoogleConfig) -> Result<Self, GmailError> {
        let timeout = Duration::try_from_secs_f64(config.timeout_secs).unwrap_or(Duration::from_secs(30));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            // Redirects from an API are not followed: a token must never travel elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GmailError::Refused(format!("HTTP client: {e}")))?;
        Ok(Self { http, config })
    }

    /// The configuration.
    pub fn config(&self) -> &GoogleConfig {
        &self.config
    }

    /// The redirect URI for a consent started from a page of `origin` (see
    /// [`GoogleConfig::redirect_uri`]); `None` when the configuration is a path and the origin is
    /// missing or not a plain `http(s)://host[:port]`.
    pub fn redirect_uri(&self, origin: Option<&str>) -> Option<String> {
        let configured = &self.config.redirect_uri;
        if !configured.starts_with('/') {
            return Some(configured.clone());
        }
        let origin = reqwest::Url::parse(origin?).ok()?;
        let plain = matches!(origin.scheme(), "http" | "https")
            && origin.host_str().is_some()
            && origin.path() == "/"
            && origin.query().is_none()
            && origin.username().is_empty();
        plain.then(|| format!("{}{configured}", origin.origin().ascii_serialization()))
    }

    /// The consent page URL for `state`, the PKCE `challenge` (S256) and `redirect_uri`.
    pub fn authorization_url(&self, state: &str, challenge: &str, redirect_uri: &str) -> Result<String, GmailError> {
        let scope = self.config.scopes.join(" ");
        let url = reqwest::Url::parse_with_params(
            &self.config.auth_url,
            &[
                ("response_type", "code"),
                ("client_id", self.config.client_id.as_str()),
                ("redirect_uri", redirect_uri),
                ("scope", scope.as_str()),
                ("state", state),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("access_type", "offline"),
                ("prompt", "consent"),
            ],
        )
        .map_err(|e| GmailError::Refused(format!("google.auth_url: {e}")))?;
        Ok(url.into())
    }

    /// Exchanges an authorization code (with its PKCE verifier and the consent's redirect URI)
    /// for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenResponse, GmailError> {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("client_id", &self.config.client_id),
            ("client_secret", self.config.client_secret.expose_secret()),
            ("redirect_uri", redirect_uri),
        ])
        .await
    }

    /// A fresh access token for a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, GmailError> {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", &self.config.client_id),
            ("client_secret", self.config.client_secret.expose_secret()),
        ])
        .await
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<TokenResponse, GmailError> {
        let response =
            self.http.post(&self.config.token_url).form(form).send().await.map_err(GmailError::from_transport)?;
        let status = response.status();
        if status.is_success() {
            return response.json().await.map_err(|_| GmailError::Transient("unreadable token response".into()));
        }
        if let Some(limited) = rate_limited(&response, None) {
            return Err(limited);
        }
        let body: OAuthError = response.json().await.unwrap_or(OAuthError { error: String::new() });
        match body.error.as_str() {
            e @ ("invalid_grant" | "invalid_client" | "unauthorized_client") => Err(GmailError::Grant(e.to_owned())),
            _ if status.is_server_error() => Err(GmailError::Transient(format!("token endpoint {status}"))),
            other => Err(GmailError::Refused(format!("token endpoint {status} {other}"))),
        }
    }

    fn api(&self, path: &str) -> String {
        format!("{}/gmail/v1/users/me/{path}", self.config.api_url.trim_end_matches('/'))
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, GmailError> {
        let response = self
            .http
            .get(self.api(path))
            .bearer_auth(token)
            .query(query)
            .send()
            .await
            .map_err(GmailError::from_transport)?;
        read(response).await
    }

    /// `users.getProfile`.
    pub async fn profile(&self, token: &str) -> Result<Profile, GmailError> {
        self.get(token, "profile", &[]).await
    }

    /// One page of `users.messages.list` (all mail, spam and trash excluded).
    pub async fn list(&self, token: &str, page_token: Option<&str>, page_size: u32) -> Result<MessagePage, GmailError> {
        let size = page_size.to_string();
        let mut query = vec![("maxResults", size.as_str())];
        if let Some(page) = page_token {
            query.push(("pageToken", page));
        }
        self.get(token, "messages", &query).await
    }

    /// `users.messages.get` with `format=raw`.
    pub async fn message(&self, token: &str, id: &str) -> Result<RawMessage, GmailError> {
        self.get(token, &format!("messages/{id}"), &[("format", "raw")]).await
    }

    /// One page of `users.history.list` from `start` (added and deleted messages).
    pub async fn history(&self, token: &str, start: u64, page_token: Option<&str>) -> Result<HistoryPage, GmailError> {
        let start = start.to_string();
        let mut query = vec![
            ("startHistoryId", start.as_str()),
            ("historyTypes", "messageAdded"),
            ("historyTypes", "messageDeleted"),
            ("maxResults", "500"),
        ];
        if let Some(page) = page_token {
            query.push(("pageToken", page));
        }
        let page: HistoryPageJson = self.get(token, "history", &query).await?;
        let mut out =
            HistoryPage { next_page_token: page.next_page_token, history_id: page.history_id, ..Default::default() };
        for record in page.history {
            out.added.extend(record.messages_added.into_iter().map(|a| a.message));
            out.deleted.extend(record.messages_deleted.into_iter().map(|d| d.message.id));
        }
        Ok(out)
    }

    /// `users.settings.sendAs.list`.
    pub async fn send_as(&self, token: &str) -> Result<Vec<SendAs>, GmailError> {
        let list: SendAsList = self.get(token, "settings/sendAs", &[]).await?;
        Ok(list.send_as)
    }

    /// `users.messages.send` of RFC 5322 bytes, in `thread_id` when replying.
    pub async fn send(&self, token: &str, raw: &[u8], thread_id: Option<&str>) -> Result<Sent, GmailError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            raw: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            thread_id: Option<&'a str>,
        }
        let body = Body { raw: URL_SAFE.encode(raw), thread_id };
        let response = self
            .http
            .post(self.api("messages/send"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map_err(GmailError::from_transport)?;
        read(response).await
    }
}

/// A response's `Retry-After`: delay-seconds, or an HTTP date (a past one means now).
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().unwrap_or_default())
}

/// 429 is always a rate limit; 403 only with a rate-limit reason (checked by the caller, which
/// has read the body).
fn rate_limited(response: &reqwest::Response, reason: Option<&str>) -> Option<GmailError> {
    let limited = response.status() == StatusCode::TOO_MANY_REQUESTS
        || (response.status() == StatusCode::FORBIDDEN
            && matches!(reason, Some("rateLimitExceeded" | "userRateLimitExceeded")));
    limited.then(|| GmailError::RateLimited { retry_after: retry_after(response) })
}

async fn read<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T, GmailError> {
    let status = response.status();
    if status.is_success() {
        return response.json().await.map_err(|_| GmailError::Transient("unreadable provider response".into()));
    }
    let retry = retry_after(&response);
    let (code, bytes) = (status, response.bytes().await.unwrap_or_default());
    let body: Option<ApiErrorBody> = serde_json::from_slice(&bytes).ok();
    let reason = body.as_ref().and_then(|b| b.error.errors.first()).map(|e| e.reason.clone());
    let message = body.map(|b| b.error.message).unwrap_or_default();
    match code {
        StatusCode::TOO_MANY_REQUESTS => Err(GmailError::RateLimited { retry_after: retry }),
        StatusCode::FORBIDDEN if matches!(reason.as_deref(), Some("rateLimitExceeded" | "userRateLimitExceeded")) => {
            Err(GmailError::RateLimited { retry_after: retry })
        }
        StatusCode::NOT_FOUND => Err(GmailError::NotFound),
        StatusCode::UNAUTHORIZED => Err(GmailError::Unauthorized),
        c if c.is_server_error() => Err(GmailError::Transient(format!("{c}"))),
        c => Err(GmailError::Refused(format!("{c} {message}"))),
    }
}
