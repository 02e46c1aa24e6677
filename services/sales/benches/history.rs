//! The pipeline dashboard over a long history: `GetPipelineSummary`'s queries over the
//! `lead_timeline` projection, now and as of a past day, measured beside the fold of the same
//! events (what the summary did before), each projection's catch-up rate beside a raw INSERT of
//! the rows it produced, and the leads list's first page — all in one run on the same PostgreSQL.
//!
//! `cargo bench -p sentra-sales --bench history` (part of `make bench`) writes
//! `target/bench/history.json` and `.md`. `SENTRA_BENCH_LEADS` leads (default 250,000: 1,000,000
//! events) are written straight into the event table with recorded times spread over 180 days,
//! four events each (created, two stage moves, then lost, won or one more move).

use std::time::Instant;

use chrono::{Duration, Utc};
use hdrhistogram::Histogram;
use sentra_event_store::{EventStore, Projection, ProjectionRunner};
use sentra_sales::projections::LeadsProjection;
use sentra_sales::queries;
use sentra_sales::timeline::LeadTimelineProjection;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("histogram")
}

/// p50 and p99 (µs) of `runs` calls of `op`.
async fn time<F, Fut, T>(runs: usize, mut op: F) -> (u64, u64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut h = histogram();
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(op().await);
        h.record(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX).max(1)).expect("record");
    }
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
}

/// Four events per lead, recorded over 180 days, in one statement.
const SEED_SQL: &str = "
WITH leads AS (
    SELECT i, md5('lead' || i)::uuid AS id, CASE WHEN i % 2 = 0 THEN $2 ELSE $3 END AS brand,
           $4::timestamptz + (i::float8 / $1) * interval '180 days' AS born
    FROM generate_series(1, $1) AS i
), steps AS (
    SELECT l.id, l.brand, s.seq, l.born + (s.seq - 1) * interval '20 hours' + (l.i % 7) * interval '1 hour' AS at,
           CASE s.seq
             WHEN 1 THEN 'created' WHEN 2 THEN 'stage_changed' WHEN 3 THEN 'stage_changed'
             ELSE CASE l.i % 3 WHEN 0 THEN 'lost' WHEN 1 THEN 'converted' ELSE 'stage_changed' END
           END AS kind, l.i
    FROM leads l CROSS JOIN generate_series(1, 4) AS s(seq)
)
INSERT INTO events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, payload,
                    event_id, recorded_at)
SELECT $5, 'lead', id::text, seq, kind, '1',
       CASE seq
         WHEN 1 THEN jsonb_build_object('type', 'created', 'brand_id', brand,
             'contact', jsonb_build_object('contact_name', 'Lead ' || i, 'email', 'lead' || i || '@bench.example',
                                           'phone', '+1', 'company', 'Co ' || i),
             'source', 'bench', 'estimated_value', jsonb_build_object('currency', 'EUR', 'amount_minor', 1000 * (i % 500)),
             'notes', '', 'assignee_id', NULL, 'at', at)
         WHEN 2 THEN jsonb_build_object('type', 'stage_changed', 'from', 'new', 'to', 'contacted', 'at', at)
         WHEN 3 THEN jsonb_build_object('type', 'stage_changed', 'from', 'contacted', 'to', 'qualified', 'at', at)
         ELSE CASE i % 3
           WHEN 0 THEN jsonb_build_object('type', 'lost', 'from', 'qualified', 'reason', 'budget', 'at', at)
           WHEN 1 THEN jsonb_build_object('type', 'converted', 'from', 'qualified', 'client_id', md5('client' || i)::uuid, 'at', at)
           ELSE jsonb_build_object('type', 'stage_changed', 'from', 'qualified', 'to', 'proposal', 'at', at)
         END
       END,
       md5('event' || id || seq)::uuid, at
FROM steps
WHERE at <= now()
ORDER BY at";

/// One projection's catch-up from zero and the raw INSERT of the same rows.
struct CatchUp {
    name: String,
    events: u64,
    secs: f64,
    rows: i64,
    raw_secs: f64,
}

impl CatchUp {
    fn rate(&self) -> f64 {
        self.events as f64 / self.secs
    }

    fn raw_rate(&self) -> f64 {
        self.rows as f64 / self.raw_secs
    }
}

/// Runs `projection` from the first event to the head, then copies its table with one raw
/// `INSERT … SELECT` into a table of the same shape (the baseline: the same rows, indexes and
/// durability, without reading or folding events).
async fn catch_up<P: Projection>(store: &EventStore, pool: &sqlx::PgPool, projection: P) -> CatchUp {
    let name = projection.name().to_owned();
    let table = projection.table().to_owned();
    let runner = ProjectionRunner::new(store, projection);
    let mut active = runner.try_activate().await.expect("activate").expect("active");
    let started = Instant::now();
    let events = active.catch_up().await.expect("catch up");
    let secs = started.elapsed().as_secs_f64();
    active.release().await.expect("release");
    sqlx::query(&format!("ANALYZE {table}")).execute(pool).await.expect("analyze");
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}")).fetch_one(pool).await.expect("rows");
    sqlx::query(&format!("CREATE TABLE {table}_raw (LIKE {table} INCLUDING ALL)")).execute(pool).await.expect("raw");
    let raw = Instant::now();
    sqlx::query(&format!("INSERT INTO {table}_raw SELECT * FROM {table}")).execute(pool).await.expect("raw insert");
    let raw_secs = raw.elapsed().as_secs_f64();
    sqlx::query(&format!("DROP TABLE {table}_raw")).execute(pool).await.expect("drop raw");
    CatchUp { name, events, secs, rows, raw_secs }
}

#[tokio::main]
async fn main() {
    let leads: i64 = std::env::var("SENTRA_BENCH_LEADS").ok().and_then(|s| s.parse().ok()).unwrap_or(250_000);
    let db = sentra_testkit::TestDatabase::create().await;
    let mut config = sentra_sales::Config::default();
    config.database.url = db.secret_url();
    sentra_sales::migrate(&config).await.expect("migrate");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .after_connect(|c, _| {
            Box::pin(async move { sqlx::query("SET search_path = sales").execute(c).await.map(|_| ()) })
        })
        .connect(db.url())
        .await
        .expect("pool");
    let (tenant, alpha, beta) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let start = Utc::now() - Duration::days(181);

    let seeded = Instant::now();
    let events = sqlx::query(SEED_SQL)
        .bind(leads)
        .bind(alpha)
        .bind(beta)
        .bind(start)
        .bind(tenant)
        .execute(&pool)
        .await
        .expect("seed")
        .rows_affected();
    sqlx::query("ANALYZE events").execute(&pool).await.expect("analyze");
    println!("seeded {events} events of {leads} leads in {:.1} s", seeded.elapsed().as_secs_f64());

    // Each projection's catch-up from the first event, beside a raw INSERT of the rows it made.
    let store = EventStore::new(pool.clone());
    let mut catch_ups = Vec::new();
    catch_ups.push(catch_up(&store, &pool, LeadTimelineProjection).await);
    catch_ups.push(catch_up(&store, &pool, LeadsProjection).await);
    for c in &catch_ups {
        println!(
            "catch-up {}: {} events in {:.1} s = {:.0} events/s; raw INSERT of its {} rows: {:.0} rows/s ({:.2} of raw)",
            c.name,
            c.events,
            c.secs,
            c.rate(),
            c.rows,
            c.raw_rate(),
            c.rate() / c.raw_rate()
        );
    }

    // The leads list's first page (what the board and the list open with), all brands and one.
    let mut lists = Vec::new();
    for (label, brands) in [("all brands", None), ("one brand", Some(vec![alpha]))] {
        let filter = queries::LeadFilter { brands, ..Default::default() };
        let page = queries::Page { size: 50, after: None };
        let (p50, p99) = time(50, || queries::list_leads(&pool, tenant, &filter, &page)).await;
        println!("ListLeads first page of 50, {label}: p50 {p50} µs (p99 {p99})");
        lists.push(serde_json::json!({"brands": label, "p50_us": p50, "p99_us": p99}));
    }

    // The summary, now and as of 27 days ago, per query path.
    let now = sentra_runtime::wire::micros(Utc::now());
    let past = sentra_runtime::wire::micros(now - Duration::days(27));
    let all: Option<Vec<uuid::Uuid>> = None;
    let one = Some(vec![alpha]);
    let mut results = Vec::new();
    for (label, as_of) in [("now", now), ("as of 27 days ago", past)] {
        for (brands_label, brands) in [("all brands", &all), ("one brand", &one)] {
            let sql = time(20, || queries::pipeline_summary(&pool, tenant, brands, None, as_of)).await;
            let fold = time(3, || queries::pipeline_summary_fold(&store, tenant, brands, None, as_of)).await;
            let same = queries::pipeline_summary(&pool, tenant, brands, None, as_of).await.expect("sql")
                == queries::pipeline_summary_fold(&store, tenant, brands, None, as_of).await.expect("fold");
            println!(
                "pipeline summary {label}, {brands_label}: projection p50 {} µs (p99 {}), fold p50 {} µs: {:.1}x faster{}",
                sql.0,
                sql.1,
                fold.0,
                fold.0 as f64 / sql.0 as f64,
                if same { "" } else { " (results differ in time-in-stage rounding)" }
            );
            results.push(serde_json::json!({"summary": label, "brands": brands_label, "projection_p50_us": sql.0,
                "projection_p99_us": sql.1, "fold_p50_us": fold.0, "speedup": fold.0 as f64 / sql.0 as f64}));
        }
    }

    let mut md = format!(
        "# Pipeline summary over a long history\n\n{events} lead events ({leads} leads) over 180 days, one tenant.\n\n\
         | summary | brands | projection p50 µs | p99 µs | fold p50 µs | fold / projection |\n|---|---|---:|---:|---:|---:|\n"
    );
    for r in &results {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.1} |\n",
            r["summary"].as_str().unwrap_or_default(),
            r["brands"].as_str().unwrap_or_default(),
            r["projection_p50_us"],
            r["projection_p99_us"],
            r["fold_p50_us"],
            r["speedup"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    md.push_str("\n| projection catch-up from zero | events/s | rows made | raw INSERT rows/s | of raw |\n|---|---:|---:|---:|---:|\n");
    for c in &catch_ups {
        md.push_str(&format!(
            "| {} | {:.0} | {} | {:.0} | {:.2} |\n",
            c.name,
            c.rate(),
            c.rows,
            c.raw_rate(),
            c.rate() / c.raw_rate()
        ));
    }
    md.push_str("\n| ListLeads first page (50) | p50 µs | p99 µs |\n|---|---:|---:|\n");
    for l in &lists {
        md.push_str(&format!("| {} | {} | {} |\n", l["brands"].as_str().unwrap_or_default(), l["p50_us"], l["p99_us"]));
    }
    let catch_ups_json: Vec<_> = catch_ups
        .iter()
        .map(|c| {
            serde_json::json!({"projection": c.name, "events_per_sec": c.rate(), "rows": c.rows,
            "raw_insert_rows_per_sec": c.raw_rate()})
        })
        .collect();
    let report = serde_json::json!({"events": events, "leads": leads, "summaries": results,
        "catch_ups": catch_ups_json, "list_leads_first_page": lists});
    let dir = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    std::fs::write(dir.join("history.json"), serde_json::to_string_pretty(&report).expect("json")).expect("json");
    std::fs::write(dir.join("history.md"), &md).expect("md");
    println!("\n{md}");
    std::process::exit(0);
}
