use std::sync::Arc;
use std::time::Duration;

use sentra_bus::{Envelope, RelayConfig, TableRelay, header_str, headers};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::support::{Probe, count, env, stop, stop_signal, wait_until};

/// The Tenancy outbox, as in `migrations/tenancy`.
const OUTBOX: &str = "CREATE TABLE outbox (
    position     bigserial PRIMARY KEY,
    event_id     uuid NOT NULL UNIQUE,
    routing_key  text NOT NULL,
    tenant_id    uuid NOT NULL,
    aggregate_id uuid NOT NULL,
    payload      jsonb NOT NULL,
    metadata     jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
)";

async fn record(pool: &PgPool, routing_key: &str, tenant: Uuid, aggregate_id: Uuid) -> Uuid {
    let event_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO outbox (event_id, routing_key, tenant_id, aggregate_id, payload, metadata) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event_id)
    .bind(routing_key)
    .bind(tenant)
    .bind(aggregate_id)
    .bind(json!({ "key": routing_key }))
    .bind(json!({ "correlation_id": "req-7", "traceparent": "00-abc-def-01", "actor": null }))
    .execute(pool)
    .await
    .unwrap();
    event_id
}

#[tokio::test]
async fn table_relay_publishes_outbox_rows_in_order_and_marks_them_published() {
    let env = env().await;
    sqlx::query(OUTBOX).execute(&env.pool).await.unwrap();
    let mut probe = Probe::bind(&env.broker, &["tenancy.#"]).await;
    let tenant = Uuid::new_v4();
    let brand = Uuid::new_v4();
    let user = Uuid::new_v4();
    let rows = [
        (record(&env.pool, "tenancy.brand.created", tenant, brand).await, "tenancy.brand.created", brand),
        (record(&env.pool, "tenancy.user.invited", tenant, user).await, "tenancy.user.invited", user),
        (record(&env.pool, "tenancy.brand.renamed", tenant, brand).await, "tenancy.brand.renamed", brand),
    ];
    assert!(TableRelay::new(env.pool.clone(), "outbox; DROP TABLE x", RelayConfig::new(env.broker.clone())).is_err());
    let relay = Arc::new(
        TableRelay::new(
            env.pool.clone(),
            "outbox",
            RelayConfig::new(env.broker.clone()).with_poll_interval(Duration::from_millis(100)),
        )
        .unwrap(),
    );
    assert_eq!(relay.pending().await.unwrap(), 3);
    let (tx, signal) = stop_signal();
    let task = tokio::spawn({
        let relay = relay.clone();
        async move { relay.run(signal).await }
    });

    let mut last_sequence = 0;
    for (event_id, key, aggregate_id) in rows {
        let delivery = probe.next().await;
        assert_eq!(delivery.routing_key.as_str(), key);
        assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), event_id.to_string());
        assert_eq!(*delivery.properties.delivery_mode(), Some(2));
        assert_eq!(header_str(&delivery.properties, headers::TENANT_ID).unwrap(), tenant.to_string());
        assert_eq!(header_str(&delivery.properties, headers::CORRELATION_ID).unwrap(), "req-7");
        // A malformed trace context cannot be continued: the publish span starts a trace.
        let traceparent = header_str(&delivery.properties, headers::TRACEPARENT).unwrap();
        assert!(traceparent.starts_with("00-") && traceparent.len() == 55, "{traceparent}");
        let envelope = Envelope::from_message(&delivery.properties, &delivery.data).unwrap();
        assert_eq!(envelope.event_id, event_id);
        assert_eq!(envelope.aggregate_id, aggregate_id.to_string());
        assert_eq!(envelope.aggregate_type, key.split('.').nth(1).unwrap());
        assert_eq!(envelope.event_type, key.split('.').nth(2).unwrap());
        assert_eq!(envelope.decode_payload::<serde_json::Value>().unwrap()["key"], key);
        assert!(envelope.sequence > last_sequence, "outbox order");
        last_sequence = envelope.sequence;
    }
    let pool = env.pool.clone();
    wait_until("the rows to be marked published", || {
        let pool = pool.clone();
        async move { count(&pool, "SELECT count(*) FROM outbox WHERE published_at IS NULL").await == 0 }
    })
    .await;
    assert!(relay.is_active() && relay.is_connected());

    // A row written while the relay runs is published, and nothing is published twice.
    let live = record(&env.pool, "tenancy.brand.deleted", tenant, brand).await;
    let delivery = probe.next().await;
    assert_eq!(delivery.properties.message_id().as_ref().unwrap().as_str(), live.to_string());
    probe.assert_quiet(Duration::from_secs(1)).await;
    stop(tx, task).await;
    assert_eq!(relay.pending().await.unwrap(), 0);
    assert_eq!(count(&env.pool, "SELECT count(*) FROM outbox WHERE published_at IS NOT NULL").await, 4);
}
