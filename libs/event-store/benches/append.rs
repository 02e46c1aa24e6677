//! Event store throughput against raw sqlx and the postgres-es crate, on the same PostgreSQL, with
//! the same durability settings and concurrency. Writes `target/bench/event-store.{json,md}` and
//! prints the table. Run with `cargo bench -p sentra-event-store`.

#![allow(missing_docs, clippy::unwrap_used, clippy::type_complexity)]

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cqrs_es::persist::{PersistedEventRepository, SerializedEvent};
use cqrs_es::{Aggregate, DomainEvent};
use hdrhistogram::Histogram;
use postgres_es::PostgresEventRepository;
use sentra_event_store::{Cursor, EventMetadata, EventStore, NewEvent, Projection, ProjectionRunner, RecordedEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, QueryBuilder, Row};
use uuid::Uuid;

/// Each implementation runs ROUNDS slices of SLICE per workload, interleaved with the others.
const ROUNDS: usize = 4;
const SLICE: Duration = Duration::from_millis(1500);
const BATCH: usize = 100;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Bench;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum BenchEvent {
    Happened { n: u64 },
}

impl DomainEvent for BenchEvent {
    fn event_type(&self) -> String {
        "Happened".into()
    }
    fn event_version(&self) -> String {
        "1".into()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Aggregate for Bench {
    const TYPE: &'static str = "Bench";
    type Command = ();
    type Event = BenchEvent;
    type Error = Never;
    type Services = ();
    async fn handle(&mut self, _: (), _: &(), _: &cqrs_es::event_sink::EventSink<Self>) -> Result<(), Never> {
        Ok(())
    }
    fn apply(&mut self, _: BenchEvent) {}
}

fn payload(n: u64) -> Value {
    json!({ "Happened": { "n": n, "order_id": "3f1c5a1e-6f0b-4c1e-9a55-6d2b7f0f8a11", "sku": "SKU-000123",
            "quantity": 3, "unit_price_cents": 1999, "currency": "EUR", "note": "benchmark payload of typical width" } })
}

fn metadata() -> EventMetadata {
    EventMetadata {
        correlation_id: Some(Uuid::new_v4().to_string()),
        causation_id: Some(Uuid::new_v4().to_string()),
        actor: Some("user:bench".into()),
        request_id: None,
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        ..Default::default()
    }
}

struct Measured {
    events: u64,
    secs: f64,
    latency_us: Histogram<u64>,
}

impl Measured {
    fn empty() -> Self {
        Self { events: 0, secs: 0.0, latency_us: Histogram::new(3).unwrap() }
    }

    fn add(&mut self, other: Measured) {
        self.events += other.events;
        self.secs += other.secs;
        self.latency_us.add(other.latency_us).unwrap();
    }

    fn ops(&self) -> u64 {
        self.latency_us.len()
    }

    fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.secs
    }

    fn p50_us(&self) -> u64 {
        self.latency_us.value_at_quantile(0.5)
    }

    fn p99_us(&self) -> u64 {
        self.latency_us.value_at_quantile(0.99)
    }
}

/// Runs `concurrency` workers, each calling `op(worker, iteration)` until `run_for` elapses, and
/// waits for all of them: nothing of one measurement may still run during the next.
async fn measure<F, Fut>(run_for: Duration, concurrency: usize, events_per_op: u64, op: F) -> Measured
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + run_for;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3).unwrap();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                op(worker, i).await;
                hist.record(t.elapsed().as_micros() as u64).unwrap();
                i += 1;
            }
            hist
        }));
    }
    let mut all = Histogram::<u64>::new(3).unwrap();
    for task in tasks {
        all.add(task.await.unwrap()).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    Measured { events: all.len() * events_per_op, secs, latency_us: all }
}

async fn ours_append(run_for: Duration, store: EventStore, concurrency: usize, batch: usize, tag: String) -> Measured {
    let tenant = Uuid::new_v4();
    let metadata = Arc::new(metadata());
    measure(run_for, concurrency, batch as u64, move |worker, i| {
        let store = store.clone();
        let metadata = metadata.clone();
        let id = format!("{tag}-{worker}");
        async move {
            let events =
                (0..batch).map(|k| NewEvent::new("Happened", "1", payload(i * batch as u64 + k as u64))).collect();
            store.append(tenant, "Bench", &id, i * batch as u64, events, &metadata).await.unwrap();
        }
    })
    .await
}

async fn raw_append(run_for: Duration, pool: PgPool, concurrency: usize, batch: usize, tag: String) -> Measured {
    let tenant = Uuid::new_v4();
    let metadata = Arc::new(serde_json::to_value(metadata()).unwrap());
    measure(run_for, concurrency, batch as u64, move |worker, i| {
        let pool = pool.clone();
        let metadata = metadata.clone();
        let id = format!("{tag}-{worker}");
        async move {
            if batch == 1 {
                sqlx::query(
                    "INSERT INTO raw_events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, \
                     payload, metadata, event_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(tenant)
                .bind("Bench")
                .bind(&id)
                .bind(i as i64 + 1)
                .bind("Happened")
                .bind("1")
                .bind(payload(i))
                .bind(&*metadata)
                .bind(Uuid::now_v7())
                .execute(&pool)
                .await
                .unwrap();
            } else {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO raw_events (tenant_id, aggregate_type, aggregate_id, sequence, event_type, event_version, \
                     payload, metadata, event_id) ",
                );
                qb.push_values(0..batch, |mut row, k| {
                    let n = i * batch as u64 + k as u64;
                    row.push_bind(tenant)
                        .push_bind("Bench")
                        .push_bind(id.clone())
                        .push_bind(n as i64 + 1)
                        .push_bind("Happened")
                        .push_bind("1")
                        .push_bind(payload(n))
                        .push_bind((*metadata).clone())
                        .push_bind(Uuid::now_v7());
                });
                qb.build().execute(&pool).await.unwrap();
            }
        }
    })
    .await
}

async fn pes_append(
    run_for: Duration,
    repo: Arc<PostgresEventRepository>,
    concurrency: usize,
    batch: usize,
    tag: String,
) -> Measured {
    let metadata = serde_json::to_value(metadata()).unwrap();
    let metadata = match metadata {
        Value::Object(mut map) => {
            map.insert("tenant_id".into(), Value::String(Uuid::new_v4().to_string()));
            Arc::new(Value::Object(map))
        }
        other => Arc::new(other),
    };
    measure(run_for, concurrency, batch as u64, move |worker, i| {
        let repo = repo.clone();
        let metadata = metadata.clone();
        let id = format!("{tag}-{worker}");
        async move {
            let events: Vec<SerializedEvent> = (0..batch)
                .map(|k| {
                    let n = i * batch as u64 + k as u64;
                    SerializedEvent::new(
                        id.clone(),
                        n as usize + 1,
                        "Bench".into(),
                        "Happened".into(),
                        "1".into(),
                        payload(n),
                        (*metadata).clone(),
                    )
                })
                .collect();
            repo.persist::<Bench>(&events, None).await.unwrap();
        }
    })
    .await
}

struct CountProjection;

#[sentra_event_store::async_trait]
impl Projection for CountProjection {
    fn name(&self) -> &str {
        "bench_counts"
    }
    fn table(&self) -> &str {
        "bench_counts"
    }
    async fn apply(
        &self,
        conn: &mut PgConnection,
        table: &str,
        event: &RecordedEvent,
    ) -> sentra_event_store::Result<()> {
        sqlx::query(&format!(
            "INSERT INTO {table} AS t VALUES ($1, 1) ON CONFLICT (aggregate_id) DO UPDATE SET events = t.events + 1"
        ))
        .bind(&event.aggregate_id)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

struct Row_ {
    workload: String,
    ours: f64,
    raw: f64,
    pes: Option<f64>,
    target: f64,
    ours_p50_us: u64,
    ours_p99_us: u64,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: only run for real.
    if !std::env::args().any(|a| a == "--bench") {
        println!("event-store bench: run with `cargo bench -p sentra-event-store`");
        return;
    }
    let db = sentra_testkit::TestDatabase::create().await;
    let options = PgConnectOptions::from_str(db.url()).unwrap();
    let pool = PgPoolOptions::new().max_connections(24).connect_with(options).await.unwrap();
    sentra_event_store::MIGRATOR.run(&pool).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE raw_events (
            position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
            tenant_id uuid NOT NULL, aggregate_type text NOT NULL, aggregate_id text NOT NULL,
            sequence bigint NOT NULL, event_type text NOT NULL, event_version text NOT NULL,
            payload jsonb NOT NULL, metadata jsonb NOT NULL DEFAULT '{}', event_id uuid NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now());
         -- postgres-es's own schema (db/init.sql of postgres-es 0.5)
         CREATE TABLE pes_events (aggregate_type text NOT NULL, aggregate_id text NOT NULL,
            sequence bigint CHECK (sequence >= 0) NOT NULL, event_type text NOT NULL, event_version text NOT NULL,
            payload json NOT NULL, metadata json NOT NULL, PRIMARY KEY (aggregate_type, aggregate_id, sequence));
         CREATE TABLE pes_snapshots (aggregate_type text NOT NULL, aggregate_id text NOT NULL,
            last_sequence bigint CHECK (last_sequence >= 0) NOT NULL,
            current_snapshot bigint CHECK (current_snapshot >= 0) NOT NULL, payload json NOT NULL,
            PRIMARY KEY (aggregate_type, aggregate_id, last_sequence));",
    )
    .execute(&pool)
    .await
    .unwrap();
    let settings: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'wal_sync_method', 'server_version')",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let store = EventStore::new(pool.clone());
    let pes = Arc::new(PostgresEventRepository::new(pool.clone()).with_tables("pes_events", "pes_snapshots"));

    // Warm up connections and statement caches. Each warm-up waits for its workers, so none of
    // them is still appending when the measurements start.
    let warm = Duration::from_millis(500);
    ours_append(warm, store.clone(), 16, 1, "warm".into()).await;
    raw_append(warm, pool.clone(), 16, 1, "warm".into()).await;
    pes_append(warm, pes.clone(), 16, 1, "warm".into()).await;

    let mut rows = Vec::new();
    for (concurrency, batch, tag, target) in
        [(1usize, 1usize, "s1", 0.8), (16, 1, "s16", 0.8), (1, BATCH, "b1", 0.7), (16, BATCH, "b16", 0.7)]
    {
        if std::env::var("SENTRA_BENCH_ONLY").is_ok_and(|only| !only.split(',').any(|o| o == tag)) {
            continue;
        }
        // Interleave the three in short slices, rotating which goes first, so drift in the
        // machine's state (other processes, autovacuum, the WAL's shape) hits all of them alike;
        // start each slice from a fresh checkpoint: otherwise the WAL written by the previous
        // slice triggers a checkpoint in the middle of whichever implementation runs next.
        let checkpoint = || async { sqlx::query("CHECKPOINT").execute(&pool).await.expect("checkpoint") };
        let (mut ours, mut raw, mut pes_m) = (Measured::empty(), Measured::empty(), Measured::empty());
        for round in 0..ROUNDS {
            for turn in 0..3 {
                let tag = format!("{tag}-r{round}");
                checkpoint().await;
                match (round + turn) % 3 {
                    0 => ours.add(ours_append(SLICE, store.clone(), concurrency, batch, tag).await),
                    1 => raw.add(raw_append(SLICE, pool.clone(), concurrency, batch, tag).await),
                    _ => pes_m.add(pes_append(SLICE, pes.clone(), concurrency, batch, tag).await),
                }
            }
        }
        let workload = if batch == 1 {
            format!("append 1 event, concurrency {concurrency} (events/s)")
        } else {
            format!("append {batch}-event batch, concurrency {concurrency} (events/s)")
        };
        eprintln!("{workload}: ours {} ops, raw {} ops, postgres-es {} ops", ours.ops(), raw.ops(), pes_m.ops());
        rows.push(Row_ {
            workload,
            ours: ours.events_per_sec(),
            raw: raw.events_per_sec(),
            pes: Some(pes_m.events_per_sec()),
            target,
            ours_p50_us: ours.p50_us(),
            ours_p99_us: ours.p99_us(),
        });
    }

    // Feed read: the whole events table in feed order, against a plain scan of the same table.
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();
    let feed = store.feed();
    let t = Instant::now();
    let mut reader = feed.read_ahead(Cursor::START, 1000);
    let mut read = 0usize;
    loop {
        let batch = reader.next_batch().await.unwrap();
        if batch.is_empty() {
            break;
        }
        read += batch.len();
    }
    let ours_feed = read as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut scanned = 0usize;
    {
        use futures::TryStreamExt;
        let mut stream = sqlx::query(
            "SELECT position, transaction_id::text::bigint, tenant_id, aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata, event_id, recorded_at FROM events",
        )
        .fetch(&pool);
        while let Some(row) = stream.try_next().await.unwrap() {
            let _: (
                i64,
                i64,
                Uuid,
                String,
                String,
                i64,
                String,
                String,
                Value,
                Value,
                Uuid,
                chrono::DateTime<chrono::Utc>,
            ) = (
                row.get(0),
                row.get(1),
                row.get(2),
                row.get(3),
                row.get(4),
                row.get(5),
                row.get(6),
                row.get(7),
                row.get(8),
                row.get(9),
                row.get(10),
                row.get(11),
            );
            scanned += 1;
        }
    }
    let raw_scan = scanned as f64 / t.elapsed().as_secs_f64();
    rows.push(Row_ {
        workload: format!("feed read of {read} events (events/s)"),
        ours: ours_feed,
        raw: raw_scan,
        pes: None,
        target: 0.5,
        ours_p50_us: 0,
        ours_p99_us: 0,
    });

    // Projection rebuild: replay everything into a fresh table and swap it in.
    sqlx::query("CREATE TABLE bench_counts (aggregate_id text PRIMARY KEY, events bigint NOT NULL)")
        .execute(store.pool())
        .await
        .unwrap();
    let runner = ProjectionRunner::new(&store, CountProjection).with_batch_size(1000);
    let mut active = runner.try_activate().await.unwrap().unwrap();
    let t = Instant::now();
    let rebuilt = active.rebuild().await.unwrap();
    let rebuild_rate = rebuilt as f64 / t.elapsed().as_secs_f64();
    rows.push(Row_ {
        workload: format!("projection rebuild of {rebuilt} events, 1 upsert each (events/s)"),
        ours: rebuild_rate,
        raw: raw_scan,
        pes: None,
        target: 0.0,
        ours_p50_us: 0,
        ours_p99_us: 0,
    });
    drop(active);

    let mut md = String::from(
        "| workload | ours | raw sqlx | postgres-es | ours / raw | ours / postgres-es | target (ours / raw) | ours p50 / p99 (µs) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut json_rows = Vec::new();
    for row in &rows {
        let ratio = row.ours / row.raw;
        let pes_ratio = row.pes.map(|p| row.ours / p);
        let verdict = if row.target == 0.0 {
            "info".to_string()
        } else if ratio >= row.target {
            format!(">= {} met", row.target)
        } else {
            format!(">= {} MISSED", row.target)
        };
        md.push_str(&format!(
            "| {} | {:.0} | {:.0} | {} | {:.2} | {} | {} | {} |\n",
            row.workload,
            row.ours,
            row.raw,
            row.pes.map_or("-".into(), |p| format!("{p:.0}")),
            ratio,
            pes_ratio.map_or("-".into(), |r| format!("{r:.2}")),
            verdict,
            if row.ours_p50_us > 0 { format!("{} / {}", row.ours_p50_us, row.ours_p99_us) } else { "-".into() },
        ));
        json_rows.push(json!({
            "workload": row.workload, "ours_per_sec": row.ours, "raw_per_sec": row.raw,
            "postgres_es_per_sec": row.pes, "ours_over_raw": ratio, "ours_over_postgres_es": pes_ratio,
            "target_ours_over_raw": if row.target == 0.0 { None } else { Some(row.target) },
            "ours_p50_us": row.ours_p50_us, "ours_p99_us": row.ours_p99_us,
        }));
    }
    let settings: HashMap<String, String> = settings.into_iter().collect();
    md.push_str(&format!(
        "\nEach append workload ran {ROUNDS} slices of {:.1}s per implementation, interleaved and rotated, on the same \
         database ({total} events in the table at feed-read time). Settings: {settings:?}.\n",
        SLICE.as_secs_f64(),
    ));
    let report =
        json!({ "rounds": ROUNDS, "slice_secs": SLICE.as_secs_f64(), "settings": settings, "results": json_rows });
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("event-store.json"), serde_json::to_string_pretty(&report).unwrap()).unwrap();
    std::fs::write(dir.join("event-store.md"), &md).unwrap();
    println!("{md}");
    println!("written to {}", dir.display());
}
