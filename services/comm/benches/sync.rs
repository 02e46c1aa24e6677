//! Gmail full sync against the fake Gmail of `sentra-testkit`, Comm and Tenancy in this process
//! (release build), on the local PostgreSQL:
//!
//! 1. **Import rate**: 10,000 messages, the fake answering at once and enforcing no quota, our
//!    limiter out of the way: messages per second from CompleteMailboxConnection to ACTIVE.
//! 2. **Under Gmail's quota**: the same mailbox size with the fake enforcing Gmail's per-user
//!    limit (250 units/s) and Comm spending at that rate: the time against the quota-limited
//!    minimum, the units Gmail charged divided by 250 (target ≤ 1.2×).
//!
//! `cargo bench -p sentra-comm` (or `make bench`) writes `target/bench/comm.md` and `.json`.
//! `SENTRA_BENCH_SYNC_MESSAGES` changes the mailbox size.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use sentra_comm::{Application, Config};
use sentra_crypto::KeyRingConfig;
use sentra_proto::sentra::comm::v1 as pb;
use sentra_proto::sentra::comm::v1::comm_service_client::CommServiceClient;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_testkit::gmail::FakeGmail;
use sentra_testkit::grpc::bearer;
use sentra_testkit::{TestDatabase, tenancy};

/// Gmail's per-user quota, units per second.
const GMAIL_QUOTA: u32 = 250;

struct Outcome {
    messages: i64,
    elapsed: Duration,
    units: u64,
}

async fn sync_once(db: &TestDatabase, tenancy_addr: SocketAddr, token: &str, n: usize, quota: Option<u32>) -> Outcome {
    let gmail = FakeGmail::start().await;
    let email = format!("bench-{}@agency.example", uuid::Uuid::new_v4().simple());
    gmail.add_user(&email);
    gmail.consent_as(&email);
    gmail.seed(&email, n);
    let listed = i64::try_from(gmail.listed_messages(&email).len()).unwrap_or(i64::MAX);
    if let Some(quota) = quota {
        gmail.enforce_quota(quota);
    }
    let mut config = Config::default();
    config.server.host = Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.shutdown.drain = Duration::ZERO;
    config.database.url = db.secret_url();
    config.database.max_connections = 16;
    config.amqp.prefix = sentra_testkit::unique_prefix("comm-bench");
    config.tenancy_url = format!("http://{tenancy_addr}");
    config.keys = KeyRingConfig::single("bench", &[7u8; 32]);
    config.state_secret = "bench".to_string().into();
    config.google = config.google.at(&gmail.base_url(), gmail.client_id(), gmail.client_secret());
    config.google.redirect_uri = "http://bench.example/app/mailboxes/callback".into();
    config.sync.poll_interval_secs = 0.2;
    config.sync.fetch_concurrency = 16;
    config.sync.import_batch = 500;
    config.sync.quota_units_per_sec = quota.unwrap_or(1_000_000);
    let app = Application::build(config).await.expect("comm builds");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let mut comm = CommServiceClient::new(sentra_testkit::grpc::channel(addr));
    let started = comm
        .start_mailbox_connection(bearer(token, pb::StartMailboxConnectionRequest {}))
        .await
        .expect("start")
        .into_inner();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let consent = http.get(&started.authorization_url).send().await.expect("consent");
    let location = reqwest::Url::parse(consent.headers()["location"].to_str().expect("location")).expect("url");
    let code = location.query_pairs().find(|(k, _)| k == "code").expect("code").1.into_owned();
    let t0 = Instant::now();
    let mailbox = comm
        .complete_mailbox_connection(bearer(token, pb::CompleteMailboxConnectionRequest { code, state: started.state }))
        .await
        .expect("complete")
        .into_inner()
        .mailbox
        .expect("mailbox");
    let elapsed = loop {
        let m = comm
            .get_mailbox(bearer(token, pb::GetMailboxRequest { mailbox_id: mailbox.mailbox_id.clone() }))
            .await
            .expect("get")
            .into_inner()
            .mailbox
            .expect("mailbox");
        if m.stage() == pb::SyncStage::Active && m.pending_count == 0 && m.message_count == listed {
            break t0.elapsed();
        }
        assert!(t0.elapsed() < Duration::from_secs(1800), "sync did not finish: {m:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let units = gmail.units_used(&email);
    let _ = stop.send(());
    let _ = server.await;
    Outcome { messages: listed, elapsed, units }
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("SENTRA_BENCH_SYNC_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let db = TestDatabase::create().await;
    let mut tenancy_config = sentra_tenancy::Config::default();
    tenancy_config.server.host = Ipv4Addr::LOCALHOST.into();
    tenancy_config.server.port = 0;
    tenancy_config.database.url = db.secret_url();
    tenancy_config.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("comm-bench"));
    tenancy_config.shutdown.drain = Duration::ZERO;
    let tenancy_app = sentra_tenancy::Application::build(tenancy_config).await.expect("tenancy builds");
    let tenancy_addr = tenancy_app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let tenancy_server = tokio::spawn(tenancy_app.run_until(async {
        let _ = stopped.await;
    }));
    let channel = sentra_testkit::grpc::channel(tenancy_addr);
    tenancy::sign_up(&TenancyServiceClient::new(channel.clone()), "Bench Agency").await;
    let token = tenancy::login(&AuthServiceClient::new(channel), &tenancy::owner_email("Bench Agency"), "").await;

    let free = sync_once(&db, tenancy_addr, &token, n, None).await;
    let rate = free.messages as f64 / free.elapsed.as_secs_f64();
    println!(
        "full sync, no quota: {} messages in {:.2} s = {rate:.0} messages/s",
        free.messages,
        free.elapsed.as_secs_f64()
    );
    let limited = sync_once(&db, tenancy_addr, &token, n, Some(GMAIL_QUOTA)).await;
    let minimum = limited.units as f64 / f64::from(GMAIL_QUOTA);
    let ratio = limited.elapsed.as_secs_f64() / minimum;
    println!(
        "full sync at {GMAIL_QUOTA} units/s: {} messages in {:.1} s; Gmail charged {} units, minimum {minimum:.1} s; ratio {ratio:.3}",
        limited.messages,
        limited.elapsed.as_secs_f64(),
        limited.units
    );

    let report = format!(
        "# Comm: Gmail full sync\n\nFake Gmail in process, Comm and Tenancy in process (release), local PostgreSQL.\n\n\
         | Case | Messages | Time | Result |\n| --- | --- | --- | --- |\n\
         | no quota, zero latency | {} | {:.2} s | **{rate:.0} messages/s** |\n\
         | Gmail's quota ({GMAIL_QUOTA} units/s per user) | {} | {:.1} s | {} units charged, minimum {minimum:.1} s: **{ratio:.3}×** the quota-limited minimum (target ≤ 1.2×) |\n",
        free.messages,
        free.elapsed.as_secs_f64(),
        limited.messages,
        limited.elapsed.as_secs_f64(),
        limited.units
    );
    let json = serde_json::json!({
        "messages": free.messages,
        "import_messages_per_sec": rate,
        "quota_units_per_sec": GMAIL_QUOTA,
        "quota_elapsed_secs": limited.elapsed.as_secs_f64(),
        "quota_units": limited.units,
        "quota_minimum_secs": minimum,
        "quota_ratio": ratio,
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(dir.join("comm.md"), report).expect("write report");
    std::fs::write(dir.join("comm.json"), json.to_string()).expect("write json");
    let _ = stop.send(());
    let _ = tenancy_server.await;
}
