//! The admin port: `/metrics` moves with calls, events and failed messages; `/healthz`, `/readyz`.

use std::net::SocketAddr;
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::types::FieldTable;
use sentra_proto::sentra::finance::v1 as pb;
use sentra_proto::sentra::sales::v1 as spb;

use crate::helpers::{eur, spawn};

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = sentra_testkit::envoy::http1_request(addr, http::Method::GET, path, &[], Default::default())
        .await
        .expect("admin port answers");
    (response.status.as_u16(), String::from_utf8(response.body.to_vec()).expect("text"))
}

/// The value of the series `series` (name and labels exactly as exposed), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

async fn scrape(addr: SocketAddr) -> String {
    let (status, text) = get(addr, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    text
}

/// Scrapes until `series` satisfies `ok`, or panics after 20 s with the last scrape.
async fn eventually(addr: SocketAddr, series: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(addr).await;
        if let Some(v) = value(&text, series).filter(|v| ok(*v)) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{series} never got there:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn metrics_move_with_calls_projections_and_dead_letters() {
    let mut world = spawn().await;
    let (finance, sales) = (world.finance_admin, world.sales_admin);

    let (status, _) = get(finance, "/healthz").await;
    assert_eq!(status, 200);
    let (status, body) = get(finance, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "serving\n"));

    // RED: a refused call is counted under its method and code, with its latency.
    let unauthenticated = r#"sentra_rpc_requests_total{service="finance",method="/sentra.finance.v1.FinanceService/ListInvoices",code="UNAUTHENTICATED"}"#;
    let before = value(&scrape(finance).await, unauthenticated).unwrap_or(0.0);
    for _ in 0..3 {
        let refused = world.finance.clone().list_invoices(pb::ListInvoicesRequest::default()).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    }
    let text = scrape(finance).await;
    assert_eq!(value(&text, unauthenticated), Some(before + 3.0), "{text}");
    let latency = r#"sentra_rpc_duration_seconds_count{service="finance",method="/sentra.finance.v1.FinanceService/ListInvoices"}"#;
    assert!(value(&text, latency).unwrap_or(0.0) >= 3.0, "{text}");
    assert_eq!(value(&text, r#"sentra_db_pool_max_connections{service="finance"}"#), Some(12.0), "{text}");
    assert!(value(&text, r#"sentra_db_pool_connections{service="finance",state="idle"}"#).is_some(), "{text}");

    // An order flows Sales -> bus -> Finance: the projections' positions move, the outbox drains,
    // and the invoice reads are counted as OK.
    let orders = r#"sentra_projection_position{service="sales",projection="sales.orders"}"#;
    let orders_before = value(&scrape(sales).await, orders).unwrap_or(0.0);
    let agency = world.agency("Metrics Agency").await;
    let client = world.client(&agency, "Mia Client").await;
    let line = spb::OrderLine {
        description: "Audit".into(),
        quantity: "1".into(),
        unit_price: eur(10_000),
        ..Default::default()
    };
    let order = world.confirmed_order(&agency, &client, vec![line]).await;
    world.invoice_for(&agency.finance, &order.id).await;
    eventually(sales, orders, |v| v > orders_before).await;
    eventually(sales, r#"sentra_projection_lag_events{service="sales",projection="sales.orders"}"#, |v| v == 0.0).await;
    eventually(sales, r#"sentra_outbox_depth{service="sales"}"#, |v| v == 0.0).await;
    eventually(finance, r#"sentra_projection_position{service="finance",projection="finance.invoices"}"#, |v| v > 0.0)
        .await;
    let text = scrape(finance).await;
    assert!(value(&text, r#"sentra_relay_lag_seconds{service="finance"}"#).is_some(), "{text}");
    let listed = r#"sentra_rpc_requests_total{service="finance",method="/sentra.finance.v1.FinanceService/ListInvoices",code="OK"}"#;
    assert!(value(&text, listed).unwrap_or(0.0) >= 1.0, "{text}");

    // A message nobody can read goes to the dead letters, and the counter says so.
    let queue = format!("{}finance.sales-orders", world.amqp_prefix);
    let dead = format!(r#"sentra_consumer_dead_letters_total{{service="finance",queue="{queue}"}}"#);
    let dead_before = value(&scrape(finance).await, &dead).unwrap_or(0.0);
    let conn =
        lapin::Connection::connect(&sentra_testkit::amqp_url(), lapin::ConnectionProperties::default()).await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .basic_publish(
            format!("{}sentra.events", world.amqp_prefix).as_str().into(),
            "sales.order.confirmed".into(),
            BasicPublishOptions::default(),
            b"not an envelope",
            BasicProperties::default().with_headers(FieldTable::default()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    eventually(finance, &dead, |v| v == dead_before + 1.0).await;
    let _ = conn.close(0, "done".into()).await;

    // `sentra-finance replay-dead-letters` moves it back to the queue; still unreadable, it is
    // dead-lettered again, and the rebuild command refuses while the serving replica runs it.
    let moved = sentra_finance::replay_dead_letters(&world.finance_config, 10).await.unwrap();
    assert_eq!(moved, 1);
    eventually(finance, &dead, |v| v == dead_before + 2.0).await;
    let busy = sentra_finance::rebuild_projection(&world.finance_config, "finance.invoices", Duration::from_secs(1));
    assert_eq!(busy.await.unwrap(), None, "the serving replica holds the projection");
    let unknown = sentra_finance::rebuild_projection(&world.finance_config, "finance.nope", Duration::ZERO).await;
    let error = unknown.unwrap_err().to_string();
    assert!(error.contains("finance.nope") && error.contains("finance.invoices"), "{error}");

    // With the service stopped, the rebuild replays Finance's events (the drafted invoice's).
    world.stop_servers().await;
    let rebuilt = sentra_finance::rebuild_projection(&world.finance_config, "finance.invoices", Duration::from_secs(5));
    assert!(rebuilt.await.unwrap().is_some_and(|replayed| replayed >= 1));
}
