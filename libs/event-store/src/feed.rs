//! The global feed: every committed event exactly once, in an order that never changes behind a
//! reader, with per-subscriber checkpoints.

use std::sync::LazyLock;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::{PgConnection, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{EventStoreError, Result};
use crate::model::{Cursor, Lag, RecordedEvent};
use crate::store::{CHANNEL_SQL, EVENT_COLUMNS, EventStore, event_from_row};

/// Reads in (transaction id, position) order, and only transactions below the oldest one still
/// running: those can no longer gain rows, so nothing can later appear behind the cursor.
static FEED_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events \
         WHERE (transaction_id, position) > ($1::bigint::text::xid8, $2) \
           AND transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
         ORDER BY events.transaction_id, events.position LIMIT $3"
    )
});

const SAVE_CHECKPOINT_SQL: &str = "\
INSERT INTO subscriber_checkpoints (subscriber, transaction_id, position) VALUES ($1, $2::bigint::text::xid8, $3)
ON CONFLICT (subscriber) DO UPDATE
SET transaction_id = excluded.transaction_id, position = excluded.position, updated_at = now()";

/// Default time a waiting reader sleeps before polling without a notification.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Handle on the global feed. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Feed {
    pub(crate) store: EventStore,
    poll_interval: Duration,
}

impl Feed {
    pub(crate) fn new(store: EventStore) -> Self {
        Self { store, poll_interval: DEFAULT_POLL_INTERVAL }
    }

    /// How long a waiting reader sleeps when no notification arrives (the fallback for lost
    /// NOTIFYs, rows written by other tools, and events held back by an older open transaction).
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// The store this feed reads.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// Up to `limit` committed events after `after`, in feed order, upcast. Empty means caught up
    /// (for now).
    pub async fn read_batch(&self, after: Cursor, limit: usize) -> Result<Vec<RecordedEvent>> {
        let rows = fetch_rows(self.store.pool().clone(), after, limit).await?;
        self.decode(&rows)
    }

    fn decode(&self, rows: &[PgRow]) -> Result<Vec<RecordedEvent>> {
        rows.iter().map(|row| event_from_row(row).map(|e| self.store.upcast(e))).collect()
    }

    /// Reads the feed from `after` in batches of up to `limit`, fetching the next batch while the
    /// caller decodes and handles the current one (replays, rebuilds and catch-ups spend as much
    /// time on the client as in the database, so the two overlap instead of taking turns).
    pub fn read_ahead(&self, after: Cursor, limit: usize) -> ReadAhead {
        ReadAhead { feed: self.clone(), cursor: after, limit, pending: None }
    }

    /// A subscriber's saved checkpoint ([`Cursor::START`] when it has none).
    pub async fn checkpoint(&self, subscriber: &str) -> Result<Cursor> {
        let mut conn = self.store.pool().acquire().await?;
        load_checkpoint(&mut conn, subscriber).await
    }

    /// Saves a subscriber's checkpoint.
    pub async fn save_checkpoint(&self, subscriber: &str, cursor: Cursor) -> Result<()> {
        let mut conn = self.store.pool().acquire().await?;
        save_checkpoint_in(&mut conn, subscriber, cursor).await
    }

    /// How far `subscriber` is behind: committed events after its checkpoint and the age of the
    /// oldest of them.
    pub async fn lag(&self, subscriber: &str) -> Result<Lag> {
        let (events, seconds, position): (i64, f64, i64) = sqlx::query_as(
            "WITH c AS (SELECT coalesce(max(transaction_id::text::bigint), 0) AS x, coalesce(max(position), 0) AS p \
                        FROM subscriber_checkpoints WHERE subscriber = $1) \
             SELECT count(e.*)::bigint, \
                    coalesce(extract(epoch FROM clock_timestamp() - min(e.recorded_at))::float8, 0), \
                    max(c.p)::bigint \
             FROM c LEFT JOIN events e ON (e.transaction_id, e.position) > (c.x::text::xid8, c.p)",
        )
        .bind(subscriber)
        .fetch_one(self.store.pool())
        .await?;
        Ok(Lag {
            events: u64::try_from(events).unwrap_or(0),
            seconds: seconds.max(0.0),
            position: u64::try_from(position).unwrap_or(0),
        })
    }

    /// Every subscriber with a checkpoint (projections, relays), with its lag and, for
    /// projections, the database session holding its single-instance lock: what
    /// `sentra-ctl projections status` prints.
    pub async fn subscribers(&self) -> Result<Vec<SubscriberStatus>> {
        let checkpoints: Vec<(String, i32, Option<i64>)> = sqlx::query_as(
            "SELECT subscriber, version, rebuild_position FROM subscriber_checkpoints ORDER BY subscriber",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut out = Vec::with_capacity(checkpoints.len());
        for (name, version, rebuilding) in checkpoints {
            let lag = self.lag(&name).await?;
            // A bigint advisory lock shows in pg_locks as two 32-bit halves (objsubid 1).
            let leader: Option<(i32, Option<String>)> = sqlx::query_as(
                "SELECT l.pid, host(a.client_addr) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)
                 LIMIT 1",
            )
            .bind(lock_key(&format!("projection:{name}")))
            .fetch_optional(self.store.pool())
            .await?;
            let leader = leader.map(|(pid, addr)| match addr {
                Some(addr) => format!("pid {pid} from {addr}"),
                None => format!("pid {pid} (local socket)"),
            });
            let rebuilding = rebuilding.map(|p| u64::try_from(p).unwrap_or(0));
            out.push(SubscriberStatus { name, lag, leader, version, rebuilding });
        }
        Ok(out)
    }

    /// Asks for projection `name` to be rebuilt: its active instance (in whichever replica) starts
    /// a background rebuild within its poll interval and swaps the new table in once caught up
    /// (see [`crate::Projection::version`]). What `sentra-ctl projections rebuild` does.
    pub async fn request_rebuild(&self, name: &str) -> Result<()> {
        let updated = sqlx::query("UPDATE subscriber_checkpoints SET version = 0 WHERE subscriber = $1")
            .bind(name)
            .execute(self.store.pool())
            .await?;
        if updated.rows_affected() == 0 {
            return Err(EventStoreError::UnknownProjection(name.to_owned()));
        }
        Ok(())
    }

    /// Subscribes from `subscriber`'s checkpoint. This is what the outbox relay uses: read a
    /// batch, publish it, [`Subscription::commit`]. Run one relay per subscriber name (see
    /// [`Feed::try_lead`]).
    pub async fn subscribe(&self, subscriber: &str, batch_size: usize) -> Result<Subscription> {
        let waiter = self.waiter().await;
        let committed = self.checkpoint(subscriber).await?;
        Ok(Subscription {
            feed: self.clone(),
            name: Some(subscriber.to_owned()),
            read: committed,
            committed,
            batch_size: batch_size.max(1),
            waiter,
        })
    }

    /// The end of the feed now: the cursor after the last event a reader can see. Events that
    /// become visible later all lie after it, so following from here misses none of them.
    pub async fn head(&self) -> Result<Cursor> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT transaction_id::text::bigint, position FROM events \
             WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot()) \
             ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.map_or(Cursor::START, |(transaction_id, position)| Cursor { transaction_id, position }))
    }

    /// The cursor of the newest committed event. A reader whose checkpoint reached it has applied
    /// every event committed before this call (read-your-writes for queries over projections).
    /// Unlike [`Feed::head`] it may lie beyond what readers can see yet: while an older
    /// transaction is still open, readers stop before its position and catch up once it ends.
    pub async fn latest(&self) -> Result<Cursor> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT transaction_id::text::bigint, position FROM events ORDER BY transaction_id DESC, position DESC LIMIT 1",
        )
        .fetch_optional(self.store.pool())
        .await?;
        Ok(row.map_or(Cursor::START, |(transaction_id, position)| Cursor { transaction_id, position }))
    }

    /// Follows the feed from `after` without a checkpoint of its own: a live reader (a watch
    /// stream, a catch-up export) that keeps its place only in memory; its `commit` fails.
    pub async fn follow(&self, after: Cursor, batch_size: usize) -> Subscription {
        let waiter = self.waiter().await;
        Subscription {
            feed: self.clone(),
            name: None,
            read: after,
            committed: after,
            batch_size: batch_size.max(1),
            waiter,
        }
    }

    /// Tries to become the single active instance for `name` across replicas: a session-level
    /// advisory lock held on a dedicated connection for as long as the returned lock lives.
    pub async fn try_lead(&self, name: &str) -> Result<Option<LeaderLock>> {
        let mut conn = self.store.pool().acquire().await?.detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(lock_key(name))
            .fetch_one(&mut conn)
            .await?;
        Ok(locked.then(|| LeaderLock { conn, name: name.to_owned() }))
    }

    pub(crate) async fn waiter(&self) -> Waiter {
        Waiter::new(&self.store, self.poll_interval).await
    }
}

/// A feed subscriber as operators see it ([`Feed::subscribers`]).
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriberStatus {
    /// The subscriber (`sales.leads`, `sentra-bus.relay`).
    pub name: String,
    /// Its position and how far behind the feed it is.
    pub lag: Lag,
    /// The session holding its projection lock (`pid 4711 from 10.0.0.7`); `None` when no
    /// replica runs it, or for subscribers that are not projections.
    pub leader: Option<String>,
    /// The projection version its table was built with (0: a rebuild was asked for; relays: 1).
    pub version: i32,
    /// While a background rebuild runs: the feed position the new table has reached.
    pub rebuilding: Option<u64>,
}

/// The undecoded rows of one feed batch.
async fn fetch_rows(pool: PgPool, after: Cursor, limit: usize) -> Result<Vec<PgRow>> {
    let limit = i64::try_from(limit).map_err(|_| EventStoreError::InvalidArgument("limit too large"))?;
    Ok(sqlx::query(&FEED_SQL).bind(after.transaction_id).bind(after.position).bind(limit).fetch_all(&pool).await?)
}

/// A feed reader one batch ahead of its caller; see [`Feed::read_ahead`].
pub struct ReadAhead {
    feed: Feed,
    cursor: Cursor,
    limit: usize,
    pending: Option<JoinHandle<Result<Vec<PgRow>>>>,
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead").field("cursor", &self.cursor).field("limit", &self.limit).finish_non_exhaustive()
    }
}

impl ReadAhead {
    /// The position after the last event returned.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// The next batch; empty when caught up (for now: a later call reads again from the same
    /// position). After an error, the next call starts over from [`ReadAhead::cursor`].
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>> {
        let pool = self.feed.store.pool().clone();
        let rows = match self.pending.take() {
            Some(pending) => pending.await.map_err(|_| EventStoreError::InvalidArgument("feed read task failed"))?,
            None => fetch_rows(pool.clone(), self.cursor, self.limit).await,
        }?;
        let Some(last) = rows.last() else { return Ok(Vec::new()) };
        let next = Cursor { transaction_id: last.try_get(1)?, position: last.try_get(0)? };
        // A full batch means more may follow: fetch it while this one is decoded and handled.
        if rows.len() >= self.limit {
            self.pending = Some(tokio::spawn(fetch_rows(pool, next, self.limit)));
        }
        let events = self.feed.decode(&rows)?;
        self.cursor = next;
        Ok(events)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending.abort();
        }
    }
}

fn lock_key(name: &str) -> String {
    format!("sentra_event_store:{name}")
}

pub(crate) async fn load_checkpoint(conn: &mut PgConnection, subscriber: &str) -> Result<Cursor> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT transaction_id::text::bigint, position FROM subscriber_checkpoints WHERE subscriber = $1",
    )
    .bind(subscriber)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map_or(Cursor::START, |(transaction_id, position)| Cursor { transaction_id, position }))
}

/// Saves a checkpoint inside the caller's transaction, so it commits with the caller's effects.
pub async fn save_checkpoint_in(conn: &mut PgConnection, subscriber: &str, cursor: Cursor) -> Result<()> {
    sqlx::query(SAVE_CHECKPOINT_SQL)
        .bind(subscriber)
        .bind(cursor.transaction_id)
        .bind(cursor.position)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Proof of being the active instance for a name; dropping it (or losing its connection) releases
/// the advisory lock.
pub struct LeaderLock {
    conn: PgConnection,
    name: String,
}

impl std::fmt::Debug for LeaderLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLock").field("name", &self.name).finish_non_exhaustive()
    }
}

impl LeaderLock {
    /// The name the lock is held for.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True while the lock's connection is alive (the server releases the lock when it dies).
    pub async fn is_held(&mut self) -> bool {
        sqlx::query("SELECT 1").execute(&mut self.conn).await.is_ok()
    }

    /// Releases the lock now.
    pub async fn release(mut self) -> Result<()> {
        sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(lock_key(&self.name))
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }
}

/// A subscriber's position in the feed. `next_batch` moves the read position; `commit` saves it.
/// After a failure, drop the subscription (or [`Subscription::rewind`]) to resume from the last
/// commit: delivery is at-least-once.
pub struct Subscription {
    feed: Feed,
    /// `None` for a [`Feed::follow`] reader, which has no checkpoint.
    name: Option<String>,
    read: Cursor,
    committed: Cursor,
    batch_size: usize,
    waiter: Waiter,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.name)
            .field("read", &self.read)
            .field("committed", &self.committed)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// The subscriber name (empty for a [`Feed::follow`] reader).
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    fn checkpoint_name(&self) -> Result<&str> {
        self.name.as_deref().ok_or(EventStoreError::InvalidArgument("a followed feed has no checkpoint to save"))
    }

    /// The position after the last event returned by `next_batch`.
    pub fn cursor(&self) -> Cursor {
        self.read
    }

    /// The last saved checkpoint.
    pub fn committed(&self) -> Cursor {
        self.committed
    }

    /// Waits until at least one event is available and returns up to the batch size.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>> {
        loop {
            if let Some(batch) = self.poll().await? {
                return Ok(batch);
            }
            self.waiter.wait().await;
        }
    }

    /// Returns the next batch without waiting, or `None` when caught up.
    pub async fn poll(&mut self) -> Result<Option<Vec<RecordedEvent>>> {
        self.waiter.mark_seen();
        let batch = self.feed.read_batch(self.read, self.batch_size).await?;
        Ok(batch.last().map(RecordedEvent::cursor).map(|cursor| {
            self.read = cursor;
            batch
        }))
    }

    /// Saves the read position as the checkpoint.
    pub async fn commit(&mut self) -> Result<()> {
        self.feed.save_checkpoint(self.checkpoint_name()?, self.read).await?;
        self.committed = self.read;
        Ok(())
    }

    /// Saves the read position inside the caller's transaction; call
    /// [`Subscription::mark_committed`] once that transaction has committed.
    pub async fn commit_in(&self, conn: &mut PgConnection) -> Result<Cursor> {
        save_checkpoint_in(conn, self.checkpoint_name()?, self.read).await?;
        Ok(self.read)
    }

    /// Records that a checkpoint saved with [`Subscription::commit_in`] has committed.
    pub fn mark_committed(&mut self, cursor: Cursor) {
        self.committed = cursor;
    }

    /// Goes back to the last checkpoint, to redeliver what was read but not committed.
    pub fn rewind(&mut self) {
        self.read = self.committed;
    }
}

/// Sleeps until an append may have happened: a local append, a NOTIFY from another process, or the
/// poll interval.
pub(crate) struct Waiter {
    local: watch::Receiver<u64>,
    remote: watch::Receiver<u64>,
    poll_interval: Duration,
}

impl Waiter {
    async fn new(store: &EventStore, poll_interval: Duration) -> Self {
        let local = store.inner.local_wake.subscribe();
        let remote = shared_listener(store, poll_interval).await;
        Self { local, remote, poll_interval }
    }

    /// Forgets wake-ups so far; call before reading so a wake during the read is not lost.
    pub(crate) fn mark_seen(&mut self) {
        self.local.borrow_and_update();
        self.remote.borrow_and_update();
    }

    pub(crate) async fn wait(&mut self) {
        let Self { local, remote, poll_interval } = self;
        let poll = *poll_interval;
        tokio::select! {
            changed = local.changed() => {
                // The sender lives as long as the store; if it is gone, fall back to the poll.
                if changed.is_err() {
                    tokio::time::sleep(poll).await;
                }
            }
            changed = remote.changed() => {
                // The listener task is gone (the store is being dropped): the poll remains.
                if changed.is_err() {
                    tokio::time::sleep(poll).await;
                }
            }
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// A store's LISTEN task: one connection, however many feed readers (projections, relays,
/// watches) the process runs, instead of one pooled connection held by each. Stops with the
/// store.
pub(crate) struct SharedListener {
    wake: watch::Receiver<u64>,
    task: tokio::task::AbortHandle,
}

impl Drop for SharedListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A receiver of the store's NOTIFY wake-ups, starting the listener on first use (and waiting,
/// briefly, until it listens, so the first reader misses no notification).
async fn shared_listener(store: &EventStore, retry: Duration) -> watch::Receiver<u64> {
    let mut started = None;
    let shared = store.inner.listener.get_or_init(|| {
        let (wake, receiver) = watch::channel(0);
        let (ready, listening) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(listen_forever(store.pool().clone(), wake, ready, retry)).abort_handle();
        started = Some(listening);
        SharedListener { wake: receiver, task }
    });
    if let Some(listening) = started {
        // Without LISTEN the readers still poll; no reason to hold them up for long.
        let _ = tokio::time::timeout(Duration::from_secs(2), listening).await;
    }
    shared.wake.clone()
}

/// Listens until aborted, reconnecting after `retry` when the connection fails.
async fn listen_forever(
    pool: PgPool,
    wake: watch::Sender<u64>,
    ready: tokio::sync::oneshot::Sender<()>,
    retry: Duration,
) {
    let mut ready = Some(ready);
    loop {
        match listen(&pool).await {
            Ok(mut listener) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
                // Notifications may have been missed while (re)connecting: readers look again.
                wake.send_modify(|n| *n = n.wrapping_add(1));
                loop {
                    match listener.recv().await {
                        Ok(_) => wake.send_modify(|n| *n = n.wrapping_add(1)),
                        Err(error) => {
                            tracing::debug!(%error, "Event listener failed; reconnecting.");
                            break;
                        }
                    }
                }
            }
            Err(error) => {
                ready.take();
                tracing::warn!(%error, "Cannot LISTEN for new events; feed readers poll until it works.");
            }
        }
        tokio::time::sleep(retry).await;
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener> {
    let channel: String = sqlx::query_scalar(CHANNEL_SQL).fetch_one(pool).await?;
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(&channel).await?;
    Ok(listener)
}
