//! Finance's integration events: every invoice event mapped, field by field, to its public
//! protobuf form in `proto/sentra/finance/events/v1` (the relay's [`sentra_bus::EventMapper`]).
//!
//! Exhaustive like Sales' mapping: a new invoice event does not compile without a public form.

use std::error::Error;

use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use sentra_bus::Payload;
use sentra_event_store::RecordedEvent;
use sentra_kernel::AppError;
use sentra_kernel::replay::Pii;
use sentra_money::LineAmounts;
use sentra_proto::sentra::finance::events::v1 as ev;
use sentra_proto::sentra::r#type::v1::Money;
use sentra_runtime::wire;

use crate::domain::invoice::{InvoiceEvent, Line};
use crate::grpc::{credit_note_pb, date_pb, line_pb, payment_pb};

/// The integration event of a recorded Finance event (every invoice event is public).
pub fn public_event(event: &RecordedEvent) -> Result<Option<Payload>, Box<dyn Error + Send + Sync>> {
    if event.aggregate_type != "invoice" {
        return Err(format!("no integration event for aggregate type {:?}", event.aggregate_type).into());
    }
    Ok(Some(invoice(event.aggregate_id.clone(), event.decode::<InvoiceEvent>()?)))
}

/// `ReadEvents`' mapper: the public event as an `Any`. Invoice events carry no personal data
/// (clients are ids), so there is nothing to redact.
pub fn public_any(event: &RecordedEvent, _pii: Pii) -> Result<Option<prost_types::Any>, AppError> {
    public_event(event)
        .map(|payload| payload.and_then(Payload::into_any))
        .map_err(|e| AppError::corrupt(format!("event {} has no public form: {e}", event.event_id)))
}

fn time(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(wire::timestamp(at))
}

fn amounts(currency: &str, lines: &[Line], totals: LineAmounts) -> Option<ev::InvoiceAmounts> {
    let m = |amount: i64| Some(Money { currency_code: currency.to_owned(), amount_minor: amount });
    Some(ev::InvoiceAmounts {
        currency_code: currency.to_owned(),
        lines: lines.iter().map(|l| line_pb(currency, l)).collect(),
        subtotal: m(totals.subtotal),
        discount_total: m(totals.discount),
        tax_total: m(totals.tax),
        total: m(totals.total),
    })
}

fn invoice(invoice_id: String, event: InvoiceEvent) -> Payload {
    match event {
        InvoiceEvent::Drafted { brand_id, client_id, order_id, currency, lines, totals, terms_days, at } => {
            Payload::proto(&ev::InvoiceDrafted {
                invoice_id,
                brand_id: brand_id.to_string(),
                client_id: client_id.to_string(),
                order_id: order_id.map(|id| id.to_string()).unwrap_or_default(),
                amounts: amounts(&currency, &lines, totals),
                terms_days: i32::try_from(terms_days).unwrap_or(i32::MAX),
                occur_time: time(at),
            })
        }
        InvoiceEvent::LinesUpdated { currency, lines, totals, at } => Payload::proto(&ev::InvoiceLinesUpdated {
            invoice_id,
            amounts: amounts(&currency, &lines, totals),
            occur_time: time(at),
        }),
        InvoiceEvent::Issued { number, issue_date, due_date, at } => Payload::proto(&ev::InvoiceIssued {
            invoice_id,
            number,
            issue_date: date_pb(Some(issue_date)),
            due_date: date_pb(Some(due_date)),
            occur_time: time(at),
        }),
        InvoiceEvent::PaymentRecorded { currency, payment } => {
            Payload::proto(&ev::InvoicePaymentRecorded { invoice_id, payment: Some(payment_pb(&currency, &payment)) })
        }
        InvoiceEvent::CreditNoteIssued { currency, credit_note, at } => Payload::proto(&ev::InvoiceCreditNoteIssued {
            invoice_id,
            credit_note: Some(credit_note_pb(&currency, &credit_note)),
            occur_time: time(at),
        }),
        InvoiceEvent::MarkedOverdue { on, at } => {
            Payload::proto(&ev::InvoiceOverdue { invoice_id, overdue_date: date_pb(Some(on)), occur_time: time(at) })
        }
        InvoiceEvent::Voided { reason, at } => {
            Payload::proto(&ev::InvoiceVoided { invoice_id, reason, occur_time: time(at) })
        }
    }
}
