//! The Tenancy service: organizations, brands, users, brand access and sign-in.
//!
//! - [`Config`]: defaults plus `SENTRA_TENANCY__*` variables.
//! - [`Application`]: connects to PostgreSQL (schema `tenancy`) and Redis, then serves gRPC with
//!   health and reflection on the configured port (3001 by default, 0 in tests).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use sentra_runtime::config::{
    self, ConfigError, DatabaseConfig, HealthConfig, LogConfig, RedisConfig, ServerConfig, ShutdownConfig,
};
use sentra_runtime::health::{PostgresProbe, Probe, RedisProbe};
use sentra_runtime::server::{ServeError, ServiceHost};
use serde::Deserialize;
use sqlx::PgPool;

/// Everything the service reads at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listener.
    pub server: ServerConfig,
    /// PostgreSQL (schema `tenancy`).
    pub database: DatabaseConfig,
    /// Redis.
    pub redis: RedisConfig,
    /// Log output.
    pub log: LogConfig,
    /// Dependency probing.
    pub health: HealthConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::on_port(3001),
            database: DatabaseConfig::for_schema("tenancy"),
            redis: RedisConfig::default(),
            log: LogConfig::default(),
            health: HealthConfig::default(),
            shutdown: ShutdownConfig::default(),
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

impl Application {
    /// Connects, migrates and binds; `config.server.port = 0` binds a free port.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let pool = sentra_runtime::db::connect_and_migrate(&config.database, []).await?;
        let redis = sentra_runtime::redis::connect(&config.redis)?;
        let host = ServiceHost::bind(&config.server, &[]).await?;
        Ok(Self { host, config, pool, redis })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.host.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains and stops.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let probes: Vec<Arc<dyn Probe>> =
            vec![Arc::new(PostgresProbe(self.pool.clone())), Arc::new(RedisProbe(self.redis.clone()))];
        let routes = tonic::service::Routes::default();
        self.host.serve(routes, probes, self.config.health, self.config.shutdown, shutdown).await
    }
}
