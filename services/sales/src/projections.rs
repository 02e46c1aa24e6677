//! Read tables projected from the event feed: `leads`, `clients`, `orders`.
//!
//! Each projection runs under `sentra-event-store`'s runner: one active instance across replicas,
//! every event applied in the same transaction as the checkpoint, rebuildable from position zero.
//! A batch is set-based ([`sentra_event_store::rows`]): one read of the rows it touches, the events
//! folded in memory, one upsert of the changed rows.
//! Rows carry the aggregate's version (`etag`) so list answers can be compared with `Get` answers.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sentra_event_store::{Projection, RecordedEvent, Result, rows};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::client::ClientEvent;
use crate::domain::lead::{LeadEvent, Stage};
use crate::domain::order::OrderEvent;

fn id_of(event: &RecordedEvent) -> Result<Uuid> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| sentra_event_store::EventStoreError::Projection(Box::new(e)))
}

fn seq(event: &RecordedEvent) -> i64 {
    i64::try_from(event.sequence).unwrap_or(i64::MAX)
}

/// The batch's events of `aggregate_type`, decoded, with their aggregate ids.
fn decode<'a, E: DeserializeOwned>(
    events: &'a [RecordedEvent],
    aggregate_type: &str,
) -> Result<Vec<(&'a RecordedEvent, Uuid, E)>> {
    events.iter().filter(|e| e.aggregate_type == aggregate_type).map(|e| Ok((e, id_of(e)?, e.decode::<E>()?))).collect()
}

/// A row of `leads` (the columns of `migrations/sales`, in any order).
#[derive(Serialize, Deserialize)]
struct LeadRow {
    id: Uuid,
    tenant_id: Uuid,
    brand_id: Uuid,
    contact_name: String,
    email: String,
    phone: String,
    company: String,
    source: String,
    value_currency: String,
    value_minor: i64,
    notes: String,
    stage: String,
    assignee_id: Option<Uuid>,
    lost_reason: String,
    client_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl LeadRow {
    /// What an existing row gets replaced with.
    const COLUMNS: &[&str] = &[
        "contact_name",
        "email",
        "phone",
        "company",
        "source",
        "value_currency",
        "value_minor",
        "notes",
        "stage",
        "assignee_id",
        "lost_reason",
        "client_id",
        "version",
        "updated_at",
    ];
}

/// A row of `clients`.
#[derive(Serialize, Deserialize)]
struct ClientRow {
    id: Uuid,
    tenant_id: Uuid,
    brand_id: Uuid,
    contact_name: String,
    email: String,
    phone: String,
    company: String,
    lead_ids: Vec<Uuid>,
    archived: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl ClientRow {
    const COLUMNS: &[&str] =
        &["contact_name", "email", "phone", "company", "lead_ids", "archived", "version", "updated_at"];
}

/// A row of `orders`.
#[derive(Serialize, Deserialize)]
struct OrderRow {
    id: Uuid,
    tenant_id: Uuid,
    brand_id: Uuid,
    client_id: Uuid,
    currency: String,
    lines: serde_json::Value,
    subtotal: i64,
    discount_total: i64,
    tax_total: i64,
    total: i64,
    state: String,
    cancel_reason: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl OrderRow {
    const COLUMNS: &[&str] = &[
        "lines",
        "subtotal",
        "discount_total",
        "tax_total",
        "total",
        "state",
        "cancel_reason",
        "version",
        "updated_at",
    ];
}

/// The `leads` table.
pub struct LeadsProjection;

#[sentra_event_store::async_trait]
impl Projection for LeadsProjection {
    fn name(&self) -> &str {
        "sales.leads"
    }

    fn table(&self) -> &str {
        "leads"
    }

    /// One read of the touched rows, the events folded in memory, one write of the changed ones.
    async fn apply_batch(&self, conn: &mut PgConnection, table: &str, events: &[RecordedEvent]) -> Result<()> {
        let decoded = decode::<LeadEvent>(events, "lead")?;
        let mut rows: HashMap<Uuid, LeadRow> =
            rows::load(conn, table, &rows::ids_to_load(decoded.iter().map(|(e, id, _)| (*e, *id)))).await?;
        for (event, id, lead_event) in decoded {
            let v = seq(event);
            if let LeadEvent::Created { brand_id, contact, source, estimated_value, notes, assignee_id, at } =
                lead_event
            {
                rows.insert(
                    id,
                    LeadRow {
                        id,
                        tenant_id: event.tenant_id,
                        brand_id,
                        contact_name: contact.contact_name,
                        email: contact.email,
                        phone: contact.phone,
                        company: contact.company,
                        source,
                        value_currency: estimated_value.currency,
                        value_minor: estimated_value.amount_minor,
                        notes,
                        stage: Stage::New.as_str().to_owned(),
                        assignee_id,
                        lost_reason: String::new(),
                        client_id: None,
                        version: v,
                        created_at: at,
                        updated_at: at,
                    },
                );
                continue;
            }
            // An event of a lead the table does not have changes nothing (as an UPDATE would not).
            let Some(row) = rows.get_mut(&id) else { continue };
            row.version = v;
            match lead_event {
                LeadEvent::Created { .. } => {}
                LeadEvent::Updated { contact, source, estimated_value, notes, at } => {
                    row.contact_name = contact.contact_name;
                    row.email = contact.email;
                    row.phone = contact.phone;
                    row.company = contact.company;
                    row.source = source;
                    row.value_currency = estimated_value.currency;
                    row.value_minor = estimated_value.amount_minor;
                    row.notes = notes;
                    row.updated_at = at;
                }
                LeadEvent::Assigned { to, at, .. } => {
                    row.assignee_id = Some(to);
                    row.updated_at = at;
                }
                LeadEvent::StageChanged { to, at, .. } | LeadEvent::Reopened { to, at } => {
                    to.as_str().clone_into(&mut row.stage);
                    row.lost_reason.clear();
                    row.updated_at = at;
                }
                LeadEvent::NoteAdded { at, .. } => row.updated_at = at,
                LeadEvent::Lost { reason, at, .. } => {
                    Stage::Lost.as_str().clone_into(&mut row.stage);
                    row.lost_reason = reason;
                    row.updated_at = at;
                }
                LeadEvent::Converted { client_id, at, .. } => {
                    Stage::Won.as_str().clone_into(&mut row.stage);
                    row.client_id = Some(client_id);
                    row.updated_at = at;
                }
            }
        }
        let changed: Vec<&LeadRow> = rows.values().collect();
        rows::upsert(conn, table, &changed, LeadRow::COLUMNS).await
    }

    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()> {
        self.apply_batch(conn, table, std::slice::from_ref(event)).await
    }
}

/// The `clients` table.
pub struct ClientsProjection;

#[sentra_event_store::async_trait]
impl Projection for ClientsProjection {
    fn name(&self) -> &str {
        "sales.clients"
    }

    fn table(&self) -> &str {
        "clients"
    }

    async fn apply_batch(&self, conn: &mut PgConnection, table: &str, events: &[RecordedEvent]) -> Result<()> {
        let decoded = decode::<ClientEvent>(events, "client")?;
        let mut rows: HashMap<Uuid, ClientRow> =
            rows::load(conn, table, &rows::ids_to_load(decoded.iter().map(|(e, id, _)| (*e, *id)))).await?;
        for (event, id, client_event) in decoded {
            let v = seq(event);
            if let ClientEvent::Created { brand_id, contact, lead_id, at } = client_event {
                rows.insert(
                    id,
                    ClientRow {
                        id,
                        tenant_id: event.tenant_id,
                        brand_id,
                        contact_name: contact.contact_name,
                        email: contact.email,
                        phone: contact.phone,
                        company: contact.company,
                        lead_ids: vec![lead_id],
                        archived: false,
                        version: v,
                        created_at: at,
                        updated_at: at,
                    },
                );
                continue;
            }
            let Some(row) = rows.get_mut(&id) else { continue };
            row.version = v;
            match client_event {
                ClientEvent::Created { .. } => {}
                ClientEvent::LeadMerged { lead_id, at } => {
                    row.lead_ids.push(lead_id);
                    row.updated_at = at;
                }
                ClientEvent::Updated { contact, at } => {
                    row.contact_name = contact.contact_name;
                    row.email = contact.email;
                    row.phone = contact.phone;
                    row.company = contact.company;
                    row.updated_at = at;
                }
                ClientEvent::Archived { at } => {
                    row.archived = true;
                    row.updated_at = at;
                }
            }
        }
        let changed: Vec<&ClientRow> = rows.values().collect();
        rows::upsert(conn, table, &changed, ClientRow::COLUMNS).await
    }

    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()> {
        self.apply_batch(conn, table, std::slice::from_ref(event)).await
    }
}

/// The `orders` table (lines as JSON, totals as columns).
pub struct OrdersProjection;

#[sentra_event_store::async_trait]
impl Projection for OrdersProjection {
    fn name(&self) -> &str {
        "sales.orders"
    }

    fn table(&self) -> &str {
        "orders"
    }

    async fn apply_batch(&self, conn: &mut PgConnection, table: &str, events: &[RecordedEvent]) -> Result<()> {
        let decoded = decode::<OrderEvent>(events, "order")?;
        let mut rows: HashMap<Uuid, OrderRow> =
            rows::load(conn, table, &rows::ids_to_load(decoded.iter().map(|(e, id, _)| (*e, *id)))).await?;
        for (event, id, order_event) in decoded {
            let v = seq(event);
            if let OrderEvent::Created { brand_id, client_id, currency, lines, totals, at } = order_event {
                rows.insert(
                    id,
                    OrderRow {
                        id,
                        tenant_id: event.tenant_id,
                        brand_id,
                        client_id,
                        currency,
                        lines: serde_json::to_value(&lines)?,
                        subtotal: totals.subtotal,
                        discount_total: totals.discount,
                        tax_total: totals.tax,
                        total: totals.total,
                        state: "draft".into(),
                        cancel_reason: String::new(),
                        version: v,
                        created_at: at,
                        updated_at: at,
                    },
                );
                continue;
            }
            let Some(row) = rows.get_mut(&id) else { continue };
            row.version = v;
            match order_event {
                OrderEvent::Created { .. } => {}
                OrderEvent::LinesUpdated { lines, totals, at, .. } => {
                    row.lines = serde_json::to_value(&lines)?;
                    row.subtotal = totals.subtotal;
                    row.discount_total = totals.discount;
                    row.tax_total = totals.tax;
                    row.total = totals.total;
                    row.updated_at = at;
                }
                OrderEvent::Confirmed { at, .. } => {
                    row.state = "confirmed".into();
                    row.updated_at = at;
                }
                OrderEvent::Fulfilled { at } => {
                    row.state = "fulfilled".into();
                    row.updated_at = at;
                }
                OrderEvent::Cancelled { reason, at } => {
                    row.state = "cancelled".into();
                    row.cancel_reason = reason;
                    row.updated_at = at;
                }
            }
        }
        let changed: Vec<&OrderRow> = rows.values().collect();
        rows::upsert(conn, table, &changed, OrderRow::COLUMNS).await
    }

    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()> {
        self.apply_batch(conn, table, std::slice::from_ref(event)).await
    }
}
