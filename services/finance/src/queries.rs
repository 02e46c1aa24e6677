//! Reads: invoice lists and client balances from the read table; receivables from the events.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use sentra_event_store::EventStore;
use sqlx::PgPool;
use uuid::Uuid;

use crate::domain::invoice::{Invoice, InvoiceEvent, Status};
use crate::error::FinanceError;

type Result<T> = std::result::Result<T, FinanceError>;

/// Filters of `ListInvoices`.
#[derive(Debug, Default)]
pub struct InvoiceFilter {
    /// Readable brands (None: all of the organization).
    pub brands: Option<Vec<Uuid>>,
    /// Client.
    pub client: Option<Uuid>,
    /// Order.
    pub order: Option<Uuid>,
    /// Statuses.
    pub statuses: Vec<String>,
    /// Issue date range.
    pub issued: (Option<NaiveDate>, Option<NaiveDate>),
    /// Due date range.
    pub due: (Option<NaiveDate>, Option<NaiveDate>),
}

/// One listed invoice: its folded state, id and version.
pub struct Row {
    /// Id.
    pub id: Uuid,
    /// Version.
    pub version: i64,
    /// Created (keyset).
    pub created_at: DateTime<Utc>,
    /// State.
    pub state: Invoice,
}

/// Invoices of `tenant`, newest first, after `after`.
pub async fn list_invoices(
    pool: &PgPool,
    tenant: Uuid,
    f: &InvoiceFilter,
    size: i64,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> Result<(Vec<Row>, Option<(DateTime<Utc>, Uuid)>)> {
    let (after_at, after_id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()));
    let rows: Vec<(Uuid, i64, DateTime<Utc>, serde_json::Value)> = sqlx::query_as(
        "SELECT id, version, created_at, state FROM invoices
         WHERE tenant_id = $1
           AND ($2::uuid[] IS NULL OR brand_id = ANY($2))
           AND ($3::uuid IS NULL OR client_id = $3)
           AND ($4::uuid IS NULL OR order_id = $4)
           AND (cardinality($5::text[]) = 0 OR status = ANY($5))
           AND ($6::date IS NULL OR issue_date >= $6) AND ($7::date IS NULL OR issue_date <= $7)
           AND ($8::date IS NULL OR due_date >= $8) AND ($9::date IS NULL OR due_date <= $9)
           AND ($10::bool IS FALSE OR (created_at, id) < ($11, $12))
         ORDER BY created_at DESC, id DESC LIMIT $13",
    )
    .bind(tenant)
    .bind(&f.brands)
    .bind(f.client)
    .bind(f.order)
    .bind(&f.statuses)
    .bind(f.issued.0)
    .bind(f.issued.1)
    .bind(f.due.0)
    .bind(f.due.1)
    .bind(after.is_some())
    .bind(after_at)
    .bind(after_id)
    .bind(size + 1)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, version, created_at, state) in rows {
        let state: Invoice = serde_json::from_value(state).map_err(FinanceError::internal)?;
        out.push(Row { id, version, created_at, state });
    }
    let limit = usize::try_from(size).unwrap_or(usize::MAX);
    if out.len() > limit {
        out.truncate(limit);
        let next = out.last().map(|r| (r.created_at, r.id));
        Ok((out, next))
    } else {
        Ok((out, None))
    }
}

/// What a client owes in one currency: (invoiced, paid, credited, outstanding, credit).
pub type Balance = (i64, i64, i64, i64, i64);

/// A client's balances per currency, over its issued, non-void invoices.
pub async fn client_balance(
    pool: &PgPool,
    tenant: Uuid,
    brand: Uuid,
    client: Uuid,
) -> Result<BTreeMap<String, Balance>> {
    let rows: Vec<(String, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT currency, sum(total)::bigint, sum(paid)::bigint, sum(credited)::bigint, sum(balance)::bigint, sum(overpaid)::bigint
         FROM invoices WHERE tenant_id = $1 AND brand_id = $2 AND client_id = $3 AND status NOT IN ('draft', 'void')
         GROUP BY currency ORDER BY currency",
    )
    .bind(tenant)
    .bind(brand)
    .bind(client)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(c, i, p, cr, o, ov)| (c, (i, p, cr, o, ov))).collect())
}

/// Open amounts per (brand, currency) in the aging buckets current, 1-30, 31-60, 61-90, 90+,
/// plus the number of open invoices.
pub type Aging = BTreeMap<(Uuid, String), ([i64; 5], i64)>;

/// Receivables of `tenant` as they stood at `as_of`, from the `invoice_timeline` projection: the
/// open balances valid at `as_of`, aged by the days between each due date and `as_of`'s date
/// (UTC), summed per brand, currency and bucket in one query. Equals [`receivables_fold`] over the
/// same events (a property test holds them to it); the caller makes sure the projection has
/// caught up with `as_of`.
pub async fn receivables(
    pool: &PgPool,
    tenant: Uuid,
    brands: &Option<Vec<Uuid>>,
    as_of: DateTime<Utc>,
) -> Result<Aging> {
    let rows: Vec<(Uuid, String, i32, i64, i64)> = sqlx::query_as(
        "SELECT brand_id, currency, bucket, sum(balance)::bigint, count(*) FROM (
             SELECT brand_id, currency, balance,
                    CASE WHEN due_date IS NULL OR ($3 AT TIME ZONE 'UTC')::date - due_date <= 0 THEN 0
                         WHEN ($3 AT TIME ZONE 'UTC')::date - due_date <= 30 THEN 1
                         WHEN ($3 AT TIME ZONE 'UTC')::date - due_date <= 60 THEN 2
                         WHEN ($3 AT TIME ZONE 'UTC')::date - due_date <= 90 THEN 3
                         ELSE 4 END AS bucket
             FROM invoice_timeline
             WHERE tenant_id = $1 AND status IN ('issued', 'partially_paid', 'overdue') AND balance <> 0
               AND ($2::uuid[] IS NULL OR brand_id = ANY($2))
               AND sys_from <= $3 AND (sys_to IS NULL OR sys_to > $3)
         ) open GROUP BY brand_id, currency, bucket",
    )
    .bind(tenant)
    .bind(brands)
    .bind(as_of)
    .fetch_all(pool)
    .await?;
    let mut aging = Aging::new();
    for (brand, currency, bucket, balance, count) in rows {
        let entry = aging.entry((brand, currency)).or_default();
        let slot = usize::try_from(bucket).ok().and_then(|b| entry.0.get_mut(b));
        let slot = slot.ok_or_else(|| FinanceError::corrupt(format!("aging bucket {bucket}")))?;
        *slot += balance;
        entry.1 += count;
    }
    Ok(aging)
}

/// Receivables of `tenant` as they stood at `as_of`: every invoice event recorded up to then,
/// folded, and each open balance aged by the days between its due date and `as_of`'s date.
pub async fn receivables_fold(
    store: &EventStore,
    tenant: Uuid,
    brands: &Option<Vec<Uuid>>,
    as_of: DateTime<Utc>,
) -> Result<Aging> {
    let mut invoices: HashMap<String, Invoice> = HashMap::new();
    for recorded in store.read_type_as_of(tenant, "invoice", as_of).await? {
        let event: InvoiceEvent = recorded.decode().map_err(FinanceError::internal)?;
        cqrs_es::Aggregate::apply(invoices.entry(recorded.aggregate_id).or_default(), event);
    }
    let today = as_of.date_naive();
    let mut aging = Aging::new();
    for invoice in invoices.values() {
        let open = matches!(invoice.status, Status::Issued | Status::PartiallyPaid | Status::Overdue);
        if !open || invoice.balance() == 0 || brands.as_ref().is_some_and(|b| !b.contains(&invoice.brand_id)) {
            continue;
        }
        let late = invoice.due_date.map_or(0, |due| (today - due).num_days());
        let bucket = match late {
            ..=0 => 0,
            1..=30 => 1,
            31..=60 => 2,
            61..=90 => 3,
            _ => 4,
        };
        let entry = aging.entry((invoice.brand_id, invoice.currency.clone())).or_default();
        entry.0[bucket] += invoice.balance();
        entry.1 += 1;
    }
    Ok(aging)
}

/// Invoices past due with a balance, for the overdue job: (tenant, id).
pub async fn due_for_overdue(pool: &PgPool, today: NaiveDate) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id FROM invoices WHERE status IN ('issued', 'partially_paid') AND due_date < $1 AND balance > 0 LIMIT 500",
    )
    .bind(today)
    .fetch_all(pool)
    .await?)
}
