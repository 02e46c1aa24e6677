//! The Gateway: the only entry point from outside (behind Envoy). A generic gRPC reverse proxy that
//! authenticates, authorizes, rate-limits and routes every call, without knowing any RPC by name.
//!
//! # Layout
//!
//! - `config`: [`Config`] — defaults plus `SENTRA_GATEWAY__*` variables (upstreams, limits, edge).
//! - [`policy`]: the `sentra.auth.v1.rule` of every RPC, read from the descriptor set at start-up.
//! - [`proxy`]: [`proxy::Edge`], the fallback route of the gateway's router: every path that is
//!   not the gateway's own `grpc.health.v1.Health` or reflection goes through it.
//! - [`lookups`]: what the gateway asks Tenancy (signing keys, host name -> brand), cached.
//! - [`ratelimit`]: GCRA buckets in Redis behind one Lua script, spent through short local leases.
//! - [`upstream`]: the HTTP/2 client that forwards calls: pooled connections, balanced per call.
//! - [`hygiene`]: header stripping, deadlines, streaming message-size checks.
//! - [`error`]: [`error::EdgeError`] and its one mapping to `tonic::Status`.
//! - [`Application`]: builds all of it and serves it through `sentra_runtime::server::ServiceHost`
//!   (which adds the request context layer, health and reflection).
//!
//! # Routing
//!
//! `/sentra.<context>.v1.<Service>/<Method>` goes to the upstream of `<context>` (`tenancy`,
//! `sales`, `finance`, `comm`; `upstreams.<context>` lists one or more `http://host:port`). Calls
//! ride `edge.connections_per_upstream` pooled HTTP/2 connections per address (the `h2` crate,
//! driven from the call's own task, see [`upstream`]), taken round robin per call across a
//! context's addresses; request and response bodies stream through untouched (never decoded). A
//! path the contracts do not declare (with a usable rule) is answered `UNIMPLEMENTED` without
//! touching any upstream. Adding an RPC to a contract needs no gateway change: the rule comes with
//! it.
//!
//! One path is not an RPC: `/email/unsubscribe`, the one-click unsubscribe link of client-facing
//! mail (RFC 8058), goes to Comm as it came (public, rate-limited per address, body not framed).
//!
//! # Public methods and the policy
//!
//! The contracts declare every RPC's rule; the gateway builds `path -> rule` once at start-up.
//! `sentra_proto::FILE_DESCRIPTOR_SET` loses custom options (it is encoded from `prost_types`), so
//! `build.rs` compiles the same `proto/` files with protox's option-preserving encoder, and a unit
//! test checks that both sets name the same RPCs and that every RPC has a valid rule naming a
//! permission of the matrix at the right scope. The scopes:
//!
//! - `PUBLIC`: no token needed (one sent along is ignored); rate-limited per client IP.
//! - `AUTHENTICATED`: a valid access token.
//! - `ORGANIZATION`: `principal.can(permission, None)`.
//! - `BRAND`: the permission on the brand the request names. Bodies are not decoded, so the brand
//!   is taken from the caller's `x-sentra-brand-id` metadata if sent (a selector: checked, and
//!   forwarded only once the check passed), else the brand resolved from the host name; with
//!   neither, the call passes if the principal holds the permission on at least one brand, and
//!   the service checks the brand its body names (defence in depth: services always check again).
//!
//! Tokens are verified with keys fetched from Tenancy's `GetSigningKeys` (cached; an unknown `kid`
//! triggers a refetch, at most every 5 s). Missing, malformed, expired or tampered tokens are
//! `UNAUTHENTICATED`; missing rights are `PERMISSION_DENIED`; both before any upstream is called.
//! A token that passed is remembered (`edge.token_cache` entries, 10 000 by default), so the
//! Ed25519 signature of a session's token is checked once per gateway replica, not on every call;
//! its expiry is still checked on every call, and a change of Tenancy's key set has every
//! remembered token verified again.
//!
//! # White-label
//!
//! The host name (`x-forwarded-host`, else `:authority`/`host`) is resolved to a brand through
//! Tenancy's `ResolveBrandByDomain`, cached in process for `edge.brand_cache_ttl` (misses too). A
//! portal token on a domain of another brand, and a staff token on a domain of another
//! organization, are refused with `PERMISSION_DENIED`. Upstreams receive `x-sentra-brand-id` (the
//! brand authorized for BRAND rules, otherwise the host's brand) and `x-sentra-organization-id`
//! (the caller's organization, or the host brand's for public calls).
//!
//! # Rate limits
//!
//! GCRA in Redis over all the buckets of a call, checked atomically by one Lua script: per user id
//! for authenticated calls, per client IP for anonymous ones (the right-most `x-forwarded-for`
//! entry, which Envoy appends from the connection, else the TCP peer), and per organization
//! overall. Over the limit: `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo` delay. Keys are
//! `<redis.key_prefix>ratelimit:<user|ip|tenant>:<id>`.
//!
//! Every call is counted, but not every call goes to Redis: when a bucket has no local *lease*,
//! the script reserves up to what the bucket's rate earns in `limits.lease` (50 ms; 1 to 100
//! cells, never more than the burst) and the replica spends those cells on the next calls. Cells
//! are counted in Redis when reserved, so replicas together never exceed a limit (unused cells
//! make it slightly stricter), and a lease expires after `limits.lease`, so leftovers never become
//! a later burst. Limits that earn less than two cells per lease (5/s per IP, 20/s per user by
//! default) still ask Redis on every call, exactly as without leases; busy buckets (a tenant at
//! 300/s, a load test at any rate) ask once per lease. `limits.lease = 0` turns leases off. The
//! script runs by `EVALSHA` (reloaded if Redis forgot it). Details in [`ratelimit`].
//!
//! **Redis down** (no answer within `limits.redis_timeout`, or disconnected): authenticated calls
//! fail *open* with a warning — their tokens were verified, and an outage of a counter should not
//! become an outage of the product — while anonymous calls (login, refresh, sign-up) fail
//! *closed* with `UNAVAILABLE`, because the limiter is what stops password guessing. A live lease
//! keeps serving its already counted cells meanwhile (for at most `limits.lease`).
//!
//! # Header hygiene
//!
//! Every inbound `x-sentra-*` header is removed before anything reads the call; the gateway then
//! sets its own. `grpc-timeout` gets `edge.default_deadline` when absent and is capped at
//! `edge.max_deadline` (the gateway also stops waiting for response headers at that deadline; both
//! header values are formatted once at start-up).
//! `x-request-id` and `traceparent` are kept or created by the runtime's `RequestContextLayer`
//! (which wraps this router) and forwarded with the other headers. Request messages larger than
//! `edge.max_message_bytes` are refused (`RESOURCE_EXHAUSTED`) as their length prefix streams past.
//!
//! # Cost per call
//!
//! The gateway is on the path of every call, so the path is kept free of avoidable work: no Redis
//! round trip while a lease lasts, no Ed25519 check for a token already verified, no task or
//! channel hop between the call and its upstream stream (see [`upstream`]), no per-call strings
//! for paths, rate-limit keys, host names, tokens, deadlines or id headers (borrowed, or
//! formatted on the stack or once at start-up), and rare slow paths (a Redis reservation, a brand
//! lookup) boxed so that every call's future stays small as the server's layers move it. What
//! remains is the second HTTP/2 hop itself (one more socket each way, whose writes and loopback
//! delivery are the largest share; decode and re-encode of headers), the runtime's
//! request-context layer, and the checks above. `cargo bench -p sentra-gateway` measures it
//! against direct calls (see `benches/edge.rs`).

pub mod config;
pub mod error;
pub mod hygiene;
pub mod lookups;
pub mod policy;
pub mod proxy;
pub mod ratelimit;
pub mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use config::{AddressList, Config, Limits, Rate, Upstreams};
use sentra_auth::Verifier;
use sentra_runtime::health::{Probe, RedisProbe};
use sentra_runtime::server::{ServeError, ServiceHost};

use crate::lookups::BrandResolver;
use crate::policy::Policy;
use crate::proxy::Edge;
use crate::ratelimit::RateLimiter;
use sentra_auth::{TenancyKeys, TenancySessions};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The Redis client could not be created.
    #[error(transparent)]
    Redis(#[from] sentra_runtime::redis::RedisSetupError),
    /// The listener could not be bound.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The built-in descriptor set could not be read.
    #[error("contract descriptor set unreadable")]
    Contracts(#[from] prost::DecodeError),
    /// An upstream address is not a valid URI (for the gateway's own Tenancy channel).
    #[error("invalid upstream address")]
    Lookups(#[from] tonic::transport::Error),
    /// An upstream address is not an `http://host:port` URI.
    #[error(transparent)]
    Upstream(#[from] upstream::InvalidAddress),
    /// Tenancy (the source of keys and brands) has no upstream address.
    #[error("upstreams.tenancy is empty")]
    NoTenancy,
    /// The client TLS files could not be loaded.
    #[error("client TLS")]
    Tls(#[from] sentra_runtime::tls::TlsError),
}

/// The built gateway, bound and ready to serve.
pub struct Application {
    host: ServiceHost,
    config: Config,
    redis: fred::clients::Client,
    edge: Arc<Edge>,
}

impl Application {
    /// Reads the policy, creates the upstream channels (connected lazily) and binds;
    /// `config.server.port = 0` binds a free port.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let policy = Policy::from_contracts()?;
        for error in policy.errors() {
            tracing::error!(%error, "RPC without a usable access rule; the gateway refuses it.");
        }
        let connector = sentra_runtime::tls::Connector::new(&config.client_tls)?;
        let upstreams = proxy::upstreams(&config.upstreams.contexts(), &config.edge, &connector)?;
        let tenancy = lookups::tenancy_channel(&config.upstreams.tenancy, &config.edge, &connector)?
            .ok_or(StartupError::NoTenancy)?;
        let verifier = Verifier::new(Arc::new(TenancyKeys::new(tenancy.clone(), config.edge.lookup_timeout)))
            .with_token_cache(config.edge.token_cache)
            .with_sessions(
                Arc::new(TenancySessions::new(tenancy.clone(), config.edge.lookup_timeout)),
                config.edge.session_check,
            );
        let brands = BrandResolver::new(tenancy, config.edge.brand_cache_ttl, config.edge.lookup_timeout);
        let redis = sentra_runtime::redis::connect(&config.redis)?;
        let limiter =
            RateLimiter::new(redis.clone(), &config.redis.key_prefix, config.limits.redis_timeout, config.limits.lease);
        // One limit: the front door refuses what the proxy would refuse as it streams.
        let mut server = config.server.clone();
        server.max_message_bytes = config.edge.max_message_bytes;
        let host = ServiceHost::bind("gateway", &server, &[]).await?;
        let rejections = host.metrics().counters("sentra_ratelimit_rejections", "Calls refused by the rate limits");
        let edge = Arc::new(Edge {
            policy,
            upstreams,
            verifier,
            brands,
            limiter,
            limits: config.limits.clone(),
            deadlines: hygiene::Deadlines::new(config.edge.default_deadline, config.edge.max_deadline),
            settings: config.edge.clone(),
            rejections,
        });
        Ok(Self { host, config, redis, edge })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.host.local_addr()
    }

    /// The admin listener's address (`/metrics`), when `server.admin_port` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.host.admin_addr()
    }

    /// Serves until `shutdown` resolves, then drains and stops.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let probes: Vec<Arc<dyn Probe>> = vec![Arc::new(RedisProbe(self.redis.clone()))];
        // Health and reflection are added as named routes by the host; everything else falls back
        // to the edge.
        let routes = tonic::service::Routes::from(axum::Router::new().fallback_service(proxy::service(self.edge)));
        self.host.serve(routes, probes, self.config.health, self.config.shutdown, shutdown).await
    }
}
