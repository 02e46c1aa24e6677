//! The `invoices` read table, projected from invoice events, for lists and balances.

use sentra_event_store::{EventStoreError, Projection, RecordedEvent, Result};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::invoice::{Invoice, InvoiceEvent};

/// The `invoices` table: one row per invoice with its money columns and status.
pub struct InvoicesProjection;

#[sentra_event_store::async_trait]
impl Projection for InvoicesProjection {
    fn name(&self) -> &str {
        "finance.invoices"
    }

    fn table(&self) -> &str {
        "invoices"
    }

    fn create_table_sql(&self, table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                id uuid PRIMARY KEY, tenant_id uuid NOT NULL, brand_id uuid NOT NULL, client_id uuid NOT NULL,
                order_id uuid, number text NOT NULL DEFAULT '', status text NOT NULL, currency text NOT NULL,
                total bigint NOT NULL, paid bigint NOT NULL DEFAULT 0, credited bigint NOT NULL DEFAULT 0,
                balance bigint NOT NULL, overpaid bigint NOT NULL DEFAULT 0,
                issue_date date, due_date date, state jsonb NOT NULL,
                version bigint NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL
            );
            CREATE INDEX ON {table} (tenant_id, created_at DESC, id DESC);
            CREATE INDEX ON {table} (tenant_id, client_id);
            CREATE INDEX ON {table} (status, due_date);"
        )
    }

    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()> {
        if event.aggregate_type != "invoice" {
            return Ok(());
        }
        let id = Uuid::parse_str(&event.aggregate_id).map_err(|e| EventStoreError::Projection(Box::new(e)))?;
        let decoded: InvoiceEvent = event.decode()?;
        // The row keeps the folded state, so each event is one read and one write whatever its type.
        let current: Option<serde_json::Value> =
            sqlx::query_scalar(&format!("SELECT state FROM {table} WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        let mut state: Invoice = match current {
            Some(json) => serde_json::from_value(json)?,
            None => Invoice::default(),
        };
        cqrs_es::Aggregate::apply(&mut state, decoded);
        let version = i64::try_from(event.sequence).unwrap_or(i64::MAX);
        sqlx::query(&format!(
            "INSERT INTO {table} (id, tenant_id, brand_id, client_id, order_id, number, status, currency, total, paid, credited,
                 balance, overpaid, issue_date, due_date, state, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
             ON CONFLICT (id) DO UPDATE SET number = $6, status = $7, total = $9, paid = $10, credited = $11, balance = $12,
                 overpaid = $13, issue_date = $14, due_date = $15, state = $16, version = $17, updated_at = $19"
        ))
        .bind(id)
        .bind(event.tenant_id)
        .bind(state.brand_id)
        .bind(state.client_id)
        .bind(state.order_id)
        .bind(&state.number)
        .bind(state.status.as_str())
        .bind(&state.currency)
        .bind(state.totals.total)
        .bind(state.paid())
        .bind(state.credited())
        .bind(state.balance())
        .bind(state.overpaid())
        .bind(state.issue_date)
        .bind(state.due_date)
        .bind(serde_json::to_value(&state)?)
        .bind(version)
        .bind(state.created_at.unwrap_or(event.recorded_at))
        .bind(state.updated_at.unwrap_or(event.recorded_at))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}
