//! Dependency probes behind the standard `grpc.health.v1.Health` service.
//!
//! A service reports SERVING only while every dependency answers its probe, NOT_SERVING as soon
//! as one does not, and NOT_SERVING for good once it starts draining. Probes reconnect on their
//! own, so a dependency that comes back returns the service to SERVING without a restart.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fred::interfaces::ClientLike;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use tokio::sync::{Mutex, watch};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::config::HealthConfig;

/// One dependency of a service, checked periodically.
#[async_trait]
pub trait Probe: Send + Sync {
    /// Short name used in logs: `postgres`, `redis`, `rabbitmq`.
    fn name(&self) -> &str;
    /// Succeeds when the dependency answers.
    async fn check(&self) -> Result<(), String>;
}

/// PostgreSQL answers `SELECT 1` through the service's pool.
pub struct PostgresProbe(pub PgPool);

#[async_trait]
impl Probe for PostgresProbe {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn check(&self) -> Result<(), String> {
        sqlx::query("SELECT 1").execute(&self.0).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Redis answers `PING` through the service's client (which reconnects by itself).
pub struct RedisProbe(pub fred::clients::Client);

#[async_trait]
impl Probe for RedisProbe {
    fn name(&self) -> &str {
        "redis"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.ping::<String>(None).await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// RabbitMQ accepts a connection; the probe keeps one open and reopens it when it drops.
pub struct AmqpProbe {
    url: SecretString,
    conn: Mutex<Option<lapin::Connection>>,
}

impl AmqpProbe {
    /// A probe of the broker at `url`.
    pub fn new(url: SecretString) -> Self {
        Self { url, conn: Mutex::new(None) }
    }
}

#[async_trait]
impl Probe for AmqpProbe {
    fn name(&self) -> &str {
        "rabbitmq"
    }

    async fn check(&self) -> Result<(), String> {
        let mut conn = self.conn.lock().await;
        if conn.as_ref().is_some_and(|c| c.status().connected()) {
            return Ok(());
        }
        let fresh = lapin::Connection::connect(self.url.expose_secret(), lapin::ConnectionProperties::default())
            .await
            .map_err(|e| e.to_string())?;
        *conn = Some(fresh);
        Ok(())
    }
}

/// Publishes the serving status of a service from its probes, until draining starts.
#[derive(Clone)]
pub struct HealthState {
    reporter: HealthReporter,
    services: Arc<Vec<String>>,
    draining: watch::Sender<bool>,
    serving: watch::Sender<bool>,
}

impl HealthState {
    /// Health of the overall server (`""`) and of each named gRPC service.
    pub fn new(reporter: HealthReporter, services: Vec<String>) -> Self {
        let (draining, _) = watch::channel(false);
        let (serving, _) = watch::channel(false);
        Self { reporter, services: Arc::new(services), draining, serving }
    }

    /// Whether the last status reported was SERVING (the admin port's `/readyz`).
    pub fn is_serving(&self) -> bool {
        *self.serving.borrow()
    }

    async fn set(&self, status: ServingStatus) {
        self.serving.send_replace(status == ServingStatus::Serving);
        self.reporter.set_service_status("", status).await;
        for name in self.services.iter() {
            self.reporter.set_service_status(name, status).await;
        }
    }

    /// Reports NOT_SERVING from now on, whatever the probes say.
    pub async fn start_draining(&self) {
        self.draining.send_replace(true);
        self.set(ServingStatus::NotServing).await;
    }

    /// Probes every dependency once; SERVING only if all answer (and we are not draining).
    pub async fn refresh(&self, probes: &[Arc<dyn Probe>], timeout: Duration) -> bool {
        let checks = probes.iter().map(|probe| async move {
            match tokio::time::timeout(timeout, probe.check()).await {
                Ok(Ok(())) => true,
                Ok(Err(error)) => {
                    tracing::warn!(dependency = probe.name(), %error, "Dependency probe failed.");
                    false
                }
                Err(_) => {
                    tracing::warn!(dependency = probe.name(), ?timeout, "Dependency probe timed out.");
                    false
                }
            }
        });
        let healthy = futures::future::join_all(checks).await.into_iter().all(|ok| ok);
        if *self.draining.borrow() {
            return false;
        }
        self.set(if healthy { ServingStatus::Serving } else { ServingStatus::NotServing }).await;
        healthy
    }

    /// Probes forever at the configured interval; logs transitions only.
    pub async fn run(self, probes: Vec<Arc<dyn Probe>>, config: HealthConfig) {
        let mut last = None;
        loop {
            if *self.draining.borrow() {
                return;
            }
            let healthy = self.refresh(&probes, config.timeout).await;
            if last != Some(healthy) {
                if healthy {
                    tracing::info!(dependencies = probes.len(), "All dependencies reachable; serving.");
                } else {
                    tracing::warn!("A dependency is unreachable; reporting NOT_SERVING.");
                }
                last = Some(healthy);
            }
            tokio::time::sleep(config.interval).await;
        }
    }
}
