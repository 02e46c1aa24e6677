//! Comm's copy of what automated emails render, kept from the bus: Tenancy's brands and staff
//! (JSON outbox events), Sales' leads, clients and orders, Finance's invoices (protobuf
//! integration events). Each event merges its fields into the record's JSON, then fires the
//! brand's rules on that event type, all in the inbox's transaction: a redelivered event changes
//! nothing and queues nothing twice.

use sentra_bus::{Envelope, Handler, HandlerError};
use sentra_proto::sentra::finance::events::v1 as fev;
use sentra_proto::sentra::sales::events::v1 as sev;
use sentra_proto::sentra::sales::v1::LeadStage;
use sentra_proto::sentra::r#type::v1::{Date, Money};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::render::money;
use super::rules;

/// The events kept and fired on.
pub const ROUTING_KEYS: [&str; 4] = ["tenancy.brand.*", "tenancy.user.*", "sales.#", "finance.#"];

/// Which record an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A lead.
    Lead,
    /// A client.
    Client,
    /// An order.
    Order,
    /// An invoice.
    Invoice,
}

impl Kind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Lead => "lead",
            Kind::Client => "client",
            Kind::Order => "order",
            Kind::Invoice => "invoice",
        }
    }
}

fn id(field: &str, value: &str) -> Result<Uuid, HandlerError> {
    Uuid::parse_str(value).map_err(|_| HandlerError::reject(format!("{field} is not a UUID")))
}

fn contact(c: Option<&sev::Contact>) -> Value {
    let c = c.cloned().unwrap_or_default();
    json!({"name": c.name, "contact_name": c.name, "email": c.email, "phone": c.phone, "company": c.company})
}

fn amount(m: Option<&Money>) -> (String, i64) {
    m.map_or((String::new(), 0), |m| (m.currency_code.clone(), m.amount_minor))
}

fn date(d: Option<&Date>) -> String {
    d.map_or(String::new(), |d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
}

fn stage(value: i32) -> &'static str {
    match LeadStage::try_from(value).unwrap_or(LeadStage::Unspecified) {
        LeadStage::New => "New",
        LeadStage::Contacted => "Contacted",
        LeadStage::Qualified => "Qualified",
        LeadStage::Proposal => "Proposal",
        LeadStage::Negotiation => "Negotiation",
        LeadStage::Won => "Won",
        LeadStage::Lost => "Lost",
        LeadStage::Unspecified => "",
    }
}

/// Merges `patch` into the record (creating it, with its brand when known).
async fn merge(
    tx: &mut PgConnection,
    kind: Kind,
    record: Uuid,
    organization: Uuid,
    brand: Option<Uuid>,
    patch: Value,
) -> Result<(), HandlerError> {
    sqlx::query(
        "INSERT INTO known_records (kind, record_id, organization_id, brand_id, data) VALUES ($1, $2, $3, $4, $5) ON \
         CONFLICT (kind, record_id) DO UPDATE SET data = known_records.data || EXCLUDED.data, brand_id = \
         coalesce(EXCLUDED.brand_id, known_records.brand_id)",
    )
    .bind(kind.as_str())
    .bind(record)
    .bind(organization)
    .bind(brand)
    .bind(patch)
    .execute(&mut *tx)
    .await
    .map_err(HandlerError::retry)?;
    Ok(())
}

/// Adds `delta` to the invoice's paid amount and recomputes its balance.
async fn pay(tx: &mut PgConnection, invoice: Uuid, delta: i64) -> Result<(), HandlerError> {
    sqlx::query(
        "UPDATE known_records SET data = data || jsonb_build_object('paid_minor', coalesce((data->>'paid_minor')::bigint, \
         0) + $2, 'balance_minor', coalesce((data->>'total_minor')::bigint, 0) - coalesce((data->>'paid_minor')::bigint, \
         0) - $2) WHERE kind = 'invoice' AND record_id = $1",
    )
    .bind(invoice)
    .bind(delta)
    .execute(&mut *tx)
    .await
    .map_err(HandlerError::retry)?;
    Ok(())
}

/// Keeps the records and fires event rules.
pub struct Recorder;

#[async_trait::async_trait]
impl Handler for Recorder {
    async fn handle(&self, tx: &mut PgConnection, message: &Envelope) -> Result<(), HandlerError> {
        let org = message.tenant_id;
        let key = message.routing_key.as_str();
        let reject = HandlerError::reject;
        let subject: Option<(Kind, Uuid)> = match key {
            "tenancy.brand.created" | "tenancy.brand.updated" => {
                let v: Value = message.decode_payload().map_err(reject)?;
                let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                sqlx::query(
                    "INSERT INTO known_brands (brand_id, organization_id, name, display_name, domain) VALUES ($1, $2, \
                     $3, $4, $5) ON CONFLICT (brand_id) DO UPDATE SET name = EXCLUDED.name, display_name = \
                     EXCLUDED.display_name, domain = EXCLUDED.domain",
                )
                .bind(id("brand_id", &s("brand_id"))?)
                .bind(org)
                .bind(s("name"))
                .bind(s("display_name"))
                .bind(s("domain"))
                .execute(&mut *tx)
                .await
                .map_err(HandlerError::retry)?;
                None
            }
            "tenancy.user.created" | "tenancy.user.invited" => {
                let v: Value = message.decode_payload().map_err(reject)?;
                let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                sqlx::query(
                    "INSERT INTO known_users (user_id, organization_id, email, display_name) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, display_name = CASE WHEN \
                     EXCLUDED.display_name = '' THEN known_users.display_name ELSE EXCLUDED.display_name END",
                )
                .bind(id("user_id", &s("user_id"))?)
                .bind(org)
                .bind(s("email"))
                .bind(s("display_name"))
                .execute(&mut *tx)
                .await
                .map_err(HandlerError::retry)?;
                None
            }
            "sales.lead.created" => {
                let e: sev::LeadCreated = message.decode().map_err(reject)?;
                let lead = id("lead_id", &e.lead_id)?;
                let (currency, minor) = amount(e.estimated_value.as_ref());
                let mut patch = contact(e.contact.as_ref());
                patch["source"] = json!(e.source);
                patch["stage"] = json!("New");
                patch["assignee_id"] = json!(e.assignee_id);
                patch["estimated_value"] =
                    json!(if currency.is_empty() { String::new() } else { money(&currency, minor) });
                merge(tx, Kind::Lead, lead, org, Some(id("brand_id", &e.brand_id)?), patch).await?;
                Some((Kind::Lead, lead))
            }
            "sales.lead.updated" => {
                let e: sev::LeadUpdated = message.decode().map_err(reject)?;
                let lead = id("lead_id", &e.lead_id)?;
                let mut patch = contact(e.contact.as_ref());
                patch["source"] = json!(e.source);
                merge(tx, Kind::Lead, lead, org, None, patch).await?;
                Some((Kind::Lead, lead))
            }
            "sales.lead.assigned" => {
                let e: sev::LeadAssigned = message.decode().map_err(reject)?;
                let lead = id("lead_id", &e.lead_id)?;
                merge(tx, Kind::Lead, lead, org, None, json!({"assignee_id": e.assignee_id})).await?;
                Some((Kind::Lead, lead))
            }
            "sales.lead.stage_changed" => {
                let e: sev::LeadStageChanged = message.decode().map_err(reject)?;
                let lead = id("lead_id", &e.lead_id)?;
                merge(tx, Kind::Lead, lead, org, None, json!({"stage": stage(e.to_stage)})).await?;
                Some((Kind::Lead, lead))
            }
            "sales.client.created" => {
                let e: sev::ClientCreated = message.decode().map_err(reject)?;
                let client = id("client_id", &e.client_id)?;
                merge(tx, Kind::Client, client, org, Some(id("brand_id", &e.brand_id)?), contact(e.contact.as_ref()))
                    .await?;
                Some((Kind::Client, client))
            }
            "sales.client.updated" => {
                let e: sev::ClientUpdated = message.decode().map_err(reject)?;
                let client = id("client_id", &e.client_id)?;
                merge(tx, Kind::Client, client, org, None, contact(e.contact.as_ref())).await?;
                Some((Kind::Client, client))
            }
            "sales.order.created" | "sales.order.confirmed" => {
                let (order_id, brand_id, client_id, amounts, status) = if key == "sales.order.created" {
                    let e: sev::OrderCreated = message.decode().map_err(reject)?;
                    (e.order_id, e.brand_id, e.client_id, e.amounts, "draft")
                } else {
                    let e: sev::OrderConfirmed = message.decode().map_err(reject)?;
                    (e.order_id, e.brand_id, e.client_id, e.amounts, "confirmed")
                };
                let order = id("order_id", &order_id)?;
                let (currency, total) = amount(amounts.as_ref().and_then(|a| a.total.as_ref()));
                let patch = json!({"client_id": client_id, "currency": currency, "total_minor": total,
                                   "total": money(&currency, total), "status": status});
                merge(tx, Kind::Order, order, org, Some(id("brand_id", &brand_id)?), patch).await?;
                Some((Kind::Order, order))
            }
            "finance.invoice.drafted" => {
                let e: fev::InvoiceDrafted = message.decode().map_err(reject)?;
                let invoice = id("invoice_id", &e.invoice_id)?;
                let (currency, total) = amount(e.amounts.as_ref().and_then(|a| a.total.as_ref()));
                let patch = json!({"client_id": e.client_id, "order_id": e.order_id, "currency": currency,
                                   "total_minor": total, "total": money(&currency, total), "paid_minor": 0,
                                   "balance_minor": total, "status": "draft", "number": ""});
                merge(tx, Kind::Invoice, invoice, org, Some(id("brand_id", &e.brand_id)?), patch).await?;
                Some((Kind::Invoice, invoice))
            }
            "finance.invoice.lines_updated" => {
                let e: fev::InvoiceLinesUpdated = message.decode().map_err(reject)?;
                let invoice = id("invoice_id", &e.invoice_id)?;
                let (currency, total) = amount(e.amounts.as_ref().and_then(|a| a.total.as_ref()));
                let patch = json!({"total_minor": total, "total": money(&currency, total), "balance_minor": total});
                merge(tx, Kind::Invoice, invoice, org, None, patch).await?;
                Some((Kind::Invoice, invoice))
            }
            "finance.invoice.issued" => {
                let e: fev::InvoiceIssued = message.decode().map_err(reject)?;
                let invoice = id("invoice_id", &e.invoice_id)?;
                let patch = json!({"number": e.number, "issue_date": date(e.issue_date.as_ref()),
                                   "due_date": date(e.due_date.as_ref()), "status": "issued"});
                merge(tx, Kind::Invoice, invoice, org, None, patch).await?;
                Some((Kind::Invoice, invoice))
            }
            "finance.invoice.payment_recorded" => {
                let e: fev::InvoicePaymentRecorded = message.decode().map_err(reject)?;
                let invoice = id("invoice_id", &e.invoice_id)?;
                let (_, paid) = amount(e.payment.as_ref().and_then(|p| p.amount.as_ref()));
                pay(tx, invoice, paid).await?;
                Some((Kind::Invoice, invoice))
            }
            "finance.invoice.credit_note_issued" => {
                let e: fev::InvoiceCreditNoteIssued = message.decode().map_err(reject)?;
                let invoice = id("invoice_id", &e.invoice_id)?;
                let (_, credited) = amount(e.credit_note.as_ref().and_then(|c| c.amount.as_ref()));
                pay(tx, invoice, credited).await?;
                Some((Kind::Invoice, invoice))
            }
            "finance.invoice.overdue" => {
                let e: fev::InvoiceOverdue = message.decode().map_err(reject)?;
                let invoice = id("invoice_id", &e.invoice_id)?;
                merge(tx, Kind::Invoice, invoice, org, None, json!({"status": "overdue"})).await?;
                Some((Kind::Invoice, invoice))
            }
            "finance.invoice.voided" => {
                let e: fev::InvoiceVoided = message.decode().map_err(reject)?;
                let invoice = id("invoice_id", &e.invoice_id)?;
                merge(tx, Kind::Invoice, invoice, org, None, json!({"status": "void", "balance_minor": 0})).await?;
                Some((Kind::Invoice, invoice))
            }
            // Other events (notes, orders' lines, ...) change nothing an email shows.
            _ => None,
        };
        if let Some((kind, record)) = subject {
            rules::fire_event_rules(tx, org, key, &message.event_id.to_string(), kind, record)
                .await
                .map_err(HandlerError::retry)?;
        }
        Ok(())
    }
}
