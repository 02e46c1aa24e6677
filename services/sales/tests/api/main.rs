//! API tests of the Sales service, through gRPC, with a real Tenancy beside it.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod access;
mod flow;
mod helpers;
mod hostile;
mod pipeline;
mod replay;
mod rules;
mod watch;

use std::time::Duration;

use sentra_testkit::grpc::{reflected_services, wait_for_health};
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn serves_health_and_reflection_then_stops_cleanly() {
    let world = helpers::spawn().await;
    let addr = world.sales_addr;
    wait_for_health(addr, "sentra.sales.v1.SalesService", ServingStatus::Serving, Duration::from_secs(10)).await;
    let services = reflected_services(addr).await;
    assert!(services.iter().any(|s| s == "sentra.sales.v1.SalesService"), "{services:?}");
    world.shutdown().await;
    assert!(sentra_testkit::grpc::health_status(addr, "").await.is_err(), "stopped service still answers");
}
