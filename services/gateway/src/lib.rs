//! The Gateway: the only entry point from outside (behind Envoy).
//!
//! - [`Config`]: defaults plus `SENTRA_GATEWAY__*` variables.
//! - [`Application`]: connects to Redis (rate limits, caches), then serves gRPC with health and
//!   reflection on the configured port (3333 by default, 0 in tests).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use sentra_runtime::config::{self, ConfigError, HealthConfig, LogConfig, RedisConfig, ServerConfig, ShutdownConfig};
use sentra_runtime::health::{Probe, RedisProbe};
use sentra_runtime::server::{ServeError, ServiceHost};
use serde::Deserialize;

/// Everything the gateway reads at start-up.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listener (Envoy forwards here).
    pub server: ServerConfig,
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
            server: ServerConfig::on_port(3333),
            redis: RedisConfig::default(),
            log: LogConfig::default(),
            health: HealthConfig::default(),
            shutdown: ShutdownConfig::default(),
        }
    }
}

impl Config {
    /// Defaults overridden by `SENTRA_GATEWAY__*` environment variables.
    pub fn load() -> Result<Self, ConfigError> {
        config::load("gateway")
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The Redis client could not be created.
    #[error(transparent)]
    Redis(#[from] sentra_runtime::redis::RedisSetupError),
    /// The listener could not be bound.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// The built gateway, bound and ready to serve.
pub struct Application {
    host: ServiceHost,
    config: Config,
    redis: fred::clients::Client,
}

impl Application {
    /// Connects and binds; `config.server.port = 0` binds a free port.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let redis = sentra_runtime::redis::connect(&config.redis)?;
        let host = ServiceHost::bind(&config.server, &[]).await?;
        Ok(Self { host, config, redis })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.host.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains and stops.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let probes: Vec<Arc<dyn Probe>> = vec![Arc::new(RedisProbe(self.redis.clone()))];
        let routes = tonic::service::Routes::default();
        self.host.serve(routes, probes, self.config.health, self.config.shutdown, shutdown).await
    }
}
