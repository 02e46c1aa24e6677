//! Two Finance replicas as real processes on one database and one broker; the one that leads
//! (the invoices projection, the event relay) is killed with SIGKILL while orders keep being
//! confirmed. No confirmed order is lost or invoiced twice, and the survivor takes over the
//! projection and the relay within a bounded time (the figures are printed).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use sentra_proto::sentra::finance::v1 as pb;
use sentra_proto::sentra::finance::v1::finance_service_client::FinanceServiceClient;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_testkit::grpc::wait_for_health;
use sentra_testkit::process::{Process, free_port};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::{World, bearer, eur, spawn, spy};

/// How long the survivor may take to take over; the measured figures are printed.
const TAKEOVER_BOUND: Duration = Duration::from_secs(15);

/// A `sentra-finance` process on the world's database and broker names.
async fn replica(world: &World, name: &str) -> (Process, SocketAddr) {
    let port = free_port();
    let env = [
        ("SENTRA_FINANCE__SERVER__HOST", "127.0.0.1".to_owned()),
        ("SENTRA_FINANCE__SERVER__PORT", port.to_string()),
        ("SENTRA_FINANCE__SHUTDOWN__DRAIN", "0".to_owned()),
        ("SENTRA_FINANCE__DATABASE__URL", world.db.url().to_owned()),
        ("SENTRA_FINANCE__DATABASE__MAX_CONNECTIONS", "6".to_owned()),
        ("SENTRA_FINANCE__AMQP__URL", sentra_testkit::amqp_url()),
        ("SENTRA_FINANCE__AMQP__PREFIX", world.amqp_prefix.clone()),
        ("SENTRA_FINANCE__AMQP__QUEUE_EXPIRY_SECS", sentra_testkit::QUEUE_EXPIRY_SECS.to_string()),
        ("SENTRA_FINANCE__TENANCY_URL", format!("http://{}", world.tenancy_addr)),
        ("SENTRA_FINANCE__RETRY_DELAY_SECS", "0.2".to_owned()),
        ("SENTRA_FINANCE__LOG__FILTER", "info".to_owned()),
    ];
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let process = Process::spawn(Path::new(env!("CARGO_BIN_EXE_sentra-finance")), name, &env);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let up = tokio::time::timeout(
        Duration::from_secs(40),
        wait_for_health(addr, "", ServingStatus::Serving, Duration::from_secs(40)),
    )
    .await;
    assert!(up.is_ok(), "{name} did not serve; see {}", process.log.display());
    (process, addr)
}

/// The invoices Finance lists for `order_id` (its projection).
async fn invoices_of(finance: &FinanceServiceClient<tonic::transport::Channel>, token: &str, order_id: &str) -> usize {
    let request = bearer(token, pb::ListInvoicesRequest { order_id: order_id.into(), ..Default::default() });
    finance.clone().list_invoices(request).await.map(|r| r.into_inner().invoices.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_finance_replica_loses_no_order_and_the_survivor_takes_over() {
    let mut world = spawn().await;
    let agency = world.agency("Failover Agency").await;
    let client = world.client(&agency, "Fay Client").await;
    world.stop_finance().await;

    // A spy on Finance's own events, to see which replica's relay publishes them.
    let (conn, _channel, mut published) = spy(&world, "failover-spy", "finance.#").await;

    // A starts first and takes the projection's and the relay's locks; B stands by.
    let log = |p: &Process| std::fs::read_to_string(&p.log).unwrap_or_default();
    let leads = |text: &str| text.contains("Projection active.") && text.contains("Relay active.");
    let (mut a, _a_addr) = replica(&world, "finance-a").await;
    let started = Instant::now();
    while !leads(&log(&a)) {
        assert!(started.elapsed() < Duration::from_secs(20), "A never led; see {}", a.log.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (mut b, b_addr) = replica(&world, "finance-b").await;
    let survivor = FinanceServiceClient::new(sentra_testkit::grpc::channel(b_addr));
    let token = agency.owner.clone();

    let line = || spb::OrderLine {
        description: "Retainer".into(),
        quantity: "1".into(),
        unit_price: eur(100_000),
        ..Default::default()
    };
    let mut orders = Vec::new();
    for _ in 0..8 {
        orders.push(world.confirmed_order(&agency, &client, vec![line()]).await.id);
    }
    // A leads; B has been standing by.
    assert!(!log(&b).contains("Projection active."), "B stands by; see {}", b.log.display());
    // Mid-load: A dies without a word (no drain, no lock release, no checkpoint).
    a.kill().await;
    let killed_at = Instant::now();
    let mut after_kill = Vec::new();
    for _ in 0..8 {
        let id = world.confirmed_order(&agency, &client, vec![line()]).await.id;
        orders.push(id.clone());
        after_kill.push(id);
    }

    // The survivor lists the invoice of an order confirmed after the kill: its consumer and its
    // projection run.
    let first_after = &after_kill[0];
    let projection_took = loop {
        if invoices_of(&survivor, &token, first_after).await == 1 {
            break killed_at.elapsed();
        }
        assert!(killed_at.elapsed() < TAKEOVER_BOUND, "B's projection did not take over; see {}", b.log.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // And its relay publishes that invoice's events.
    let invoice_id = sentra_finance::app::invoice_id_for_order(first_after.parse().unwrap()).to_string();
    let relay_took = loop {
        let remaining = TAKEOVER_BOUND.saturating_sub(killed_at.elapsed());
        let delivery = tokio::time::timeout(remaining, published.next()).await;
        let Ok(Some(Ok(delivery))) = delivery else {
            panic!("B's relay did not publish the invoice within {TAKEOVER_BOUND:?}; see {}", b.log.display())
        };
        if sentra_bus::header_str(&delivery.properties, sentra_bus::headers::AGGREGATE_ID).as_deref()
            == Some(invoice_id.as_str())
        {
            break killed_at.elapsed();
        }
    };
    assert!(leads(&log(&b)), "B took the projection and the relay over; see {}", b.log.display());
    eprintln!("failover: projection took over {projection_took:?} after SIGKILL, relay {relay_took:?}");

    // Every confirmed order has exactly one invoice, before and after the kill.
    for order in &orders {
        let started = Instant::now();
        while invoices_of(&survivor, &token, order).await != 1 {
            assert!(started.elapsed() < Duration::from_secs(15), "order {order} has no invoice");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let all = survivor
        .clone()
        .list_invoices(bearer(&token, pb::ListInvoicesRequest { page_size: 100, ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .invoices;
    assert_eq!(all.len(), orders.len(), "one invoice per confirmed order, none twice");
    let mut billed: Vec<&str> = all.iter().map(|i| i.order_id.as_str()).collect();
    billed.sort_unstable();
    let mut confirmed: Vec<&str> = orders.iter().map(String::as_str).collect();
    confirmed.sort_unstable();
    assert_eq!(billed, confirmed, "the invoices bill exactly the confirmed orders");

    b.kill().await;
    let _ = conn.close(0, "done".into()).await;
    world.shutdown().await;
}
