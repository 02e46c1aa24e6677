//! Reads: lists over the projected tables, the lead timeline, and the pipeline summary.
//!
//! Lists are filtered to the caller's organization and readable brands in SQL, newest first,
//! paged by a `(created_at, id)` keyset. The pipeline summary is computed from the lead events
//! themselves (not a read table), so the same code answers "now" and "as of" any past time.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sentra_event_store::EventStore;
use serde_json::Value as Json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::lead::{LeadEvent, Stage};
use crate::error::SalesError;

type Result<T> = std::result::Result<T, SalesError>;

/// A `leads` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LeadRow {
    /// Id.
    pub id: Uuid,
    /// Brand.
    pub brand_id: Uuid,
    /// Contact.
    pub contact_name: String,
    /// Email.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// Company.
    pub company: String,
    /// Source.
    pub source: String,
    /// Value currency.
    pub value_currency: String,
    /// Value.
    pub value_minor: i64,
    /// Notes.
    pub notes: String,
    /// Stage.
    pub stage: String,
    /// Assignee.
    pub assignee_id: Option<Uuid>,
    /// Lost reason.
    pub lost_reason: String,
    /// Client.
    pub client_id: Option<Uuid>,
    /// Version.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
}

/// Filters of `ListLeads`.
#[derive(Debug, Default)]
pub struct LeadFilter {
    /// Brands the caller may read (None: all of the organization).
    pub brands: Option<Vec<Uuid>>,
    /// Stages.
    pub stages: Vec<String>,
    /// Assignee.
    pub assignee: Option<Uuid>,
    /// Source.
    pub source: Option<String>,
    /// Created at or after.
    pub created_after: Option<DateTime<Utc>>,
    /// Created before.
    pub created_before: Option<DateTime<Utc>>,
    /// Free text.
    pub query: Option<String>,
}

/// Keyset page.
pub struct Page {
    /// Items.
    pub size: i64,
    /// After this (created_at, id).
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

fn like(query: &Option<String>) -> Option<String> {
    query
        .as_ref()
        .map(|q| format!("%{}%", q.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")))
}

fn split<T>(
    mut rows: Vec<T>,
    size: i64,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> (Vec<T>, Option<(DateTime<Utc>, Uuid)>) {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    if rows.len() > size {
        rows.truncate(size);
        let next = rows.last().map(key);
        (rows, next)
    } else {
        (rows, None)
    }
}

/// Leads of `tenant` matching `filter`.
pub async fn list_leads(
    pool: &PgPool,
    tenant: Uuid,
    filter: &LeadFilter,
    page: &Page,
) -> Result<(Vec<LeadRow>, Option<(DateTime<Utc>, Uuid)>)> {
    let (after_at, after_id) = page.after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()));
    let rows: Vec<LeadRow> = sqlx::query_as(
        "SELECT id, brand_id, contact_name, email, phone, company, source, value_currency, value_minor, notes, stage,
                assignee_id, lost_reason, client_id, version, created_at, updated_at
         FROM leads
         WHERE tenant_id = $1
           AND ($2::uuid[] IS NULL OR brand_id = ANY($2))
           AND (cardinality($3::text[]) = 0 OR stage = ANY($3))
           AND ($4::uuid IS NULL OR assignee_id = $4)
           AND ($5::text IS NULL OR source = $5)
           AND ($6::timestamptz IS NULL OR created_at >= $6)
           AND ($7::timestamptz IS NULL OR created_at < $7)
           AND ($8::text IS NULL OR lower(contact_name) LIKE $8 OR lower(email) LIKE $8 OR lower(company) LIKE $8)
           AND ($9::bool IS FALSE OR (created_at, id) < ($10, $11))
         ORDER BY created_at DESC, id DESC LIMIT $12",
    )
    .bind(tenant)
    .bind(&filter.brands)
    .bind(&filter.stages)
    .bind(filter.assignee)
    .bind(&filter.source)
    .bind(filter.created_after)
    .bind(filter.created_before)
    .bind(like(&filter.query))
    .bind(page.after.is_some())
    .bind(after_at)
    .bind(after_id)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(split(rows, page.size, |r| (r.created_at, r.id)))
}

/// A `clients` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    /// Id.
    pub id: Uuid,
    /// Brand.
    pub brand_id: Uuid,
    /// Contact.
    pub contact_name: String,
    /// Email.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// Company.
    pub company: String,
    /// Leads.
    pub lead_ids: Vec<Uuid>,
    /// Archived.
    pub archived: bool,
    /// Version.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
}

/// Clients of `tenant`.
pub async fn list_clients(
    pool: &PgPool,
    tenant: Uuid,
    brands: &Option<Vec<Uuid>>,
    query: &Option<String>,
    show_archived: bool,
    page: &Page,
) -> Result<(Vec<ClientRow>, Option<(DateTime<Utc>, Uuid)>)> {
    let (after_at, after_id) = page.after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()));
    let rows: Vec<ClientRow> = sqlx::query_as(
        "SELECT id, brand_id, contact_name, email, phone, company, lead_ids, archived, version, created_at, updated_at
         FROM clients
         WHERE tenant_id = $1
           AND ($2::uuid[] IS NULL OR brand_id = ANY($2))
           AND ($3::text IS NULL OR lower(contact_name) LIKE $3 OR lower(email) LIKE $3 OR lower(company) LIKE $3)
           AND ($4 OR NOT archived)
           AND ($5::bool IS FALSE OR (created_at, id) < ($6, $7))
         ORDER BY created_at DESC, id DESC LIMIT $8",
    )
    .bind(tenant)
    .bind(brands)
    .bind(like(query))
    .bind(show_archived)
    .bind(page.after.is_some())
    .bind(after_at)
    .bind(after_id)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(split(rows, page.size, |r| (r.created_at, r.id)))
}

/// An `orders` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    /// Id.
    pub id: Uuid,
    /// Brand.
    pub brand_id: Uuid,
    /// Client.
    pub client_id: Uuid,
    /// Currency.
    pub currency: String,
    /// Lines (JSON of domain lines).
    pub lines: Json,
    /// Subtotal.
    pub subtotal: i64,
    /// Discounts.
    pub discount_total: i64,
    /// Taxes.
    pub tax_total: i64,
    /// Total.
    pub total: i64,
    /// State.
    pub state: String,
    /// Cancel reason.
    pub cancel_reason: String,
    /// Version.
    pub version: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
}

/// Orders of `tenant`, optionally one client's.
pub async fn list_orders(
    pool: &PgPool,
    tenant: Uuid,
    brands: &Option<Vec<Uuid>>,
    client: Option<Uuid>,
    states: &[String],
    page: &Page,
) -> Result<(Vec<OrderRow>, Option<(DateTime<Utc>, Uuid)>)> {
    let (after_at, after_id) = page.after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()));
    let rows: Vec<OrderRow> = sqlx::query_as(
        "SELECT id, brand_id, client_id, currency, lines, subtotal, discount_total, tax_total, total, state, cancel_reason,
                version, created_at, updated_at
         FROM orders
         WHERE tenant_id = $1
           AND ($2::uuid[] IS NULL OR brand_id = ANY($2))
           AND ($3::uuid IS NULL OR client_id = $3)
           AND (cardinality($4::text[]) = 0 OR state = ANY($4))
           AND ($5::bool IS FALSE OR (created_at, id) < ($6, $7))
         ORDER BY created_at DESC, id DESC LIMIT $8",
    )
    .bind(tenant)
    .bind(brands)
    .bind(client)
    .bind(states)
    .bind(page.after.is_some())
    .bind(after_at)
    .bind(after_id)
    .bind(page.size + 1)
    .fetch_all(pool)
    .await?;
    Ok(split(rows, page.size, |r| (r.created_at, r.id)))
}

/// The pipeline at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Per stage: count, value per currency, average days in stage.
    pub stages: Vec<(Stage, i64, BTreeMap<String, i64>, f64)>,
    /// Created in the period.
    pub created: i64,
    /// Won in the period.
    pub won: i64,
    /// Lost in the period.
    pub lost: i64,
    /// Lost per reason.
    pub lost_by_reason: BTreeMap<String, i64>,
    /// (won, lost) per agent id.
    pub by_agent: BTreeMap<String, (i64, i64)>,
    /// The moment described.
    pub as_of: DateTime<Utc>,
}

#[derive(Default)]
struct LeadFold {
    brand: Uuid,
    stage: Stage,
    entered: Option<DateTime<Utc>>,
    value: (String, i64),
    assignee: Option<Uuid>,
    /// Completed stays: (stage, seconds).
    stays: Vec<(Stage, f64)>,
}

/// Per stage: leads, value per currency, seconds and number of stays.
type StageTotals = BTreeMap<Stage, (i64, BTreeMap<String, i64>, f64, i64)>;

/// Every stage in pipeline order with its count, value and average days per stay.
fn stage_rows(mut per_stage: StageTotals) -> Vec<(Stage, i64, BTreeMap<String, i64>, f64)> {
    Stage::ALL
        .into_iter()
        .map(|stage| {
            let (count, value, secs, stays) = per_stage.remove(&stage).unwrap_or_default();
            let days = if stays == 0 { 0.0 } else { secs / stays as f64 / 86_400.0 };
            (stage, count, value, days)
        })
        .collect()
}

/// Summarizes the pipeline of `tenant` (brands `brands`, None: all) as it stood at `as_of`,
/// counting creations, wins and losses from `period_start`, from the `lead_timeline` projection:
/// three aggregate queries over the rows valid at `as_of`, whatever the length of the history.
/// The result equals [`pipeline_summary_fold`] over the same events (a property test holds them
/// to it); the caller makes sure the projection has caught up with `as_of`.
pub async fn pipeline_summary(
    pool: &PgPool,
    tenant: Uuid,
    brands: &Option<Vec<Uuid>>,
    period_start: Option<DateTime<Utc>>,
    as_of: DateTime<Utc>,
) -> Result<Summary> {
    // Per stage and currency: the leads' state at `as_of`.
    let states: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT stage, value_currency, count(*), sum(value_minor)::bigint FROM lead_timeline
         WHERE tenant_id = $1 AND kind = 'state' AND ($2::uuid[] IS NULL OR brand_id = ANY($2))
           AND sys_from <= $3 AND (sys_to IS NULL OR sys_to > $3)
         GROUP BY stage, value_currency",
    )
    .bind(tenant)
    .bind(brands)
    .bind(as_of)
    .fetch_all(pool)
    .await?;
    // Per stage: seconds and number of stays, completed ones (closed by a stage change recorded by
    // `as_of`) and the open ones still running at `as_of`. Milliseconds, truncated, like the fold.
    let stays: Vec<(String, f64, i64)> = sqlx::query_as(
        "SELECT stage,
                sum(trunc(extract(epoch FROM (CASE WHEN sys_to <= $3 THEN left_at ELSE $3 END) - entered_at) * 1000)
                    / 1000)::float8,
                count(*)
         FROM lead_timeline
         WHERE tenant_id = $1 AND kind = 'state' AND ($2::uuid[] IS NULL OR brand_id = ANY($2))
           AND ((left_at IS NOT NULL AND sys_to <= $3)
             OR (sys_from <= $3 AND (sys_to IS NULL OR sys_to > $3) AND stage NOT IN ('won', 'lost')))
         GROUP BY stage",
    )
    .bind(tenant)
    .bind(brands)
    .bind(as_of)
    .fetch_all(pool)
    .await?;
    // Creations, wins and losses recorded by `as_of` that happened in the period.
    let outcomes: Vec<(String, String, Option<Uuid>, i64)> = sqlx::query_as(
        "SELECT kind, reason, assignee_id, count(*) FROM lead_timeline
         WHERE tenant_id = $1 AND kind IN ('created', 'won', 'lost') AND ($2::uuid[] IS NULL OR brand_id = ANY($2))
           AND sys_from <= $3 AND ($4::timestamptz IS NULL OR at >= $4)
         GROUP BY kind, reason, assignee_id",
    )
    .bind(tenant)
    .bind(brands)
    .bind(as_of)
    .bind(period_start)
    .fetch_all(pool)
    .await?;

    let mut summary = Summary { as_of, ..Summary::default() };
    let mut per_stage = StageTotals::new();
    let stage = |name: &str| Stage::parse(name).ok_or_else(|| SalesError::corrupt(format!("unknown stage {name:?}")));
    for (name, currency, count, value) in states {
        let entry = per_stage.entry(stage(&name)?).or_default();
        entry.0 += count;
        if !currency.is_empty() {
            *entry.1.entry(currency).or_default() += value.unwrap_or(0);
        }
    }
    for (name, secs, count) in stays {
        let entry = per_stage.entry(stage(&name)?).or_default();
        entry.2 += secs;
        entry.3 += count;
    }
    for (kind, reason, agent, count) in outcomes {
        let agent = agent.map(|a| a.to_string()).unwrap_or_default();
        match kind.as_str() {
            "created" => summary.created += count,
            "won" => {
                summary.won += count;
                summary.by_agent.entry(agent).or_default().0 += count;
            }
            _ => {
                summary.lost += count;
                *summary.lost_by_reason.entry(reason).or_default() += count;
                summary.by_agent.entry(agent).or_default().1 += count;
            }
        }
    }
    summary.stages = stage_rows(per_stage);
    Ok(summary)
}

/// The pipeline summary folded from the lead events themselves: the reference the projection is
/// checked against (property test) and measured beside (`make bench`). Costs a read of every
/// lead event of the tenant.
pub async fn pipeline_summary_fold(
    store: &EventStore,
    tenant: Uuid,
    brands: &Option<Vec<Uuid>>,
    period_start: Option<DateTime<Utc>>,
    as_of: DateTime<Utc>,
) -> Result<Summary> {
    let in_period = |at: DateTime<Utc>| period_start.is_none_or(|start| at >= start);
    let mut leads: HashMap<String, LeadFold> = HashMap::new();
    let mut summary = Summary { as_of, ..Summary::default() };
    for recorded in store.read_type_as_of(tenant, "lead", as_of).await? {
        let event: LeadEvent = recorded.decode().map_err(SalesError::internal)?;
        let lead = leads.entry(recorded.aggregate_id).or_default();
        let enter = |lead: &mut LeadFold, stage: Stage, at: DateTime<Utc>| {
            if let Some(since) = lead.entered {
                lead.stays.push((lead.stage, (at - since).num_milliseconds() as f64 / 1000.0));
            }
            lead.stage = stage;
            lead.entered = Some(at);
        };
        match event {
            LeadEvent::Created { brand_id, estimated_value, assignee_id, at, .. } => {
                lead.brand = brand_id;
                lead.value = (estimated_value.currency, estimated_value.amount_minor);
                lead.assignee = assignee_id;
                lead.entered = Some(at);
                lead.stage = Stage::New;
                if in_period(at) && brands.as_ref().is_none_or(|b| b.contains(&brand_id)) {
                    summary.created += 1;
                }
            }
            LeadEvent::Updated { estimated_value, .. } => {
                lead.value = (estimated_value.currency, estimated_value.amount_minor)
            }
            LeadEvent::Assigned { to, .. } => lead.assignee = Some(to),
            LeadEvent::StageChanged { to, at, .. } | LeadEvent::Reopened { to, at } => enter(lead, to, at),
            LeadEvent::NoteAdded { .. } => {}
            LeadEvent::Lost { reason, at, .. } => {
                enter(lead, Stage::Lost, at);
                if in_period(at) && brands.as_ref().is_none_or(|b| b.contains(&lead.brand)) {
                    summary.lost += 1;
                    *summary.lost_by_reason.entry(reason).or_default() += 1;
                    let agent = lead.assignee.map(|a| a.to_string()).unwrap_or_default();
                    summary.by_agent.entry(agent).or_default().1 += 1;
                }
            }
            LeadEvent::Converted { at, .. } => {
                enter(lead, Stage::Won, at);
                if in_period(at) && brands.as_ref().is_none_or(|b| b.contains(&lead.brand)) {
                    summary.won += 1;
                    let agent = lead.assignee.map(|a| a.to_string()).unwrap_or_default();
                    summary.by_agent.entry(agent).or_default().0 += 1;
                }
            }
        }
    }
    let mut per_stage = StageTotals::new();
    for lead in leads.values().filter(|l| brands.as_ref().is_none_or(|b| b.contains(&l.brand))) {
        let entry = per_stage.entry(lead.stage).or_default();
        entry.0 += 1;
        if !lead.value.0.is_empty() {
            *entry.1.entry(lead.value.0.clone()).or_default() += lead.value.1;
        }
        // Time per stage: every completed stay, plus the current one up to `as_of` for open stages.
        for (stage, secs) in &lead.stays {
            let e = per_stage.entry(*stage).or_default();
            e.2 += secs;
            e.3 += 1;
        }
        if lead.stage.is_open()
            && let Some(since) = lead.entered
        {
            let e = per_stage.entry(lead.stage).or_default();
            e.2 += (as_of - since).num_milliseconds() as f64 / 1000.0;
            e.3 += 1;
        }
    }
    summary.stages = stage_rows(per_stage);
    Ok(summary)
}
