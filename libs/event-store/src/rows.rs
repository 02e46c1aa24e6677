//! Set-based batches for read tables keyed by `id uuid`: load the rows a batch of events touches
//! in one query, fold the events into them in memory, and write every changed row back in one
//! statement, instead of one statement per event.
//!
//! Rows travel as JSON (`to_jsonb` out, `jsonb_populate_recordset` in) so one helper serves every
//! table: a projection's row type is a serde struct whose fields are exactly the table's columns.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::Result;
use crate::model::RecordedEvent;

/// The ids whose rows a batch must read, each once, from `(event, aggregate id)` in feed order:
/// every aggregate the batch touches except those it creates (an aggregate whose first event
/// here is its first event at all cannot have a row yet). A batch of creations reads nothing.
pub fn ids_to_load<'a>(events: impl IntoIterator<Item = (&'a RecordedEvent, Uuid)>) -> Vec<Uuid> {
    let mut seen = HashSet::new();
    let mut ids: Vec<Uuid> =
        events.into_iter().filter(|(event, id)| seen.insert(*id) && event.sequence > 1).map(|(_, id)| id).collect();
    ids.sort_unstable();
    ids
}

/// The rows of `table` with these ids (absent ones are simply missing from the map).
pub async fn load<T: DeserializeOwned>(conn: &mut PgConnection, table: &str, ids: &[Uuid]) -> Result<HashMap<Uuid, T>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, serde_json::Value)> =
        sqlx::query_as(&format!("SELECT t.id, to_jsonb(t) FROM {table} t WHERE t.id = ANY($1)"))
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?;
    rows.into_iter().map(|(id, json)| Ok((id, serde_json::from_value(json)?))).collect()
}

/// Inserts `rows` into `table`, replacing the `columns` of rows whose id exists. Every row must
/// serialize every column of the table (a missing one would be written as NULL).
pub async fn upsert<T: Serialize>(conn: &mut PgConnection, table: &str, rows: &[&T], columns: &[&str]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let targets = columns.join(", ");
    let values = columns.iter().map(|c| format!("excluded.{c}")).collect::<Vec<_>>().join(", ");
    sqlx::query(&format!(
        "INSERT INTO {table} SELECT * FROM jsonb_populate_recordset(NULL::{table}, $1)
         ON CONFLICT (id) DO UPDATE SET ({targets}) = ROW({values})"
    ))
    .bind(serde_json::to_value(rows)?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
