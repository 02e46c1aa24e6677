//! The gRPC surface of Finance: requests to commands, state to messages, errors to statuses.

use chrono::{Datelike, NaiveDate, Utc};
use sentra_auth::{Caller, permissions as perm};
use sentra_event_store::Loaded;
use sentra_kernel::replay::{self, EventQuery};
use sentra_proto::sentra::finance::v1 as pb;
use sentra_proto::sentra::finance::v1::finance_service_server::FinanceService;
use sentra_proto::sentra::r#type::v1::{Date, Money};
use sentra_runtime::wire;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::app::Finance;
use crate::boundary::{
    amount, date, etag, id, lines, method_name, optional_id, page_size, page_token, request_id, text,
};
use crate::domain::invoice::{Invoice, InvoiceCommand, Payment, Status as InvoiceStatus};
use crate::error::FinanceError;
use crate::integration;
use crate::queries::{self, InvoiceFilter};

type Reply<T> = std::result::Result<Response<T>, Status>;
type Result<T> = std::result::Result<T, FinanceError>;

fn etag_of(version: u64) -> String {
    format!("\"{version}\"")
}

pub(crate) fn date_pb(d: Option<NaiveDate>) -> Option<Date> {
    d.map(|d| Date {
        year: d.year(),
        month: i32::try_from(d.month()).unwrap_or(0),
        day: i32::try_from(d.day()).unwrap_or(0),
    })
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

pub(crate) fn method_pb(name: &str) -> pb::PaymentMethod {
    match name {
        "bank_transfer" => pb::PaymentMethod::BankTransfer,
        "card" => pb::PaymentMethod::Card,
        "cash" => pb::PaymentMethod::Cash,
        _ => pb::PaymentMethod::Other,
    }
}

pub(crate) fn line_pb(currency: &str, l: &crate::domain::invoice::Line) -> pb::InvoiceLine {
    let m = |amount: i64| Some(Money { currency_code: currency.to_owned(), amount_minor: amount });
    pb::InvoiceLine {
        description: l.description.clone(),
        quantity: l.quantity.text(),
        unit_price: m(l.unit_price),
        tax_rate_bps: i32::try_from(l.tax_rate_bps).unwrap_or(0),
        discount_bps: i32::try_from(l.discount_bps).unwrap_or(0),
        total: m(l.amounts.total),
    }
}

pub(crate) fn payment_pb(currency: &str, p: &Payment) -> pb::Payment {
    pb::Payment {
        id: p.id.to_string(),
        amount: Some(Money { currency_code: currency.to_owned(), amount_minor: p.amount }),
        method: method_pb(&p.method).into(),
        reference: p.reference.clone(),
        paid_on: date_pb(Some(p.paid_on)),
        record_time: wire::timestamp_opt(Some(p.at)),
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
        lines: s.lines.iter().map(|l| line_pb(&s.currency, l)).collect(),
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
        payments: s.payments.iter().map(|p| payment_pb(&s.currency, p)).collect(),
        credit_notes: s.credit_notes.iter().map(|c| credit_note_pb(&s.currency, c)).collect(),
        void_reason: s.void_reason.clone(),
        etag: etag_of(version),
        create_time: wire::timestamp_opt(s.created_at),
        update_time: wire::timestamp_opt(s.updated_at),
    }
}

pub(crate) fn credit_note_pb(currency: &str, c: &crate::domain::invoice::CreditNote) -> pb::CreditNote {
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

/// `FinanceService` over [`Finance`].
pub struct FinanceApi {
    /// The application.
    pub finance: Finance,
    /// Payment terms of invoices created without terms.
    pub default_terms_days: u32,
    /// How often a quiet following `ReadEvents` stream sends a keep-alive.
    pub keepalive: std::time::Duration,
}

/// The stream of `ReadEvents`.
pub type ReadEventsStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = std::result::Result<pb::ReadEventsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl FinanceService for FinanceApi {
    type ReadEventsStream = ReadEventsStream;

    async fn read_events(&self, request: Request<pb::ReadEventsRequest>) -> Reply<ReadEventsStream> {
        use futures::StreamExt;
        let who = Caller::of(&request)?;
        let query = EventQuery::try_from(request.get_ref().query.as_ref())?;
        let reader = self.finance.read_events(&who, query).await?;
        let wrap = |batch| pb::ReadEventsResponse { batch: Some(batch) };
        Ok(Response::new(replay::stream(reader, "finance", integration::public_any, self.keepalive, wrap).boxed()))
    }

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
        let balances = self.finance.client_balance(&who, brand, client).await?;
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
        let brand = optional_id("brand_id", &r.brand_id)?;
        let as_of = match r.as_of {
            Some(t) => wire::from_timestamp(&t)
                .ok_or_else(|| FinanceError::invalid("as_of", "must be a valid time in the years 1 to 9999"))?,
            None => Utc::now(),
        };
        // Microseconds, like PostgreSQL, so "now" and "as of now" describe the same instant.
        let as_of = wire::micros(as_of);
        let aging = self.finance.receivables(&who, brand, as_of).await?;
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
