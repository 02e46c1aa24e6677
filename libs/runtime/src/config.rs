//! Layered configuration: defaults in code, then `SENTRA_<SERVICE>__<KEY>` environment variables.
//!
//! Nested keys use a double underscore: `SENTRA_SALES__DATABASE__URL` sets `database.url` of the
//! sales service. The service's `Default` is serialized as the bottom layer, so a variable
//! overrides only the one value it names and every other value keeps the *service's* default
//! (its port, its schema), not the default of the nested type. Secrets are [`SecretString`] and
//! never appear in `Debug` output or logs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Serialized};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

/// A configuration that could not be read; the message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(#[from] Box<figment::Error>);

/// Loads a service's configuration: `T::default()` values overridden by `SENTRA_<SERVICE>__*`.
pub fn load<T: DeserializeOwned + Serialize + Default>(service: &str) -> Result<T, ConfigError> {
    let prefix = format!("SENTRA_{}__", service.to_ascii_uppercase());
    Figment::from(Serialized::defaults(T::default()))
        .merge(Env::prefixed(&prefix).split("__"))
        .extract()
        .map_err(|e| ConfigError(Box::new(e)))
}

/// Serializes a secret in clear. Only used to layer a config's defaults under the environment;
/// configs are never serialized for output.
pub fn expose<S: Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

/// Where a gRPC server listens.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Interface to bind.
    pub host: IpAddr,
    /// Port to bind; 0 picks a free port (tests).
    pub port: u16,
    /// Largest request message accepted, in bytes; larger ones are RESOURCE_EXHAUSTED.
    pub max_message_bytes: usize,
    /// Port of the admin listener (`/metrics`, `/healthz`, `/readyz`) on the same interface;
    /// unset means no admin listener, 0 picks a free port (tests).
    pub admin_port: Option<u16>,
    /// TLS (and mTLS) on the gRPC port; plaintext unless a certificate is configured.
    pub tls: crate::tls::ServerTls,
}

/// Default of [`ServerConfig::max_message_bytes`]: 4 MiB, gRPC's customary limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

impl ServerConfig {
    /// A server on all interfaces at `port`.
    pub fn on_port(port: u16) -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            admin_port: None,
            tls: crate::tls::ServerTls::default(),
        }
    }

    /// The socket address to bind.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self::on_port(0)
    }
}

/// PostgreSQL connection of a service; each service owns one schema.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct DatabaseConfig {
    /// Connection URL, for example `postgres://postgres@127.0.0.1:5432/sentra`.
    #[serde(serialize_with = "expose")]
    pub url: SecretString,
    /// The schema the service owns; its tables and its migration history live there.
    pub schema: String,
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long start-up keeps retrying an unreachable database before giving up.
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
    /// Apply the migrations at start-up (the default). With several replicas in production a
    /// migration Job runs them once per release (`sentra-<svc> migrate`) and the services only
    /// check that the schema is current (`SENTRA_<SVC>__DATABASE__MIGRATE=false`).
    pub migrate: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("postgres://postgres@127.0.0.1:5432/sentra"),
            schema: "public".into(),
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            migrate: true,
        }
    }
}

impl DatabaseConfig {
    /// The default connection, owning `schema`.
    pub fn for_schema(schema: &str) -> Self {
        Self { schema: schema.into(), ..Self::default() }
    }
}

/// Redis connection; every key the service writes starts with `key_prefix`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RedisConfig {
    /// Connection URL, for example `redis://127.0.0.1:6379`.
    #[serde(serialize_with = "expose")]
    pub url: SecretString,
    /// Prefix of every key, so tenants of one Redis (and parallel tests) never collide.
    pub key_prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self { url: SecretString::from("redis://127.0.0.1:6379"), key_prefix: "sentra:".into() }
    }
}

/// RabbitMQ connection; exchanges and queues are named with `prefix`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct AmqpConfig {
    /// Connection URL, for example `amqp://guest:guest@127.0.0.1:5672/%2f`.
    #[serde(serialize_with = "expose")]
    pub url: SecretString,
    /// Prefix of every exchange and queue name (empty in production, unique per test).
    pub prefix: String,
    /// Seconds after which the broker deletes a consumer's queues that nothing uses; 0 (the
    /// default, and production's) keeps them. Tests set it so their queues do not pile up.
    pub queue_expiry_secs: u64,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            prefix: String::new(),
            queue_expiry_secs: 0,
        }
    }
}

/// Log output.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct LogConfig {
    /// One JSON object per line (production) instead of human-readable lines.
    pub json: bool,
    /// `tracing` filter directives, overridden by `RUST_LOG` when set.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { json: false, filter: "info".into() }
    }
}

/// How a service stops.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct ShutdownConfig {
    /// Time between reporting NOT_SERVING and refusing new calls, so load balancers drain us.
    #[serde(with = "secs")]
    pub drain: Duration,
    /// Upper bound for in-flight calls to finish once new calls are refused.
    #[serde(with = "secs")]
    pub grace: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { drain: Duration::from_secs(1), grace: Duration::from_secs(20) }
    }
}

/// How often dependencies are probed for the health service.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct HealthConfig {
    /// Interval between two probes of every dependency.
    #[serde(with = "secs")]
    pub interval: Duration,
    /// A probe that takes longer than this counts as failed.
    #[serde(with = "secs")]
    pub timeout: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self { interval: Duration::from_secs(2), timeout: Duration::from_secs(2) }
    }
}

/// Durations are written as (fractional) seconds in configuration: `SENTRA_SALES__SHUTDOWN__GRACE=2.5`.
pub mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Reads seconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }

    /// Writes seconds.
    pub fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(duration.as_secs_f64())
    }
}
