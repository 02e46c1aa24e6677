//! `invoice_timeline`: the valid-time history of every invoice's open balance, so receivables
//! "now" and "as of t" are one index range scan aggregated in SQL instead of a fold of every
//! invoice event of the tenant.
//!
//! One row per invoice between two of its events: status, balance, due date, brand and currency,
//! valid over recorded time `[sys_from, sys_to)`. `sys_from` is the running maximum of the
//! stream's recorded times, so the rows valid at `t` are the states
//! [`sentra_event_store::EventStore::read_type_as_of`] folds for `t`. The current row (`sys_to IS
//! NULL`) also keeps the folded invoice (`state`), which the next event is applied to; closed rows
//! drop it.

use sentra_event_store::{EventStoreError, Projection, RecordedEvent, Result};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::invoice::{Invoice, InvoiceEvent};

/// The `invoice_timeline` table.
pub struct InvoiceTimelineProjection;

#[sentra_event_store::async_trait]
impl Projection for InvoiceTimelineProjection {
    fn name(&self) -> &str {
        "finance.invoice_timeline"
    }

    fn table(&self) -> &str {
        "invoice_timeline"
    }

    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()> {
        if event.aggregate_type != "invoice" {
            return Ok(());
        }
        let id = Uuid::parse_str(&event.aggregate_id).map_err(|e| EventStoreError::Projection(Box::new(e)))?;
        let decoded: InvoiceEvent = event.decode()?;
        let current: Option<(serde_json::Value, chrono::DateTime<chrono::Utc>)> =
            sqlx::query_as(&format!("SELECT state, stream_sys FROM {table} WHERE invoice_id = $1 AND sys_to IS NULL"))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        let (mut state, since) = match current {
            Some((json, since)) => (serde_json::from_value::<Invoice>(json)?, Some(since)),
            None => (Invoice::default(), None),
        };
        let sys = since.map_or(event.recorded_at, |since| since.max(event.recorded_at));
        if since.is_some() {
            sqlx::query(&format!(
                "UPDATE {table} SET sys_to = $2, state = NULL WHERE invoice_id = $1 AND sys_to IS NULL"
            ))
            .bind(id)
            .bind(sys)
            .execute(&mut *conn)
            .await?;
        }
        cqrs_es::Aggregate::apply(&mut state, decoded);
        sqlx::query(&format!(
            "INSERT INTO {table} (tenant_id, invoice_id, brand_id, currency, status, balance, due_date, sys_from,
                                  stream_sys, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)"
        ))
        .bind(event.tenant_id)
        .bind(id)
        .bind(state.brand_id)
        .bind(&state.currency)
        .bind(state.status.as_str())
        .bind(state.balance())
        .bind(state.due_date)
        .bind(sys)
        .bind(serde_json::to_value(&state)?)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
