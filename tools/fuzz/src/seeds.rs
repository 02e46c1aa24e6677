//! Realistic starting inputs for every target: valid calls, real event histories and a paid
//! invoice's life, so the fuzzer begins inside the code paths rather than at the first check.

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, Utc};
use prost::Message;
use sentra_finance::domain::invoice::InvoiceEvent;
use sentra_proto::sentra::finance::v1 as fpb;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::r#type::v1::{Date, Money};
use sentra_sales::domain::client::ClientEvent;
use sentra_sales::domain::lead::{Contact, LeadEvent, Stage, Value};
use sentra_sales::domain::order::OrderEvent;
use uuid::Uuid;

use crate::requests::index_of;

fn eur(amount_minor: i64) -> Option<Money> {
    Some(Money { currency_code: "EUR".into(), amount_minor })
}

fn lead() -> spb::Lead {
    spb::Lead {
        brand_id: Uuid::now_v7().to_string(),
        contact_name: "Ada Lovelace".into(),
        email: "ada@analytical-engines.example".into(),
        company: "Analytical Engines".into(),
        source: "referral".into(),
        estimated_value: eur(1_200_000),
        ..Default::default()
    }
}

fn invoice_line() -> fpb::InvoiceLine {
    fpb::InvoiceLine {
        description: "Brand identity".into(),
        quantity: "1.5".into(),
        unit_price: eur(450_000),
        tax_rate_bps: 1900,
        discount_bps: 500,
        ..Default::default()
    }
}

fn request<M: Message>(method: &str, message: &M) -> Vec<u8> {
    let mut bytes = vec![index_of(method)];
    bytes.extend(message.encode_to_vec());
    bytes
}

fn requests() -> Vec<Vec<u8>> {
    let order_line = spb::OrderLine {
        description: "Website".into(),
        quantity: "2".into(),
        unit_price: eur(300_000),
        tax_rate_bps: 2000,
        ..Default::default()
    };
    let mut seeds: Vec<Vec<u8>> = crate::requests::names().map(|name| vec![index_of(name)]).collect();
    seeds.extend([
        request("CreateLead", &spb::CreateLeadRequest { lead: Some(lead()), request_id: "r-1".into() }),
        request(
            "UpdateLead",
            &spb::UpdateLeadRequest {
                lead: Some(spb::Lead { id: Uuid::now_v7().to_string(), etag: "\"3\"".into(), ..lead() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["email".into(), "estimated_value".into()] }),
            },
        ),
        request(
            "ListLeads",
            &spb::ListLeadsRequest {
                stages: vec![1, 2],
                created_after: Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 }),
                page_size: 50,
                ..Default::default()
            },
        ),
        request(
            "CreateOrder",
            &spb::CreateOrderRequest {
                client_id: Uuid::now_v7().to_string(),
                currency_code: "EUR".into(),
                lines: vec![order_line],
                request_id: String::new(),
            },
        ),
        request(
            "CreateInvoice",
            &fpb::CreateInvoiceRequest {
                currency_code: "EUR".into(),
                lines: vec![invoice_line()],
                payment_terms_days: 30,
                ..Default::default()
            },
        ),
        request(
            "RecordPayment",
            &fpb::RecordPaymentRequest {
                amount: eur(100_000),
                method: 1,
                paid_on: Some(Date { year: 2026, month: 12, day: 2 }),
                ..Default::default()
            },
        ),
        request(
            "ListInvoices",
            &fpb::ListInvoicesRequest {
                issued_from: Some(Date { year: 2026, month: 1, day: 1 }),
                due_to: Some(Date { year: 2026, month: 12, day: 31 }),
                ..Default::default()
            },
        ),
        request(
            "SignUp",
            &tpb::SignUpRequest {
                organization_name: "Urban Quill".into(),
                owner_email: "owner@urbanquill.example".into(),
                owner_display_name: "Olive Owner".into(),
                password: "correct horse battery staple".into(),
                request_id: String::new(),
            },
        ),
        request(
            "CreateBrand",
            &tpb::CreateBrandRequest {
                brand: Some(tpb::Brand {
                    name: "Quill Studio".into(),
                    domain: "studio.urbanquill.example".into(),
                    primary_color: "#3355ff".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ),
        request(
            "Login",
            &tpb::LoginRequest {
                email: "owner@urbanquill.example".into(),
                password: "correct horse battery staple".into(),
                host: "app.urbanquill.example:443".into(),
            },
        ),
    ]);
    seeds
}

fn frame(message: &[u8]) -> Vec<u8> {
    let mut framed = BytesMut::new();
    framed.put_u8(0);
    framed.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    framed.put_slice(message);
    framed.to_vec()
}

fn guarded_calls() -> Vec<Vec<u8>> {
    let valid = spb::CreateLeadRequest { lead: Some(lead()), request_id: String::new() }.encode_to_vec();
    let with_shape = |shape: u8, body: &[u8]| [&[shape][..], body].concat();
    vec![
        with_shape(8, &valid),
        with_shape(0, &frame(&valid)),
        with_shape(0, &[frame(&valid), frame(&valid)].concat()),
        with_shape(12, &valid),
        with_shape(1, &frame(&valid)),
        with_shape(2, &frame(&valid)),
        with_shape(0, &[7, 0, 0, 0, 0]),
    ]
}

fn json<E: serde::Serialize>(aggregate: u8, events: &[E]) -> Vec<u8> {
    let mut bytes = vec![aggregate];
    bytes.extend(serde_json::to_vec(events).expect("events serialize"));
    bytes
}

fn stored_events() -> Vec<Vec<u8>> {
    let at: DateTime<Utc> = DateTime::from_timestamp(1_764_000_000, 0).unwrap_or_default();
    let (brand_id, client_id, lead_id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let contact = Contact {
        contact_name: "Ada Lovelace".into(),
        email: "ada@analytical-engines.example".into(),
        phone: String::new(),
        company: "Analytical Engines".into(),
    };
    let lead = [
        LeadEvent::Created {
            brand_id,
            contact: contact.clone(),
            source: "referral".into(),
            estimated_value: Value { currency: "EUR".into(), amount_minor: 1_200_000 },
            notes: String::new(),
            assignee_id: None,
            at,
        },
        LeadEvent::StageChanged { from: Stage::default(), to: Stage::Qualified, at },
        LeadEvent::Lost { from: Stage::Qualified, reason: "budget".into(), at },
        LeadEvent::Reopened { to: Stage::Qualified, at },
        LeadEvent::Converted { from: Stage::Qualified, client_id, at },
    ];
    let client = [
        ClientEvent::Created { brand_id, contact: contact.clone(), lead_id, at },
        ClientEvent::Updated { contact, at },
        ClientEvent::Archived { at },
    ];
    let (currency, lines, totals) = sentra_sales::commands::order_lines(
        "EUR",
        &[spb::OrderLine {
            description: "Website".into(),
            quantity: "2".into(),
            unit_price: eur(300_000),
            ..Default::default()
        }],
    )
    .expect("a valid line");
    let order = [
        OrderEvent::Created { brand_id, client_id, currency: currency.clone(), lines: lines.clone(), totals, at },
        OrderEvent::Confirmed { brand_id, client_id, currency, lines, totals, at },
        OrderEvent::Fulfilled { at },
    ];
    vec![json(0, &lead), json(1, &client), json(2, &order), json(3, &invoice_history())]
}

/// A drafted, issued, part-paid, credited, then paid invoice, as the aggregate writes it.
fn invoice_history() -> Vec<InvoiceEvent> {
    use sentra_finance::domain::invoice::{CreditNote, Invoice, InvoiceCommand, Payment};
    let rt = crate::guard::runtime();
    let (currency, lines, totals) = sentra_finance::boundary::lines("", &[invoice_line()]).expect("a valid line");
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap_or_default();
    let mut invoice = Invoice::default();
    let total = totals.total;
    let commands = [
        InvoiceCommand::Draft {
            brand_id: Uuid::now_v7(),
            client_id: Uuid::now_v7(),
            order_id: None,
            currency,
            lines,
            totals,
            terms_days: 30,
        },
        InvoiceCommand::Issue { number: "UQ-2026-000001".into(), issue_date: day },
        InvoiceCommand::RecordPayment {
            payment: Payment {
                id: Uuid::now_v7(),
                amount: total / 2,
                method: "card".into(),
                reference: String::new(),
                paid_on: day,
                at: Utc::now(),
            },
        },
        InvoiceCommand::IssueCreditNote {
            credit_note: CreditNote {
                id: Uuid::now_v7(),
                number: "CN-1".into(),
                amount: total / 4,
                reason: "late delivery".into(),
                issued_on: day,
            },
        },
        InvoiceCommand::RecordPayment {
            payment: Payment {
                id: Uuid::now_v7(),
                amount: total - total / 2 - total / 4,
                method: "bank_transfer".into(),
                reference: "SEPA".into(),
                paid_on: day,
                at: Utc::now(),
            },
        },
    ];
    commands
        .into_iter()
        .flat_map(|command| {
            rt.block_on(sentra_event_store::decide(&mut invoice, command, &())).expect("a valid invoice life")
        })
        .collect()
}

fn invoice_money() -> Vec<Vec<u8>> {
    // Plain byte patterns: the fuzzer grows real lives from them (the corpus it keeps is not
    // checked in; inputs that once failed are, under `regressions/`).
    vec![vec![1; 64], (0..=255).collect(), [vec![2, 0, 0, 0, 3], vec![1; 40], vec![2; 40]].concat()]
}

/// Every seed: (target, bytes).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let tag = |target: &'static str, inputs: Vec<Vec<u8>>| inputs.into_iter().map(move |bytes| (target, bytes));
    tag("guarded_call", guarded_calls())
        .chain(tag("requests", requests()))
        .chain(tag("stored_events", stored_events()))
        .chain(tag("invoice_money", invoice_money()))
        .collect()
}
