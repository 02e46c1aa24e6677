//! The address index: each lead's and client's contact address, from Sales' public events on
//! the bus (`sales.lead.created`, `sales.lead.updated`, `sales.client.created`,
//! `sales.client.updated`). Mail is linked to leads and clients by joining its addresses with
//! this index when read, so mail imported before a lead existed is linked the moment the lead is.
//!
//! Once per message through the bus inbox, and idempotent anyway (the entry is set to the
//! event's address). An update that arrives before its create is retried until the
//! create has been applied (it carries no brand).

use sentra_bus::{Envelope, Handler, HandlerError};
use sentra_proto::sentra::sales::events::v1::{ClientCreated, ClientUpdated, LeadCreated, LeadUpdated};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::store::{MailStore, Subject};

/// The routing keys the index follows.
pub const ROUTING_KEYS: [&str; 4] =
    ["sales.lead.created", "sales.lead.updated", "sales.client.created", "sales.client.updated"];

/// Applies Sales' contact events to the store's address index. The writes are idempotent (the
/// address is set, not added), so a message the inbox did not keep (a failure after the write)
/// is simply applied again.
pub struct ContactIndex {
    /// Where the index lives.
    pub store: std::sync::Arc<dyn MailStore>,
}

async fn update(store: &dyn MailStore, subject: Subject, organization: Uuid, email: &str) -> Result<(), HandlerError> {
    if !store.update_contact(subject, organization, email).await.map_err(HandlerError::retry)? {
        let (kind, id) = subject.parts();
        return Err(HandlerError::retry(format!("{kind} {id} updated before its creation was indexed")));
    }
    Ok(())
}

fn id(field: &str, value: &str) -> Result<Uuid, HandlerError> {
    Uuid::parse_str(value).map_err(|_| HandlerError::reject(format!("{field} is not a UUID")))
}

fn address(contact: Option<&sentra_proto::sentra::sales::events::v1::Contact>) -> String {
    contact.map(|c| c.email.trim().to_lowercase()).unwrap_or_default()
}

#[async_trait::async_trait]
impl Handler for ContactIndex {
    async fn handle(&self, _tx: &mut PgConnection, message: &Envelope) -> Result<(), HandlerError> {
        let org = message.tenant_id;
        let store = self.store.as_ref();
        match message.routing_key.as_str() {
            "sales.lead.created" => {
                let e: LeadCreated = message.decode().map_err(HandlerError::reject)?;
                let email = address(e.contact.as_ref());
                let lead = Subject::Lead(id("lead_id", &e.lead_id)?);
                store.upsert_contact(lead, org, id("brand_id", &e.brand_id)?, &email).await.map_err(HandlerError::retry)
            }
            "sales.lead.updated" => {
                let e: LeadUpdated = message.decode().map_err(HandlerError::reject)?;
                update(store, Subject::Lead(id("lead_id", &e.lead_id)?), org, &address(e.contact.as_ref())).await
            }
            "sales.client.created" => {
                let e: ClientCreated = message.decode().map_err(HandlerError::reject)?;
                let email = address(e.contact.as_ref());
                let client = Subject::Client(id("client_id", &e.client_id)?);
                store
                    .upsert_contact(client, org, id("brand_id", &e.brand_id)?, &email)
                    .await
                    .map_err(HandlerError::retry)
            }
            "sales.client.updated" => {
                let e: ClientUpdated = message.decode().map_err(HandlerError::reject)?;
                update(store, Subject::Client(id("client_id", &e.client_id)?), org, &address(e.contact.as_ref())).await
            }
            // Bound keys only; anything else is a binding mistake, not worth a retry.
            other => Err(HandlerError::reject(format!("unexpected routing key {other}"))),
        }
    }
}
