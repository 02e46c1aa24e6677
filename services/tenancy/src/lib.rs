//! The Tenancy service: organizations, brands, users, brand access, portal identities and sign-in.
//!
//! Every other service trusts the identity issued here: EdDSA access tokens whose public keys are
//! published by `AuthService.GetSigningKeys`.
//!
//! - [`Config`]: defaults plus `SENTRA_TENANCY__*` variables.
//! - [`Application`]: connects to PostgreSQL (schema `tenancy`), Redis and RabbitMQ (outbox relay),
//!   then serves
//!   `TenancyService` and `AuthService` with health and reflection (port 3001 by default).
//! - `commands` validates requests into domain commands; `directory` holds the rules and SQL of
//!   organizations, brands, users and access; `sessions` holds passwords, keys and tokens;
//!   `cache` the Redis brand cache; `outbox` the transactional outbox; `grpc` the thin surface;
//!   `error` the one mapping from domain errors to gRPC statuses.

pub mod cache;
pub mod commands;
pub mod directory;
pub mod error;
pub mod grpc;
pub mod outbox;
pub mod passwords;
pub mod sessions;
pub mod validate;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use sentra_auth::{AuthLayer, Verifier};
use sentra_bus::{BrokerConfig, RelayConfig, TableRelay};
use sentra_proto::sentra::tenancy::v1::auth_service_server::AuthServiceServer;
use sentra_proto::sentra::tenancy::v1::tenancy_service_server::TenancyServiceServer;
use sentra_runtime::background::Background;
use sentra_runtime::config::{
    self, AmqpConfig, ConfigError, DatabaseConfig, HealthConfig, LogConfig, RedisConfig, ServerConfig, ShutdownConfig,
};
use sentra_runtime::health::{PostgresProbe, Probe, RedisProbe};
use sentra_runtime::server::{ServeError, ServiceHost};
use serde::{Deserialize, Serialize};

use crate::cache::BrandCache;
use crate::directory::Directory;
use crate::grpc::{AuthApi, TenancyApi};
use crate::passwords::Passwords;
use crate::sessions::DbSessions;
use crate::sessions::{AuthSettings, DbKeys, KeyRing, Sessions};
use sqlx::PgPool;

/// The gRPC services this binary serves.
pub const SERVICES: [&str; 2] = ["sentra.tenancy.v1.TenancyService", "sentra.tenancy.v1.AuthService"];

/// Everything the service reads at start-up.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listener.
    pub server: ServerConfig,
    /// PostgreSQL (schema `tenancy`).
    pub database: DatabaseConfig,
    /// Redis.
    pub redis: RedisConfig,
    /// RabbitMQ (the outbox relay publishes `tenancy.*` events).
    pub amqp: AmqpConfig,
    /// Log output.
    pub log: LogConfig,
    /// Dependency probing.
    pub health: HealthConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Credential lifetimes and key rotation.
    pub auth: AuthSettings,
    /// Seconds a domain resolution stays in the Redis cache.
    pub brand_cache_ttl_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::on_port(3001),
            database: DatabaseConfig::for_schema("tenancy"),
            redis: RedisConfig::default(),
            amqp: AmqpConfig::default(),
            log: LogConfig::default(),
            health: HealthConfig::default(),
            shutdown: ShutdownConfig::default(),
            auth: AuthSettings::default(),
            brand_cache_ttl_secs: 300,
        }
    }
}

impl Config {
    /// Defaults overridden by `SENTRA_TENANCY__*` environment variables.
    pub fn load() -> Result<Self, ConfigError> {
        config::load("tenancy")
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// PostgreSQL was unreachable or a migration failed.
    #[error(transparent)]
    Database(#[from] sentra_runtime::db::DbError),
    /// The listener could not be bound.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The Redis client could not be created.
    #[error(transparent)]
    Redis(#[from] sentra_runtime::redis::RedisSetupError),
}

/// The built service, bound and ready to serve.
pub struct Application {
    host: ServiceHost,
    config: Config,
    pool: PgPool,
    redis: fred::clients::Client,
}

/// The migrations of the service's schema, in the order they apply.
fn migrators() -> Vec<sqlx::migrate::Migrator> {
    vec![sqlx::migrate!("../../migrations/tenancy")]
}

/// Applies this build's migrations to the configured schema, then returns: the `migrate`
/// subcommand, run once per release when the replicas start with `database.migrate = false`.
pub async fn migrate(config: &Config) -> Result<(), StartupError> {
    let database = sentra_runtime::config::DatabaseConfig { migrate: true, ..config.database.clone() };
    sentra_runtime::db::connect_and_migrate(&database, migrators()).await?.close().await;
    Ok(())
}

impl Application {
    /// Connects, migrates and binds; `config.server.port = 0` binds a free port.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let pool = sentra_runtime::db::connect_and_migrate(&config.database, migrators()).await?;
        let redis = sentra_runtime::redis::connect(&config.redis)?;
        let host = ServiceHost::bind("tenancy", &config.server, &SERVICES).await?;
        Ok(Self { host, config, pool, redis })
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
        let probes: Vec<Arc<dyn Probe>> =
            vec![Arc::new(PostgresProbe(self.pool.clone())), Arc::new(RedisProbe(self.redis.clone()))];
        let keys = Arc::new(KeyRing::new(self.pool.clone(), self.config.auth.clone()));
        // The key source is our own table: refetching on an unknown kid is cheap, so rotation is seen at once.
        // Sessions are judged from our own tables, fresh on every call (zero ttl): a lookup by
        // primary key, and the source of truth for everyone else's cached answers.
        let verifier = Verifier::new(Arc::new(DbKeys(keys.clone())))
            .with_min_refetch_interval(std::time::Duration::from_secs(1))
            .with_sessions(Arc::new(DbSessions(self.pool.clone())), std::time::Duration::ZERO);
        let auth = AuthLayer::new(verifier);
        let ttl = std::time::Duration::from_secs(self.config.brand_cache_ttl_secs);
        let cache = BrandCache::new(self.redis.clone(), &self.config.redis.key_prefix, ttl);
        let passwords =
            Passwords::for_this_machine(std::time::Duration::from_secs(self.config.auth.password_wait_secs));
        let directory = Directory::new(self.pool.clone(), cache, self.config.auth.clone(), passwords.clone());
        let sessions = Sessions::new(self.pool.clone(), keys.clone(), self.config.auth.clone(), passwords);
        let routes = tonic::service::Routes::new(tower::Layer::layer(
            &auth,
            TenancyServiceServer::new(TenancyApi { directory }),
        ))
        .add_service(tower::Layer::layer(&auth, AuthServiceServer::new(AuthApi { sessions, keys })));
        // The outbox relay publishes what each transaction recorded, and stops with the server.
        let relay =
            TableRelay::new(self.pool.clone(), "outbox", RelayConfig::new(BrokerConfig::from(&self.config.amqp)));
        self.host.metrics().observe_pool(&self.pool);
        let mut background = Background::new();
        match relay {
            Ok(relay) => {
                if let Err(error) = relay.observe(self.host.metrics()) {
                    tracing::error!(%error, "Outbox metrics not registered.");
                }
                let stop = background.stopped();
                background.spawn("outbox relay", async move { relay.run(stop).await });
            }
            Err(error) => tracing::error!(%error, "Outbox relay not started."),
        }
        let served = self.host.serve(routes, probes, self.config.health, self.config.shutdown, shutdown).await;
        background.stop().await;
        served
    }
}
