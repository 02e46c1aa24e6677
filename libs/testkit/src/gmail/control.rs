//! The fake's own control API, for callers outside this process (the browser tests through
//! `sentra-mesh`, the `make run` demo): not part of Google's API, under `/_fake/`.
//!
//! - `POST /_fake/users/{email}`: adds the user (idempotent).
//! - `POST /_fake/users/{email}/consent`: adds the user and makes the consent page grant as them.
//! - `POST /_fake/users/{email}/messages` with `{"from_name", "from", "subject", "text", "html"?,
//!   "in_reply_to"?}`: delivers a message; answers `{"id", "thread_id", "message_id"}`.
//! - `POST /_fake/users/{email}/send-as` with `{"email", "display_name", "verified"}`.

use axum::Router;
use axum::extract::{Json, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use super::server::{Shared, lock};
use super::state::SendAs;
use super::{MailSpec, deliver_locked};

pub(super) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/_fake/users/{email}", post(add_user))
        .route("/_fake/users/{email}/consent", post(consent))
        .route("/_fake/users/{email}/messages", post(deliver))
        .route("/_fake/users/{email}/send-as", post(send_as))
        .with_state(shared)
}

async fn add_user(State(shared): State<Shared>, Path(email): Path<String>) -> StatusCode {
    lock(&shared).add_user(&email);
    StatusCode::NO_CONTENT
}

async fn consent(State(shared): State<Shared>, Path(email): Path<String>) -> StatusCode {
    let mut state = lock(&shared);
    state.add_user(&email);
    state.consent_as = Some(email);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Mail {
    from_name: String,
    from: String,
    subject: String,
    text: String,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    in_reply_to: Option<String>,
}

async fn deliver(State(shared): State<Shared>, Path(email): Path<String>, Json(mail): Json<Mail>) -> Response {
    let mut state = lock(&shared);
    state.add_user(&email);
    let mut spec = MailSpec::new(&mail.from_name, &mail.from, &mail.subject, &mail.text).to("", &email);
    if let Some(html) = &mail.html {
        spec = spec.html(html);
    }
    if let Some(parent) = &mail.in_reply_to {
        spec = spec.in_reply_to(parent);
    }
    let delivered = deliver_locked(&mut state, &email, spec);
    Json(json!({"id": delivered.id, "thread_id": delivered.thread_id, "message_id": delivered.message_id_header}))
        .into_response()
}

#[derive(Deserialize)]
struct Alias {
    email: String,
    display_name: String,
    verified: bool,
}

async fn send_as(State(shared): State<Shared>, Path(email): Path<String>, Json(alias): Json<Alias>) -> StatusCode {
    let mut state = lock(&shared);
    state.add_user(&email);
    let alias = SendAs { email: alias.email, display_name: alias.display_name, verified: alias.verified };
    state.mailbox_mut(&email).send_as.push(alias);
    StatusCode::NO_CONTENT
}
