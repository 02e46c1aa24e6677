//! Rate limits shared by every gateway replica: GCRA buckets in Redis, reserved in short leases.
//!
//! GCRA (the generic cell rate algorithm) keeps one number per bucket, the theoretical arrival
//! time (TAT) of the next call: a call is allowed when `TAT + interval - burst * interval <= now`,
//! and then moves the TAT forward by one `interval`. All buckets of a call (the caller's and the
//! tenant's) are checked and advanced in one script, atomically and in one round trip: a refused
//! call consumes nothing, and the answer carries how long to wait. The script reads Redis' own
//! clock (`TIME`), so replicas with skewed clocks share one timeline.
//!
//! # Leases
//!
//! Asking Redis on every call would put a network round trip (and a Lua run) on the path of every
//! call, so a replica reserves cells in small *leases*: when a bucket has no live local lease, the
//! script grants up to `N` cells for it at once, where `N` is what the bucket's rate earns in
//! `limits.lease` (50 ms by default), at least 1 and at most [`MAX_LEASE_CELLS`] (and never more
//! than the burst). GCRA grants `k <= N` cells: the largest `k` with
//! `TAT + k * interval - burst * interval <= now`; when `k < 1` for any bucket of the call, the call
//! is refused with the wait and nothing is reserved. The call takes one cell, the replica keeps the
//! other `k - 1` and spends them on later calls without asking Redis.
//!
//! Cells are counted in Redis when they are reserved, so all replicas together never exceed a
//! limit; a lease only makes it a little stricter (cells a replica reserved but did not use are
//! lost). A lease expires `limits.lease` after it was granted, so unused cells cannot pile up into
//! a later burst: every call is spent within `limits.lease` of the reservation that covers it, so
//! the calls of any interval fit the limit of that interval stretched by `limits.lease` (at most
//! `N` cells early). Small limits (`N = 1`, e.g. 5/s per IP with a 50 ms lease) behave exactly as
//! without leases: one Redis check per call. `limits.lease = 0` turns leases off.
//!
//! The script is sent once (`SCRIPT LOAD`) and then run by its SHA (`EVALSHA`); when Redis has
//! forgotten it (restart, `SCRIPT FLUSH`, fail-over) the call falls back to `EVAL` once.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use fred::interfaces::ClientLike;
use fred::types::config::Options;
use fred::types::{ClusterHash, CustomCommand, Value};
use uuid::Uuid;

use crate::config::Rate;

/// The script: `KEYS[i]` is a bucket; `ARGV[3i-2]` its emission interval and `ARGV[3i-1]` its
/// burst tolerance, both in microseconds, and `ARGV[3i]` the cells wanted (at least 1). Returns
/// `{wait}` (microseconds, > 0) when any bucket cannot grant one cell, else `{0, k1, k2, ...}`, the
/// cells granted per bucket.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local grants = {0}
local wait = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[3 * i - 2])
  local tolerance = tonumber(ARGV[3 * i - 1])
  local want = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local k = want
  if interval > 0 then
    k = math.floor((now + tolerance - tat) / interval)
    if k > want then k = want end
  end
  if k < 1 then
    local w = tat + interval - tolerance - now
    if w > wait then wait = w end
  end
  tats[i] = tat + k * interval
  grants[i + 1] = k
end
if wait > 0 then return {math.ceil(wait)} end
for i, key in ipairs(KEYS) do
  local ttl = math.ceil((tats[i] - now) / 1000) + 1
  redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', ttl)
end
return grants
";

/// Most cells one lease holds, however high the rate: bounds what an idle replica can hold back.
pub const MAX_LEASE_CELLS: u32 = 100;

/// Buckets with a lease kept at once; past that, expired leases are swept (and if all are live,
/// all are dropped: losing leased cells only makes the limit stricter), so made-up client
/// addresses cannot grow the table without bound.
const MAX_LEASES: usize = 10_000;

/// What a bucket counts calls of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subject {
    /// An authenticated principal.
    User(Uuid),
    /// A client address, for calls without a principal.
    Ip(IpAddr),
    /// An organization, across its users and its brands' public traffic.
    Tenant(Uuid),
}

impl Subject {
    fn kind(&self) -> &'static str {
        match self {
            Subject::User(_) => "user",
            Subject::Ip(_) => "ip",
            Subject::Tenant(_) => "tenant",
        }
    }
}

/// One bucket a call is counted in.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    /// Whose calls it counts.
    pub subject: Subject,
    /// Its limit.
    pub rate: Rate,
}

/// What the limiter says about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Over the limit: retry after this long.
    Deny(Duration),
}

/// Redis did not answer in time, or failed.
#[derive(Debug, thiserror::Error)]
#[error("rate limiter unavailable: {0}")]
pub struct LimiterUnavailable(pub String);

/// Cells of one bucket this replica reserved in Redis and has not spent yet.
#[derive(Debug, Clone, Copy)]
struct Lease {
    cells: u32,
    expires: Instant,
}

impl Lease {
    fn live(&self, now: Instant) -> bool {
        now < self.expires
    }
}

/// GCRA buckets in Redis, with this replica's leases. Clones share the leases.
#[derive(Clone)]
pub struct RateLimiter {
    redis: fred::clients::Client,
    prefix: String,
    timeout: Duration,
    lease: Duration,
    leases: Arc<Mutex<HashMap<Subject, Lease>>>,
    sha: Arc<OnceLock<Value>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("lease", &self.lease)
            .finish()
    }
}

impl RateLimiter {
    /// Buckets under `prefix` (the configured `redis.key_prefix`), each Redis check bounded by
    /// `timeout`, leases living `lease` (zero: no leases, one Redis check per call).
    pub fn new(redis: fred::clients::Client, prefix: &str, timeout: Duration, lease: Duration) -> Self {
        Self { redis, prefix: prefix.to_owned(), timeout, lease, leases: Arc::default(), sha: Arc::default() }
    }

    /// The Redis key of a bucket: `<prefix>ratelimit:<user|ip|tenant>:<id>`.
    pub fn key(&self, subject: &Subject) -> String {
        match subject {
            Subject::User(id) | Subject::Tenant(id) => format!("{}ratelimit:{}:{id}", self.prefix, subject.kind()),
            Subject::Ip(ip) => format!("{}ratelimit:{}:{ip}", self.prefix, subject.kind()),
        }
    }

    /// How many cells one reservation asks for a bucket of `rate`: what the rate earns in one
    /// lease, at least 1, at most [`MAX_LEASE_CELLS`] and the burst.
    pub fn lease_cells(&self, rate: &Rate) -> u32 {
        let earned = rate.per_second * self.lease.as_secs_f64();
        // Saturating float -> int conversion; NaN (impossible for an enabled rate) would give 0.
        let earned = earned.floor().min(f64::from(MAX_LEASE_CELLS)) as u32;
        earned.min(rate.burst).max(1)
    }

    /// Counts one call in every enabled bucket, or in none if any is full.
    pub async fn check(&self, buckets: &[Bucket]) -> Result<Decision, LimiterUnavailable> {
        let now = Instant::now();
        // Fast path: every bucket still has a leased cell. Cells are taken under the lock before
        // Redis is asked for the others, and given back if the call ends up refused.
        let missing: Vec<&Bucket> = {
            let mut leases = self.lock();
            let mut missing = Vec::new();
            for bucket in buckets.iter().filter(|b| b.rate.enabled()) {
                match leases.get_mut(&bucket.subject) {
                    Some(lease) if lease.live(now) && lease.cells > 0 => lease.cells -= 1,
                    _ => missing.push(bucket),
                }
            }
            missing
        };
        if missing.is_empty() {
            return Ok(Decision::Allow);
        }
        // Boxed: the Redis call's future is several KB, and held inline it would make every
        // call's future (moved through the server's layers) that large, lease or not.
        let answer = Box::pin(self.reserve(&missing)).await;
        let now = Instant::now();
        let mut leases = self.lock();
        match answer {
            Ok(Reserved::Granted(grants)) => {
                for (bucket, granted) in missing.iter().zip(grants) {
                    // One cell is this call's; the rest is leased.
                    self.deposit(&mut leases, bucket.subject, granted.saturating_sub(1), now);
                }
                Ok(Decision::Allow)
            }
            Ok(Reserved::Denied(wait)) => {
                give_back(&mut leases, buckets, &missing, now);
                Ok(Decision::Deny(wait))
            }
            Err(error) => {
                give_back(&mut leases, buckets, &missing, now);
                Err(error)
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Subject, Lease>> {
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `cells` freshly reserved cells of `subject`. Added to a live lease, they expire with
    /// it (the earlier reservation bounds them all); otherwise they start a new lease.
    fn deposit(&self, leases: &mut HashMap<Subject, Lease>, subject: Subject, cells: u32, now: Instant) {
        if cells == 0 {
            return;
        }
        if leases.len() >= MAX_LEASES && !leases.contains_key(&subject) {
            leases.retain(|_, lease| lease.live(now) && lease.cells > 0);
            if leases.len() >= MAX_LEASES {
                leases.clear();
            }
        }
        let fresh = Lease { cells, expires: now + self.lease };
        match leases.entry(subject) {
            Entry::Occupied(mut entry) => {
                let lease = entry.get_mut();
                if lease.live(now) {
                    lease.cells = lease.cells.saturating_add(cells);
                } else {
                    *lease = fresh;
                }
            }
            Entry::Vacant(entry) => {
                entry.insert(fresh);
            }
        }
    }

    /// Reserves cells in Redis for `buckets`, all or none.
    async fn reserve(&self, buckets: &[&Bucket]) -> Result<Reserved, LimiterUnavailable> {
        let mut args: Vec<Value> = Vec::with_capacity(2 + buckets.len() * 4);
        args.push(Value::Null); // the script or its SHA, below
        args.push(i64::try_from(buckets.len()).unwrap_or(i64::MAX).into());
        for bucket in buckets {
            args.push(self.key(&bucket.subject).into());
        }
        for bucket in buckets {
            let interval = 1_000_000.0 / bucket.rate.per_second;
            // Whole microseconds, as Redis' clock; f64 -> i64 saturates.
            args.push((interval.round() as i64).into());
            args.push(((interval * f64::from(bucket.rate.burst)).round() as i64).into());
            args.push(i64::from(self.lease_cells(&bucket.rate)).into());
        }
        // Fail fast while disconnected instead of queueing behind the reconnect: the caller
        // decides what an outage means (see the crate docs).
        let options =
            Options { fail_fast: true, timeout: Some(self.timeout), max_attempts: Some(1), ..Default::default() };
        let client = self.redis.with_options(&options);
        let call = async {
            args[0] = self.script_sha(&client).await?;
            let evalsha = CustomCommand::new_static("EVALSHA", ClusterHash::FirstKey, false);
            match client.custom::<Value, Value>(evalsha, args.clone()).await {
                Err(error) if error.details().starts_with("NOSCRIPT") => {
                    // Redis lost its script cache; EVAL runs the text and caches it again.
                    args[0] = GCRA.into();
                    let eval = CustomCommand::new_static("EVAL", ClusterHash::FirstKey, false);
                    client.custom::<Value, Value>(eval, args).await
                }
                other => other,
            }
        };
        let answer = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| LimiterUnavailable("timed out".into()))?
            .map_err(|e| LimiterUnavailable(e.to_string()))?;
        Reserved::parse(answer, buckets.len())
    }

    /// The script's SHA, loaded into Redis on first use.
    async fn script_sha<C: ClientLike>(&self, client: &C) -> Result<Value, fred::error::Error> {
        if let Some(sha) = self.sha.get() {
            return Ok(sha.clone());
        }
        let load = CustomCommand::new_static("SCRIPT", ClusterHash::Random, false);
        let sha: Value = client.custom(load, vec![Value::from("LOAD"), Value::from(GCRA)]).await?;
        // Two calls may load it at once; the SHA is the same.
        Ok(self.sha.get_or_init(|| sha).clone())
    }
}

/// Returns the cells a refused call took from live leases.
fn give_back(leases: &mut HashMap<Subject, Lease>, buckets: &[Bucket], missing: &[&Bucket], now: Instant) {
    for bucket in buckets.iter().filter(|b| b.rate.enabled()) {
        if missing.iter().any(|m| m.subject == bucket.subject) {
            continue;
        }
        if let Some(lease) = leases.get_mut(&bucket.subject)
            && lease.live(now)
        {
            lease.cells = lease.cells.saturating_add(1);
        }
    }
}

/// The script's answer.
#[derive(Debug, PartialEq, Eq)]
enum Reserved {
    /// Cells granted per bucket (each at least 1), in the order asked.
    Granted(Vec<u32>),
    /// Nothing reserved; retry after this long.
    Denied(Duration),
}

impl Reserved {
    fn parse(answer: Value, buckets: usize) -> Result<Self, LimiterUnavailable> {
        let malformed = || LimiterUnavailable("malformed answer from the rate-limit script".into());
        let Value::Array(items) = answer else { return Err(malformed()) };
        let mut numbers = items.into_iter().map(|v| v.as_i64());
        let wait = numbers.next().flatten().ok_or_else(malformed)?;
        if wait > 0 {
            return Ok(Reserved::Denied(Duration::from_micros(wait.unsigned_abs())));
        }
        let grants = numbers
            .map(|k| k.and_then(|k| u32::try_from(k).ok()).filter(|k| *k >= 1))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(malformed)?;
        if grants.len() != buckets {
            return Err(malformed());
        }
        Ok(Reserved::Granted(grants))
    }
}

#[cfg(test)]
mod tests {
    //! Against the real local Redis, each test under its own key prefix.

    use super::*;
    use fred::interfaces::KeysInterface;

    fn redis() -> fred::clients::Client {
        let config =
            sentra_runtime::config::RedisConfig { url: sentra_testkit::redis_url().into(), ..Default::default() };
        sentra_runtime::redis::connect(&config).expect("redis client")
    }

    async fn limiter(lease: Duration) -> RateLimiter {
        let redis = redis();
        redis.wait_for_connect().await.expect("redis up");
        let prefix = format!("{}:", sentra_testkit::unique_prefix("ratelimit"));
        RateLimiter::new(redis, &prefix, Duration::from_secs(2), lease)
    }

    /// The bucket's TAT in Redis (microseconds on Redis' clock), if any.
    async fn tat(limiter: &RateLimiter, subject: &Subject) -> Option<i64> {
        let value: Option<String> = limiter.redis.get(limiter.key(subject)).await.expect("GET");
        value.map(|v| v.parse().expect("a number"))
    }

    fn user() -> Subject {
        Subject::User(Uuid::new_v4())
    }

    #[tokio::test]
    async fn lease_sizes_follow_the_rate() {
        let limiter = limiter(Duration::from_millis(50)).await;
        assert_eq!(limiter.lease_cells(&Rate::new(1.0, 3)), 1);
        assert_eq!(limiter.lease_cells(&Rate::new(5.0, 20)), 1);
        assert_eq!(limiter.lease_cells(&Rate::new(300.0, 600)), 15);
        assert_eq!(limiter.lease_cells(&Rate::new(1000.0, 10)), 10, "never more than the burst");
        assert_eq!(limiter.lease_cells(&Rate::new(1e9, 1_000_000)), MAX_LEASE_CELLS);
        let off = self::limiter(Duration::ZERO).await;
        assert_eq!(off.lease_cells(&Rate::new(1e9, 1_000_000)), 1);
    }

    #[tokio::test]
    async fn small_limits_count_every_call_in_redis() {
        let limiter = limiter(Duration::from_millis(50)).await;
        let bucket = Bucket { subject: user(), rate: Rate::new(1.0, 3) };
        for _ in 0..3 {
            assert_eq!(limiter.check(&[bucket]).await.expect("redis"), Decision::Allow);
        }
        let Decision::Deny(wait) = limiter.check(&[bucket]).await.expect("redis") else {
            panic!("the fourth call is over the burst");
        };
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.lock().get(&bucket.subject).is_none(), "nothing is leased at N = 1");
    }

    #[tokio::test]
    async fn a_lease_serves_later_calls_without_redis_and_counts_them_upfront() {
        let limiter = limiter(Duration::from_secs(5)).await;
        // 1000/s over a 5 s lease: capped at 100 cells; 1 ms per cell.
        let bucket = Bucket { subject: user(), rate: Rate::new(1000.0, 1000) };
        assert_eq!(limiter.check(&[bucket]).await.expect("redis"), Decision::Allow);
        let after_first = tat(&limiter, &bucket.subject).await.expect("a TAT");
        for _ in 0..99 {
            assert_eq!(limiter.check(&[bucket]).await.expect("redis"), Decision::Allow);
        }
        assert_eq!(tat(&limiter, &bucket.subject).await, Some(after_first), "the lease served 99 calls locally");
        assert_eq!(limiter.lock().get(&bucket.subject).map(|l| l.cells), Some(0));
        // The 101st call reserves the next 100 cells: 100 ms further.
        assert_eq!(limiter.check(&[bucket]).await.expect("redis"), Decision::Allow);
        let after_second = tat(&limiter, &bucket.subject).await.expect("a TAT");
        assert_eq!(after_second - after_first, 100 * 1000);
    }

    #[tokio::test]
    async fn a_lease_grants_only_what_the_bucket_holds() {
        let limiter = limiter(Duration::from_secs(5)).await;
        // Burst 10 at 1000/s: 10 cells at once at most, then the bucket is empty.
        let bucket = Bucket { subject: user(), rate: Rate::new(1000.0, 10) };
        let mut allowed = 0;
        for _ in 0..11 {
            if limiter.check(&[bucket]).await.expect("redis") == Decision::Allow {
                allowed += 1;
            }
        }
        // 10 from the burst, plus whatever 1 ms cells elapsed meanwhile.
        assert!((10..=11).contains(&allowed), "{allowed}");
    }

    #[tokio::test]
    async fn expired_leases_are_not_spent() {
        let limiter = limiter(Duration::from_millis(50)).await;
        // 2000/s over 50 ms: 100 cells per lease.
        let bucket = Bucket { subject: user(), rate: Rate::new(2000.0, 2000) };
        assert_eq!(limiter.check(&[bucket]).await.expect("redis"), Decision::Allow);
        let first = tat(&limiter, &bucket.subject).await.expect("a TAT");
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(limiter.check(&[bucket]).await.expect("redis"), Decision::Allow);
        let second = tat(&limiter, &bucket.subject).await.expect("a TAT");
        assert!(second > first, "the expired lease was dropped and a new one reserved");
        assert_eq!(limiter.lock().get(&bucket.subject).map(|l| l.cells), Some(99));
    }

    #[tokio::test]
    async fn a_refused_call_consumes_nothing_in_any_bucket() {
        let limiter = limiter(Duration::from_secs(5)).await;
        let caller = Bucket { subject: user(), rate: Rate::new(1000.0, 1000) };
        let tenant = Bucket { subject: Subject::Tenant(Uuid::new_v4()), rate: Rate::new(1.0, 1) };
        // The caller's lease is taken; the tenant's single cell is spent.
        assert_eq!(limiter.check(&[caller, tenant]).await.expect("redis"), Decision::Allow);
        let leased = limiter.lock().get(&caller.subject).map(|l| l.cells).expect("a lease");
        let tenant_tat = tat(&limiter, &tenant.subject).await;
        let Decision::Deny(wait) = limiter.check(&[caller, tenant]).await.expect("redis") else {
            panic!("the tenant is over its limit");
        };
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(limiter.lock().get(&caller.subject).map(|l| l.cells), Some(leased), "the cell was given back");
        assert_eq!(tat(&limiter, &tenant.subject).await, tenant_tat);
        // Refused in Redis for the tenant while the caller needs a new lease: nothing reserved.
        limiter.lock().clear();
        let caller_tat = tat(&limiter, &caller.subject).await;
        assert!(matches!(limiter.check(&[caller, tenant]).await.expect("redis"), Decision::Deny(_)));
        assert_eq!(tat(&limiter, &caller.subject).await, caller_tat);
    }

    #[tokio::test]
    async fn replicas_sharing_a_bucket_never_exceed_the_limit() {
        let first = limiter(Duration::from_millis(50)).await;
        // A second replica: its own leases, the same Redis keys.
        let second = RateLimiter::new(redis(), &first.prefix, Duration::from_secs(2), Duration::from_millis(50));
        second.redis.wait_for_connect().await.expect("redis up");
        // 200/s, burst 20: 10 cells per lease.
        let bucket = Bucket { subject: user(), rate: Rate::new(200.0, 20) };
        let started = Instant::now();
        let mut allowed = 0u32;
        while started.elapsed() < Duration::from_millis(500) {
            for limiter in [&first, &second] {
                if limiter.check(&[bucket]).await.expect("redis") == Decision::Allow {
                    allowed += 1;
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let ceiling = 20.0 + 200.0 * elapsed + 1.0;
        assert!(f64::from(allowed) <= ceiling, "{allowed} calls allowed, at most {ceiling:.0} permitted");
        assert!(f64::from(allowed) >= 0.5 * 200.0 * elapsed, "leases must not starve the bucket: {allowed}");
    }

    #[tokio::test]
    async fn the_script_is_reloaded_when_redis_forgot_it() {
        let limiter = limiter(Duration::ZERO).await;
        let bucket = Bucket { subject: user(), rate: Rate::new(1000.0, 1000) };
        assert_eq!(limiter.check(&[bucket]).await.expect("redis"), Decision::Allow);
        // A SHA Redis never saw stands for a flushed script cache (without flushing the shared
        // server's cache under other tests).
        let limiter = RateLimiter { sha: Arc::new(OnceLock::from(Value::from("0".repeat(40)))), ..limiter };
        assert_eq!(limiter.check(&[bucket]).await.expect("redis"), Decision::Allow);
    }

    #[test]
    fn answers_are_parsed_strictly() {
        let array = |items: &[i64]| Value::Array(items.iter().map(|i| Value::Integer(*i)).collect());
        assert_eq!(Reserved::parse(array(&[0, 5, 1]), 2).ok(), Some(Reserved::Granted(vec![5, 1])));
        assert_eq!(Reserved::parse(array(&[1500]), 2).ok(), Some(Reserved::Denied(Duration::from_micros(1500))));
        assert!(Reserved::parse(array(&[0, 5]), 2).is_err());
        assert!(Reserved::parse(array(&[0, 0]), 1).is_err());
        assert!(Reserved::parse(Value::Integer(0), 1).is_err());
    }
}
