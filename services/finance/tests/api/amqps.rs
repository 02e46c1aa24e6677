//! AMQPS by configuration: Finance (the real binary) reaches RabbitMQ through a TLS endpoint
//! whose certificate comes from a CA made here, trusted through `SSL_CERT_FILE`; it serves,
//! consumes and publishes over TLS. Without the CA it refuses the broker (NOT_SERVING).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sentra_proto::sentra::finance::v1 as pb;
use sentra_proto::sentra::finance::v1::finance_service_client::FinanceServiceClient;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_runtime::tls::{ServerTls, TlsAcceptor};
use sentra_testkit::grpc::{health_status, wait_for_health};
use sentra_testkit::process::{Process, free_port};
use sentra_testkit::tls::{CertDir, TestCa, Usage};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::{World, bearer, eur, spawn};

/// A TLS endpoint in front of the broker's plaintext port (as a TLS-terminating load balancer
/// or RabbitMQ's own TLS listener would be); counts the connections it took.
async fn tls_broker(cert: &Path, key: &Path) -> (SocketAddr, Arc<AtomicUsize>) {
    let tls = ServerTls { cert: Some(cert.to_owned()), key: Some(key.to_owned()), ..ServerTls::default() };
    let acceptor = TlsAcceptor::new(&tls).unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let broker = sentra_testkit::amqp_url();
    let authority = broker.split('@').nth(1).and_then(|r| r.split('/').next()).unwrap().to_owned();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut incoming = acceptor.incoming(listener);
        while let Some(Ok(mut tls)) = incoming.next().await {
            count.fetch_add(1, Ordering::Relaxed);
            let authority = authority.clone();
            tokio::spawn(async move {
                if let Ok(mut plain) = tokio::net::TcpStream::connect(&authority).await {
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                }
            });
        }
    });
    (addr, accepted)
}

fn finance(world: &World, broker: SocketAddr, ca: Option<&Path>, name: &str) -> (Process, SocketAddr) {
    let port = free_port();
    let mut env = vec![
        ("SENTRA_FINANCE__SERVER__HOST", "127.0.0.1".to_owned()),
        ("SENTRA_FINANCE__SERVER__PORT", port.to_string()),
        ("SENTRA_FINANCE__SHUTDOWN__DRAIN", "0".to_owned()),
        ("SENTRA_FINANCE__HEALTH__INTERVAL", "0.2".to_owned()),
        ("SENTRA_FINANCE__DATABASE__URL", world.db.url().to_owned()),
        ("SENTRA_FINANCE__DATABASE__MAX_CONNECTIONS", "4".to_owned()),
        ("SENTRA_FINANCE__AMQP__URL", format!("amqps://guest:guest@{broker}/%2f")),
        ("SENTRA_FINANCE__AMQP__PREFIX", world.amqp_prefix.clone()),
        ("SENTRA_FINANCE__AMQP__QUEUE_EXPIRY_SECS", sentra_testkit::QUEUE_EXPIRY_SECS.to_string()),
        ("SENTRA_FINANCE__TENANCY_URL", format!("http://{}", world.tenancy_addr)),
        ("SENTRA_FINANCE__LOG__FILTER", "info".to_owned()),
    ];
    // The broker's CA, as operators give it (rustls-native-certs reads SSL_CERT_FILE).
    env.push(("SSL_CERT_FILE", ca.map_or_else(|| "/nonexistent/ca.pem".to_owned(), |p| p.display().to_string())));
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let process = Process::spawn(Path::new(env!("CARGO_BIN_EXE_sentra-finance")), name, &env);
    (process, SocketAddr::from(([127, 0, 0, 1], port)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_talks_to_rabbitmq_over_tls_with_the_configured_ca() {
    let mut world = spawn().await;
    let agency = world.agency("Amqps Agency").await;
    let client = world.client(&agency, "Tia Client").await;
    world.stop_finance().await;

    let certs = CertDir::new();
    let ca = TestCa::new("Broker CA");
    let broker_files = certs.party("broker", &ca, Usage::Server, &ca);
    let (broker, accepted) = tls_broker(&broker_files.cert, &broker_files.key).await;

    // Without the broker's CA: the handshake fails, so RabbitMQ counts as down.
    let (mut untrusting, addr) = finance(&world, broker, None, "finance-untrusting");
    let started = Instant::now();
    let status = loop {
        match health_status(addr, "").await {
            Ok(status) => break status,
            Err(_) if started.elapsed() < Duration::from_secs(40) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(error) => panic!("no health answer: {error:?}; see {}", untrusting.log.display()),
        }
    };
    assert_eq!(status, ServingStatus::NotServing, "see {}", untrusting.log.display());
    untrusting.kill().await;

    // With it: serving, and the order flow runs over TLS.
    let (mut trusting, addr) = finance(&world, broker, Some(&broker_files.ca), "finance-amqps");
    let up = tokio::time::timeout(
        Duration::from_secs(40),
        wait_for_health(addr, "", ServingStatus::Serving, Duration::from_secs(40)),
    )
    .await;
    assert!(up.is_ok(), "finance did not serve over AMQPS; see {}", trusting.log.display());
    let line = spb::OrderLine {
        description: "Audit".into(),
        quantity: "1".into(),
        unit_price: eur(50_000),
        ..Default::default()
    };
    let order = world.confirmed_order(&agency, &client, vec![line]).await;
    let finance_client = FinanceServiceClient::new(sentra_testkit::grpc::channel(addr));
    let started = Instant::now();
    loop {
        let request =
            bearer(&agency.owner, pb::ListInvoicesRequest { order_id: order.id.clone(), ..Default::default() });
        if finance_client.clone().list_invoices(request).await.is_ok_and(|r| r.into_inner().invoices.len() == 1) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no invoice; see {}", trusting.log.display());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted.load(Ordering::Relaxed) >= 2, "the probe, relay and consumer connected through TLS");
    trusting.kill().await;
    world.shutdown().await;
}
