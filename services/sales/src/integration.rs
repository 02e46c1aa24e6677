//! Sales' integration events: every domain event mapped, field by field, to its public protobuf
//! form in `proto/sentra/sales/events/v1` (the relay's [`sentra_bus::EventMapper`]).
//!
//! The mapping is explicit and exhaustive: a new domain event does not compile until it has a
//! public form, and renaming a domain field never changes what other contexts receive.

use std::error::Error;

use chrono::{DateTime, Utc};
use prost_types::Timestamp;
use sentra_bus::Payload;
use sentra_event_store::RecordedEvent;
use sentra_kernel::AppError;
use sentra_kernel::replay::Pii;
use sentra_proto::sentra::sales::events::v1 as ev;
use sentra_runtime::wire;
use uuid::Uuid;

use crate::domain::client::ClientEvent;
use crate::domain::lead::{Contact, LeadEvent, Value};
use crate::domain::money::LineAmounts;
use crate::domain::order::{Line, OrderEvent};
use crate::grpc::{line_pb, money, stage_pb};

/// The integration event of a recorded Sales event. Every Sales event is public, so the answer is
/// never `None` for the aggregates below; an unknown aggregate type (none today) is kept in.
pub fn public_event(event: &RecordedEvent) -> Result<Option<Payload>, Box<dyn Error + Send + Sync>> {
    public_event_for(event, Pii::Keep)
}

/// [`public_event`] with personal data kept or redacted: what `ReadEvents` sends an analyst.
pub fn public_event_for(event: &RecordedEvent, pii: Pii) -> Result<Option<Payload>, Box<dyn Error + Send + Sync>> {
    let id = event.aggregate_id.clone();
    let payload = match event.aggregate_type.as_str() {
        "lead" => lead(id, event.decode::<LeadEvent>()?, pii),
        "client" => client(id, event.decode::<ClientEvent>()?, pii),
        "order" => order(id, event.decode::<OrderEvent>()?),
        other => return Err(format!("no integration event for aggregate type {other:?}").into()),
    };
    Ok(Some(payload))
}

/// `ReadEvents`' mapper: the public event as an `Any`, personal data kept or redacted.
pub fn public_any(event: &RecordedEvent, pii: Pii) -> Result<Option<prost_types::Any>, AppError> {
    public_event_for(event, pii)
        .map(|payload| payload.and_then(Payload::into_any))
        .map_err(|e| AppError::corrupt(format!("event {} has no public form: {e}", event.event_id)))
}

fn time(at: DateTime<Utc>) -> Option<Timestamp> {
    Some(wire::timestamp(at))
}

fn id_text(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

/// A contact's public form; redaction clears what names a person (the company stays: it is the
/// business, not personal data).
fn contact(c: Contact, pii: Pii) -> Option<ev::Contact> {
    Some(match pii {
        Pii::Keep => ev::Contact { name: c.contact_name, email: c.email, phone: c.phone, company: c.company },
        Pii::Redact => ev::Contact { company: c.company, ..ev::Contact::default() },
    })
}

fn value(v: &Value) -> Option<sentra_proto::sentra::r#type::v1::Money> {
    if v.currency.is_empty() { None } else { money(&v.currency, v.amount_minor) }
}

fn amounts(currency: &str, lines: &[Line], totals: LineAmounts) -> Option<ev::OrderAmounts> {
    Some(ev::OrderAmounts {
        currency_code: currency.to_owned(),
        lines: lines.iter().map(|l| line_pb(currency, l)).collect(),
        subtotal: money(currency, totals.subtotal),
        discount_total: money(currency, totals.discount),
        tax_total: money(currency, totals.tax),
        total: money(currency, totals.total),
    })
}

fn lead(lead_id: String, event: LeadEvent, pii: Pii) -> Payload {
    match event {
        LeadEvent::Created { brand_id, contact: c, source, estimated_value, notes, assignee_id, at } => {
            Payload::proto(&ev::LeadCreated {
                lead_id,
                brand_id: brand_id.to_string(),
                contact: contact(c, pii),
                source,
                estimated_value: value(&estimated_value),
                notes,
                assignee_id: id_text(assignee_id),
                occur_time: time(at),
            })
        }
        LeadEvent::Updated { contact: c, source, estimated_value, notes, at } => Payload::proto(&ev::LeadUpdated {
            lead_id,
            contact: contact(c, pii),
            source,
            estimated_value: value(&estimated_value),
            notes,
            occur_time: time(at),
        }),
        LeadEvent::Assigned { from, to, at } => Payload::proto(&ev::LeadAssigned {
            lead_id,
            previous_assignee_id: id_text(from),
            assignee_id: to.to_string(),
            occur_time: time(at),
        }),
        LeadEvent::StageChanged { from, to, at } => Payload::proto(&ev::LeadStageChanged {
            lead_id,
            from_stage: stage_pb(from).into(),
            to_stage: stage_pb(to).into(),
            occur_time: time(at),
        }),
        LeadEvent::NoteAdded { author_id, text, at } => {
            Payload::proto(&ev::LeadNoteAdded { lead_id, author_id: author_id.to_string(), text, occur_time: time(at) })
        }
        LeadEvent::Lost { from, reason, at } => {
            Payload::proto(&ev::LeadLost { lead_id, from_stage: stage_pb(from).into(), reason, occur_time: time(at) })
        }
        LeadEvent::Reopened { to, at } => {
            Payload::proto(&ev::LeadReopened { lead_id, to_stage: stage_pb(to).into(), occur_time: time(at) })
        }
        LeadEvent::Converted { from, client_id, at } => Payload::proto(&ev::LeadConverted {
            lead_id,
            from_stage: stage_pb(from).into(),
            client_id: client_id.to_string(),
            occur_time: time(at),
        }),
    }
}

fn client(client_id: String, event: ClientEvent, pii: Pii) -> Payload {
    match event {
        ClientEvent::Created { brand_id, contact: c, lead_id, at } => Payload::proto(&ev::ClientCreated {
            client_id,
            brand_id: brand_id.to_string(),
            contact: contact(c, pii),
            lead_id: lead_id.to_string(),
            occur_time: time(at),
        }),
        ClientEvent::LeadMerged { lead_id, at } => {
            Payload::proto(&ev::ClientLeadMerged { client_id, lead_id: lead_id.to_string(), occur_time: time(at) })
        }
        ClientEvent::Updated { contact: c, at } => {
            Payload::proto(&ev::ClientUpdated { client_id, contact: contact(c, pii), occur_time: time(at) })
        }
        ClientEvent::Archived { at } => Payload::proto(&ev::ClientArchived { client_id, occur_time: time(at) }),
    }
}

fn order(order_id: String, event: OrderEvent) -> Payload {
    match event {
        OrderEvent::Created { brand_id, client_id, currency, lines, totals, at } => Payload::proto(&ev::OrderCreated {
            order_id,
            brand_id: brand_id.to_string(),
            client_id: client_id.to_string(),
            amounts: amounts(&currency, &lines, totals),
            occur_time: time(at),
        }),
        OrderEvent::LinesUpdated { currency, lines, totals, at } => Payload::proto(&ev::OrderLinesUpdated {
            order_id,
            amounts: amounts(&currency, &lines, totals),
            occur_time: time(at),
        }),
        OrderEvent::Confirmed { brand_id, client_id, currency, lines, totals, at } => {
            Payload::proto(&ev::OrderConfirmed {
                order_id,
                brand_id: brand_id.to_string(),
                client_id: client_id.to_string(),
                amounts: amounts(&currency, &lines, totals),
                occur_time: time(at),
            })
        }
        OrderEvent::Fulfilled { at } => Payload::proto(&ev::OrderFulfilled { order_id, occur_time: time(at) }),
        OrderEvent::Cancelled { reason, at } => {
            Payload::proto(&ev::OrderCancelled { order_id, reason, occur_time: time(at) })
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::DomainEvent;
    use prost::Message;
    use sentra_money::Quantity;

    use super::*;
    use crate::domain::lead::Stage;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 9, 30, 0).unwrap()
    }

    fn recorded<E: DomainEvent>(aggregate_type: &str, event: &E) -> RecordedEvent {
        RecordedEvent {
            position: 1,
            transaction_id: 1,
            tenant_id: Uuid::nil(),
            aggregate_type: aggregate_type.into(),
            aggregate_id: "agg-1".into(),
            sequence: 1,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: serde_json::to_value(event).unwrap(),
            metadata: serde_json::Value::Null,
            event_id: Uuid::nil(),
            recorded_at: at(),
        }
    }

    fn map<E: DomainEvent>(aggregate_type: &str, event: &E) -> (String, Vec<u8>) {
        match public_event(&recorded(aggregate_type, event)).unwrap() {
            Some(Payload::Proto { type_name, schema_version, bytes }) => {
                assert_eq!(schema_version, "v1");
                (type_name, bytes)
            }
            other => panic!("expected a protobuf payload, got {other:?}"),
        }
    }

    fn contact() -> Contact {
        Contact {
            contact_name: "Zoë Ångström".into(),
            email: "zoe@example.com".into(),
            phone: "+44 20 7946 0000".into(),
            company: "Fjord AB".into(),
        }
    }

    #[test]
    fn a_created_lead_carries_every_field() {
        let brand = Uuid::now_v7();
        let agent = Uuid::now_v7();
        let (name, bytes) = map(
            "lead",
            &LeadEvent::Created {
                brand_id: brand,
                contact: contact(),
                source: "referral".into(),
                estimated_value: Value { currency: "EUR".into(), amount_minor: 250_000 },
                notes: "met at a fair".into(),
                assignee_id: Some(agent),
                at: at(),
            },
        );
        assert_eq!(name, "sentra.sales.events.v1.LeadCreated");
        let lead = ev::LeadCreated::decode(bytes.as_slice()).unwrap();
        assert_eq!(lead.lead_id, "agg-1");
        assert_eq!(lead.brand_id, brand.to_string());
        assert_eq!(lead.contact.unwrap().name, "Zoë Ångström");
        assert_eq!(lead.source, "referral");
        let value = lead.estimated_value.unwrap();
        assert_eq!((value.currency_code.as_str(), value.amount_minor), ("EUR", 250_000));
        assert_eq!(lead.notes, "met at a fair");
        assert_eq!(lead.assignee_id, agent.to_string());
        assert_eq!(lead.occur_time, Some(wire::timestamp(at())));
    }

    #[test]
    fn a_lead_without_value_or_assignee_leaves_them_empty() {
        let (_, bytes) = map(
            "lead",
            &LeadEvent::Created {
                brand_id: Uuid::now_v7(),
                contact: contact(),
                source: String::new(),
                estimated_value: Value::default(),
                notes: String::new(),
                assignee_id: None,
                at: at(),
            },
        );
        let lead = ev::LeadCreated::decode(bytes.as_slice()).unwrap();
        assert_eq!(lead.estimated_value, None);
        assert_eq!(lead.assignee_id, "");
    }

    #[test]
    fn stage_moves_name_both_stages() {
        let (name, bytes) =
            map("lead", &LeadEvent::StageChanged { from: Stage::Qualified, to: Stage::Proposal, at: at() });
        assert_eq!(name, "sentra.sales.events.v1.LeadStageChanged");
        let moved = ev::LeadStageChanged::decode(bytes.as_slice()).unwrap();
        assert_eq!(moved.from_stage(), sentra_proto::sentra::sales::v1::LeadStage::Qualified);
        assert_eq!(moved.to_stage(), sentra_proto::sentra::sales::v1::LeadStage::Proposal);
    }

    #[test]
    fn a_confirmed_order_carries_its_lines_and_totals_in_its_currency() {
        let line = |price: i64, qty: i64| {
            let quantity = Quantity(qty);
            Line {
                description: format!("work at {price}"),
                quantity,
                unit_price: price,
                tax_rate_bps: 2_000,
                discount_bps: 500,
                amounts: LineAmounts::compute(price, quantity, 2_000, 500).unwrap(),
            }
        };
        let lines = vec![line(10_000, 1_500), line(2_500, 3_000)];
        let totals = LineAmounts::sum(lines.iter().map(|l| &l.amounts)).unwrap();
        let (client, brand) = (Uuid::now_v7(), Uuid::now_v7());
        let (name, bytes) = map(
            "order",
            &OrderEvent::Confirmed {
                brand_id: brand,
                client_id: client,
                currency: "GBP".into(),
                lines: lines.clone(),
                totals,
                at: at(),
            },
        );
        assert_eq!(name, "sentra.sales.events.v1.OrderConfirmed");
        let order = ev::OrderConfirmed::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            (order.order_id.as_str(), order.client_id, order.brand_id),
            ("agg-1", client.to_string(), brand.to_string())
        );
        let amounts = order.amounts.unwrap();
        assert_eq!(amounts.currency_code, "GBP");
        assert_eq!(amounts.total.unwrap().amount_minor, totals.total);
        assert_eq!(amounts.tax_total.unwrap().amount_minor, totals.tax);
        assert_eq!(amounts.lines.len(), 2);
        assert_eq!(amounts.lines[0].quantity, "1.5");
        assert_eq!(amounts.lines[1].total.as_ref().unwrap().amount_minor, lines[1].amounts.total);
        assert!(amounts.lines.iter().all(|l| l.unit_price.as_ref().unwrap().currency_code == "GBP"));

        // Lines edited on a draft say their currency too.
        let (_, bytes) = map("order", &OrderEvent::LinesUpdated { currency: "GBP".into(), lines, totals, at: at() });
        let updated = ev::OrderLinesUpdated::decode(bytes.as_slice()).unwrap();
        assert_eq!(updated.amounts.unwrap().total.unwrap().currency_code, "GBP");
    }

    #[test]
    fn every_event_maps_to_the_message_named_after_it() {
        let (id, at) = (Uuid::now_v7(), at());
        let cases: Vec<(RecordedEvent, &str)> = vec![
            (
                recorded(
                    "lead",
                    &LeadEvent::Updated {
                        contact: contact(),
                        source: String::new(),
                        estimated_value: Value::default(),
                        notes: String::new(),
                        at,
                    },
                ),
                "LeadUpdated",
            ),
            (recorded("lead", &LeadEvent::Assigned { from: None, to: id, at }), "LeadAssigned"),
            (recorded("lead", &LeadEvent::NoteAdded { author_id: id, text: "called".into(), at }), "LeadNoteAdded"),
            (recorded("lead", &LeadEvent::Lost { from: Stage::New, reason: "budget".into(), at }), "LeadLost"),
            (recorded("lead", &LeadEvent::Reopened { to: Stage::New, at }), "LeadReopened"),
            (recorded("lead", &LeadEvent::Converted { from: Stage::Proposal, client_id: id, at }), "LeadConverted"),
            (
                recorded("client", &ClientEvent::Created { brand_id: id, contact: contact(), lead_id: id, at }),
                "ClientCreated",
            ),
            (recorded("client", &ClientEvent::LeadMerged { lead_id: id, at }), "ClientLeadMerged"),
            (recorded("client", &ClientEvent::Updated { contact: contact(), at }), "ClientUpdated"),
            (recorded("client", &ClientEvent::Archived { at }), "ClientArchived"),
            (
                recorded(
                    "order",
                    &OrderEvent::Created {
                        brand_id: id,
                        client_id: id,
                        currency: "EUR".into(),
                        lines: vec![],
                        totals: LineAmounts::default(),
                        at,
                    },
                ),
                "OrderCreated",
            ),
            (recorded("order", &OrderEvent::Fulfilled { at }), "OrderFulfilled"),
            (recorded("order", &OrderEvent::Cancelled { reason: "no budget".into(), at }), "OrderCancelled"),
        ];
        for (event, message) in cases {
            let Some(Payload::Proto { type_name, .. }) = public_event(&event).unwrap() else { panic!("{message}") };
            assert_eq!(type_name, format!("sentra.sales.events.v1.{message}"));
        }
    }

    #[test]
    fn an_unreadable_event_is_an_error_not_a_guess() {
        let mut event = recorded("order", &OrderEvent::Fulfilled { at: at() });
        event.payload = serde_json::json!({ "type": "fulfilled" });
        assert!(public_event(&event).is_err());
        event.aggregate_type = "invoice".into();
        assert!(public_event(&event).is_err());
    }
}
