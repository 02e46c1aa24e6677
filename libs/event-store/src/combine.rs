//! Write combining: concurrent appends (of different aggregates) share one statement and one
//! commit.
//!
//! A single-event append is mostly fixed cost: a round trip, a transaction, a commit record and a
//! WAL flush wait. When several callers append at once, [`Combiner::append`] queues their
//! commands and a few flusher tasks write whatever has queued as one multi-row `INSERT`, each
//! command keeping its own optimistic-concurrency check (a per-row `EXISTS` on its expected
//! version). A lone caller (nothing queued, no flusher running) writes inline, as the one flusher,
//! so an idle store pays nothing for this.
//!
//! What each caller sees is exactly what an append on its own would give it:
//! - every command is all or nothing: its rows are inserted together or not at all;
//! - a command whose expected version is not its aggregate's head (stale, a retry of a command
//!   already written, another tenant's aggregate id) inserts nothing and is then resolved on its
//!   own (conflict, duplicate or tenant mismatch), off the shared statement;
//! - a batch never holds two commands of the same aggregate (the second would be checked against
//!   a snapshot that cannot see the first): later ones wait for the next batch;
//! - if the shared statement fails as a whole (a unique violation: a writer elsewhere committed to
//!   one of its aggregates meanwhile, or event ids reused on another aggregate), nothing of it
//!   committed and every command of the batch is retried on its own, where the error is
//!   attributed to its owner.
//!
//! Commands of more than a few events (already a batch of their own) and commands with a request
//! id (their idempotency row is written by the same statement as their events) always take the
//! single path. The events of one shared statement share a transaction id, which the feed's
//! `(transaction_id, position)` order handles like any multi-event command.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sqlx::Row;
use sqlx::postgres::PgPool;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::error::{EventStoreError, Result};
use crate::model::{AppendOutcome, AppendedEvent, from_db_version};
use crate::store::{Append, Attempt, append_one, appended, resolve};

/// Default number of shared statements in flight at once: enough for one batch to execute while
/// another waits for its WAL flush.
pub const DEFAULT_APPEND_CONCURRENCY: usize = 4;

/// Most events one shared statement carries; the rest wait for the next one.
const MAX_BATCH_EVENTS: usize = 256;

/// Commands with more events than this are a batch already: their fixed cost is spread, and
/// writing them on their own keeps large statements from queueing behind each other.
const MAX_COMBINED_COMMAND_EVENTS: usize = 8;

/// Every command's rows in one statement; `$1..$9` and `$11` are per-event arrays, `$10` the
/// per-command metadata indexed by `command` (1-based). A command's rows are inserted only if its
/// aggregate's head (as of the statement's snapshot) is exactly its expected version and belongs
/// to its tenant, or, for expected version 0, if the aggregate has no events. A stale, retried or
/// foreign command therefore inserts nothing without failing the statement for the others; only
/// a writer committing in between makes the statement fail on a unique constraint.
const APPEND_MANY_SQL: &str = "\
    INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                        metadata, event_id)
    SELECT e.tenant_id, e.aggregate_type, e.aggregate_id, e.expected + e.offset_in_command, e.event_type,
           e.event_version, e.payload, ($10::jsonb[])[e.command], e.event_id
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                $8::jsonb[], $9::uuid[], $11::int4[])
         AS e(tenant_id, aggregate_type, aggregate_id, expected, offset_in_command, event_type, event_version,
              payload, event_id, command)
    WHERE (SELECT h.sequence = e.expected AND h.tenant_id = e.tenant_id FROM events h
           WHERE h.aggregate_type = e.aggregate_type AND h.aggregate_id = e.aggregate_id
           ORDER BY h.sequence DESC LIMIT 1)
          IS NOT DISTINCT FROM (CASE WHEN e.expected = 0 THEN NULL ELSE true END)
    RETURNING event_id, sequence, position";

struct Job {
    append: Append,
    reply: oneshot::Sender<Result<AppendOutcome>>,
}

/// The queue of appends waiting for a shared statement, and the flushers writing them.
pub(crate) struct Combiner {
    queue: Mutex<Vec<Job>>,
    flushers: AtomicUsize,
    max_flushers: usize,
}

impl Combiner {
    pub(crate) fn new(max_flushers: usize) -> Arc<Self> {
        Arc::new(Self { queue: Mutex::new(Vec::new()), flushers: AtomicUsize::new(0), max_flushers })
    }

    /// Appends `append` on its own when nothing else is being written, else with whatever else has
    /// queued. Once queued, the command is written even if the caller stops waiting.
    pub(crate) async fn append(self: &Arc<Self>, pool: &PgPool, append: Append) -> Result<AppendOutcome> {
        if self.max_flushers == 0 || append.request_id().is_some() || append.events.len() > MAX_COMBINED_COMMAND_EVENTS
        {
            return append_one(pool, &append).await;
        }
        // Nobody writing: write inline, as the one flusher (so callers arriving meanwhile queue
        // up behind it instead of also going alone).
        if self.lock().is_empty() && self.flushers.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            let _slot = InlineSlot { combiner: self.clone(), pool: pool.clone() };
            return append_one(pool, &append).await;
        }
        let (reply, answer) = oneshot::channel();
        self.lock().push(Job { append, reply });
        self.try_start_flusher(pool);
        answer.await.map_err(|_| EventStoreError::Interrupted)?
    }

    /// Starts a flusher unless enough run already (each of them looks at the queue again before
    /// it stops, so a queued job is never left behind).
    fn try_start_flusher(self: &Arc<Self>, pool: &PgPool) {
        if self.flushers.fetch_add(1, Ordering::SeqCst) < self.max_flushers {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn(self.clone().flush(pool.clone()))),
                // No runtime (a store dropped outside one): nothing can be written anyway.
                Err(_) => drop(self.flushers.fetch_sub(1, Ordering::SeqCst)),
            }
        } else {
            self.flushers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        // The queue holds plain data; a panic elsewhere cannot leave it half-updated.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn flush(self: Arc<Self>, pool: PgPool) {
        loop {
            let batch = self.take_batch();
            if batch.is_empty() {
                self.flushers.fetch_sub(1, Ordering::SeqCst);
                // A job may have been queued after `take_batch` by a caller that saw every flusher
                // busy: take it on, unless enough other flushers still run.
                if self.lock().is_empty() {
                    return;
                }
                if self.flushers.fetch_add(1, Ordering::SeqCst) < self.max_flushers {
                    continue;
                }
                self.flushers.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            write_batch(&pool, batch).await;
        }
    }

    /// The oldest queued jobs, at most one per aggregate and about `MAX_BATCH_EVENTS` events.
    fn take_batch(&self) -> Vec<Job> {
        let mut queue = self.lock();
        let mut streams = HashSet::new();
        let mut events = 0;
        let mut batch = Vec::new();
        let mut rest = Vec::new();
        for job in queue.drain(..) {
            let fits = batch.is_empty() || events + job.append.events.len() <= MAX_BATCH_EVENTS;
            if fits && streams.insert((job.append.aggregate_type.clone(), job.append.aggregate_id.clone())) {
                events += job.append.events.len();
                batch.push(job);
            } else {
                rest.push(job);
            }
        }
        *queue = rest;
        batch
    }
}

/// The flusher slot of an inline append; released even if the caller stops waiting midway.
struct InlineSlot {
    combiner: Arc<Combiner>,
    pool: PgPool,
}

impl Drop for InlineSlot {
    fn drop(&mut self) {
        self.combiner.flushers.fetch_sub(1, Ordering::SeqCst);
        if !self.combiner.lock().is_empty() {
            self.combiner.try_start_flusher(&self.pool);
        }
    }
}

/// Writes one batch and answers every caller.
async fn write_batch(pool: &PgPool, batch: Vec<Job>) {
    if batch.len() == 1 {
        for job in batch {
            let outcome = append_one(pool, &job.append).await;
            let _ = job.reply.send(outcome);
        }
        return;
    }
    match append_many(pool, &batch).await {
        Ok(attempts) => {
            for (job, attempt) in batch.into_iter().zip(attempts) {
                let outcome = match attempt {
                    Attempt::Appended(events) => Ok(appended(events)),
                    other => match pool.acquire().await {
                        Ok(mut conn) => resolve(&mut conn, &job.append, other).await,
                        Err(error) => Err(error.into()),
                    },
                };
                let _ = job.reply.send(outcome);
            }
        }
        Err(error) => {
            // Nothing of the batch committed; each command on its own finds out what is wrong
            // with which one (see the module docs).
            tracing::debug!(commands = batch.len(), %error, "Shared append failed; appending one by one.");
            let outcomes = futures::future::join_all(batch.iter().map(|job| append_one(pool, &job.append))).await;
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
        }
    }
}

/// One statement for every command of the batch; per command either its appended events or
/// `NotInserted` (its expected version did not hold).
async fn append_many(pool: &PgPool, batch: &[Job]) -> Result<Vec<Attempt>> {
    let len: usize = batch.iter().map(|job| job.append.events.len()).sum();
    let mut tenants = Vec::with_capacity(len);
    let mut types = Vec::with_capacity(len);
    let mut ids = Vec::with_capacity(len);
    let mut expected = Vec::with_capacity(len);
    let mut offsets = Vec::with_capacity(len);
    let mut event_types = Vec::with_capacity(len);
    let mut versions = Vec::with_capacity(len);
    let mut payloads = Vec::with_capacity(len);
    let mut event_ids = Vec::with_capacity(len);
    let mut commands = Vec::with_capacity(len);
    let mut metadata = Vec::with_capacity(batch.len());
    for (index, job) in batch.iter().enumerate() {
        let append = &job.append;
        let command = i32::try_from(index + 1).map_err(|_| EventStoreError::InvalidArgument("batch too large"))?;
        metadata.push(sqlx::types::Json(&append.metadata));
        for (offset, event) in (1i64..).zip(&append.events) {
            tenants.push(append.tenant_id);
            types.push(append.aggregate_type.as_str());
            ids.push(append.aggregate_id.as_str());
            expected.push(append.expected_db);
            offsets.push(offset);
            event_types.push(event.event_type.as_str());
            versions.push(event.event_version.as_str());
            payloads.push(&event.payload);
            event_ids.push(event.event_id);
            commands.push(command);
        }
    }
    let rows = sqlx::query(APPEND_MANY_SQL)
        .bind(&tenants)
        .bind(&types)
        .bind(&ids)
        .bind(&expected)
        .bind(&offsets)
        .bind(&event_types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&event_ids)
        .bind(&metadata)
        .bind(&commands)
        .fetch_all(pool)
        .await?;
    let mut inserted = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let event_id: Uuid = row.try_get(0)?;
        let sequence: i64 = row.try_get(1)?;
        let position: i64 = row.try_get(2)?;
        inserted.insert(event_id, AppendedEvent { event_id, sequence: from_db_version(sequence), position });
    }
    let mut attempts = Vec::with_capacity(batch.len());
    for job in batch {
        let mut events: Vec<AppendedEvent> =
            job.append.events.iter().filter_map(|e| inserted.get(&e.event_id).copied()).collect();
        if events.is_empty() {
            attempts.push(Attempt::NotInserted);
        } else if events.len() == job.append.events.len() {
            events.sort_by_key(|e| e.sequence);
            attempts.push(Attempt::Appended(events));
        } else {
            // A command's rows share one condition, so this cannot happen; refuse to guess.
            return Err(EventStoreError::InvalidArgument("append returned an unexpected row count"));
        }
    }
    Ok(attempts)
}
