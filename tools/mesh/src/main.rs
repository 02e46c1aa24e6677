//! `sentra-mesh`: the whole Sentra mesh in one process, for browser tests and quick looks.
//!
//! Starts Tenancy, Sales, Finance, Comm, the gateway and the assets server on free ports, on a
//! fresh database (dropped on exit) with its own Redis key prefix and RabbitMQ names, and the
//! real Envoy in front of them, exactly as deployed: API paths to the gateway, pages to the
//! assets server. Then prints one JSON line with the addresses, e.g.
//! `{"url":"http://127.0.0.1:40123","database":"sentra_test_…",…}`, and runs until its standard
//! input closes (the test runner exiting) or it gets SIGINT/SIGTERM.
//!
//! The apps are served from `web/dashboard/dist` and `web/portal/dist` (build them first with
//! `npm --prefix web run build`); `SENTRA_MESH_WEB_DIR` points elsewhere. The gateway's rate
//! limits are raised, since a test suite signs in far more often than people do.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use sentra_gateway::{AddressList, Rate};
use sentra_testkit::TestDatabase;
use sentra_testkit::envoy::Envoy;
use tokio::io::AsyncReadExt;
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sentra_runtime::telemetry::init(&sentra_runtime::config::LogConfig {
        json: false,
        filter: std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
    });
    let web_dir = std::env::var("SENTRA_MESH_WEB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web"));

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
    finance.tenancy_url = tenancy_url.clone();
    finance.retry_delay_secs = 0.2;
    drain(&mut finance.shutdown);
    let app = sentra_finance::Application::build(finance).await.context("finance")?;
    let finance_addr = app.local_addr();
    let stop = servers.stop_signal();
    servers.spawn("finance", app.run_until(stop));

    let mut comm = sentra_comm::Config::default();
    local(&mut comm.server);
    comm.database.url = db.secret_url();
    comm.amqp.prefix = broker.clone();
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
    let envoy = Envoy::start_with_assets(gateway_addr, assets_addr, ".*").await;

    let ready = serde_json::json!({
        "url": format!("http://127.0.0.1:{}", envoy.addr.port()),
        "envoy_admin": envoy.admin.to_string(),
        "gateway": gateway_addr.to_string(),
        "tenancy": tenancy_addr.to_string(),
        "sales": sales_addr.to_string(),
        "finance": finance_addr.to_string(),
        "database": db.name(),
    });
    println!("{ready}");

    tokio::select! {
        () = stdin_closed() => {}
        () = sentra_runtime::shutdown::signal() => {}
    }
    envoy.stop().await;
    servers.stop().await;
    drop(db);
    Ok(())
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        let _ = task.await;
    }
}

/// Resolves when standard input reaches its end: the process that started us is gone.
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
}
