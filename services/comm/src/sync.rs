//! Keeping mailboxes in sync with Gmail.
//!
//! A mailbox moves `pending` -> `listing` -> `importing` -> `active`:
//! - **pending**: read the profile; its `historyId` is where incremental sync will continue, so
//!   mail arriving while the full sync runs is picked up afterwards, not lost.
//! - **listing**: `messages.list` page by page; each page's ids go to the mailbox's import queue
//!   and the next page token is the checkpoint.
//! - **importing**: queued ids are fetched (`format=raw`) with bounded concurrency, parsed and
//!   stored idempotently, then dequeued. An empty queue completes the full sync.
//! - **active**: `history.list` from the stored history id; ids added (and not deleted in the
//!   same window) are queued, deleted ones removed, the new history id stored, and the queue
//!   imported. **404 on history** (the id is too old) goes back to `pending`: a full sync, which
//!   imports nothing twice. Nothing is retried in a loop.
//!
//! Every step leaves a checkpoint in PostgreSQL (page token, queue, history id), so a worker
//! killed anywhere resumes with no duplicate (imports are keyed by Gmail id and Message-ID) and
//! no gap (ids leave the queue only once stored). One worker per mailbox across replicas: a pass
//! runs under a lease (`lease_owner`, `lease_until`) renewed as it goes; the lease of a crashed
//! worker expires and the next poll of any replica takes the mailbox over (the sweep: no stage can
//! stay stuck longer than one lease).
//!
//! Quota: each pass spends Gmail's published unit costs through a GCRA limiter (governor) at the
//! configured per-user rate, so a healthy sync never trips the provider's limit; a 429 or a
//! rate-limit 403 still backs off, honouring `Retry-After`, with jitter, showing THROTTLED.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone as _, Utc};
use futures::StreamExt as _;
use governor::{DefaultDirectRateLimiter, Jitter, Quota, RateLimiter};
use rand::Rng as _;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row as _};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::error::CommError;
use crate::gmail::{GmailError, cost};
use crate::mailboxes::Mailboxes;
use crate::mime;
use crate::notifications;
use crate::store::{MailStore, NewMessage};

/// How sync runs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct SyncConfig {
    /// Run the sync worker in this process.
    pub enabled: bool,
    /// How often due mailboxes are looked for, and how long an active mailbox waits between
    /// passes, seconds.
    pub poll_interval_secs: f64,
    /// How long a pass's lease lasts without renewal, seconds.
    pub lease_secs: f64,
    /// Mailboxes synced at once per replica.
    pub mailboxes_at_once: usize,
    /// Messages fetched at once per mailbox.
    pub fetch_concurrency: usize,
    /// `messages.list` page size (Gmail's maximum is 500).
    pub page_size: u32,
    /// Ids imported per checkpoint.
    pub import_batch: i64,
    /// Gmail quota units per second per mailbox (Gmail's per-user limit is 250).
    pub quota_units_per_sec: u32,
    /// The longest back-off after failures, seconds.
    pub max_backoff_secs: f64,
    /// Longest `Retry-After` waited inside a pass; longer ones end the pass until then.
    pub max_inline_wait_secs: f64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval_secs: 60.0,
            lease_secs: 60.0,
            mailboxes_at_once: 4,
            fetch_concurrency: 8,
            page_size: 500,
            import_batch: 200,
            quota_units_per_sec: 250,
            max_backoff_secs: 3600.0,
            max_inline_wait_secs: 30.0,
        }
    }
}

fn secs(value: f64, fallback: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::from_secs_f64(fallback))
}

/// Why a pass stopped early.
#[derive(Debug)]
enum Stop {
    /// Another worker owns the mailbox now.
    LeaseLost,
    /// The provider asked to wait longer than a pass waits.
    Throttled(Duration),
    /// A failure to back off from.
    Failed(CommError),
}

impl From<CommError> for Stop {
    fn from(error: CommError) -> Self {
        Stop::Failed(error)
    }
}

impl From<crate::store::StoreError> for Stop {
    fn from(error: crate::store::StoreError) -> Self {
        Stop::Failed(error.into())
    }
}

impl From<sqlx::Error> for Stop {
    fn from(error: sqlx::Error) -> Self {
        Stop::Failed(error.into())
    }
}

/// The sync worker of one replica.
#[derive(Clone)]
pub struct Syncer {
    pool: PgPool,
    store: Arc<dyn MailStore>,
    mailboxes: Mailboxes,
    config: SyncConfig,
    wake: Arc<Notify>,
}

/// A mailbox leased for one pass.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    /// The mailbox.
    pub mailbox: Uuid,
    /// Its organization.
    pub organization: Uuid,
    /// This lease's token (`lease_owner`).
    pub token: Uuid,
}

struct Pass<'a> {
    syncer: &'a Syncer,
    lease: Uuid,
    mailbox: Uuid,
    organization: Uuid,
    limiter: DefaultDirectRateLimiter,
    units: u64,
    token: String,
}

impl Syncer {
    /// A worker; `wake` lets the API start a pass without waiting for the next poll.
    pub fn new(
        pool: PgPool,
        store: Arc<dyn MailStore>,
        mailboxes: Mailboxes,
        config: SyncConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Self { pool, store, mailboxes, config, wake }
    }

    /// Polls for due mailboxes and syncs them, a few at a time, until `stop` resolves.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) -> Result<(), std::convert::Infallible> {
        tokio::pin!(stop);
        let poll = secs(self.config.poll_interval_secs, 60.0).min(Duration::from_secs(5));
        let mut running = tokio::task::JoinSet::new();
        loop {
            let room = self.config.mailboxes_at_once.max(1).saturating_sub(running.len());
            if room > 0 {
                match self.claim(room).await {
                    Ok(claimed) => {
                        for lease in claimed {
                            let syncer = self.clone();
                            running.spawn(async move { syncer.sync(lease).await });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "Could not look for due mailboxes."),
                }
            }
            tokio::select! {
                () = &mut stop => break,
                () = self.wake.notified() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
        // Passes in flight stop where they are; their checkpoints are committed and their
        // leases expire for whoever runs next.
        running.abort_all();
        Ok(())
    }

    /// Leases up to `limit` due mailboxes; each lease has its own token, so two passes can never
    /// both believe they hold one mailbox (not even in one process).
    async fn claim(&self, limit: usize) -> Result<Vec<Lease>, sqlx::Error> {
        let lease = secs(self.config.lease_secs, 60.0).as_secs_f64();
        let rows = sqlx::query(
            "UPDATE mailboxes SET lease_owner = gen_random_uuid(), lease_until = now() + make_interval(secs => $1) \
             WHERE mailbox_id IN (SELECT mailbox_id FROM mailboxes WHERE stage <> 'needs_reauth' AND due_at <= now() \
             AND (lease_until IS NULL OR lease_until < now()) ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
             RETURNING mailbox_id, organization_id, lease_owner",
        )
        .bind(lease)
        .bind(i64::try_from(limit).unwrap_or(1))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Lease {
                    mailbox: r.try_get("mailbox_id")?,
                    organization: r.try_get("organization_id")?,
                    token: r.try_get("lease_owner")?,
                })
            })
            .collect()
    }

    /// One pass over one leased mailbox, then its outcome recorded and the lease released. A
    /// heartbeat renews the lease while the pass runs; if the lease is lost (this process stalled
    /// past it and another worker took over), the pass is dropped where it stands.
    pub async fn sync(&self, lease: Lease) {
        let Lease { mailbox, organization, token } = lease;
        let heartbeat = async {
            let every = secs(self.config.lease_secs, 60.0) / 3;
            loop {
                tokio::time::sleep(every).await;
                if let Err(stop) = self.renew(mailbox, token).await {
                    return stop;
                }
            }
        };
        let outcome = tokio::select! {
            outcome = self.pass(mailbox, organization, token) => outcome,
            stop = heartbeat => Err(stop),
        };
        let result =
            match outcome {
                Ok(units) => sqlx::query(
                    "UPDATE mailboxes SET lease_owner = NULL, lease_until = NULL, consecutive_failures = 0, last_error \
                     = NULL, throttled_until = NULL, last_synced_at = now(), quota_units = quota_units + $3, due_at = \
                     now() + make_interval(secs => $4) WHERE mailbox_id = $1 AND lease_owner = $2",
                )
                .bind(mailbox)
                .bind(token)
                .bind(i64::try_from(units).unwrap_or(i64::MAX))
                .bind(self.config.poll_interval_secs.max(0.0))
                .execute(&self.pool)
                .await,
                Err(Stop::LeaseLost) => return,
                Err(Stop::Throttled(wait)) => {
                    sqlx::query(
                        "UPDATE mailboxes SET lease_owner = NULL, lease_until = NULL, throttled_until = now() + \
                     make_interval(secs => $3), due_at = now() + make_interval(secs => $3) WHERE mailbox_id = $1 AND \
                     lease_owner = $2",
                    )
                    .bind(mailbox)
                    .bind(token)
                    .bind(wait.as_secs_f64())
                    .execute(&self.pool)
                    .await
                }
                Err(Stop::Failed(CommError::Provider(GmailError::Grant(_)))) => {
                    // Marked NEEDS_REAUTH where the grant was refused; nothing is due until the owner
                    // connects again.
                    sqlx::query("UPDATE mailboxes SET lease_owner = NULL, lease_until = NULL WHERE mailbox_id = $1")
                        .bind(mailbox)
                        .execute(&self.pool)
                        .await
                }
                Err(Stop::Failed(error)) => {
                    tracing::warn!(%mailbox, %error, "Mailbox sync failed; backing off.");
                    let detail = match &error {
                        CommError::Provider(e) => e.to_string(),
                        _ => "internal error".to_owned(),
                    };
                    let _ = self.store.log(mailbox, "failed", &detail).await;
                    sqlx::query(
                        "UPDATE mailboxes SET lease_owner = NULL, lease_until = NULL, consecutive_failures = \
                     consecutive_failures + 1, last_error = $3, due_at = now() + make_interval(secs => least($4, 5.0 * \
                     power(2, consecutive_failures)) * (0.75 + random() / 2)) WHERE mailbox_id = $1 AND lease_owner = \
                     $2",
                    )
                    .bind(mailbox)
                    .bind(token)
                    .bind(detail)
                    .bind(self.config.max_backoff_secs)
                    .execute(&self.pool)
                    .await
                }
            };
        if let Err(error) = result {
            tracing::warn!(%mailbox, %error, "Could not record a sync outcome; the lease expires instead.");
        }
    }

    async fn pass(&self, mailbox: Uuid, organization: Uuid, lease: Uuid) -> Result<u64, Stop> {
        let rate = NonZeroU32::new(self.config.quota_units_per_sec).unwrap_or(NonZeroU32::MIN);
        let token = self.mailboxes.access_token(mailbox).await?;
        let limiter = RateLimiter::direct(Quota::per_second(rate));
        let mut pass = Pass { syncer: self, lease, mailbox, organization, limiter, units: 0, token };
        pass.run().await?;
        Ok(pass.units)
    }

    async fn renew(&self, mailbox: Uuid, lease: Uuid) -> Result<(), Stop> {
        let renewed = sqlx::query(
            "UPDATE mailboxes SET lease_until = now() + make_interval(secs => $3) WHERE mailbox_id = $1 AND \
             lease_owner = $2",
        )
        .bind(mailbox)
        .bind(lease)
        .bind(secs(self.config.lease_secs, 60.0).as_secs_f64())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if renewed == 0 { Err(Stop::LeaseLost) } else { Ok(()) }
    }

    /// Sets sync columns, only while this worker holds the lease.
    async fn set(
        &self,
        (mailbox, lease): (Uuid, Uuid),
        assignments: &str,
        history: Option<i64>,
        page: Option<&str>,
    ) -> Result<(), Stop> {
        let sql = format!("UPDATE mailboxes SET {assignments} WHERE mailbox_id = $1 AND lease_owner = $2");
        let changed = sqlx::query(&sql)
            .bind(mailbox)
            .bind(lease)
            .bind(history)
            .bind(page)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if changed == 0 { Err(Stop::LeaseLost) } else { Ok(()) }
    }
}

impl Pass<'_> {
    /// Spends `units` of quota, then calls; rate limits wait inside the pass when short.
    async fn call<T, F, Fut>(&mut self, units: u32, mut f: F) -> Result<T, Stop>
    where
        F: FnMut(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, GmailError>>,
    {
        let mut throttles = 0u32;
        let mut refreshed = false;
        loop {
            self.spend(units).await;
            match f(self.token.clone()).await {
                Ok(value) => return Ok(value),
                Err(GmailError::RateLimited { retry_after }) => {
                    throttles += 1;
                    let wait = self.backoff(retry_after, throttles);
                    self.throttled(wait).await?;
                }
                Err(GmailError::Unauthorized) if !refreshed => {
                    refreshed = true;
                    self.syncer.mailboxes.drop_access_token(self.mailbox).await?;
                    self.token = self.syncer.mailboxes.access_token(self.mailbox).await?;
                }
                Err(other) => return Err(Stop::Failed(CommError::Provider(other))),
            }
        }
    }

    async fn spend(&mut self, units: u32) {
        self.units += u64::from(units);
        if let Some(n) = NonZeroU32::new(units) {
            // A cost above the burst can never be granted; such a call goes unthrottled.
            let _ = self.limiter.until_n_ready_with_jitter(n, Jitter::up_to(Duration::from_millis(5))).await;
        }
    }

    fn backoff(&self, retry_after: Option<Duration>, attempt: u32) -> Duration {
        let base = retry_after.unwrap_or_else(|| Duration::from_secs(1) * 2u32.saturating_pow(attempt.min(6)));
        // Jitter spreads replicas' retries; never below what the server asked for.
        base + Duration::from_millis(rand::thread_rng().gen_range(0..=250))
    }

    async fn throttled(&mut self, wait: Duration) -> Result<(), Stop> {
        let syncer = self.syncer;
        if wait > secs(syncer.config.max_inline_wait_secs, 30.0) {
            return Err(Stop::Throttled(wait));
        }
        let _ = syncer.store.log(self.mailbox, "throttled", &format!("waiting {} ms", wait.as_millis())).await;
        sqlx::query("UPDATE mailboxes SET throttled_until = now() + make_interval(secs => $2) WHERE mailbox_id = $1")
            .bind(self.mailbox)
            .bind(wait.as_secs_f64())
            .execute(&syncer.pool)
            .await?;
        // The pass's heartbeat keeps the lease through the wait.
        tokio::time::sleep(wait).await;
        sqlx::query("UPDATE mailboxes SET throttled_until = NULL WHERE mailbox_id = $1")
            .bind(self.mailbox)
            .execute(&syncer.pool)
            .await?;
        Ok(())
    }

    async fn run(&mut self) -> Result<(), Stop> {
        let syncer = self.syncer;
        let gmail = syncer.mailboxes.gmail().clone();
        loop {
            let row = sqlx::query("SELECT stage, history_id, list_page_token FROM mailboxes WHERE mailbox_id = $1")
                .bind(self.mailbox)
                .fetch_one(&syncer.pool)
                .await?;
            let stage: String = row.try_get("stage")?;
            let history: Option<i64> = row.try_get("history_id")?;
            let page: Option<String> = row.try_get("list_page_token")?;
            match stage.as_str() {
                "pending" => {
                    let profile = self
                        .call(cost::PROFILE, |t| {
                            let g = gmail.clone();
                            async move { g.profile(&t).await }
                        })
                        .await?;
                    let start = i64::try_from(profile.history_id).unwrap_or(i64::MAX);
                    syncer.store.log(self.mailbox, "full_sync", &format!("from history {start}")).await?;
                    syncer
                        .set(
                            (self.mailbox, self.lease),
                            "stage = 'listing', full_sync_history_id = $3, list_page_token = NULL",
                            Some(start),
                            None,
                        )
                        .await?;
                }
                "listing" => {
                    let size = syncer.config.page_size.clamp(1, 500);
                    let listed = self
                        .call(cost::LIST, |t| {
                            let (g, p) = (gmail.clone(), page.clone());
                            async move { g.list(&t, p.as_deref(), size).await }
                        })
                        .await?;
                    let ids: Vec<String> = listed.messages.into_iter().map(|m| m.id).collect();
                    syncer.store.enqueue(self.mailbox, &ids).await?;
                    match listed.next_page_token {
                        Some(next) => {
                            syncer.set((self.mailbox, self.lease), "list_page_token = $4", None, Some(&next)).await?
                        }
                        None => {
                            syncer
                                .set(
                                    (self.mailbox, self.lease),
                                    "stage = 'importing', list_page_token = NULL",
                                    None,
                                    None,
                                )
                                .await?
                        }
                    }
                }
                "importing" => {
                    self.import_queue().await?;
                    syncer
                        .set(
                            (self.mailbox, self.lease),
                            "stage = 'active', history_id = coalesce(full_sync_history_id, history_id), \
                             full_sync_history_id = NULL",
                            None,
                            None,
                        )
                        .await?;
                    syncer.store.log(self.mailbox, "full_sync_done", "").await?;
                }
                "active" => {
                    // What an earlier pass queued and did not finish first.
                    self.import_queue().await?;
                    let Some(start) = history.and_then(|h| u64::try_from(h).ok()) else {
                        syncer.set((self.mailbox, self.lease), "stage = 'pending'", None, None).await?;
                        continue;
                    };
                    match self.history(start).await {
                        Ok(()) => {}
                        Err(Stop::Failed(CommError::Provider(GmailError::NotFound))) => {
                            syncer
                                .store
                                .log(self.mailbox, "history_expired", &format!("history {start} is gone; full sync"))
                                .await?;
                            syncer.set((self.mailbox, self.lease), "stage = 'pending'", None, None).await?;
                            continue;
                        }
                        Err(other) => return Err(other),
                    }
                    self.import_queue().await?;
                    return Ok(());
                }
                _ => return Ok(()),
            }
        }
    }

    /// Reads history from `start` to now, queues what was added (minus what was also deleted),
    /// removes what was deleted, and stores the new history id, all before importing.
    async fn history(&mut self, start: u64) -> Result<(), Stop> {
        let syncer = self.syncer;
        let gmail = syncer.mailboxes.gmail().clone();
        let (mut added, mut deleted) = (Vec::new(), std::collections::HashSet::new());
        let mut page: Option<String> = None;
        let latest = loop {
            let current = page.clone();
            let got = self
                .call(cost::HISTORY, |t| {
                    let (g, p) = (gmail.clone(), current.clone());
                    async move { g.history(&t, start, p.as_deref()).await }
                })
                .await?;
            added.extend(got.added.into_iter().map(|m| m.id));
            deleted.extend(got.deleted);
            match got.next_page_token {
                Some(next) => page = Some(next),
                None => break got.history_id,
            }
        };
        let mut seen = std::collections::HashSet::new();
        let added: Vec<String> =
            added.into_iter().filter(|id| !deleted.contains(id) && seen.insert(id.clone())).collect();
        let deleted: Vec<String> = deleted.into_iter().collect();
        syncer.store.enqueue(self.mailbox, &added).await?;
        syncer.store.dequeue(self.mailbox, &deleted).await?;
        syncer.store.delete(self.mailbox, &deleted).await?;
        let latest = i64::try_from(latest).unwrap_or(i64::MAX).max(i64::try_from(start).unwrap_or(0));
        syncer.set((self.mailbox, self.lease), "history_id = $3", Some(latest), None).await
    }

    /// Imports the queue, a batch at a time; ids leave the queue only once stored.
    async fn import_queue(&mut self) -> Result<(), Stop> {
        let syncer = self.syncer;
        loop {
            let ids = syncer.store.queued(self.mailbox, syncer.config.import_batch.max(1)).await?;
            if ids.is_empty() {
                return Ok(());
            }
            let concurrency = syncer.config.fetch_concurrency.max(1);
            // Quota is spent up front per batch: the limiter is shared by the concurrent fetches.
            let gmail = syncer.mailboxes.gmail().clone();
            let token = self.token.clone();
            let (store, mailbox, organization) = (syncer.store.clone(), self.mailbox, self.organization);
            let limiter = &self.limiter;
            let results: Vec<(String, Result<Option<Arrival>, GmailError>)> = futures::stream::iter(ids)
                .map(|id| {
                    let (gmail, token, store) = (gmail.clone(), token.clone(), store.clone());
                    async move {
                        if let Some(n) = NonZeroU32::new(cost::GET) {
                            let _ = limiter.until_n_ready_with_jitter(n, Jitter::up_to(Duration::from_millis(5))).await;
                        }
                        let result = fetch_and_store(&gmail, &token, store.as_ref(), mailbox, organization, &id).await;
                        (id, result)
                    }
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
            self.units += u64::from(cost::GET) * results.len() as u64;
            let mut done = Vec::new();
            let mut failure = None;
            let mut arrivals = Vec::new();
            for (id, result) in results {
                match result {
                    Ok(arrival) => {
                        done.push(id);
                        arrivals.extend(arrival);
                    }
                    // Gone since it was listed: nothing to import.
                    Err(GmailError::NotFound) => done.push(id),
                    Err(error) => failure = failure.or(Some(error)),
                }
            }
            syncer.store.dequeue(self.mailbox, &done).await?;
            self.announce(&arrivals).await;
            match failure {
                None => {}
                Some(GmailError::RateLimited { retry_after }) => {
                    let wait = self.backoff(retry_after, 1);
                    self.throttled(wait).await?;
                }
                Some(GmailError::Unauthorized) => {
                    self.syncer.mailboxes.drop_access_token(self.mailbox).await?;
                    self.token = self.syncer.mailboxes.access_token(self.mailbox).await?;
                }
                Some(GmailError::Transient(_)) if !done.is_empty() => {}
                Some(other) => return Err(Stop::Failed(CommError::Provider(other))),
            }
        }
    }
}

/// A message stored for the first time: who wrote it and about what.
struct Arrival {
    message: Uuid,
    from: crate::mime::Mailbox,
    subject: String,
}

impl Pass<'_> {
    /// Tells the assignees of the senders' leads that mail arrived, once the mailbox had synced
    /// before (the first full sync's history notifies nobody) and for mail not sent from it.
    async fn announce(&self, arrivals: &[Arrival]) {
        if arrivals.is_empty() {
            return;
        }
        let own: Option<(String, bool)> =
            sqlx::query_as("SELECT email_address, history_id IS NOT NULL FROM mailboxes WHERE mailbox_id = $1")
                .bind(self.mailbox)
                .fetch_optional(&self.syncer.pool)
                .await
                .ok()
                .flatten();
        let Some((own, synced_before)) = own else { return };
        if !synced_before {
            return;
        }
        for arrival in arrivals.iter().filter(|a| !a.from.email.eq_ignore_ascii_case(&own)) {
            let told = notifications::reply_received(
                &self.syncer.pool,
                self.organization,
                arrival.message,
                &arrival.from,
                &arrival.subject,
            )
            .await;
            if let Err(error) = told {
                tracing::warn!(%error, "A reply's notification was not recorded.");
            }
        }
    }
}

/// Errors from storing are reported as transient provider errors would be: the id stays queued.
/// Returns the arrival when the message is new and has a sender.
async fn fetch_and_store(
    gmail: &crate::gmail::Gmail,
    token: &str,
    store: &dyn MailStore,
    mailbox: Uuid,
    organization: Uuid,
    id: &str,
) -> Result<Option<Arrival>, GmailError> {
    let raw = gmail.message(token, id).await?;
    let bytes = raw.bytes().unwrap_or_default();
    let mail = mime::parse(&bytes);
    let internal_date: DateTime<Utc> =
        Utc.timestamp_millis_opt(i64::try_from(raw.internal_date).unwrap_or(0)).single().unwrap_or_else(Utc::now);
    let message = NewMessage {
        organization_id: organization,
        mailbox_id: mailbox,
        provider_id: raw.id.clone(),
        provider_thread_id: raw.thread_id.clone(),
        labels: raw.label_ids.clone(),
        internal_date,
        size_bytes: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        mail,
        request_id: None,
    };
    let imported = store.import(&message).await.map_err(|e| {
        tracing::warn!(error = %e, "Storing a message failed; it stays queued.");
        GmailError::Transient("storage".into())
    })?;
    Ok(match (imported, message.mail.from) {
        (crate::store::Imported::New(stored), Some(from)) => {
            Some(Arrival { message: stored, from, subject: message.mail.subject })
        }
        _ => None,
    })
}
