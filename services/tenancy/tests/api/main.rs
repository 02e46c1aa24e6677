//! API tests of the Tenancy service, through gRPC, on a fresh database and Redis prefix each.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod access;
mod auth;
mod brands;
mod helpers;
mod isolation;
mod users;

use std::time::Duration;

use helpers::spawn_app;
use sentra_testkit::grpc::{reflected_services, wait_for_health};
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn serves_health_and_reflection_then_stops_cleanly() {
    let app = spawn_app().await;
    wait_for_health(app.addr, "", ServingStatus::Serving, Duration::from_secs(10)).await;
    wait_for_health(app.addr, "sentra.tenancy.v1.TenancyService", ServingStatus::Serving, Duration::from_secs(10))
        .await;
    let services = reflected_services(app.addr).await;
    for expected in ["grpc.health.v1.Health", "sentra.tenancy.v1.TenancyService", "sentra.tenancy.v1.AuthService"] {
        assert!(services.iter().any(|s| s == expected), "{expected} missing from {services:?}");
    }
    let addr = app.addr;
    app.shutdown().await;
    assert!(sentra_testkit::grpc::health_status(addr, "").await.is_err(), "stopped service still answers");
}
