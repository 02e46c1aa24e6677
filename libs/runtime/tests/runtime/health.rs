use std::sync::Arc;
use std::time::Duration;

use sentra_runtime::config::{HealthConfig, ServerConfig, ShutdownConfig};
use sentra_runtime::health::{AmqpProbe, PostgresProbe, Probe, RedisProbe};
use sentra_runtime::server::ServiceHost;
use sentra_testkit::TcpProxy;
use sentra_testkit::grpc::{reflected_services, wait_for_health};
use tonic_health::pb::health_check_response::ServingStatus;

const WITHIN: Duration = Duration::from_secs(15);

fn fast_probes() -> HealthConfig {
    HealthConfig { interval: Duration::from_millis(100), timeout: Duration::from_millis(500) }
}

/// Serves a host with `probes` until the returned sender fires; returns its address.
async fn serve(probes: Vec<Arc<dyn Probe>>) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let host = ServiceHost::bind("test", &ServerConfig::default(), &[]).await.expect("bind");
    let addr = host.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = ShutdownConfig { drain: Duration::ZERO, grace: Duration::from_secs(1) };
    tokio::spawn(host.serve(tonic::service::Routes::default(), probes, fast_probes(), shutdown, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

fn host_port(url: &str) -> String {
    let rest = url.split("://").nth(1).expect("scheme");
    let rest = rest.rsplit('@').next().expect("host");
    rest.split('/').next().expect("authority").to_owned()
}

#[tokio::test]
async fn rabbitmq_outage_flips_health_and_recovery_needs_no_restart() {
    let broker = sentra_testkit::amqp_url();
    let proxy = TcpProxy::start(&host_port(&broker)).await;
    let via_proxy = broker.replace(&host_port(&broker), &proxy.addr().to_string());
    let (addr, _stop) = serve(vec![Arc::new(AmqpProbe::new(via_proxy.into()))]).await;

    wait_for_health(addr, "", ServingStatus::Serving, WITHIN).await;
    proxy.cut();
    wait_for_health(addr, "", ServingStatus::NotServing, WITHIN).await;
    proxy.restore();
    wait_for_health(addr, "", ServingStatus::Serving, WITHIN).await;
}

#[tokio::test]
async fn postgres_outage_flips_health_and_recovery_needs_no_restart() {
    let db = sentra_testkit::TestDatabase::create().await;
    let proxy = TcpProxy::start(&host_port(db.url())).await;
    let via_proxy = db.url().replace(&host_port(db.url()), &proxy.addr().to_string());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(400))
        .connect_lazy(&via_proxy)
        .expect("pool");
    let (addr, _stop) = serve(vec![Arc::new(PostgresProbe(pool))]).await;

    wait_for_health(addr, "", ServingStatus::Serving, WITHIN).await;
    proxy.cut();
    wait_for_health(addr, "", ServingStatus::NotServing, WITHIN).await;
    proxy.restore();
    wait_for_health(addr, "", ServingStatus::Serving, WITHIN).await;
}

#[tokio::test]
async fn redis_outage_flips_health_and_recovery_needs_no_restart() {
    let redis = sentra_testkit::redis_url();
    let proxy = TcpProxy::start(&host_port(&redis)).await;
    let config = sentra_runtime::config::RedisConfig {
        url: redis.replace(&host_port(&redis), &proxy.addr().to_string()).into(),
        key_prefix: sentra_testkit::unique_prefix("health"),
    };
    let client = sentra_runtime::redis::connect(&config).expect("client");
    let (addr, _stop) = serve(vec![Arc::new(RedisProbe(client))]).await;

    wait_for_health(addr, "", ServingStatus::Serving, WITHIN).await;
    proxy.cut();
    wait_for_health(addr, "", ServingStatus::NotServing, WITHIN).await;
    proxy.restore();
    wait_for_health(addr, "", ServingStatus::Serving, WITHIN).await;
}

#[tokio::test]
async fn reflection_lists_health_and_reflection() {
    let (addr, _stop) = serve(vec![]).await;
    let services = reflected_services(addr).await;
    assert!(services.contains(&"grpc.health.v1.Health".to_owned()), "{services:?}");
}
