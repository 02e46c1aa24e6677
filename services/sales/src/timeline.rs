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

    fn create_table_sql(&self, table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                kind text NOT NULL, tenant_id uuid NOT NULL, lead_id uuid NOT NULL, brand_id uuid NOT NULL,
                stage text NOT NULL DEFAULT '', entered_at timestamptz, left_at timestamptz,
                value_currency text NOT NULL DEFAULT '', value_minor bigint NOT NULL DEFAULT 0,
                assignee_id uuid, reason text NOT NULL DEFAULT '', at timestamptz,
                sys_from timestamptz NOT NULL, sys_to timestamptz, stream_sys timestamptz
            );
            CREATE UNIQUE INDEX ON {table} (lead_id) WHERE kind = 'state' AND sys_to IS NULL;
            CREATE INDEX ON {table} (tenant_id, kind, sys_from);
            CREATE INDEX ON {table} (tenant_id, sys_to) WHERE kind = 'state' AND left_at IS NOT NULL;"
        )
    }

    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()> {
        if event.aggregate_type != "lead" {
            return Ok(());
        }
        let id = id_of(event)?;
        let recorded = event.recorded_at;
        match event.decode::<LeadEvent>()? {
            LeadEvent::Created { brand_id, estimated_value, assignee_id, at, .. } => {
                sqlx::query(&format!(
                    "INSERT INTO {table} (kind, tenant_id, lead_id, brand_id, stage, entered_at, value_currency,
                         value_minor, assignee_id, at, sys_from, stream_sys)
                     VALUES ('state', $1, $2, $3, 'new', $4, $5, $6, $7, NULL, $8, $8),
                            ('created', $1, $2, $3, '', NULL, '', 0, $7, $4, $8, NULL)"
                ))
                .bind(event.tenant_id)
                .bind(id)
                .bind(brand_id)
                .bind(at)
                .bind(estimated_value.currency)
                .bind(estimated_value.amount_minor)
                .bind(assignee_id)
                .bind(recorded)
                .execute(&mut *conn)
                .await?;
            }
            LeadEvent::Updated { estimated_value, .. } => {
                next_state(
                    conn,
                    table,
                    id,
                    recorded,
                    None,
                    None,
                    Some((estimated_value.currency, estimated_value.amount_minor)),
                )
                .await?;
            }
            LeadEvent::Assigned { to, .. } => seen(conn, table, id, recorded, Some(to)).await?,
            LeadEvent::NoteAdded { .. } => seen(conn, table, id, recorded, None).await?,
            LeadEvent::StageChanged { to, at, .. } | LeadEvent::Reopened { to, at } => {
                next_state(conn, table, id, recorded, Some(to), Some(at), None).await?;
            }
            LeadEvent::Lost { reason, at, .. } => {
                outcome(conn, table, id, recorded, "lost", &reason, at).await?;
                next_state(conn, table, id, recorded, Some(Stage::Lost), Some(at), None).await?;
            }
            LeadEvent::Converted { at, .. } => {
                outcome(conn, table, id, recorded, "won", "", at).await?;
                next_state(conn, table, id, recorded, Some(Stage::Won), Some(at), None).await?;
            }
        }
        Ok(())
    }
}

/// Notes an event that changes neither stage nor value: it still moves the stream's recorded
/// time (what later rows start from), and an assignment names the agent of later outcomes.
async fn seen(
    conn: &mut PgConnection,
    table: &str,
    lead: Uuid,
    recorded: DateTime<Utc>,
    assignee: Option<Uuid>,
) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE {table} SET stream_sys = greatest(stream_sys, $2), assignee_id = coalesce($3, assignee_id)
         WHERE lead_id = $1 AND kind = 'state' AND sys_to IS NULL"
    ))
    .bind(lead)
    .bind(recorded)
    .bind(assignee)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Closes the lead's current state row and opens the next one: a new stay (`stage`, entered at
/// `at`; the closed row gets `left_at`), or the same stay with a new value.
async fn next_state(
    conn: &mut PgConnection,
    table: &str,
    lead: Uuid,
    recorded: DateTime<Utc>,
    stage: Option<Stage>,
    at: Option<DateTime<Utc>>,
    value: Option<(String, i64)>,
) -> Result<()> {
    let (currency, amount) = value.map_or((None, None), |(c, a)| (Some(c), Some(a)));
    sqlx::query(&format!(
        "WITH closed AS (
             UPDATE {table} SET sys_to = greatest(stream_sys, $2), left_at = $7
             WHERE lead_id = $1 AND kind = 'state' AND sys_to IS NULL
             RETURNING tenant_id, lead_id, brand_id, stage, entered_at, value_currency, value_minor, assignee_id,
                       greatest(stream_sys, $2) AS sys
         )
         INSERT INTO {table} (kind, tenant_id, lead_id, brand_id, stage, entered_at, value_currency, value_minor,
                              assignee_id, sys_from, stream_sys)
         SELECT 'state', tenant_id, lead_id, brand_id, coalesce($3, stage), coalesce($4, entered_at),
                coalesce($5, value_currency), coalesce($6, value_minor), assignee_id, sys, sys
         FROM closed"
    ))
    .bind(lead)
    .bind(recorded)
    .bind(stage.map(Stage::as_str))
    .bind(at)
    .bind(currency)
    .bind(amount)
    // Only a stage change ends the stay.
    .bind(stage.and(at))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records a won or lost outcome with the lead's brand and current agent.
async fn outcome(
    conn: &mut PgConnection,
    table: &str,
    lead: Uuid,
    recorded: DateTime<Utc>,
    kind: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO {table} (kind, tenant_id, lead_id, brand_id, assignee_id, reason, at, sys_from)
         SELECT $2, tenant_id, lead_id, brand_id, assignee_id, $3, $4, greatest(stream_sys, $5)
         FROM {table} WHERE lead_id = $1 AND kind = 'state' AND sys_to IS NULL"
    ))
    .bind(lead)
    .bind(kind)
    .bind(reason)
    .bind(at)
    .bind(recorded)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
