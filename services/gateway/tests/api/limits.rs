//! Rate limits in Redis: bursts, retry delays, and the behaviour when Redis is gone.

use std::time::Duration;

use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_testkit::TcpProxy;
use tonic::Code;
use tonic_types::StatusExt;

use crate::helpers::*;

/// The `google.rpc.RetryInfo` delay of a gRPC-Web answer's `grpc-status-details-bin`.
fn retry_delay(answer: &sentra_testkit::envoy::GrpcWebResponse) -> Option<Duration> {
    use base64::Engine;
    // Trailers-only answers carry it in the HTTP headers.
    let details = answer.trailer("grpc-status-details-bin").or_else(|| {
        answer.http.headers.get("grpc-status-details-bin").and_then(|v| v.to_str().ok()).map(str::to_owned)
    })?;
    let raw = base64::engine::general_purpose::STANDARD_NO_PAD.decode(details.trim_end_matches('=')).ok()?;
    let status = tonic::Status::with_details(Code::ResourceExhausted, "", raw.into());
    status.get_details_retry_info()?.retry_delay
}

#[tokio::test]
async fn a_burst_over_the_limit_is_resource_exhausted_with_a_retry_delay() {
    let stack = Stack::start_with(|c| {
        c.limits.user = sentra_gateway::Rate::new(1.0, 3);
        c.limits.ip = sentra_gateway::Rate::new(1.0, 2);
    })
    .await;
    let tenant = stack.tenant("Burst Agency").await;
    let path = "/sentra.tenancy.v1.TenancyService/GetOrganization";
    let request = pb::GetOrganizationRequest { organization_id: tenant.org_id.clone() };
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(stack.web(path, &request, None, Some(&tenant.token), &[]).await);
    }
    let ok = codes.iter().filter(|a| a.grpc_status() == Some(0)).count();
    assert_eq!(ok, 3, "the burst passes, the rest is refused");
    let refused = codes.last().expect("answers");
    assert_status(refused, Code::ResourceExhausted);
    let delay = retry_delay(refused).expect("RetryInfo detail");
    assert!(delay > Duration::ZERO && delay <= Duration::from_secs(1), "{delay:?}");
    assert_eq!(stack.upstream.count("GetOrganization"), 3, "refused calls were not forwarded");

    // Anonymous calls count per client IP (login brute force).
    let login = pb::LoginRequest { email: tenant.email.clone(), password: "wrong".into(), host: String::new() };
    let first = stack.web(LOGIN, &login, None, None, &[]).await;
    assert_status(&first, Code::Unauthenticated);
    let _ = stack.web(LOGIN, &login, None, None, &[]).await;
    let third = stack.web(LOGIN, &login, None, None, &[]).await;
    assert_status(&third, Code::ResourceExhausted);
    assert!(retry_delay(&third).is_some());

    // After the delay the user may call again.
    tokio::time::sleep(delay + Duration::from_millis(50)).await;
    assert_status(&stack.web(path, &request, None, Some(&tenant.token), &[]).await, Code::Ok);
}

#[tokio::test]
async fn redis_down_fails_open_for_signed_in_users_and_closed_for_anonymous_calls() {
    let redis = TcpProxy::start(sentra_testkit::redis_url().trim_start_matches("redis://")).await;
    let redis_addr = redis.addr();
    let stack = Stack::start_with(|c| c.redis.url = format!("redis://{redis_addr}").into()).await;
    let tenant = stack.tenant("Outage Agency").await;
    let path = "/sentra.tenancy.v1.TenancyService/GetOrganization";
    let request = pb::GetOrganizationRequest { organization_id: tenant.org_id.clone() };
    let keys = "/sentra.tenancy.v1.AuthService/GetSigningKeys";
    assert_status(&stack.web(keys, &pb::GetSigningKeysRequest {}, None, None, &[]).await, Code::Ok);

    redis.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let signed_in = stack.web(path, &request, None, Some(&tenant.token), &[]).await;
    assert_status(&signed_in, Code::Ok);
    let started = std::time::Instant::now();
    let anonymous = stack.web(keys, &pb::GetSigningKeysRequest {}, None, None, &[]).await;
    assert_status(&anonymous, Code::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(2), "refused quickly: {:?}", started.elapsed());

    redis.restore();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answer = stack.web(keys, &pb::GetSigningKeysRequest {}, None, None, &[]).await;
        if answer.grpc_status() == Some(0) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "anonymous calls stayed refused after Redis came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
