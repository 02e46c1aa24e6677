//! Several addresses for one context: calls are spread over them.

use std::time::Duration;

use sentra_proto::sentra::tenancy::v1 as pb;
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
