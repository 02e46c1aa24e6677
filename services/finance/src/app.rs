//! The Finance application: authorization, then commands on invoices through the event store.
//!
//! Access: finance staff and managers (and owners/admins) write; agents and viewers read their
//! brands' invoices; portal clients read only their own client's invoices. Numbers are drawn
//! from the brand's gap-free sequence in the same transaction that appends the event carrying
//! them (see `numbering`).

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sentra_auth::{Caller, permissions as perm};
use sentra_directory::Directory;
use sentra_event_store::Projection as _;
use sentra_event_store::{EventMetadata, EventStore, EventStoreError, Loaded, decide, new_events};
use sentra_kernel::replay::{EventQuery, EventReader};
use sentra_kernel::{Kernel, check_etag};
use sentra_money::LineAmounts;
use uuid::Uuid;

use crate::domain::invoice::{CreditNote, Invoice, InvoiceCommand, Line, Payment};
use crate::error::FinanceError;
use crate::numbering::{self, Kind};
use crate::projection::InvoicesProjection;
use crate::queries;
use crate::queries::Balance;
use crate::receivables::InvoiceTimelineProjection;
use std::collections::BTreeMap;

type Result<T> = std::result::Result<T, FinanceError>;

/// Namespace of ids derived from other ids (idempotency).
const IDS: Uuid = Uuid::from_u128(0xf1a7_ce00_5a1e_4000_8000_0000_0000_0002);

/// The invoice id drafted for a Sales order: derived, so a redelivered message cannot draft twice.
pub fn invoice_id_for_order(order_id: Uuid) -> Uuid {
    Uuid::new_v5(&IDS, format!("invoice-of-order:{order_id}").as_bytes())
}

/// Event metadata of a command no person made (a consumer, a scheduled job).
pub fn system_metadata() -> EventMetadata {
    let ctx = sentra_runtime::context::RequestContext::current();
    EventMetadata {
        correlation_id: ctx.as_ref().map(|c| c.request_id.clone()),
        actor: Some("system:finance".to_owned()),
        traceparent: ctx.as_ref().map(sentra_runtime::context::RequestContext::traceparent),
        ..EventMetadata::default()
    }
}

/// The Finance application service, on the shared application kernel.
#[derive(Clone)]
pub struct Finance {
    kernel: Kernel,
}

impl Finance {
    /// The service over `store`, asking Tenancy through `directory`.
    pub fn new(store: EventStore, directory: Arc<Directory>) -> Self {
        Self { kernel: Kernel::new(store, directory, IDS, "system:finance") }
    }

    /// The event store (queries read its pool).
    pub fn store(&self) -> &EventStore {
        self.kernel.store()
    }

    /// The access rule of the kernel for `permission` on `brand`.
    pub async fn authorize(&self, who: &Caller, permission: &str, brand: Uuid) -> Result<()> {
        self.kernel.authorize(who, permission, brand).await
    }

    fn metadata(&self, who: &Caller) -> EventMetadata {
        self.kernel.metadata(Some(who), None)
    }

    fn derived(&self, who: &Caller, what: &str, request_id: &str) -> Uuid {
        self.kernel.derived_id(who.tenant(), what, request_id)
    }

    /// An invoice the caller may read; portal clients only their own, and only once issued.
    pub async fn invoice(&self, who: &Caller, id: Uuid) -> Result<Loaded<Invoice>> {
        let invoice = self.kernel.load::<Invoice>(who, id, "invoice").await?;
        // Clients see their own invoices once issued: a draft is still the agency's work.
        if let Some(portal) = &who.principal.portal
            && (portal.client_id != invoice.state.client_id
                || portal.brand_id != invoice.state.brand_id
                || invoice.state.status == crate::domain::invoice::Status::Draft)
        {
            return Err(FinanceError::NotFound("invoice"));
        }
        self.authorize(who, perm::INVOICE_READ, invoice.state.brand_id).await?;
        Ok(invoice)
    }

    async fn for_change(
        &self,
        who: &Caller,
        id: Uuid,
        permission: &str,
        expected: Option<u64>,
    ) -> Result<Loaded<Invoice>> {
        let invoice = self.invoice(who, id).await?;
        self.authorize(who, permission, invoice.state.brand_id).await?;
        check_etag(expected, invoice.version)?;
        Ok(invoice)
    }

    /// Drafts an invoice by hand; a retry with the same request id returns the first draft.
    #[allow(clippy::too_many_arguments, reason = "one argument per field of the draft")]
    pub async fn create(
        &self,
        who: &Caller,
        brand: Uuid,
        client: Uuid,
        currency: String,
        lines: Vec<Line>,
        totals: LineAmounts,
        terms_days: u32,
        request_id: Option<String>,
    ) -> Result<Loaded<Invoice>> {
        self.authorize(who, perm::INVOICE_WRITE, brand).await?;
        let (id, mut invoice) = self.kernel.create_target::<Invoice>(who, "invoice", request_id.as_deref()).await?;
        if invoice.version > 0 {
            return Ok(invoice);
        }
        let command = InvoiceCommand::Draft {
            brand_id: brand,
            client_id: client,
            order_id: None,
            currency,
            lines,
            totals,
            terms_days,
        };
        let events = decide(&mut invoice.state, command, &()).await?;
        match self.store().commit(&mut invoice, events, &self.metadata(who)).await {
            Err(EventStoreError::Conflict { .. }) => self.invoice(who, id).await,
            Err(other) => Err(other.into()),
            Ok(_) => Ok(invoice),
        }
    }

    /// Runs the command `command` decides from the current invoice, if the caller may change it.
    pub async fn change(
        &self,
        who: &Caller,
        id: Uuid,
        expected: Option<u64>,
        command: impl FnOnce(&Invoice) -> Result<InvoiceCommand>,
    ) -> Result<Loaded<Invoice>> {
        let mut invoice = self.for_change(who, id, perm::INVOICE_WRITE, expected).await?;
        let command = command(&invoice.state)?;
        let events = decide(&mut invoice.state, command, &()).await?;
        self.store().commit(&mut invoice, events, &self.metadata(who)).await?;
        Ok(invoice)
    }

    /// Issues a draft with the brand's next invoice number.
    pub async fn issue(
        &self,
        who: &Caller,
        id: Uuid,
        expected: Option<u64>,
        issue_date: NaiveDate,
    ) -> Result<Loaded<Invoice>> {
        let mut invoice = self.for_change(who, id, perm::INVOICE_WRITE, expected).await?;
        let brand = self.kernel.brand(who, invoice.state.brand_id).await?;
        let mut tx = self.store().pool().begin().await?;
        let number =
            numbering::next(&mut tx, brand.id, Kind::Invoice, issue_date.year(), &brand.invoice_prefix).await?;
        let events = decide(&mut invoice.state, InvoiceCommand::Issue { number, issue_date }, &()).await?;
        let outcome = self
            .store()
            .append_in(
                &mut tx,
                who.tenant(),
                "invoice",
                &invoice.aggregate_id,
                invoice.version,
                new_events(&events)?,
                &self.metadata(who),
            )
            .await?;
        tx.commit().await?;
        invoice.version = outcome.version;
        Ok(invoice)
    }

    /// Records a payment; a retry with the same request id records nothing twice.
    pub async fn record_payment(
        &self,
        who: &Caller,
        id: Uuid,
        payment: impl FnOnce(&Invoice) -> Result<Payment>,
        request_id: Option<String>,
    ) -> Result<Loaded<Invoice>> {
        let mut invoice = self.invoice(who, id).await?;
        self.authorize(who, perm::PAYMENT_WRITE, invoice.state.brand_id).await?;
        let mut payment = payment(&invoice.state)?;
        if let Some(rid) = &request_id {
            payment.id = self.derived(who, "payment", rid);
            if invoice.state.payments.iter().any(|p| p.id == payment.id) {
                return Ok(invoice);
            }
        }
        if invoice.state.currency.is_empty() {
            return Err(FinanceError::FailedPrecondition {
                reason: "INVOICE_WITHOUT_CURRENCY",
                message: "the invoice has no currency".into(),
            });
        }
        let payment_id = payment.id;
        let events = decide(&mut invoice.state, InvoiceCommand::RecordPayment { payment }, &()).await?;
        match self.store().commit(&mut invoice, events, &self.metadata(who)).await {
            Err(EventStoreError::Conflict { .. }) => {
                let now = self.invoice(who, id).await?;
                if now.state.payments.iter().any(|p| p.id == payment_id) { Ok(now) } else { Err(FinanceError::Stale) }
            }
            Err(other) => Err(other.into()),
            Ok(_) => Ok(invoice),
        }
    }

    /// Issues a credit note with the brand's next credit note number.
    pub async fn credit(
        &self,
        who: &Caller,
        id: Uuid,
        amount: impl FnOnce(&Invoice) -> Result<i64>,
        reason: String,
        today: NaiveDate,
        request_id: Option<String>,
    ) -> Result<(Loaded<Invoice>, CreditNote)> {
        let mut invoice = self.for_change(who, id, perm::INVOICE_WRITE, None).await?;
        let amount = amount(&invoice.state)?;
        let note_id = request_id.as_deref().map_or_else(Uuid::now_v7, |rid| self.derived(who, "credit_note", rid));
        if let Some(existing) = invoice.state.credit_notes.iter().find(|c| c.id == note_id).cloned() {
            return Ok((invoice, existing));
        }
        let brand = self.kernel.brand(who, invoice.state.brand_id).await?;
        let mut tx = self.store().pool().begin().await?;
        let number = numbering::next(&mut tx, brand.id, Kind::CreditNote, today.year(), &brand.invoice_prefix).await?;
        let note = CreditNote { id: note_id, number, amount, reason, issued_on: today };
        let events =
            decide(&mut invoice.state, InvoiceCommand::IssueCreditNote { credit_note: note.clone() }, &()).await?;
        let appended = self
            .store()
            .append_in(
                &mut tx,
                who.tenant(),
                "invoice",
                &invoice.aggregate_id,
                invoice.version,
                new_events(&events)?,
                &self.metadata(who),
            )
            .await;
        match appended {
            Ok(outcome) => {
                tx.commit().await?;
                invoice.version = outcome.version;
                Ok((invoice, note))
            }
            Err(EventStoreError::Conflict { .. }) => {
                // The number goes back with the rolled-back transaction.
                drop(tx);
                let now = self.invoice(who, id).await?;
                match now.state.credit_notes.iter().find(|c| c.id == note_id).cloned() {
                    Some(existing) => Ok((now, existing)),
                    None => Err(FinanceError::Stale),
                }
            }
            Err(other) => Err(other.into()),
        }
    }

    /// A client's balances per currency (see [`queries::client_balance`]) once the invoices
    /// projection has applied every event committed before the call: a payment just recorded
    /// shows.
    pub async fn client_balance(&self, who: &Caller, brand: Uuid, client: Uuid) -> Result<BTreeMap<String, Balance>> {
        self.authorize(who, perm::INVOICE_READ, brand).await?;
        self.kernel.caught_up(InvoicesProjection.name(), "invoices").await?;
        queries::client_balance(self.store().pool(), who.tenant(), brand, client).await
    }

    /// Starts replaying the organization's Finance events for an analyst (see
    /// [`sentra_kernel::replay`]).
    pub async fn read_events(&self, who: &Caller, query: EventQuery) -> Result<EventReader> {
        self.kernel.read_events(who, query).await
    }

    /// Receivables aging as of `as_of` (see [`queries::receivables`]) once the invoice timeline
    /// has applied every event committed before the call.
    pub async fn receivables(&self, who: &Caller, brand: Option<Uuid>, as_of: DateTime<Utc>) -> Result<queries::Aging> {
        let brands = self.readable_brands(who, perm::RECEIVABLES_READ, brand).await?;
        self.kernel.caught_up(InvoiceTimelineProjection.name(), "receivables").await?;
        queries::receivables(self.store().pool(), who.tenant(), &brands, as_of).await
    }

    /// Brands readable with `permission`, narrowed to `brand` if given.
    pub async fn readable_brands(
        &self,
        who: &Caller,
        permission: &str,
        brand: Option<Uuid>,
    ) -> Result<Option<Vec<Uuid>>> {
        self.kernel.readable_brands(who, permission, brand).await
    }
}
