//! Rate limits shared by every gateway replica: GCRA buckets in Redis, checked by one Lua script.
//!
//! GCRA (the generic cell rate algorithm) keeps one number per bucket, the theoretical arrival
//! time (TAT) of the next call: a call is allowed when `TAT - burst * interval <= now`, and then
//! moves the TAT forward by one `interval`. All buckets of a call (the caller's and the tenant's)
//! are checked and advanced in one script, atomically and in one round trip: a refused call
//! consumes nothing, and the answer carries how long to wait. The script reads Redis' own clock
//! (`TIME`), so replicas with skewed clocks share one timeline.

use std::time::Duration;

use fred::interfaces::ClientLike;
use fred::types::config::Options;
use fred::types::{ClusterHash, CustomCommand, Value};

use crate::config::Rate;

/// The script: `KEYS[i]` is a bucket, `ARGV[2i-1]` its emission interval and `ARGV[2i]` its burst
/// tolerance, both in microseconds. Returns 0 when allowed, else the microseconds to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local wait = 0
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - tolerance
  if allow_at > now and allow_at - now > wait then wait = allow_at - now end
  tats[i] = new_tat
end
if wait > 0 then return math.ceil(wait) end
for i, key in ipairs(KEYS) do
  local ttl = math.ceil((tats[i] - now) / 1000) + 1
  redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', ttl)
end
return 0
";

/// One bucket a call is counted in.
#[derive(Debug, Clone)]
pub struct Bucket {
    /// Redis key (already prefixed).
    pub key: String,
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

/// GCRA buckets in Redis.
#[derive(Clone)]
pub struct RateLimiter {
    redis: fred::clients::Client,
    prefix: String,
    timeout: Duration,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("prefix", &self.prefix).field("timeout", &self.timeout).finish()
    }
}

impl RateLimiter {
    /// Buckets under `prefix` (the configured `redis.key_prefix`), each check bounded by `timeout`.
    pub fn new(redis: fred::clients::Client, prefix: &str, timeout: Duration) -> Self {
        Self { redis, prefix: prefix.to_owned(), timeout }
    }

    /// The key of bucket `kind:id`: `<prefix>ratelimit:<kind>:<id>`.
    pub fn key(&self, kind: &str, id: &str) -> String {
        format!("{}ratelimit:{kind}:{id}", self.prefix)
    }

    /// Counts one call in every enabled bucket, or in none if any is full.
    pub async fn check(&self, buckets: &[Bucket]) -> Result<Decision, LimiterUnavailable> {
        let buckets: Vec<&Bucket> = buckets.iter().filter(|b| b.rate.enabled()).collect();
        if buckets.is_empty() {
            return Ok(Decision::Allow);
        }
        let mut args: Vec<Value> = Vec::with_capacity(2 + buckets.len() * 3);
        args.push(GCRA.into());
        args.push(i64::try_from(buckets.len()).unwrap_or(i64::MAX).into());
        for bucket in &buckets {
            args.push(bucket.key.clone().into());
        }
        for bucket in &buckets {
            let interval = 1_000_000.0 / bucket.rate.per_second;
            args.push(format!("{interval:.0}").into());
            args.push(format!("{:.0}", interval * f64::from(bucket.rate.burst)).into());
        }
        // Fail fast while disconnected instead of queueing behind the reconnect: the caller
        // decides what an outage means (see the crate docs).
        let options =
            Options { fail_fast: true, timeout: Some(self.timeout), max_attempts: Some(1), ..Default::default() };
        let command = CustomCommand::new_static("EVAL", ClusterHash::FirstKey, false);
        let client = self.redis.with_options(&options);
        let call = client.custom::<i64, Value>(command, args);
        let wait = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| LimiterUnavailable("timed out".into()))?
            .map_err(|e| LimiterUnavailable(e.to_string()))?;
        Ok(match u64::try_from(wait) {
            Ok(0) | Err(_) => Decision::Allow,
            Ok(micros) => Decision::Deny(Duration::from_micros(micros)),
        })
    }
}
