//! The Comm service: connected mailboxes (Gmail), their sync, conversations on leads and
//! clients, brand aliases and sending.
//!
//! - [`Config`]: defaults plus `SENTRA_COMM__*` variables.
//! - [`Application`]: connects to PostgreSQL (schema `comm`), RabbitMQ and Tenancy; runs the
//!   sync worker ([`sync`]), the address index fed by Sales' events ([`contacts`]), the outbox
//!   relay (`comm.mailbox.needs_reauth`) and the re-wrapping of data keys after a key rotation; serves `CommService` with health and
//!   reflection (port 3002 by default, 0 in tests).
//! - [`notifications`]: staff notifications from bus events, live through `WatchNotifications`
//!   (`NotificationService`).
//! - [`automation`]: a brand's templates and rules send its reminders and follow-ups through
//!   SMTP, once per rule and trigger, with one-click unsubscribe (`AutomationService`).
//! - [`webhooks`]: the organization's endpoints receive Sales' and Finance's integration events,
//!   signed per Standard Webhooks, retried, logged and replayable (`WebhookService`).
//! - [`gmail`]: the provider's HTTP API; [`mailboxes`]: OAuth consent and sealed tokens;
//!   [`mime`]: parsing and building mail; [`store`]: the mail repository; [`aliases`],
//!   [`sending`]: brand aliases and SendEmail; [`grpc`]: the surface; [`error`]: the one mapping
//!   to gRPC statuses.

pub mod aliases;
pub mod automation;
pub mod contacts;
pub mod error;
pub mod gmail;
pub mod grpc;
pub mod mailboxes;
pub mod mime;
pub mod mongo;
pub mod notifications;
pub mod pg;
pub mod sending;
pub mod store;
pub mod sync;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use sentra_auth::{AuthLayer, DEFAULT_SESSION_TTL, TenancyKeys, TenancySessions, Verifier};
use sentra_bus::{BrokerConfig, Consumer, ConsumerConfig, RelayConfig, TableRelay};
use sentra_crypto::{KeyRing, KeyRingConfig};
use sentra_directory::Directory;
use sentra_proto::sentra::comm::v1::automation_service_server::AutomationServiceServer;
use sentra_proto::sentra::comm::v1::comm_service_server::CommServiceServer;
use sentra_proto::sentra::comm::v1::notification_service_server::NotificationServiceServer;
use sentra_proto::sentra::comm::v1::webhook_service_server::WebhookServiceServer;
use sentra_runtime::background::Background;
use sentra_runtime::config::{
    self, AmqpConfig, ConfigError, DatabaseConfig, HealthConfig, LogConfig, ServerConfig, ShutdownConfig,
};
use sentra_runtime::health::{AmqpProbe, PostgresProbe, Probe};
use sentra_runtime::server::{ServeError, ServiceHost};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::gmail::{Gmail, GoogleConfig};
use crate::mailboxes::Mailboxes;
use crate::store::{MailStore, PgMailStore};
use crate::sync::{SyncConfig, Syncer};

/// The gRPC services this process serves.
pub const SERVICES: [&str; 4] = [
    "sentra.comm.v1.CommService",
    "sentra.comm.v1.NotificationService",
    "sentra.comm.v1.WebhookService",
    "sentra.comm.v1.AutomationService",
];

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
    /// Tenancy's address (keys, sessions, brands).
    pub tenancy_url: String,
    /// TLS towards Tenancy.
    pub client_tls: sentra_runtime::tls::ClientTls,
    /// Deadline of each Tenancy call, seconds.
    pub tenancy_timeout_secs: f64,
    /// Google OAuth and the Gmail API.
    pub google: GoogleConfig,
    /// Key-encryption keys that wrap each mailbox's data key (required: there is no default
    /// key). `keys.active` names the one new keys are wrapped with.
    pub keys: KeyRingConfig,
    /// Signs the OAuth `state`; every replica needs the same. Empty: a random key per process
    /// (a consent must then complete on the replica that started it).
    #[serde(skip_serializing)]
    pub state_secret: SecretString,
    /// Mailbox sync.
    pub sync: SyncConfig,
    /// First retry delay of the contact index consumer, seconds.
    pub retry_delay_secs: f64,
    /// Where mail is kept.
    pub storage: StorageConfig,
    /// Keep-alive period of quiet `WatchNotifications` streams, seconds (below every proxy's
    /// stream idle timeout).
    pub watch_keepalive_secs: f64,
    /// Webhook delivery.
    pub webhooks: webhooks::WebhookConfig,
    /// Automated email.
    pub automation: automation::AutomationConfig,
}

/// Which adapter keeps mail (messages, threads, sync queue and log, the address index).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct StorageConfig {
    /// `postgres` (the default: JSONB in the `comm` schema) or `mongodb`.
    pub backend: StorageBackend,
    /// The MongoDB connection string, for `mongodb`.
    #[serde(skip_serializing)]
    pub mongodb_url: SecretString,
    /// The MongoDB database, for `mongodb` (default `sentra_comm`).
    pub mongodb_database: String,
}

/// A [`StorageConfig::backend`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// PostgreSQL.
    #[default]
    Postgres,
    /// MongoDB.
    Mongodb,
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
            tenancy_url: "http://127.0.0.1:3001".into(),
            client_tls: sentra_runtime::tls::ClientTls::default(),
            tenancy_timeout_secs: 2.0,
            google: GoogleConfig::default(),
            keys: KeyRingConfig::default(),
            state_secret: SecretString::from(String::new()),
            sync: SyncConfig::default(),
            retry_delay_secs: 1.0,
            storage: StorageConfig::default(),
            watch_keepalive_secs: 25.0,
            webhooks: webhooks::WebhookConfig::default(),
            automation: automation::AutomationConfig::default(),
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
    /// `tenancy_url` does not parse.
    #[error("tenancy_url is invalid")]
    TenancyUrl(#[source] tonic::transport::Error),
    /// Client TLS configuration.
    #[error("client TLS")]
    Tls(#[from] sentra_runtime::tls::TlsError),
    /// The key ring (`keys`) is missing or malformed.
    #[error("comm keys: {0}")]
    Keys(#[from] sentra_crypto::CryptoError),
    /// RabbitMQ.
    #[error(transparent)]
    Bus(#[from] sentra_bus::BusError),
    /// The mail store could not be reached or prepared.
    #[error("mail store: {0}")]
    Store(#[from] store::StoreError),
    /// The Gmail client could not be built.
    #[error("google: {0}")]
    Google(#[from] gmail::GmailError),
    /// `webhooks` is malformed (an allowlist entry, the HTTP client).
    #[error("webhooks: {0}")]
    Webhooks(String),
}

/// The built service, bound and ready to serve.
pub struct Application {
    host: ServiceHost,
    config: Config,
    pool: PgPool,
    tenancy: tonic::transport::Channel,
    mailboxes: Mailboxes,
    store: Arc<dyn MailStore>,
    endpoints: webhooks::endpoints::Endpoints,
    links: automation::mailer::Links,
}

/// The migrations of the service's schema, in the order they apply.
pub fn migrators() -> Vec<sqlx::migrate::Migrator> {
    vec![sentra_bus::migrator(), sqlx::migrate!("../../migrations/comm")]
}

/// Applies this build's migrations to the configured schema, then returns: the `migrate`
/// subcommand, run once per release when the replicas start with `database.migrate = false`.
pub async fn migrate(config: &Config) -> Result<(), StartupError> {
    let database = sentra_runtime::config::DatabaseConfig { migrate: true, ..config.database.clone() };
    sentra_runtime::db::connect_and_migrate(&database, migrators()).await?.close().await;
    Ok(())
}

/// The configured mail store.
pub async fn mail_store(config: &Config, pool: &PgPool) -> Result<Arc<dyn MailStore>, StartupError> {
    Ok(match config.storage.backend {
        StorageBackend::Postgres => Arc::new(PgMailStore::new(pool.clone())),
        StorageBackend::Mongodb => {
            let database = match config.storage.mongodb_database.as_str() {
                "" => "sentra_comm",
                name => name,
            };
            Arc::new(mongo::MongoMailStore::connect(config.storage.mongodb_url.expose_secret(), database).await?)
        }
    })
}

fn notification_consumer(config: &Config, pool: PgPool) -> Consumer<notifications::Notifier> {
    let retry = Duration::from_secs_f64(config.retry_delay_secs.max(0.01));
    let consumer_config =
        ConsumerConfig::new(BrokerConfig::from(&config.amqp), "comm", "notifications", notifications::ROUTING_KEYS)
            .with_retry_delay(retry, retry * 64);
    Consumer::new(consumer_config, pool, notifications::Notifier)
}

fn webhook_consumer(config: &Config, pool: PgPool) -> Result<Consumer<webhooks::delivery::Fanout>, StartupError> {
    let retry = Duration::from_secs_f64(config.retry_delay_secs.max(0.01));
    let consumer_config =
        ConsumerConfig::new(BrokerConfig::from(&config.amqp), "comm", "webhooks", webhooks::delivery::ROUTING_KEYS)
            .with_retry_delay(retry, retry * 64);
    let fanout = webhooks::delivery::Fanout::new().map_err(|e| StartupError::Webhooks(e.to_string()))?;
    Ok(Consumer::new(consumer_config, pool, fanout))
}

fn automation_consumer(config: &Config, pool: PgPool) -> Consumer<automation::records::Recorder> {
    let retry = Duration::from_secs_f64(config.retry_delay_secs.max(0.01));
    let consumer_config =
        ConsumerConfig::new(BrokerConfig::from(&config.amqp), "comm", "automation", automation::records::ROUTING_KEYS)
            .with_retry_delay(retry, retry * 64);
    Consumer::new(consumer_config, pool, automation::records::Recorder)
}

fn contact_consumer(config: &Config, pool: PgPool, store: Arc<dyn MailStore>) -> Consumer<contacts::ContactIndex> {
    let retry = Duration::from_secs_f64(config.retry_delay_secs.max(0.01));
    let consumer_config =
        ConsumerConfig::new(BrokerConfig::from(&config.amqp), "comm", "sales-contacts", contacts::ROUTING_KEYS)
            .with_retry_delay(retry, retry * 64);
    Consumer::new(consumer_config, pool, contacts::ContactIndex { store })
}

/// Moves up to `max` dead-lettered contact events back to the queue; returns how many moved.
pub async fn replay_dead_letters(config: &Config, max: usize) -> Result<usize, StartupError> {
    let database = sentra_runtime::config::DatabaseConfig { migrate: false, ..config.database.clone() };
    let pool = sentra_runtime::db::connect_and_migrate(&database, migrators()).await?;
    let store = mail_store(config, &pool).await?;
    let contacts = contact_consumer(config, pool.clone(), store).replay_dead_letters(max).await;
    let notices = notification_consumer(config, pool.clone()).replay_dead_letters(max).await;
    let hooks = webhook_consumer(config, pool.clone())?.replay_dead_letters(max).await;
    let automated = automation_consumer(config, pool.clone()).replay_dead_letters(max).await;
    pool.close().await;
    Ok(contacts? + notices? + hooks? + automated?)
}

impl Application {
    /// Connects, migrates and binds; `config.server.port = 0` binds a free port.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let ring = Arc::new(KeyRing::from_config(&config.keys)?);
        let gmail = Gmail::new(config.google.clone())?;
        let pool = sentra_runtime::db::connect_and_migrate(&config.database, migrators()).await?;
        let connector = sentra_runtime::tls::Connector::new(&config.client_tls)?;
        let tenancy = connector
            .endpoint(&config.tenancy_url)
            .map_err(StartupError::TenancyUrl)?
            .connect_timeout(Duration::from_secs(2))
            .connect_with_connector_lazy(connector);
        let state_key: Arc<[u8]> = match config.state_secret.expose_secret() {
            "" => {
                tracing::warn!(
                    "state_secret is not set: OAuth consents complete only on the replica that started them."
                );
                let mut key = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
                Arc::from(key.as_slice())
            }
            secret => Arc::from(secret.as_bytes()),
        };
        let policy = webhooks::guard::AddressPolicy::new(&config.webhooks.allow_addresses)
            .map_err(|e| StartupError::Webhooks(format!("allow_addresses: {e}")))?;
        let endpoints = webhooks::endpoints::Endpoints::new(pool.clone(), ring.clone(), Arc::new(policy));
        let mailboxes = Mailboxes::new(pool.clone(), ring, gmail, state_key.clone());
        let store = mail_store(&config, &pool).await?;
        let host = ServiceHost::bind("comm", &config.server, &SERVICES).await?;
        let links = automation::mailer::Links::new(state_key.clone());
        Ok(Self { host, config, pool, tenancy, mailboxes, store, endpoints, links })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.host.local_addr()
    }

    /// The admin listener's address (`/metrics`), when `server.admin_port` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.host.admin_addr()
    }

    fn tenancy_timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.config.tenancy_timeout_secs).unwrap_or(Duration::from_secs(2))
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
        let store = self.store.clone();
        let wake = Arc::new(Notify::new());
        let directory = Arc::new(Directory::new(self.tenancy.clone(), self.tenancy_timeout()));
        let aliases = aliases::Aliases::new(self.pool.clone(), self.mailboxes.clone());
        let api = grpc::CommApi {
            mailboxes: self.mailboxes.clone(),
            store: store.clone(),
            aliases: aliases.clone(),
            sender: sending::Sender {
                pool: self.pool.clone(),
                store: store.clone(),
                mailboxes: self.mailboxes.clone(),
                aliases,
            },
            directory: directory.clone(),
            wake: wake.clone(),
        };
        let automation_api = automation::api::AutomationApi {
            store: automation::store::Store { pool: self.pool.clone() },
            directory,
            links: self.links.clone(),
        };
        let hub = notifications::Hub::default();
        let keepalive =
            Duration::try_from_secs_f64(self.config.watch_keepalive_secs).unwrap_or(Duration::from_secs(25));
        let notification_api = notifications::NotificationApi { pool: self.pool.clone(), hub: hub.clone(), keepalive };
        let routes = tonic::service::Routes::new(tower::Layer::layer(&auth, CommServiceServer::new(api)))
            .add_service(tower::Layer::layer(&auth, NotificationServiceServer::new(notification_api)))
            .add_service(tower::Layer::layer(
                &auth,
                WebhookServiceServer::new(webhooks::api::WebhookApi {
                    pool: self.pool.clone(),
                    endpoints: self.endpoints.clone(),
                }),
            ))
            .add_service(tower::Layer::layer(&auth, AutomationServiceServer::new(automation_api)));
        // The unsubscribe link of client-facing mail is plain HTTP beside the gRPC services.
        let routes = tonic::service::Routes::from(
            routes.into_axum_router().merge(automation::links::router(self.pool.clone(), self.links.clone())),
        );

        let mut background = Background::new();
        let metrics = self.host.metrics();
        metrics.observe_pool(&self.pool);
        let consumer = contact_consumer(&self.config, self.pool.clone(), store.clone()).with_metrics(metrics);
        if let Err(error) = consumer.declare().await {
            tracing::warn!(%error, "Contact queue not declared yet; the consumer retries on connect.");
        }
        let stop = background.stopped();
        background.spawn("contact index", async move { consumer.run(stop).await });
        let notifier = notification_consumer(&self.config, self.pool.clone()).with_metrics(metrics);
        if let Err(error) = notifier.declare().await {
            tracing::warn!(%error, "Notification queue not declared yet; the consumer retries on connect.");
        }
        let stop = background.stopped();
        background.spawn("notifications", async move { notifier.run(stop).await });
        match webhook_consumer(&self.config, self.pool.clone()) {
            Ok(fanout) => {
                let fanout = fanout.with_metrics(metrics);
                if let Err(error) = fanout.declare().await {
                    tracing::warn!(%error, "Webhook queue not declared yet; the consumer retries on connect.");
                }
                let stop = background.stopped();
                background.spawn("webhook fan-out", async move { fanout.run(stop).await });
            }
            Err(error) => tracing::error!(%error, "Webhook fan-out not started."),
        }
        let recorder = automation_consumer(&self.config, self.pool.clone()).with_metrics(metrics);
        if let Err(error) = recorder.declare().await {
            tracing::warn!(%error, "Automation queue not declared yet; the consumer retries on connect.");
        }
        let stop = background.stopped();
        background.spawn("automation records", async move { recorder.run(stop).await });
        if self.config.automation.enabled {
            match automation::mailer::Mailer::new(self.pool.clone(), self.config.automation.clone(), self.links.clone())
            {
                Ok(mailer) => {
                    let stop = background.stopped();
                    background.spawn("automation mailer", async move { mailer.run(stop).await });
                }
                Err(error) => tracing::error!(%error, "Automation mailer not started."),
            }
        }
        if self.config.webhooks.enabled {
            match webhooks::delivery::Dispatcher::new(
                self.pool.clone(),
                self.endpoints.clone(),
                self.config.webhooks.clone(),
            ) {
                Ok(dispatcher) => {
                    let stop = background.stopped();
                    background.spawn("webhook dispatcher", async move { dispatcher.run(stop).await });
                }
                Err(error) => tracing::error!(%error, "Webhook dispatcher not started."),
            }
        }
        let (pool, stop) = (self.pool.clone(), background.stopped());
        background.spawn("notification hub", async move { hub.run(pool, stop).await });
        match TableRelay::new(self.pool.clone(), "outbox", RelayConfig::new(BrokerConfig::from(&self.config.amqp))) {
            Ok(relay) => {
                if let Err(error) = relay.observe(metrics) {
                    tracing::error!(%error, "Outbox metrics not registered.");
                }
                let stop = background.stopped();
                background.spawn("outbox relay", async move { relay.run(stop).await });
            }
            Err(error) => tracing::error!(%error, "Outbox relay not started."),
        }
        let (mailboxes, endpoints) = (self.mailboxes.clone(), self.endpoints.clone());
        background.spawn("key rewrap", async move {
            match mailboxes.rewrap_all().await {
                Ok(0) => {}
                Ok(moved) => tracing::info!(moved, "Re-wrapped mailbox data keys under the active key."),
                Err(error) => tracing::warn!(%error, "Re-wrapping data keys failed; retried at the next start."),
            }
            match endpoints.rewrap_all().await {
                Ok(0) => {}
                Ok(moved) => tracing::info!(moved, "Re-wrapped webhook data keys under the active key."),
                Err(error) => tracing::warn!(%error, "Re-wrapping webhook keys failed; retried at the next start."),
            }
            Ok::<(), std::convert::Infallible>(())
        });
        if self.config.sync.enabled {
            let syncer = Syncer::new(self.pool.clone(), store, self.mailboxes.clone(), self.config.sync.clone(), wake);
            let stop = background.stopped();
            background.spawn("mailbox sync", async move { syncer.run(stop).await });
        }

        let served = self.host.serve(routes, probes, self.config.health, self.config.shutdown, shutdown).await;
        background.stop().await;
        served
    }
}
