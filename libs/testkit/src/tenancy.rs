//! The Tenancy steps every service's tests start with: an organization signed up, a person logged
//! in, a brand created. One copy, so the tests of Sales, Finance and the gateway set up tenants the same way.

use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::auth_service_client::AuthServiceClient;
use sentra_proto::sentra::tenancy::v1::tenancy_service_client::TenancyServiceClient;
use tonic::transport::Channel;

/// The password of every account the helpers create.
pub const PASSWORD: &str = "correct horse 42";

/// The owner email of organization `name`: `owner@<name, lower-case, dashes>.example`.
pub fn owner_email(name: &str) -> String {
    format!("owner@{}.example", name.to_lowercase().replace(' ', "-"))
}

/// Signs up organization `name`, owned by [`owner_email`] with [`PASSWORD`]; panics if refused.
pub async fn sign_up(tenancy: &TenancyServiceClient<Channel>, name: &str) -> pb::SignUpResponse {
    tenancy
        .clone()
        .sign_up(pb::SignUpRequest {
            organization_name: name.into(),
            owner_email: owner_email(name),
            owner_display_name: format!("{name} Owner"),
            password: PASSWORD.into(),
            request_id: String::new(),
        })
        .await
        .expect("sign up")
        .into_inner()
}

/// Logs `email` in with [`PASSWORD`] on `host` ("" for none) and returns the access token; panics
/// if refused.
pub async fn login(auth: &AuthServiceClient<Channel>, email: &str, host: &str) -> String {
    auth.clone()
        .login(pb::LoginRequest { email: email.into(), password: PASSWORD.into(), host: host.into() })
        .await
        .expect("login")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token
}

/// Creates `brand` as the holder of `token` and returns it as stored; panics if refused.
pub async fn create_brand(tenancy: &TenancyServiceClient<Channel>, token: &str, brand: pb::Brand) -> pb::Brand {
    tenancy
        .clone()
        .create_brand(crate::grpc::bearer(
            token,
            pb::CreateBrandRequest { brand: Some(brand), request_id: String::new() },
        ))
        .await
        .expect("create brand")
        .into_inner()
        .brand
        .expect("the created brand")
}

/// Creates an analyst (organization role ANALYST, no brand role) as `token` (an owner or admin).
pub async fn analyst(tenancy: &TenancyServiceClient<Channel>, token: &str, email: &str) -> pb::User {
    let request = pb::CreateUserRequest {
        email: email.into(),
        display_name: "Analyst".into(),
        org_role: pb::OrgRole::Analyst.into(),
        password: PASSWORD.into(),
        request_id: String::new(),
    };
    tenancy
        .clone()
        .create_user(crate::grpc::bearer(token, request))
        .await
        .expect("create analyst")
        .into_inner()
        .user
        .expect("the created user")
}

/// A staff member `email` (password [`PASSWORD`]) holding `role` on `brand_id`, created and
/// granted by the holder of `token`; panics if refused.
pub async fn staff_member(
    tenancy: &TenancyServiceClient<Channel>,
    token: &str,
    email: &str,
    brand_id: &str,
    role: pb::BrandRole,
) -> pb::User {
    let mut tenancy = tenancy.clone();
    let user = tenancy
        .create_user(crate::grpc::bearer(
            token,
            pb::CreateUserRequest {
                email: email.into(),
                display_name: email.split('@').next().unwrap_or(email).into(),
                org_role: pb::OrgRole::Member.into(),
                password: PASSWORD.into(),
                request_id: String::new(),
            },
        ))
        .await
        .expect("create user")
        .into_inner()
        .user
        .expect("the created user");
    let grant = pb::GrantBrandAccessRequest { brand_id: brand_id.into(), user_id: user.id.clone(), role: role.into() };
    tenancy.grant_brand_access(crate::grpc::bearer(token, grant)).await.expect("grant brand access");
    user
}
