//! Revocation takes effect within seconds everywhere: after a brand role is revoked, or a user
//! deactivated, the access token they hold is refused by Sales directly and through the gateway
//! (not only when it expires, 15 minutes later); a refresh gets a token with the current rights,
//! or none for a deactivated user.

use std::path::Path;
use std::time::{Duration, Instant};

use sentra_auth::DEFAULT_SESSION_TTL;
use sentra_mesh::Mesh;
use sentra_proto::sentra::sales::v1 as spb;
use sentra_proto::sentra::sales::v1::sales_service_client::SalesServiceClient;
use sentra_proto::sentra::tenancy::v1 as tpb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use sentra_testkit::grpc::{bearer, channel};
use tonic::Code;

const PASSWORD: &str = "correct horse 42";

/// How long until `token` is refused (UNAUTHENTICATED) by ListLeads on `sales`.
async fn refused_within(sales: &SalesServiceClient<tonic::transport::Channel>, token: &str, brand: &str) -> Duration {
    let started = Instant::now();
    loop {
        let answer = sales
            .clone()
            .list_leads(bearer(token, spb::ListLeadsRequest { brand_id: brand.into(), ..Default::default() }))
            .await;
        match answer {
            Err(status) if status.code() == Code::Unauthenticated => return started.elapsed(),
            Ok(_) => {}
            Err(status) => panic!("unexpected answer while waiting for the refusal: {status:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the revoked token still works after 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_revoked_role_and_a_deactivated_user_are_refused_within_seconds() {
    let mesh = Mesh::start(Path::new("/nonexistent")).await.unwrap();
    let tenancy_channel = channel(mesh.tenancy);
    let tenancy = TenancyServiceClient::new(tenancy_channel.clone());
    let mut auth = AuthServiceClient::new(tenancy_channel);
    sentra_testkit::tenancy::sign_up(&tenancy, "Revocation Agency").await;
    let owner =
        sentra_testkit::tenancy::login(&auth, &sentra_testkit::tenancy::owner_email("Revocation Agency"), "").await;
    let mut t = tenancy.clone();
    let brand = sentra_testkit::tenancy::create_brand(
        &tenancy,
        &owner,
        tpb::Brand {
            name: "Revoked".into(),
            domain: "app.revoked.example".into(),
            invoice_prefix: "RV".into(),
            default_currency: "EUR".into(),
            time_zone: "Europe/Berlin".into(),
            ..Default::default()
        },
    )
    .await;
    let mut people = Vec::new();
    for email in ["maria@revoked.example", "dave@revoked.example"] {
        let user =
            sentra_testkit::tenancy::staff_member(&tenancy, &owner, email, &brand.id, tpb::BrandRole::Manager).await;
        let login = tpb::LoginRequest { email: email.into(), password: PASSWORD.into(), host: String::new() };
        let tokens = auth.login(login).await.unwrap().into_inner().tokens.unwrap();
        people.push((user.id, tokens));
    }
    let direct = SalesServiceClient::new(channel(mesh.sales));
    let through_gateway = SalesServiceClient::new(channel(mesh.gateway));
    let (maria, maria_tokens) = &people[0];
    let (dave, dave_tokens) = &people[1];
    for sales in [&direct, &through_gateway] {
        for token in [&maria_tokens.access_token, &dave_tokens.access_token] {
            let request = spb::ListLeadsRequest { brand_id: brand.id.clone(), ..Default::default() };
            sales.clone().list_leads(bearer(token, request)).await.expect("the manager reads the brand's leads");
        }
    }

    // Maria loses her role: her token is refused within the session check's time.
    let revoke = tpb::RevokeBrandAccessRequest { brand_id: brand.id.clone(), user_id: maria.clone() };
    t.revoke_brand_access(bearer(&owner, revoke)).await.unwrap();
    let bound = DEFAULT_SESSION_TTL + Duration::from_secs(1);
    for (via, sales) in [("directly", &direct), ("through the gateway", &through_gateway)] {
        let took = refused_within(sales, &maria_tokens.access_token, &brand.id).await;
        assert!(took <= bound, "refused {via} only after {took:?}");
    }
    // Her refresh gets a token with her current rights: none on the brand.
    let refreshed = auth
        .refresh(tpb::RefreshRequest { refresh_token: maria_tokens.refresh_token.clone() })
        .await
        .unwrap()
        .into_inner()
        .tokens
        .unwrap();
    let request = spb::ListLeadsRequest { brand_id: brand.id.clone(), ..Default::default() };
    let status = direct.clone().list_leads(bearer(&refreshed.access_token, request)).await.unwrap_err();
    assert!(matches!(status.code(), Code::PermissionDenied | Code::NotFound), "{status:?}");

    // Dave is deactivated: refused within seconds, and no refresh brings him back.
    t.deactivate_user(bearer(&owner, tpb::DeactivateUserRequest { user_id: dave.clone() })).await.unwrap();
    for (via, sales) in [("directly", &direct), ("through the gateway", &through_gateway)] {
        let took = refused_within(sales, &dave_tokens.access_token, &brand.id).await;
        assert!(took <= bound, "refused {via} only after {took:?}");
    }
    let again = auth.refresh(tpb::RefreshRequest { refresh_token: dave_tokens.refresh_token.clone() }).await;
    assert_eq!(again.unwrap_err().code(), Code::Unauthenticated);
    mesh.stop().await;
}
