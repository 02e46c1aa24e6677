//! The Comm service: emails, threads, delivery and webhook logs.
//!
//! - [`Config`]: defaults plus `SENTRA_COMM__*` variables.
//! - [`Application`]: connects to PostgreSQL (schema `comm`) and RabbitMQ, then serves gRPC with
//!   health and reflection on the configured port (3002 by default, 0 in tests).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use sentra_runtime::config::{
    self, AmqpConfig, ConfigError, DatabaseConfig, HealthConfig, LogConfig, ServerConfig, ShutdownConfig,
};
use sentra_runtime::health::{AmqpProbe, PostgresProbe, Probe};
use sentra_runtime::server::{ServeError, ServiceHost};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// Everything the service reads at start-up.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listener.
    pub server: ServerConfig,
    /// PostgreSQL (schema `comm`).
    pub database: DatabaseConfig,
    /// RabbitMQ.
    pub amqp: AmqpConfig,
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
            server: ServerConfig::on_port(3002),
            database: DatabaseConfig::for_schema("comm"),
            amqp: AmqpConfig::default(),
            log: LogConfig::default(),
            health: HealthConfig::default(),
            shutdown: ShutdownConfig::default(),
        }
    }
}

impl Config {
    /// Defaults overridden by `SENTRA_COMM__*` environment variables.
    pub fn load() -> Result<Self, ConfigError> {
        config::load("comm")
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
}

/// The built service, bound and ready to serve.
pub struct Application {
    host: ServiceHost,
    config: Config,
    pool: PgPool,
}

/// The migrations of the service's schema, in the order they apply.
fn migrators() -> Vec<sqlx::migrate::Migrator> {
    Vec::new()
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
        let host = ServiceHost::bind("comm", &config.server, &[]).await?;
        Ok(Self { host, config, pool })
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
            vec![Arc::new(PostgresProbe(self.pool.clone())), Arc::new(AmqpProbe::new(self.config.amqp.url.clone()))];
        let routes = tonic::service::Routes::default();
        self.host.serve(routes, probes, self.config.health, self.config.shutdown, shutdown).await
    }
}
