//! Projections: read tables fed from the global feed, with exactly-once effect.
//!
//! A read table is created by its service's migrations, like every other table; the runner only
//! fills it. A projection has a version: when the checkpoint's version differs from the code's (a
//! new release raised it, or `sentra-ctl projections rebuild` set it to 0), the active instance
//! rebuilds the table in the background into a copy of the live table's shape
//! (`CREATE TABLE … (LIKE … INCLUDING ALL)`), between its normal catch-ups, so the live table
//! keeps serving and keeps up; once the copy has caught up, one transaction applies the last
//! events, drops the old table, renames the copy into place and records the new version.

use std::future::Future;
use std::time::Duration;

use sqlx::{Acquire, PgConnection, Row};
use tracing::Instrument;

use crate::error::{EventStoreError, Result};
use crate::feed::{Feed, LeaderLock, load_checkpoint, save_checkpoint_in};
use crate::model::{Cursor, Lag, RecordedEvent};
use crate::store::EventStore;

/// A read model built from the feed.
///
/// `apply` runs inside the runner's transaction, which also advances the checkpoint: an event's
/// effect commits together with the checkpoint that says it was applied, so a crash replays the
/// uncommitted batch and the table never sees an event twice. `apply` must only write through
/// `conn` and only to `table` (the live table, or `<table>_rebuild` during a rebuild).
#[async_trait::async_trait]
pub trait Projection: Send + Sync {
    /// Unique name: the checkpoint's subscriber name and the key of the single-instance lock.
    fn name(&self) -> &str;

    /// The live table (a plain lower-case identifier; at most 55 characters), created by the
    /// service's migrations. Name its indexes as PostgreSQL would (`<table>_<columns>_idx`): a
    /// rebuild renames the copy's indexes back to those names.
    fn table(&self) -> &str;

    /// The version of what `apply` computes. Raise it when the same events should give different
    /// rows (with a migration for any new shape, applied to the live table): the active instance
    /// then rebuilds the table in the background and swaps it in.
    fn version(&self) -> i32 {
        1
    }

    /// Applies one event to `table`.
    async fn apply(&self, conn: &mut PgConnection, table: &str, event: &RecordedEvent) -> Result<()>;

    /// Applies a batch of events, in order, to `table`. The default applies them one by one;
    /// projections override it to turn runs of similar events into one set-based statement, which
    /// is what keeps them up with a heavy write load.
    async fn apply_batch(&self, conn: &mut PgConnection, table: &str, events: &[RecordedEvent]) -> Result<()> {
        for event in events {
            self.apply(conn, table, event).await?;
        }
        Ok(())
    }
}

/// Feed batches a background rebuild applies between two catch-ups of the live table.
const REBUILD_STEP_BATCHES: usize = 20;

/// Runs one projection: single active instance across replicas, catch-up, rebuild, lag.
pub struct ProjectionRunner<P> {
    feed: Feed,
    projection: P,
    batch_size: usize,
}

impl<P> std::fmt::Debug for ProjectionRunner<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner").field("batch_size", &self.batch_size).finish_non_exhaustive()
    }
}

impl<P: Projection> ProjectionRunner<P> {
    /// A runner with batches of up to 4,000 events: a live batch holds what arrived since the last
    /// one (a few events), while a catch-up pays one commit per 4,000 events instead of per 500.
    pub fn new(store: &EventStore, projection: P) -> Self {
        Self { feed: store.feed(), projection, batch_size: 4000 }
    }

    /// Events per transaction.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How often an idle or standby runner polls without a notification.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.feed = self.feed.with_poll_interval(poll_interval);
        self
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// How far the projection is behind the head of the feed.
    pub async fn lag(&self) -> Result<Lag> {
        self.feed.lag(self.projection.name()).await
    }

    /// Becomes the active instance if no other runner (in any replica) is; creates the
    /// checkpoint on first use (a new projection starts at its code's version). `None` means
    /// another instance is active; [`EventStoreError::MissingTable`] that the migrations have not
    /// created the table.
    pub async fn try_activate(&self) -> Result<Option<ActiveProjection<'_, P>>> {
        let table = self.projection.table();
        check_identifier(table)?;
        let Some(lock) = self.feed.try_lead(&format!("projection:{}", self.projection.name())).await? else {
            return Ok(None);
        };
        let mut tx = self.feed.store().pool().begin().await?;
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(table).fetch_one(&mut *tx).await?;
        if !exists {
            return Err(EventStoreError::MissingTable(table.to_owned()));
        }
        sqlx::query("INSERT INTO subscriber_checkpoints (subscriber, version) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(self.projection.name())
            .bind(self.projection.version())
            .execute(&mut *tx)
            .await?;
        let cursor = load_checkpoint(&mut tx, self.projection.name()).await?;
        tx.commit().await?;
        Ok(Some(ActiveProjection { runner: self, lock, cursor, rebuild: None }))
    }

    /// Rebuilds the projection (see [`ActiveProjection::rebuild`]) once this runner can become
    /// the active one, waiting up to `wait` for the active instance to stop; returns the events
    /// replayed, or `None` if another instance stayed active. For operators' tools: a serving
    /// replica keeps its projections active.
    pub async fn rebuild_when_free(&self, wait: Duration) -> Result<Option<u64>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(mut active) = self.try_activate().await? {
                let replayed = active.rebuild().await;
                active.release().await?;
                return replayed.map(Some);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(500).min(wait)).await;
        }
    }

    /// Runs until `shutdown` resolves: stands by while another instance is active, otherwise
    /// applies new events as they are notified (or polled). A failing `apply` is logged and retried
    /// after the poll interval; the lag shows a stuck projection.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut waiter = self.feed.waiter().await;
        let name = self.projection.name();
        loop {
            match self.try_activate().await {
                Ok(Some(mut active)) => {
                    tracing::info!(projection = name, "Projection active.");
                    loop {
                        waiter.mark_seen();
                        match active.catch_up().await {
                            Ok(_) => {}
                            Err(EventStoreError::Fenced) => {
                                tracing::warn!(
                                    projection = name,
                                    "Projection checkpoint moved elsewhere; standing by."
                                );
                                break;
                            }
                            Err(error) => {
                                tracing::error!(projection = name, %error, "Projection batch failed; retrying.");
                            }
                        }
                        // A rebuild advances between catch-ups, so the live table never falls
                        // behind by more than one step while it runs.
                        match active.rebuild_in_background().await {
                            Ok(true) => continue,
                            Ok(false) => {}
                            Err(EventStoreError::Fenced) => break,
                            Err(error) => {
                                tracing::error!(projection = name, %error, "Projection rebuild step failed; retrying.");
                            }
                        }
                        tokio::select! {
                            () = &mut shutdown => return active.release().await,
                            () = waiter.wait() => {}
                        }
                        if !active.lock.is_held().await {
                            tracing::warn!(projection = name, "Projection lock connection lost; standing by.");
                            break;
                        }
                    }
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(projection = name, %error, "Cannot activate projection."),
            }
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = waiter.wait() => {}
            }
        }
    }
}

/// The active instance of a projection (holds the advisory lock).
pub struct ActiveProjection<'a, P> {
    runner: &'a ProjectionRunner<P>,
    lock: LeaderLock,
    cursor: Cursor,
    rebuild: Option<Cursor>,
}

impl<P> std::fmt::Debug for ActiveProjection<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveProjection").field("cursor", &self.cursor).finish_non_exhaustive()
    }
}

impl<P: Projection> ActiveProjection<'_, P> {
    /// The checkpoint as of the last committed batch.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Applies every available event, one transaction per batch (effects + checkpoint), and
    /// returns how many were applied. Fails with [`EventStoreError::Fenced`] if the checkpoint
    /// moved under this runner.
    pub async fn catch_up(&mut self) -> Result<u64> {
        let runner = self.runner;
        let projection = &runner.projection;
        let table = projection.table();
        let mut applied = 0;
        let mut reader = runner.feed.read_ahead(self.cursor, runner.batch_size);
        loop {
            let batch = reader.next_batch().await?;
            let Some(next) = batch.last().map(RecordedEvent::cursor) else { return Ok(applied) };
            let span = tracing::info_span!(
                "projection.batch",
                otel.name = %format_args!("project {}", projection.name()),
                projection = %projection.name(),
                events = batch.len(),
            );
            let cursor = self.cursor;
            let commit = async {
                let mut tx = runner.feed.store().pool().begin().await?;
                projection.apply_batch(&mut tx, table, &batch).await?;
                // Compare-and-set: if anything else advanced the checkpoint, this batch is not ours.
                let updated = sqlx::query(
                    "UPDATE subscriber_checkpoints SET transaction_id = $2::bigint::text::xid8, position = $3, \
                     updated_at = now() \
                     WHERE subscriber = $1 AND transaction_id = $4::bigint::text::xid8 AND position = $5",
                )
                .bind(projection.name())
                .bind(next.transaction_id)
                .bind(next.position)
                .bind(cursor.transaction_id)
                .bind(cursor.position)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Err(EventStoreError::Fenced);
                }
                tx.commit().await?;
                Ok(())
            };
            commit.instrument(span).await?;
            self.cursor = next;
            applied += u64::try_from(batch.len()).unwrap_or(u64::MAX);
        }
    }

    /// Rebuilds the projection now, in the foreground (see [`ActiveProjection::rebuild_step`]):
    /// for operators' tools and tests. Returns the events replayed.
    pub async fn rebuild(&mut self) -> Result<u64> {
        self.start_rebuild().await?;
        let mut replayed = 0;
        loop {
            let (applied, done) = self.rebuild_step(usize::MAX).await?;
            replayed += applied;
            if done {
                return Ok(replayed);
            }
        }
    }

    /// One step of a background rebuild, if one is due (the stored version differs from the
    /// code's) or running: `true` while it is still running (the caller goes on without waiting
    /// for new events).
    pub async fn rebuild_in_background(&mut self) -> Result<bool> {
        if self.rebuild.is_none() {
            let stored: i32 = sqlx::query_scalar("SELECT version FROM subscriber_checkpoints WHERE subscriber = $1")
                .bind(self.runner.projection.name())
                .fetch_one(self.runner.feed.store().pool())
                .await?;
            if stored == self.runner.projection.version() {
                return Ok(false);
            }
            tracing::info!(
                projection = self.runner.projection.name(),
                from = stored,
                to = self.runner.projection.version(),
                "Rebuilding the projection in the background."
            );
            self.start_rebuild().await?;
        }
        let (_, done) = self.rebuild_step(REBUILD_STEP_BATCHES).await?;
        if done {
            tracing::info!(projection = self.runner.projection.name(), "Rebuilt projection swapped in.");
        }
        Ok(!done)
    }

    /// Creates `<table>_rebuild` in the live table's shape (columns, defaults, indexes) and starts
    /// filling it from the first event.
    async fn start_rebuild(&mut self) -> Result<()> {
        let table = self.runner.projection.table();
        check_identifier(table)?;
        let mut conn = self.runner.feed.store().pool().acquire().await?;
        run_script(
            &mut conn,
            &format!("DROP TABLE IF EXISTS \"{table}_rebuild\"; CREATE TABLE \"{table}_rebuild\" (LIKE \"{table}\" INCLUDING ALL)"),
        )
        .await?;
        self.rebuild = Some(Cursor::START);
        Ok(())
    }

    /// Applies up to `batches` feed batches to the rebuild table, one transaction each (which
    /// also records the progress for `projections status`). Once the rebuild has read the whole
    /// feed, one transaction applies what came since, drops the live table, renames the rebuild
    /// table into place, and moves the checkpoint there with the code's version; readers of the
    /// live table wait only for that transaction. Returns the events applied and whether the swap
    /// happened.
    pub async fn rebuild_step(&mut self, batches: usize) -> Result<(u64, bool)> {
        let Some(mut cursor) = self.rebuild else { return Ok((0, true)) };
        let runner = self.runner;
        let projection = &runner.projection;
        let table = projection.table();
        let rebuild = format!("{table}_rebuild");
        let pool = runner.feed.store().pool();
        let mut applied = 0u64;
        let mut reader = runner.feed.read_ahead(cursor, runner.batch_size);
        for _ in 0..batches {
            let batch = reader.next_batch().await?;
            let Some(next) = batch.last().map(RecordedEvent::cursor) else {
                let (tail, _) = self.swap(cursor).await?;
                return Ok((applied + tail, true));
            };
            let mut tx = pool.begin().await?;
            projection.apply_batch(&mut tx, &rebuild, &batch).await?;
            sqlx::query("UPDATE subscriber_checkpoints SET rebuild_position = $2 WHERE subscriber = $1")
                .bind(projection.name())
                .bind(next.position)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            cursor = next;
            self.rebuild = Some(cursor);
            applied += u64::try_from(batch.len()).unwrap_or(u64::MAX);
        }
        Ok((applied, false))
    }

    async fn swap(&mut self, mut cursor: Cursor) -> Result<(u64, Cursor)> {
        let runner = self.runner;
        let projection = &runner.projection;
        let table = projection.table();
        let rebuild = format!("{table}_rebuild");
        let mut tx = runner.feed.store().pool().begin().await?;
        // Fence: nobody else may move the checkpoint while the swap is decided.
        let (transaction_id, position): (i64, i64) = sqlx::query_as(
            "SELECT transaction_id::text::bigint, position FROM subscriber_checkpoints WHERE subscriber = $1 FOR UPDATE",
        )
        .bind(projection.name())
        .fetch_one(&mut *tx)
        .await?;
        if (Cursor { transaction_id, position }) != self.cursor {
            return Err(EventStoreError::Fenced);
        }
        let mut applied = 0u64;
        loop {
            let batch = runner.feed.read_batch(cursor, runner.batch_size).await?;
            let Some(next) = batch.last().map(RecordedEvent::cursor) else { break };
            projection.apply_batch(&mut tx, &rebuild, &batch).await?;
            cursor = next;
            applied += u64::try_from(batch.len()).unwrap_or(u64::MAX);
        }
        let conn = tx.acquire().await?;
        run_script(conn, &format!("DROP TABLE \"{table}\"; ALTER TABLE \"{rebuild}\" RENAME TO \"{table}\"")).await?;
        rename_indexes(conn, table, &rebuild).await?;
        save_checkpoint_in(conn, projection.name(), cursor).await?;
        sqlx::query("UPDATE subscriber_checkpoints SET version = $2, rebuild_position = NULL WHERE subscriber = $1")
            .bind(projection.name())
            .bind(projection.version())
            .execute(&mut *conn)
            .await?;
        tx.commit().await?;
        self.cursor = cursor;
        self.rebuild = None;
        Ok((applied, cursor))
    }

    /// Gives up the active role.
    pub async fn release(self) -> Result<()> {
        self.lock.release().await
    }
}

/// Gives the swapped-in table's indexes (and so its constraints) the live table's names, so the
/// next rebuild can create `<table>_rebuild_*` again.
async fn rename_indexes(conn: &mut PgConnection, table: &str, rebuild: &str) -> Result<()> {
    let rows = sqlx::query(
        "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = to_regclass($1)",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let name: String = row.try_get(0)?;
        if let Some(rest) = name.strip_prefix(rebuild) {
            let renamed = format!("{table}{rest}");
            run_script(conn, &format!("ALTER INDEX \"{name}\" RENAME TO \"{renamed}\"")).await?;
        }
    }
    Ok(())
}

/// Runs DDL (possibly several statements) through the simple query protocol.
async fn run_script(conn: &mut PgConnection, sql: &str) -> Result<()> {
    sqlx::Executor::execute(conn, sql).await?;
    Ok(())
}

/// Table names are spliced into DDL, so only plain identifiers are accepted.
fn check_identifier(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 55
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes().first().is_some_and(u8::is_ascii_digit);
    if valid {
        Ok(())
    } else {
        Err(EventStoreError::InvalidArgument("projection table name is not a plain identifier"))
    }
}
