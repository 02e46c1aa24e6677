//! Sales command throughput and latency over gRPC, projection lag, and the raw event-store append
//! they are measured against — all in one run on the same PostgreSQL.
//!
//! `cargo bench -p sentra-sales` (or `make bench`) writes `target/bench/sales.json` and
//! `target/bench/sales.md`. Each workload runs for a fixed time (`SENTRA_BENCH_SECS`, default 3).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sentra_event_store::{EventMetadata, EventStore, NewEvent};
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_proto::sentra::r#type::v1::Money;
use tonic::transport::Channel;

const PASSWORD: &str = "correct horse 42";

struct Result {
    name: String,
    concurrency: usize,
    ops_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
}

fn bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    request
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram")
}

/// Runs `op` from `concurrency` tasks for `secs`; each task gets its index and call number.
async fn measure<F, Fut>(name: &str, concurrency: usize, secs: f64, op: F) -> Result
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let (op, stop) = (op.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = histogram();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                op(task, n).await;
                h.record(t.elapsed().as_micros().max(1) as u64).expect("record");
                n += 1;
            }
            h
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = histogram();
    for t in tasks {
        all.add(t.await.expect("task")).expect("merge");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let result = Result {
        name: name.into(),
        concurrency,
        ops_per_sec: all.len() as f64 / elapsed,
        p50_us: all.value_at_quantile(0.5),
        p99_us: all.value_at_quantile(0.99),
    };
    println!(
        "{:<32} c={:<3} {:>9.0} ops/s  p50 {:>7} µs  p99 {:>7} µs",
        result.name, concurrency, result.ops_per_sec, result.p50_us, result.p99_us
    );
    result
}

/// Runs a service on its own runtime and threads, as a separate process would: the load
/// generator's tasks then do not compete with the service's background work (projections) for
/// the same scheduler.
fn serve_apart<B, R>(build: B) -> std::net::SocketAddr
where
    B: std::future::Future<Output = (std::net::SocketAddr, R)> + Send + 'static,
    R: std::future::Future<Output = ()> + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let (addr, run) = build.await;
            tx.send(addr).expect("report address");
            run.await;
        });
    });
    rx.recv().expect("service started")
}

#[tokio::main]
async fn main() {
    let secs: f64 = std::env::var("SENTRA_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let db = sentra_testkit::TestDatabase::create().await;

    let mut tenancy = sentra_tenancy::Config::default();
    tenancy.server.host = Ipv4Addr::LOCALHOST.into();
    tenancy.server.port = 0;
    tenancy.database.url = db.secret_url();
    tenancy.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("bench"));
    let tenancy_addr = serve_apart(async move {
        let app = sentra_tenancy::Application::build(tenancy).await.expect("tenancy");
        (app.local_addr(), async move {
            let _ = app.run_until(std::future::pending()).await;
        })
    });

    let mut sales = sentra_sales::Config::default();
    sales.server.host = Ipv4Addr::LOCALHOST.into();
    sales.server.port = 0;
    sales.database.url = db.secret_url();
    sales.database.max_connections = 40;
    sales.amqp.prefix = sentra_testkit::unique_prefix("bench");
    sales.tenancy_url = format!("http://{tenancy_addr}");
    sales.log.filter = "warn".into();
    let sales_addr = serve_apart(async move {
        let app = sentra_sales::Application::build(sales).await.expect("sales");
        (app.local_addr(), async move {
            let _ = app.run_until(std::future::pending()).await;
        })
    });

    // An agency with one brand and an agent.
    let tchan = Channel::from_shared(format!("http://{tenancy_addr}")).expect("uri").connect().await.expect("tenancy");
    let mut t = TenancyServiceClient::new(tchan.clone());
    let mut auth = AuthServiceClient::new(tchan);
    t.sign_up(tpb::SignUpRequest {
        organization_name: "Bench".into(),
        owner_email: "owner@bench.example".into(),
        owner_display_name: "Owner".into(),
        password: PASSWORD.into(),
        request_id: String::new(),
    })
    .await
    .expect("sign up");
    let login = |email: &'static str| {
        let mut auth = auth.clone();
        async move {
            let r = auth
                .login(tpb::LoginRequest { email: email.into(), password: PASSWORD.into(), host: String::new() })
                .await;
            r.expect("login").into_inner().tokens.expect("tokens").access_token
        }
    };
    let owner = login("owner@bench.example").await;
    let brand = sentra_testkit::tenancy::create_brand(
        &t,
        &owner,
        tpb::Brand {
            name: "Bench".into(),
            domain: "bench.example".into(),
            invoice_prefix: "BE".into(),
            default_currency: "EUR".into(),
            ..Default::default()
        },
    )
    .await
    .id;
    sentra_testkit::tenancy::staff_member(&t, &owner, "agent@bench.example", &brand, tpb::BrandRole::Agent).await;
    let token = Arc::new(login("agent@bench.example").await);
    let _ = &mut auth;

    let mut results = Vec::new();

    // Baseline: the raw event-store append of one event the size of a lead creation.
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(40)
        .after_connect(|c, _| {
            Box::pin(async move { sqlx::query("SET search_path = sales").execute(c).await.map(|_| ()) })
        })
        .connect(db.url())
        .await
        .expect("pool");
    let store = EventStore::new(pool.clone());
    let tenant = uuid::Uuid::new_v4();
    let payload = serde_json::json!({"type": "created", "brand_id": brand, "contact": {"contact_name": "Bench Lead", "email": "lead@bench.example", "phone": "+1", "company": "Bench Co"}, "source": "bench", "estimated_value": {"currency": "EUR", "amount_minor": 100000}, "notes": "", "assignee_id": null, "at": "2026-01-01T00:00:00Z"});
    for concurrency in [1, 32] {
        let (store, payload) = (store.clone(), payload.clone());
        results.push(
            measure("raw event-store append", concurrency, secs, move |_, _| {
                let (store, payload) = (store.clone(), payload.clone());
                async move {
                    let id = uuid::Uuid::now_v7().to_string();
                    store
                        .append(
                            tenant,
                            "bench",
                            &id,
                            0,
                            vec![NewEvent::new("created", "1", payload)],
                            &EventMetadata::default(),
                        )
                        .await
                        .expect("append");
                }
            })
            .await,
        );
    }

    let channel = Channel::from_shared(format!("http://{sales_addr}")).expect("uri").connect().await.expect("sales");
    let client = SalesServiceClient::new(channel);
    let new_lead = move |brand: String| spb::Lead {
        brand_id: brand,
        contact_name: "Bench Lead".into(),
        email: "lead@bench.example".into(),
        company: "Bench Co".into(),
        estimated_value: Some(Money { currency_code: "EUR".into(), amount_minor: 100_000 }),
        ..Default::default()
    };
    for concurrency in [1, 32] {
        let (client, token, brand) = (client.clone(), token.clone(), brand.clone());
        results.push(
            measure("CreateLead (gRPC)", concurrency, secs, move |_, _| {
                let (mut client, token, lead) = (client.clone(), token.clone(), new_lead(brand.clone()));
                async move {
                    client
                        .create_lead(bearer(
                            &token,
                            spb::CreateLeadRequest { lead: Some(lead), request_id: String::new() },
                        ))
                        .await
                        .expect("create");
                }
            })
            .await,
        );
    }

    // One lead per task, moved qualified <-> contacted (a legal move each time).
    for concurrency in [1, 32] {
        let mut leads = Vec::new();
        for _ in 0..concurrency {
            let mut c = client.clone();
            let lead = c
                .create_lead(bearer(
                    &token,
                    spb::CreateLeadRequest { lead: Some(new_lead(brand.clone())), request_id: String::new() },
                ))
                .await
                .expect("lead");
            let id = lead.into_inner().lead.expect("lead").id;
            c.change_lead_stage(bearer(
                &token,
                spb::ChangeLeadStageRequest {
                    lead_id: id.clone(),
                    stage: spb::LeadStage::Contacted.into(),
                    etag: String::new(),
                },
            ))
            .await
            .expect("stage");
            leads.push(id);
        }
        let (client, token, leads) = (client.clone(), token.clone(), Arc::new(leads));
        results.push(
            measure("ChangeLeadStage (gRPC)", concurrency, secs, move |task, n| {
                let (mut client, token, id) = (client.clone(), token.clone(), leads[task].clone());
                let stage = if n % 2 == 0 { spb::LeadStage::Qualified } else { spb::LeadStage::Contacted };
                async move {
                    client
                        .change_lead_stage(bearer(
                            &token,
                            spb::ChangeLeadStageRequest { lead_id: id, stage: stage.into(), etag: String::new() },
                        ))
                        .await
                        .expect("stage");
                }
            })
            .await,
        );
    }

    // Projection lag (commit -> visible in the `leads` read table): first idle, then while 32
    // tasks create leads as fast as they can.
    async fn sample_lag(
        client: &SalesServiceClient<Channel>,
        token: &str,
        brand: &str,
        pool: &sqlx::PgPool,
        secs: f64,
    ) -> Histogram<u64> {
        let mut lag = histogram();
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut sampler = client.clone();
        while Instant::now() < deadline {
            let lead = spb::Lead { brand_id: brand.into(), contact_name: "Lag Sample".into(), ..Default::default() };
            let lead = sampler
                .create_lead(bearer(token, spb::CreateLeadRequest { lead: Some(lead), request_id: String::new() }))
                .await
                .expect("lead");
            let committed = Instant::now();
            let id: uuid::Uuid = lead.into_inner().lead.expect("lead").id.parse().expect("uuid");
            loop {
                let seen: Option<i32> = sqlx::query_scalar("SELECT 1 FROM leads WHERE id = $1")
                    .bind(id)
                    .fetch_optional(pool)
                    .await
                    .expect("poll");
                if seen.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            lag.record(committed.elapsed().as_micros().max(1) as u64).expect("record");
        }
        lag
    }
    let idle_lag = sample_lag(&client, &token, &brand, &pool, secs).await;
    println!(
        "projection lag idle: p50 {} µs  p99 {} µs ({} samples)",
        idle_lag.value_at_quantile(0.5),
        idle_lag.value_at_quantile(0.99),
        idle_lag.len()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..32 {
        let (mut client, token, brand, stop) = (client.clone(), token.clone(), brand.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let _ = client
                    .create_lead(bearer(
                        &token,
                        spb::CreateLeadRequest { lead: Some(new_lead(brand.clone())), request_id: String::new() },
                    ))
                    .await;
            }
        }));
    }
    let lag = sample_lag(&client, &token, &brand, &pool, secs).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        let _ = t.await;
    }
    println!(
        "projection lag under c=32 CreateLead load: p50 {} µs  p99 {} µs ({} samples)",
        lag.value_at_quantile(0.5),
        lag.value_at_quantile(0.99),
        lag.len()
    );

    // Report.
    let raw = |c: usize| {
        results
            .iter()
            .find(|r| r.name.starts_with("raw") && r.concurrency == c)
            .map(|r| r.p50_us as f64)
            .unwrap_or(f64::NAN)
    };
    let mut md = String::from(
        "# Sales commands\n\n| workload | concurrency | ops/s | p50 µs | p99 µs | p50 / raw append p50 |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let mut json = Vec::new();
    for r in &results {
        let ratio = r.p50_us as f64 / raw(r.concurrency);
        md.push_str(&format!(
            "| {} | {} | {:.0} | {} | {} | {:.2} |\n",
            r.name, r.concurrency, r.ops_per_sec, r.p50_us, r.p99_us, ratio
        ));
        json.push(serde_json::json!({"workload": r.name, "concurrency": r.concurrency, "ops_per_sec": r.ops_per_sec, "p50_us": r.p50_us, "p99_us": r.p99_us, "latency_ratio_to_raw_append": ratio}));
    }
    md.push_str(&format!(
        "\nProjection lag (commit -> visible in `leads`): idle p50 {} µs, p99 {} µs ({} samples); under c=32 CreateLead load p50 {} µs, p99 {} µs ({} samples).\n",
        idle_lag.value_at_quantile(0.5),
        idle_lag.value_at_quantile(0.99),
        idle_lag.len(),
        lag.value_at_quantile(0.5),
        lag.value_at_quantile(0.99),
        lag.len()
    ));
    let lag_json = |h: &Histogram<u64>| serde_json::json!({"p50": h.value_at_quantile(0.5), "p99": h.value_at_quantile(0.99), "samples": h.len()});
    let report = serde_json::json!({"results": json, "projection_lag_us": {"idle": lag_json(&idle_lag), "under_load_c32": lag_json(&lag)}});
    let dir = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(dir.join("sales.json"), serde_json::to_string_pretty(&report).expect("json")).expect("write json");
    std::fs::write(dir.join("sales.md"), &md).expect("write md");
    println!("\n{md}");
    std::process::exit(0);
}
