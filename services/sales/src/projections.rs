//! Read tables projected from the event feed: `leads`, `clients`, `orders`.
//!
//! Each projection runs under `sentra-event-store`'s runner: one active instance across replicas,
//! every event applied in the same transaction as the checkpoint, rebuildable from position zero.
//! Rows carry the aggregate's version (`etag`) so list answers can be compared with `Get` answers.

use sentra_event_store::{Projection, RecordedEvent, Result};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::client::ClientEvent;
use crate::domain::lead::LeadEvent;
use crate::domain::order::OrderEvent;

fn id_of(event: &RecordedEvent) -> Result<Uuid> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| sentra_event_store::EventStoreError::Projection(Box::new(e)))
}

fn seq(event: &RecordedEvent) -> i64 {
    i64::try_from(event.sequence).unwrap_or(i64::MAX)
}

/// Lead creations collected for one multi-row insert.
#[derive(Default)]
struct NewLeads {
    ids: Vec<Uuid>,
    tenants: Vec<Uuid>,
    brands: Vec<Uuid>,
    names: Vec<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    companies: Vec<String>,
    sources: Vec<String>,
    currencies: Vec<String>,
    values: Vec<i64>,
    notes: Vec<String>,
    assignees: Vec<Option<Uuid>>,
    versions: Vec<i64>,
    times: Vec<chrono::DateTime<chrono::Utc>>,
}

impl NewLeads {
    #[allow(clippy::too_many_arguments, reason = "one argument per column")]
    fn push(
        &mut self,
        id: Uuid,
        tenant: Uuid,
        brand: Uuid,
        contact: crate::domain::lead::Contact,
        source: String,
        value: crate::domain::lead::Value,
        notes: String,
        assignee: Option<Uuid>,
        version: i64,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        self.ids.push(id);
        self.tenants.push(tenant);
        self.brands.push(brand);
        self.names.push(contact.contact_name);
        self.emails.push(contact.email);
        self.phones.push(contact.phone);
        self.companies.push(contact.company);
        self.sources.push(source);
        self.currencies.push(value.currency);
        self.values.push(value.amount_minor);
        self.notes.push(notes);
        self.assignees.push(assignee);
        self.versions.push(version);
        self.times.push(at);
    }

    async fn flush(&mut self, conn: &mut PgConnection, table: &str) -> Result<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(self);
        sqlx::query(&format!(
            "INSERT INTO {table} (id, tenant_id, brand_id, contact_name, email, phone, company, source,
                 value_currency, value_minor, notes, stage, assignee_id, version, created_at, updated_at)
             SELECT id, tenant_id, brand_id, contact_name, email, phone, company, source, value_currency, value_minor, notes,
                    'new', assignee_id, version, at, at
             FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                         $9::text[], $10::bigint[], $11::text[], $12::uuid[], $13::bigint[], $14::timestamptz[])
                  AS t(id, tenant_id, brand_id, contact_name, email, phone, company, source, value_currency, value_minor,
                       notes, assignee_id, version, at)"
        ))
        .bind(batch.ids)
        .bind(batch.tenants)
        .bind(batch.brands)
        .bind(batch.names)
        .bind(batch.emails)
        .bind(batch.phones)
        .bind(batch.companies)
        .bind(batch.sources)
        .bind(batch.currencies)
        .bind(batch.values)
        .bind(batch.notes)
        .bind(batch.assignees)
        .bind(batch.versions)
        .bind(batch.times)
        .execute(conn)
        .await?;
        Ok(())
    }
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

    fn create_table_sql(&self, table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                id uuid PRIMARY KEY, tenant_id uuid NOT NULL, brand_id uuid NOT NULL,
                contact_name text NOT NULL, email text NOT NULL, phone text NOT NULL, company text NOT NULL,
                source text NOT NULL, value_currency text NOT NULL, value_minor bigint NOT NULL, notes text NOT NULL,
                stage text NOT NULL, assignee_id uuid, lost_reason text NOT NULL DEFAULT '', client_id uuid,
                version bigint NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL
            );
            CREATE INDEX ON {table} (tenant_id, created_at DESC, id DESC);
            CREATE INDEX ON {table} (tenant_id, brand_id, stage);"
        )
    }

    /// Consecutive creations (the bulk of a busy pipeline) go in as one multi-row insert; every
    /// other event is applied in order, after the creations before it.
    async fn apply_batch(&self, conn: &mut PgConnection, table: &str, events: &[RecordedEvent]) -> Result<()> {
        let mut created = NewLeads::default();
        for event in events {
            if event.aggregate_type != "lead" {
                continue;
            }
            if event.event_type == "created"
                && let LeadEvent::Created { brand_id, contact, source, estimated_value, notes, assignee_id, at } =
                    event.decode::<LeadEvent>()?
            {
                created.push(
                    id_of(event)?,
                    event.tenant_id,
                    brand_id,
                    contact,
                    source,
                    estimated_value,
                    notes,
                    assignee_id,
                    seq(event),
                    at,
                );
                continue;
            }
            created.flush(conn, table).await?;
            self.apply(conn, table, event).await?;
        }
        created.flush(conn, table).await
    }

    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()> {
        if event.aggregate_type != "lead" {
            return Ok(());
        }
        let id = id_of(event)?;
        let v = seq(event);
        match event.decode::<LeadEvent>()? {
            LeadEvent::Created { brand_id, contact, source, estimated_value, notes, assignee_id, at } => {
                sqlx::query(&format!(
                    "INSERT INTO {table} (id, tenant_id, brand_id, contact_name, email, phone, company, source,
                         value_currency, value_minor, notes, stage, assignee_id, version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'new', $12, $13, $14, $14)"
                ))
                .bind(id)
                .bind(event.tenant_id)
                .bind(brand_id)
                .bind(contact.contact_name)
                .bind(contact.email)
                .bind(contact.phone)
                .bind(contact.company)
                .bind(source)
                .bind(estimated_value.currency)
                .bind(estimated_value.amount_minor)
                .bind(notes)
                .bind(assignee_id)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            LeadEvent::Updated { contact, source, estimated_value, notes, at } => {
                sqlx::query(&format!(
                    "UPDATE {table} SET contact_name = $2, email = $3, phone = $4, company = $5, source = $6,
                         value_currency = $7, value_minor = $8, notes = $9, version = $10, updated_at = $11 WHERE id = $1"
                ))
                .bind(id)
                .bind(contact.contact_name)
                .bind(contact.email)
                .bind(contact.phone)
                .bind(contact.company)
                .bind(source)
                .bind(estimated_value.currency)
                .bind(estimated_value.amount_minor)
                .bind(notes)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            LeadEvent::Assigned { to, at, .. } => {
                sqlx::query(&format!(
                    "UPDATE {table} SET assignee_id = $2, version = $3, updated_at = $4 WHERE id = $1"
                ))
                .bind(id)
                .bind(to)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            LeadEvent::StageChanged { to, at, .. } | LeadEvent::Reopened { to, at } => {
                sqlx::query(&format!(
                    "UPDATE {table} SET stage = $2, lost_reason = '', version = $3, updated_at = $4 WHERE id = $1"
                ))
                .bind(id)
                .bind(to.as_str())
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            LeadEvent::NoteAdded { at, .. } => {
                sqlx::query(&format!("UPDATE {table} SET version = $2, updated_at = $3 WHERE id = $1"))
                    .bind(id)
                    .bind(v)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
            }
            LeadEvent::Lost { reason, at, .. } => {
                sqlx::query(&format!(
                    "UPDATE {table} SET stage = 'lost', lost_reason = $2, version = $3, updated_at = $4 WHERE id = $1"
                ))
                .bind(id)
                .bind(reason)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            LeadEvent::Converted { client_id, at, .. } => {
                sqlx::query(&format!(
                    "UPDATE {table} SET stage = 'won', client_id = $2, version = $3, updated_at = $4 WHERE id = $1"
                ))
                .bind(id)
                .bind(client_id)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
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

    fn create_table_sql(&self, table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                id uuid PRIMARY KEY, tenant_id uuid NOT NULL, brand_id uuid NOT NULL,
                contact_name text NOT NULL, email text NOT NULL, phone text NOT NULL, company text NOT NULL,
                lead_ids uuid[] NOT NULL, archived boolean NOT NULL DEFAULT false,
                version bigint NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL
            );
            CREATE INDEX ON {table} (tenant_id, created_at DESC, id DESC);"
        )
    }

    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()> {
        if event.aggregate_type != "client" {
            return Ok(());
        }
        let id = id_of(event)?;
        let v = seq(event);
        match event.decode::<ClientEvent>()? {
            ClientEvent::Created { brand_id, contact, lead_id, at } => {
                sqlx::query(&format!(
                    "INSERT INTO {table} (id, tenant_id, brand_id, contact_name, email, phone, company, lead_ids, version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, ARRAY[$8]::uuid[], $9, $10, $10)"
                ))
                .bind(id)
                .bind(event.tenant_id)
                .bind(brand_id)
                .bind(contact.contact_name)
                .bind(contact.email)
                .bind(contact.phone)
                .bind(contact.company)
                .bind(lead_id)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            ClientEvent::LeadMerged { lead_id, at } => {
                sqlx::query(&format!(
                    "UPDATE {table} SET lead_ids = array_append(lead_ids, $2), version = $3, updated_at = $4 WHERE id = $1"
                ))
                .bind(id)
                .bind(lead_id)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            ClientEvent::Updated { contact, at } => {
                sqlx::query(&format!(
                    "UPDATE {table} SET contact_name = $2, email = $3, phone = $4, company = $5, version = $6, updated_at = $7 WHERE id = $1"
                ))
                .bind(id)
                .bind(contact.contact_name)
                .bind(contact.email)
                .bind(contact.phone)
                .bind(contact.company)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            ClientEvent::Archived { at } => {
                sqlx::query(&format!(
                    "UPDATE {table} SET archived = true, version = $2, updated_at = $3 WHERE id = $1"
                ))
                .bind(id)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
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

    fn create_table_sql(&self, table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                id uuid PRIMARY KEY, tenant_id uuid NOT NULL, brand_id uuid NOT NULL, client_id uuid NOT NULL,
                currency text NOT NULL, lines jsonb NOT NULL, subtotal bigint NOT NULL, discount_total bigint NOT NULL,
                tax_total bigint NOT NULL, total bigint NOT NULL, state text NOT NULL, cancel_reason text NOT NULL DEFAULT '',
                version bigint NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL
            );
            CREATE INDEX ON {table} (tenant_id, created_at DESC, id DESC);
            CREATE INDEX ON {table} (tenant_id, client_id);"
        )
    }

    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()> {
        if event.aggregate_type != "order" {
            return Ok(());
        }
        let id = id_of(event)?;
        let v = seq(event);
        let json = |value| serde_json::to_value(value).map_err(sentra_event_store::EventStoreError::from);
        match event.decode::<OrderEvent>()? {
            OrderEvent::Created { brand_id, client_id, currency, lines, totals, at } => {
                sqlx::query(&format!(
                    "INSERT INTO {table} (id, tenant_id, brand_id, client_id, currency, lines, subtotal, discount_total, tax_total, total,
                         state, version, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'draft', $11, $12, $12)"
                ))
                .bind(id)
                .bind(event.tenant_id)
                .bind(brand_id)
                .bind(client_id)
                .bind(currency)
                .bind(json(&lines)?)
                .bind(totals.subtotal)
                .bind(totals.discount)
                .bind(totals.tax)
                .bind(totals.total)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            OrderEvent::LinesUpdated { lines, totals, at, .. } => {
                sqlx::query(&format!(
                    "UPDATE {table} SET lines = $2, subtotal = $3, discount_total = $4, tax_total = $5, total = $6, version = $7, updated_at = $8
                     WHERE id = $1"
                ))
                .bind(id)
                .bind(json(&lines)?)
                .bind(totals.subtotal)
                .bind(totals.discount)
                .bind(totals.tax)
                .bind(totals.total)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            OrderEvent::Confirmed { at, .. } | OrderEvent::Fulfilled { at } => {
                let state = if event.event_type == "confirmed" { "confirmed" } else { "fulfilled" };
                sqlx::query(&format!("UPDATE {table} SET state = $2, version = $3, updated_at = $4 WHERE id = $1"))
                    .bind(id)
                    .bind(state)
                    .bind(v)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?;
            }
            OrderEvent::Cancelled { reason, at } => {
                sqlx::query(&format!(
                    "UPDATE {table} SET state = 'cancelled', cancel_reason = $2, version = $3, updated_at = $4 WHERE id = $1"
                ))
                .bind(id)
                .bind(reason)
                .bind(v)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }
}
