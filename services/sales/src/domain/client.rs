//! The Client aggregate: a converted lead (or several, merged).

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::lead::Contact;

/// What a client records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientEvent {
    /// Created from a lead.
    Created {
        /// Brand.
        brand_id: Uuid,
        /// Contact data copied from the lead.
        contact: Contact,
        /// The lead.
        lead_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Another lead was converted into this client.
    LeadMerged {
        /// The lead.
        lead_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Contact data changed.
    Updated {
        /// The new contact data.
        contact: Contact,
        /// When.
        at: DateTime<Utc>,
    },
    /// Archived.
    Archived {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ClientEvent {
    fn event_type(&self) -> String {
        match self {
            ClientEvent::Created { .. } => "created",
            ClientEvent::LeadMerged { .. } => "lead_merged",
            ClientEvent::Updated { .. } => "updated",
            ClientEvent::Archived { .. } => "archived",
        }
        .into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

/// What may be asked of a client.
#[derive(Debug, Clone)]
pub enum ClientCommand {
    /// Create from a lead.
    Create {
        /// Brand.
        brand_id: Uuid,
        /// Contact.
        contact: Contact,
        /// Lead.
        lead_id: Uuid,
    },
    /// Merge another lead of the same brand.
    MergeLead {
        /// Brand of the lead (must match).
        brand_id: Uuid,
        /// The lead.
        lead_id: Uuid,
    },
    /// Replace contact data.
    Update {
        /// Contact.
        contact: Contact,
    },
    /// Archive.
    Archive,
}

/// Why a client refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// No such client.
    #[error("client not found")]
    NotFound,
    /// Exists already.
    #[error("client already exists")]
    AlreadyExists,
    /// The client is archived or in another brand.
    #[error("{0}")]
    Precondition(&'static str),
}

/// The client's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Client {
    /// Whether it exists.
    pub exists: bool,
    /// Brand.
    pub brand_id: Uuid,
    /// Contact.
    pub contact: Contact,
    /// Leads converted into it.
    pub lead_ids: Vec<Uuid>,
    /// Archived.
    pub archived: bool,
    /// Created.
    pub created_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Aggregate for Client {
    const TYPE: &'static str = "client";
    type Command = ClientCommand;
    type Event = ClientEvent;
    type Error = ClientError;
    type Services = ();

    async fn handle(&mut self, command: ClientCommand, _: &(), sink: &EventSink<Self>) -> Result<(), ClientError> {
        let at = super::now();
        let event = match command {
            ClientCommand::Create { brand_id, contact, lead_id } => {
                if self.exists {
                    return Err(ClientError::AlreadyExists);
                }
                ClientEvent::Created { brand_id, contact, lead_id, at }
            }
            _ if !self.exists => return Err(ClientError::NotFound),
            ClientCommand::MergeLead { brand_id, lead_id } => {
                if brand_id != self.brand_id {
                    return Err(ClientError::Precondition("a lead can only merge into a client of its own brand"));
                }
                if self.archived {
                    return Err(ClientError::Precondition("an archived client takes no new leads"));
                }
                ClientEvent::LeadMerged { lead_id, at }
            }
            ClientCommand::Update { contact } => {
                if self.archived {
                    return Err(ClientError::Precondition("an archived client cannot be changed"));
                }
                ClientEvent::Updated { contact, at }
            }
            ClientCommand::Archive => {
                if self.archived {
                    return Ok(());
                }
                ClientEvent::Archived { at }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: ClientEvent) {
        match event {
            ClientEvent::Created { brand_id, contact, lead_id, at } => {
                *self = Client {
                    exists: true,
                    brand_id,
                    contact,
                    lead_ids: vec![lead_id],
                    archived: false,
                    created_at: Some(at),
                    updated_at: Some(at),
                };
            }
            ClientEvent::LeadMerged { lead_id, at } => {
                self.lead_ids.push(lead_id);
                self.updated_at = Some(at);
            }
            ClientEvent::Updated { contact, at } => {
                self.contact = contact;
                self.updated_at = Some(at);
            }
            ClientEvent::Archived { at } => {
                self.archived = true;
                self.updated_at = Some(at);
            }
        }
    }
}
