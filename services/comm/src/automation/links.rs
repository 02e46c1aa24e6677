//! The unsubscribe link of client-facing mail, as plain HTTP on Comm's port (the gateway passes
//! `/email/unsubscribe` through): `POST` is the one-click unsubscribe of RFC 8058 (mail clients
//! send `List-Unsubscribe=One-Click`; a form button sends the same), `GET` only shows a page with
//! that button, because link scanners fetch every URL in a message and must not unsubscribe
//! anybody.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use sqlx::PgPool;

use super::mailer::{Links, unsubscribe};

/// The path of the link.
pub const PATH: &str = "/email/unsubscribe";

#[derive(Clone)]
struct Shared {
    pool: PgPool,
    links: Links,
}

/// The routes, to merge beside the gRPC services.
pub fn router(pool: PgPool, links: Links) -> Router {
    Router::new().route(PATH, get(page).post(one_click)).with_state(Shared { pool, links })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn token(query: Option<&str>) -> &str {
    query.unwrap_or_default().split('&').find_map(|pair| pair.strip_prefix("token=")).unwrap_or_default()
}

fn document(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width\"><title>{title}</title></head><body style=\"font-family: system-ui, \
         sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem\"><h1>{title}</h1>{body}</body></html>"
    );
    (status, Html(html)).into_response()
}

fn invalid() -> Response {
    document(StatusCode::BAD_REQUEST, "This link does not work", "<p>It may have been copied incompletely.</p>")
}

async fn page(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let token = token(query.as_deref());
    let Some((brand, address)) = shared.links.read(token) else { return invalid() };
    let name: Option<String> = sqlx::query_scalar(
        "SELECT CASE WHEN display_name = '' THEN name ELSE display_name END FROM known_brands WHERE brand_id = $1",
    )
    .bind(brand)
    .fetch_optional(&shared.pool)
    .await
    .ok()
    .flatten();
    let name = escape(&name.unwrap_or_else(|| "this sender".into()));
    document(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop automated emails from {name} to <strong>{}</strong>?</p><form method=\"post\" \
             action=\"{PATH}?token={}\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button \
             type=\"submit\">Unsubscribe</button></form>",
            escape(&address),
            escape(token)
        ),
    )
}

async fn one_click(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let Some((brand, address)) = shared.links.read(token(query.as_deref())) else { return invalid() };
    match unsubscribe(&shared.pool, brand, &address).await {
        Ok(Some(name)) => document(
            StatusCode::OK,
            "You are unsubscribed",
            &format!(
                "<p>{} will no longer send automated emails to <strong>{}</strong>.</p>",
                escape(&name),
                escape(&address)
            ),
        ),
        Ok(None) => invalid(),
        Err(error) => {
            tracing::warn!(%error, "Unsubscribe not recorded.");
            document(StatusCode::SERVICE_UNAVAILABLE, "Please try again", "<p>We could not record it just now.</p>")
        }
    }
}
