//! What the edge costs: one unary call (Tenancy `ResolveBrandByDomain`, a Redis-cached read) at
//! concurrency 32, measured directly against Tenancy, through the gateway (gRPC over HTTP/2), and
//! through Envoy + gateway (gRPC over h2c to Envoy's listener, so the three modes speak the same
//! protocol and differ only in hops), all in one run on loopback. Writes
//! `target/bench/gateway.{json,md}` and prints the table. Run with `cargo bench -p sentra-gateway`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use tonic::transport::Channel;

const CONCURRENCY: usize = 32;
const CONNECTIONS: usize = 4;
const WARM_UP: Duration = Duration::from_secs(1);
const RUN_FOR: Duration = Duration::from_secs(5);
const DOMAIN: &str = "bench.edge.example";

struct Measured {
    mode: &'static str,
    calls: u64,
    errors: u64,
    per_second: f64,
    p50_us: u64,
    p99_us: u64,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).unwrap().tcp_nodelay(true).connect_lazy()
}

/// Runs CONCURRENCY workers over CONNECTIONS channels for WARM_UP + RUN_FOR; measures RUN_FOR.
async fn measure(mode: &'static str, addr: SocketAddr) -> Measured {
    let channels: Vec<Channel> = (0..CONNECTIONS).map(|_| channel(addr)).collect();
    let start = Instant::now();
    let measure_from = start + WARM_UP;
    let stop_at = measure_from + RUN_FOR;
    let mut workers = Vec::new();
    for i in 0..CONCURRENCY {
        let mut client = TenancyServiceClient::new(channels[i % CONNECTIONS].clone());
        workers.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let began = Instant::now();
                if began >= stop_at {
                    break;
                }
                let answer =
                    client.resolve_brand_by_domain(pb::ResolveBrandByDomainRequest { host: DOMAIN.into() }).await;
                if began >= measure_from {
                    match answer {
                        Ok(_) => histogram.record(began.elapsed().as_micros().max(1) as u64).unwrap(),
                        Err(status) => {
                            errors += 1;
                            first_error.get_or_insert(status);
                        }
                    }
                }
            }
            (histogram, errors, first_error)
        }));
    }
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut errors = 0;
    let mut first_error: Option<String> = None;
    for worker in workers {
        let (h, e, first) = worker.await.unwrap();
        all.add(h).unwrap();
        errors += e;
        if let Some(status) = first {
            first_error.get_or_insert(format!("{:?}: {}", status.code(), status.message()));
        }
    }
    if let Some(error) = first_error {
        eprintln!("{mode}: {errors} errors, first: {error}");
    }
    Measured {
        mode,
        calls: all.len(),
        errors,
        per_second: all.len() as f64 / RUN_FOR.as_secs_f64(),
        p50_us: all.value_at_quantile(0.50),
        p99_us: all.value_at_quantile(0.99),
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would not: only run for real.
    if !std::env::args().any(|a| a == "--bench") {
        println!("gateway bench: run with `cargo bench -p sentra-gateway`");
        return;
    }

    // Tenancy in-process with its own database, and one brand to resolve.
    let db = sentra_testkit::TestDatabase::create().await;
    let mut tenancy = sentra_tenancy::Config::default();
    tenancy.server.host = Ipv4Addr::LOCALHOST.into();
    tenancy.server.port = 0;
    tenancy.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("tenancy"));
    tenancy.database.url = db.secret_url();
    let tenancy = sentra_tenancy::Application::build(tenancy).await.unwrap();
    let tenancy_addr = tenancy.local_addr();
    let (stop_tenancy, stopped) = tokio::sync::oneshot::channel::<()>();
    let tenancy_task = tokio::spawn(tenancy.run_until(async {
        let _ = stopped.await;
    }));
    let setup = channel(tenancy_addr);
    let mut admin = TenancyServiceClient::new(setup.clone());
    admin
        .sign_up(pb::SignUpRequest {
            organization_name: "Bench Agency".into(),
            owner_email: "owner@bench.example".into(),
            owner_display_name: "Owner".into(),
            password: "correct horse 42".into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let token = sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient::new(setup)
        .login(pb::LoginRequest {
            email: "owner@bench.example".into(),
            password: "correct horse 42".into(),
            host: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap()
        .access_token;
    let mut create = tonic::Request::new(pb::CreateBrandRequest {
        brand: Some(pb::Brand {
            name: "Bench".into(),
            domain: DOMAIN.into(),
            display_name: "Bench Studio".into(),
            primary_color: "#112233".into(),
            support_email: format!("help@{DOMAIN}"),
            invoice_prefix: "BN".into(),
            default_currency: "EUR".into(),
            time_zone: "Europe/Berlin".into(),
            ..Default::default()
        }),
        request_id: String::new(),
    });
    create.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    admin.create_brand(create).await.unwrap();

    // The gateway with limits far above what the bench can reach (the Redis check still runs).
    let mut config = sentra_gateway::Config::default();
    config.server.host = Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("gateway"));
    config.upstreams.tenancy = sentra_gateway::config::AddressList(vec![format!("http://{tenancy_addr}")]);
    config.limits.ip = sentra_gateway::Rate::new(1e9, 1_000_000);
    config.limits.user = sentra_gateway::Rate::new(1e9, 1_000_000);
    config.limits.tenant = sentra_gateway::Rate::new(1e9, 1_000_000);
    let gateway = sentra_gateway::Application::build(config).await.unwrap();
    let gateway_addr = gateway.local_addr();
    let (stop_gateway, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway_task = tokio::spawn(gateway.run_until(async {
        let _ = stopped.await;
    }));
    let envoy = sentra_testkit::envoy::Envoy::start(gateway_addr, ".*").await;

    let direct = measure("direct to Tenancy", tenancy_addr).await;
    let through_gateway = measure("gateway (gRPC, HTTP/2)", gateway_addr).await;
    let through_envoy = measure("Envoy + gateway (gRPC, h2c)", envoy.addr).await;

    let rows = [&direct, &through_gateway, &through_envoy];
    let p50_overhead = through_gateway.p50_us as f64 / direct.p50_us as f64;
    let envoy_p50_ratio = through_envoy.p50_us as f64 / direct.p50_us as f64;
    let gateway_throughput = through_gateway.per_second / direct.per_second;
    let envoy_throughput = through_envoy.per_second / direct.per_second;

    let mut md = String::from(
        "# Gateway benchmark\n\nUnary `TenancyService/ResolveBrandByDomain`, concurrency 32 over 4 HTTP/2 connections, \
         5 s per mode after 1 s warm-up, loopback, everything on this machine.\n\n\
         | Mode | Calls | Errors | Calls/s | p50 (µs) | p99 (µs) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} | {:.0} | {} | {} |\n",
            r.mode, r.calls, r.errors, r.per_second, r.p50_us, r.p99_us
        ));
    }
    md.push_str(&format!(
        "\n| Ratio | Value | Target |\n| --- | ---: | --- |\n\
         | gateway p50 / direct p50 | {p50_overhead:.2} | <= 1.25 {} |\n\
         | Envoy + gateway p50 / direct p50 | {envoy_p50_ratio:.2} | (informational) |\n\
         | gateway throughput / direct | {gateway_throughput:.2} | (informational) |\n\
         | Envoy + gateway throughput / direct | {envoy_throughput:.2} | >= 0.60 {} |\n",
        if p50_overhead <= 1.25 { "met" } else { "MISSED" },
        if envoy_throughput >= 0.6 { "met" } else { "MISSED" },
    ));
    let json = serde_json::json!({
        "call": "sentra.tenancy.v1.TenancyService/ResolveBrandByDomain",
        "concurrency": CONCURRENCY,
        "connections": CONNECTIONS,
        "seconds_per_mode": RUN_FOR.as_secs_f64(),
        "modes": rows.iter().map(|r| serde_json::json!({
            "mode": r.mode, "calls": r.calls, "errors": r.errors, "per_second": r.per_second,
            "p50_us": r.p50_us, "p99_us": r.p99_us,
        })).collect::<Vec<_>>(),
        "ratios": {
            "gateway_p50_over_direct": p50_overhead,
            "envoy_gateway_p50_over_direct": envoy_p50_ratio,
            "gateway_throughput_over_direct": gateway_throughput,
            "envoy_gateway_throughput_over_direct": envoy_throughput,
        },
        "targets": {
            "gateway_p50_over_direct_max": 1.25,
            "envoy_gateway_throughput_over_direct_min": 0.6,
            "p50_met": p50_overhead <= 1.25,
            "throughput_met": envoy_throughput >= 0.6,
        },
    });
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("gateway.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
    std::fs::write(dir.join("gateway.md"), &md).unwrap();
    println!("{md}");

    envoy.stop().await;
    let _ = stop_gateway.send(());
    let _ = stop_tenancy.send(());
    let _ = gateway_task.await;
    let _ = tenancy_task.await;
    drop(db);
}
