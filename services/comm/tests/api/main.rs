//! API tests of the Comm service, with real Tenancy and Sales beside it, the real broker between
//! Sales and Comm, and the fake Gmail of `sentra-testkit`.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod access;
mod automation;
mod helpers;
mod mailboxes;
mod notifications;
mod sending;
mod store;
mod sync;
mod threads;
mod webhooks;

use std::time::Duration;

use sentra_testkit::grpc::{reflected_services, wait_for_health};
use sqlx::Connection;
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn serves_health_and_reflection_then_stops_cleanly() {
    let mut world = helpers::spawn().await;
    let addr = world.comm_addr;
    wait_for_health(addr, "sentra.comm.v1.CommService", ServingStatus::Serving, Duration::from_secs(10)).await;
    let services = reflected_services(addr).await;
    assert!(services.iter().any(|s| s == "sentra.comm.v1.CommService"), "{services:?}");
    world.stop_comm().await;
    assert!(sentra_testkit::grpc::health_status(addr, "").await.is_err(), "stopped service still answers");
    world.shutdown().await;
}

#[tokio::test]
async fn creates_and_uses_its_own_schema() {
    let world = helpers::spawn().await;
    let mut conn = sqlx::PgConnection::connect(world.db.url()).await.expect("connect");
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'comm' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .expect("query");
    for table in ["mailboxes", "messages", "threads", "contacts", "email_aliases", "sync_queue", "sync_log"] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
    world.shutdown().await;
}
