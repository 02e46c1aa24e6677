//! The gRPC surface of Finance: requests to commands, state to messages, errors to statuses.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sentra_auth::{Caller, permissions as perm};
use sentra_event_store::Loaded;
use sentra_money::{LineAmounts, Quantity};
use sentra_proto::sentra::finance::v1 as pb;
use sentra_proto::sentra::finance::v1::finance_service_server::FinanceService;
use sentra_proto::sentra::r#type::v1::{Date, Money};
use sentra_runtime::wire;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::app::Finance;
use crate::domain::invoice::{Invoice, InvoiceCommand, Line, Payment, Status as InvoiceStatus};
use crate::error::FinanceError;
use crate::queries::{self, InvoiceFilter};

type Reply<T> = std::result::Result<Response<T>, Status>;
type Result<T> = std::result::Result<T, FinanceError>;

fn id(field: &'static str, value: &str) -> Result<Uuid> {
    Uuid::parse_str(value.trim()).map_err(|_| FinanceError::invalid(field, "must be a UUID"))
}

fn optional_id(field: &'static str, value: &str) -> Result<Option<Uuid>> {
    if value.trim().is_empty() { Ok(None) } else { id(field, value).map(Some) }
}

fn etag(value: &str) -> Result<Option<u64>> {
    if value.is_empty() {
        return Ok(None);
    }
    value.trim_matches('"').parse().map(Some).map_err(|_| FinanceError::invalid("etag", "is not an etag from this API"))
}

fn etag_of(version: u64) -> String {
    format!("\"{version}\"")
}

fn request_id(value: &str) -> Result<Option<String>> {
    match value.trim() {
        "" => Ok(None),
        v if v.len() <= 128 => Ok(Some(v.to_owned())),
        _ => Err(FinanceError::invalid("request_id", "must be at most 128 characters")),
    }
}

fn text(field: &'static str, value: &str, max: usize, required: bool) -> Result<String> {
    let value = value.trim();
    if required && value.is_empty() {
        return Err(FinanceError::invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(FinanceError::invalid(field, format!("must be at most {max} characters")));
    }
    Ok(value.to_owned())
}

fn currency(field: &'static str, value: &str) -> Result<String> {
    let value = value.trim().to_ascii_uppercase();
    if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(value)
    } else {
        Err(FinanceError::invalid(field, "must be an ISO-4217 currency code such as EUR"))
    }
}

fn date(field: &'static str, value: Option<&Date>) -> Result<Option<NaiveDate>> {
    value
        .map(|d| {
            wire::date(d.year, d.month, d.day)
                .ok_or_else(|| FinanceError::invalid(field, "must be a calendar date in the years 1 to 9999"))
        })
        .transpose()
}

fn date_pb(d: Option<NaiveDate>) -> Option<Date> {
    d.map(|d| Date {
        year: d.year(),
        month: i32::try_from(d.month()).unwrap_or(0),
        day: i32::try_from(d.day()).unwrap_or(0),
    })
}

fn page_size(value: i32) -> Result<i64> {
    wire::page_size(value).ok_or_else(|| FinanceError::invalid("page_size", "must not be negative"))
}

fn page_token(value: &str) -> Result<Option<(DateTime<Utc>, Uuid)>> {
    wire::decode_cursor(value).map_err(|()| FinanceError::invalid("page_token", "is not a token from a previous page"))
}

/// Invoice lines with computed amounts, all in one currency.
fn lines(currency_code: &str, lines: &[pb::InvoiceLine]) -> Result<(String, Vec<Line>, LineAmounts)> {
    let code = if currency_code.trim().is_empty() {
        lines.iter().filter_map(|l| l.unit_price.as_ref()).map(|m| m.currency_code.clone()).next().unwrap_or_default()
    } else {
        currency_code.to_owned()
    };
    let code = currency("currency_code", &code)?;
    let mut out = Vec::with_capacity(lines.len());
    for l in lines {
        let price = l.unit_price.as_ref().ok_or_else(|| FinanceError::invalid("lines.unit_price", "is required"))?;
        if currency("lines.unit_price.currency_code", &price.currency_code)? != code {
            return Err(FinanceError::invalid(
                "lines.unit_price.currency_code",
                format!("must be the invoice's currency {code}"),
            ));
        }
        let bps = |field: &'static str, v: i32| {
            u32::try_from(v)
                .ok()
                .filter(|b| *b <= 10_000)
                .ok_or_else(|| FinanceError::invalid(field, "must be between 0 and 10000"))
        };
        let quantity =
            Quantity::parse(&l.quantity).map_err(|e| FinanceError::invalid("lines.quantity", e.to_string()))?;
        let (tax, discount) = (bps("lines.tax_rate_bps", l.tax_rate_bps)?, bps("lines.discount_bps", l.discount_bps)?);
        sentra_money::bounded(price.amount_minor)
            .map_err(|e| FinanceError::invalid("lines.unit_price", e.to_string()))?;
        let amounts = LineAmounts::compute(price.amount_minor, quantity, tax, discount)
            .map_err(|e| FinanceError::invalid("lines.unit_price", e.to_string()))?;
        out.push(Line {
            description: text("lines.description", &l.description, 500, true)?,
            quantity,
            unit_price: price.amount_minor,
            tax_rate_bps: tax,
            discount_bps: discount,
            amounts,
        });
    }
    let totals =
        LineAmounts::sum(out.iter().map(|l| &l.amounts)).map_err(|e| FinanceError::invalid("lines", e.to_string()))?;
    if totals.total < 0 {
        return Err(FinanceError::invalid("lines", "the invoice's total must not be negative"));
    }
    Ok((code, out, totals))
}

fn status_pb(status: InvoiceStatus) -> pb::InvoiceStatus {
    match status {
        InvoiceStatus::Draft => pb::InvoiceStatus::Draft,
        InvoiceStatus::Issued => pb::InvoiceStatus::Issued,
        InvoiceStatus::PartiallyPaid => pb::InvoiceStatus::PartiallyPaid,
        InvoiceStatus::Paid => pb::InvoiceStatus::Paid,
        InvoiceStatus::Overdue => pb::InvoiceStatus::Overdue,
        InvoiceStatus::Void => pb::InvoiceStatus::Void,
    }
}

fn method_name(value: i32) -> Result<&'static str> {
    Ok(match pb::PaymentMethod::try_from(value) {
        Ok(pb::PaymentMethod::BankTransfer) => "bank_transfer",
        Ok(pb::PaymentMethod::Card) => "card",
        Ok(pb::PaymentMethod::Cash) => "cash",
        Ok(pb::PaymentMethod::Other) => "other",
        _ => return Err(FinanceError::invalid("method", "must be a payment method")),
    })
}

fn method_pb(name: &str) -> pb::PaymentMethod {
    match name {
        "bank_transfer" => pb::PaymentMethod::BankTransfer,
        "card" => pb::PaymentMethod::Card,
        "cash" => pb::PaymentMethod::Cash,
        _ => pb::PaymentMethod::Other,
    }
}

fn invoice_message(id: String, version: u64, s: &Invoice) -> pb::Invoice {
    let m = |amount: i64| Some(Money { currency_code: s.currency.clone(), amount_minor: amount });
    pb::Invoice {
        id,
        brand_id: s.brand_id.to_string(),
        client_id: s.client_id.to_string(),
        order_id: s.order_id.map(|o| o.to_string()).unwrap_or_default(),
        number: s.number.clone(),
        status: status_pb(s.status).into(),
        currency_code: s.currency.clone(),
        lines: s
            .lines
            .iter()
            .map(|l| pb::InvoiceLine {
                description: l.description.clone(),
                quantity: l.quantity.text(),
                unit_price: m(l.unit_price),
                tax_rate_bps: i32::try_from(l.tax_rate_bps).unwrap_or(0),
                discount_bps: i32::try_from(l.discount_bps).unwrap_or(0),
                total: m(l.amounts.total),
            })
            .collect(),
        subtotal: m(s.totals.subtotal),
        discount_total: m(s.totals.discount),
        tax_total: m(s.totals.tax),
        total: m(s.totals.total),
        amount_paid: m(s.paid().min(s.totals.total.saturating_sub(s.credited())).max(0)),
        amount_credited: m(s.credited()),
        balance: m(s.balance()),
        payment_terms_days: i32::try_from(s.terms_days).unwrap_or(0),
        issue_date: date_pb(s.issue_date),
        due_date: date_pb(s.due_date),
        payments: s
            .payments
            .iter()
            .map(|p| pb::Payment {
                id: p.id.to_string(),
                amount: m(p.amount),
                method: method_pb(&p.method).into(),
                reference: p.reference.clone(),
                paid_on: date_pb(Some(p.paid_on)),
                record_time: wire::timestamp_opt(Some(p.at)),
            })
            .collect(),
        credit_notes: s.credit_notes.iter().map(|c| credit_note_pb(&s.currency, c)).collect(),
        void_reason: s.void_reason.clone(),
        etag: etag_of(version),
        create_time: wire::timestamp_opt(s.created_at),
        update_time: wire::timestamp_opt(s.updated_at),
    }
}

fn credit_note_pb(currency: &str, c: &crate::domain::invoice::CreditNote) -> pb::CreditNote {
    pb::CreditNote {
        id: c.id.to_string(),
        number: c.number.clone(),
        amount: Some(Money { currency_code: currency.to_owned(), amount_minor: c.amount }),
        reason: c.reason.clone(),
        issued_on: date_pb(Some(c.issued_on)),
    }
}

fn invoice_pb(invoice: &Loaded<Invoice>) -> pb::Invoice {
    invoice_message(invoice.aggregate_id.clone(), invoice.version, &invoice.state)
}

fn amount(field: &'static str, money: Option<&Money>, invoice_currency: &str) -> Result<i64> {
    let money = money.ok_or_else(|| FinanceError::invalid(field, "is required"))?;
    if currency(field, &money.currency_code)? != invoice_currency {
        return Err(FinanceError::invalid(field, format!("must be in the invoice's currency {invoice_currency}")));
    }
    if money.amount_minor <= 0 {
        return Err(FinanceError::invalid(field, "must be positive"));
    }
    sentra_money::bounded(money.amount_minor).map_err(|e| FinanceError::invalid(field, e.to_string()))
}

/// `FinanceService` over [`Finance`].
pub struct FinanceApi {
    /// The application.
    pub finance: Finance,
    /// Payment terms of invoices created without terms.
    pub default_terms_days: u32,
}

#[tonic::async_trait]
impl FinanceService for FinanceApi {
    async fn create_invoice(&self, request: Request<pb::CreateInvoiceRequest>) -> Reply<pb::CreateInvoiceResponse> {
        let who = Caller::of(&request)?;
        let r = request.into_inner();
        let brand = id("brand_id", &r.brand_id)?;
        let client = id("client_id", &r.client_id)?;
        let (currency, lines, totals) = lines(&r.currency_code, &r.lines)?;
        let terms = match r.payment_terms_days {
            0 => self.default_terms_days,
            d => u32::try_from(d)
                .ok()
                .filter(|d| *d <= 365)
                .ok_or_else(|| FinanceError::invalid("payment_terms_days", "must be between 0 and 365"))?,
        };
        let invoice = self
            .finance
            .create(&who, brand, client, currency, lines, totals, terms, request_id(&r.request_id)?)
            .await?;
        Ok(Response::new(pb::CreateInvoiceResponse { invoice: Some(invoice_pb(&invoice)) }))
    }

    async fn get_invoice(&self, request: Request<pb::GetInvoiceRequest>) -> Reply<pb::GetInvoiceResponse> {
        let who = Caller::of(&request)?;
        let invoice = self.finance.invoice(&who, id("invoice_id", &request.get_ref().invoice_id)?).await?;
        Ok(Response::new(pb::GetInvoiceResponse { invoice: Some(invoice_pb(&invoice)) }))
    }

    async fn list_invoices(&self, request: Request<pb::ListInvoicesRequest>) -> Reply<pb::ListInvoicesResponse> {
        let who = Caller::of(&request)?;
        let r = request.into_inner();
        let size = page_size(r.page_size)?;
        let after = page_token(&r.page_token)?;
        let statuses = r
            .statuses
            .iter()
            .map(|s| match pb::InvoiceStatus::try_from(*s) {
                Ok(pb::InvoiceStatus::Unspecified) | Err(_) => {
                    Err(FinanceError::invalid("statuses", "must be invoice statuses"))
                }
                Ok(s) => Ok(s.as_str_name().trim_start_matches("INVOICE_STATUS_").to_ascii_lowercase()),
            })
            .collect::<Result<Vec<_>>>()?;
        // Portal clients never see drafts (the agency's work in progress).
        let statuses = if who.principal.portal.is_some() {
            let asked_only_drafts = !statuses.is_empty() && statuses.iter().all(|s| s == "draft");
            if asked_only_drafts {
                return Ok(Response::new(pb::ListInvoicesResponse::default()));
            }
            let issued = ["issued", "partially_paid", "paid", "overdue", "void"];
            if statuses.is_empty() {
                issued.iter().map(|s| (*s).to_owned()).collect()
            } else {
                statuses.into_iter().filter(|s| s != "draft").collect()
            }
        } else {
            statuses
        };
        let (brands, client) = match &who.principal.portal {
            Some(portal) => (Some(vec![portal.brand_id]), Some(portal.client_id)),
            None => (
                self.finance.readable_brands(&who, perm::INVOICE_READ, optional_id("brand_id", &r.brand_id)?).await?,
                optional_id("client_id", &r.client_id)?,
            ),
        };
        let filter = InvoiceFilter {
            brands,
            client,
            order: optional_id("order_id", &r.order_id)?,
            statuses,
            issued: (date("issued_from", r.issued_from.as_ref())?, date("issued_to", r.issued_to.as_ref())?),
            due: (date("due_from", r.due_from.as_ref())?, date("due_to", r.due_to.as_ref())?),
        };
        let (rows, next) =
            queries::list_invoices(self.finance.store().pool(), who.tenant(), &filter, size, after).await?;
        Ok(Response::new(pb::ListInvoicesResponse {
            invoices: rows
                .iter()
                .map(|r| invoice_message(r.id.to_string(), u64::try_from(r.version).unwrap_or(0), &r.state))
                .collect(),
            next_page_token: next.map(|(at, id)| wire::encode_cursor(at, id)).unwrap_or_default(),
        }))
    }

    async fn update_invoice_lines(
        &self,
        request: Request<pb::UpdateInvoiceLinesRequest>,
    ) -> Reply<pb::UpdateInvoiceLinesResponse> {
        let who = Caller::of(&request)?;
        let r = request.into_inner();
        let invoice_id = id("invoice_id", &r.invoice_id)?;
        // Lines are validated against the invoice's currency, read in the same load as the change.
        let invoice = self
            .finance
            .change(&who, invoice_id, etag(&r.etag)?, |current| {
                let (_, lines, totals) = lines(&current.currency, &r.lines)?;
                Ok(InvoiceCommand::UpdateLines { lines, totals })
            })
            .await?;
        Ok(Response::new(pb::UpdateInvoiceLinesResponse { invoice: Some(invoice_pb(&invoice)) }))
    }

    async fn issue_invoice(&self, request: Request<pb::IssueInvoiceRequest>) -> Reply<pb::IssueInvoiceResponse> {
        let who = Caller::of(&request)?;
        let r = request.into_inner();
        let issue_date = date("issue_date", r.issue_date.as_ref())?.unwrap_or_else(|| Utc::now().date_naive());
        let invoice = self.finance.issue(&who, id("invoice_id", &r.invoice_id)?, etag(&r.etag)?, issue_date).await?;
        Ok(Response::new(pb::IssueInvoiceResponse { invoice: Some(invoice_pb(&invoice)) }))
    }

    async fn void_invoice(&self, request: Request<pb::VoidInvoiceRequest>) -> Reply<pb::VoidInvoiceResponse> {
        let who = Caller::of(&request)?;
        let r = request.into_inner();
        let reason = text("reason", &r.reason, 500, true)?;
        let invoice = self
            .finance
            .change(&who, id("invoice_id", &r.invoice_id)?, etag(&r.etag)?, |_| Ok(InvoiceCommand::Void { reason }))
            .await?;
        Ok(Response::new(pb::VoidInvoiceResponse { invoice: Some(invoice_pb(&invoice)) }))
    }

    async fn record_payment(&self, request: Request<pb::RecordPaymentRequest>) -> Reply<pb::RecordPaymentResponse> {
        let who = Caller::of(&request)?;
        let r = request.into_inner();
        let invoice_id = id("invoice_id", &r.invoice_id)?;
        let method = method_name(r.method)?.to_owned();
        let reference = text("reference", &r.reference, 200, false)?;
        let paid_on = date("paid_on", r.paid_on.as_ref())?.unwrap_or_else(|| Utc::now().date_naive());
        // The amount is checked against the invoice's currency, read in the same load as the payment.
        let payment = |current: &Invoice| {
            let amount = amount("amount", r.amount.as_ref(), &current.currency)?;
            Ok(Payment { id: Uuid::now_v7(), amount, method, reference, paid_on, at: crate::domain::now() })
        };
        let invoice = self.finance.record_payment(&who, invoice_id, payment, request_id(&r.request_id)?).await?;
        Ok(Response::new(pb::RecordPaymentResponse { invoice: Some(invoice_pb(&invoice)) }))
    }

    async fn issue_credit_note(
        &self,
        request: Request<pb::IssueCreditNoteRequest>,
    ) -> Reply<pb::IssueCreditNoteResponse> {
        let who = Caller::of(&request)?;
        let r = request.into_inner();
        let invoice_id = id("invoice_id", &r.invoice_id)?;
        let value = |current: &Invoice| amount("amount", r.amount.as_ref(), &current.currency);
        let reason = text("reason", &r.reason, 500, true)?;
        let today = Utc::now().date_naive();
        let (invoice, note) =
            self.finance.credit(&who, invoice_id, value, reason, today, request_id(&r.request_id)?).await?;
        let currency = invoice.state.currency.clone();
        Ok(Response::new(pb::IssueCreditNoteResponse {
            invoice: Some(invoice_pb(&invoice)),
            credit_note: Some(credit_note_pb(&currency, &note)),
        }))
    }

    async fn get_client_balance(
        &self,
        request: Request<pb::GetClientBalanceRequest>,
    ) -> Reply<pb::GetClientBalanceResponse> {
        let who = Caller::of(&request)?;
        let r = request.into_inner();
        let client = id("client_id", &r.client_id)?;
        let brand = id("brand_id", &r.brand_id)?;
        if who.principal.portal.as_ref().is_some_and(|p| p.client_id != client || p.brand_id != brand) {
            return Err(FinanceError::NotFound("client").into());
        }
        self.finance.authorize(&who, perm::INVOICE_READ, brand).await?;
        let balances = queries::client_balance(self.finance.store().pool(), who.tenant(), brand, client).await?;
        Ok(Response::new(pb::GetClientBalanceResponse {
            balances: balances
                .into_iter()
                .map(|(currency_code, (invoiced, paid, credited, outstanding, credit))| pb::CurrencyBalance {
                    currency_code,
                    invoiced_minor: invoiced,
                    paid_minor: paid,
                    credited_minor: credited,
                    outstanding_minor: outstanding,
                    credit_minor: credit,
                })
                .collect(),
        }))
    }

    async fn get_receivables_summary(
        &self,
        request: Request<pb::GetReceivablesSummaryRequest>,
    ) -> Reply<pb::GetReceivablesSummaryResponse> {
        let who = Caller::of(&request)?;
        let r = request.into_inner();
        let brands =
            self.finance.readable_brands(&who, perm::RECEIVABLES_READ, optional_id("brand_id", &r.brand_id)?).await?;
        let as_of = match r.as_of {
            Some(t) => wire::from_timestamp(&t)
                .ok_or_else(|| FinanceError::invalid("as_of", "must be a valid time in the years 1 to 9999"))?,
            None => Utc::now(),
        };
        // Microseconds, like PostgreSQL, so "now" and "as of now" describe the same instant.
        let as_of = wire::micros(as_of);
        let aging = queries::receivables(self.finance.store().pool(), who.tenant(), &brands, as_of).await?;
        Ok(Response::new(pb::GetReceivablesSummaryResponse {
            buckets: aging
                .into_iter()
                .map(|((brand, currency_code), (b, count))| pb::ReceivablesBucket {
                    brand_id: brand.to_string(),
                    currency_code,
                    current_minor: b[0],
                    days_1_30_minor: b[1],
                    days_31_60_minor: b[2],
                    days_61_90_minor: b[3],
                    days_over_90_minor: b[4],
                    total_minor: b.iter().sum(),
                    invoice_count: count,
                })
                .collect(),
            as_of: wire::timestamp_opt(Some(as_of)),
        }))
    }
}

#[cfg(test)]
mod properties {
    //! Whatever a client sends, the boundary answers `Ok` or an error naming a field: never a
    //! panic (the year-262142 issue date once was one), never an error without a field.

    use proptest::prelude::*;

    use super::*;

    fn money() -> impl Strategy<Value = Option<Money>> {
        proptest::option::of(
            (prop_oneof![Just("EUR".to_owned()), ".{0,5}"], any::<i64>())
                .prop_map(|(currency_code, amount_minor)| Money { currency_code, amount_minor }),
        )
    }

    fn line() -> impl Strategy<Value = pb::InvoiceLine> {
        (".{0,40}", prop_oneof![Just("1".to_owned()), ".{0,12}"], money(), any::<i32>(), any::<i32>()).prop_map(
            |(description, quantity, unit_price, tax_rate_bps, discount_bps)| pb::InvoiceLine {
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
            Err(FinanceError::Invalid { field, .. }) if !field.is_empty() => Ok(()),
            Err(other) => Err(TestCaseError::fail(format!("not a field error: {other:?}"))),
        }
    }

    proptest! {
        #[test]
        fn invoice_lines(currency in ".{0,5}", lines in proptest::collection::vec(line(), 0..6)) {
            names_a_field(super::lines(&currency, &lines))?;
        }

        #[test]
        fn amounts_and_dates(money in money(), year in any::<i32>(), month in any::<i32>(), day in any::<i32>()) {
            names_a_field(amount("amount", money.as_ref(), "EUR"))?;
            names_a_field(date("issue_date", Some(&Date { year, month, day })))?;
        }

        #[test]
        fn scalars(value in any::<i32>(), text in ".{0,300}") {
            names_a_field(method_name(value))?;
            names_a_field(page_size(value))?;
            names_a_field(page_token(&text))?;
            names_a_field(etag(&text))?;
            names_a_field(request_id(&text))?;
            names_a_field(currency("currency_code", &text))?;
            names_a_field(super::id("invoice_id", &text))?;
            names_a_field(text_field(&text))?;
        }
    }

    fn text_field(value: &str) -> Result<String> {
        text("reason", value, 500, true)
    }
}
