//! The gateway's configuration: defaults in code, overridden by `SENTRA_GATEWAY__*` variables.

use std::time::Duration;

use sentra_runtime::config::{self, ConfigError, HealthConfig, LogConfig, RedisConfig, ServerConfig, ShutdownConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Everything the gateway reads at start-up.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listener (Envoy forwards here).
    pub server: ServerConfig,
    /// Redis (rate limits).
    pub redis: RedisConfig,
    /// Log output.
    pub log: LogConfig,
    /// Dependency probing.
    pub health: HealthConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Where each bounded context is served.
    pub upstreams: Upstreams,
    /// Rate limits.
    pub limits: Limits,
    /// Message size, deadlines and caches.
    pub edge: EdgeSettings,
    /// TLS towards `https://` upstreams: the CA and the gateway's client certificate (mTLS).
    pub client_tls: sentra_runtime::tls::ClientTls,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::on_port(3333),
            redis: RedisConfig::default(),
            log: LogConfig::default(),
            health: HealthConfig::default(),
            shutdown: ShutdownConfig::default(),
            upstreams: Upstreams::default(),
            limits: Limits::default(),
            edge: EdgeSettings::default(),
            client_tls: sentra_runtime::tls::ClientTls::default(),
        }
    }
}

impl Config {
    /// Defaults overridden by `SENTRA_GATEWAY__*` environment variables.
    pub fn load() -> Result<Self, ConfigError> {
        config::load("gateway")
    }
}

/// Upstream addresses per bounded context: `SENTRA_GATEWAY__UPSTREAMS__SALES=http://a:3003,http://b:3003`.
///
/// A call to `/sentra.<context>.v1.<Service>/<Method>` goes to the addresses of `<context>`,
/// balanced per call.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Upstreams {
    /// `sentra.tenancy.*` (also the source of signing keys and brand resolution).
    pub tenancy: AddressList,
    /// `sentra.comm.*`.
    pub comm: AddressList,
    /// `sentra.sales.*`.
    pub sales: AddressList,
    /// `sentra.finance.*`.
    pub finance: AddressList,
}

impl Default for Upstreams {
    fn default() -> Self {
        let local = |port: u16| AddressList(vec![format!("http://127.0.0.1:{port}")]);
        Self { tenancy: local(3001), comm: local(3002), sales: local(3003), finance: local(3004) }
    }
}

impl Upstreams {
    /// `(context, addresses)` for every configured context.
    pub fn contexts(&self) -> [(&'static str, &AddressList); 4] {
        [("tenancy", &self.tenancy), ("comm", &self.comm), ("sales", &self.sales), ("finance", &self.finance)]
    }
}

/// One or more `http://host:port` addresses, written comma-separated or as a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressList(pub Vec<String>);

impl Serialize for AddressList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for AddressList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let items = match Raw::deserialize(d)? {
            Raw::One(s) => s.split(',').map(str::to_owned).collect(),
            Raw::Many(v) => v,
        };
        Ok(AddressList(items.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()))
    }
}

/// One GCRA limit: a sustained rate plus a burst allowance. `per_second <= 0` disables it.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(default)]
pub struct Rate {
    /// Sustained calls per second.
    pub per_second: f64,
    /// Calls allowed at once on top of an idle bucket.
    pub burst: u32,
}

impl Default for Rate {
    fn default() -> Self {
        Self { per_second: 20.0, burst: 40 }
    }
}

impl Rate {
    /// A rate of `per_second` with `burst`.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self { per_second, burst }
    }

    /// Whether the limit applies at all.
    pub fn enabled(&self) -> bool {
        self.per_second > 0.0 && self.burst > 0
    }
}

/// Rate limits, kept in Redis so every gateway replica shares them.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Limits {
    /// Per authenticated principal (user id).
    pub user: Rate,
    /// Per client IP, for calls without a principal (login, refresh, sign-up).
    pub ip: Rate,
    /// Per organization, across all its users and its brands' public traffic.
    pub tenant: Rate,
    /// Upper bound of one rate-limit round trip; slower counts as "Redis down".
    #[serde(with = "secs")]
    pub redis_timeout: Duration,
    /// How long cells reserved ahead in Redis (a lease) may be spent by this replica; a lease
    /// holds what the bucket's rate earns in this time (1 to 100 cells). Zero: every call asks
    /// Redis. See `ratelimit`.
    #[serde(with = "secs")]
    pub lease: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            user: Rate::new(20.0, 40),
            ip: Rate::new(5.0, 20),
            tenant: Rate::new(300.0, 600),
            redis_timeout: Duration::from_millis(250),
            lease: Duration::from_millis(50),
        }
    }
}

/// Message size, deadlines and caches.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct EdgeSettings {
    /// Largest request message accepted (bytes of one gRPC message, not of the stream).
    pub max_message_bytes: usize,
    /// Deadline given to calls that arrive without `grpc-timeout`.
    #[serde(with = "secs")]
    pub default_deadline: Duration,
    /// Longest deadline a caller may ask for; longer ones are cut to this.
    #[serde(with = "secs")]
    pub max_deadline: Duration,
    /// How long a host name -> brand resolution is reused.
    #[serde(with = "secs")]
    pub brand_cache_ttl: Duration,
    /// Connect timeout towards upstreams.
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
    /// Timeout of the gateway's own calls to Tenancy (signing keys, brand resolution).
    #[serde(with = "secs")]
    pub lookup_timeout: Duration,
    /// HTTP/2 connections opened to each upstream address. One connection is served by one task
    /// on each side, so more than one spreads a busy upstream's framing work over its cores; few
    /// let one write carry the frames of several calls (2 measured cheaper than 4 per call in the
    /// edge bench, on 2 cores).
    pub connections_per_upstream: usize,
    /// How long an answer about a user's session (is their token's rights still current?) is
    /// reused: a revoked role or a deactivated user is refused within this plus a round trip.
    #[serde(with = "secs")]
    pub session_check: Duration,
    /// Verified access tokens remembered (0: verify the signature on every call). A remembered
    /// token still has its expiry checked on every call and is verified again when Tenancy's key
    /// set changes; see `sentra_auth::Verifier::with_token_cache`.
    pub token_cache: usize,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 * 1024 * 1024,
            session_check: sentra_auth::DEFAULT_SESSION_TTL,
            default_deadline: Duration::from_secs(10),
            max_deadline: Duration::from_secs(60),
            brand_cache_ttl: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(1),
            lookup_timeout: Duration::from_secs(2),
            connections_per_upstream: 2,
            token_cache: 10_000,
        }
    }
}

/// Durations are (fractional) seconds in configuration, as in every Sentra service.
use sentra_runtime::config::secs;
