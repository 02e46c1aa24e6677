//! Drafts an invoice for every confirmed Sales order (`sales.order.confirmed`).
//!
//! Exactly once: the bus writes the message id into the inbox in the same transaction as the
//! draft, so a redelivered message has no effect; and the invoice id is derived from the order
//! id, so even a message replayed past the inbox cannot draft a second invoice.

use sentra_bus::{Envelope, Handler, HandlerError};
use sentra_event_store::{EventStore, EventStoreError, decide, new_events};
use sentra_money::LineAmounts;
use serde::Deserialize;
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use crate::app::{invoice_id_for_order, system_metadata};
use crate::domain::invoice::{Invoice, InvoiceCommand, Line};

/// The fields of Sales' `confirmed` order event that an invoice copies.
#[derive(Debug, Deserialize)]
struct OrderConfirmed {
    brand_id: Uuid,
    client_id: Uuid,
    currency: String,
    lines: Vec<Line>,
    totals: LineAmounts,
}

/// The handler.
pub struct OrderConfirmedHandler {
    /// Where invoices are stored.
    pub store: EventStore,
    /// Payment terms of drafted invoices.
    pub terms_days: u32,
}

#[async_trait::async_trait]
impl Handler for OrderConfirmedHandler {
    async fn handle(&self, tx: &mut PgConnection, message: &Envelope) -> Result<(), HandlerError> {
        if message.routing_key != "sales.order.confirmed" {
            return Ok(());
        }
        let span = tracing::info_span!(
            "finance.draft_invoice",
            otel.name = "draft invoice from confirmed order",
            order_id = %message.aggregate_id,
            tenant_id = %message.tenant_id,
        );
        self.draft(tx, message).instrument(span).await
    }
}

impl OrderConfirmedHandler {
    /// Drafts the order's invoice unless it exists (a redelivery, or a replica got there first).
    async fn draft(&self, tx: &mut PgConnection, message: &Envelope) -> Result<(), HandlerError> {
        let order: OrderConfirmed = message.decode_payload().map_err(HandlerError::reject)?;
        let order_id = Uuid::parse_str(&message.aggregate_id).map_err(HandlerError::reject)?;
        let id = invoice_id_for_order(order_id);
        let mut invoice =
            self.store.load::<Invoice>(message.tenant_id, &id.to_string()).await.map_err(HandlerError::retry)?;
        if invoice.version > 0 {
            return Ok(());
        }
        let command = InvoiceCommand::Draft {
            brand_id: order.brand_id,
            client_id: order.client_id,
            order_id: Some(order_id),
            currency: order.currency,
            lines: order.lines,
            totals: order.totals,
            terms_days: self.terms_days,
        };
        let events = decide(&mut invoice.state, command, &()).await.map_err(HandlerError::reject)?;
        let mut meta = system_metadata();
        meta.causation_id = Some(message.event_id.to_string());
        meta.correlation_id = message.correlation_id().map(str::to_owned).or(meta.correlation_id);
        let appended = self
            .store
            .append_in(
                tx,
                message.tenant_id,
                "invoice",
                &id.to_string(),
                0,
                new_events(&events).map_err(HandlerError::reject)?,
                &meta,
            )
            .await;
        match appended {
            Ok(_) | Err(EventStoreError::Conflict { .. }) => {
                tracing::info!(invoice_id = %id, %order_id, "Invoice drafted from confirmed order.");
                Ok(())
            }
            Err(error) => Err(HandlerError::retry(error)),
        }
    }
}
