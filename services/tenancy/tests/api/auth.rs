//! Sign-in, refresh rotation, logout, and token verification.

use std::time::Duration;

use sentra_auth::{Claims, PrincipalKind, SigningKey};
use sentra_proto::sentra::tenancy::v1 as pb;
use tonic::Code;

use crate::helpers::{PASSWORD, bearer, expect_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn sign_up_login_refresh_rotation_and_logout() {
    let app = spawn_app().await;
    let tenant = app.tenant("Urban Quill").await;

    // The access token works.
    let org = app
        .tenancy
        .clone()
        .get_organization(bearer(&tenant.token, pb::GetOrganizationRequest { organization_id: tenant.org_id.clone() }))
        .await
        .expect("the token works")
        .into_inner()
        .organization
        .expect("organization");
    assert_eq!(org.name, "Urban Quill");

    // Refresh rotates: a new pair, and the old refresh token is spent.
    let first = tenant.refresh.clone();
    let second = app.auth.clone().refresh(pb::RefreshRequest { refresh_token: first.clone() }).await.expect("refresh");
    let second = second.into_inner().tokens.expect("tokens");
    assert_ne!(second.refresh_token, first);
    assert_ne!(second.access_token, tenant.token);
    let third = app.auth.clone().refresh(pb::RefreshRequest { refresh_token: second.refresh_token.clone() }).await;
    let third = third.expect("the new refresh token works once").into_inner().tokens.expect("tokens");

    // Reusing a spent token revokes the whole family, including the newest token.
    expect_code(app.auth.clone().refresh(pb::RefreshRequest { refresh_token: first }).await, Code::Unauthenticated);
    expect_code(
        app.auth.clone().refresh(pb::RefreshRequest { refresh_token: third.refresh_token }).await,
        Code::Unauthenticated,
    );

    // Logout revokes a fresh family.
    let fresh = app.login("owner@urban-quill.example", PASSWORD, "").await.expect("login again");
    app.auth.clone().logout(pb::LogoutRequest { refresh_token: fresh.refresh_token.clone() }).await.expect("logout");
    expect_code(
        app.auth.clone().refresh(pb::RefreshRequest { refresh_token: fresh.refresh_token }).await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    app.tenant("Same Answer").await;
    let wrong =
        expect_code(app.login("owner@same-answer.example", "wrong password 1", "").await, Code::Unauthenticated);
    let unknown = expect_code(app.login("nobody@same-answer.example", PASSWORD, "").await, Code::Unauthenticated);
    assert_eq!(wrong.message(), unknown.message());
    assert_eq!(wrong.details(), unknown.details());
}

#[tokio::test]
async fn tokens_from_unknown_keys_expired_or_tampered_are_refused() {
    let app = spawn_app().await;
    let tenant = app.tenant("Forgery").await;
    let call = |token: String| {
        let mut client = app.tenancy.clone();
        let org_id = tenant.org_id.clone();
        async move { client.get_organization(bearer(&token, pb::GetOrganizationRequest { organization_id: org_id })).await }
    };
    call(tenant.token.clone()).await.expect("the real token works");

    let now = chrono::Utc::now().timestamp();
    let owner: uuid::Uuid = tenant.owner_id.parse().unwrap();
    let org: uuid::Uuid = tenant.org_id.parse().unwrap();
    let claims = |exp: i64| Claims {
        sub: owner,
        org,
        kind: PrincipalKind::Staff,
        org_role: Some(sentra_auth::OrgRole::Owner),
        brands: Default::default(),
        portal_brand: None,
        client_id: None,
        sv: 0,
        exp,
        iat: now - 10,
        jti: "forged".into(),
        iss: "sentra".into(),
    };

    // Signed by a key Tenancy never published.
    let stranger = SigningKey::generate("stranger");
    expect_code(call(stranger.sign(&claims(now + 600)).unwrap()).await, Code::Unauthenticated);

    // Signed by the real key but expired.
    let pool = app.sql_pool().await;
    let (kid, der): (String, Vec<u8>) =
        sqlx::query_as("SELECT kid, private_der FROM signing_keys ORDER BY created_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    let real = SigningKey::from_pkcs8_der(kid, &der).unwrap();
    call(real.sign(&claims(now + 600)).unwrap()).await.expect("a token the real key signs is accepted");
    expect_code(call(real.sign(&claims(now - 120)).unwrap()).await, Code::Unauthenticated);

    // Tampered: the payload promotes the caller, the signature stays.
    let parts: Vec<&str> = tenant.token.split('.').collect();
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    payload["org"] = serde_json::json!(uuid::Uuid::new_v4());
    let forged = format!("{}.{}.{}", parts[0], engine.encode(payload.to_string()), parts[2]);
    expect_code(call(forged).await, Code::Unauthenticated);
    expect_code(call("not-a-jwt".into()).await, Code::Unauthenticated);

    // No token at all.
    expect_code(
        app.tenancy
            .clone()
            .get_organization(pb::GetOrganizationRequest { organization_id: tenant.org_id.clone() })
            .await,
        Code::Unauthenticated,
    );
}

#[tokio::test]
async fn keys_rotate_and_old_tokens_keep_verifying() {
    let app = spawn_app_with(|c| c.auth.key_rotate_after_secs = 1).await;
    let tenant = app.tenant("Rotation").await;
    let kid = |token: &str| {
        let header = jsonwebtoken_header(token);
        header["kid"].as_str().unwrap().to_owned()
    };
    let first_kid = kid(&tenant.token);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = app.login("owner@rotation.example", PASSWORD, "").await.unwrap();
    let second_kid = kid(&later.access_token);
    assert_ne!(first_kid, second_kid, "a new key signs after rotation");

    let keys = app.auth.clone().get_signing_keys(pb::GetSigningKeysRequest {}).await.unwrap().into_inner().keys;
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert!(kids.contains(&first_kid.as_str()) && kids.contains(&second_kid.as_str()), "{kids:?}");
    assert!(keys.iter().all(|k| k.kty == "OKP" && k.crv == "Ed25519" && k.alg == "EdDSA" && k.x.len() == 43));

    for token in [&tenant.token, &later.access_token] {
        app.tenancy
            .clone()
            .get_organization(bearer(token, pb::GetOrganizationRequest { organization_id: tenant.org_id.clone() }))
            .await
            .expect("tokens of the old and the new key verify");
    }
}

fn jsonwebtoken_header(token: &str) -> serde_json::Value {
    use base64::Engine;
    let header = token.split('.').next().expect("a JWT has a header");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).expect("base64url header");
    serde_json::from_slice(&raw).expect("JSON header")
}

#[tokio::test]
async fn portal_clients_sign_in_on_their_brand_domain_only() {
    let app = spawn_app().await;
    let tenant = app.tenant("Portal Agency").await;
    let a = app.brand(&tenant.token, "Alpha", "portal.alpha.example").await;
    let b = app.brand(&tenant.token, "Beta", "portal.beta.example").await;
    let client_id = uuid::Uuid::new_v4().to_string();
    let created = app
        .tenancy
        .clone()
        .create_portal_user(bearer(
            &tenant.token,
            pb::CreatePortalUserRequest {
                brand_id: a.id.clone(),
                client_id: client_id.clone(),
                email: "Client@Customer.example".into(),
                display_name: "A Client".into(),
                password: PASSWORD.into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .portal_user
        .unwrap();
    assert_eq!(created.email, "client@customer.example");

    let tokens =
        app.login("client@customer.example", PASSWORD, "Portal.Alpha.Example:443").await.expect("portal login");
    let claims = jwt_claims(&tokens.access_token);
    assert_eq!(claims["kind"], "client");
    assert_eq!(claims["portal_brand"], a.id.as_str());
    assert_eq!(claims["client_id"], client_id.as_str());

    // The same identity does not exist on brand B's domain, nor without a host.
    expect_code(app.login("client@customer.example", PASSWORD, "portal.beta.example").await, Code::Unauthenticated);
    expect_code(app.login("client@customer.example", PASSWORD, "").await, Code::Unauthenticated);

    // The portal client can read its own brand, not the other one, and cannot manage anything.
    app.tenancy
        .clone()
        .get_brand(bearer(&tokens.access_token, pb::GetBrandRequest { brand_id: a.id.clone() }))
        .await
        .expect("own brand");
    expect_code(
        app.tenancy
            .clone()
            .get_brand(bearer(&tokens.access_token, pb::GetBrandRequest { brand_id: b.id.clone() }))
            .await,
        Code::NotFound,
    );
    expect_code(
        app.tenancy
            .clone()
            .list_users(bearer(&tokens.access_token, pb::ListUsersRequest { page_size: 0, page_token: String::new() }))
            .await,
        Code::PermissionDenied,
    );
}

pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&raw).expect("JSON claims")
}
