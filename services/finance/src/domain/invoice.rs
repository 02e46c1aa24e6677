//! The Invoice aggregate.
//!
//! Lifecycle: `draft` (lines may change, no number) -> `issued` (numbered, dated) -> payments and
//! credit notes move the balance: `partially_paid`, `paid`; a scheduled job marks an issued
//! invoice past its due date with a balance `overdue`; `void` is terminal and keeps the number.
//! Amounts are integer minor units. A payment larger than the balance is accepted: the invoice
//! is paid and the excess is client credit (see `GetClientBalance`).

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use sentra_money::{LineAmounts, Quantity};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An invoice line with its computed amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// What is billed.
    pub description: String,
    /// Quantity in thousandths.
    pub quantity: Quantity,
    /// Unit price, minor units.
    pub unit_price: i64,
    /// Tax rate, basis points.
    pub tax_rate_bps: u32,
    /// Discount, basis points.
    pub discount_bps: u32,
    /// Computed amounts.
    pub amounts: LineAmounts,
}

/// Invoice status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Draft.
    #[default]
    Draft,
    /// Issued, nothing paid.
    Issued,
    /// Partly paid.
    PartiallyPaid,
    /// Paid.
    Paid,
    /// Past due with a balance.
    Overdue,
    /// Void.
    Void,
}

impl Status {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Issued => "issued",
            Status::PartiallyPaid => "partially_paid",
            Status::Paid => "paid",
            Status::Overdue => "overdue",
            Status::Void => "void",
        }
    }

    /// Parses [`Status::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [Status::Draft, Status::Issued, Status::PartiallyPaid, Status::Paid, Status::Overdue, Status::Void]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// A recorded payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// Id.
    pub id: Uuid,
    /// Amount, minor units (positive).
    pub amount: i64,
    /// `bank_transfer`, `card`, `cash`, `other`.
    pub method: String,
    /// Reference.
    pub reference: String,
    /// When the money arrived.
    pub paid_on: NaiveDate,
    /// When recorded.
    pub at: DateTime<Utc>,
}

/// An issued credit note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditNote {
    /// Id.
    pub id: Uuid,
    /// Number.
    pub number: String,
    /// Amount, minor units (positive).
    pub amount: i64,
    /// Why.
    pub reason: String,
    /// Date.
    pub issued_on: NaiveDate,
}

/// What an invoice records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InvoiceEvent {
    /// Drafted (by hand or from a confirmed order).
    Drafted {
        /// Brand.
        brand_id: Uuid,
        /// Client.
        client_id: Uuid,
        /// Order, when drafted from one.
        order_id: Option<Uuid>,
        /// Currency.
        currency: String,
        /// Lines.
        lines: Vec<Line>,
        /// Totals.
        totals: LineAmounts,
        /// Payment terms.
        terms_days: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// Lines replaced.
    LinesUpdated {
        /// The invoice's currency, repeated so the event reads on its own; empty in events
        /// recorded before it was added.
        #[serde(default)]
        currency: String,
        /// Lines.
        lines: Vec<Line>,
        /// Totals.
        totals: LineAmounts,
        /// When.
        at: DateTime<Utc>,
    },
    /// Issued.
    Issued {
        /// Number.
        number: String,
        /// Issue date.
        issue_date: NaiveDate,
        /// Due date.
        due_date: NaiveDate,
        /// When.
        at: DateTime<Utc>,
    },
    /// A payment arrived.
    PaymentRecorded {
        /// The invoice's currency, repeated so the event reads on its own; empty in events
        /// recorded before it was added.
        #[serde(default)]
        currency: String,
        /// The payment.
        payment: Payment,
    },
    /// A credit note was issued.
    CreditNoteIssued {
        /// The invoice's currency, repeated so the event reads on its own; empty in events
        /// recorded before it was added.
        #[serde(default)]
        currency: String,
        /// The credit note.
        credit_note: CreditNote,
        /// When.
        at: DateTime<Utc>,
    },
    /// Detected past due.
    MarkedOverdue {
        /// The day it was detected on.
        on: NaiveDate,
        /// When.
        at: DateTime<Utc>,
    },
    /// Voided.
    Voided {
        /// Why.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for InvoiceEvent {
    fn event_type(&self) -> String {
        match self {
            InvoiceEvent::Drafted { .. } => "drafted",
            InvoiceEvent::LinesUpdated { .. } => "lines_updated",
            InvoiceEvent::Issued { .. } => "issued",
            InvoiceEvent::PaymentRecorded { .. } => "payment_recorded",
            InvoiceEvent::CreditNoteIssued { .. } => "credit_note_issued",
            InvoiceEvent::MarkedOverdue { .. } => "overdue",
            InvoiceEvent::Voided { .. } => "voided",
        }
        .into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

/// What may be asked of an invoice.
#[derive(Debug, Clone)]
pub enum InvoiceCommand {
    /// Draft.
    Draft {
        /// Brand.
        brand_id: Uuid,
        /// Client.
        client_id: Uuid,
        /// Order.
        order_id: Option<Uuid>,
        /// Currency.
        currency: String,
        /// Lines.
        lines: Vec<Line>,
        /// Totals.
        totals: LineAmounts,
        /// Terms.
        terms_days: u32,
    },
    /// Replace lines.
    UpdateLines {
        /// Lines.
        lines: Vec<Line>,
        /// Totals.
        totals: LineAmounts,
    },
    /// Issue with a number already drawn from the brand's sequence.
    Issue {
        /// Number.
        number: String,
        /// Issue date.
        issue_date: NaiveDate,
    },
    /// Record a payment.
    RecordPayment {
        /// The payment.
        payment: Payment,
    },
    /// Issue a credit note with a number already drawn.
    IssueCreditNote {
        /// The credit note.
        credit_note: CreditNote,
    },
    /// Mark overdue if due before `today` with a balance.
    CheckOverdue {
        /// Today.
        today: NaiveDate,
    },
    /// Void.
    Void {
        /// Why.
        reason: String,
    },
}

/// Why an invoice refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// No such invoice.
    #[error("invoice not found")]
    NotFound,
    /// Exists already.
    #[error("invoice already exists")]
    AlreadyExists,
    /// The status does not allow it.
    #[error("{0}")]
    IllegalTransition(String),
    /// An amount is out of range.
    #[error("{0}")]
    InvalidAmount(String),
}

/// The invoice's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Invoice {
    /// Whether it exists.
    pub exists: bool,
    /// Brand.
    pub brand_id: Uuid,
    /// Client.
    pub client_id: Uuid,
    /// Order.
    pub order_id: Option<Uuid>,
    /// Number.
    pub number: String,
    /// Status.
    pub status: Status,
    /// Currency.
    pub currency: String,
    /// Lines.
    pub lines: Vec<Line>,
    /// Totals.
    pub totals: LineAmounts,
    /// Terms.
    pub terms_days: u32,
    /// Issue date.
    pub issue_date: Option<NaiveDate>,
    /// Due date.
    pub due_date: Option<NaiveDate>,
    /// Payments.
    pub payments: Vec<Payment>,
    /// Credit notes.
    pub credit_notes: Vec<CreditNote>,
    /// Void reason.
    pub void_reason: String,
    /// Created.
    pub created_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Invoice {
    // The sums saturate rather than wrap or panic: commands keep every amount and every sum
    // within `sentra_money::MAX_AMOUNT`, so saturation is only a guard for histories written
    // before that bound existed.

    /// Sum of payments (including any excess over the total).
    pub fn paid(&self) -> i64 {
        self.payments.iter().fold(0i64, |sum, p| sum.saturating_add(p.amount))
    }

    /// Sum of credit notes.
    pub fn credited(&self) -> i64 {
        self.credit_notes.iter().fold(0i64, |sum, c| sum.saturating_add(c.amount))
    }

    /// What is still owed (never negative).
    pub fn balance(&self) -> i64 {
        self.totals.total.saturating_sub(self.paid()).saturating_sub(self.credited()).max(0)
    }

    /// Paid beyond what was owed: client credit.
    pub fn overpaid(&self) -> i64 {
        self.paid().saturating_add(self.credited()).saturating_sub(self.totals.total).max(0)
    }

    fn settle_status(&self, today: Option<NaiveDate>) -> Status {
        if self.balance() == 0 {
            Status::Paid
        } else if self.status == Status::Overdue || today.zip(self.due_date).is_some_and(|(t, d)| t > d) {
            Status::Overdue
        } else if self.paid() > 0 || self.credited() > 0 {
            Status::PartiallyPaid
        } else {
            Status::Issued
        }
    }

    fn is_open(&self) -> bool {
        matches!(self.status, Status::Issued | Status::PartiallyPaid | Status::Overdue)
    }
}

impl Aggregate for Invoice {
    const TYPE: &'static str = "invoice";
    type Command = InvoiceCommand;
    type Event = InvoiceEvent;
    type Error = InvoiceError;
    type Services = ();

    async fn handle(&mut self, command: InvoiceCommand, _: &(), sink: &EventSink<Self>) -> Result<(), InvoiceError> {
        let at = super::now();
        let illegal = |what: &str, status: Status| {
            Err(InvoiceError::IllegalTransition(format!("a {} invoice cannot be {what}", status.as_str())))
        };
        let event = match command {
            InvoiceCommand::Draft { brand_id, client_id, order_id, currency, lines, totals, terms_days } => {
                if self.exists {
                    return Err(InvoiceError::AlreadyExists);
                }
                InvoiceEvent::Drafted { brand_id, client_id, order_id, currency, lines, totals, terms_days, at }
            }
            _ if !self.exists => return Err(InvoiceError::NotFound),
            InvoiceCommand::UpdateLines { lines, totals } => {
                if self.status != Status::Draft {
                    return illegal("changed", self.status);
                }
                InvoiceEvent::LinesUpdated { currency: self.currency.clone(), lines, totals, at }
            }
            InvoiceCommand::Issue { number, issue_date } => {
                if self.status != Status::Draft {
                    return illegal("issued", self.status);
                }
                if self.lines.is_empty() {
                    return Err(InvoiceError::IllegalTransition("an invoice without lines cannot be issued".into()));
                }
                let due_date =
                    issue_date.checked_add_days(chrono::Days::new(u64::from(self.terms_days))).ok_or_else(|| {
                        InvoiceError::InvalidAmount("the issue date plus the terms is past any calendar".into())
                    })?;
                InvoiceEvent::Issued { number, issue_date, due_date, at }
            }
            InvoiceCommand::RecordPayment { payment } => {
                if !self.is_open() {
                    return illegal("paid", self.status);
                }
                if payment.amount <= 0 {
                    return Err(InvoiceError::InvalidAmount("a payment must be positive".into()));
                }
                if sentra_money::bounded(self.paid().saturating_add(payment.amount)).is_err() {
                    return Err(InvoiceError::InvalidAmount(format!(
                        "payments on one invoice must not add up to more than {} minor units",
                        sentra_money::MAX_AMOUNT
                    )));
                }
                InvoiceEvent::PaymentRecorded { currency: self.currency.clone(), payment }
            }
            InvoiceCommand::IssueCreditNote { credit_note } => {
                if !matches!(self.status, Status::Issued | Status::PartiallyPaid | Status::Overdue | Status::Paid) {
                    return illegal("credited", self.status);
                }
                let creditable = self.totals.total.saturating_sub(self.credited());
                if credit_note.amount <= 0 || credit_note.amount > creditable {
                    return Err(InvoiceError::InvalidAmount(format!(
                        "a credit note must be positive and at most {creditable} (the total not yet credited)"
                    )));
                }
                InvoiceEvent::CreditNoteIssued { currency: self.currency.clone(), credit_note, at }
            }
            InvoiceCommand::CheckOverdue { today } => {
                let due = self.due_date.is_some_and(|d| today > d);
                if !matches!(self.status, Status::Issued | Status::PartiallyPaid) || !due || self.balance() == 0 {
                    return Ok(());
                }
                InvoiceEvent::MarkedOverdue { on: today, at }
            }
            InvoiceCommand::Void { reason } => {
                if !self.is_open() && self.status != Status::Paid {
                    return illegal("voided", self.status);
                }
                InvoiceEvent::Voided { reason, at }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: InvoiceEvent) {
        match event {
            InvoiceEvent::Drafted { brand_id, client_id, order_id, currency, lines, totals, terms_days, at } => {
                *self = Invoice {
                    exists: true,
                    brand_id,
                    client_id,
                    order_id,
                    currency,
                    lines,
                    totals,
                    terms_days,
                    created_at: Some(at),
                    updated_at: Some(at),
                    ..Invoice::default()
                };
            }
            InvoiceEvent::LinesUpdated { lines, totals, at, .. } => {
                self.lines = lines;
                self.totals = totals;
                self.updated_at = Some(at);
            }
            InvoiceEvent::Issued { number, issue_date, due_date, at } => {
                self.number = number;
                self.issue_date = Some(issue_date);
                self.due_date = Some(due_date);
                self.status = Status::Issued;
                self.updated_at = Some(at);
            }
            InvoiceEvent::PaymentRecorded { payment, .. } => {
                self.updated_at = Some(payment.at);
                self.payments.push(payment);
                self.status = self.settle_status(None);
            }
            InvoiceEvent::CreditNoteIssued { credit_note, at, .. } => {
                self.credit_notes.push(credit_note);
                self.status = self.settle_status(None);
                self.updated_at = Some(at);
            }
            InvoiceEvent::MarkedOverdue { at, .. } => {
                self.status = Status::Overdue;
                self.updated_at = Some(at);
            }
            InvoiceEvent::Voided { reason, at } => {
                self.status = Status::Void;
                self.void_reason = reason;
                self.updated_at = Some(at);
            }
        }
    }
}
