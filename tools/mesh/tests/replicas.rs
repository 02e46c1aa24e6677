//! Replicas, proven on one machine: two Sales and two Finance processes behind two gateways
//! behind Envoy. While orders are created and confirmed and a reader lists leads, one Sales and
//! one Finance process (the ones leading their relays and projections) are killed with SIGKILL.
//! Reads and writes with a request id never fail (Envoy retries them on another path) and are
//! applied once, every confirmed order is invoiced exactly once, and the
//! survivors take over within a bound (the figures are printed).
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sentra_gateway::{AddressList, Rate};
use sentra_proto::sentra::finance::v1 as fpb;
use sentra_proto::sentra::finance::v1::finance_service_client::FinanceServiceClient;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_proto::sentra::r#type::v1::Money;
use sentra_testkit::TestDatabase;
use sentra_testkit::envoy::Envoy;
use sentra_testkit::grpc::{bearer, channel, wait_for_health};
use sentra_testkit::process::{Process, free_port};
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

/// How long the survivors may take to take over.
const TAKEOVER_BOUND: Duration = Duration::from_secs(20);

struct Names {
    db: String,
    amqp_prefix: String,
    tenancy: SocketAddr,
}

/// `sentra-mesh service <service>` as a process, configured like the deployed binary.
async fn replica(service: &str, names: &Names, label: &str) -> (Process, SocketAddr) {
    let port = free_port();
    let prefix = format!("SENTRA_{}__", service.to_uppercase());
    let mut env = vec![
        ("SERVER__HOST", "127.0.0.1".to_owned()),
        ("SERVER__PORT", port.to_string()),
        ("SHUTDOWN__DRAIN", "0".to_owned()),
        ("DATABASE__URL", names.db.clone()),
        ("DATABASE__MAX_CONNECTIONS", "6".to_owned()),
        ("AMQP__URL", sentra_testkit::amqp_url()),
        ("AMQP__PREFIX", names.amqp_prefix.clone()),
        ("TENANCY_URL", format!("http://{}", names.tenancy)),
        ("LOG__FILTER", "info".to_owned()),
    ];
    if service == "finance" {
        env.push(("AMQP__QUEUE_EXPIRY_SECS", sentra_testkit::QUEUE_EXPIRY_SECS.to_string()));
        env.push(("RETRY_DELAY_SECS", "0.2".to_owned()));
    }
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)).collect();
    let mut args_env = env.clone();
    args_env.push(("RUST_BACKTRACE".into(), "1".into()));
    let process =
        Process::spawn_with_args(Path::new(env!("CARGO_BIN_EXE_sentra-mesh")), &["service", service], label, &args_env);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let up = tokio::time::timeout(
        Duration::from_secs(60),
        wait_for_health(addr, "", ServingStatus::Serving, Duration::from_secs(60)),
    )
    .await;
    assert!(up.is_ok(), "{label} did not serve; see {}", process.log.display());
    (process, addr)
}

fn log(process: &Process) -> String {
    std::fs::read_to_string(&process.log).unwrap_or_default()
}

/// Waits until `process` logs that it leads its relay (and projections, if it has them).
async fn wait_leading(process: &Process, projections: bool) {
    let started = Instant::now();
    loop {
        let text = log(process);
        if text.contains("Relay active.") && (!projections || text.contains("Projection active.")) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never led; see {}", process.log.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Retries `call` on UNAVAILABLE, as a client does with a write that is not idempotent, then
/// checks what happened.
async fn retried<T, F, Fut>(what: &str, mut call: F) -> Result<T, tonic::Status>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let mut attempts = 0;
    loop {
        match call().await {
            Err(status) if status.code() == Code::Unavailable && attempts < 20 => {
                attempts += 1;
                eprintln!("{what}: UNAVAILABLE ({}), retrying", status.message());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_sales_and_a_finance_replica_mid_load_loses_nothing() {
    let db = TestDatabase::create().await;
    let amqp_prefix = sentra_testkit::unique_prefix("replicas");
    let keys = sentra_testkit::unique_prefix("replicas");

    let mut tenancy = sentra_tenancy::Config::default();
    tenancy.server.host = Ipv4Addr::LOCALHOST.into();
    tenancy.server.port = 0;
    tenancy.database.url = db.secret_url();
    tenancy.redis.key_prefix = format!("{keys}:tenancy:");
    tenancy.amqp.prefix = amqp_prefix.clone();
    tenancy.shutdown.drain = Duration::ZERO;
    let app = sentra_tenancy::Application::build(tenancy).await.unwrap();
    let tenancy_addr = app.local_addr();
    let (tenancy_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let tenancy_task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let names = Names { db: db.url().to_owned(), amqp_prefix: amqp_prefix.clone(), tenancy: tenancy_addr };

    // The A replicas start first and lead; the B replicas stand by.
    let (mut sales_a, sales_a_addr) = replica("sales", &names, "sales-a").await;
    let (mut finance_a, finance_a_addr) = replica("finance", &names, "finance-a").await;
    wait_leading(&sales_a, true).await;
    wait_leading(&finance_a, true).await;
    let (mut sales_b, sales_b_addr) = replica("sales", &names, "sales-b").await;
    let (mut finance_b, finance_b_addr) = replica("finance", &names, "finance-b").await;

    // Two gateways, each balancing over both replicas of each context, behind one Envoy.
    let mut gateways = Vec::new();
    let mut gateway_stops = Vec::new();
    for _ in 0..2 {
        let mut config = sentra_gateway::Config::default();
        config.server.host = Ipv4Addr::LOCALHOST.into();
        config.server.port = 0;
        config.shutdown.drain = Duration::ZERO;
        config.redis.url = sentra_testkit::redis_url().into();
        config.redis.key_prefix = format!("{keys}:gateway:");
        config.upstreams.tenancy = AddressList(vec![format!("http://{tenancy_addr}")]);
        config.upstreams.sales = AddressList(vec![format!("http://{sales_a_addr}"), format!("http://{sales_b_addr}")]);
        config.upstreams.finance =
            AddressList(vec![format!("http://{finance_a_addr}"), format!("http://{finance_b_addr}")]);
        config.limits.user = Rate::new(10_000.0, 10_000);
        config.limits.ip = Rate::new(10_000.0, 10_000);
        config.limits.tenant = Rate::new(10_000.0, 10_000);
        let app = sentra_gateway::Application::build(config).await.unwrap();
        gateways.push(app.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        gateway_stops.push(stop);
        tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
    }
    for gateway in &gateways {
        wait_for_health(*gateway, "", ServingStatus::Serving, Duration::from_secs(20)).await;
    }
    let envoy = Envoy::start_balanced(&gateways, SocketAddr::from(([127, 0, 0, 1], 1)), ".*", None).await;
    let edge: Channel = channel(envoy.addr);

    // An agency with a client, set up through Envoy.
    let tenancy_client = TenancyServiceClient::new(edge.clone());
    let auth = AuthServiceClient::new(edge.clone());
    sentra_testkit::tenancy::sign_up(&tenancy_client, "Replica Agency").await;
    let owner =
        sentra_testkit::tenancy::login(&auth, &sentra_testkit::tenancy::owner_email("Replica Agency"), "").await;
    let brand = sentra_testkit::tenancy::create_brand(
        &tenancy_client,
        &owner,
        tpb::Brand {
            name: "Replica".into(),
            domain: "app.replica.example".into(),
            invoice_prefix: "RP".into(),
            default_currency: "EUR".into(),
            time_zone: "Europe/Berlin".into(),
            ..Default::default()
        },
    )
    .await;
    let sales = SalesServiceClient::new(edge.clone());
    let client = sentra_testkit::sales::client(&sales, &owner, &brand.id, "Rita Client").await;

    // A reader lists leads through Envoy the whole time; every failure is kept.
    let stop_reading = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (sales, owner, brand, stop, reads) =
            (sales.clone(), owner.clone(), brand.id.clone(), stop_reading.clone(), reads.clone());
        tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let request = spb::ListLeadsRequest { brand_id: brand.clone(), ..Default::default() };
                if let Err(status) = sales.clone().list_leads(bearer(&owner, request)).await {
                    failures.push(status);
                }
                reads.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failures
        })
    };

    let line = || spb::OrderLine {
        description: "Sprint".into(),
        quantity: "1".into(),
        unit_price: Some(Money { currency_code: "EUR".into(), amount_minor: 400_000 }),
        ..Default::default()
    };
    let mut orders = Vec::new();
    let mut killed_at = None;
    let mut first_after_kill = None;
    for i in 0..16 {
        if i == 6 {
            sales_a.kill().await;
            finance_a.kill().await;
            killed_at = Some(Instant::now());
        }
        // A write with a request id: the client marks it idempotent and Envoy retries it on
        // another path if a replica dies under it; the client itself never retries.
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut request = bearer(
            &owner,
            spb::CreateOrderRequest {
                client_id: client.id.clone(),
                currency_code: "EUR".into(),
                lines: vec![line()],
                request_id: request_id.clone(),
            },
        );
        request.metadata_mut().insert("idempotency-key", request_id.parse().unwrap());
        let order = sales
            .clone()
            .create_order(request)
            .await
            .expect("CreateOrder through the fail-over")
            .into_inner()
            .order
            .unwrap();
        let confirmed = retried("ConfirmOrder", || {
            let request = spb::ConfirmOrderRequest { order_id: order.id.clone(), etag: String::new() };
            let mut sales = sales.clone();
            let owner = owner.clone();
            async move { sales.confirm_order(bearer(&owner, request)).await }
        })
        .await;
        if let Err(status) = confirmed {
            // A confirmation that was applied before its answer was lost: the retry finds the
            // order confirmed already.
            assert!(matches!(status.code(), Code::FailedPrecondition | Code::Aborted), "{status:?}");
            let got = sales
                .clone()
                .get_order(bearer(&owner, spb::GetOrderRequest { order_id: order.id.clone() }))
                .await
                .unwrap()
                .into_inner()
                .order
                .unwrap();
            assert_eq!(got.state, spb::OrderState::Confirmed as i32, "{status:?}");
        }
        if killed_at.is_some() && first_after_kill.is_none() {
            first_after_kill = Some(order.id.clone());
        }
        orders.push(order.id);
    }
    let killed_at = killed_at.unwrap();

    // The survivors' relays and projections: the first order confirmed after the kill is
    // invoiced and listed.
    let finance = FinanceServiceClient::new(edge.clone());
    let invoices_of = |order: String| {
        let (finance, owner) = (finance.clone(), owner.clone());
        async move {
            let request = bearer(&owner, fpb::ListInvoicesRequest { order_id: order, ..Default::default() });
            finance.clone().list_invoices(request).await.map(|r| r.into_inner().invoices.len()).unwrap_or(0)
        }
    };
    let first_after_kill = first_after_kill.unwrap();
    while invoices_of(first_after_kill.clone()).await != 1 {
        assert!(
            killed_at.elapsed() < TAKEOVER_BOUND,
            "no invoice for an order confirmed after the kill; see {} and {}",
            sales_b.log.display(),
            finance_b.log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = killed_at.elapsed();
    stop_reading.store(true, Ordering::Relaxed);
    let failures = reader.await.unwrap();
    eprintln!(
        "replicas: {} reads, {} failed; an order confirmed after the SIGKILL was invoiced and listed {:?} after it",
        reads.load(Ordering::Relaxed),
        failures.len(),
        takeover
    );
    assert!(failures.is_empty(), "reads failed during the fail-over: {failures:?}");
    assert!(log(&sales_b).contains("Relay active."), "sales-b took the relay over");
    assert!(log(&finance_b).contains("Projection active."), "finance-b took the projection over");

    // Nothing lost, nothing twice: 16 orders, each invoiced once.
    let listed = sales
        .clone()
        .list_orders(bearer(&owner, spb::ListOrdersRequest { page_size: 100, ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .orders;
    assert_eq!(listed.len(), orders.len(), "a retried CreateOrder made no second order");
    for order in &orders {
        let started = Instant::now();
        while invoices_of(order.clone()).await != 1 {
            assert!(started.elapsed() < Duration::from_secs(15), "order {order} has no invoice");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let all = finance
        .clone()
        .list_invoices(bearer(&owner, fpb::ListInvoicesRequest { page_size: 100, ..Default::default() }))
        .await
        .unwrap()
        .into_inner()
        .invoices;
    assert_eq!(all.len(), orders.len(), "one invoice per confirmed order");

    envoy.stop().await;
    for stop in gateway_stops {
        let _ = stop.send(());
    }
    sales_b.kill().await;
    finance_b.kill().await;
    let _ = tenancy_stop.send(());
    let _ = tenancy_task.await;
}
