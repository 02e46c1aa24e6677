//! The `invoices` read table, projected from invoice events, for lists and balances. A batch is
//! set-based ([`sentra_event_store::rows`]): one read of the touched rows' folded states, the
//! events folded in memory, one upsert.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use sentra_event_store::{EventStoreError, Projection, RecordedEvent, Result, rows};
use serde::{Deserialize, Serialize};
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

    /// One read of the touched invoices' folded states, the events folded in memory, one upsert.
    async fn apply_batch(&self, conn: &mut PgConnection, table: &str, events: &[RecordedEvent]) -> Result<()> {
        let mut decoded = Vec::new();
        for event in events.iter().filter(|e| e.aggregate_type == "invoice") {
            let id = Uuid::parse_str(&event.aggregate_id).map_err(|e| EventStoreError::Projection(Box::new(e)))?;
            decoded.push((event, id, event.decode::<InvoiceEvent>()?));
        }
        let ids = rows::ids_to_load(decoded.iter().map(|(e, id, _)| (*e, *id)));
        let loaded: HashMap<Uuid, InvoiceRow> = rows::load(conn, table, &ids).await?;
        // Per invoice: tenant, folded state, version, and the recorded times standing in for a
        // state without its own (created: the first event's, updated: the last one's).
        let mut states: HashMap<Uuid, (Uuid, Invoice, i64, DateTime<Utc>, DateTime<Utc>)> = HashMap::new();
        for (id, row) in loaded {
            let state: Invoice = serde_json::from_value(row.state)?;
            states.insert(id, (row.tenant_id, state, row.version, row.created_at, row.updated_at));
        }
        for (event, id, invoice_event) in decoded {
            let at = event.recorded_at;
            let entry = states.entry(id).or_insert_with(|| (event.tenant_id, Invoice::default(), 0, at, at));
            cqrs_es::Aggregate::apply(&mut entry.1, invoice_event);
            entry.2 = i64::try_from(event.sequence).unwrap_or(i64::MAX);
            entry.4 = at;
        }
        let rows: Vec<InvoiceRow> = states
            .into_iter()
            .map(|(id, (tenant, state, version, created, updated))| {
                InvoiceRow::of(id, tenant, &state, version, (created, updated))
            })
            .collect::<Result<_>>()?;
        rows::upsert(conn, table, &rows.iter().collect::<Vec<_>>(), InvoiceRow::COLUMNS).await
    }

    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()> {
        self.apply_batch(conn, table, std::slice::from_ref(event)).await
    }
}

/// A row of `invoices` (the columns of `migrations/finance`): the folded state and its money
/// columns.
#[derive(Serialize, Deserialize)]
struct InvoiceRow {
    id: Uuid,
    tenant_id: Uuid,
    brand_id: Uuid,
    client_id: Uuid,
    order_id: Option<Uuid>,
    number: String,
    status: String,
    currency: String,
    total: i64,
    paid: i64,
    credited: i64,
    balance: i64,
    overpaid: i64,
    issue_date: Option<NaiveDate>,
    due_date: Option<NaiveDate>,
    state: serde_json::Value,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl InvoiceRow {
    /// What an existing row gets replaced with.
    const COLUMNS: &[&str] = &[
        "number",
        "status",
        "total",
        "paid",
        "credited",
        "balance",
        "overpaid",
        "issue_date",
        "due_date",
        "state",
        "version",
        "updated_at",
    ];

    fn of(
        id: Uuid,
        tenant_id: Uuid,
        state: &Invoice,
        version: i64,
        (created, updated): (DateTime<Utc>, DateTime<Utc>),
    ) -> Result<Self> {
        Ok(Self {
            id,
            tenant_id,
            brand_id: state.brand_id,
            client_id: state.client_id,
            order_id: state.order_id,
            number: state.number.clone(),
            status: state.status.as_str().to_owned(),
            currency: state.currency.clone(),
            total: state.totals.total,
            paid: state.paid(),
            credited: state.credited(),
            balance: state.balance(),
            overpaid: state.overpaid(),
            issue_date: state.issue_date,
            due_date: state.due_date,
            state: serde_json::to_value(state)?,
            version,
            created_at: state.created_at.unwrap_or(created),
            updated_at: state.updated_at.unwrap_or(updated),
        })
    }
}
