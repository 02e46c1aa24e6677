//! API tests of the Finance service, with real Tenancy and Sales services beside it and the real
//! broker between Sales and Finance.
#![allow(clippy::unwrap_used)] // Tests fail loudly on purpose.

mod access;
mod amqps;
mod bus;
mod failover;
mod helpers;
mod hostile;
mod invoices;
mod metrics;
mod receivables;
mod replay;

use std::time::Duration;

use sentra_testkit::grpc::{reflected_services, wait_for_health};
use tonic_health::pb::health_check_response::ServingStatus;

#[tokio::test]
async fn serves_health_and_reflection_then_stops_cleanly() {
    let world = helpers::spawn().await;
    let addr = world.finance_addr;
    wait_for_health(addr, "sentra.finance.v1.FinanceService", ServingStatus::Serving, Duration::from_secs(10)).await;
    let services = reflected_services(addr).await;
    assert!(services.iter().any(|s| s == "sentra.finance.v1.FinanceService"), "{services:?}");
    world.shutdown().await;
    assert!(sentra_testkit::grpc::health_status(addr, "").await.is_err(), "stopped service still answers");
}
