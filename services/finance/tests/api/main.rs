//! API tests of the finance service, each on its own database and broker/cache names.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use sentra_finance::{Application, Config};
use sentra_testkit::TestDatabase;
use sentra_testkit::grpc::{reflected_services, wait_for_health};
use sqlx::Connection;
use tonic_health::pb::health_check_response::ServingStatus;

/// A running finance service on a free port.
pub struct TestApp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The test's own database, dropped with the app.
    pub db: TestDatabase,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), sentra_runtime::server::ServeError>>,
}

impl TestApp {
    /// Asks the service to stop and waits until it has.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.server).await.expect("join").expect("clean stop");
    }
}

/// Starts the service in-process on port 0 with fresh state.
pub async fn spawn_app() -> TestApp {
    let config = {
        let mut config = Config::default();
        config.server.host = Ipv4Addr::LOCALHOST.into();
        config.server.port = 0;
        config.health.interval = Duration::from_millis(200);
        config.shutdown.drain = Duration::ZERO;
        config.amqp.prefix = sentra_testkit::unique_prefix("finance");
        config
    };
    let mut config = config;
    let db = TestDatabase::create().await;
    config.database.url = db.secret_url();
    let app = Application::build(config).await.expect("service builds");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp { addr, db, stop: Some(stop), server }
}

#[tokio::test]
async fn serves_health_and_reflection_then_stops_cleanly() {
    let app = spawn_app().await;
    wait_for_health(app.addr, "", ServingStatus::Serving, Duration::from_secs(10)).await;
    let services = reflected_services(app.addr).await;
    assert!(services.iter().any(|s| s == "grpc.health.v1.Health"), "{services:?}");
    let addr = app.addr;
    app.shutdown().await;
    assert!(sentra_testkit::grpc::health_status(addr, "").await.is_err(), "stopped service still answers");
}

#[tokio::test]
async fn creates_and_uses_its_own_schema() {
    let app = spawn_app().await;
    let mut conn = sqlx::PgConnection::connect(app.db.url()).await.expect("connect");
    let found: Option<String> =
        sqlx::query_scalar("SELECT schema_name::text FROM information_schema.schemata WHERE schema_name = 'finance'")
            .fetch_optional(&mut conn)
            .await
            .expect("query");
    assert_eq!(found.as_deref(), Some("finance"));
}
