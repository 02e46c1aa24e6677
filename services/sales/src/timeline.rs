//! `lead_timeline`: the valid-time history of every lead, so the pipeline summary "now" and "as
//! of t" are index range scans aggregated in SQL, not folds of every event of the tenant.
//!
//! Rows by `kind`:
//! - `state`: one lead between two changes of its stage or value. `sys_from`/`sys_to` are
//!   *recorded* times (the axis "as of" cuts on), `entered_at`/`left_at` *event* times (what
//!   durations are measured in). A row closed by a stage change has `left_at` (a completed stay);
//!   a row closed by a value change has none (the stay goes on in the next row, same
//!   `entered_at`). The current row has `sys_to IS NULL` and carries the current assignee.
//! - `created`, `won`, `lost`: one row per outcome, with the brand, the agent then assigned and the
//!   reason, at recorded time `sys_from`.
//!
//! `sys_from` is the running maximum of the stream's recorded times, so the rows valid at `t` are
//! exactly what [`sentra_event_store::EventStore::read_type_as_of`] returns for `t` (each stream
//! cut before its first event recorded after `t`): the two agree by construction and a property
//! test holds them to it.
//!
//! A batch is applied set-based: the current rows of the leads it touches are read in one query,
//! the events are played over them in memory, and the result is written with one UPDATE of the
//! current rows that changed and one INSERT of every new row, whatever the batch size.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sentra_event_store::{EventStoreError, Projection, RecordedEvent, Result};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::lead::{LeadEvent, Stage};

/// The `lead_timeline` table.
pub struct LeadTimelineProjection;

fn id_of(event: &RecordedEvent) -> Result<Uuid> {
    Uuid::parse_str(&event.aggregate_id).map_err(|e| EventStoreError::Projection(Box::new(e)))
}

#[sentra_event_store::async_trait]
impl Projection for LeadTimelineProjection {
    fn name(&self) -> &str {
        "sales.lead_timeline"
    }

    fn table(&self) -> &str {
        "lead_timeline"
    }

    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()> {
        self.apply_batch(conn, table, std::slice::from_ref(event)).await
    }

    async fn apply_batch(&self, conn: &mut PgConnection, table: &str, events: &[RecordedEvent]) -> Result<()> {
        let mut decoded = Vec::new();
        for event in events.iter().filter(|e| e.aggregate_type == "lead") {
            decoded.push((id_of(event)?, event, event.decode::<LeadEvent>()?));
        }
        if decoded.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<Uuid> = decoded.iter().map(|(id, _, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut play = Play { current: load_current(conn, table, &ids).await?, ..Play::default() };
        for (id, event, lead_event) in decoded {
            play.apply(id, event, lead_event);
        }
        play.write(conn, table).await
    }
}

/// A row of the table, as played in memory.
#[derive(Clone, Debug)]
struct Row {
    kind: &'static str,
    tenant: Uuid,
    lead: Uuid,
    brand: Uuid,
    stage: String,
    entered_at: Option<DateTime<Utc>>,
    left_at: Option<DateTime<Utc>>,
    currency: String,
    value: i64,
    assignee: Option<Uuid>,
    reason: String,
    at: Option<DateTime<Utc>>,
    sys_from: DateTime<Utc>,
    sys_to: Option<DateTime<Utc>>,
    stream_sys: Option<DateTime<Utc>>,
}

/// A lead's current state row: `stored` when it is the table's (then `touched` says it must be
/// written back), otherwise created by this batch.
#[derive(Debug)]
struct Current {
    row: Row,
    stored: bool,
    touched: bool,
}

/// The batch being played: current rows by lead, rows to insert, and the leads whose stored
/// current row is replaced (closed, or changed in place) by one of them.
#[derive(Default)]
struct Play {
    current: HashMap<Uuid, Current>,
    inserts: Vec<Row>,
    replaced: Vec<Uuid>,
}

impl Play {
    fn apply(&mut self, id: Uuid, event: &RecordedEvent, lead_event: LeadEvent) {
        let recorded = event.recorded_at;
        match lead_event {
            LeadEvent::Created { brand_id, estimated_value, assignee_id, at, .. } => {
                let state = Row {
                    kind: "state",
                    tenant: event.tenant_id,
                    lead: id,
                    brand: brand_id,
                    stage: Stage::New.as_str().into(),
                    entered_at: Some(at),
                    left_at: None,
                    currency: estimated_value.currency,
                    value: estimated_value.amount_minor,
                    assignee: assignee_id,
                    reason: String::new(),
                    at: None,
                    sys_from: recorded,
                    sys_to: None,
                    stream_sys: Some(recorded),
                };
                let created = Row {
                    kind: "created",
                    stage: String::new(),
                    entered_at: None,
                    currency: String::new(),
                    value: 0,
                    at: Some(at),
                    stream_sys: None,
                    ..state.clone()
                };
                self.inserts.push(created);
                self.current.insert(id, Current { row: state, stored: false, touched: false });
            }
            LeadEvent::Updated { estimated_value, .. } => {
                self.next(id, recorded, None, None, Some((estimated_value.currency, estimated_value.amount_minor)));
            }
            LeadEvent::Assigned { to, .. } => self.seen(id, recorded, Some(to)),
            LeadEvent::NoteAdded { .. } => self.seen(id, recorded, None),
            LeadEvent::StageChanged { to, at, .. } | LeadEvent::Reopened { to, at } => {
                self.next(id, recorded, Some(to), Some(at), None);
            }
            LeadEvent::Lost { reason, at, .. } => {
                self.outcome(id, recorded, "lost", reason, at);
                self.next(id, recorded, Some(Stage::Lost), Some(at), None);
            }
            LeadEvent::Converted { at, .. } => {
                self.outcome(id, recorded, "won", String::new(), at);
                self.next(id, recorded, Some(Stage::Won), Some(at), None);
            }
        }
    }

    /// The stream's recorded time so far, moved to `recorded` if later.
    fn advance(current: &mut Current, recorded: DateTime<Utc>) -> DateTime<Utc> {
        let sys = current.row.stream_sys.map_or(recorded, |since| since.max(recorded));
        current.row.stream_sys = Some(sys);
        sys
    }

    /// An event that changes neither stage nor value: it still moves the stream's recorded time
    /// (what later rows start from), and an assignment names the agent of later outcomes.
    fn seen(&mut self, id: Uuid, recorded: DateTime<Utc>, assignee: Option<Uuid>) {
        let Some(current) = self.current.get_mut(&id) else { return };
        Self::advance(current, recorded);
        if assignee.is_some() {
            current.row.assignee = assignee;
        }
        current.touched = true;
    }

    /// Closes the lead's current row and opens the next: a new stay (`stage`, entered `at`; the
    /// closed row gets `left_at`), or the same stay with a new value.
    fn next(
        &mut self,
        id: Uuid,
        recorded: DateTime<Utc>,
        stage: Option<Stage>,
        at: Option<DateTime<Utc>>,
        value: Option<(String, i64)>,
    ) {
        let Some(mut current) = self.current.remove(&id) else { return };
        let sys = Self::advance(&mut current, recorded);
        let left_at = stage.and(at);
        let mut next = current.row.clone();
        if current.stored {
            self.replaced.push(id);
        }
        let mut closed = current.row;
        closed.sys_to = Some(sys);
        closed.left_at = left_at;
        self.inserts.push(closed);
        if let Some(stage) = stage {
            next.stage = stage.as_str().into();
            next.entered_at = at;
        }
        if let Some((currency, amount)) = value {
            next.currency = currency;
            next.value = amount;
        }
        next.sys_from = sys;
        next.stream_sys = Some(sys);
        self.current.insert(id, Current { row: next, stored: false, touched: false });
    }

    /// A won or lost outcome with the lead's brand and current agent.
    fn outcome(&mut self, id: Uuid, recorded: DateTime<Utc>, kind: &'static str, reason: String, at: DateTime<Utc>) {
        let Some(current) = self.current.get(&id) else { return };
        let sys = current.row.stream_sys.map_or(recorded, |since| since.max(recorded));
        self.inserts.push(Row {
            kind,
            stage: String::new(),
            entered_at: None,
            left_at: None,
            currency: String::new(),
            value: 0,
            reason,
            at: Some(at),
            sys_from: sys,
            sys_to: None,
            stream_sys: None,
            ..current.row.clone()
        });
    }

    /// Deletes the stored current rows that changed and inserts every row the batch made (their
    /// new versions included): two statements, both by index (`lead_id = ANY`, a plain insert),
    /// whatever the batch size. A join of the table with the batch's values was tried first and
    /// planned as a scan of the whole table per batch.
    async fn write(self, conn: &mut PgConnection, table: &str) -> Result<()> {
        let Self { current, mut inserts, mut replaced } = self;
        for current in current.into_values() {
            if current.stored && !current.touched {
                continue;
            }
            if current.stored {
                replaced.push(current.row.lead);
            }
            inserts.push(current.row);
        }
        if !replaced.is_empty() {
            sqlx::query(&format!("DELETE FROM {table} WHERE kind = 'state' AND sys_to IS NULL AND lead_id = ANY($1)"))
                .bind(replaced)
                .execute(&mut *conn)
                .await?;
        }
        if inserts.is_empty() {
            return Ok(());
        }
        let mut c = Columns::default();
        for row in inserts {
            c.push(row);
        }
        sqlx::query(&format!(
            "INSERT INTO {table} (kind, tenant_id, lead_id, brand_id, stage, entered_at, left_at, value_currency,
                                  value_minor, assignee_id, reason, at, sys_from, sys_to, stream_sys)
             SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::timestamptz[],
                                  $7::timestamptz[], $8::text[], $9::bigint[], $10::uuid[], $11::text[],
                                  $12::timestamptz[], $13::timestamptz[], $14::timestamptz[], $15::timestamptz[])"
        ))
        .bind(c.kind)
        .bind(c.tenant)
        .bind(c.lead)
        .bind(c.brand)
        .bind(c.stage)
        .bind(c.entered_at)
        .bind(c.left_at)
        .bind(c.currency)
        .bind(c.value)
        .bind(c.assignee)
        .bind(c.reason)
        .bind(c.at)
        .bind(c.sys_from)
        .bind(c.sys_to)
        .bind(c.stream_sys)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Rows as columns, for one UNNEST insert.
#[derive(Default)]
struct Columns {
    kind: Vec<&'static str>,
    tenant: Vec<Uuid>,
    lead: Vec<Uuid>,
    brand: Vec<Uuid>,
    stage: Vec<String>,
    entered_at: Vec<Option<DateTime<Utc>>>,
    left_at: Vec<Option<DateTime<Utc>>>,
    currency: Vec<String>,
    value: Vec<i64>,
    assignee: Vec<Option<Uuid>>,
    reason: Vec<String>,
    at: Vec<Option<DateTime<Utc>>>,
    sys_from: Vec<DateTime<Utc>>,
    sys_to: Vec<Option<DateTime<Utc>>>,
    stream_sys: Vec<Option<DateTime<Utc>>>,
}

impl Columns {
    fn push(&mut self, row: Row) {
        self.kind.push(row.kind);
        self.tenant.push(row.tenant);
        self.lead.push(row.lead);
        self.brand.push(row.brand);
        self.stage.push(row.stage);
        self.entered_at.push(row.entered_at);
        self.left_at.push(row.left_at);
        self.currency.push(row.currency);
        self.value.push(row.value);
        self.assignee.push(row.assignee);
        self.reason.push(row.reason);
        self.at.push(row.at);
        self.sys_from.push(row.sys_from);
        self.sys_to.push(row.sys_to);
        self.stream_sys.push(row.stream_sys);
    }
}

/// The current state rows of `leads`.
async fn load_current(conn: &mut PgConnection, table: &str, leads: &[Uuid]) -> Result<HashMap<Uuid, Current>> {
    type Stored = (
        Uuid,
        Uuid,
        Uuid,
        String,
        Option<DateTime<Utc>>,
        String,
        i64,
        Option<Uuid>,
        DateTime<Utc>,
        Option<DateTime<Utc>>,
    );
    let rows: Vec<Stored> = sqlx::query_as(&format!(
        "SELECT lead_id, tenant_id, brand_id, stage, entered_at, value_currency, value_minor, assignee_id, sys_from,
                stream_sys
         FROM {table} WHERE kind = 'state' AND sys_to IS NULL AND lead_id = ANY($1)"
    ))
    .bind(leads)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(lead, tenant, brand, stage, entered_at, currency, value, assignee, sys_from, stream_sys)| {
            let row = Row {
                kind: "state",
                tenant,
                lead,
                brand,
                stage,
                entered_at,
                left_at: None,
                currency,
                value,
                assignee,
                reason: String::new(),
                at: None,
                sys_from,
                sys_to: None,
                stream_sys,
            };
            (lead, Current { row, stored: true, touched: false })
        })
        .collect())
}
