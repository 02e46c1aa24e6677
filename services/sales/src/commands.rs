//! Requests validated into domain values at the gRPC boundary.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sentra_proto::sentra::sales::v1 as pb;
use sentra_proto::sentra::r#type::v1::Money;
use sentra_runtime::wire;
use uuid::Uuid;

use crate::domain::lead::{Contact, Stage, Value};
use crate::domain::money::{LineAmounts, Quantity};
use crate::domain::order::{Line, OrderState};
use crate::error::SalesError;

type Result<T> = std::result::Result<T, SalesError>;

/// A UUID field.
pub fn id(field: &'static str, value: &str) -> Result<Uuid> {
    Uuid::parse_str(value.trim()).map_err(|_| SalesError::invalid(field, "must be a UUID"))
}

/// An optional UUID field (empty means none).
pub fn optional_id(field: &'static str, value: &str) -> Result<Option<Uuid>> {
    if value.trim().is_empty() { Ok(None) } else { id(field, value).map(Some) }
}

/// Trimmed text of at most `max` characters, possibly empty.
pub fn text(field: &'static str, value: &str, max: usize) -> Result<String> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(SalesError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(value.to_owned())
}

/// Non-empty trimmed text.
pub fn required(field: &'static str, value: &str, max: usize) -> Result<String> {
    let value = text(field, value, max)?;
    if value.is_empty() { Err(SalesError::invalid(field, "must not be empty")) } else { Ok(value) }
}

fn email(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim().to_lowercase();
    if value.is_empty() {
        return Ok(value);
    }
    let ok = value.len() <= 254
        && !value.chars().any(char::is_whitespace)
        && value
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'));
    if ok { Ok(value) } else { Err(SalesError::invalid(field, "must be an email address")) }
}

/// An ISO-4217 code.
pub fn currency(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim().to_ascii_uppercase();
    if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(value)
    } else {
        Err(SalesError::invalid(field, "must be an ISO-4217 currency code such as EUR"))
    }
}

fn money_value(field: &'static str, money: Option<&Money>) -> Result<Value> {
    match money {
        None => Ok(Value::default()),
        Some(m) if m.currency_code.is_empty() && m.amount_minor == 0 => Ok(Value::default()),
        Some(m) => {
            if m.amount_minor < 0 {
                return Err(SalesError::invalid(field, "must not be negative"));
            }
            let amount_minor =
                sentra_money::bounded(m.amount_minor).map_err(|e| SalesError::invalid(field, e.to_string()))?;
            Ok(Value { currency: currency(field, &m.currency_code)?, amount_minor })
        }
    }
}

/// An etag into an expected version (empty: no check).
pub fn etag(field: &'static str, value: &str) -> Result<Option<u64>> {
    if value.is_empty() {
        return Ok(None);
    }
    value.trim_matches('"').parse().map(Some).map_err(|_| SalesError::invalid(field, "is not an etag from this API"))
}

/// The etag of a version.
pub fn etag_of(version: u64) -> String {
    format!("\"{version}\"")
}

/// An optional idempotency key.
pub fn request_id(value: &str) -> Result<Option<String>> {
    match value.trim() {
        "" => Ok(None),
        id if id.len() <= 128 => Ok(Some(id.to_owned())),
        _ => Err(SalesError::invalid("request_id", "must be at most 128 characters")),
    }
}

/// A lead stage from the contract.
pub fn stage(field: &'static str, value: i32) -> Result<Stage> {
    Ok(match pb::LeadStage::try_from(value) {
        Ok(pb::LeadStage::New) => Stage::New,
        Ok(pb::LeadStage::Contacted) => Stage::Contacted,
        Ok(pb::LeadStage::Qualified) => Stage::Qualified,
        Ok(pb::LeadStage::Proposal) => Stage::Proposal,
        Ok(pb::LeadStage::Negotiation) => Stage::Negotiation,
        Ok(pb::LeadStage::Won) => Stage::Won,
        Ok(pb::LeadStage::Lost) => Stage::Lost,
        _ => return Err(SalesError::invalid(field, "must be a lead stage")),
    })
}

/// An order state from the contract.
pub fn order_state(field: &'static str, value: i32) -> Result<OrderState> {
    Ok(match pb::OrderState::try_from(value) {
        Ok(pb::OrderState::Draft) => OrderState::Draft,
        Ok(pb::OrderState::Confirmed) => OrderState::Confirmed,
        Ok(pb::OrderState::Fulfilled) => OrderState::Fulfilled,
        Ok(pb::OrderState::Cancelled) => OrderState::Cancelled,
        _ => return Err(SalesError::invalid(field, "must be an order state")),
    })
}

/// Page size: 0 -> 50, capped at 200, negative is an error.
pub fn page_size(value: i32) -> Result<i64> {
    wire::page_size(value).ok_or_else(|| SalesError::invalid("page_size", "must not be negative"))
}

/// Keyset cursor for newest-first lists: (created_at, id) of the last item.
pub fn encode_page_token(at: DateTime<Utc>, id: Uuid) -> String {
    wire::encode_cursor(at, id)
}

/// Decodes [`encode_page_token`]; empty is the first page.
pub fn page_token(value: &str) -> Result<Option<(DateTime<Utc>, Uuid)>> {
    wire::decode_cursor(value).map_err(|()| SalesError::invalid("page_token", "is not a token from a previous page"))
}

/// A protobuf timestamp.
pub fn timestamp(field: &'static str, value: Option<&prost_types::Timestamp>) -> Result<Option<DateTime<Utc>>> {
    value.map(|t| wire::from_timestamp(t).ok_or_else(|| SalesError::invalid(field, "is not a valid time"))).transpose()
}

/// Create a lead.
#[derive(Debug)]
pub struct CreateLead {
    /// Brand.
    pub brand_id: Uuid,
    /// Contact.
    pub contact: Contact,
    /// Source.
    pub source: String,
    /// Value.
    pub estimated_value: Value,
    /// Notes.
    pub notes: String,
    /// Idempotency key.
    pub request_id: Option<String>,
}

fn contact_of(lead: &pb::Lead) -> Result<Contact> {
    Ok(Contact {
        contact_name: required("lead.contact_name", &lead.contact_name, 200)?,
        email: email("lead.email", &lead.email)?,
        phone: text("lead.phone", &lead.phone, 50)?,
        company: text("lead.company", &lead.company, 200)?,
    })
}

impl TryFrom<pb::CreateLeadRequest> for CreateLead {
    type Error = SalesError;
    fn try_from(r: pb::CreateLeadRequest) -> Result<Self> {
        let lead = r.lead.ok_or_else(|| SalesError::invalid("lead", "is required"))?;
        Ok(Self {
            brand_id: id("lead.brand_id", &lead.brand_id)?,
            contact: contact_of(&lead)?,
            source: text("lead.source", &lead.source, 100)?.to_lowercase(),
            estimated_value: money_value("lead.estimated_value", lead.estimated_value.as_ref())?,
            notes: text("lead.notes", &lead.notes, 10_000)?,
            request_id: request_id(&r.request_id)?,
        })
    }
}

/// The lead fields an update may change.
pub const LEAD_UPDATABLE: &[&str] =
    &["contact_name", "email", "phone", "company", "source", "estimated_value", "notes"];

/// Update a lead's data.
#[derive(Debug)]
pub struct UpdateLead {
    /// Lead.
    pub id: Uuid,
    /// Expected version.
    pub expected: Option<u64>,
    /// Masked fields.
    pub paths: BTreeSet<String>,
    /// The values.
    pub values: pb::Lead,
}

/// The validated set of masked paths.
pub fn update_paths(mask: Option<&prost_types::FieldMask>, allowed: &[&str]) -> Result<BTreeSet<String>> {
    let paths: BTreeSet<String> = mask.map(|m| m.paths.iter().cloned().collect()).unwrap_or_default();
    if paths.is_empty() {
        return Err(SalesError::invalid("update_mask", "must name at least one field"));
    }
    if let Some(bad) = paths.iter().find(|p| !allowed.contains(&p.as_str())) {
        return Err(SalesError::invalid("update_mask", format!("{bad:?} cannot be updated")));
    }
    Ok(paths)
}

impl TryFrom<pb::UpdateLeadRequest> for UpdateLead {
    type Error = SalesError;
    fn try_from(r: pb::UpdateLeadRequest) -> Result<Self> {
        let lead = r.lead.ok_or_else(|| SalesError::invalid("lead", "is required"))?;
        Ok(Self {
            id: id("lead.id", &lead.id)?,
            expected: etag("lead.etag", &lead.etag)?,
            paths: update_paths(r.update_mask.as_ref(), LEAD_UPDATABLE)?,
            values: lead,
        })
    }
}

impl UpdateLead {
    /// Applies the masked, validated values on top of the current ones.
    pub fn merge(
        &self,
        contact: &Contact,
        source: &str,
        value: &Value,
        notes: &str,
    ) -> Result<(Contact, String, Value, String)> {
        let (mut contact, mut source, mut value, mut notes) =
            (contact.clone(), source.to_owned(), value.clone(), notes.to_owned());
        let v = &self.values;
        for path in &self.paths {
            match path.as_str() {
                "contact_name" => contact.contact_name = required("lead.contact_name", &v.contact_name, 200)?,
                "email" => contact.email = email("lead.email", &v.email)?,
                "phone" => contact.phone = text("lead.phone", &v.phone, 50)?,
                "company" => contact.company = text("lead.company", &v.company, 200)?,
                "source" => source = text("lead.source", &v.source, 100)?.to_lowercase(),
                "estimated_value" => value = money_value("lead.estimated_value", v.estimated_value.as_ref())?,
                "notes" => notes = text("lead.notes", &v.notes, 10_000)?,
                _ => {}
            }
        }
        Ok((contact, source, value, notes))
    }
}

/// Validated client contact update.
pub fn client_contact(current: &Contact, values: &pb::Client, paths: &BTreeSet<String>) -> Result<Contact> {
    let mut contact = current.clone();
    for path in paths {
        match path.as_str() {
            "contact_name" => contact.contact_name = required("client.contact_name", &values.contact_name, 200)?,
            "email" => contact.email = email("client.email", &values.email)?,
            "phone" => contact.phone = text("client.phone", &values.phone, 50)?,
            "company" => contact.company = text("client.company", &values.company, 200)?,
            _ => {}
        }
    }
    Ok(contact)
}

/// Order lines with computed amounts, all in `currency` (which the first priced line sets when
/// `currency` is empty). Returns the currency, lines and totals.
pub fn order_lines(currency_code: &str, lines: &[pb::OrderLine]) -> Result<(String, Vec<Line>, LineAmounts)> {
    let mut currency_code = if currency_code.trim().is_empty() {
        lines.iter().filter_map(|l| l.unit_price.as_ref()).map(|m| m.currency_code.clone()).next().unwrap_or_default()
    } else {
        currency_code.to_owned()
    };
    if currency_code.is_empty() {
        currency_code = String::new();
    } else {
        currency_code = currency("currency_code", &currency_code)?;
    }
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let description = required("lines.description", &line.description, 500)?;
        let quantity =
            Quantity::parse(&line.quantity).map_err(|e| SalesError::invalid("lines.quantity", e.to_string()))?;
        let price = line.unit_price.as_ref().ok_or_else(|| SalesError::invalid("lines.unit_price", "is required"))?;
        let line_currency = currency("lines.unit_price.currency_code", &price.currency_code)?;
        if line_currency != currency_code {
            return Err(SalesError::invalid(
                "lines.unit_price.currency_code",
                format!("must be the order's currency {currency_code}"),
            ));
        }
        let tax_rate_bps = u32::try_from(line.tax_rate_bps)
            .ok()
            .filter(|b| *b <= 10_000)
            .ok_or_else(|| SalesError::invalid("lines.tax_rate_bps", "must be between 0 and 10000"))?;
        let discount_bps = u32::try_from(line.discount_bps)
            .ok()
            .filter(|b| *b <= 10_000)
            .ok_or_else(|| SalesError::invalid("lines.discount_bps", "must be between 0 and 10000"))?;
        sentra_money::bounded(price.amount_minor)
            .map_err(|e| SalesError::invalid("lines.unit_price", e.to_string()))?;
        let amounts = LineAmounts::compute(price.amount_minor, quantity, tax_rate_bps, discount_bps)
            .map_err(|e| SalesError::invalid("lines.unit_price", e.to_string()))?;
        out.push(Line { description, quantity, unit_price: price.amount_minor, tax_rate_bps, discount_bps, amounts });
    }
    if currency_code.is_empty() {
        return Err(SalesError::invalid("currency_code", "is required when no line names a currency"));
    }
    let totals =
        LineAmounts::sum(out.iter().map(|l| &l.amounts)).map_err(|e| SalesError::invalid("lines", e.to_string()))?;
    // Lines may be negative (a credit, a rebate), the order as a whole may not: nobody invoices
    // a client a negative amount.
    if totals.total < 0 {
        return Err(SalesError::invalid("lines", "the order's total must not be negative"));
    }
    Ok((currency_code, out, totals))
}

#[cfg(test)]
mod properties {
    //! Whatever a client sends, the boundary answers `Ok` or an error naming a field: never a
    //! panic, never an error without a field.

    use proptest::prelude::*;

    use super::*;

    fn money() -> impl Strategy<Value = Option<Money>> {
        proptest::option::of(
            (".{0,5}", any::<i64>()).prop_map(|(currency_code, amount_minor)| Money { currency_code, amount_minor }),
        )
    }

    fn any_timestamp() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
        proptest::option::of(
            (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
        )
    }

    fn uuid_or_junk() -> impl Strategy<Value = String> {
        prop_oneof![Just(Uuid::new_v4().to_string()), ".{0,40}"]
    }

    fn lead() -> impl Strategy<Value = pb::Lead> {
        (uuid_or_junk(), ".{0,220}", ".{0,60}", ".{0,60}", ".{0,220}", ".{0,120}", money(), ".{0,40}", any::<i32>())
            .prop_map(|(id, contact_name, email, phone, company, source, estimated_value, etag, stage)| pb::Lead {
                id: id.clone(),
                brand_id: id,
                contact_name,
                email,
                phone,
                company,
                source,
                estimated_value,
                etag,
                stage,
                ..Default::default()
            })
    }

    fn line() -> impl Strategy<Value = pb::OrderLine> {
        (".{0,40}", ".{0,12}", money(), any::<i32>(), any::<i32>()).prop_map(
            |(description, quantity, unit_price, tax_rate_bps, discount_bps)| pb::OrderLine {
                description,
                quantity,
                unit_price,
                tax_rate_bps,
                discount_bps,
                ..Default::default()
            },
        )
    }

    fn names_a_field<T: std::fmt::Debug>(result: Result<T>) -> std::result::Result<(), TestCaseError> {
        match result {
            Ok(_) => Ok(()),
            Err(SalesError::Invalid { field, .. }) if !field.is_empty() => Ok(()),
            Err(other) => Err(TestCaseError::fail(format!("not a field error: {other:?}"))),
        }
    }

    proptest! {
        #[test]
        fn create_lead(lead in proptest::option::of(lead()), request_id in ".{0,80}") {
            names_a_field(CreateLead::try_from(pb::CreateLeadRequest { lead, request_id }))?;
        }

        #[test]
        fn update_lead(lead in proptest::option::of(lead()), paths in proptest::collection::vec(".{0,16}", 0..4)) {
            let update_mask = Some(prost_types::FieldMask { paths });
            names_a_field(UpdateLead::try_from(pb::UpdateLeadRequest { lead, update_mask }))?;
        }

        #[test]
        fn order_lines_any(currency in ".{0,5}", lines in proptest::collection::vec(line(), 0..6)) {
            names_a_field(order_lines(&currency, &lines))?;
        }

        #[test]
        fn scalars(value in any::<i32>(), text in ".{0,300}", ts in any_timestamp()) {
            names_a_field(stage("stage", value))?;
            names_a_field(order_state("state", value))?;
            names_a_field(page_size(value))?;
            names_a_field(page_token(&text))?;
            names_a_field(etag("etag", &text))?;
            names_a_field(request_id(&text))?;
            names_a_field(timestamp("as_of", ts.as_ref()))?;
        }
    }
}
