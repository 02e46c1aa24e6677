//! The Lead aggregate: a prospect worked through the pipeline.
//!
//! Stage rules: the open stages form a ladder `new < contacted < qualified < proposal <
//! negotiation`. A lead moves one rung up at a time, or down any number of rungs (but never back
//! to `new`); `won` comes only from conversion (from qualified or later), `lost` from any open
//! stage; a lost lead can be reopened into the stage it was lost from. Anything else is a
//! `FAILED_PRECONDITION`.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A pipeline stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Just captured.
    #[default]
    New,
    /// Contacted.
    Contacted,
    /// Qualified.
    Qualified,
    /// Proposal sent.
    Proposal,
    /// Negotiating.
    Negotiation,
    /// Converted.
    Won,
    /// Lost.
    Lost,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 7] =
        [Stage::New, Stage::Contacted, Stage::Qualified, Stage::Proposal, Stage::Negotiation, Stage::Won, Stage::Lost];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::New => "new",
            Stage::Contacted => "contacted",
            Stage::Qualified => "qualified",
            Stage::Proposal => "proposal",
            Stage::Negotiation => "negotiation",
            Stage::Won => "won",
            Stage::Lost => "lost",
        }
    }

    /// Parses [`Stage::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the lead is still being worked.
    pub fn is_open(self) -> bool {
        !matches!(self, Stage::Won | Stage::Lost)
    }

    fn rung(self) -> u8 {
        self as u8
    }

    /// Whether `ChangeLeadStage` may move a lead from `self` to `to`.
    pub fn can_move_to(self, to: Stage) -> bool {
        self.is_open() && to.is_open() && to != Stage::New && (to.rung() == self.rung() + 1 || to.rung() < self.rung())
    }
}

/// Contact data of a lead (and of a client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Contact {
    /// Contact person.
    pub contact_name: String,
    /// Email, lower case.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// Company.
    pub company: String,
}

/// An estimated value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Value {
    /// ISO-4217 code; empty when no value was given.
    pub currency: String,
    /// Minor units.
    pub amount_minor: i64,
}

/// What a lead records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LeadEvent {
    /// Captured.
    Created {
        /// Brand.
        brand_id: Uuid,
        /// Contact data.
        contact: Contact,
        /// Where it came from.
        source: String,
        /// Estimated value.
        estimated_value: Value,
        /// Initial notes.
        notes: String,
        /// Assigned at creation (an agent creating a lead takes it).
        assignee_id: Option<Uuid>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Contact data or value changed (only the changed fields are set).
    Updated {
        /// New contact data.
        contact: Contact,
        /// Source.
        source: String,
        /// Value.
        estimated_value: Value,
        /// Notes.
        notes: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Assigned or reassigned.
    Assigned {
        /// Previous agent.
        from: Option<Uuid>,
        /// New agent.
        to: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// Moved between open stages.
    StageChanged {
        /// Before.
        from: Stage,
        /// After.
        to: Stage,
        /// When.
        at: DateTime<Utc>,
    },
    /// A note was added.
    NoteAdded {
        /// Author.
        author_id: Uuid,
        /// Text.
        text: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Lost.
    Lost {
        /// The stage it was lost from.
        from: Stage,
        /// Why.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// Reopened into the stage it was lost from.
    Reopened {
        /// The stage it returns to.
        to: Stage,
        /// When.
        at: DateTime<Utc>,
    },
    /// Converted into a client.
    Converted {
        /// The stage it was converted from.
        from: Stage,
        /// The client.
        client_id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for LeadEvent {
    fn event_type(&self) -> String {
        match self {
            LeadEvent::Created { .. } => "created",
            LeadEvent::Updated { .. } => "updated",
            LeadEvent::Assigned { .. } => "assigned",
            LeadEvent::StageChanged { .. } => "stage_changed",
            LeadEvent::NoteAdded { .. } => "note_added",
            LeadEvent::Lost { .. } => "lost",
            LeadEvent::Reopened { .. } => "reopened",
            LeadEvent::Converted { .. } => "converted",
        }
        .into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

/// What may be asked of a lead.
#[derive(Debug, Clone)]
pub enum LeadCommand {
    /// Capture.
    Create {
        /// Brand.
        brand_id: Uuid,
        /// Contact.
        contact: Contact,
        /// Source.
        source: String,
        /// Value.
        estimated_value: Value,
        /// Notes.
        notes: String,
        /// Initial assignee.
        assignee_id: Option<Uuid>,
    },
    /// Replace contact data, source, value and notes with these (already merged) values.
    Update {
        /// Contact.
        contact: Contact,
        /// Source.
        source: String,
        /// Value.
        estimated_value: Value,
        /// Notes.
        notes: String,
    },
    /// Assign.
    Assign {
        /// The agent.
        to: Uuid,
    },
    /// Change stage.
    ChangeStage {
        /// Target.
        to: Stage,
    },
    /// Add a note.
    AddNote {
        /// Author.
        author_id: Uuid,
        /// Text.
        text: String,
    },
    /// Mark lost.
    MarkLost {
        /// Why.
        reason: String,
    },
    /// Reopen.
    Reopen,
    /// Convert.
    Convert {
        /// The client it becomes (or merges into).
        client_id: Uuid,
    },
}

/// Why a lead refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeadError {
    /// The lead does not exist.
    #[error("lead not found")]
    NotFound,
    /// A lead with this id exists already.
    #[error("lead already exists")]
    AlreadyExists,
    /// The stage does not allow it.
    #[error("{0}")]
    IllegalTransition(String),
}

/// A note on a lead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Author.
    pub author_id: Uuid,
    /// Text.
    pub text: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The lead's state, rebuilt from its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Lead {
    /// Whether it exists.
    pub exists: bool,
    /// Brand.
    pub brand_id: Uuid,
    /// Contact.
    pub contact: Contact,
    /// Source.
    pub source: String,
    /// Value.
    pub estimated_value: Value,
    /// Notes at creation (or updated).
    pub notes: String,
    /// Stage.
    pub stage: Stage,
    /// Stage before it was lost.
    pub lost_from: Option<Stage>,
    /// Assigned agent.
    pub assignee_id: Option<Uuid>,
    /// Lost reason.
    pub lost_reason: String,
    /// Client it was converted into.
    pub client_id: Option<Uuid>,
    /// Notes added later.
    pub activity: Vec<Note>,
    /// Created.
    pub created_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Aggregate for Lead {
    const TYPE: &'static str = "lead";
    type Command = LeadCommand;
    type Event = LeadEvent;
    type Error = LeadError;
    type Services = ();

    async fn handle(&mut self, command: LeadCommand, _: &(), sink: &EventSink<Self>) -> Result<(), LeadError> {
        let at = super::now();
        let event = match command {
            LeadCommand::Create { brand_id, contact, source, estimated_value, notes, assignee_id } => {
                if self.exists {
                    return Err(LeadError::AlreadyExists);
                }
                LeadEvent::Created { brand_id, contact, source, estimated_value, notes, assignee_id, at }
            }
            command => {
                if !self.exists {
                    return Err(LeadError::NotFound);
                }
                match command {
                    LeadCommand::Create { .. } => return Err(LeadError::AlreadyExists),
                    LeadCommand::Update { contact, source, estimated_value, notes } => {
                        LeadEvent::Updated { contact, source, estimated_value, notes, at }
                    }
                    LeadCommand::Assign { to } => {
                        if !self.stage.is_open() {
                            return Err(LeadError::IllegalTransition(format!(
                                "a {} lead cannot be reassigned",
                                self.stage.as_str()
                            )));
                        }
                        if self.assignee_id == Some(to) {
                            return Ok(());
                        }
                        LeadEvent::Assigned { from: self.assignee_id, to, at }
                    }
                    LeadCommand::ChangeStage { to } => {
                        if !self.stage.can_move_to(to) {
                            return Err(LeadError::IllegalTransition(format!(
                                "a lead cannot move from {} to {}",
                                self.stage.as_str(),
                                to.as_str()
                            )));
                        }
                        LeadEvent::StageChanged { from: self.stage, to, at }
                    }
                    LeadCommand::AddNote { author_id, text } => LeadEvent::NoteAdded { author_id, text, at },
                    LeadCommand::MarkLost { reason } => {
                        if !self.stage.is_open() {
                            return Err(LeadError::IllegalTransition(format!(
                                "a {} lead cannot be lost",
                                self.stage.as_str()
                            )));
                        }
                        LeadEvent::Lost { from: self.stage, reason, at }
                    }
                    LeadCommand::Reopen => match (self.stage, self.lost_from) {
                        (Stage::Lost, Some(to)) => LeadEvent::Reopened { to, at },
                        _ => return Err(LeadError::IllegalTransition("only a lost lead can be reopened".into())),
                    },
                    LeadCommand::Convert { client_id } => {
                        if !matches!(self.stage, Stage::Qualified | Stage::Proposal | Stage::Negotiation) {
                            return Err(LeadError::IllegalTransition(format!(
                                "only a qualified lead can be converted (this one is {})",
                                self.stage.as_str()
                            )));
                        }
                        LeadEvent::Converted { from: self.stage, client_id, at }
                    }
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: LeadEvent) {
        match event {
            LeadEvent::Created { brand_id, contact, source, estimated_value, notes, assignee_id, at } => {
                *self = Lead {
                    exists: true,
                    brand_id,
                    contact,
                    source,
                    estimated_value,
                    notes,
                    assignee_id,
                    created_at: Some(at),
                    updated_at: Some(at),
                    ..Lead::default()
                };
            }
            LeadEvent::Updated { contact, source, estimated_value, notes, at } => {
                self.contact = contact;
                self.source = source;
                self.estimated_value = estimated_value;
                self.notes = notes;
                self.updated_at = Some(at);
            }
            LeadEvent::Assigned { to, at, .. } => {
                self.assignee_id = Some(to);
                self.updated_at = Some(at);
            }
            LeadEvent::StageChanged { to, at, .. } | LeadEvent::Reopened { to, at } => {
                self.stage = to;
                self.lost_from = None;
                self.lost_reason.clear();
                self.updated_at = Some(at);
            }
            LeadEvent::NoteAdded { author_id, text, at } => {
                self.activity.push(Note { author_id, text, at });
                self.updated_at = Some(at);
            }
            LeadEvent::Lost { from, reason, at } => {
                self.stage = Stage::Lost;
                self.lost_from = Some(from);
                self.lost_reason = reason;
                self.updated_at = Some(at);
            }
            LeadEvent::Converted { client_id, at, .. } => {
                self.stage = Stage::Won;
                self.client_id = Some(client_id);
                self.updated_at = Some(at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Stage::*;

    #[test]
    fn the_ladder_moves_one_up_or_any_down() {
        assert!(New.can_move_to(Contacted));
        assert!(!New.can_move_to(Qualified));
        assert!(Negotiation.can_move_to(Contacted));
        assert!(!Contacted.can_move_to(New));
        assert!(!Qualified.can_move_to(Won));
        assert!(!Lost.can_move_to(Contacted));
        assert!(!Won.can_move_to(Negotiation));
    }
}
