//! A login storm against Tenancy running as its own process (the release binary), as in
//! production: 200 logins at concurrency 32. Reports logins per second and Tenancy's resident
//! memory (VmRSS from /proc) before, at its peak during, and a few seconds after the storm.
//! Targets: under 100 MB during, back under 50 MB after.
//!
//! `cargo bench -p sentra-tenancy` (or `make bench`) writes `target/bench/tenancy.md` and
//! `target/bench/tenancy.json`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use tonic::Code;

const LOGINS: usize = 200;
const CONCURRENCY: usize = 32;
const PASSWORD: &str = "correct horse 42";

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main]
async fn main() {
    let db = sentra_testkit::TestDatabase::create().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sentra-tenancy"))
        .env("SENTRA_TENANCY__SERVER__HOST", "127.0.0.1")
        .env("SENTRA_TENANCY__SERVER__PORT", "0")
        .env("SENTRA_TENANCY__DATABASE__URL", db.url())
        .env("SENTRA_TENANCY__REDIS__KEY_PREFIX", format!("{}:", sentra_testkit::unique_prefix("storm")))
        .env("SENTRA_TENANCY__AMQP__PREFIX", sentra_testkit::unique_prefix("storm"))
        .env("SENTRA_TENANCY__LOG__JSON", "true")
        .env("SENTRA_TENANCY__SHUTDOWN__DRAIN", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the tenancy binary starts");
    let pid = child.id();
    // The address is in the "Serving." log line.
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = loop {
        let line = lines.next().expect("tenancy logs until it serves").expect("a log line");
        if line.contains("\"Serving.\"") {
            let at = line.find("\"addr\":\"").expect("addr field") + 8;
            break line[at..line[at..].find('"').expect("end of addr") + at].to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).expect("uri").connect_lazy();
    let tenancy = TenancyServiceClient::new(channel.clone());
    let auth = AuthServiceClient::new(channel);
    sentra_testkit::tenancy::sign_up(&tenancy, "Storm Agency").await;
    let email = sentra_testkit::tenancy::owner_email("Storm Agency");
    let _ = sentra_testkit::tenancy::login(&auth, &email, "").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid);

    let peak = Arc::new(AtomicU64::new(before));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let next = Arc::new(AtomicU64::new(0));
    let busy = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (mut auth, email, next, busy) = (auth.clone(), email.clone(), next.clone(), busy.clone());
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < LOGINS as u64 {
                    let request =
                        pb::LoginRequest { email: email.clone(), password: PASSWORD.into(), host: String::new() };
                    match auth.login(request).await {
                        Ok(_) => {}
                        Err(status) if status.code() == Code::Unavailable => {
                            busy.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(status) => panic!("login failed: {status:?}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("login task");
    }
    let elapsed = started.elapsed();
    sampling.abort();
    let peak = peak.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid);
    if std::env::var_os("SENTRA_BENCH_SMAPS").is_some() {
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
        let mut regions: Vec<(u64, String)> = Vec::new();
        let mut header = String::new();
        for line in smaps.lines() {
            if line.contains('-') && !line.starts_with(|c: char| c.is_ascii_uppercase()) {
                header = line.to_owned();
            } else if let Some(rest) = line.strip_prefix("Rss:") {
                let kib: u64 = rest.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
                regions.push((kib, header.clone()));
            }
        }
        regions.sort_by_key(|r| std::cmp::Reverse(r.0));
        for (kib, header) in regions.iter().take(8) {
            eprintln!("{kib:>8} KiB  {header}");
        }
    }
    let _ = child.kill();
    let _ = child.wait();

    let refused = busy.load(Ordering::Relaxed);
    let logins_per_sec = (LOGINS as u64 - refused) as f64 / elapsed.as_secs_f64();
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let md = format!(
        "# Tenancy: a login storm ({LOGINS} logins, concurrency {CONCURRENCY}, release binary)\n\n\
         | measure | value | target |\n| --- | --- | --- |\n\
         | logins/s | {logins_per_sec:.1} | – |\n\
         | refused as busy (UNAVAILABLE, retry hint) | {refused} | – |\n\
         | RSS before | {:.1} MiB | – |\n\
         | RSS peak during | {:.1} MiB | < 100 MiB: {} |\n\
         | RSS 3 s after | {:.1} MiB | < 50 MiB: {} |\n",
        mib(before),
        mib(peak),
        verdict(mib(peak) < 100.0),
        mib(after),
        verdict(mib(after) < 50.0),
    );
    let json = serde_json::json!({
        "logins": LOGINS, "concurrency": CONCURRENCY, "logins_per_sec": logins_per_sec, "refused_busy": refused,
        "rss_before_mib": mib(before), "rss_peak_mib": mib(peak), "rss_after_mib": mib(after),
    });
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(dir.join("tenancy.md"), &md).expect("write md");
    std::fs::write(dir.join("tenancy.json"), json.to_string()).expect("write json");
    println!("{md}");
    drop(db);
}
