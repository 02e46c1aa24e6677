//! The Finance service: invoices, payments, credit notes and receivables, stored as events.
//!
//! - [`Config`]: defaults plus `SENTRA_FINANCE__*` variables.
//! - [`Application`]: connects to PostgreSQL (schema `finance`: event store, inbox, number
//!   sequences) and RabbitMQ; runs the `invoices` projection, the consumer that drafts invoices
//!   for confirmed Sales orders, the relay that publishes Finance events, and the overdue job;
//!   serves `FinanceService` with health and reflection (port 3004 by default, 0 in tests).
//! - `domain`: the Invoice aggregate; `numbering`: gap-free numbers; `app`: authorization and
//!   commands; `boundary`: request validation; `projection` and `queries`: the read side; `consumer`: `sales.order.confirmed`;
//!   `jobs`: overdue detection; `grpc`: the surface; `error`: the one mapping to gRPC statuses.

pub mod app;
pub mod boundary;
pub mod consumer;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod integration;
pub mod jobs;
pub mod numbering;
pub mod projection;
pub mod queries;
pub mod receivables;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use sentra_runtime::config::{
    self, AmqpConfig, ConfigError, DatabaseConfig, HealthConfig, LogConfig, ServerConfig, ShutdownConfig,
};
use sentra_runtime::health::{AmqpProbe, PostgresProbe, Probe};
use sentra_runtime::server::{ServeError, ServiceHost};
use std::time::Duration;

use sentra_auth::{AuthLayer, DEFAULT_SESSION_TTL, TenancyKeys, TenancySessions, Verifier};
use sentra_bus::{BrokerConfig, Consumer, ConsumerConfig, FeedRelay, RelayConfig};
use sentra_directory::Directory;
use sentra_event_store::{EventStore, Projection as _, ProjectionRunner};
use sentra_proto::sentra::finance::v1::finance_service_server::FinanceServiceServer;
use sentra_runtime::background::Background;
use serde::{Deserialize, Serialize};

use crate::app::Finance;
use crate::consumer::OrderConfirmedHandler;
use crate::grpc::FinanceApi;
use crate::projection::InvoicesProjection;
use crate::receivables::InvoiceTimelineProjection;
use sqlx::PgPool;

/// The gRPC services this binary serves.
pub const SERVICES: [&str; 1] = ["sentra.finance.v1.FinanceService"];

/// Everything the service reads at start-up.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listener.
    pub server: ServerConfig,
    /// PostgreSQL (schema `finance`).
    pub database: DatabaseConfig,
    /// RabbitMQ.
    pub amqp: AmqpConfig,
    /// Log output.
    pub log: LogConfig,
    /// Dependency probing.
    pub health: HealthConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Where Tenancy answers (brands, signing keys).
    pub tenancy_url: String,
    /// TLS of the calls to Tenancy (`https://` URLs): the CA and this service\'s client certificate.
    pub client_tls: sentra_runtime::tls::ClientTls,
    /// Deadline of each call to Tenancy (brand checks, members, signing keys), in seconds.
    pub tenancy_timeout_secs: f64,
    /// Payment terms of invoices drafted without terms, in days.
    pub default_terms_days: u32,
    /// Seconds between two overdue passes.
    pub overdue_interval_secs: f64,
    /// Seconds before a failed message is retried the first time.
    pub retry_delay_secs: f64,
    /// Seconds between keep-alives on a quiet following `ReadEvents` stream.
    pub watch_keepalive_secs: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::on_port(3004),
            database: DatabaseConfig::for_schema("finance"),
            amqp: AmqpConfig::default(),
            log: LogConfig::default(),
            health: HealthConfig::default(),
            shutdown: ShutdownConfig::default(),
            tenancy_url: "http://127.0.0.1:3001".into(),
            client_tls: sentra_runtime::tls::ClientTls::default(),
            tenancy_timeout_secs: 2.0,
            default_terms_days: 30,
            overdue_interval_secs: 3600.0,
            retry_delay_secs: 1.0,
            watch_keepalive_secs: 25.0,
        }
    }
}

impl Config {
    /// Defaults overridden by `SENTRA_FINANCE__*` environment variables.
    pub fn load() -> Result<Self, ConfigError> {
        config::load("finance")
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
    /// The read table could not be prepared.
    #[error(transparent)]
    EventStore(#[from] sentra_event_store::EventStoreError),
    /// The Tenancy URL is not a URL.
    #[error("tenancy_url is invalid")]
    TenancyUrl(#[source] tonic::transport::Error),
    /// The client TLS files could not be loaded.
    #[error("client TLS")]
    Tls(#[from] sentra_runtime::tls::TlsError),
    /// `rebuild-projection` named a projection this service does not have.
    #[error("no projection {0:?}; this service has {1}")]
    UnknownProjection(String, String),
    /// The broker refused or dropped an operator command.
    #[error(transparent)]
    Bus(#[from] sentra_bus::BusError),
}

/// The built service, bound and ready to serve.
pub struct Application {
    host: ServiceHost,
    config: Config,
    pool: PgPool,
    store: EventStore,
    tenancy: tonic::transport::Channel,
}

/// The migrations of the service's schema, in the order they apply.
fn migrators() -> Vec<sqlx::migrate::Migrator> {
    vec![sentra_event_store::migrator(), sentra_bus::migrator(), sqlx::migrate!("../../migrations/finance")]
}

/// Applies this build's migrations to the configured schema, then returns: the `migrate`
/// subcommand, run once per release when the replicas start with `database.migrate = false`.
pub async fn migrate(config: &Config) -> Result<(), StartupError> {
    let database = sentra_runtime::config::DatabaseConfig { migrate: true, ..config.database.clone() };
    sentra_runtime::db::connect_and_migrate(&database, migrators()).await?.close().await;
    Ok(())
}

/// The consumer drafting an invoice for each confirmed Sales order.
fn order_consumer(config: &Config, pool: PgPool, store: EventStore) -> Consumer<OrderConfirmedHandler> {
    let retry = Duration::from_secs_f64(config.retry_delay_secs.max(0.01));
    let consumer_config =
        ConsumerConfig::new(BrokerConfig::from(&config.amqp), "finance", "sales-orders", ["sales.order.confirmed"])
            .with_retry_delay(retry, retry * 64);
    let handler = OrderConfirmedHandler { store, terms_days: config.default_terms_days };
    Consumer::new(consumer_config, pool, handler)
}

/// Moves up to `max` dead-lettered order messages back to the order queue, where the running
/// consumer handles them again (`replay-dead-letters`); returns how many moved.
pub async fn replay_dead_letters(config: &Config, max: usize) -> Result<usize, StartupError> {
    let database = sentra_runtime::config::DatabaseConfig { migrate: false, ..config.database.clone() };
    let pool = sentra_runtime::db::connect_and_migrate(&database, migrators()).await?;
    let consumer = order_consumer(config, pool.clone(), EventStore::new(pool.clone()));
    let moved = consumer.replay_dead_letters(max).await;
    pool.close().await;
    Ok(moved?)
}

/// Rebuilds the projection `name` from the first event and swaps it in (`rebuild-projection`):
/// waits up to `wait` for the replica running it to let go, `None` if none did. The schema must
/// be migrated.
pub async fn rebuild_projection(config: &Config, name: &str, wait: Duration) -> Result<Option<u64>, StartupError> {
    let database = sentra_runtime::config::DatabaseConfig { migrate: false, ..config.database.clone() };
    let pool = sentra_runtime::db::connect_and_migrate(&database, migrators()).await?;
    let store = EventStore::new(pool.clone());
    let replayed = match name {
        name if name == InvoicesProjection.name() => {
            ProjectionRunner::new(&store, InvoicesProjection).rebuild_when_free(wait).await?
        }
        name if name == InvoiceTimelineProjection.name() => {
            ProjectionRunner::new(&store, InvoiceTimelineProjection).rebuild_when_free(wait).await?
        }
        other => {
            let known = [InvoicesProjection.name(), InvoiceTimelineProjection.name()].join(", ");
            return Err(StartupError::UnknownProjection(other.to_owned(), known));
        }
    };
    pool.close().await;
    Ok(replayed)
}

impl Application {
    /// Connects, migrates and binds; `config.server.port = 0` binds a free port.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let pool = sentra_runtime::db::connect_and_migrate(&config.database, migrators()).await?;
        // Snapshots bound what a command reads (an invoice with many payments).
        let store = EventStore::builder(pool.clone()).snapshot_every("invoice", 50).build();
        // Check the migrated read tables and register the checkpoints before serving.
        if let Some(active) = ProjectionRunner::new(&store, InvoicesProjection).try_activate().await? {
            active.release().await?;
        }
        if let Some(active) = ProjectionRunner::new(&store, InvoiceTimelineProjection).try_activate().await? {
            active.release().await?;
        }
        let connector = sentra_runtime::tls::Connector::new(&config.client_tls)?;
        let tenancy = connector
            .endpoint(&config.tenancy_url)
            .map_err(StartupError::TenancyUrl)?
            .connect_timeout(Duration::from_secs(2))
            .connect_with_connector_lazy(connector);
        let host = ServiceHost::bind("finance", &config.server, &SERVICES).await?;
        Ok(Self { host, config, pool, store, tenancy })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.host.local_addr()
    }

    /// The admin listener's address (`/metrics`), when `server.admin_port` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.host.admin_addr()
    }

    fn tenancy_timeout(&self) -> std::time::Duration {
        std::time::Duration::try_from_secs_f64(self.config.tenancy_timeout_secs)
            .unwrap_or(std::time::Duration::from_secs(2))
    }

    /// Serves until `shutdown` resolves, then drains and stops.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
        let probes: Vec<Arc<dyn Probe>> =
            vec![Arc::new(PostgresProbe(self.pool.clone())), Arc::new(AmqpProbe::new(self.config.amqp.url.clone()))];
        let auth = AuthLayer::new(
            Verifier::new(Arc::new(TenancyKeys::new(self.tenancy.clone(), self.tenancy_timeout()))).with_sessions(
                Arc::new(TenancySessions::new(self.tenancy.clone(), self.tenancy_timeout())),
                DEFAULT_SESSION_TTL,
            ),
        );
        let finance =
            Finance::new(self.store.clone(), Arc::new(Directory::new(self.tenancy.clone(), self.tenancy_timeout())));
        let keepalive = std::time::Duration::try_from_secs_f64(self.config.watch_keepalive_secs)
            .unwrap_or(std::time::Duration::from_secs(25));
        let api = FinanceApi { finance, default_terms_days: self.config.default_terms_days, keepalive };
        let routes = tonic::service::Routes::new(tower::Layer::layer(&auth, FinanceServiceServer::new(api)));

        // Background work stops with the server, once it has drained.
        let mut background = Background::new();
        let broker = BrokerConfig::from(&self.config.amqp);
        let (store, stop) = (self.store.clone(), background.stopped());
        background.spawn("invoices projection", async move {
            ProjectionRunner::new(&store, InvoicesProjection).run(stop).await
        });
        let (store, stop) = (self.store.clone(), background.stopped());
        background.spawn("invoice timeline projection", async move {
            ProjectionRunner::new(&store, InvoiceTimelineProjection).run(stop).await
        });
        let relay = FeedRelay::new(&self.store, "finance", RelayConfig::new(broker.clone()))
            .with_mapper(Arc::new(integration::public_event));
        let metrics = self.host.metrics();
        metrics.observe_pool(&self.pool);
        relay.observe(metrics);
        sentra_bus::observe_projections(
            metrics,
            &self.store,
            &[InvoicesProjection.name(), InvoiceTimelineProjection.name()],
        );
        let stop = background.stopped();
        background.spawn("event relay", async move { relay.run(stop).await });
        let consumer = order_consumer(&self.config, self.pool.clone(), self.store.clone()).with_metrics(metrics);
        // Declared before serving so no confirmed order published from now on can miss the queue;
        // if the broker is down, `run` declares it once it connects.
        if let Err(error) = consumer.declare().await {
            tracing::warn!(%error, "Order queue not declared yet; the consumer retries on connect.");
        }
        let stop = background.stopped();
        background.spawn("order consumer", async move { consumer.run(stop).await });
        let (store, stop) = (self.store.clone(), background.stopped());
        let interval = Duration::from_secs_f64(self.config.overdue_interval_secs.max(0.05));
        background.spawn("overdue job", async move {
            jobs::run_overdue(store, interval, stop).await;
            Ok::<(), std::convert::Infallible>(())
        });

        let served = self.host.serve(routes, probes, self.config.health, self.config.shutdown, shutdown).await;
        background.stop().await;
        served
    }
}
