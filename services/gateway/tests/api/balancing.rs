//! Several addresses for one context: calls are spread over them.

use std::time::Duration;

use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_testkit::grpc::wait_for_health;
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::*;

#[tokio::test]
async fn calls_are_balanced_across_upstream_addresses() {
    let tenancy = spawn_tenancy().await;
    wait_for_health(tenancy.addr, "", ServingStatus::Serving, Duration::from_secs(20)).await;
    let first = CountingUpstream::start(tenancy.addr).await;
    let second = CountingUpstream::start(tenancy.addr).await;
    let gateway = spawn_gateway(gateway_config(&[first.addr, second.addr])).await;
    let envoy = sentra_testkit::envoy::Envoy::start(gateway.addr, ORIGINS).await;

    let keys = "/sentra.tenancy.v1.AuthService/GetSigningKeys";
    for _ in 0..24 {
        let answer = sentra_testkit::envoy::grpc_web_call(envoy.addr, keys, &pb::GetSigningKeysRequest {}, &[])
            .await
            .expect("call");
        assert_status(&answer, Code::Ok);
    }
    let (a, b) = (first.count("GetSigningKeys"), second.count("GetSigningKeys"));
    assert_eq!(a + b, 24);
    assert!(a > 0 && b > 0, "both upstreams receive calls: {a} and {b}");
}

#[tokio::test]
async fn a_dead_upstream_address_is_skipped_and_an_unreachable_context_is_unavailable() {
    let tenancy = spawn_tenancy().await;
    wait_for_health(tenancy.addr, "", ServingStatus::Serving, Duration::from_secs(20)).await;
    let live = CountingUpstream::start(tenancy.addr).await;
    // A port nobody listens on: connections are refused.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let gateway = spawn_gateway(gateway_config(&[dead, live.addr])).await;
    for _ in 0..12 {
        let answer = get_signing_keys(gateway.addr).await;
        assert_eq!(answer.code(), Code::Ok, "{answer:?}");
    }
    assert_eq!(live.count("GetSigningKeys"), 12, "every call went to the live address");

    // A context whose only address is down answers UNAVAILABLE, and quickly.
    let gateway = spawn_gateway(gateway_config(&[dead])).await;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let answer = get_signing_keys(gateway.addr).await;
        assert_eq!(answer.code(), Code::Unavailable, "{answer:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
}

/// `GetSigningKeys` (PUBLIC) straight to the gateway; its status.
async fn get_signing_keys(gateway: std::net::SocketAddr) -> tonic::Status {
    let mut client = AuthServiceClient::new(sentra_testkit::grpc::channel(gateway));
    match client.get_signing_keys(pb::GetSigningKeysRequest {}).await {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}
