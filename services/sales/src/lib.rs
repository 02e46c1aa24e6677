//! The Sales service: leads, clients and orders, stored as events.
//!
//! - [`Config`]: defaults plus `SENTRA_SALES__*` variables.
//! - [`Application`]: connects to PostgreSQL (schema `sales`, event store inside) and RabbitMQ,
//!   runs the read-table projections and the relay that publishes Sales events to the bus, and
//!   serves `SalesService` with health and reflection
//!   (port 3003 by default, 0 in tests).
//! - `domain`: the Lead, Client and Order aggregates (cqrs-es) and exact money arithmetic;
//!   `commands`: request validation; `app`: authorization and command execution; `projections`
//!   and `queries`: the read side; `grpc`: the surface;
//!   `error`: the one mapping to gRPC statuses.

pub mod app;
pub mod commands;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod integration;
pub mod projections;
pub mod queries;
pub mod timeline;
pub mod watch;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sentra_auth::{AuthLayer, Verifier};
use sentra_auth::{DEFAULT_SESSION_TTL, TenancyKeys, TenancySessions};
use sentra_bus::{BrokerConfig, FeedRelay, RelayConfig};
use sentra_event_store::{EventStore, Projection as _, ProjectionRunner};
use sentra_proto::sentra::sales::v1::sales_service_server::SalesServiceServer;
use sentra_runtime::background::Background;
use sentra_runtime::config::{
    self, AmqpConfig, ConfigError, DatabaseConfig, HealthConfig, LogConfig, ServerConfig, ShutdownConfig,
};
use sentra_runtime::health::{AmqpProbe, PostgresProbe, Probe};
use sentra_runtime::server::{ServeError, ServiceHost};
use serde::{Deserialize, Serialize};

use crate::app::Sales;
use crate::grpc::SalesApi;
use crate::projections::{ClientsProjection, LeadsProjection, OrdersProjection};
use crate::timeline::LeadTimelineProjection;
use sentra_directory::Directory;
use sqlx::PgPool;

/// The gRPC services this binary serves.
pub const SERVICES: [&str; 1] = ["sentra.sales.v1.SalesService"];

/// Everything the service reads at start-up.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    /// gRPC listener.
    pub server: ServerConfig,
    /// PostgreSQL (schema `sales`).
    pub database: DatabaseConfig,
    /// RabbitMQ.
    pub amqp: AmqpConfig,
    /// Log output.
    pub log: LogConfig,
    /// Dependency probing.
    pub health: HealthConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Where Tenancy answers (brand ownership, brand members).
    pub tenancy_url: String,
    /// TLS of the calls to Tenancy (`https://` URLs): the CA and this service\'s client certificate.
    pub client_tls: sentra_runtime::tls::ClientTls,
    /// Deadline of each call to Tenancy (brand checks, members, signing keys), in seconds.
    pub tenancy_timeout_secs: f64,
    /// A quiet `WatchPipeline` stream sends a keep-alive this often, in seconds, so proxies
    /// (Envoy's 5-minute stream idle timeout, load balancers) keep it open.
    pub watch_keepalive_secs: f64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::on_port(3003),
            database: DatabaseConfig::for_schema("sales"),
            amqp: AmqpConfig::default(),
            log: LogConfig::default(),
            health: HealthConfig::default(),
            shutdown: ShutdownConfig::default(),
            tenancy_url: "http://127.0.0.1:3001".into(),
            client_tls: sentra_runtime::tls::ClientTls::default(),
            tenancy_timeout_secs: 2.0,
            watch_keepalive_secs: 25.0,
        }
    }
}

impl Config {
    /// Defaults overridden by `SENTRA_SALES__*` environment variables.
    pub fn load() -> Result<Self, ConfigError> {
        config::load("sales")
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
    /// The read tables could not be prepared.
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
}

/// The built service, bound and ready to serve.
pub struct Application {
    host: ServiceHost,
    config: Config,
    pool: PgPool,
    store: EventStore,
    tenancy: tonic::transport::Channel,
}

/// Creates a projection's table (type-erased so the three runners fit one loop).
#[async_trait::async_trait]
trait Prepare: Sync {
    async fn prepare(&self) -> Result<(), sentra_event_store::EventStoreError>;
}

#[async_trait::async_trait]
impl<P: sentra_event_store::Projection + 'static> Prepare for ProjectionRunner<P> {
    async fn prepare(&self) -> Result<(), sentra_event_store::EventStoreError> {
        // Another replica being active means the table was checked already.
        if let Some(active) = self.try_activate().await? {
            active.release().await?;
        }
        Ok(())
    }
}

/// The migrations of the service's schema, in the order they apply.
fn migrators() -> Vec<sqlx::migrate::Migrator> {
    vec![sentra_event_store::migrator(), sqlx::migrate!("../../migrations/sales")]
}

/// Applies this build's migrations to the configured schema, then returns: the `migrate`
/// subcommand, run once per release when the replicas start with `database.migrate = false`.
pub async fn migrate(config: &Config) -> Result<(), StartupError> {
    let database = sentra_runtime::config::DatabaseConfig { migrate: true, ..config.database.clone() };
    sentra_runtime::db::connect_and_migrate(&database, migrators()).await?.close().await;
    Ok(())
}

/// Rebuilds the projection `name` from the first event and swaps it in (`rebuild-projection`):
/// waits up to `wait` for the replica running it to let go, `None` if none did. The schema must
/// be migrated.
pub async fn rebuild_projection(config: &Config, name: &str, wait: Duration) -> Result<Option<u64>, StartupError> {
    let database = sentra_runtime::config::DatabaseConfig { migrate: false, ..config.database.clone() };
    let pool = sentra_runtime::db::connect_and_migrate(&database, migrators()).await?;
    let store = EventStore::new(pool.clone());
    let replayed = match name {
        name if name == LeadsProjection.name() => {
            ProjectionRunner::new(&store, LeadsProjection).rebuild_when_free(wait).await?
        }
        name if name == ClientsProjection.name() => {
            ProjectionRunner::new(&store, ClientsProjection).rebuild_when_free(wait).await?
        }
        name if name == OrdersProjection.name() => {
            ProjectionRunner::new(&store, OrdersProjection).rebuild_when_free(wait).await?
        }
        name if name == LeadTimelineProjection.name() => {
            ProjectionRunner::new(&store, LeadTimelineProjection).rebuild_when_free(wait).await?
        }
        other => {
            let known = [
                LeadsProjection.name(),
                ClientsProjection.name(),
                OrdersProjection.name(),
                LeadTimelineProjection.name(),
            ]
            .join(", ");
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
        // Snapshots bound what a command reads: a lead moved back and forth a thousand times loads
        // its latest snapshot and at most 49 events, not its whole history.
        let store = EventStore::builder(pool.clone())
            .snapshot_every("lead", 50)
            .snapshot_every("client", 50)
            .snapshot_every("order", 50)
            .build();
        // Check the migrated read tables and register the checkpoints before serving.
        for runner in [
            &ProjectionRunner::new(&store, LeadsProjection) as &dyn Prepare,
            &ProjectionRunner::new(&store, ClientsProjection),
            &ProjectionRunner::new(&store, OrdersProjection),
            &ProjectionRunner::new(&store, LeadTimelineProjection),
        ] {
            runner.prepare().await?;
        }
        let connector = sentra_runtime::tls::Connector::new(&config.client_tls)?;
        let tenancy = connector
            .endpoint(&config.tenancy_url)
            .map_err(StartupError::TenancyUrl)?
            .connect_timeout(Duration::from_secs(2))
            .connect_with_connector_lazy(connector);
        let host = ServiceHost::bind("sales", &config.server, &SERVICES).await?;
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
        let verifier = Verifier::new(Arc::new(TenancyKeys::new(self.tenancy.clone(), self.tenancy_timeout())))
            .with_sessions(
                Arc::new(TenancySessions::new(self.tenancy.clone(), self.tenancy_timeout())),
                DEFAULT_SESSION_TTL,
            );
        let auth = AuthLayer::new(verifier);
        let sales =
            Sales::new(self.store.clone(), Arc::new(Directory::new(self.tenancy.clone(), self.tenancy_timeout())));
        let watch = sales.pipeline_watch().clone();
        let keepalive =
            Duration::try_from_secs_f64(self.config.watch_keepalive_secs).unwrap_or(Duration::from_secs(25));
        let routes = tonic::service::Routes::new(tower::Layer::layer(
            &auth,
            SalesServiceServer::new(SalesApi { sales, keepalive }),
        ));

        // Background work stops with the server, once it has drained.
        let mut background = Background::new();
        let (store, stop) = (self.store.clone(), background.stopped());
        background
            .spawn("leads projection", async move { ProjectionRunner::new(&store, LeadsProjection).run(stop).await });
        let (store, stop) = (self.store.clone(), background.stopped());
        background.spawn("clients projection", async move {
            ProjectionRunner::new(&store, ClientsProjection).run(stop).await
        });
        let (store, stop) = (self.store.clone(), background.stopped());
        background
            .spawn("orders projection", async move { ProjectionRunner::new(&store, OrdersProjection).run(stop).await });
        let (store, stop) = (self.store.clone(), background.stopped());
        background.spawn("lead timeline projection", async move {
            ProjectionRunner::new(&store, LeadTimelineProjection).run(stop).await
        });
        let (store, stop) = (self.store.clone(), background.stopped());
        background.spawn("pipeline watch", async move { watch.run(store, stop).await });
        // The feed is the outbox: the relay publishes every Sales event to the bus.
        let broker = BrokerConfig::from(&self.config.amqp);
        let relay = FeedRelay::new(&self.store, "sales", RelayConfig::new(broker))
            .with_mapper(Arc::new(integration::public_event));
        let metrics = self.host.metrics();
        metrics.observe_pool(&self.pool);
        relay.observe(metrics);
        sentra_bus::observe_projections(
            metrics,
            &self.store,
            &[LeadsProjection.name(), ClientsProjection.name(), OrdersProjection.name(), LeadTimelineProjection.name()],
        );
        let stop = background.stopped();
        background.spawn("event relay", async move { relay.run(stop).await });

        let served = self.host.serve(routes, probes, self.config.health, self.config.shutdown, shutdown).await;
        background.stop().await;
        served
    }
}
