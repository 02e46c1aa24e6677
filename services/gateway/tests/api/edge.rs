//! A browser's calls through Envoy and the gateway: sign-in, authenticated calls, refusals before
//! any upstream is called, header hygiene and routing.

use sentra_proto::sentra::tenancy::v1 as pb;
use tonic::Code;

use crate::helpers::*;

/// One authenticated call per bounded context the gateway routes to. Sales and Finance join this
/// list (one line each) when their services land.
fn authenticated_calls(org_id: &str) -> Vec<(&'static str, Vec<u8>)> {
    use prost::Message;
    vec![(
        "/sentra.tenancy.v1.TenancyService/GetOrganization",
        pb::GetOrganizationRequest { organization_id: org_id.into() }.encode_to_vec(),
    )]
}

#[tokio::test]
async fn a_browser_signs_in_through_envoy_and_calls_an_authenticated_rpc() {
    let stack = Stack::start().await;
    let tenant = stack.tenant("Quill Agency").await;
    stack.brand(&tenant, "Quill", "app.quill.example").await;

    let token = stack.web_login(&tenant.email, "app.quill.example").await.expect("login through Envoy");
    for (path, body) in authenticated_calls(&tenant.org_id) {
        let answer = stack.web(path, &RawMessage(body), Some("app.quill.example"), Some(&token), &[]).await;
        assert_status(&answer, Code::Ok);
        assert_eq!(answer.messages.len(), 1, "{path}");
    }
    let org: pb::GetOrganizationResponse = stack
        .web(
            "/sentra.tenancy.v1.TenancyService/GetOrganization",
            &pb::GetOrganizationRequest { organization_id: tenant.org_id.clone() },
            None,
            Some(&token),
            &[],
        )
        .await
        .message()
        .expect("organization");
    assert_eq!(org.organization.expect("org").id, tenant.org_id);

    // The request id and trace reached the upstream, and the request id came back.
    let seen = stack.upstream.last("GetOrganization").expect("forwarded");
    assert!(seen.headers.contains_key("x-request-id"));
    let traceparent = seen.headers.get("traceparent").and_then(|v| v.to_str().ok()).expect("traceparent");
    assert!(traceparent.starts_with("00-") && traceparent.len() == 55, "{traceparent}");
    let answer = stack
        .web(
            "/sentra.tenancy.v1.TenancyService/GetOrganization",
            &pb::GetOrganizationRequest { organization_id: tenant.org_id.clone() },
            None,
            Some(&token),
            &[("x-request-id", "req-edge-1")],
        )
        .await;
    assert_eq!(answer.http.headers.get("x-request-id").and_then(|v| v.to_str().ok()), Some("req-edge-1"));
    let seen = stack.upstream.last("GetOrganization").expect("forwarded");
    assert_eq!(seen.headers.get("x-request-id").and_then(|v| v.to_str().ok()), Some("req-edge-1"));
    // A default deadline was set.
    assert_eq!(seen.headers.get("grpc-timeout").and_then(|v| v.to_str().ok()), Some("10000m"));
}

#[tokio::test]
async fn missing_bad_and_expired_tokens_are_unauthenticated_before_the_service() {
    let stack = Stack::start().await;
    let tenant = stack.tenant("Token Agency").await;
    let path = "/sentra.tenancy.v1.TenancyService/GetOrganization";
    let request = pb::GetOrganizationRequest { organization_id: tenant.org_id.clone() };
    let before = stack.upstream.count("GetOrganization");

    assert_status(&stack.web(path, &request, None, None, &[]).await, Code::Unauthenticated);
    assert_status(&stack.web(path, &request, None, Some("not.a.jwt"), &[]).await, Code::Unauthenticated);
    // Tampered: the claims of a valid token changed (another organization), signature kept.
    let tampered = {
        use base64::Engine;
        let mut claims = jwt_claims(&tenant.token);
        claims["org"] = serde_json::json!(uuid::Uuid::new_v4().to_string());
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        let parts: Vec<&str> = tenant.token.split('.').collect();
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    assert_status(&stack.web(path, &request, None, Some(&tampered), &[]).await, Code::Unauthenticated);
    assert_eq!(stack.upstream.count("GetOrganization"), before, "no refused call was forwarded");

    // Expired: signed with Tenancy's real key, `exp` well past the verifier's leeway.
    let (kid, der): (String, Vec<u8>) = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(stack.tenancy.inner.url()).await.expect("database");
        sqlx::query_as("SELECT kid, private_der FROM tenancy.signing_keys ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&mut conn)
            .await
            .expect("a signing key")
    };
    let key = sentra_auth::SigningKey::from_pkcs8_der(kid, &der).expect("key");
    let mut claims = jwt_claims(&tenant.token);
    claims["exp"] = serde_json::json!(chrono_now() - 60);
    let claims: sentra_auth::Claims = serde_json::from_value(claims).expect("claims");
    let expired = key.sign(&claims).expect("sign");
    // The same key with a fresh `exp` is accepted: only expiry is wrong with the token above.
    let mut fresh = claims.clone();
    fresh.exp = chrono_now() + 60;
    let fresh = key.sign(&fresh).expect("sign");
    assert_status(&stack.web(path, &request, None, Some(&fresh), &[]).await, Code::Ok);
    let before = stack.upstream.count("GetOrganization");
    assert_status(&stack.web(path, &request, None, Some(&expired), &[]).await, Code::Unauthenticated);

    assert_eq!(stack.upstream.count("GetOrganization"), before, "no refused call was forwarded");
}

fn chrono_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock");
    i64::try_from(now.as_secs()).expect("seconds")
}

#[tokio::test]
async fn a_right_the_principal_lacks_is_refused_before_the_service_is_called() {
    let stack = Stack::start().await;
    let tenant = stack.tenant("Rights Agency").await;
    let a = stack.brand(&tenant, "Alpha", "alpha.rights.example").await;
    stack.portal_user(&tenant, &a.id, "client@customer.example").await;
    let portal = stack.web_login("client@customer.example", "alpha.rights.example").await.expect("portal login");

    // ORGANIZATION scope: a portal client holds no org-wide right.
    let list_users = "/sentra.tenancy.v1.TenancyService/ListUsers";
    let answer = stack.web(list_users, &pb::ListUsersRequest::default(), None, Some(&portal), &[]).await;
    assert_status(&answer, Code::PermissionDenied);
    // BRAND scope, brand named by metadata: another brand, which the client may not know exists
    // (NOT_FOUND, as the services answer it).
    let get_brand = "/sentra.tenancy.v1.TenancyService/GetBrand";
    let other = uuid::Uuid::new_v4().to_string();
    let answer = stack
        .web(
            get_brand,
            &pb::GetBrandRequest { brand_id: other.clone() },
            None,
            Some(&portal),
            &[("x-sentra-brand-id", &other)],
        )
        .await;
    assert_status(&answer, Code::NotFound);
    // BRAND scope, no brand named: a portal client holds brand_access.read on no brand.
    let members = "/sentra.tenancy.v1.TenancyService/ListBrandMembers";
    let answer =
        stack.web(members, &pb::ListBrandMembersRequest { brand_id: a.id.clone() }, None, Some(&portal), &[]).await;
    assert_status(&answer, Code::PermissionDenied);

    let paths = stack.upstream.paths();
    assert!(!paths.iter().any(|p| p == list_users || p == get_brand || p == members), "{paths:?}");

    // The same principal on its own brand passes, and the service answers.
    let answer = stack
        .web(
            get_brand,
            &pb::GetBrandRequest { brand_id: a.id.clone() },
            Some("alpha.rights.example"),
            Some(&portal),
            &[],
        )
        .await;
    assert_status(&answer, Code::Ok);
    let seen = stack.upstream.last("GetBrand").expect("forwarded");
    assert_eq!(seen.headers.get("x-sentra-brand-id").and_then(|v| v.to_str().ok()), Some(a.id.as_str()));
}

#[tokio::test]
async fn forged_internal_headers_from_outside_are_stripped() {
    let stack = Stack::start().await;
    let tenant = stack.tenant("Forge Agency").await;
    let forged = uuid::Uuid::new_v4().to_string();
    let answer = stack
        .web(
            "/sentra.tenancy.v1.TenancyService/GetOrganization",
            &pb::GetOrganizationRequest { organization_id: tenant.org_id.clone() },
            None,
            Some(&tenant.token),
            &[("x-sentra-organization-id", &forged), ("x-sentra-user-id", &forged), ("x-sentra-admin", "true")],
        )
        .await;
    assert_status(&answer, Code::Ok);
    let seen = stack.upstream.last("GetOrganization").expect("forwarded");
    assert_eq!(
        seen.headers.get("x-sentra-organization-id").and_then(|v| v.to_str().ok()),
        Some(tenant.org_id.as_str())
    );
    assert!(seen.headers.get("x-sentra-user-id").is_none());
    assert!(seen.headers.get("x-sentra-admin").is_none());
}

#[tokio::test]
async fn unknown_services_and_methods_are_unimplemented() {
    let stack = Stack::start().await;
    for path in
        ["/sentra.nowhere.v1.GhostService/Haunt", "/sentra.tenancy.v1.TenancyService/DropDatabase", "/acme.Foo/Bar"]
    {
        let answer = stack.web(path, &pb::GetSigningKeysRequest {}, None, None, &[]).await;
        assert_status(&answer, Code::Unimplemented);
    }
    assert!(stack.upstream.paths().is_empty(), "{:?}", stack.upstream.paths());
    // The gateway's own health still answers locally.
    let answer = stack
        .web("/grpc.health.v1.Health/Check", &tonic_health::pb::HealthCheckRequest::default(), None, None, &[])
        .await;
    assert_status(&answer, Code::Ok);
    let direct = sentra_testkit::grpc::health_status(stack.gateway.addr, "").await.expect("health");
    assert_eq!(direct, tonic_health::pb::health_check_response::ServingStatus::Serving);
}

#[tokio::test]
async fn deadlines_are_capped_and_oversized_messages_refused() {
    let stack = Stack::start_with(|c| {
        c.edge.max_message_bytes = 1024;
        c.edge.max_deadline = std::time::Duration::from_secs(5);
    })
    .await;
    let keys = "/sentra.tenancy.v1.AuthService/GetSigningKeys";
    let answer = stack.web(keys, &pb::GetSigningKeysRequest {}, None, None, &[("grpc-timeout", "3H")]).await;
    assert_status(&answer, Code::Ok);
    let seen = stack.upstream.last("GetSigningKeys").expect("forwarded");
    assert_eq!(seen.headers.get("grpc-timeout").and_then(|v| v.to_str().ok()), Some("5000m"));

    let big = pb::LoginRequest { email: "a@b.example".into(), password: "x".repeat(4096), host: String::new() };
    let answer = stack.web(LOGIN, &big, None, None, &[]).await;
    assert_status(&answer, Code::ResourceExhausted);
}

#[tokio::test]
async fn a_large_message_within_the_limit_streams_through_whole() {
    // 300 KB: several times the upstream's initial HTTP/2 stream window (64 KB), so the request
    // body reaches Tenancy only if the gateway waits for and follows its flow-control updates.
    let stack = Stack::start().await;
    let big =
        pb::LoginRequest { email: "nobody@large.example".into(), password: "x1".repeat(150_000), host: String::new() };
    let answer = stack.web(LOGIN, &big, None, None, &[]).await;
    // Tenancy decoded the whole message and refused the unknown account.
    assert_status(&answer, Code::Unauthenticated);
    assert_eq!(stack.upstream.count("Login"), 1);
}
