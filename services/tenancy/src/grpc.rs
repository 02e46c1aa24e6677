//! The gRPC surface: requests become commands (`TryFrom`), rows become messages, errors become
//! statuses (`From<TenancyError>`). No rules live here.

use std::sync::Arc;

use sentra_auth::{BrandRole, principal};
use sentra_proto::sentra::tenancy::v1 as pb;
use sentra_proto::sentra::tenancy::v1::auth_service_server::AuthService;
use sentra_proto::sentra::tenancy::v1::tenancy_service_server::TenancyService;
use sentra_runtime::wire::timestamp;
use tonic::{Request, Response, Status};

use crate::commands::{self, GrantAccess, Login, NewPortalUser, NewUser, Page, SignUp, UpdateOrganization, etag_of};
use crate::directory::{self, Directory};
use crate::error::TenancyError;
use crate::sessions::{KeyRing, Sessions, Tokens};
use crate::validate;

fn org_pb(o: directory::Organization) -> pb::Organization {
    pb::Organization {
        id: o.id.to_string(),
        name: o.name,
        etag: etag_of(o.version),
        create_time: Some(timestamp(o.created_at)),
        update_time: Some(timestamp(o.updated_at)),
    }
}

fn brand_pb(b: directory::Brand) -> pb::Brand {
    pb::Brand {
        id: b.id.to_string(),
        organization_id: b.organization_id.to_string(),
        name: b.name,
        domain: b.domain,
        display_name: b.display_name,
        logo_url: b.logo_url,
        primary_color: b.primary_color,
        support_email: b.support_email,
        invoice_prefix: b.invoice_prefix,
        default_currency: b.default_currency,
        time_zone: b.time_zone,
        email_aliases: b.email_aliases,
        archived: b.archived_at.is_some(),
        etag: etag_of(b.version),
        create_time: Some(timestamp(b.created_at)),
        update_time: Some(timestamp(b.updated_at)),
    }
}

fn user_pb(u: directory::User) -> pb::User {
    let org_role = match u.org_role.as_str() {
        "owner" => pb::OrgRole::Owner,
        "admin" => pb::OrgRole::Admin,
        "analyst" => pb::OrgRole::Analyst,
        _ => pb::OrgRole::Member,
    };
    let state = match u.state.as_str() {
        "invited" => pb::UserState::Invited,
        "active" => pb::UserState::Active,
        _ => pb::UserState::Deactivated,
    };
    pb::User {
        id: u.id.to_string(),
        organization_id: u.organization_id.to_string(),
        email: u.email,
        display_name: u.display_name,
        org_role: org_role.into(),
        state: state.into(),
        create_time: Some(timestamp(u.created_at)),
    }
}

fn access_pb(a: directory::Access) -> pb::BrandAccess {
    let role = match a.role.parse::<BrandRole>() {
        Ok(BrandRole::Manager) => pb::BrandRole::Manager,
        Ok(BrandRole::Agent) => pb::BrandRole::Agent,
        Ok(BrandRole::Finance) => pb::BrandRole::Finance,
        Ok(BrandRole::Viewer) => pb::BrandRole::Viewer,
        Err(_) => pb::BrandRole::Unspecified,
    };
    pb::BrandAccess {
        user_id: a.user_id.to_string(),
        brand_id: a.brand_id.to_string(),
        role: role.into(),
        update_time: Some(timestamp(a.updated_at)),
    }
}

fn tokens_pb(t: Tokens) -> pb::TokenPair {
    pb::TokenPair {
        access_token: t.access_token,
        expires_in: t.expires_in,
        refresh_token: t.refresh_token,
        token_type: "Bearer".into(),
    }
}

fn next_token(next: Option<(String, uuid::Uuid)>) -> String {
    next.map(|(key, id)| validate::encode_page_token(&key, id)).unwrap_or_default()
}

/// `TenancyService` over the [`Directory`].
pub struct TenancyApi {
    /// The directory.
    pub directory: Directory,
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl TenancyService for TenancyApi {
    async fn sign_up(&self, request: Request<pb::SignUpRequest>) -> Reply<pb::SignUpResponse> {
        let cmd = SignUp::try_from(request.into_inner())?;
        let (org, owner) = self.directory.sign_up(cmd).await?;
        Ok(Response::new(pb::SignUpResponse { organization: Some(org_pb(org)), owner: Some(user_pb(owner)) }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Reply<pb::GetOrganizationResponse> {
        let who = principal(&request)?;
        let id = validate::id("organization_id", &request.get_ref().organization_id)?;
        let org = self.directory.get_organization(who, id).await?;
        Ok(Response::new(pb::GetOrganizationResponse { organization: Some(org_pb(org)) }))
    }

    async fn update_organization(
        &self,
        request: Request<pb::UpdateOrganizationRequest>,
    ) -> Reply<pb::UpdateOrganizationResponse> {
        let who = principal(&request)?.clone();
        let cmd = UpdateOrganization::try_from(request.into_inner())?;
        let org = self.directory.update_organization(&who, cmd).await?;
        Ok(Response::new(pb::UpdateOrganizationResponse { organization: Some(org_pb(org)) }))
    }

    async fn create_brand(&self, request: Request<pb::CreateBrandRequest>) -> Reply<pb::CreateBrandResponse> {
        let who = principal(&request)?.clone();
        let cmd = commands::CreateBrand::try_from(request.into_inner())?;
        let brand = self.directory.create_brand(&who, cmd).await?;
        Ok(Response::new(pb::CreateBrandResponse { brand: Some(brand_pb(brand)) }))
    }

    async fn get_brand(&self, request: Request<pb::GetBrandRequest>) -> Reply<pb::GetBrandResponse> {
        let who = principal(&request)?;
        let id = validate::id("brand_id", &request.get_ref().brand_id)?;
        let brand = self.directory.get_brand(who, id).await?;
        Ok(Response::new(pb::GetBrandResponse { brand: Some(brand_pb(brand)) }))
    }

    async fn list_brands(&self, request: Request<pb::ListBrandsRequest>) -> Reply<pb::ListBrandsResponse> {
        let who = principal(&request)?;
        let r = request.get_ref();
        let page = Page::new(r.page_size, &r.page_token)?;
        let (brands, next) = self.directory.list_brands(who, page, r.show_archived).await?;
        Ok(Response::new(pb::ListBrandsResponse {
            brands: brands.into_iter().map(brand_pb).collect(),
            next_page_token: next_token(next),
        }))
    }

    async fn update_brand(&self, request: Request<pb::UpdateBrandRequest>) -> Reply<pb::UpdateBrandResponse> {
        let who = principal(&request)?.clone();
        let cmd = commands::UpdateBrand::try_from(request.into_inner())?;
        let brand = self.directory.update_brand(&who, cmd).await?;
        Ok(Response::new(pb::UpdateBrandResponse { brand: Some(brand_pb(brand)) }))
    }

    async fn archive_brand(&self, request: Request<pb::ArchiveBrandRequest>) -> Reply<pb::ArchiveBrandResponse> {
        let who = principal(&request)?;
        let r = request.get_ref();
        let id = validate::id("brand_id", &r.brand_id)?;
        let expected = if r.etag.is_empty() {
            None
        } else {
            Some(
                r.etag
                    .trim_matches('"')
                    .parse()
                    .map_err(|_| TenancyError::invalid("etag", "is not an etag from this API"))?,
            )
        };
        let brand = self.directory.archive_brand(who, id, expected).await?;
        Ok(Response::new(pb::ArchiveBrandResponse { brand: Some(brand_pb(brand)) }))
    }

    async fn resolve_brand_by_domain(
        &self,
        request: Request<pb::ResolveBrandByDomainRequest>,
    ) -> Reply<pb::ResolveBrandByDomainResponse> {
        let domain = validate::domain("host", &request.get_ref().host)?;
        let b = self.directory.resolve(&domain).await?;
        Ok(Response::new(pb::ResolveBrandByDomainResponse {
            brand_id: b.id.to_string(),
            organization_id: b.organization_id.to_string(),
            display_name: b.display_name,
            logo_url: b.logo_url,
            primary_color: b.primary_color,
            support_email: b.support_email,
            domain: b.domain,
        }))
    }

    async fn invite_user(&self, request: Request<pb::InviteUserRequest>) -> Reply<pb::InviteUserResponse> {
        let who = principal(&request)?.clone();
        let cmd = NewUser::try_from(request.into_inner())?;
        let (user, token) = self.directory.invite_user(&who, cmd).await?;
        Ok(Response::new(pb::InviteUserResponse { user: Some(user_pb(user)), invite_token: token.unwrap_or_default() }))
    }

    async fn accept_invite(&self, request: Request<pb::AcceptInviteRequest>) -> Reply<pb::AcceptInviteResponse> {
        let r = request.into_inner();
        if r.invite_token.is_empty() {
            return Err(TenancyError::invalid("invite_token", "must not be empty").into());
        }
        let password = validate::password("password", &r.password)?;
        let user = self.directory.accept_invite(&r.invite_token, password).await?;
        Ok(Response::new(pb::AcceptInviteResponse { user: Some(user_pb(user)) }))
    }

    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Reply<pb::CreateUserResponse> {
        let who = principal(&request)?.clone();
        let cmd = NewUser::try_from(request.into_inner())?;
        let user = self.directory.create_user(&who, cmd).await?;
        Ok(Response::new(pb::CreateUserResponse { user: Some(user_pb(user)) }))
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Reply<pb::GetUserResponse> {
        let who = principal(&request)?;
        let id = validate::id("user_id", &request.get_ref().user_id)?;
        let user = self.directory.get_user(who, id).await?;
        Ok(Response::new(pb::GetUserResponse { user: Some(user_pb(user)) }))
    }

    async fn list_users(&self, request: Request<pb::ListUsersRequest>) -> Reply<pb::ListUsersResponse> {
        let who = principal(&request)?;
        let r = request.get_ref();
        let page = Page::new(r.page_size, &r.page_token)?;
        let (users, next) = self.directory.list_users(who, page).await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(user_pb).collect(),
            next_page_token: next_token(next),
        }))
    }

    async fn deactivate_user(&self, request: Request<pb::DeactivateUserRequest>) -> Reply<pb::DeactivateUserResponse> {
        let who = principal(&request)?;
        let id = validate::id("user_id", &request.get_ref().user_id)?;
        let user = self.directory.deactivate_user(who, id).await?;
        Ok(Response::new(pb::DeactivateUserResponse { user: Some(user_pb(user)) }))
    }

    async fn grant_brand_access(
        &self,
        request: Request<pb::GrantBrandAccessRequest>,
    ) -> Reply<pb::GrantBrandAccessResponse> {
        let who = principal(&request)?.clone();
        let cmd = GrantAccess::try_from(request.into_inner())?;
        let access = self.directory.grant_access(&who, cmd).await?;
        Ok(Response::new(pb::GrantBrandAccessResponse { access: Some(access_pb(access)) }))
    }

    async fn revoke_brand_access(
        &self,
        request: Request<pb::RevokeBrandAccessRequest>,
    ) -> Reply<pb::RevokeBrandAccessResponse> {
        let who = principal(&request)?;
        let r = request.get_ref();
        let brand_id = validate::id("brand_id", &r.brand_id)?;
        let user_id = validate::id("user_id", &r.user_id)?;
        self.directory.revoke_access(who, brand_id, user_id).await?;
        Ok(Response::new(pb::RevokeBrandAccessResponse {}))
    }

    async fn list_user_brand_access(
        &self,
        request: Request<pb::ListUserBrandAccessRequest>,
    ) -> Reply<pb::ListUserBrandAccessResponse> {
        let who = principal(&request)?;
        let id = validate::id("user_id", &request.get_ref().user_id)?;
        let accesses = self.directory.user_access(who, id).await?;
        Ok(Response::new(pb::ListUserBrandAccessResponse { accesses: accesses.into_iter().map(access_pb).collect() }))
    }

    async fn list_brand_members(
        &self,
        request: Request<pb::ListBrandMembersRequest>,
    ) -> Reply<pb::ListBrandMembersResponse> {
        let who = principal(&request)?;
        let id = validate::id("brand_id", &request.get_ref().brand_id)?;
        let accesses = self.directory.brand_members(who, id).await?;
        Ok(Response::new(pb::ListBrandMembersResponse { accesses: accesses.into_iter().map(access_pb).collect() }))
    }

    async fn create_portal_user(
        &self,
        request: Request<pb::CreatePortalUserRequest>,
    ) -> Reply<pb::CreatePortalUserResponse> {
        let who = principal(&request)?.clone();
        let cmd = NewPortalUser::try_from(request.into_inner())?;
        let u = self.directory.create_portal_user(&who, cmd).await?;
        Ok(Response::new(pb::CreatePortalUserResponse {
            portal_user: Some(pb::PortalUser {
                id: u.id.to_string(),
                organization_id: u.organization_id.to_string(),
                brand_id: u.brand_id.to_string(),
                client_id: u.client_id.to_string(),
                email: u.email,
                display_name: u.display_name,
                create_time: Some(timestamp(u.created_at)),
            }),
        }))
    }
}

/// `AuthService` over [`Sessions`] and the [`KeyRing`].
pub struct AuthApi {
    /// Login, refresh, logout.
    pub sessions: Sessions,
    /// Signing keys.
    pub keys: Arc<KeyRing>,
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::LoginResponse> {
        let cmd = Login::try_from(request.into_inner())?;
        let tokens = self.sessions.login(cmd).await?;
        Ok(Response::new(pb::LoginResponse { tokens: Some(tokens_pb(tokens)) }))
    }

    async fn refresh(&self, request: Request<pb::RefreshRequest>) -> Reply<pb::RefreshResponse> {
        let token = request.into_inner().refresh_token;
        if token.is_empty() {
            return Err(TenancyError::invalid("refresh_token", "must not be empty").into());
        }
        let tokens = self.sessions.refresh(&token).await?;
        Ok(Response::new(pb::RefreshResponse { tokens: Some(tokens_pb(tokens)) }))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Reply<pb::LogoutResponse> {
        let token = request.into_inner().refresh_token;
        if token.is_empty() {
            return Err(TenancyError::invalid("refresh_token", "must not be empty").into());
        }
        self.sessions.logout(&token).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn get_signing_keys(
        &self,
        _request: Request<pb::GetSigningKeysRequest>,
    ) -> Reply<pb::GetSigningKeysResponse> {
        // Make sure a key exists, so a fresh installation publishes one before the first login.
        self.keys.signing_key().await?;
        let keys = self.keys.public_keys().await.map_err(TenancyError::from)?;
        Ok(Response::new(pb::GetSigningKeysResponse {
            keys: keys
                .into_iter()
                .map(|k| pb::Jwk {
                    kty: "OKP".into(),
                    crv: "Ed25519".into(),
                    alg: "EdDSA".into(),
                    r#use: "sig".into(),
                    kid: k.kid,
                    x: k.x,
                })
                .collect(),
        }))
    }

    async fn get_session(&self, request: Request<pb::GetSessionRequest>) -> Reply<pb::GetSessionResponse> {
        // The auth layer has already refused a token whose session is not current.
        let who = principal(&request)?;
        let version = self.sessions.session_version(who).await?;
        Ok(Response::new(pb::GetSessionResponse { session_version: i64::try_from(version).unwrap_or(i64::MAX) }))
    }
}
