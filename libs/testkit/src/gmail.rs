//! A fake Google OAuth 2.0 + Gmail API v1 server for tests, on `127.0.0.1:0`.
//!
//! [`FakeGmail::start`] serves, under one [`base_url`](FakeGmail::base_url) that the code under
//! test uses as its OAuth base *and* its Gmail base:
//!
//! | path | mimics |
//! | --- | --- |
//! | `GET /o/oauth2/v2/auth` | `accounts.google.com/o/oauth2/v2/auth`, consenting at once |
//! | `POST /token` | `oauth2.googleapis.com/token`: `authorization_code` (PKCE S256/plain) and `refresh_token` |
//! | `GET /gmail/v1/users/me/profile` | `users.getProfile` |
//! | `GET /gmail/v1/users/me/messages` | `users.messages.list` (`maxResults`, `pageToken`, `includeSpamTrash`, `labelIds`) |
//! | `GET /gmail/v1/users/me/messages/{id}` | `users.messages.get` with `format=raw\|metadata\|minimal` |
//! | `GET /gmail/v1/users/me/history` | `users.history.list` (`startHistoryId`, `historyTypes`, `labelId`, paging) |
//! | `POST /gmail/v1/users/me/messages/send` | `users.messages.send` (JSON `{"raw", "threadId"?}`) |
//! | `GET /gmail/v1/users/me/settings/sendAs` | `users.settings.sendAs.list` |
//!
//! A test adds users, fills their mailboxes ([`deliver`](FakeGmail::deliver) a [`MailSpec`] built
//! into real MIME by mail-builder, [`seed`](FakeGmail::seed) thousands), points the code under
//! test at `base_url()` with [`client_id`](FakeGmail::client_id) and
//! [`client_secret`](FakeGmail::client_secret), then reads what happened: [`sent`](FakeGmail::sent),
//! [`calls`](FakeGmail::calls), [`units_used`](FakeGmail::units_used). Outages and limits are
//! scripted with [`fail_next`](FakeGmail::fail_next), [`enforce_quota`](FakeGmail::enforce_quota),
//! [`revoke`](FakeGmail::revoke), [`expire_history`](FakeGmail::expire_history) and
//! [`set_access_token_lifetime`](FakeGmail::set_access_token_lifetime).
//!
//! Faithful: ids are 16 hex digits and a thread's id is its first message's; `historyId`,
//! `internalDate` (ms) and history record ids are decimal strings; `raw` is emitted base64url
//! *with* padding (as Gmail does) and accepted padded or not on send; lists omit empty arrays;
//! errors carry Google's JSON shapes (`{"error":{"code","message","errors":[{"domain","reason"}],
//! "status"}}` for Gmail, `{"error","error_description"}` for OAuth); scopes are checked per
//! method; a refresh token is issued only with `access_type=offline`; `userId` may be `me` or
//! the caller's address. Quota units are Gmail's published costs, charged after authentication.
//!
//! Deliberately different: no login or consent screen (the consenting user is
//! [`consent_as`](FakeGmail::consent_as), else the first user); `q` is ignored; `format=full`
//! (Gmail's default!) and the `/upload` and batch endpoints are not served (400/404); codes do
//! not expire; one history record per change; `snippet` is empty for raw and sent messages;
//! a sent message is stored as sent (no From rewriting, no Bcc stripping); token-endpoint
//! 429/500 bodies are invented in OAuth shape; [`revoke`](FakeGmail::revoke) also kills the
//! user's live access tokens, as Google's revocation does.

mod control;
mod mime;
mod server;
mod state;

pub use mime::{Attachment, MailSpec};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;

use state::{SendAs, State};

const CLIENT_ID: &str = "1084945613370-fakegmail0sentra.apps.googleusercontent.com";
const CLIENT_SECRET: &str = "GOCSPX-FakeGmailSentraClientSecret0";

/// A method of the fake, for [`FakeGmail::fail_next`] and [`FakeGmail::calls`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /token`.
    Token,
    /// `users.getProfile`.
    Profile,
    /// `users.messages.list`.
    MessagesList,
    /// `users.messages.get`.
    MessagesGet,
    /// `users.history.list`.
    HistoryList,
    /// `users.messages.send`.
    Send,
    /// `users.settings.sendAs.list`.
    SendAsList,
    /// Any of the above (for faults); every request, the consent page included (for counts).
    Any,
}

impl Endpoint {
    /// Gmail's quota units for the method.
    pub fn cost(self) -> u64 {
        match self {
            Endpoint::Profile | Endpoint::SendAsList => 1,
            Endpoint::HistoryList => 2,
            Endpoint::MessagesList | Endpoint::MessagesGet => 5,
            Endpoint::Send => 100,
            Endpoint::Token | Endpoint::Any => 0,
        }
    }
}

/// A failure to inject with [`FakeGmail::fail_next`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 `rateLimitExceeded` (`RESOURCE_EXHAUSTED`), with `Retry-After` when given.
    Status429 {
        /// The `Retry-After` seconds.
        retry_after_secs: Option<u64>,
    },
    /// 403 `userRateLimitExceeded` (domain `usageLimits`), with `Retry-After` when given.
    RateLimit403 {
        /// The `Retry-After` seconds.
        retry_after_secs: Option<u64>,
    },
    /// 500 `backendError`.
    ServerError500,
    /// On `/token`: 400 `invalid_grant`; on Gmail methods: 401 `authError`.
    InvalidGrant,
    /// On `/token`: 401 `invalid_client`; on Gmail methods: 401 `authError`.
    InvalidClient,
    /// On `/token`: 400 `unauthorized_client`; on Gmail methods: 401 `authError`.
    UnauthorizedClient,
    /// Answers normally after this delay.
    Slow(Duration),
}

/// What [`FakeGmail::deliver`] stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveredMessage {
    /// Gmail message id (16 hex digits).
    pub id: String,
    /// Gmail thread id.
    pub thread_id: String,
    /// The Message-ID header with angle brackets (`<…>`); empty when a raw message has none.
    pub message_id_header: String,
}

/// A message the code under test sent through `users.messages.send`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    /// Gmail message id.
    pub id: String,
    /// Gmail thread id it was filed in.
    pub thread_id: String,
    /// The RFC 5322 bytes exactly as sent (decoded from base64url).
    pub raw: Vec<u8>,
}

/// Tokens minted by [`FakeGmail::issue_tokens`], as if the OAuth flow had run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedTokens {
    /// A bearer token for the Gmail methods.
    pub access_token: String,
    /// A refresh token for `grant_type=refresh_token`.
    pub refresh_token: String,
}

struct Inner {
    state: Arc<Mutex<State>>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running fake; clones share it, and it stops when the last clone is dropped.
#[derive(Clone)]
pub struct FakeGmail {
    inner: Arc<Inner>,
}

impl FakeGmail {
    /// Serves a fresh fake on `127.0.0.1:0` (needs a Tokio runtime).
    ///
    /// # Panics
    /// When no local port can be bound.
    pub async fn start() -> Self {
        Self::start_on(0).await.expect("bind FakeGmail")
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        server::lock(&self.inner.state)
    }

    /// `http://127.0.0.1:PORT`: the OAuth base (`/o/oauth2/v2/auth`, `/token`) and the Gmail
    /// base (`/gmail/v1/…`) at once.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The consent URL (`{base}/o/oauth2/v2/auth`), without a query.
    pub fn auth_endpoint(&self) -> String {
        format!("{}/o/oauth2/v2/auth", self.base_url())
    }

    /// The token URL (`{base}/token`).
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// The only OAuth client id the fake accepts.
    pub fn client_id(&self) -> &'static str {
        CLIENT_ID
    }

    /// The secret of [`client_id`](Self::client_id).
    pub fn client_secret(&self) -> &'static str {
        CLIENT_SECRET
    }

    /// Adds a user with an empty mailbox (no-op when known).
    pub fn add_user(&self, email: &str) {
        self.lock().add_user(email);
    }

    /// Makes the consent page sign in as this user (adding it when unknown).
    pub fn consent_as(&self, email: &str) {
        let mut state = self.lock();
        state.add_user(email);
        state.consent_as = Some(email.to_owned());
    }

    /// Mints tokens for `email` with `scope` (space-separated) without the browser flow.
    pub fn issue_tokens(&self, email: &str, scope: &str) -> IssuedTokens {
        let mut state = self.lock();
        state.mailbox_mut(email);
        IssuedTokens {
            access_token: state.issue_access(email, scope),
            refresh_token: state.issue_refresh(email, scope),
        }
    }

    /// Delivers a message built from `spec` into `email`'s mailbox (records `messageAdded`).
    ///
    /// # Panics
    /// When the user was never added (here and in every per-user method).
    pub fn deliver(&self, email: &str, spec: MailSpec) -> DeliveredMessage {
        deliver_locked(&mut self.lock(), email, spec)
    }

    /// A fake started on `port` (0: any), for `sentra-mesh fake-gmail` and `make run`.
    pub async fn start_on(port: u16) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::new()));
        let app = server::router(state.clone()).merge(control::router(state.clone()));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { inner: Arc::new(Inner { state, addr, task }) })
    }
}

/// Delivers `spec` to `email`'s mailbox (held lock).
fn deliver_locked(state: &mut State, email: &str, spec: MailSpec) -> DeliveredMessage {
    {
        let id = state.next_id();
        let mailbox = state.mailbox_mut(email);
        let message_id = match &spec.message_id {
            Some(id) => mime::strip_brackets(id).to_owned(),
            None => format!("{}@fake.gmail", uuid::Uuid::new_v4()),
        };
        let references = spec.in_reply_to.as_deref().map(|p| mailbox.reply_chain(p)).unwrap_or_default();
        let date = spec.date.unwrap_or_else(Utc::now);
        let raw = mime::build(&spec, email, &message_id, &references, date.timestamp());
        let labels = spec.labels.clone().unwrap_or_else(|| vec!["INBOX".into(), "UNREAD".into()]);
        let (thread_id, _) =
            mailbox.insert(id.clone(), raw, labels, date.timestamp_millis(), mime::snippet(&spec.text), None);
        DeliveredMessage { id, thread_id, message_id_header: format!("<{message_id}>") }
    }
}

impl FakeGmail {
    /// Delivers these bytes unchanged (malformed mail welcome), threaded by its headers if any.
    pub fn deliver_raw(&self, email: &str, raw: impl Into<Vec<u8>>, labels: &[&str]) -> DeliveredMessage {
        let mut state = self.lock();
        let id = state.next_id();
        let mailbox = state.mailbox_mut(email);
        let labels = labels.iter().map(|l| (*l).to_owned()).collect();
        let now = Utc::now().timestamp_millis();
        let (thread_id, header) = mailbox.insert(id.clone(), raw.into(), labels, now, String::new(), None);
        DeliveredMessage { id, thread_id, message_id_header: header.unwrap_or_default() }
    }

    /// Delivers `n` varied messages (senders in several languages, HTML, attachments, threads
    /// of 2–3 with some replies SENT by the owner, ~1% SPAM and ~1% TRASH) dated over the past
    /// up to now. Bodies are built once per template, so 10,000 take well under a second.
    pub fn seed(&self, email: &str, n: usize) {
        let mut state = self.lock();
        state.mailbox_mut(email);
        let ids = (0..n).map(|_| state.next_id()).collect();
        let mut rng = StdRng::from_rng(&mut state.rng).unwrap_or_else(|_| StdRng::seed_from_u64(n as u64));
        mime::seed(state.mailbox_mut(email), email, ids, &mut rng);
    }

    /// Deletes a message (records `messageDeleted`); false when there was none.
    pub fn delete(&self, email: &str, id: &str) -> bool {
        self.lock().mailbox_mut(email).delete(id)
    }

    /// Forgets all history so far: any `startHistoryId` below the current one gets 404.
    pub fn expire_history(&self, email: &str) {
        let mut state = self.lock();
        let mailbox = state.mailbox_mut(email);
        mailbox.history.clear();
        mailbox.history_floor = mailbox.history_id;
    }

    /// Makes the next `times` calls to `endpoint` (or to any, with [`Endpoint::Any`]) fail with
    /// `fault`; queued faults apply in order.
    pub fn fail_next(&self, endpoint: Endpoint, fault: Fault, times: usize) {
        self.lock().push_fault(endpoint, fault, times);
    }

    /// Revokes the user's grant: refresh tokens get `invalid_grant`, access tokens 401.
    pub fn revoke(&self, email: &str) {
        let mut state = self.lock();
        state.refresh_tokens.values_mut().filter(|g| g.user == email).for_each(|g| g.revoked = true);
        state.access_tokens.retain(|_, a| a.user != email);
    }

    /// Delays every request by this much.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Lifetime (`expires_in`) of access tokens issued from now on; default 3599 s. Zero makes
    /// them expire at once, forcing a refresh.
    pub fn set_access_token_lifetime(&self, lifetime: Duration) {
        self.lock().token_lifetime = lifetime;
    }

    /// Limits every user to `units_per_second` quota units (Gmail's real limit is 250), as a
    /// token bucket holding one second's worth; over it, 429 `rateLimitExceeded` + `Retry-After`.
    pub fn enforce_quota(&self, units_per_second: u32) {
        self.lock().set_quota(units_per_second);
    }

    /// Adds a send-as alias; `verified` gives `verificationStatus` `accepted`, else `pending`.
    pub fn add_send_as(&self, user: &str, email: &str, display_name: &str, verified: bool) {
        let alias = SendAs { email: email.to_owned(), display_name: display_name.to_owned(), verified };
        self.lock().mailbox_mut(user).send_as.push(alias);
    }

    /// Requests received by `endpoint` (failed ones included); `Any` counts every request.
    pub fn calls(&self, endpoint: Endpoint) -> usize {
        self.lock().calls.get(&endpoint).copied().unwrap_or(0)
    }

    /// Quota units charged to the user (admitted calls only).
    pub fn units_used(&self, email: &str) -> u64 {
        self.lock().mailbox_mut(email).units_used
    }

    /// `(id, thread_id)` of every message, SPAM and TRASH included, newest first.
    pub fn messages(&self, email: &str) -> Vec<(String, String)> {
        let mut state = self.lock();
        state.mailbox_mut(email).messages.values().rev().map(|m| (m.id.clone(), m.thread_id.clone())).collect()
    }

    /// `(id, thread_id)` of what `messages.list` returns without `includeSpamTrash`: every
    /// message not labelled SPAM or TRASH, newest first.
    pub fn listed_messages(&self, email: &str) -> Vec<(String, String)> {
        let mut state = self.lock();
        state
            .mailbox_mut(email)
            .messages
            .values()
            .rev()
            .filter(|m| !m.labels.iter().any(|l| l == "SPAM" || l == "TRASH"))
            .map(|m| (m.id.clone(), m.thread_id.clone()))
            .collect()
    }

    /// The stored RFC 5322 bytes of a message.
    pub fn raw(&self, email: &str, id: &str) -> Option<Vec<u8>> {
        self.lock().mailbox_mut(email).get(id).map(|m| m.raw.clone())
    }

    /// The mailbox's current history id.
    pub fn history_id(&self, email: &str) -> u64 {
        self.lock().mailbox_mut(email).history_id
    }

    /// Messages sent through the API, oldest first.
    pub fn sent(&self, email: &str) -> Vec<SentMessage> {
        self.lock().mailbox_mut(email).sent.clone()
    }
}
