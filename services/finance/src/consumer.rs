//! Drafts an invoice for every confirmed Sales order (`sales.order.confirmed`).
//!
//! The message is Sales' public `sentra.sales.events.v1.OrderConfirmed`, validated here like any
//! outside input: lines are re-read through the same boundary as `CreateInvoice` and their
//! recomputed total must equal the order's.
//!
//! Exactly once: the bus writes the message id into the inbox in the same transaction as the
//! draft, so a redelivered message has no effect; and the invoice id is derived from the order
//! id, so even a message replayed past the inbox cannot draft a second invoice.

use sentra_bus::{Envelope, Handler, HandlerError, Payload};
use sentra_event_store::{EventStore, EventStoreError, decide, new_events};
use sentra_money::LineAmounts;
use sentra_proto::sentra::finance::v1 as pb;
use sentra_proto::sentra::sales::events::v1::OrderConfirmed;
use sqlx::PgConnection;
use tracing::Instrument;
use uuid::Uuid;

use crate::app::{invoice_id_for_order, system_metadata};
use crate::boundary;
use crate::domain::invoice::{Invoice, InvoiceCommand, Line};
use crate::error::FinanceError;

/// What an invoice copies from a confirmed order.
#[derive(Debug, PartialEq)]
struct ConfirmedOrder {
    brand_id: Uuid,
    client_id: Uuid,
    currency: String,
    lines: Vec<Line>,
    totals: LineAmounts,
}

impl TryFrom<OrderConfirmed> for ConfirmedOrder {
    type Error = FinanceError;

    fn try_from(order: OrderConfirmed) -> Result<Self, FinanceError> {
        let amounts = order.amounts.ok_or_else(|| FinanceError::invalid("amounts", "is required"))?;
        let lines: Vec<pb::InvoiceLine> = amounts
            .lines
            .into_iter()
            .map(|l| pb::InvoiceLine {
                description: l.description,
                quantity: l.quantity,
                unit_price: l.unit_price,
                tax_rate_bps: l.tax_rate_bps,
                discount_bps: l.discount_bps,
                total: l.total,
            })
            .collect();
        let (currency, lines, totals) = boundary::lines(&amounts.currency_code, &lines)?;
        if amounts.total.as_ref().map(|m| m.amount_minor) != Some(totals.total) {
            return Err(FinanceError::invalid("amounts.total", format!("must be the lines' total {}", totals.total)));
        }
        Ok(Self {
            brand_id: boundary::id("brand_id", &order.brand_id)?,
            client_id: boundary::id("client_id", &order.client_id)?,
            currency,
            lines,
            totals,
        })
    }
}

/// Messages Sales published before its events became protobuf: the JSON of its own `confirmed`
/// event. Kept so those still queued at the switch are invoiced; delete once every
/// `finance.sales-orders` queue (and its dead letters) has drained past the switch.
mod legacy {
    use serde::Deserialize;

    use super::{ConfirmedOrder, Line, LineAmounts, Uuid};

    #[derive(Deserialize)]
    pub(super) struct OrderConfirmedJson {
        brand_id: Uuid,
        client_id: Uuid,
        currency: String,
        lines: Vec<Line>,
        totals: LineAmounts,
    }

    impl From<OrderConfirmedJson> for ConfirmedOrder {
        fn from(o: OrderConfirmedJson) -> Self {
            Self {
                brand_id: o.brand_id,
                client_id: o.client_id,
                currency: o.currency,
                lines: o.lines,
                totals: o.totals,
            }
        }
    }
}

fn confirmed_order(message: &Envelope) -> Result<ConfirmedOrder, HandlerError> {
    match message.payload {
        Payload::Proto { .. } => {
            let order: OrderConfirmed = message.decode().map_err(HandlerError::reject)?;
            ConfirmedOrder::try_from(order).map_err(HandlerError::reject)
        }
        Payload::Json(_) => {
            let order: legacy::OrderConfirmedJson = message.decode_payload().map_err(HandlerError::reject)?;
            Ok(order.into())
        }
    }
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
        let order = confirmed_order(message)?;
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

#[cfg(test)]
mod tests {
    use sentra_proto::sentra::sales::events::v1::OrderAmounts;
    use sentra_proto::sentra::sales::v1::OrderLine;
    use sentra_proto::sentra::r#type::v1::Money;

    use super::*;

    fn eur(amount_minor: i64) -> Option<Money> {
        Some(Money { currency_code: "EUR".into(), amount_minor })
    }

    fn order(total: i64) -> OrderConfirmed {
        OrderConfirmed {
            order_id: Uuid::now_v7().to_string(),
            brand_id: Uuid::now_v7().to_string(),
            client_id: Uuid::now_v7().to_string(),
            amounts: Some(OrderAmounts {
                currency_code: "EUR".into(),
                lines: vec![OrderLine {
                    description: "Workshop".into(),
                    quantity: "1.5".into(),
                    unit_price: eur(10_000),
                    tax_rate_bps: 2_000,
                    discount_bps: 0,
                    total: eur(18_000),
                    ..Default::default()
                }],
                total: eur(total),
                ..Default::default()
            }),
            occur_time: None,
        }
    }

    fn field(result: Result<ConfirmedOrder, FinanceError>) -> String {
        match result {
            Err(FinanceError::Invalid { field, .. }) => field.to_string(),
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn an_order_becomes_the_invoice_s_lines_recomputed_by_finance() {
        let confirmed = ConfirmedOrder::try_from(order(18_000)).unwrap();
        assert_eq!(confirmed.currency, "EUR");
        assert_eq!(confirmed.lines.len(), 1);
        assert_eq!(confirmed.lines[0].amounts.total, 18_000);
        assert_eq!(confirmed.totals.total, 18_000);
    }

    #[test]
    fn an_order_that_does_not_add_up_or_lacks_ids_is_refused_by_field() {
        assert_eq!(field(ConfirmedOrder::try_from(order(17_999))), "amounts.total");
        assert_eq!(field(ConfirmedOrder::try_from(OrderConfirmed { amounts: None, ..order(18_000) })), "amounts");
        assert_eq!(
            field(ConfirmedOrder::try_from(OrderConfirmed { client_id: "c-1".into(), ..order(18_000) })),
            "client_id"
        );
        let mut bad_quantity = order(18_000);
        bad_quantity.amounts.as_mut().unwrap().lines[0].quantity = "1.2345".into();
        assert_eq!(field(ConfirmedOrder::try_from(bad_quantity)), "lines.quantity");
    }
}
