//! The Order aggregate: lines with exact totals; draft -> confirmed -> fulfilled, or cancelled.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::money::{LineAmounts, Quantity};

/// An order line as entered, with its computed amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// What is sold.
    pub description: String,
    /// Quantity in thousandths.
    pub quantity: Quantity,
    /// Unit price in minor units.
    pub unit_price: i64,
    /// Tax rate in basis points.
    pub tax_rate_bps: u32,
    /// Discount in basis points.
    pub discount_bps: u32,
    /// Computed amounts.
    pub amounts: LineAmounts,
}

/// Order state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Being put together.
    #[default]
    Draft,
    /// Agreed.
    Confirmed,
    /// Delivered.
    Fulfilled,
    /// Cancelled.
    Cancelled,
}

impl OrderState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Draft => "draft",
            OrderState::Confirmed => "confirmed",
            OrderState::Fulfilled => "fulfilled",
            OrderState::Cancelled => "cancelled",
        }
    }

    /// Parses [`OrderState::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [OrderState::Draft, OrderState::Confirmed, OrderState::Fulfilled, OrderState::Cancelled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What an order records. `Confirmed` carries the whole order, so consumers (Finance) need
/// nothing else to draft the invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderEvent {
    /// Drafted.
    Created {
        /// Brand.
        brand_id: Uuid,
        /// Client.
        client_id: Uuid,
        /// Currency.
        currency: String,
        /// Lines.
        lines: Vec<Line>,
        /// Totals.
        totals: LineAmounts,
        /// When.
        at: DateTime<Utc>,
    },
    /// Lines replaced.
    LinesUpdated {
        /// The order's currency, repeated so the event reads on its own; empty in events
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
    /// Confirmed.
    Confirmed {
        /// Brand.
        brand_id: Uuid,
        /// Client.
        client_id: Uuid,
        /// Currency.
        currency: String,
        /// Lines.
        lines: Vec<Line>,
        /// Totals.
        totals: LineAmounts,
        /// When.
        at: DateTime<Utc>,
    },
    /// Fulfilled.
    Fulfilled {
        /// When.
        at: DateTime<Utc>,
    },
    /// Cancelled.
    Cancelled {
        /// Why.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            OrderEvent::Created { .. } => "created",
            OrderEvent::LinesUpdated { .. } => "lines_updated",
            OrderEvent::Confirmed { .. } => "confirmed",
            OrderEvent::Fulfilled { .. } => "fulfilled",
            OrderEvent::Cancelled { .. } => "cancelled",
        }
        .into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

/// What may be asked of an order.
#[derive(Debug, Clone)]
pub enum OrderCommand {
    /// Draft an order.
    Create {
        /// Brand.
        brand_id: Uuid,
        /// Client.
        client_id: Uuid,
        /// Currency.
        currency: String,
        /// Lines (computed).
        lines: Vec<Line>,
        /// Totals.
        totals: LineAmounts,
    },
    /// Replace lines.
    UpdateLines {
        /// Lines.
        lines: Vec<Line>,
        /// Totals.
        totals: LineAmounts,
    },
    /// Confirm.
    Confirm,
    /// Fulfil.
    Fulfill,
    /// Cancel.
    Cancel {
        /// Why.
        reason: String,
    },
}

/// Why an order refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// No such order.
    #[error("order not found")]
    NotFound,
    /// Exists already.
    #[error("order already exists")]
    AlreadyExists,
    /// The state does not allow it.
    #[error("{0}")]
    IllegalTransition(String),
}

/// The order's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Order {
    /// Whether it exists.
    pub exists: bool,
    /// Brand.
    pub brand_id: Uuid,
    /// Client.
    pub client_id: Uuid,
    /// Currency.
    pub currency: String,
    /// Lines.
    pub lines: Vec<Line>,
    /// Totals.
    pub totals: LineAmounts,
    /// State.
    pub state: OrderState,
    /// Cancel reason.
    pub cancel_reason: String,
    /// Created.
    pub created_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Aggregate for Order {
    const TYPE: &'static str = "order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    async fn handle(&mut self, command: OrderCommand, _: &(), sink: &EventSink<Self>) -> Result<(), OrderError> {
        let at = super::now();
        let illegal = |what: &str, state: OrderState| {
            Err(OrderError::IllegalTransition(format!("a {} order cannot be {what}", state.as_str())))
        };
        let event = match command {
            OrderCommand::Create { brand_id, client_id, currency, lines, totals } => {
                if self.exists {
                    return Err(OrderError::AlreadyExists);
                }
                OrderEvent::Created { brand_id, client_id, currency, lines, totals, at }
            }
            _ if !self.exists => return Err(OrderError::NotFound),
            OrderCommand::UpdateLines { lines, totals } => {
                if self.state != OrderState::Draft {
                    return illegal("changed", self.state);
                }
                OrderEvent::LinesUpdated { currency: self.currency.clone(), lines, totals, at }
            }
            OrderCommand::Confirm => {
                if self.state != OrderState::Draft {
                    return illegal("confirmed", self.state);
                }
                if self.lines.is_empty() {
                    return Err(OrderError::IllegalTransition("an order without lines cannot be confirmed".into()));
                }
                OrderEvent::Confirmed {
                    brand_id: self.brand_id,
                    client_id: self.client_id,
                    currency: self.currency.clone(),
                    lines: self.lines.clone(),
                    totals: self.totals,
                    at,
                }
            }
            OrderCommand::Fulfill => {
                if self.state != OrderState::Confirmed {
                    return illegal("fulfilled", self.state);
                }
                OrderEvent::Fulfilled { at }
            }
            OrderCommand::Cancel { reason } => {
                if !matches!(self.state, OrderState::Draft | OrderState::Confirmed) {
                    return illegal("cancelled", self.state);
                }
                OrderEvent::Cancelled { reason, at }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: OrderEvent) {
        match event {
            OrderEvent::Created { brand_id, client_id, currency, lines, totals, at } => {
                *self = Order {
                    exists: true,
                    brand_id,
                    client_id,
                    currency,
                    lines,
                    totals,
                    state: OrderState::Draft,
                    cancel_reason: String::new(),
                    created_at: Some(at),
                    updated_at: Some(at),
                };
            }
            OrderEvent::LinesUpdated { lines, totals, at, .. } => {
                self.lines = lines;
                self.totals = totals;
                self.updated_at = Some(at);
            }
            OrderEvent::Confirmed { at, .. } => {
                self.state = OrderState::Confirmed;
                self.updated_at = Some(at);
            }
            OrderEvent::Fulfilled { at } => {
                self.state = OrderState::Fulfilled;
                self.updated_at = Some(at);
            }
            OrderEvent::Cancelled { reason, at } => {
                self.state = OrderState::Cancelled;
                self.cancel_reason = reason;
                self.updated_at = Some(at);
            }
        }
    }
}
