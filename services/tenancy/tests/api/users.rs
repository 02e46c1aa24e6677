//! Staff users: invitations, creation, deactivation.

use sentra_proto::sentra::tenancy::v1 as pb;
use tonic::Code;

use crate::helpers::{PASSWORD, bearer, expect_code, spawn_app};

#[tokio::test]
async fn an_invited_user_accepts_and_signs_in() {
    let app = spawn_app().await;
    let tenant = app.tenant("Inviting").await;
    let invited = app
        .tenancy
        .clone()
        .invite_user(bearer(
            &tenant.token,
            pb::InviteUserRequest {
                email: "New.Hire@Inviting.example".into(),
                display_name: "New Hire".into(),
                org_role: pb::OrgRole::Member.into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let user = invited.user.unwrap();
    assert_eq!(user.state, pb::UserState::Invited as i32);
    assert_eq!(user.email, "new.hire@inviting.example");
    assert!(!invited.invite_token.is_empty());
    expect_code(app.login("new.hire@inviting.example", PASSWORD, "").await, Code::Unauthenticated);

    let weak = app
        .tenancy
        .clone()
        .accept_invite(pb::AcceptInviteRequest { invite_token: invited.invite_token.clone(), password: "weak".into() })
        .await;
    assert!(expect_code(weak, Code::InvalidArgument).message().starts_with("password:"));
    let accepted = app
        .tenancy
        .clone()
        .accept_invite(pb::AcceptInviteRequest {
            invite_token: invited.invite_token.clone(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(accepted.state, pb::UserState::Active as i32);
    app.login("new.hire@inviting.example", PASSWORD, "").await.expect("the invited user signs in");

    let reused = app
        .tenancy
        .clone()
        .accept_invite(pb::AcceptInviteRequest { invite_token: invited.invite_token, password: PASSWORD.into() })
        .await;
    expect_code(reused, Code::Unauthenticated);
}

#[tokio::test]
async fn emails_are_unique_per_organization_only() {
    let app = spawn_app().await;
    let a = app.tenant("Org A").await;
    let b = app.tenant("Org B").await;
    let create = |token: &str| {
        bearer(
            token,
            pb::CreateUserRequest {
                email: "shared@person.example".into(),
                display_name: "Shared".into(),
                org_role: pb::OrgRole::Admin.into(),
                password: PASSWORD.into(),
                request_id: String::new(),
            },
        )
    };
    app.tenancy.clone().create_user(create(&a.token)).await.expect("first in A");
    expect_code(app.tenancy.clone().create_user(create(&a.token)).await, Code::AlreadyExists);
    app.tenancy.clone().create_user(create(&b.token)).await.expect("same email in B is fine");

    // The same email in two organizations with the same password needs the host to pick one.
    let ambiguous = expect_code(app.login("shared@person.example", PASSWORD, "").await, Code::InvalidArgument);
    assert!(ambiguous.message().starts_with("host:"));
    app.brand(&b.token, "B brand", "app.org-b.example").await;
    let tokens = app.login("shared@person.example", PASSWORD, "app.org-b.example").await.expect("login via B's domain");
    assert_eq!(crate::auth::jwt_claims(&tokens.access_token)["org"], b.org_id.as_str());

    let owner_role = app
        .tenancy
        .clone()
        .create_user(bearer(
            &a.token,
            pb::CreateUserRequest {
                email: "second.owner@a.example".into(),
                display_name: "Nope".into(),
                org_role: pb::OrgRole::Owner.into(),
                password: PASSWORD.into(),
                request_id: String::new(),
            },
        ))
        .await;
    assert!(expect_code(owner_role, Code::InvalidArgument).message().starts_with("org_role:"));
}

#[tokio::test]
async fn a_deactivated_user_can_no_longer_sign_in_or_refresh() {
    let app = spawn_app().await;
    let tenant = app.tenant("Leaving").await;
    let brand = app.brand(&tenant.token, "Leaving", "leaving.example.com").await;
    let (user_id, _) = app.member_with_role(&tenant, "leaver@leaving.example", &brand.id, pb::BrandRole::Agent).await;
    let session = app.login("leaver@leaving.example", PASSWORD, "").await.unwrap();

    let done = app
        .tenancy
        .clone()
        .deactivate_user(bearer(&tenant.token, pb::DeactivateUserRequest { user_id: user_id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(done.state, pb::UserState::Deactivated as i32);
    expect_code(app.login("leaver@leaving.example", PASSWORD, "").await, Code::Unauthenticated);
    expect_code(
        app.auth.clone().refresh(pb::RefreshRequest { refresh_token: session.refresh_token }).await,
        Code::Unauthenticated,
    );
    let owner_gone = app
        .tenancy
        .clone()
        .deactivate_user(bearer(&tenant.token, pb::DeactivateUserRequest { user_id: tenant.owner_id.clone() }))
        .await;
    expect_code(owner_gone, Code::FailedPrecondition);

    let pool = app.sql_pool().await;
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT routing_key FROM outbox ORDER BY position").fetch_all(&pool).await.unwrap();
    // The relay publishes every row to RabbitMQ and marks it.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
        if pending == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{pending} outbox rows never published");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for expected in [
        "tenancy.organization.created",
        "tenancy.brand.created",
        "tenancy.user.created",
        "tenancy.brand_access.granted",
        "tenancy.user.deactivated",
    ] {
        assert!(keys.iter().any(|k| k == expected), "{expected} not in the outbox: {keys:?}");
    }
}
