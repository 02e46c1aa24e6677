//! Brand roles: what each role may do, and nothing on brands without a role.

use prost_types::FieldMask;
use sentra_proto::sentra::tenancy::v1 as pb;
use tonic::Code;

use crate::helpers::{bearer, expect_code, spawn_app};

fn rename(brand: &pb::Brand) -> pb::UpdateBrandRequest {
    pb::UpdateBrandRequest {
        brand: Some(pb::Brand { id: brand.id.clone(), name: "Renamed".into(), ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["name".into()] }),
    }
}

#[tokio::test]
async fn roles_limit_what_members_do_per_brand() {
    let app = spawn_app().await;
    let tenant = app.tenant("Roles").await;
    let mine = app.brand(&tenant.token, "Mine", "mine.roles.example").await;
    let other = app.brand(&tenant.token, "Other", "other.roles.example").await;
    let (_, viewer) = app.member_with_role(&tenant, "viewer@roles.example", &mine.id, pb::BrandRole::Viewer).await;
    let (_, manager) = app.member_with_role(&tenant, "manager@roles.example", &mine.id, pb::BrandRole::Manager).await;
    let (agent_id, agent) = app.member_with_role(&tenant, "agent@roles.example", &mine.id, pb::BrandRole::Agent).await;
    let (_, nobody) = app.member_with_role(&tenant, "nobody@roles.example", &mine.id, pb::BrandRole::Unspecified).await;
    let mut t = app.tenancy.clone();

    // A viewer reads but cannot write.
    t.get_brand(bearer(&viewer, pb::GetBrandRequest { brand_id: mine.id.clone() })).await.expect("viewer reads");
    expect_code(t.update_brand(bearer(&viewer, rename(&mine))).await, Code::PermissionDenied);
    expect_code(
        t.grant_brand_access(bearer(
            &viewer,
            pb::GrantBrandAccessRequest {
                brand_id: mine.id.clone(),
                user_id: agent_id.clone(),
                role: pb::BrandRole::Manager.into(),
            },
        ))
        .await,
        Code::PermissionDenied,
    );

    // An agent without access to a brand may not know it exists (NOT_FOUND), and only sees its own.
    expect_code(t.get_brand(bearer(&agent, pb::GetBrandRequest { brand_id: other.id.clone() })).await, Code::NotFound);
    expect_code(
        t.list_brand_members(bearer(&agent, pb::ListBrandMembersRequest { brand_id: other.id.clone() })).await,
        Code::NotFound,
    );
    let visible = t.list_brands(bearer(&agent, pb::ListBrandsRequest::default())).await.unwrap().into_inner().brands;
    assert_eq!(visible.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), [mine.id.as_str()]);

    // A member without any brand role sees no brand and creates none.
    let none = t.list_brands(bearer(&nobody, pb::ListBrandsRequest::default())).await.unwrap().into_inner().brands;
    assert!(none.is_empty());
    let create = pb::CreateBrandRequest {
        brand: Some(crate::helpers::brand("X", "x.roles.example")),
        request_id: String::new(),
    };
    expect_code(t.create_brand(bearer(&nobody, create)).await, Code::PermissionDenied);
    expect_code(
        t.create_user(bearer(
            &nobody,
            pb::CreateUserRequest {
                email: "sneaky@roles.example".into(),
                display_name: "S".into(),
                org_role: pb::OrgRole::Admin.into(),
                password: crate::helpers::PASSWORD.into(),
                request_id: String::new(),
            },
        ))
        .await,
        Code::PermissionDenied,
    );

    // A manager changes its brand and its members, but not other brands.
    t.update_brand(bearer(&manager, rename(&mine))).await.expect("manager renames its brand");
    expect_code(t.update_brand(bearer(&manager, rename(&other))).await, Code::NotFound);
    let granted = t
        .grant_brand_access(bearer(
            &manager,
            pb::GrantBrandAccessRequest {
                brand_id: mine.id.clone(),
                user_id: agent_id.clone(),
                role: pb::BrandRole::Finance.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .access
        .unwrap();
    assert_eq!(granted.role, pb::BrandRole::Finance as i32);
    let members = t
        .list_brand_members(bearer(&manager, pb::ListBrandMembersRequest { brand_id: mine.id.clone() }))
        .await
        .unwrap()
        .into_inner()
        .accesses;
    assert_eq!(members.len(), 3);
    assert!(members.iter().any(|m| m.user_id == agent_id && m.role == pb::BrandRole::Finance as i32));

    // Revoking ends the user's tokens at once (Tenancy judges sessions on every call) and removes
    // the brand from the next one.
    t.revoke_brand_access(bearer(
        &manager,
        pb::RevokeBrandAccessRequest { brand_id: mine.id.clone(), user_id: agent_id.clone() },
    ))
    .await
    .expect("revoke");
    let stale =
        t.list_user_brand_access(bearer(&agent, pb::ListUserBrandAccessRequest { user_id: agent_id.clone() })).await;
    assert!(expect_code(stale, Code::Unauthenticated).message().contains("revoked"));
    let fresh = app.login("agent@roles.example", crate::helpers::PASSWORD, "").await.unwrap();
    let own = t
        .list_user_brand_access(bearer(
            &fresh.access_token,
            pb::ListUserBrandAccessRequest { user_id: agent_id.clone() },
        ))
        .await
        .unwrap()
        .into_inner()
        .accesses;
    assert!(own.is_empty());
    // Without a role on it, the brand is one the user may no longer know exists.
    expect_code(
        t.get_brand(bearer(&fresh.access_token, pb::GetBrandRequest { brand_id: mine.id.clone() })).await,
        Code::NotFound,
    );
}
