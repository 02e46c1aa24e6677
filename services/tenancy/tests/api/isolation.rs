//! Tenant isolation: organization A's owner, holding every right in A, reaches nothing of B.
//!
//! One test walks every TenancyService RPC. Calls that name B's resources must answer NOT_FOUND
//! (B's data is invisible, not forbidden); calls that create or list act inside A only.

use prost_types::FieldMask;
use sentra_proto::sentra::tenancy::v1 as pb;
use tonic::Code;

use crate::helpers::{PASSWORD, bearer, brand, expect_code, spawn_app};

#[tokio::test]
async fn every_tenancy_rpc_is_isolated_between_organizations() {
    let app = spawn_app().await;
    let a = app.tenant("Tenant A").await;
    let b = app.tenant("Tenant B").await;
    let b_brand = app.brand(&b.token, "B brand", "app.tenant-b.example").await;
    let a_brand = app.brand(&a.token, "A brand", "app.tenant-a.example").await;
    let (b_user, _) = app.member_with_role(&b, "member@tenant-b.example", &b_brand.id, pb::BrandRole::Agent).await;
    let mut t = app.tenancy.clone();
    let tok = &a.token;

    // Organization
    expect_code(
        t.get_organization(bearer(tok, pb::GetOrganizationRequest { organization_id: b.org_id.clone() })).await,
        Code::NotFound,
    );
    expect_code(
        t.update_organization(bearer(
            tok,
            pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization {
                    id: b.org_id.clone(),
                    name: "Hijacked".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask { paths: vec!["name".into()] }),
            },
        ))
        .await,
        Code::NotFound,
    );

    // Brands
    expect_code(t.get_brand(bearer(tok, pb::GetBrandRequest { brand_id: b_brand.id.clone() })).await, Code::NotFound);
    let renamed = pb::UpdateBrandRequest {
        brand: Some(pb::Brand { id: b_brand.id.clone(), name: "Hijacked".into(), ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["name".into()] }),
    };
    expect_code(t.update_brand(bearer(tok, renamed)).await, Code::NotFound);
    expect_code(
        t.archive_brand(bearer(tok, pb::ArchiveBrandRequest { brand_id: b_brand.id.clone(), etag: String::new() }))
            .await,
        Code::NotFound,
    );
    let listed =
        t.list_brands(bearer(tok, pb::ListBrandsRequest { show_archived: true, ..Default::default() })).await.unwrap();
    let listed: Vec<String> = listed.into_inner().brands.into_iter().map(|x| x.id).collect();
    assert_eq!(listed, std::slice::from_ref(&a_brand.id));
    let created = t
        .create_brand(bearer(
            tok,
            pb::CreateBrandRequest {
                brand: Some(pb::Brand {
                    organization_id: b.org_id.clone(),
                    ..brand("Planted", "planted.tenant-a.example")
                }),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .brand
        .unwrap();
    assert_eq!(created.organization_id, a.org_id, "a create lands in the caller's organization whatever it claims");

    // Users
    expect_code(t.get_user(bearer(tok, pb::GetUserRequest { user_id: b_user.clone() })).await, Code::NotFound);
    expect_code(
        t.deactivate_user(bearer(tok, pb::DeactivateUserRequest { user_id: b_user.clone() })).await,
        Code::NotFound,
    );
    expect_code(
        t.list_user_brand_access(bearer(tok, pb::ListUserBrandAccessRequest { user_id: b_user.clone() })).await,
        Code::NotFound,
    );
    let users = t.list_users(bearer(tok, pb::ListUsersRequest::default())).await.unwrap().into_inner().users;
    assert!(users.iter().all(|u| u.organization_id == a.org_id), "{users:?}");
    let invited = t
        .invite_user(bearer(
            tok,
            pb::InviteUserRequest {
                email: "member@tenant-b.example".into(),
                display_name: "Same email, other org".into(),
                org_role: pb::OrgRole::Member.into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(invited.organization_id, a.org_id);
    let made = t
        .create_user(bearer(
            tok,
            pb::CreateUserRequest {
                email: "new@tenant-a.example".into(),
                display_name: "New".into(),
                org_role: pb::OrgRole::Member.into(),
                password: PASSWORD.into(),
                request_id: String::new(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(made.organization_id, a.org_id);

    // Brand access: B's brand, B's user, or a mix with A's.
    let grant = |brand_id: &str, user_id: &str| pb::GrantBrandAccessRequest {
        brand_id: brand_id.into(),
        user_id: user_id.into(),
        role: pb::BrandRole::Manager.into(),
    };
    expect_code(t.grant_brand_access(bearer(tok, grant(&b_brand.id, &a.owner_id))).await, Code::NotFound);
    expect_code(t.grant_brand_access(bearer(tok, grant(&a_brand.id, &b_user))).await, Code::NotFound);
    expect_code(
        t.revoke_brand_access(bearer(
            tok,
            pb::RevokeBrandAccessRequest { brand_id: b_brand.id.clone(), user_id: b_user.clone() },
        ))
        .await,
        Code::NotFound,
    );
    expect_code(
        t.list_brand_members(bearer(tok, pb::ListBrandMembersRequest { brand_id: b_brand.id.clone() })).await,
        Code::NotFound,
    );

    // Portal identities
    expect_code(
        t.create_portal_user(bearer(
            tok,
            pb::CreatePortalUserRequest {
                brand_id: b_brand.id.clone(),
                client_id: uuid::Uuid::new_v4().to_string(),
                email: "client@x.example".into(),
                display_name: "C".into(),
                password: PASSWORD.into(),
                request_id: String::new(),
            },
        ))
        .await,
        Code::NotFound,
    );

    // Nothing of B changed.
    let b_now =
        t.get_brand(bearer(&b.token, pb::GetBrandRequest { brand_id: b_brand.id.clone() })).await.unwrap().into_inner();
    assert_eq!(b_now.brand.unwrap().name, "B brand");
    let b_user_now = t.get_user(bearer(&b.token, pb::GetUserRequest { user_id: b_user })).await.unwrap().into_inner();
    assert_eq!(b_user_now.user.unwrap().state, pb::UserState::Active as i32);
    let b_org =
        t.get_organization(bearer(&b.token, pb::GetOrganizationRequest { organization_id: b.org_id.clone() })).await;
    assert_eq!(b_org.unwrap().into_inner().organization.unwrap().name, "Tenant B");
}
