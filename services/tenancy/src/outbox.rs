//! The transactional outbox: an event row written in the same transaction as the change.
//!
//! The event bus relay (see `sentra-bus`) publishes unpublished rows in `position` order to the
//! `sentra.events` exchange with the row's routing key, then marks them published.

use sentra_auth::Principal;
use sentra_runtime::context::RequestContext;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

/// Records `routing_key` (`tenancy.brand.created`, ...) about `aggregate_id` of `tenant`.
pub async fn record(
    conn: &mut PgConnection,
    routing_key: &str,
    tenant: Uuid,
    aggregate_id: Uuid,
    actor: Option<&Principal>,
    payload: Value,
) -> Result<(), sqlx::Error> {
    let ctx = RequestContext::current();
    let metadata = json!({
        "actor": actor.map(|p| p.user_id.to_string()),
        "actor_kind": actor.map(|p| p.kind.as_str()),
        "request_id": ctx.as_ref().map(|c| c.request_id.clone()),
        "correlation_id": ctx.as_ref().map(|c| c.request_id.clone()),
        "traceparent": ctx.as_ref().map(RequestContext::traceparent),
    });
    sqlx::query(
        "INSERT INTO outbox (event_id, routing_key, tenant_id, aggregate_id, payload, metadata)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::now_v7())
    .bind(routing_key)
    .bind(tenant)
    .bind(aggregate_id)
    .bind(payload)
    .bind(metadata)
    .execute(conn)
    .await?;
    Ok(())
}
