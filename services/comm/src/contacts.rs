//! The address index: each lead's and client's contact address, from Sales' public events on
//! the bus (`sales.lead.created`, `sales.lead.updated`, `sales.client.created`,
//! `sales.client.updated`). Mail is linked to leads and clients by joining its addresses with
//! this index when read, so mail imported before a lead existed is linked the moment the lead is.
//!
//! Exactly once per message through the bus inbox; updates are idempotent anyway (the row is
//! set to the event's address). An update that arrives before its create is retried until the
//! create has been applied (it carries no brand).

use sentra_bus::{Envelope, Handler, HandlerError};
use sentra_proto::sentra::sales::events::v1::{ClientCreated, ClientUpdated, LeadCreated, LeadUpdated};
use sqlx::PgConnection;
use uuid::Uuid;

/// The routing keys the index follows.
pub const ROUTING_KEYS: [&str; 4] =
    ["sales.lead.created", "sales.lead.updated", "sales.client.created", "sales.client.updated"];

/// Applies Sales' contact events to `contacts`.
pub struct ContactIndex;

fn id(field: &str, value: &str) -> Result<Uuid, HandlerError> {
    Uuid::parse_str(value).map_err(|_| HandlerError::reject(format!("{field} is not a UUID")))
}

fn address(contact: Option<&sentra_proto::sentra::sales::events::v1::Contact>) -> String {
    contact.map(|c| c.email.trim().to_lowercase()).unwrap_or_default()
}

async fn upsert(
    tx: &mut PgConnection,
    kind: &str,
    record: Uuid,
    organization: Uuid,
    brand: Uuid,
    email: &str,
) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO contacts (kind, record_id, organization_id, brand_id, address) VALUES ($1, $2, $3, $4, $5) ON \
         CONFLICT (kind, record_id) DO UPDATE SET address = EXCLUDED.address",
    )
    .bind(kind)
    .bind(record)
    .bind(organization)
    .bind(brand)
    .bind(email)
    .execute(&mut *tx)
    .await
    .map_err(HandlerError::retry)?;
    Ok(())
}

async fn update(
    tx: &mut PgConnection,
    kind: &str,
    record: Uuid,
    organization: Uuid,
    email: &str,
) -> Result<(), HandlerError> {
    let changed =
        sqlx::query("UPDATE contacts SET address = $3 WHERE kind = $1 AND record_id = $2 AND organization_id = $4")
            .bind(kind)
            .bind(record)
            .bind(email)
            .bind(organization)
            .execute(&mut *tx)
            .await
            .map_err(HandlerError::retry)?
            .rows_affected();
    if changed == 0 {
        return Err(HandlerError::retry(format!("{kind} {record} updated before its creation was indexed")));
    }
    Ok(())
}

#[async_trait::async_trait]
impl Handler for ContactIndex {
    async fn handle(&self, tx: &mut PgConnection, message: &Envelope) -> Result<(), HandlerError> {
        let org = message.tenant_id;
        match message.routing_key.as_str() {
            "sales.lead.created" => {
                let e: LeadCreated = message.decode().map_err(HandlerError::reject)?;
                let email = address(e.contact.as_ref());
                upsert(tx, "lead", id("lead_id", &e.lead_id)?, org, id("brand_id", &e.brand_id)?, &email).await
            }
            "sales.lead.updated" => {
                let e: LeadUpdated = message.decode().map_err(HandlerError::reject)?;
                update(tx, "lead", id("lead_id", &e.lead_id)?, org, &address(e.contact.as_ref())).await
            }
            "sales.client.created" => {
                let e: ClientCreated = message.decode().map_err(HandlerError::reject)?;
                let email = address(e.contact.as_ref());
                upsert(tx, "client", id("client_id", &e.client_id)?, org, id("brand_id", &e.brand_id)?, &email).await
            }
            "sales.client.updated" => {
                let e: ClientUpdated = message.decode().map_err(HandlerError::reject)?;
                update(tx, "client", id("client_id", &e.client_id)?, org, &address(e.contact.as_ref())).await
            }
            // Bound keys only; anything else is a binding mistake, not worth a retry.
            other => Err(HandlerError::reject(format!("unexpected routing key {other}"))),
        }
    }
}
