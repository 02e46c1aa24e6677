//! The whole Sentra mesh in one process, for tests that need all of it: [`Mesh::start`].
//!
//! Starts Tenancy, Sales, Finance, Comm, the gateway and the assets server on free ports, on a
//! fresh database (dropped with the mesh) with its own Redis key prefix and RabbitMQ names, and
//! the real Envoy in front of them, exactly as deployed: API paths to the gateway, pages to the
//! assets server. The gateway's rate limits are raised, since a test suite signs in far more
//! often than people do. Comm talks to the fake Google of `sentra_testkit::gmail`. The
//! `sentra-mesh` binary runs one for the browser tests.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use sentra_gateway::{AddressList, Rate};
use sentra_testkit::TestDatabase;
use sentra_testkit::envoy::Envoy;
use sentra_testkit::gmail::FakeGmail;
use sentra_testkit::smtp::SmtpServer;
use tonic_health::pb::health_check_response::ServingStatus;

type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Stop signals for the servers, fired on exit.
#[derive(Default)]
struct Servers {
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Servers {
    /// A future that resolves when this mesh stops, for one server's `run_until`.
    fn stop_signal(&mut self) -> Stop {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.stops.push(stop);
        Box::pin(async {
            let _ = stopped.await;
        })
    }

    fn spawn<E: std::fmt::Display>(
        &mut self,
        name: &'static str,
        run: impl Future<Output = Result<(), E>> + Send + 'static,
    ) {
        self.tasks.push(tokio::spawn(async move {
            if let Err(error) = run.await {
                tracing::error!(service = name, %error, "Server stopped with an error.");
            }
        }));
    }

    async fn stop(self) {
        for stop in self.stops {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), futures_join(self.tasks)).await;
    }
}

fn local(server: &mut sentra_runtime::config::ServerConfig) {
    server.host = Ipv4Addr::LOCALHOST.into();
    server.port = 0;
}

async fn wait_serving(name: &str, addr: SocketAddr) {
    sentra_testkit::grpc::wait_for_health(addr, "", ServingStatus::Serving, Duration::from_secs(30)).await;
    tracing::info!(service = name, %addr, "Serving.");
}

/// Points Comm at a fake Google: consent, token and Gmail endpoints, its client, and the
/// dashboard's callback on whatever origin the browser started from.
fn fake_google(comm: &mut sentra_comm::Config, gmail: &FakeGmail) {
    comm.google = std::mem::take(&mut comm.google).at(&gmail.base_url(), gmail.client_id(), gmail.client_secret());
    comm.google.redirect_uri = "/app/mailboxes/callback".into();
}

/// A running mesh; [`Mesh::stop`] (or dropping it) stops everything and drops its database.
pub struct Mesh {
    /// Envoy in front of it all (gRPC-Web and gRPC for API paths, pages otherwise).
    pub envoy: Envoy,
    /// The gateway (gRPC).
    pub gateway: SocketAddr,
    /// Tenancy (gRPC).
    pub tenancy: SocketAddr,
    /// Sales (gRPC).
    pub sales: SocketAddr,
    /// Finance (gRPC).
    pub finance: SocketAddr,
    /// Comm (gRPC).
    pub comm: SocketAddr,
    /// The assets server (HTTP).
    pub assets: SocketAddr,
    /// The fake Google (OAuth and Gmail) Comm talks to; its control API is under `/_fake/`.
    pub gmail: FakeGmail,
    /// The mesh's own database.
    pub database: TestDatabase,
    /// The SMTP server automated email goes to (aiosmtpd on loopback).
    pub smtp: SmtpServer,
    servers: Servers,
}

impl Mesh {
    /// Starts every server and Envoy; returns once all report SERVING. `web_dir` holds the
    /// built apps (`dashboard/dist`, `portal/dist`); pages answer 503 when they are missing.
    pub async fn start(web_dir: &Path) -> anyhow::Result<Self> {
        Self::start_exporting(web_dir, None).await
    }

    /// [`Mesh::start`], with Envoy exporting its spans to the OTLP/gRPC collector at `otlp`
    /// (default: the one `OTEL_EXPORTER_OTLP_ENDPOINT` names). The services export through the
    /// process's telemetry (`sentra_runtime::telemetry::init_with`).
    pub async fn start_exporting(web_dir: &Path, otlp: Option<SocketAddr>) -> anyhow::Result<Self> {
        let db = TestDatabase::create().await;
        let broker = sentra_testkit::unique_prefix("mesh");
        let keys = sentra_testkit::unique_prefix("mesh");
        let mut servers = Servers::default();
        // A harness stops at once: no drain for load balancers, and one second for calls in flight.
        let drain = |shutdown: &mut sentra_runtime::config::ShutdownConfig| {
            shutdown.drain = Duration::ZERO;
            shutdown.grace = Duration::from_secs(1);
        };

        let mut tenancy = sentra_tenancy::Config::default();
        local(&mut tenancy.server);
        tenancy.database.url = db.secret_url();
        tenancy.redis.key_prefix = format!("{keys}:tenancy:");
        tenancy.amqp.prefix = broker.clone();
        drain(&mut tenancy.shutdown);
        let app = sentra_tenancy::Application::build(tenancy).await.context("tenancy")?;
        let tenancy_addr = app.local_addr();
        let stop = servers.stop_signal();
        servers.spawn("tenancy", app.run_until(stop));
        let tenancy_url = format!("http://{tenancy_addr}");

        let mut sales = sentra_sales::Config::default();
        local(&mut sales.server);
        sales.database.url = db.secret_url();
        sales.amqp.prefix = broker.clone();
        sales.tenancy_url = tenancy_url.clone();
        drain(&mut sales.shutdown);
        let app = sentra_sales::Application::build(sales).await.context("sales")?;
        let sales_addr = app.local_addr();
        let stop = servers.stop_signal();
        servers.spawn("sales", app.run_until(stop));

        let mut finance = sentra_finance::Config::default();
        local(&mut finance.server);
        finance.database.url = db.secret_url();
        finance.amqp.prefix = broker.clone();
        finance.amqp.queue_expiry_secs = sentra_testkit::QUEUE_EXPIRY_SECS;
        finance.tenancy_url = tenancy_url.clone();
        finance.retry_delay_secs = 0.2;
        drain(&mut finance.shutdown);
        let app = sentra_finance::Application::build(finance).await.context("finance")?;
        let finance_addr = app.local_addr();
        let stop = servers.stop_signal();
        servers.spawn("finance", app.run_until(stop));

        let gmail = FakeGmail::start().await;
        let smtp = SmtpServer::start().await;
        let mut comm = sentra_comm::Config::default();
        local(&mut comm.server);
        comm.database.url = db.secret_url();
        comm.amqp.prefix = broker.clone();
        comm.amqp.queue_expiry_secs = sentra_testkit::QUEUE_EXPIRY_SECS;
        comm.tenancy_url = tenancy_url.clone();
        comm.retry_delay_secs = 0.2;
        fake_google(&mut comm, &gmail);
        comm.keys = sentra_crypto::KeyRingConfig {
            active: "mesh".into(),
            keys: [("mesh".to_string(), sentra_crypto::KeyRingConfig::generate_key().into())].into(),
        };
        comm.state_secret = sentra_crypto::KeyRingConfig::generate_key().into();
        comm.sync.poll_interval_secs = 1.0;
        comm.sync.lease_secs = 10.0;
        // Webhook receivers of the browser tests listen on loopback.
        comm.webhooks.allow_addresses = vec!["127.0.0.1".into()];
        comm.automation.smtp.host = "127.0.0.1".into();
        comm.automation.smtp.port = smtp.port();
        comm.automation.smtp.tls = sentra_comm::automation::SmtpTls::None;
        comm.automation.schedule_interval_secs = 1.0;
        comm.automation.retry_schedule_secs = vec![1.0, 5.0];
        drain(&mut comm.shutdown);
        let app = sentra_comm::Application::build(comm).await.context("comm")?;
        let comm_addr = app.local_addr();
        let stop = servers.stop_signal();
        servers.spawn("comm", app.run_until(stop));

        let mut gateway = sentra_gateway::Config::default();
        local(&mut gateway.server);
        gateway.redis.key_prefix = format!("{keys}:gateway:");
        gateway.upstreams.tenancy = AddressList(vec![tenancy_url]);
        gateway.upstreams.sales = AddressList(vec![format!("http://{sales_addr}")]);
        gateway.upstreams.finance = AddressList(vec![format!("http://{finance_addr}")]);
        gateway.upstreams.comm = AddressList(vec![format!("http://{comm_addr}")]);
        gateway.limits.user = Rate::new(1000.0, 1000);
        gateway.limits.ip = Rate::new(1000.0, 1000);
        gateway.limits.tenant = Rate::new(1000.0, 1000);
        drain(&mut gateway.shutdown);
        let app = sentra_gateway::Application::build(gateway).await.context("gateway")?;
        let gateway_addr = app.local_addr();
        let stop = servers.stop_signal();
        servers.spawn("gateway", app.run_until(stop));

        let mut assets = sentra_assets::Config::default();
        local(&mut assets.server);
        assets.apps.dashboard = web_dir.join("dashboard/dist");
        assets.apps.portal = web_dir.join("portal/dist");
        drain(&mut assets.shutdown);
        let app = sentra_assets::Application::build(assets).await.context("assets")?;
        let assets_addr = app.local_addr();
        let stop = servers.stop_signal();
        servers.spawn("assets", app.run_until(stop));

        for (name, addr) in [
            ("tenancy", tenancy_addr),
            ("sales", sales_addr),
            ("finance", finance_addr),
            ("comm", comm_addr),
            ("gateway", gateway_addr),
        ] {
            wait_serving(name, addr).await;
        }
        let envoy = match otlp {
            Some(otlp) => Envoy::start_exporting(gateway_addr, assets_addr, ".*", Some(otlp)).await,
            None => Envoy::start_with_assets(gateway_addr, assets_addr, ".*").await,
        };
        Ok(Self {
            envoy,
            gateway: gateway_addr,
            tenancy: tenancy_addr,
            sales: sales_addr,
            finance: finance_addr,
            comm: comm_addr,
            assets: assets_addr,
            gmail,
            database: db,
            smtp,
            servers,
        })
    }

    /// Envoy's address as a URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.envoy.addr.port())
    }

    /// Stops Envoy and every server, then drops the database.
    pub async fn stop(self) {
        self.envoy.stop().await;
        self.servers.stop().await;
    }
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}
