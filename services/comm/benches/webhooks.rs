//! Webhooks and live notifications, Comm, Sales and Tenancy in this process (release build), on
//! the local PostgreSQL and RabbitMQ:
//!
//! 1. **Fan-out**: 50 endpoints on loopback receivers, one of them answering after 2 s; 200
//!    events each. Deliveries per second to the 49 others (the whole pipeline from the delivery
//!    rows: claim, sign, POST, record) against a plain reqwest client POSTing the same bodies to
//!    the same receivers at the same concurrency with nothing recorded, in the same run.
//! 2. **Event -> notification**: AssignLead in Sales until the assignee's open
//!    `WatchNotifications` stream shows it (Sales' outbox relay, RabbitMQ, Comm's consumer,
//!    `pg_notify`, the stream), p50 and p99.
//!
//! Writes `target/bench/comm-webhooks.md` and `.json`. `SENTRA_BENCH_WEBHOOK_EVENTS` changes the
//! events per endpoint.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use sentra_comm::{Application, Config};
use sentra_crypto::KeyRingConfig;
use sentra_proto::sentra::comm::v1 as pb;
use sentra_proto::sentra::comm::v1::notification_service_client::NotificationServiceClient;
use sentra_proto::sentra::comm::v1::webhook_service_client::WebhookServiceClient;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_testkit::grpc::bearer;
use sentra_testkit::webhooks::Receiver;
use sentra_testkit::{TestDatabase, tenancy};

const ENDPOINTS: usize = 50;
const CONCURRENCY: usize = 64;
const PER_ENDPOINT: usize = 4;
const NOTIFICATIONS: usize = 200;

type Stop = tokio::sync::oneshot::Sender<()>;

fn stoppable<F>(run: impl FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> F) -> Stop
where
    F: std::future::Future + Send + 'static,
    F::Output: Send,
{
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run(Box::pin(async {
        let _ = stopped.await;
    })));
    stop
}

fn body(n: usize) -> String {
    serde_json::json!({
        "type": "sales.lead.created",
        "timestamp": "2026-12-03T12:00:00.000000Z",
        "data": {
            "leadId": uuid::Uuid::now_v7().to_string(),
            "brandId": uuid::Uuid::now_v7().to_string(),
            "contact": {"name": format!("Lead {n}"), "email": format!("lead{n}@client.example"), "phone": "+49 30 1234567", "company": "Client GmbH"},
            "source": "website",
            "estimatedValue": {"currencyCode": "EUR", "amountMinor": "1250000"},
            "notes": "Wants a new website and a shop; budget agreed in principle.",
            "occurTime": "2026-12-03T12:00:00Z"
        }
    })
    .to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::var("SENTRA_BENCH_WEBHOOK_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let db = TestDatabase::create().await;
    let prefix = sentra_testkit::unique_prefix("comm-hooks-bench");
    let mut tenancy_config = sentra_tenancy::Config::default();
    tenancy_config.server.host = Ipv4Addr::LOCALHOST.into();
    tenancy_config.server.port = 0;
    tenancy_config.database.url = db.secret_url();
    tenancy_config.redis.key_prefix = format!("{prefix}:");
    tenancy_config.shutdown.drain = Duration::ZERO;
    let tenancy_app = sentra_tenancy::Application::build(tenancy_config).await.expect("tenancy builds");
    let tenancy_addr = tenancy_app.local_addr();
    let tenancy_stop = stoppable(|s| tenancy_app.run_until(s));

    let mut sales_config = sentra_sales::Config::default();
    sales_config.server.host = Ipv4Addr::LOCALHOST.into();
    sales_config.server.port = 0;
    sales_config.database.url = db.secret_url();
    sales_config.amqp.prefix = prefix.clone();
    sales_config.shutdown.drain = Duration::ZERO;
    sales_config.tenancy_url = format!("http://{tenancy_addr}");
    let sales_app = sentra_sales::Application::build(sales_config).await.expect("sales builds");
    let sales_addr = sales_app.local_addr();
    let sales_stop = stoppable(|s| sales_app.run_until(s));

    let mut config = Config::default();
    config.server.host = Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.shutdown.drain = Duration::ZERO;
    config.database.url = db.secret_url();
    config.database.max_connections = 16;
    config.amqp.prefix = prefix.clone();
    config.amqp.queue_expiry_secs = sentra_testkit::QUEUE_EXPIRY_SECS;
    config.tenancy_url = format!("http://{tenancy_addr}");
    config.keys = KeyRingConfig::single("bench", &[7u8; 32]);
    config.state_secret = "bench".to_string().into();
    config.sync.enabled = false;
    config.webhooks.allow_addresses = vec!["127.0.0.1".into()];
    config.webhooks.concurrency = CONCURRENCY;
    config.webhooks.per_endpoint_concurrency = PER_ENDPOINT;
    let app = Application::build(config).await.expect("comm builds");
    let comm_addr: SocketAddr = app.local_addr();
    let comm_stop = stoppable(|s| app.run_until(s));

    let channel = sentra_testkit::grpc::channel(tenancy_addr);
    let tenancy_client = TenancyServiceClient::new(channel.clone());
    let auth = AuthServiceClient::new(channel);
    tenancy::sign_up(&tenancy_client, "Hook Bench").await;
    let owner = tenancy::login(&auth, &tenancy::owner_email("Hook Bench"), "").await;

    // 1. Fan-out.
    let mut receivers = Vec::new();
    let mut hooks = WebhookServiceClient::new(sentra_testkit::grpc::channel(comm_addr));
    let mut endpoint_ids = Vec::new();
    for n in 0..ENDPOINTS {
        let receiver = Receiver::start().await;
        if n == 0 {
            receiver.slow(Duration::from_secs(2));
        }
        let created = hooks
            .create_webhook_endpoint(bearer(
                &owner,
                pb::CreateWebhookEndpointRequest {
                    endpoint: Some(pb::WebhookEndpoint {
                        url: receiver.url(),
                        event_types: vec!["bench.only".into()],
                        enabled: true,
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
            ))
            .await
            .expect("endpoint")
            .into_inner();
        endpoint_ids.push(uuid::Uuid::parse_str(&created.endpoint.expect("endpoint").endpoint_id).expect("uuid"));
        receivers.push(receiver);
    }
    let bodies: Vec<String> = (0..events).map(body).collect();
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(db.url()).await.expect("pool");
    let organization: uuid::Uuid = sqlx::query_scalar("SELECT organization_id FROM comm.webhook_endpoints LIMIT 1")
        .fetch_one(&pool)
        .await
        .expect("org");
    let message_ids: Vec<String> = (0..events).map(|_| format!("msg_{}", uuid::Uuid::now_v7().simple())).collect();
    sqlx::query(
        "INSERT INTO comm.webhook_messages (message_id, organization_id, event_type, payload, occurred_at) SELECT m, $3, \
         'sales.lead.created', p, now() FROM unnest($1::text[], $2::text[]) AS t(m, p)",
    )
    .bind(&message_ids)
    .bind(&bodies)
    .bind(organization)
    .execute(&pool)
    .await
    .expect("messages");
    let t0 = Instant::now();
    sqlx::query(
        "INSERT INTO comm.webhook_deliveries (delivery_id, endpoint_id, message_id) SELECT gen_random_uuid(), e, m FROM \
         unnest($1::uuid[]) AS e, unnest($2::text[]) AS m",
    )
    .bind(&endpoint_ids)
    .bind(&message_ids)
    .execute(&pool)
    .await
    .expect("deliveries");
    sqlx::query("SELECT pg_notify('comm_webhooks', '')").execute(&pool).await.expect("wake");
    let fast = (ENDPOINTS - 1) * events;
    let ours = loop {
        let delivered: usize = receivers[1..].iter().map(Receiver::count).sum();
        let succeeded: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM comm.webhook_deliveries WHERE status = 'succeeded' AND endpoint_id <> $1",
        )
        .bind(endpoint_ids[0])
        .fetch_one(&pool)
        .await
        .expect("count");
        if delivered >= fast && succeeded >= i64::try_from(fast).unwrap_or(i64::MAX) {
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(600), "fan-out did not finish: {delivered}/{fast}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let slow_done = receivers[0].count();
    let ours_rate = fast as f64 / ours.as_secs_f64();
    println!(
        "webhooks: {fast} deliveries to 49 endpoints in {:.2} s = {ours_rate:.0}/s (slow endpoint: {slow_done} so far)",
        ours.as_secs_f64()
    );

    let http = reqwest::Client::new();
    let pairs: Vec<(String, &String)> =
        receivers[1..].iter().flat_map(|r| bodies.iter().map(move |b| (r.url(), b))).collect();
    let t1 = Instant::now();
    futures::stream::iter(pairs)
        .map(|(url, body)| {
            let http = http.clone();
            async move {
                let response = http
                    .post(url)
                    .header("content-type", "application/json")
                    .header("webhook-id", "msg_baseline")
                    .header("webhook-timestamp", "1764763200")
                    .header("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("baseline post");
                assert!(response.status().is_success());
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    let plain = t1.elapsed();
    let plain_rate = fast as f64 / plain.as_secs_f64();
    println!("plain reqwest: {fast} POSTs in {:.2} s = {plain_rate:.0}/s", plain.as_secs_f64());

    // 2. Event -> notification.
    let brand = tenancy::create_brand(
        &tenancy_client,
        &owner,
        tpb::Brand {
            name: "Bench".into(),
            domain: "bench.hook-bench.example".into(),
            invoice_prefix: "BE".into(),
            default_currency: "EUR".into(),
            ..Default::default()
        },
    )
    .await
    .id;
    let agent_email = "agent@hook-bench.example";
    let agent = tenancy::staff_member(&tenancy_client, &owner, agent_email, &brand, tpb::BrandRole::Agent).await.id;
    let agent_token = tenancy::login(&auth, agent_email, "").await;
    let mut notes = NotificationServiceClient::new(sentra_testkit::grpc::channel(comm_addr));
    let mut stream = notes
        .watch_notifications(bearer(&agent_token, pb::WatchNotificationsRequest {}))
        .await
        .expect("watch")
        .into_inner();
    let mut sales = SalesServiceClient::new(sentra_testkit::grpc::channel(sales_addr));
    let mut latencies = Vec::with_capacity(NOTIFICATIONS);
    for n in 0..NOTIFICATIONS {
        let lead = spb::Lead { brand_id: brand.clone(), contact_name: format!("Live {n}"), ..Default::default() };
        let lead = sales
            .create_lead(bearer(&owner, spb::CreateLeadRequest { lead: Some(lead), request_id: String::new() }))
            .await
            .expect("lead")
            .into_inner()
            .lead
            .expect("lead");
        let sent = Instant::now();
        sales
            .assign_lead(bearer(
                &owner,
                spb::AssignLeadRequest { lead_id: lead.id.clone(), assignee_id: agent.clone(), ..Default::default() },
            ))
            .await
            .expect("assign");
        loop {
            let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
                .await
                .expect("a notification within 30 s")
                .expect("open stream")
                .expect("message");
            if message.notification.is_some_and(|n| n.subject == format!("leads/{}", lead.id)) {
                latencies.push(sent.elapsed());
                break;
            }
        }
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "event -> notification over {NOTIFICATIONS}: p50 {:.1} ms, p99 {:.1} ms",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );

    let ratio = ours_rate / plain_rate;
    let report = format!(
        "# Comm: webhooks and live notifications\n\nComm, Sales and Tenancy in process (release), local PostgreSQL and RabbitMQ, receivers on loopback.\n\n\
         | Case | Result |\n| --- | --- |\n\
         | Webhook fan-out: {fast} deliveries to 49 endpoints ({events} events each) while a 50th answers after 2 s; concurrency {CONCURRENCY}, {PER_ENDPOINT} per endpoint | {:.2} s = **{ours_rate:.0} deliveries/s** |\n\
         | Plain reqwest client, the same bodies to the same 49 receivers, concurrency {CONCURRENCY}, nothing recorded | {:.2} s = {plain_rate:.0} POSTs/s |\n\
         | Ratio (ours / plain) | **{ratio:.2}** |\n\
         | Slow endpoint meanwhile | {slow_done} of {events} delivered (4 at a time, 2 s each) |\n\
         | AssignLead -> notification on an open WatchNotifications stream ({NOTIFICATIONS} assignments) | p50 **{:.1} ms**, p99 **{:.1} ms** |\n",
        ours.as_secs_f64(),
        plain.as_secs_f64(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
    );
    let json = serde_json::json!({
        "fanout_deliveries": fast,
        "fanout_secs": ours.as_secs_f64(),
        "fanout_per_sec": ours_rate,
        "plain_per_sec": plain_rate,
        "ratio": ratio,
        "slow_endpoint_delivered": slow_done,
        "notification_p50_ms": p50.as_secs_f64() * 1e3,
        "notification_p99_ms": p99.as_secs_f64() * 1e3,
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(dir.join("comm-webhooks.md"), report).expect("write report");
    std::fs::write(dir.join("comm-webhooks.json"), json.to_string()).expect("write json");
    for stop in [comm_stop, sales_stop, tenancy_stop] {
        let _ = stop.send(());
    }
}
