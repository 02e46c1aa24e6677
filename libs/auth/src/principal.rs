//! The authenticated caller and the questions services ask about it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::permissions::{self, Scope};
use crate::{AuthError, BrandRole, OrgRole, PrincipalKind};

/// The brand and client a portal user acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalScope {
    /// The brand whose portal the client signed in to.
    pub brand_id: Uuid,
    /// The client (a Sales client record) the portal user belongs to.
    pub client_id: Uuid,
}

/// Who is calling, as established by a verified access token.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// Staff user id or portal user id.
    pub user_id: Uuid,
    /// The organization every permission is confined to.
    pub organization_id: Uuid,
    /// Staff or portal client.
    pub kind: PrincipalKind,
    /// The org-wide role; `None` for portal clients.
    pub org_role: Option<OrgRole>,
    /// Role per brand id (staff only; empty for portal clients).
    pub brand_roles: BTreeMap<Uuid, BrandRole>,
    /// The brand and client of a portal client; `None` for staff.
    pub portal: Option<PortalScope>,
    /// The token id (`jti`), for audit logs.
    pub token_id: String,
    /// When the token stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// The session version the token was issued under (claim `sv`).
    pub session_version: u64,
}

impl Principal {
    /// May this principal use `permission` — on `brand` for brand-scoped ones (None for org-scoped)?
    ///
    /// An unknown permission is never held, and a brand-scoped one asked without a brand is not
    /// held either (not even by an owner): a missing brand id is a bug in the caller, and failing
    /// closed surfaces it. For org-scoped permissions `brand` is ignored.
    ///
    /// The principal does not know which brands exist, so "owner/admin hold it on every brand"
    /// means every brand *of their organization*: the service must load the brand (or the record
    /// naming it) within `organization_id`, which it does anyway to find it.
    pub fn can(&self, permission: &str, brand: Option<Uuid>) -> bool {
        let Some(grant) = permissions::grant(permission) else {
            return false;
        };
        match (grant.scope, brand) {
            (Scope::Organization, _) => self.staff_org_role().is_some_and(|role| grant.org_roles.contains(&role)),
            (Scope::Brand, None) => false,
            (Scope::Brand, Some(brand)) => match self.kind {
                PrincipalKind::Client => grant.portal && self.portal.as_ref().is_some_and(|p| p.brand_id == brand),
                PrincipalKind::Staff => {
                    self.staff_org_role().is_some_and(|role| grant.org_roles.contains(&role))
                        || self.brand_roles.get(&brand).is_some_and(|role| grant.brand_roles.contains(role))
                }
            },
        }
    }

    /// Whether the brand may be one this principal can see at all: their portal's brand (clients),
    /// a brand they hold a role on (staff), or any brand for the organization's owners and admins
    /// (whose brands the token does not list: only Tenancy knows whether one is theirs). A brand
    /// for which this is false is one the caller may not know exists: answer NOT_FOUND.
    pub fn may_see_brand(&self, brand: Uuid) -> bool {
        match self.kind {
            PrincipalKind::Client => self.portal.as_ref().is_some_and(|p| p.brand_id == brand),
            PrincipalKind::Staff => self.is_org_admin() || self.brand_roles.contains_key(&brand),
        }
    }

    /// [`can`](Self::can), as a `Result` for `?` in handlers (the error converts to
    /// `PERMISSION_DENIED`).
    pub fn require(&self, permission: &str, brand: Option<Uuid>) -> Result<(), AuthError> {
        if self.can(permission, brand) {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied { permission: permission.to_owned() })
        }
    }

    /// Brands this principal may use `permission` on: None means "every brand of the organization"
    /// (owner/admin), Some(list) otherwise (possibly empty).
    ///
    /// Meant for list queries (`WHERE brand_id = ANY($1)` unless `None`). For an org-scoped
    /// permission the answer is `None` when the principal holds it and `Some([])` when not; an
    /// unknown permission gives `Some([])`.
    pub fn brands_with(&self, permission: &str) -> Option<Vec<Uuid>> {
        let Some(grant) = permissions::grant(permission) else {
            return Some(Vec::new());
        };
        if self.staff_org_role().is_some_and(|role| grant.org_roles.contains(&role)) {
            return None;
        }
        if grant.scope == Scope::Organization {
            return Some(Vec::new());
        }
        let brands = match self.kind {
            PrincipalKind::Client => self.portal.iter().filter(|_| grant.portal).map(|p| p.brand_id).collect(),
            PrincipalKind::Staff => self
                .brand_roles
                .iter()
                .filter(|(_, role)| grant.brand_roles.contains(role))
                .map(|(brand, _)| *brand)
                .collect(),
        };
        Some(brands)
    }

    /// Owner or admin of the organization.
    pub fn is_org_admin(&self) -> bool {
        matches!(self.staff_org_role(), Some(OrgRole::Owner | OrgRole::Admin))
    }

    /// The org role, only for staff: a hand-built client principal carrying an org role must not
    /// gain staff powers through it.
    fn staff_org_role(&self) -> Option<OrgRole> {
        match self.kind {
            PrincipalKind::Staff => self.org_role,
            PrincipalKind::Client => None,
        }
    }
}

/// The principal of a call, or UNAUTHENTICATED if the call carried no token.
///
/// [`AuthLayer`](crate::AuthLayer) puts it in the request extensions; a call that reaches a
/// handler with a bad token is impossible, so "no principal" always means "no token".
#[allow(clippy::result_large_err)] // tonic::Status is what handlers return; boxing it would only add noise
pub fn principal<T>(request: &tonic::Request<T>) -> Result<&Principal, tonic::Status> {
    request.extensions().get::<Principal>().ok_or_else(|| AuthError::MissingToken.into())
}
