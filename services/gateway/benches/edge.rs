//! What the edge costs, in one run on loopback: unary calls at concurrency 32, measured directly
//! against the service, through the gateway (gRPC over HTTP/2), and through Envoy + gateway
//! (gRPC over h2c to Envoy's listener, so the three modes speak the same protocol and differ only
//! in hops). Two calls:
//!
//! - Tenancy `ResolveBrandByDomain`: PUBLIC (rate-limited per client IP) and as cheap as a call
//!   gets (a Redis-cached read), so it shows the edge's own cost at its largest share: the worst
//!   case, where a proxy hop costs about as much CPU as the call itself.
//! - Sales `GetLead` with a staff token: a typical authenticated call (token verified at the edge
//!   and again in Sales, BRAND rule checked on the `x-sentra-brand-id` the call names, rate-limited
//!   per user and per organization, the lead loaded from the event store).
//!
//! The targets (gateway p50 <= 1.25x direct, Envoy + gateway throughput >= 0.6x direct) are
//! judged on the typical call. On the cheap one they cannot hold on a shared 2-core machine (Envoy
//! alone spends more CPU per call than the whole direct call), so its table reports the same
//! ratios as the floor of a proxy hop, for information.
//!
//! Tenancy, Sales and the gateway each run on their own tokio runtime and threads, as the separate
//! processes they are in production, and the load generator on the bench's own runtime; Envoy is
//! the real binary. Writes `target/bench/gateway.{json,md}` and prints the table. Run with
//! `cargo bench -p sentra-gateway`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_proto::sentra::r#type::v1::Money;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

const CONCURRENCY: usize = 32;
const CONNECTIONS: usize = 4;
/// Each mode runs ROUNDS slices of SLICE (after WARM_UP each), interleaved with the other modes
/// and rotated, so drift in the machine's state hits all modes alike.
const ROUNDS: usize = 5;
const WARM_UP: Duration = Duration::from_millis(500);
const SLICE: Duration = Duration::from_secs(2);
const DOMAIN: &str = "bench.edge.example";
const PASSWORD: &str = "correct horse 42";

struct Measured {
    mode: &'static str,
    calls: u64,
    errors: u64,
    per_second: f64,
    p50_us: u64,
    p99_us: u64,
}

/// The call every worker repeats.
#[derive(Clone)]
enum Call {
    ResolveBrand,
    GetLead {
        lead_id: String,
        bearer: MetadataValue<tonic::metadata::Ascii>,
        brand: MetadataValue<tonic::metadata::Ascii>,
    },
}

impl Call {
    async fn once(
        &self,
        tenancy: &mut TenancyServiceClient<Channel>,
        sales: &mut SalesServiceClient<Channel>,
    ) -> Result<(), tonic::Status> {
        match self {
            Call::ResolveBrand => {
                tenancy.resolve_brand_by_domain(pb::ResolveBrandByDomainRequest { host: DOMAIN.into() }).await?;
            }
            Call::GetLead { lead_id, bearer, brand } => {
                let mut request = tonic::Request::new(spb::GetLeadRequest { lead_id: lead_id.clone() });
                request.metadata_mut().insert("authorization", bearer.clone());
                request.metadata_mut().insert("x-sentra-brand-id", brand.clone());
                sales.get_lead(request).await?;
            }
        }
        Ok(())
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}")).unwrap().tcp_nodelay(true).connect_lazy()
}

fn bearer<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A service on its own runtime and threads, as a separate process would be: the load
/// generator's tasks and the other services do not share its scheduler.
struct Apart {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Apart {
    /// `start` builds the service, reports its address and serves until its stop signal. The
    /// threads are named after the service (`top -H`, `perf` tell them apart).
    fn start<F, Fut>(name: &str, start: F) -> Self
    where
        F: FnOnce(std::sync::mpsc::Sender<SocketAddr>, tokio::sync::oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let name = name.to_owned();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name(name)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(start(addr_tx, stopped));
        });
        let addr = addr_rx.recv().expect("service started");
        Self { addr, stop, thread }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::task::spawn_blocking(move || self.thread.join()).await;
    }
}

/// Runs CONCURRENCY workers over CONNECTIONS fresh channels for WARM_UP + SLICE; measures SLICE.
async fn slice(mode: &'static str, addr: SocketAddr, call: &Call) -> (Histogram<u64>, u64) {
    let channels: Vec<Channel> = (0..CONNECTIONS).map(|_| channel(addr)).collect();
    let start = Instant::now();
    let measure_from = start + WARM_UP;
    let stop_at = measure_from + SLICE;
    let mut workers = Vec::new();
    for i in 0..CONCURRENCY {
        let mut tenancy = TenancyServiceClient::new(channels[i % CONNECTIONS].clone());
        let mut sales = SalesServiceClient::new(channels[i % CONNECTIONS].clone());
        let call = call.clone();
        workers.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let began = Instant::now();
                if began >= stop_at {
                    break;
                }
                let answer = call.once(&mut tenancy, &mut sales).await;
                if began >= measure_from {
                    match answer {
                        Ok(()) => histogram.record(began.elapsed().as_micros().max(1) as u64).unwrap(),
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
    (all, errors)
}

/// One call in the three modes: ROUNDS interleaved, rotated slices each, merged.
async fn measure_modes(modes: [(&'static str, SocketAddr); 3], call: &Call) -> [Measured; 3] {
    let mut merged: Vec<(Histogram<u64>, u64)> =
        (0..3).map(|_| (Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap(), 0)).collect();
    for round in 0..ROUNDS {
        for turn in 0..3 {
            let index = (round + turn) % 3;
            let (histogram, errors) = slice(modes[index].0, modes[index].1, call).await;
            merged[index].0.add(histogram).unwrap();
            merged[index].1 += errors;
        }
    }
    let seconds = SLICE.as_secs_f64() * ROUNDS as f64;
    let mut rows = modes.iter().zip(merged).map(|(&(mode, _), (all, errors))| {
        let measured = Measured {
            mode,
            calls: all.len(),
            errors,
            per_second: all.len() as f64 / seconds,
            p50_us: all.value_at_quantile(0.50),
            p99_us: all.value_at_quantile(0.99),
        };
        println!(
            "{:<40} {:>8.0} calls/s  p50 {:>6} µs  p99 {:>6} µs",
            measured.mode, measured.per_second, measured.p50_us, measured.p99_us
        );
        measured
    });
    [rows.next().unwrap(), rows.next().unwrap(), rows.next().unwrap()]
}

/// One call measured in the three modes.
struct Series {
    call: &'static str,
    /// Whether the targets apply: they are set for a typical call; the cheapest call shows the
    /// floor of a proxy hop (a hop costs about as much CPU as the whole call), for information.
    targeted: bool,
    rows: [Measured; 3],
}

impl Series {
    fn p50_overhead(&self) -> f64 {
        self.rows[1].p50_us as f64 / self.rows[0].p50_us as f64
    }
    fn envoy_p50_ratio(&self) -> f64 {
        self.rows[2].p50_us as f64 / self.rows[0].p50_us as f64
    }
    fn gateway_throughput(&self) -> f64 {
        self.rows[1].per_second / self.rows[0].per_second
    }
    fn envoy_throughput(&self) -> f64 {
        self.rows[2].per_second / self.rows[0].per_second
    }

    fn markdown(&self, md: &mut String) {
        md.push_str(&format!(
            "\n## `{}`\n\n| Mode | Calls | Errors | Calls/s | p50 (µs) | p99 (µs) |\n| --- | ---: | ---: | ---: | ---: | ---: |\n",
            self.call
        ));
        for r in &self.rows {
            md.push_str(&format!(
                "| {} | {} | {} | {:.0} | {} | {} |\n",
                r.mode, r.calls, r.errors, r.per_second, r.p50_us, r.p99_us
            ));
        }
        let (p50, envoy_p50, gateway, envoy) =
            (self.p50_overhead(), self.envoy_p50_ratio(), self.gateway_throughput(), self.envoy_throughput());
        let verdict = |met: bool| match (self.targeted, met) {
            (true, true) => "met",
            (true, false) => "MISSED",
            (false, true) => "(floor, informational: met)",
            (false, false) => "(floor, informational: not met)",
        };
        md.push_str(&format!(
            "\n| Ratio | Value | Target |\n| --- | ---: | --- |\n\
             | gateway p50 / direct p50 | {p50:.2} | <= 1.25 {} |\n\
             | Envoy + gateway p50 / direct p50 | {envoy_p50:.2} | (informational) |\n\
             | gateway throughput / direct | {gateway:.2} | (informational) |\n\
             | Envoy + gateway throughput / direct | {envoy:.2} | >= 0.60 {} |\n",
            verdict(p50 <= 1.25),
            verdict(envoy >= 0.6),
        ));
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "call": self.call,
            "modes": self.rows.iter().map(|r| serde_json::json!({
                "mode": r.mode, "calls": r.calls, "errors": r.errors, "per_second": r.per_second,
                "p50_us": r.p50_us, "p99_us": r.p99_us,
            })).collect::<Vec<_>>(),
            "ratios": {
                "gateway_p50_over_direct": self.p50_overhead(),
                "envoy_gateway_p50_over_direct": self.envoy_p50_ratio(),
                "gateway_throughput_over_direct": self.gateway_throughput(),
                "envoy_gateway_throughput_over_direct": self.envoy_throughput(),
            },
            "targets": {
                "apply": self.targeted,
                "gateway_p50_over_direct_max": 1.25,
                "envoy_gateway_throughput_over_direct_min": 0.6,
                "p50_met": self.p50_overhead() <= 1.25,
                "throughput_met": self.envoy_throughput() >= 0.6,
            },
        })
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would not: only run for real.
    if !std::env::args().any(|a| a == "--bench") {
        println!("gateway bench: run with `cargo bench -p sentra-gateway`");
        return;
    }

    // Tenancy and Sales with their own database (one, two schemas).
    let db = sentra_testkit::TestDatabase::create().await;
    let mut tenancy_config = sentra_tenancy::Config::default();
    tenancy_config.server.host = Ipv4Addr::LOCALHOST.into();
    tenancy_config.server.port = 0;
    tenancy_config.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("tenancy"));
    tenancy_config.database.url = db.secret_url();
    let tenancy = Apart::start("tenancy", move |addr, stop| async move {
        let app = sentra_tenancy::Application::build(tenancy_config).await.expect("tenancy");
        addr.send(app.local_addr()).expect("report address");
        let _ = app
            .run_until(async {
                let _ = stop.await;
            })
            .await;
    });
    let mut sales_config = sentra_sales::Config::default();
    sales_config.server.host = Ipv4Addr::LOCALHOST.into();
    sales_config.server.port = 0;
    sales_config.database.url = db.secret_url();
    sales_config.amqp.prefix = sentra_testkit::unique_prefix("bench");
    sales_config.tenancy_url = format!("http://{}", tenancy.addr);
    sales_config.log.filter = "warn".into();
    let sales = Apart::start("sales", move |addr, stop| async move {
        let app = sentra_sales::Application::build(sales_config).await.expect("sales");
        addr.send(app.local_addr()).expect("report address");
        let _ = app
            .run_until(async {
                let _ = stop.await;
            })
            .await;
    });

    // An agency with a brand on DOMAIN and one lead; its owner (staff) reads the lead.
    let setup = channel(tenancy.addr);
    let mut admin = TenancyServiceClient::new(setup.clone());
    admin
        .sign_up(pb::SignUpRequest {
            organization_name: "Bench Agency".into(),
            owner_email: "owner@bench.example".into(),
            owner_display_name: "Owner".into(),
            password: PASSWORD.into(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let token = AuthServiceClient::new(setup)
        .login(pb::LoginRequest { email: "owner@bench.example".into(), password: PASSWORD.into(), host: String::new() })
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap()
        .access_token;
    let brand = sentra_testkit::tenancy::create_brand(
        &admin,
        &token,
        pb::Brand {
            name: "Bench".into(),
            domain: DOMAIN.into(),
            display_name: "Bench Studio".into(),
            primary_color: "#112233".into(),
            support_email: format!("help@{DOMAIN}"),
            invoice_prefix: "BN".into(),
            default_currency: "EUR".into(),
            time_zone: "Europe/Berlin".into(),
            ..Default::default()
        },
    )
    .await
    .id;
    let lead_id = SalesServiceClient::new(channel(sales.addr))
        .create_lead(bearer(
            &token,
            spb::CreateLeadRequest {
                lead: Some(spb::Lead {
                    brand_id: brand.clone(),
                    contact_name: "Bench Lead".into(),
                    email: "lead@bench.example".into(),
                    company: "Bench Co".into(),
                    estimated_value: Some(Money { currency_code: "EUR".into(), amount_minor: 100_000 }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap()
        .id;

    // The gateway with limits far above what the bench can reach (the limiter still runs on
    // every call: leases are reserved in Redis and spent per call).
    let mut config = sentra_gateway::Config::default();
    config.server.host = Ipv4Addr::LOCALHOST.into();
    config.server.port = 0;
    config.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("gateway"));
    config.upstreams.tenancy = sentra_gateway::config::AddressList(vec![format!("http://{}", tenancy.addr)]);
    config.upstreams.sales = sentra_gateway::config::AddressList(vec![format!("http://{}", sales.addr)]);
    config.limits.ip = sentra_gateway::Rate::new(1e9, 1_000_000);
    config.limits.user = sentra_gateway::Rate::new(1e9, 1_000_000);
    config.limits.tenant = sentra_gateway::Rate::new(1e9, 1_000_000);
    let gateway = Apart::start("gateway", move |addr, stop| async move {
        let app = sentra_gateway::Application::build(config).await.expect("gateway");
        addr.send(app.local_addr()).expect("report address");
        let _ = app
            .run_until(async {
                let _ = stop.await;
            })
            .await;
    });
    let envoy = sentra_testkit::envoy::Envoy::start(gateway.addr, ".*").await;

    // Each call in three modes: straight to its service, through the gateway, through Envoy.
    let modes = |direct: (&'static str, SocketAddr)| {
        [direct, ("gateway (gRPC, HTTP/2)", gateway.addr), ("Envoy + gateway (gRPC, h2c)", envoy.addr)]
    };
    let cheap = Series {
        call: "TenancyService/ResolveBrandByDomain (PUBLIC)",
        targeted: false,
        rows: measure_modes(modes(("direct to Tenancy", tenancy.addr)), &Call::ResolveBrand).await,
    };
    let get_lead =
        Call::GetLead { lead_id, bearer: format!("Bearer {token}").parse().unwrap(), brand: brand.parse().unwrap() };
    let typical = Series {
        call: "SalesService/GetLead (staff token, BRAND rule)",
        targeted: true,
        rows: measure_modes(modes(("direct to Sales", sales.addr)), &get_lead).await,
    };

    let mut md = format!(
        "# Gateway benchmark\n\nUnary calls at concurrency 32 over 4 HTTP/2 connections; per mode {ROUNDS} slices of \
         {:.1} s (each after {:.1} s of warm-up), interleaved with the other modes and rotated; loopback, everything on \
         this machine. Tenancy, Sales, the gateway and the load generator each run on their \
         own tokio runtime (2 worker threads each), Envoy is the real binary. The targets are judged on the \
         typical call (`GetLead`); the cheapest call shows the floor of a proxy hop, for information.\n",
        SLICE.as_secs_f64(),
        WARM_UP.as_secs_f64(),
    );
    cheap.markdown(&mut md);
    typical.markdown(&mut md);
    let json = serde_json::json!({
        "concurrency": CONCURRENCY,
        "connections": CONNECTIONS,
        "seconds_per_mode": SLICE.as_secs_f64() * ROUNDS as f64,
        "rounds": ROUNDS,
        "calls": [cheap.json(), typical.json()],
    });
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("gateway.json"), serde_json::to_string_pretty(&json).unwrap()).unwrap();
    std::fs::write(dir.join("gateway.md"), &md).unwrap();
    println!("{md}");

    envoy.stop().await;
    gateway.stop().await;
    sales.stop().await;
    tenancy.stop().await;
    drop(db);
}
