//! The gRPC surface of Sales: requests to commands, state to messages, errors to statuses.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sentra_event_store::Loaded;
use sentra_kernel::replay::{self, EventQuery};
use sentra_proto::sentra::sales::v1 as pb;
use sentra_proto::sentra::sales::v1::sales_service_server::SalesService;
use sentra_proto::sentra::r#type::v1::Money;
use sentra_runtime::wire;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::app::Sales;
use crate::commands::{self as c, CreateLead, UpdateLead, etag_of};
use crate::domain::client::{Client, ClientCommand};
use crate::domain::lead::{Lead, LeadCommand, LeadEvent, Stage};
use crate::domain::money::LineAmounts;
use crate::domain::order::{Line, Order, OrderCommand, OrderState};
use crate::error::SalesError;
use crate::integration;
use crate::queries::{self, ClientRow, LeadFilter, LeadRow, OrderRow, Page};
use sentra_auth::Caller;

type Reply<T> = Result<Response<T>, Status>;

pub(crate) fn money(currency: &str, amount: i64) -> Option<Money> {
    Some(Money { currency_code: currency.to_owned(), amount_minor: amount })
}

pub(crate) fn stage_pb(stage: Stage) -> pb::LeadStage {
    match stage {
        Stage::New => pb::LeadStage::New,
        Stage::Contacted => pb::LeadStage::Contacted,
        Stage::Qualified => pb::LeadStage::Qualified,
        Stage::Proposal => pb::LeadStage::Proposal,
        Stage::Negotiation => pb::LeadStage::Negotiation,
        Stage::Won => pb::LeadStage::Won,
        Stage::Lost => pb::LeadStage::Lost,
    }
}

fn order_state_pb(state: OrderState) -> pb::OrderState {
    match state {
        OrderState::Draft => pb::OrderState::Draft,
        OrderState::Confirmed => pb::OrderState::Confirmed,
        OrderState::Fulfilled => pb::OrderState::Fulfilled,
        OrderState::Cancelled => pb::OrderState::Cancelled,
    }
}

fn opt_id(id: Option<Uuid>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

fn lead_pb(lead: &Loaded<Lead>) -> pb::Lead {
    let s = &lead.state;
    pb::Lead {
        id: lead.aggregate_id.clone(),
        brand_id: s.brand_id.to_string(),
        contact_name: s.contact.contact_name.clone(),
        email: s.contact.email.clone(),
        phone: s.contact.phone.clone(),
        company: s.contact.company.clone(),
        source: s.source.clone(),
        estimated_value: (!s.estimated_value.currency.is_empty()).then(|| Money {
            currency_code: s.estimated_value.currency.clone(),
            amount_minor: s.estimated_value.amount_minor,
        }),
        notes: s.notes.clone(),
        stage: stage_pb(s.stage).into(),
        assignee_id: opt_id(s.assignee_id),
        lost_reason: s.lost_reason.clone(),
        client_id: opt_id(s.client_id),
        etag: etag_of(lead.version),
        create_time: wire::timestamp_opt(s.created_at),
        update_time: wire::timestamp_opt(s.updated_at),
        activity_notes: s
            .activity
            .iter()
            .map(|n| pb::LeadNote {
                author_id: n.author_id.to_string(),
                text: n.text.clone(),
                create_time: wire::timestamp_opt(Some(n.at)),
            })
            .collect(),
    }
}

/// A read-table row that does not hold what the projection writes: an internal error, never a
/// silent NEW/DRAFT or etag 0.
fn corrupt(what: &str, value: impl std::fmt::Display) -> SalesError {
    SalesError::corrupt(format!("corrupt read-table row: {what} {value}"))
}

fn row_version(version: i64) -> Result<u64, SalesError> {
    u64::try_from(version).map_err(|_| corrupt("version", version))
}

fn lead_row_pb(r: LeadRow) -> Result<pb::Lead, SalesError> {
    let stage = Stage::parse(&r.stage).ok_or_else(|| corrupt("lead stage", &r.stage))?;
    Ok(pb::Lead {
        id: r.id.to_string(),
        brand_id: r.brand_id.to_string(),
        contact_name: r.contact_name,
        email: r.email,
        phone: r.phone,
        company: r.company,
        source: r.source,
        estimated_value: (!r.value_currency.is_empty())
            .then_some(Money { currency_code: r.value_currency, amount_minor: r.value_minor }),
        notes: r.notes,
        stage: stage_pb(stage).into(),
        assignee_id: opt_id(r.assignee_id),
        lost_reason: r.lost_reason,
        client_id: opt_id(r.client_id),
        etag: etag_of(row_version(r.version)?),
        create_time: wire::timestamp_opt(Some(r.created_at)),
        update_time: wire::timestamp_opt(Some(r.updated_at)),
        activity_notes: Vec::new(),
    })
}

fn client_pb(client: &Loaded<Client>) -> pb::Client {
    let s = &client.state;
    pb::Client {
        id: client.aggregate_id.clone(),
        brand_id: s.brand_id.to_string(),
        contact_name: s.contact.contact_name.clone(),
        email: s.contact.email.clone(),
        phone: s.contact.phone.clone(),
        company: s.contact.company.clone(),
        lead_ids: s.lead_ids.iter().map(Uuid::to_string).collect(),
        archived: s.archived,
        etag: etag_of(client.version),
        create_time: wire::timestamp_opt(s.created_at),
        update_time: wire::timestamp_opt(s.updated_at),
    }
}

fn client_row_pb(r: ClientRow) -> Result<pb::Client, SalesError> {
    Ok(pb::Client {
        id: r.id.to_string(),
        brand_id: r.brand_id.to_string(),
        contact_name: r.contact_name,
        email: r.email,
        phone: r.phone,
        company: r.company,
        lead_ids: r.lead_ids.iter().map(Uuid::to_string).collect(),
        archived: r.archived,
        etag: etag_of(row_version(r.version)?),
        create_time: wire::timestamp_opt(Some(r.created_at)),
        update_time: wire::timestamp_opt(Some(r.updated_at)),
    })
}

pub(crate) fn line_pb(currency: &str, l: &Line) -> pb::OrderLine {
    pb::OrderLine {
        description: l.description.clone(),
        quantity: l.quantity.text(),
        unit_price: money(currency, l.unit_price),
        tax_rate_bps: i32::try_from(l.tax_rate_bps).unwrap_or(0),
        discount_bps: i32::try_from(l.discount_bps).unwrap_or(0),
        subtotal: money(currency, l.amounts.subtotal),
        discount: money(currency, l.amounts.discount),
        tax: money(currency, l.amounts.tax),
        total: money(currency, l.amounts.total),
    }
}

#[allow(clippy::too_many_arguments, reason = "one field per order column")]
fn order_message(
    id: String,
    brand: Uuid,
    client: Uuid,
    currency: &str,
    lines: &[Line],
    totals: LineAmounts,
    state: OrderState,
    cancel_reason: String,
    version: u64,
    created: Option<DateTime<Utc>>,
    updated: Option<DateTime<Utc>>,
) -> pb::Order {
    pb::Order {
        id,
        brand_id: brand.to_string(),
        client_id: client.to_string(),
        currency_code: currency.to_owned(),
        lines: lines.iter().map(|l| line_pb(currency, l)).collect(),
        subtotal: money(currency, totals.subtotal),
        discount_total: money(currency, totals.discount),
        tax_total: money(currency, totals.tax),
        total: money(currency, totals.total),
        state: order_state_pb(state).into(),
        cancel_reason,
        etag: etag_of(version),
        create_time: wire::timestamp_opt(created),
        update_time: wire::timestamp_opt(updated),
    }
}

fn order_pb(order: &Loaded<Order>) -> pb::Order {
    let s = &order.state;
    order_message(
        order.aggregate_id.clone(),
        s.brand_id,
        s.client_id,
        &s.currency,
        &s.lines,
        s.totals,
        s.state,
        s.cancel_reason.clone(),
        order.version,
        s.created_at,
        s.updated_at,
    )
}

fn order_row_pb(r: OrderRow) -> Result<pb::Order, SalesError> {
    let lines: Vec<Line> = serde_json::from_value(r.lines).map_err(SalesError::internal)?;
    let totals = LineAmounts { subtotal: r.subtotal, discount: r.discount_total, tax: r.tax_total, total: r.total };
    Ok(order_message(
        r.id.to_string(),
        r.brand_id,
        r.client_id,
        &r.currency,
        &lines,
        totals,
        OrderState::parse(&r.state).ok_or_else(|| corrupt("order state", &r.state))?,
        r.cancel_reason,
        row_version(r.version)?,
        Some(r.created_at),
        Some(r.updated_at),
    ))
}

fn next_token(next: Option<(DateTime<Utc>, Uuid)>) -> String {
    next.map(|(at, id)| c::encode_page_token(at, id)).unwrap_or_default()
}

fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    Caller::of(request)
}

/// `SalesService` over [`Sales`].
pub struct SalesApi {
    /// The application.
    pub sales: Sales,
    /// How often a quiet `WatchPipeline` stream sends a keep-alive.
    pub keepalive: std::time::Duration,
}

impl SalesApi {
    async fn lead_command(
        &self,
        who: &Caller,
        id: &str,
        etag: &str,
        command: LeadCommand,
    ) -> Result<pb::Lead, SalesError> {
        let id = c::id("lead_id", id)?;
        let expected = c::etag("etag", etag)?;
        Ok(lead_pb(&self.sales.change_lead(who, id, expected, command).await?))
    }

    async fn order_command(
        &self,
        who: &Caller,
        id: &str,
        etag: &str,
        command: impl FnOnce(&Order) -> Result<OrderCommand, SalesError>,
    ) -> Result<pb::Order, SalesError> {
        let id = c::id("order_id", id)?;
        let expected = c::etag("etag", etag)?;
        Ok(order_pb(&self.sales.change_order(who, id, expected, command).await?))
    }
}

/// A lead's fields as the history shows them, in `Lead`'s order; empty before it exists.
fn history_fields(lead: &Lead) -> [(&'static str, String); 11] {
    let value = |v: &crate::domain::lead::Value| {
        if v.currency.is_empty() { String::new() } else { format!("{} {}", v.currency, v.amount_minor) }
    };
    [
        ("contact_name", lead.contact.contact_name.clone()),
        ("email", lead.contact.email.clone()),
        ("phone", lead.contact.phone.clone()),
        ("company", lead.contact.company.clone()),
        ("source", lead.source.clone()),
        ("estimated_value", value(&lead.estimated_value)),
        ("notes", lead.notes.clone()),
        ("stage", if lead.exists { lead.stage.as_str().to_ascii_uppercase() } else { String::new() }),
        ("assignee_id", opt_id(lead.assignee_id)),
        ("lost_reason", lead.lost_reason.clone()),
        ("client_id", opt_id(lead.client_id)),
    ]
}

/// The lead's history: each event with a sentence and every field it changed (old -> new),
/// found by applying the events in order and comparing the lead before and after each.
fn history(events: &[sentra_event_store::RecordedEvent]) -> Result<Vec<pb::LeadHistoryEntry>, SalesError> {
    let mut lead = Lead::default();
    let mut entries = Vec::with_capacity(events.len());
    for event in events {
        let decoded: LeadEvent = event.decode().map_err(SalesError::from)?;
        let upper = |s: Stage| s.as_str().to_ascii_uppercase();
        let summary = match &decoded {
            LeadEvent::Created { contact, .. } => format!("Lead created for {}", contact.contact_name),
            LeadEvent::Updated { .. } => "Lead details updated".into(),
            LeadEvent::Assigned { to, .. } => format!("Assigned to {to}"),
            LeadEvent::StageChanged { from, to, .. } => {
                format!("Stage changed from {} to {}", upper(*from), upper(*to))
            }
            LeadEvent::NoteAdded { .. } => "Note added".into(),
            LeadEvent::Lost { reason, .. } => format!("Marked lost ({reason})"),
            LeadEvent::Reopened { to, .. } => format!("Reopened in {}", upper(*to)),
            LeadEvent::Converted { client_id, .. } => format!("Converted into client {client_id}"),
        };
        // A note is activity, not a field of the lead: shown as added text.
        let note = match &decoded {
            LeadEvent::NoteAdded { text, .. } => Some(text.clone()),
            _ => None,
        };
        let before = history_fields(&lead);
        cqrs_es::Aggregate::apply(&mut lead, decoded);
        let after = history_fields(&lead);
        let mut changes: Vec<pb::FieldChange> = before
            .into_iter()
            .zip(after)
            .filter(|((_, old), (_, new))| old != new)
            .map(|((field, old_value), (_, new_value))| pb::FieldChange { field: field.into(), old_value, new_value })
            .collect();
        if let Some(text) = note {
            changes.push(pb::FieldChange { field: "note".into(), old_value: String::new(), new_value: text });
        }
        let actor = event.typed_metadata().ok().and_then(|m| m.actor).unwrap_or_default();
        entries.push(pb::LeadHistoryEntry {
            sequence: i64::try_from(event.sequence).unwrap_or(0),
            event_type: event.event_type.clone(),
            actor_id: actor,
            time: wire::timestamp_opt(Some(event.recorded_at)),
            summary,
            changes,
        });
    }
    Ok(entries)
}

/// The stream of `ReadEvents`.
pub type ReadEventsStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::ReadEventsResponse, Status>> + Send>>;

/// The stream of `WatchPipeline`.
pub type WatchPipelineStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::WatchPipelineResponse, Status>> + Send>>;

#[tonic::async_trait]
impl SalesService for SalesApi {
    type WatchPipelineStream = WatchPipelineStream;
    type ReadEventsStream = ReadEventsStream;

    async fn read_events(&self, request: Request<pb::ReadEventsRequest>) -> Reply<ReadEventsStream> {
        use futures::StreamExt;
        let who = caller(&request)?;
        let query = EventQuery::try_from(request.get_ref().query.as_ref())?;
        let reader = self.sales.read_events(&who, query).await?;
        let wrap = |batch| pb::ReadEventsResponse { batch: Some(batch) };
        Ok(Response::new(replay::stream(reader, "sales", integration::public_any, self.keepalive, wrap).boxed()))
    }

    async fn watch_pipeline(&self, request: Request<pb::WatchPipelineRequest>) -> Reply<WatchPipelineStream> {
        use futures::StreamExt;
        let who = caller(&request)?;
        let brand = c::optional_id("brand_id", &request.get_ref().brand_id)?;
        let watch = self.sales.watch_leads(&who, brand).await?;
        // The first message says the watch is on: what a client lists after it, it will not miss.
        let ready = futures::stream::once(async { Ok(pb::WatchPipelineResponse::default()) });
        let keepalive = self.keepalive;
        let changes = futures::stream::unfold(Some(watch), move |watch| async move {
            let mut watch = watch?;
            let Ok(next) = tokio::time::timeout(keepalive, watch.next()).await else {
                let message = pb::WatchPipelineResponse { keepalive: true, ..Default::default() };
                return Some((Ok(message), Some(watch)));
            };
            match next {
                Ok(Some(change)) => {
                    let message = pb::WatchPipelineResponse {
                        lead: Some(lead_pb(&change.lead)),
                        event_type: change.event_type.clone(),
                        keepalive: false,
                    };
                    Some((Ok(message), Some(watch)))
                }
                Ok(None) => None,
                Err(behind) => Some((Err(Status::unavailable(behind.to_string())), None)),
            }
        });
        Ok(Response::new(ready.chain(changes).boxed()))
    }
    async fn create_lead(&self, request: Request<pb::CreateLeadRequest>) -> Reply<pb::CreateLeadResponse> {
        let who = caller(&request)?;
        let cmd = CreateLead::try_from(request.into_inner())?;
        let lead = self.sales.create_lead(&who, cmd).await?;
        Ok(Response::new(pb::CreateLeadResponse { lead: Some(lead_pb(&lead)) }))
    }

    async fn get_lead(&self, request: Request<pb::GetLeadRequest>) -> Reply<pb::GetLeadResponse> {
        let who = caller(&request)?;
        let id = c::id("lead_id", &request.get_ref().lead_id)?;
        let lead = self.sales.lead(&who, id).await?;
        Ok(Response::new(pb::GetLeadResponse { lead: Some(lead_pb(&lead)) }))
    }

    async fn list_leads(&self, request: Request<pb::ListLeadsRequest>) -> Reply<pb::ListLeadsResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let brand = c::optional_id("brand_id", &r.brand_id)?;
        let page = Page { size: c::page_size(r.page_size)?, after: c::page_token(&r.page_token)? };
        let stages =
            r.stages.iter().map(|s| c::stage("stages", *s).map(|s| s.as_str().to_owned())).collect::<Result<_, _>>()?;
        let filter = LeadFilter {
            brands: self.sales.readable_brands(&who, sentra_auth::permissions::LEAD_READ, brand).await?,
            stages,
            assignee: c::optional_id("assignee_id", &r.assignee_id)?,
            source: Some(r.source.trim().to_lowercase()).filter(|s| !s.is_empty()),
            created_after: c::timestamp("created_after", r.created_after.as_ref())?,
            created_before: c::timestamp("created_before", r.created_before.as_ref())?,
            query: Some(r.query.trim().to_owned()).filter(|q| !q.is_empty()),
        };
        let (rows, next) =
            queries::list_leads(self.sales.store().pool(), who.principal.organization_id, &filter, &page).await?;
        Ok(Response::new(pb::ListLeadsResponse {
            leads: rows.into_iter().map(lead_row_pb).collect::<Result<_, _>>()?,
            next_page_token: next_token(next),
        }))
    }

    async fn update_lead(&self, request: Request<pb::UpdateLeadRequest>) -> Reply<pb::UpdateLeadResponse> {
        let who = caller(&request)?;
        let cmd = UpdateLead::try_from(request.into_inner())?;
        let lead = self.sales.update_lead(&who, cmd).await?;
        Ok(Response::new(pb::UpdateLeadResponse { lead: Some(lead_pb(&lead)) }))
    }

    async fn assign_lead(&self, request: Request<pb::AssignLeadRequest>) -> Reply<pb::AssignLeadResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let id = c::id("lead_id", &r.lead_id)?;
        let to = c::id("assignee_id", &r.assignee_id)?;
        let lead = self.sales.assign_lead(&who, id, to, c::etag("etag", &r.etag)?).await?;
        Ok(Response::new(pb::AssignLeadResponse { lead: Some(lead_pb(&lead)) }))
    }

    async fn change_lead_stage(
        &self,
        request: Request<pb::ChangeLeadStageRequest>,
    ) -> Reply<pb::ChangeLeadStageResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let to = c::stage("stage", r.stage)?;
        let lead = self.lead_command(&who, &r.lead_id, &r.etag, LeadCommand::ChangeStage { to }).await?;
        Ok(Response::new(pb::ChangeLeadStageResponse { lead: Some(lead) }))
    }

    async fn add_lead_note(&self, request: Request<pb::AddLeadNoteRequest>) -> Reply<pb::AddLeadNoteResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let text = c::required("text", &r.text, 10_000)?;
        let command = LeadCommand::AddNote { author_id: who.principal.user_id, text };
        let lead = self.lead_command(&who, &r.lead_id, "", command).await?;
        Ok(Response::new(pb::AddLeadNoteResponse { lead: Some(lead) }))
    }

    async fn mark_lead_lost(&self, request: Request<pb::MarkLeadLostRequest>) -> Reply<pb::MarkLeadLostResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let reason = c::required("reason", &r.reason, 200)?.to_lowercase();
        let lead = self.lead_command(&who, &r.lead_id, &r.etag, LeadCommand::MarkLost { reason }).await?;
        Ok(Response::new(pb::MarkLeadLostResponse { lead: Some(lead) }))
    }

    async fn reopen_lead(&self, request: Request<pb::ReopenLeadRequest>) -> Reply<pb::ReopenLeadResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let lead = self.lead_command(&who, &r.lead_id, &r.etag, LeadCommand::Reopen).await?;
        Ok(Response::new(pb::ReopenLeadResponse { lead: Some(lead) }))
    }

    async fn convert_lead(&self, request: Request<pb::ConvertLeadRequest>) -> Reply<pb::ConvertLeadResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let id = c::id("lead_id", &r.lead_id)?;
        let existing = c::optional_id("existing_client_id", &r.existing_client_id)?;
        let (lead, client) = self.sales.convert_lead(&who, id, existing, c::etag("etag", &r.etag)?).await?;
        Ok(Response::new(pb::ConvertLeadResponse { lead: Some(lead_pb(&lead)), client: Some(client_pb(&client)) }))
    }

    async fn get_lead_history(&self, request: Request<pb::GetLeadHistoryRequest>) -> Reply<pb::GetLeadHistoryResponse> {
        let who = caller(&request)?;
        let id = c::id("lead_id", &request.get_ref().lead_id)?;
        let events = self.sales.lead_history(&who, id).await?;
        let entries = history(&events)?;
        Ok(Response::new(pb::GetLeadHistoryResponse { entries }))
    }

    async fn get_client(&self, request: Request<pb::GetClientRequest>) -> Reply<pb::GetClientResponse> {
        let who = caller(&request)?;
        let id = c::id("client_id", &request.get_ref().client_id)?;
        if who.principal.portal.as_ref().is_some_and(|p| p.client_id != id) {
            return Err(SalesError::NotFound("client").into());
        }
        let client = self.sales.client(&who, id).await?;
        Ok(Response::new(pb::GetClientResponse { client: Some(client_pb(&client)) }))
    }

    async fn list_clients(&self, request: Request<pb::ListClientsRequest>) -> Reply<pb::ListClientsResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let brand = c::optional_id("brand_id", &r.brand_id)?;
        let page = Page { size: c::page_size(r.page_size)?, after: c::page_token(&r.page_token)? };
        let brands = self.sales.readable_brands(&who, sentra_auth::permissions::CLIENT_READ, brand).await?;
        let query = Some(r.query.trim().to_owned()).filter(|q| !q.is_empty());
        let (rows, next) = queries::list_clients(
            self.sales.store().pool(),
            who.principal.organization_id,
            &brands,
            &query,
            r.show_archived,
            &page,
        )
        .await?;
        Ok(Response::new(pb::ListClientsResponse {
            clients: rows.into_iter().map(client_row_pb).collect::<Result<_, _>>()?,
            next_page_token: next_token(next),
        }))
    }

    async fn update_client(&self, request: Request<pb::UpdateClientRequest>) -> Reply<pb::UpdateClientResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let values = r.client.ok_or_else(|| SalesError::invalid("client", "is required"))?;
        let paths = c::update_paths(r.update_mask.as_ref(), &["contact_name", "email", "phone", "company"])?;
        let id = c::id("client.id", &values.id)?;
        let expected = c::etag("client.etag", &values.etag)?;
        let client = self
            .sales
            .change_client(&who, id, expected, |current| {
                Ok(ClientCommand::Update { contact: c::client_contact(&current.contact, &values, &paths)? })
            })
            .await?;
        Ok(Response::new(pb::UpdateClientResponse { client: Some(client_pb(&client)) }))
    }

    async fn archive_client(&self, request: Request<pb::ArchiveClientRequest>) -> Reply<pb::ArchiveClientResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let id = c::id("client_id", &r.client_id)?;
        let client =
            self.sales.change_client(&who, id, c::etag("etag", &r.etag)?, |_| Ok(ClientCommand::Archive)).await?;
        Ok(Response::new(pb::ArchiveClientResponse { client: Some(client_pb(&client)) }))
    }

    async fn create_order(&self, request: Request<pb::CreateOrderRequest>) -> Reply<pb::CreateOrderResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let client = c::id("client_id", &r.client_id)?;
        let (currency, lines, totals) = c::order_lines(&r.currency_code, &r.lines)?;
        let request_id = c::request_id(&r.request_id)?;
        let order = self.sales.create_order(&who, client, currency, lines, totals, request_id).await?;
        Ok(Response::new(pb::CreateOrderResponse { order: Some(order_pb(&order)) }))
    }

    async fn get_order(&self, request: Request<pb::GetOrderRequest>) -> Reply<pb::GetOrderResponse> {
        let who = caller(&request)?;
        let id = c::id("order_id", &request.get_ref().order_id)?;
        let order = self.sales.order(&who, id).await?;
        Ok(Response::new(pb::GetOrderResponse { order: Some(order_pb(&order)) }))
    }

    async fn list_orders(&self, request: Request<pb::ListOrdersRequest>) -> Reply<pb::ListOrdersResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let page = Page { size: c::page_size(r.page_size)?, after: c::page_token(&r.page_token)? };
        let states = r
            .states
            .iter()
            .map(|s| c::order_state("states", *s).map(|s| s.as_str().to_owned()))
            .collect::<Result<Vec<_>, _>>()?;
        let (brands, client) = match &who.principal.portal {
            // A portal client sees its own orders, whatever it asks for.
            Some(portal) => (Some(vec![portal.brand_id]), Some(portal.client_id)),
            None => {
                let brand = c::optional_id("brand_id", &r.brand_id)?;
                (
                    self.sales.readable_brands(&who, sentra_auth::permissions::ORDER_READ, brand).await?,
                    c::optional_id("client_id", &r.client_id)?,
                )
            }
        };
        let (rows, next) = queries::list_orders(
            self.sales.store().pool(),
            who.principal.organization_id,
            &brands,
            client,
            &states,
            &page,
        )
        .await?;
        Ok(Response::new(pb::ListOrdersResponse {
            orders: rows.into_iter().map(order_row_pb).collect::<Result<_, _>>()?,
            next_page_token: next_token(next),
        }))
    }

    async fn update_order_lines(
        &self,
        request: Request<pb::UpdateOrderLinesRequest>,
    ) -> Reply<pb::UpdateOrderLinesResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        // Lines are validated against the order's currency, read in the same load as the change.
        let order = self
            .order_command(&who, &r.order_id, &r.etag, |current| {
                let (_, lines, totals) = c::order_lines(&current.currency, &r.lines)?;
                Ok(OrderCommand::UpdateLines { lines, totals })
            })
            .await?;
        Ok(Response::new(pb::UpdateOrderLinesResponse { order: Some(order) }))
    }

    async fn confirm_order(&self, request: Request<pb::ConfirmOrderRequest>) -> Reply<pb::ConfirmOrderResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let order = self.order_command(&who, &r.order_id, &r.etag, |_| Ok(OrderCommand::Confirm)).await?;
        Ok(Response::new(pb::ConfirmOrderResponse { order: Some(order) }))
    }

    async fn fulfill_order(&self, request: Request<pb::FulfillOrderRequest>) -> Reply<pb::FulfillOrderResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let order = self.order_command(&who, &r.order_id, &r.etag, |_| Ok(OrderCommand::Fulfill)).await?;
        Ok(Response::new(pb::FulfillOrderResponse { order: Some(order) }))
    }

    async fn cancel_order(&self, request: Request<pb::CancelOrderRequest>) -> Reply<pb::CancelOrderResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let reason = c::required("reason", &r.reason, 500)?;
        let order = self.order_command(&who, &r.order_id, &r.etag, |_| Ok(OrderCommand::Cancel { reason })).await?;
        Ok(Response::new(pb::CancelOrderResponse { order: Some(order) }))
    }

    async fn get_pipeline_summary(
        &self,
        request: Request<pb::GetPipelineSummaryRequest>,
    ) -> Reply<pb::GetPipelineSummaryResponse> {
        let who = caller(&request)?;
        let r = request.into_inner();
        let brand = c::optional_id("brand_id", &r.brand_id)?;
        let period_start = c::timestamp("period_start", r.period_start.as_ref())?;
        let as_of = sentra_runtime::wire::micros(c::timestamp("as_of", r.as_of.as_ref())?.unwrap_or_else(Utc::now));
        let s = self.sales.pipeline_summary(&who, brand, period_start, as_of).await?;
        let decided = s.won + s.lost;
        let outcome = |map: BTreeMap<String, (i64, i64)>| {
            map.into_iter().map(|(key, (won, lost))| pb::OutcomeCount { key, won, lost }).collect::<Vec<_>>()
        };
        Ok(Response::new(pb::GetPipelineSummaryResponse {
            stages: s
                .stages
                .into_iter()
                .map(|(stage, count, value, days)| pb::StageSummary {
                    stage: stage_pb(stage).into(),
                    count,
                    value: value
                        .into_iter()
                        .map(|(currency_code, amount_minor)| Money { currency_code, amount_minor })
                        .collect(),
                    average_days: days,
                })
                .collect(),
            created: s.created,
            won: s.won,
            lost: s.lost,
            conversion_rate: if decided == 0 { 0.0 } else { s.won as f64 / decided as f64 },
            lost_by_reason: s
                .lost_by_reason
                .into_iter()
                .map(|(key, lost)| pb::OutcomeCount { key, won: 0, lost })
                .collect(),
            by_agent: outcome(s.by_agent),
            as_of: wire::timestamp_opt(Some(s.as_of)),
        }))
    }
}
