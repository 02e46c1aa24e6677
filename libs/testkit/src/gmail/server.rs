//! The HTTP side: Google's consent and token endpoints and the Gmail v1 REST methods, with
//! Google's error shapes. Every handler answers junk with a 4xx, never a panic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::extract::{Form, Json, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::state::{Change, State as FakeState};
use super::{CLIENT_ID, CLIENT_SECRET, Endpoint, Fault, SentMessage, mime};

pub(super) type Shared = Arc<Mutex<FakeState>>;
type Pairs = Vec<(String, String)>;

pub(super) fn lock(shared: &Shared) -> MutexGuard<'_, FakeState> {
    shared.lock().expect("FakeGmail state poisoned")
}

pub(super) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/o/oauth2/v2/auth", get(authorize))
        .route("/token", post(token))
        .route("/gmail/v1/users/{user}/profile", get(profile))
        .route("/gmail/v1/users/{user}/messages", get(list_messages))
        .route("/gmail/v1/users/{user}/messages/send", post(send))
        .route("/gmail/v1/users/{user}/messages/{id}", get(get_message))
        .route("/gmail/v1/users/{user}/history", get(list_history))
        .route("/gmail/v1/users/{user}/settings/sendAs", get(list_send_as))
        .with_state(shared)
}

const MAIL: &str = "https://mail.google.com/";
const MODIFY: &str = "https://www.googleapis.com/auth/gmail.modify";
const READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";
const METADATA: &str = "https://www.googleapis.com/auth/gmail.metadata";
const COMPOSE: &str = "https://www.googleapis.com/auth/gmail.compose";
const SEND: &str = "https://www.googleapis.com/auth/gmail.send";
const SETTINGS_BASIC: &str = "https://www.googleapis.com/auth/gmail.settings.basic";

/// The scopes Google accepts for each method (any one suffices).
fn scopes(endpoint: Endpoint) -> &'static [&'static str] {
    match endpoint {
        Endpoint::Profile => &[MAIL, MODIFY, COMPOSE, READONLY, METADATA],
        Endpoint::MessagesList | Endpoint::MessagesGet | Endpoint::HistoryList => &[MAIL, MODIFY, READONLY, METADATA],
        Endpoint::Send => &[MAIL, MODIFY, COMPOSE, SEND],
        Endpoint::SendAsList => &[MAIL, MODIFY, READONLY, SETTINGS_BASIC],
        Endpoint::Token | Endpoint::Any => &[],
    }
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn params<'a>(query: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    query.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn with_retry_after(mut response: Response, secs: Option<u64>) -> Response {
    if let Some(secs) = secs {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Google's API error body: `{"error":{"code","message","errors":[…],"status"}}`.
fn gmail_error(code: StatusCode, message: &str, domain: &str, reason: &str) -> Response {
    let status = match code.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        _ => "UNKNOWN",
    };
    let body = json!({"error": {
        "code": code.as_u16(),
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason}],
        "status": status,
    }});
    (code, Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    gmail_error(StatusCode::BAD_REQUEST, message, "global", "invalidArgument")
}

fn not_found() -> Response {
    gmail_error(StatusCode::NOT_FOUND, "Requested entity was not found.", "global", "notFound")
}

fn unauthenticated() -> Response {
    let message = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or \
                   other valid authentication credential.";
    let mut response = gmail_error(StatusCode::UNAUTHORIZED, message, "global", "authError");
    let challenge = HeaderValue::from_static("Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"");
    response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
    response
}

fn rate_limited(retry_after: Option<u64>) -> Response {
    let message = "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' of service \
                   'gmail.googleapis.com'.";
    with_retry_after(
        gmail_error(StatusCode::TOO_MANY_REQUESTS, message, "usageLimits", "rateLimitExceeded"),
        retry_after,
    )
}

/// The response a queued fault forces on a Gmail method (`None`: go on, after the delay).
fn gmail_fault(fault: &Fault) -> Option<Response> {
    Some(match fault {
        Fault::Status429 { retry_after_secs } => rate_limited(*retry_after_secs),
        Fault::RateLimit403 { retry_after_secs } => {
            // Clamped to a year so a silly value cannot overflow the date arithmetic.
            let wait = retry_after_secs.unwrap_or(1).min(31_536_000) as i64;
            let at = chrono::Utc::now() + chrono::Duration::seconds(wait);
            let message = format!(
                "User-rate limit exceeded.  Retry after {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            );
            let response = gmail_error(StatusCode::FORBIDDEN, &message, "usageLimits", "userRateLimitExceeded");
            with_retry_after(response, *retry_after_secs)
        }
        Fault::ServerError500 => {
            gmail_error(StatusCode::INTERNAL_SERVER_ERROR, "Backend Error", "global", "backendError")
        }
        Fault::InvalidGrant | Fault::InvalidClient | Fault::UnauthorizedClient => unauthenticated(),
        Fault::Slow(_) => return None,
    })
}

/// Counts the call, sleeps the configured latency (plus a `Slow` fault) and returns the fault.
async fn prelude(shared: &Shared, endpoint: Endpoint) -> Option<Fault> {
    let (latency, fault) = {
        let mut state = lock(shared);
        *state.calls.entry(endpoint).or_default() += 1;
        *state.calls.entry(Endpoint::Any).or_default() += 1;
        (state.latency, state.take_fault(endpoint))
    };
    let slow = match &fault {
        Some(Fault::Slow(d)) => *d,
        _ => Duration::ZERO,
    };
    if !(latency + slow).is_zero() {
        tokio::time::sleep(latency + slow).await;
    }
    fault
}

/// The authenticated caller of a Gmail method.
struct Caller {
    user: String,
    scope: String,
}

/// Latency, faults, bearer token, `userId`, scope and quota, in that order.
async fn gate(shared: &Shared, endpoint: Endpoint, headers: &HeaderMap, user_id: &str) -> Result<Caller, Response> {
    if let Some(response) = prelude(shared, endpoint).await.as_ref().and_then(gmail_fault) {
        return Err(response);
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let mut state = lock(shared);
    let access = token
        .and_then(|t| state.access_tokens.get(t))
        .filter(|a| a.expires_at > Instant::now())
        .ok_or_else(unauthenticated)?;
    let caller = Caller { user: access.user.clone(), scope: access.scope.clone() };
    if user_id != "me" && user_id != caller.user {
        let message = format!("Delegation denied for {}", caller.user);
        return Err(gmail_error(StatusCode::FORBIDDEN, &message, "global", "forbidden"));
    }
    if !caller.has_scope(scopes(endpoint)) {
        let message = "Request had insufficient authentication scopes.";
        return Err(gmail_error(StatusCode::FORBIDDEN, message, "global", "insufficientPermissions"));
    }
    state.charge(&caller.user, endpoint.cost()).map_err(|secs| rate_limited(Some(secs)))?;
    Ok(caller)
}

impl Caller {
    fn has_scope(&self, any_of: &[&str]) -> bool {
        self.scope.split_whitespace().any(|s| any_of.contains(&s))
    }
}

fn text_error(code: StatusCode, message: &str) -> Response {
    (code, format!("Error {}: {message}\n", code.as_u16())).into_response()
}

/// `GET /o/oauth2/v2/auth`: consents at once as the configured user and redirects back.
async fn authorize(State(shared): State<Shared>, query: Result<Query<Pairs>, QueryRejection>) -> Response {
    let latency = {
        let mut state = lock(&shared);
        *state.calls.entry(Endpoint::Any).or_default() += 1;
        state.latency
    };
    tokio::time::sleep(latency).await;
    let Ok(Query(q)) = query else { return text_error(StatusCode::BAD_REQUEST, "invalid_request") };
    let get = |name| param(&q, name).filter(|v| !v.is_empty());
    if get("client_id") != Some(CLIENT_ID) {
        return text_error(StatusCode::UNAUTHORIZED, "invalid_client\n\nThe OAuth client was not found.");
    }
    let Some(redirect_uri) = get("redirect_uri").filter(|u| u.contains(':')) else {
        return text_error(StatusCode::BAD_REQUEST, "redirect_uri_mismatch");
    };
    if get("response_type") != Some("code") {
        return text_error(
            StatusCode::BAD_REQUEST,
            "invalid_request\n\nInvalid response_type (only code is supported)",
        );
    }
    let Some(scope) = get("scope") else {
        return text_error(StatusCode::BAD_REQUEST, "invalid_request\n\nMissing required parameter: scope");
    };
    let challenge = match (get("code_challenge"), get("code_challenge_method").unwrap_or("plain")) {
        (None, _) => None,
        (Some(c), method @ ("S256" | "plain")) => Some((c.to_owned(), method.to_owned())),
        (Some(_), _) => {
            return text_error(StatusCode::BAD_REQUEST, "invalid_request\n\nInvalid code_challenge_method");
        }
    };
    let mut state = lock(&shared);
    let Some(user) = state.consent_as.clone().or_else(|| state.users.first().cloned()) else {
        return text_error(StatusCode::BAD_REQUEST, "no user to consent as (FakeGmail::add_user)");
    };
    let code = state.random_token("4/0A", 80);
    let offline = get("access_type") == Some("offline");
    let scope = scope.split_whitespace().collect::<Vec<_>>().join(" ");
    let grant = super::state::AuthCode {
        user,
        redirect_uri: redirect_uri.to_owned(),
        scope: scope.clone(),
        challenge,
        offline,
        used: false,
    };
    state.codes.insert(code.clone(), grant);
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let state_param = get("state").map(|s| format!("state={}&", encode(s))).unwrap_or_default();
    let location = format!(
        "{redirect_uri}{separator}{state_param}code={}&scope={}&authuser=0&prompt=consent",
        encode(&code),
        encode(&scope)
    );
    match HeaderValue::from_str(&location) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => text_error(StatusCode::BAD_REQUEST, "redirect_uri_mismatch"),
    }
}

fn oauth_error(code: StatusCode, error: &str, description: &str) -> Response {
    (code, Json(json!({"error": error, "error_description": description}))).into_response()
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// The response a queued fault forces on the token endpoint.
fn token_fault(fault: &Fault) -> Option<Response> {
    Some(match fault {
        Fault::Status429 { retry_after_secs } | Fault::RateLimit403 { retry_after_secs } => {
            let code = if matches!(fault, Fault::Status429 { .. }) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::FORBIDDEN
            };
            with_retry_after(oauth_error(code, "rate_limit_exceeded", "Rate Limit Exceeded"), *retry_after_secs)
        }
        Fault::ServerError500 => oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_failure", "Backend Error"),
        Fault::InvalidGrant => invalid_grant("Bad Request"),
        Fault::InvalidClient => oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized"),
        Fault::UnauthorizedClient => oauth_error(StatusCode::BAD_REQUEST, "unauthorized_client", "Unauthorized"),
        Fault::Slow(_) => return None,
    })
}

/// Client credentials from HTTP Basic auth (`client_secret_basic`) or the form (`client_secret_post`).
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> (String, String) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.split_once(':').map(|(i, s)| (i.to_owned(), s.to_owned())));
    basic.unwrap_or_else(|| {
        let field = |name: &str| form.get(name).cloned().unwrap_or_default();
        (field("client_id"), field("client_secret"))
    })
}

/// `POST /token`: the authorization-code (with PKCE) and refresh-token grants.
async fn token(
    State(shared): State<Shared>,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Response {
    if let Some(response) = prelude(&shared, Endpoint::Token).await.as_ref().and_then(token_fault) {
        return response;
    }
    let Ok(Form(form)) = form else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Bad Request");
    };
    let (client_id, client_secret) = client_credentials(&headers, &form);
    if client_id != CLIENT_ID {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "The OAuth client was not found.");
    }
    if client_secret != CLIENT_SECRET {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let mut state = lock(&shared);
    let lifetime = state.token_lifetime.as_secs();
    match field("grant_type") {
        "authorization_code" => {
            let Some(code) = state.codes.get_mut(field("code")).filter(|c| !c.used) else {
                return invalid_grant("Bad Request");
            };
            if code.redirect_uri != field("redirect_uri") {
                return oauth_error(StatusCode::BAD_REQUEST, "redirect_uri_mismatch", "Bad Request");
            }
            let verifier = field("code_verifier");
            let verified = match &code.challenge {
                None => true,
                Some((challenge, method)) if method == "S256" => {
                    !verifier.is_empty() && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge
                }
                Some((challenge, _)) => verifier == challenge,
            };
            if !verified {
                return invalid_grant("Bad Request");
            }
            code.used = true;
            let (user, scope, offline) = (code.user.clone(), code.scope.clone(), code.offline);
            let access_token = state.issue_access(&user, &scope);
            let mut body =
                json!({"access_token": access_token, "expires_in": lifetime, "scope": scope, "token_type": "Bearer"});
            if offline {
                body["refresh_token"] = Value::String(state.issue_refresh(&user, &scope));
            }
            Json(body).into_response()
        }
        "refresh_token" => {
            let (user, scope) = match state.refresh_tokens.get(field("refresh_token")) {
                None => return invalid_grant("Bad Request"),
                Some(grant) if grant.revoked => return invalid_grant("Token has been expired or revoked."),
                Some(grant) => (grant.user.clone(), grant.scope.clone()),
            };
            let access_token = state.issue_access(&user, &scope);
            Json(json!({"access_token": access_token, "expires_in": lifetime, "scope": scope, "token_type": "Bearer"}))
                .into_response()
        }
        "" => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Invalid grant_type: "),
        other => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &format!("Invalid grant_type: {other}"))
        }
    }
}

/// `maxResults` (default 100, capped at 500) and `pageToken`, or the 400 message.
fn paging(query: &[(String, String)]) -> Result<(usize, Option<u64>), String> {
    let max = match param(query, "maxResults").map(str::parse::<usize>) {
        None | Some(Ok(0)) => 100,
        Some(Ok(n)) => n.min(500),
        Some(Err(_)) => return Err("Invalid value for maxResults. Values must match '[0-9]+'".to_owned()),
    };
    let token = param(query, "pageToken").map(str::parse::<u64>).transpose().map_err(|_| "Invalid pageToken")?;
    Ok((max, token))
}

fn internal() -> Response {
    gmail_error(StatusCode::INTERNAL_SERVER_ERROR, "Backend Error", "global", "backendError")
}

async fn profile(State(shared): State<Shared>, Path(user): Path<String>, headers: HeaderMap) -> Response {
    let caller = match gate(&shared, Endpoint::Profile, &headers, &user).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let state = lock(&shared);
    let Some(mailbox) = state.mailboxes.get(&caller.user) else { return internal() };
    Json(json!({
        "emailAddress": caller.user,
        "messagesTotal": mailbox.messages.len(),
        "threadsTotal": mailbox.thread_sizes.len(),
        "historyId": mailbox.history_id.to_string(),
    }))
    .into_response()
}

async fn list_messages(
    State(shared): State<Shared>,
    Path(user): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Pairs>, QueryRejection>,
) -> Response {
    let caller = match gate(&shared, Endpoint::MessagesList, &headers, &user).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Ok(Query(q)) = query else { return bad_request("Invalid query") };
    let (max, start) = match paging(&q) {
        Ok((max, start)) => (max, start.unwrap_or(u64::MAX)),
        Err(message) => return bad_request(&message),
    };
    let include_spam_trash = param(&q, "includeSpamTrash") == Some("true");
    let label_ids: Vec<&str> = params(&q, "labelIds").collect();
    let state = lock(&shared);
    let Some(mailbox) = state.mailboxes.get(&caller.user) else { return internal() };
    let wanted = |m: &super::state::Message| {
        (include_spam_trash || !m.labels.iter().any(|l| l == "SPAM" || l == "TRASH"))
            && label_ids.iter().all(|l| m.labels.iter().any(|m| m == l))
    };
    let mut page = mailbox.messages.range(..=start).rev().filter(|(_, m)| wanted(m));
    let messages: Vec<Value> =
        page.by_ref().take(max).map(|(_, m)| json!({"id": m.id, "threadId": m.thread_id})).collect();
    let next = page.next().map(|(seq, _)| seq.to_string());
    let mut body = json!({"resultSizeEstimate": mailbox.messages.values().filter(|m| wanted(m)).count()});
    if !messages.is_empty() {
        body["messages"] = Value::Array(messages);
    }
    if let Some(next) = next {
        body["nextPageToken"] = Value::String(next);
    }
    Json(body).into_response()
}

async fn get_message(
    State(shared): State<Shared>,
    Path((user, id)): Path<(String, String)>,
    headers: HeaderMap,
    query: Result<Query<Pairs>, QueryRejection>,
) -> Response {
    let caller = match gate(&shared, Endpoint::MessagesGet, &headers, &user).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Ok(Query(q)) = query else { return bad_request("Invalid query") };
    let format = param(&q, "format").unwrap_or("full");
    if !matches!(format, "raw" | "minimal" | "metadata") {
        return bad_request(&format!("format={format} is not supported by FakeGmail (use raw, metadata or minimal)"));
    }
    if format == "raw" && !caller.has_scope(&[MAIL, MODIFY, READONLY]) {
        return gmail_error(StatusCode::FORBIDDEN, "Metadata scope doesn't allow format RAW", "global", "forbidden");
    }
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad_request("Invalid id value");
    }
    let state = lock(&shared);
    let Some(message) = state.mailboxes.get(&caller.user).and_then(|m| m.get(&id)) else { return not_found() };
    let mut body = json!({
        "id": message.id,
        "threadId": message.thread_id,
        "labelIds": message.labels,
        "snippet": message.snippet,
        "sizeEstimate": message.raw.len(),
        "historyId": message.history_id.to_string(),
        "internalDate": message.internal_date_ms.to_string(),
    });
    match format {
        "raw" => body["raw"] = Value::String(URL_SAFE.encode(&message.raw)),
        "metadata" => {
            let wanted: Vec<&str> = params(&q, "metadataHeaders").collect();
            let all = mime::headers(&message.raw);
            let headers: Vec<Value> = all
                .iter()
                .filter(|(n, _)| wanted.is_empty() || wanted.iter().any(|w| w.eq_ignore_ascii_case(n)))
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect();
            let mime_type = mime::header(&all, "Content-Type")
                .and_then(|v| v.split(';').next())
                .map(|v| v.trim().to_ascii_lowercase())
                .unwrap_or_else(|| "text/plain".to_owned());
            body["payload"] = json!({"partId": "", "mimeType": mime_type, "filename": "", "headers": headers});
        }
        _ => {}
    }
    Json(body).into_response()
}

async fn list_history(
    State(shared): State<Shared>,
    Path(user): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Pairs>, QueryRejection>,
) -> Response {
    let caller = match gate(&shared, Endpoint::HistoryList, &headers, &user).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Ok(Query(q)) = query else { return bad_request("Invalid query") };
    let Some(start) = param(&q, "startHistoryId").and_then(|v| v.parse::<u64>().ok()) else {
        return bad_request("Invalid startHistoryId");
    };
    let (max, token) = match paging(&q) {
        Ok(paging) => paging,
        Err(message) => return bad_request(&message),
    };
    let types: Vec<&str> = params(&q, "historyTypes").collect();
    let label = param(&q, "labelId");
    let state = lock(&shared);
    let Some(mailbox) = state.mailboxes.get(&caller.user) else { return internal() };
    if start < mailbox.history_floor {
        return not_found();
    }
    let from = token.map_or(start.saturating_add(1), |t| t.max(start.saturating_add(1)));
    let first = mailbox.history.partition_point(|r| r.id < from);
    let mut records = mailbox.history.get(first..).unwrap_or_default().iter().filter(|r| {
        let kind = if r.change == Change::Added { "messageAdded" } else { "messageDeleted" };
        (types.is_empty() || types.contains(&kind)) && label.is_none_or(|l| r.labels.iter().any(|x| x == l))
    });
    let history: Vec<Value> = records
        .by_ref()
        .take(max)
        .map(|r| {
            let key = if r.change == Change::Added { "messagesAdded" } else { "messagesDeleted" };
            json!({
                "id": r.id.to_string(),
                "messages": [{"id": r.message_id, "threadId": r.thread_id}],
                key: [{"message": {"id": r.message_id, "threadId": r.thread_id, "labelIds": r.labels}}],
            })
        })
        .collect();
    let mut body = json!({"historyId": mailbox.history_id.to_string()});
    if !history.is_empty() {
        body["history"] = Value::Array(history);
    }
    if let Some(next) = records.next() {
        body["nextPageToken"] = Value::String(next.id.to_string());
    }
    Json(body).into_response()
}

/// Gmail's `raw` is base64url; accept it padded or not, and the standard alphabet too.
fn decode_raw(raw: &str) -> Option<Vec<u8>> {
    let lenient = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient)
        .decode(raw.trim())
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::STANDARD, lenient).decode(raw.trim()))
        .ok()
}

async fn send(
    State(shared): State<Shared>,
    Path(user): Path<String>,
    headers: HeaderMap,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    let caller = match gate(&shared, Endpoint::Send, &headers, &user).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Ok(Json(body)) = body else { return bad_request("Invalid JSON payload received.") };
    let Some(raw) = body.get("raw").and_then(Value::as_str).filter(|r| !r.is_empty()) else {
        return bad_request("'raw' RFC822 payload message string or uploading message via /upload/* URL required");
    };
    let Some(raw) = decode_raw(raw) else { return bad_request("Invalid value for ByteString") };
    let parsed = mime::headers(&raw);
    let has_recipient = ["To", "Cc", "Bcc"].iter().any(|h| mime::header(&parsed, h).is_some_and(|v| v.contains('@')));
    if !has_recipient {
        return bad_request("Recipient address required");
    }
    let thread_hint = body.get("threadId").and_then(Value::as_str).map(str::to_owned);
    let mut state = lock(&shared);
    let id = state.next_id();
    let Some(mailbox) = state.mailboxes.get_mut(&caller.user) else { return internal() };
    let now = chrono::Utc::now().timestamp_millis();
    let labels = vec!["SENT".to_owned()];
    let (thread_id, _) =
        mailbox.insert(id.clone(), raw.clone(), labels.clone(), now, String::new(), thread_hint.as_deref());
    mailbox.sent.push(SentMessage { id: id.clone(), thread_id: thread_id.clone(), raw });
    Json(json!({"id": id, "threadId": thread_id, "labelIds": labels})).into_response()
}

async fn list_send_as(State(shared): State<Shared>, Path(user): Path<String>, headers: HeaderMap) -> Response {
    let caller = match gate(&shared, Endpoint::SendAsList, &headers, &user).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let state = lock(&shared);
    let Some(mailbox) = state.mailboxes.get(&caller.user) else { return internal() };
    let primary = json!({
        "sendAsEmail": caller.user, "displayName": "", "replyToAddress": "", "signature": "",
        "isPrimary": true, "isDefault": true,
    });
    let aliases = mailbox.send_as.iter().map(|a| {
        json!({
            "sendAsEmail": a.email, "displayName": a.display_name, "replyToAddress": "", "signature": "",
            "isPrimary": false, "isDefault": false, "treatAsAlias": true,
            "verificationStatus": if a.verified { "accepted" } else { "pending" },
        })
    });
    Json(json!({"sendAs": std::iter::once(primary).chain(aliases).collect::<Vec<_>>()})).into_response()
}
