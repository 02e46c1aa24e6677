//! `sentra-ctl events export` against running Tenancy and Sales services: every format holds every
//! event once, resumes after a stop or a crash, and honours the caller's redaction.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use arrow_array::{Array, BooleanArray, StringArray};
use sentra_proto::sentra::sales::v1 as pb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_testkit::tenancy;

struct Mesh {
    sales: SocketAddr,
    owner: String,
    analyst: String,
    _db: sentra_testkit::TestDatabase,
    _servers: Vec<tokio::task::JoinHandle<Result<(), sentra_runtime::server::ServeError>>>,
}

/// Tenancy and Sales on one database, an agency with `leads` leads (two events each).
async fn spawn_app(leads: usize) -> Mesh {
    let db = sentra_testkit::TestDatabase::create().await;
    let mut t = sentra_tenancy::Config::default();
    t.server.host = Ipv4Addr::LOCALHOST.into();
    t.server.port = 0;
    t.database.url = db.secret_url();
    t.database.max_connections = 4;
    t.redis.key_prefix = format!("{}:", sentra_testkit::unique_prefix("ctl-export"));
    t.shutdown.drain = Duration::ZERO;
    let tenancy_app = sentra_tenancy::Application::build(t).await.unwrap();
    let tenancy_addr = tenancy_app.local_addr();
    let mut s = sentra_sales::Config::default();
    s.server.host = Ipv4Addr::LOCALHOST.into();
    s.server.port = 0;
    s.database.url = db.secret_url();
    s.database.max_connections = 6;
    s.amqp.prefix = sentra_testkit::unique_prefix("ctl-export");
    s.shutdown.drain = Duration::ZERO;
    s.tenancy_url = format!("http://{tenancy_addr}");
    let sales_app = sentra_sales::Application::build(s).await.unwrap();
    let sales_addr = sales_app.local_addr();
    let servers = vec![
        tokio::spawn(tenancy_app.run_until(std::future::pending())),
        tokio::spawn(sales_app.run_until(std::future::pending())),
    ];

    let channel = sentra_testkit::grpc::channel(tenancy_addr);
    let (tenancy_client, auth) = (TenancyServiceClient::new(channel.clone()), AuthServiceClient::new(channel));
    tenancy::sign_up(&tenancy_client, "Export Agency").await;
    let owner = tenancy::login(&auth, &tenancy::owner_email("Export Agency"), "").await;
    let brand = tpb::Brand {
        name: "Exported".into(),
        domain: "exported.example".into(),
        invoice_prefix: "EX".into(),
        default_currency: "EUR".into(),
        ..Default::default()
    };
    let brand = tenancy::create_brand(&tenancy_client, &owner, brand).await.id;
    tenancy::analyst(&tenancy_client, &owner, "analyst@export.example").await;
    let analyst = tenancy::login(&auth, "analyst@export.example", "").await;

    let mut sales = SalesServiceClient::new(sentra_testkit::grpc::channel(sales_addr));
    for i in 0..leads {
        let lead = pb::Lead {
            brand_id: brand.clone(),
            contact_name: format!("Person {i}"),
            email: format!("person{i}@example.com"),
            company: format!("Company {i}"),
            ..Default::default()
        };
        let request = pb::CreateLeadRequest { lead: Some(lead), request_id: String::new() };
        let lead =
            sales.create_lead(sentra_testkit::grpc::bearer(&owner, request)).await.unwrap().into_inner().lead.unwrap();
        let change =
            pb::ChangeLeadStageRequest { lead_id: lead.id, stage: pb::LeadStage::Contacted.into(), etag: lead.etag };
        sales.change_lead_stage(sentra_testkit::grpc::bearer(&owner, change)).await.unwrap();
    }
    Mesh { sales: sales_addr, owner, analyst, _db: db, _servers: servers }
}

/// Runs the export binary; returns its stdout, or its stderr as the error.
async fn ctl(mesh: &Mesh, token: &str, format: &str, out: &Path, extra: &[&str]) -> Result<String, String> {
    let mut args: Vec<String> = [
        "events",
        "export",
        "--url",
        &format!("http://{}", mesh.sales),
        "--context",
        "sales",
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
        "--token",
        token,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sentra-ctl")).args(&args).output().unwrap()
    })
    .await
    .unwrap();
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).unwrap())
    } else {
        Err(String::from_utf8(output.stderr).unwrap())
    }
}

fn ndjson(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn positions_strictly_increase(positions: &[String]) {
    let parsed: Vec<(i64, i64)> = positions
        .iter()
        .map(|p| {
            let (t, n) = p.split_once('-').unwrap();
            (t.parse().unwrap(), n.parse().unwrap())
        })
        .collect();
    assert!(parsed.windows(2).all(|w| w[0] < w[1]), "feed order");
}

#[tokio::test]
async fn ndjson_exports_every_event_once_and_resumes_after_a_stop_and_a_crash() {
    let mesh = spawn_app(6).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sales.ndjson");

    // A first run stops at a position; the second goes on from there.
    ctl(&mesh, &mesh.owner, "ndjson", &out, &[]).await.unwrap();
    let all = ndjson(&out);
    assert_eq!(all.len(), 12);
    std::fs::remove_file(&out).unwrap();
    let until = all[4]["position"].as_str().unwrap().to_owned();
    let first = ctl(&mesh, &mesh.owner, "ndjson", &out, &["--until", &until]).await.unwrap();
    assert!(first.contains("exported 5 events"), "{first}");
    let second = ctl(&mesh, &mesh.owner, "ndjson", &out, &[]).await.unwrap();
    assert!(second.contains(&format!("exported 7 events after {until:?}")), "{second}");

    // A crash mid-line: the cut line is dropped and read again.
    let mut text = std::fs::read_to_string(&out).unwrap();
    let cut = text.trim_end().rfind('\n').unwrap() + 1;
    text.truncate(cut + 30);
    std::fs::write(&out, &text).unwrap();
    let third = ctl(&mesh, &mesh.owner, "ndjson", &out, &[]).await.unwrap();
    assert!(third.contains("exported 1 events"), "{third}");

    let rows = ndjson(&out);
    let ids: Vec<_> = rows.iter().map(|r| r["event_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, all.iter().map(|r| r["event_id"].as_str().unwrap().to_owned()).collect::<Vec<_>>());
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 12, "no event twice");
    positions_strictly_increase(&rows.iter().map(|r| r["position"].as_str().unwrap().to_owned()).collect::<Vec<_>>());
    // Payloads in the proto JSON mapping, complete for the owner.
    let created = &rows[0];
    assert_eq!(created["payload_type"], "sentra.sales.events.v1.LeadCreated");
    assert_eq!(created["payload"]["contact"]["name"], "Person 0");
    assert_eq!(created["payload"]["contact"]["email"], "person0@example.com");
    assert_eq!(rows[1]["payload"]["toStage"], "LEAD_STAGE_CONTACTED");
    assert_eq!(created["redacted"], false);

    // Filters pass through; an analyst's export has no personal data.
    let moves = dir.path().join("moves.ndjson");
    ctl(&mesh, &mesh.analyst, "ndjson", &moves, &["--event-type", "created"]).await.unwrap();
    let moves = ndjson(&moves);
    assert_eq!(moves.len(), 6);
    assert!(moves.iter().all(|r| r["redacted"] == true && r["payload"]["contact"].get("name").is_none()));
    assert_eq!(moves[0]["payload"]["contact"]["company"], "Company 0");
}

#[tokio::test]
async fn csv_and_parquet_hold_the_same_events_and_parquet_resumes_past_a_torn_part() {
    let mesh = spawn_app(5).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("all.ndjson");
    ctl(&mesh, &mesh.owner, "ndjson", &json, &[]).await.unwrap();
    let expected: Vec<String> = ndjson(&json).iter().map(|r| r["event_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(expected.len(), 10);

    let csv_path = dir.path().join("all.csv");
    let until = ndjson(&json)[2]["position"].as_str().unwrap().to_owned();
    ctl(&mesh, &mesh.owner, "csv", &csv_path, &["--until", &until]).await.unwrap();
    ctl(&mesh, &mesh.owner, "csv", &csv_path, &[]).await.unwrap();
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    assert_eq!(reader.headers().unwrap().iter().next(), Some("position"));
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.iter().map(|r| r[7].to_owned()).collect::<Vec<_>>(), expected, "one header, each event once");
    let payload: serde_json::Value = serde_json::from_str(&records[0][9]).unwrap();
    assert_eq!(payload["contact"]["name"], "Person 0");

    let parquet_dir = dir.path().join("parquet");
    ctl(&mesh, &mesh.owner, "parquet", &parquet_dir, &["--until", &until]).await.unwrap();
    // A part torn by a crash (no footer) is removed and its events read again.
    std::fs::write(parquet_dir.join("part-000007.parquet"), b"PAR1 torn").unwrap();
    ctl(&mesh, &mesh.owner, "parquet", &parquet_dir, &[]).await.unwrap();
    let mut parts: Vec<_> = std::fs::read_dir(&parquet_dir).unwrap().map(|e| e.unwrap().path()).collect();
    parts.sort();
    assert_eq!(parts.len(), 2, "{parts:?}");
    let mut ids = Vec::new();
    let mut redacted = Vec::new();
    for part in parts {
        let file = std::fs::File::open(part).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let column = batch.column_by_name("event_id").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
            ids.extend((0..column.len()).map(|i| column.value(i).to_owned()));
            let flags = batch.column_by_name("redacted").unwrap().as_any().downcast_ref::<BooleanArray>().unwrap();
            redacted.extend((0..flags.len()).map(|i| flags.value(i)));
        }
    }
    assert_eq!(ids, expected);
    assert!(redacted.iter().all(|r| !r));

    // Without the right, nothing is written and the error says why.
    let refused_path = dir.path().join("no.ndjson");
    let refused = ctl(&mesh, "not-a-token", "ndjson", &refused_path, &[]).await.unwrap_err();
    assert!(refused.contains("invalid or expired access token"), "{refused}");
    assert_eq!(std::fs::read_to_string(&refused_path).unwrap_or_default(), "");
}
