//! Two gateway processes (the real binary) in front of one Tenancy share their rate limits
//! through Redis: a client alternating between them gets the limit once, not once per gateway.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_testkit::grpc::{channel, wait_for_health};
use sentra_testkit::process::{Process, free_port};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::helpers::spawn_tenancy;

/// A `sentra-gateway` process on a free port with `prefix` as its Redis key prefix.
fn gateway(tenancy: SocketAddr, prefix: &str, burst: u32) -> (Process, SocketAddr) {
    let port = free_port();
    let env = [
        ("SENTRA_GATEWAY__SERVER__HOST", "127.0.0.1".to_owned()),
        ("SENTRA_GATEWAY__SERVER__PORT", port.to_string()),
        ("SENTRA_GATEWAY__SHUTDOWN__DRAIN", "0".to_owned()),
        ("SENTRA_GATEWAY__REDIS__URL", sentra_testkit::redis_url()),
        ("SENTRA_GATEWAY__REDIS__KEY_PREFIX", prefix.to_owned()),
        ("SENTRA_GATEWAY__UPSTREAMS__TENANCY", format!("http://{tenancy}")),
        // Anonymous calls: `burst` at once, then one per 100 s (none within the test).
        ("SENTRA_GATEWAY__LIMITS__IP__PER_SECOND", "0.01".to_owned()),
        ("SENTRA_GATEWAY__LIMITS__IP__BURST", burst.to_string()),
        ("SENTRA_GATEWAY__LOG__FILTER", "warn".to_owned()),
    ];
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    let process = Process::spawn(Path::new(env!("CARGO_BIN_EXE_sentra-gateway")), "gateway", &env);
    (process, SocketAddr::from(([127, 0, 0, 1], port)))
}

#[tokio::test]
async fn two_gateway_processes_share_one_rate_limit() {
    let tenancy = spawn_tenancy().await;
    let prefix = format!("{}:", sentra_testkit::unique_prefix("gateways"));
    let burst = 4;
    let (mut a, a_addr) = gateway(tenancy.addr, &prefix, burst);
    let (mut b, b_addr) = gateway(tenancy.addr, &prefix, burst);
    for (process, addr) in [(&a, a_addr), (&b, b_addr)] {
        let log = process.log.display().to_string();
        let up = tokio::time::timeout(
            Duration::from_secs(30),
            wait_for_health(addr, "", ServingStatus::Serving, Duration::from_secs(30)),
        )
        .await;
        assert!(up.is_ok(), "gateway at {addr} did not serve; see {log}");
    }

    // Anonymous calls from one address, alternating between the two gateways.
    let clients = [AuthServiceClient::new(channel(a_addr)), AuthServiceClient::new(channel(b_addr))];
    let mut passed = [0; 2];
    let mut refused = 0;
    for i in 0..(3 * burst as usize) {
        let mut client = clients[i % 2].clone();
        match client.get_signing_keys(pb::GetSigningKeysRequest {}).await {
            Ok(_) => passed[i % 2] += 1,
            Err(status) if status.code() == Code::ResourceExhausted => refused += 1,
            Err(status) => panic!("unexpected answer: {status:?}"),
        }
    }
    assert_eq!(passed[0] + passed[1], burst, "one burst for both gateways together ({passed:?} passed)");
    assert!(passed[0] > 0 && passed[1] > 0, "both gateways served part of it: {passed:?}");
    assert_eq!(refused, 2 * burst);
    assert!(a.is_running() && b.is_running());
    a.kill().await;
    b.kill().await;
}
