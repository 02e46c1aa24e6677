//! Domain commands, built from protobuf requests by `TryFrom` at the gRPC boundary.
//!
//! Everything here is already validated and normalised: domain code never sees protobuf types
//! and never re-checks input.

use std::collections::BTreeSet;

use sentra_auth::{BrandRole, OrgRole};
use sentra_proto::sentra::tenancy::v1 as pb;
use uuid::Uuid;

use crate::error::TenancyError;
use crate::validate;

type Result<T> = std::result::Result<T, TenancyError>;

/// An optional idempotency key (at most 128 characters).
fn request_id(value: &str) -> Result<Option<String>> {
    match value.trim() {
        "" => Ok(None),
        id if id.len() <= 128 => Ok(Some(id.to_owned())),
        _ => Err(TenancyError::invalid("request_id", "must be at most 128 characters")),
    }
}

/// An expected version from an etag; empty means "do not check".
fn etag(field: &'static str, value: &str) -> Result<Option<i64>> {
    if value.is_empty() {
        return Ok(None);
    }
    value.trim_matches('"').parse().map(Some).map_err(|_| TenancyError::invalid(field, "is not an etag from this API"))
}

/// The etag of a version.
pub fn etag_of(version: i64) -> String {
    format!("\"{version}\"")
}

fn org_role(field: &'static str, value: i32) -> Result<OrgRole> {
    match pb::OrgRole::try_from(value) {
        Ok(pb::OrgRole::Admin) => Ok(OrgRole::Admin),
        Ok(pb::OrgRole::Member) => Ok(OrgRole::Member),
        Ok(pb::OrgRole::Analyst) => Ok(OrgRole::Analyst),
        Ok(pb::OrgRole::Owner) => Err(TenancyError::invalid(field, "OWNER is held only by the organization's creator")),
        _ => Err(TenancyError::invalid(field, "must be ADMIN, MEMBER or ANALYST")),
    }
}

fn brand_role(field: &'static str, value: i32) -> Result<BrandRole> {
    match pb::BrandRole::try_from(value) {
        Ok(pb::BrandRole::Manager) => Ok(BrandRole::Manager),
        Ok(pb::BrandRole::Agent) => Ok(BrandRole::Agent),
        Ok(pb::BrandRole::Finance) => Ok(BrandRole::Finance),
        Ok(pb::BrandRole::Viewer) => Ok(BrandRole::Viewer),
        _ => Err(TenancyError::invalid(field, "must be MANAGER, AGENT, FINANCE or VIEWER")),
    }
}

fn update_paths(mask: Option<&prost_types::FieldMask>, allowed: &[&str]) -> Result<BTreeSet<String>> {
    let paths: BTreeSet<String> = mask.map(|m| m.paths.iter().cloned().collect()).unwrap_or_default();
    if paths.is_empty() {
        return Err(TenancyError::invalid("update_mask", "must name at least one field"));
    }
    if let Some(unknown) = paths.iter().find(|p| !allowed.contains(&p.as_str())) {
        return Err(TenancyError::invalid("update_mask", format!("{unknown:?} cannot be updated")));
    }
    Ok(paths)
}

/// Create an organization and its owner.
#[derive(Debug)]
pub struct SignUp {
    /// Agency name.
    pub organization_name: String,
    /// Owner email (lower case).
    pub owner_email: String,
    /// Owner name.
    pub owner_display_name: String,
    /// Owner password (checked for strength).
    pub password: String,
    /// Idempotency key.
    pub request_id: Option<String>,
}

impl TryFrom<pb::SignUpRequest> for SignUp {
    type Error = TenancyError;
    fn try_from(r: pb::SignUpRequest) -> Result<Self> {
        Ok(Self {
            organization_name: validate::text("organization_name", &r.organization_name, 200)?,
            owner_email: validate::email("owner_email", &r.owner_email)?,
            owner_display_name: validate::text("owner_display_name", &r.owner_display_name, 200)?,
            password: validate::password("password", &r.password)?,
            request_id: request_id(&r.request_id)?,
        })
    }
}

/// Rename an organization.
#[derive(Debug)]
pub struct UpdateOrganization {
    /// Which organization.
    pub id: Uuid,
    /// Expected version.
    pub expected_version: Option<i64>,
    /// New name.
    pub name: String,
}

impl TryFrom<pb::UpdateOrganizationRequest> for UpdateOrganization {
    type Error = TenancyError;
    fn try_from(r: pb::UpdateOrganizationRequest) -> Result<Self> {
        let org = r.organization.ok_or_else(|| TenancyError::invalid("organization", "is required"))?;
        update_paths(r.update_mask.as_ref(), &["name"])?;
        Ok(Self {
            id: validate::id("organization.id", &org.id)?,
            expected_version: etag("organization.etag", &org.etag)?,
            name: validate::text("organization.name", &org.name, 200)?,
        })
    }
}

/// All settings of a brand.
#[derive(Debug, Clone)]
pub struct BrandSettings {
    /// Internal name.
    pub name: String,
    /// Host name.
    pub domain: String,
    /// Name shown to clients.
    pub display_name: String,
    /// Logo URL or empty.
    pub logo_url: String,
    /// `#rrggbb` or empty.
    pub primary_color: String,
    /// Support email or empty.
    pub support_email: String,
    /// Invoice number prefix.
    pub invoice_prefix: String,
    /// Default currency.
    pub default_currency: String,
    /// IANA time zone.
    pub time_zone: String,
    /// Sender addresses.
    pub email_aliases: Vec<String>,
}

fn aliases(values: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> =
        values.iter().map(|a| validate::email("brand.email_aliases", a)).collect::<Result<_>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

impl BrandSettings {
    fn from_pb(b: &pb::Brand) -> Result<Self> {
        let name = validate::text("brand.name", &b.name, 200)?;
        Ok(Self {
            domain: validate::domain("brand.domain", &b.domain)?,
            display_name: if b.display_name.trim().is_empty() {
                name.clone()
            } else {
                validate::text("brand.display_name", &b.display_name, 200)?
            },
            name,
            logo_url: validate::https_url("brand.logo_url", &b.logo_url)?,
            primary_color: validate::color("brand.primary_color", &b.primary_color)?,
            support_email: validate::optional_email("brand.support_email", &b.support_email)?,
            invoice_prefix: validate::invoice_prefix("brand.invoice_prefix", &b.invoice_prefix)?,
            default_currency: validate::currency("brand.default_currency", &b.default_currency)?,
            time_zone: if b.time_zone.is_empty() {
                "UTC".into()
            } else {
                validate::time_zone("brand.time_zone", &b.time_zone)?
            },
            email_aliases: aliases(&b.email_aliases)?,
        })
    }
}

/// Create a brand.
#[derive(Debug)]
pub struct CreateBrand {
    /// Its settings.
    pub settings: BrandSettings,
    /// Idempotency key.
    pub request_id: Option<String>,
}

impl TryFrom<pb::CreateBrandRequest> for CreateBrand {
    type Error = TenancyError;
    fn try_from(r: pb::CreateBrandRequest) -> Result<Self> {
        let brand = r.brand.ok_or_else(|| TenancyError::invalid("brand", "is required"))?;
        Ok(Self { settings: BrandSettings::from_pb(&brand)?, request_id: request_id(&r.request_id)? })
    }
}

/// Fields of a brand that an update may change.
pub const BRAND_UPDATABLE: &[&str] = &[
    "name",
    "domain",
    "display_name",
    "logo_url",
    "primary_color",
    "support_email",
    "invoice_prefix",
    "default_currency",
    "time_zone",
    "email_aliases",
];

/// Change some settings of a brand.
#[derive(Debug)]
pub struct UpdateBrand {
    /// Which brand.
    pub id: Uuid,
    /// Expected version.
    pub expected_version: Option<i64>,
    /// Fields to take from `values`.
    pub paths: BTreeSet<String>,
    /// The request's brand, only the masked fields of which are applied (validated per field).
    pub values: pb::Brand,
}

impl TryFrom<pb::UpdateBrandRequest> for UpdateBrand {
    type Error = TenancyError;
    fn try_from(r: pb::UpdateBrandRequest) -> Result<Self> {
        let brand = r.brand.ok_or_else(|| TenancyError::invalid("brand", "is required"))?;
        let paths = update_paths(r.update_mask.as_ref(), BRAND_UPDATABLE)?;
        Ok(Self {
            id: validate::id("brand.id", &brand.id)?,
            expected_version: etag("brand.etag", &brand.etag)?,
            paths,
            values: brand,
        })
    }
}

impl UpdateBrand {
    /// `current` with the masked fields replaced by validated request values.
    pub fn apply(&self, current: &BrandSettings) -> Result<BrandSettings> {
        let mut next = current.clone();
        let v = &self.values;
        for path in &self.paths {
            match path.as_str() {
                "name" => next.name = validate::text("brand.name", &v.name, 200)?,
                "domain" => next.domain = validate::domain("brand.domain", &v.domain)?,
                "display_name" => next.display_name = validate::text("brand.display_name", &v.display_name, 200)?,
                "logo_url" => next.logo_url = validate::https_url("brand.logo_url", &v.logo_url)?,
                "primary_color" => next.primary_color = validate::color("brand.primary_color", &v.primary_color)?,
                "support_email" => {
                    next.support_email = validate::optional_email("brand.support_email", &v.support_email)?
                }
                "invoice_prefix" => {
                    next.invoice_prefix = validate::invoice_prefix("brand.invoice_prefix", &v.invoice_prefix)?
                }
                "default_currency" => {
                    next.default_currency = validate::currency("brand.default_currency", &v.default_currency)?
                }
                "time_zone" => next.time_zone = validate::time_zone("brand.time_zone", &v.time_zone)?,
                "email_aliases" => next.email_aliases = aliases(&v.email_aliases)?,
                _ => {}
            }
        }
        Ok(next)
    }
}

/// Paging of a list call.
#[derive(Debug)]
pub struct Page {
    /// Items per page.
    pub size: i64,
    /// Cursor after which to continue.
    pub after: Option<(String, Uuid)>,
}

impl Page {
    /// Validated paging.
    pub fn new(page_size: i32, page_token: &str) -> Result<Self> {
        Ok(Self { size: validate::page_size(page_size)?, after: validate::page_token(page_token)? })
    }
}

/// Invite or create a staff user.
#[derive(Debug)]
pub struct NewUser {
    /// Email.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// Org-wide role (never owner).
    pub org_role: OrgRole,
    /// Password, for a user created active.
    pub password: Option<String>,
    /// Idempotency key.
    pub request_id: Option<String>,
}

impl TryFrom<pb::InviteUserRequest> for NewUser {
    type Error = TenancyError;
    fn try_from(r: pb::InviteUserRequest) -> Result<Self> {
        Ok(Self {
            email: validate::email("email", &r.email)?,
            display_name: validate::text("display_name", &r.display_name, 200)?,
            org_role: org_role("org_role", r.org_role)?,
            password: None,
            request_id: request_id(&r.request_id)?,
        })
    }
}

impl TryFrom<pb::CreateUserRequest> for NewUser {
    type Error = TenancyError;
    fn try_from(r: pb::CreateUserRequest) -> Result<Self> {
        Ok(Self {
            email: validate::email("email", &r.email)?,
            display_name: validate::text("display_name", &r.display_name, 200)?,
            org_role: org_role("org_role", r.org_role)?,
            password: Some(validate::password("password", &r.password)?),
            request_id: request_id(&r.request_id)?,
        })
    }
}

/// Grant or change a brand role.
#[derive(Debug)]
pub struct GrantAccess {
    /// The brand.
    pub brand_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// The role.
    pub role: BrandRole,
}

impl TryFrom<pb::GrantBrandAccessRequest> for GrantAccess {
    type Error = TenancyError;
    fn try_from(r: pb::GrantBrandAccessRequest) -> Result<Self> {
        Ok(Self {
            brand_id: validate::id("brand_id", &r.brand_id)?,
            user_id: validate::id("user_id", &r.user_id)?,
            role: brand_role("role", r.role)?,
        })
    }
}

/// Create a portal identity.
#[derive(Debug)]
pub struct NewPortalUser {
    /// The brand.
    pub brand_id: Uuid,
    /// The Sales client.
    pub client_id: Uuid,
    /// Email.
    pub email: String,
    /// Name.
    pub display_name: String,
    /// Password.
    pub password: String,
    /// Idempotency key.
    pub request_id: Option<String>,
}

impl TryFrom<pb::CreatePortalUserRequest> for NewPortalUser {
    type Error = TenancyError;
    fn try_from(r: pb::CreatePortalUserRequest) -> Result<Self> {
        Ok(Self {
            brand_id: validate::id("brand_id", &r.brand_id)?,
            client_id: validate::id("client_id", &r.client_id)?,
            email: validate::email("email", &r.email)?,
            display_name: validate::text("display_name", &r.display_name, 200)?,
            password: validate::password("password", &r.password)?,
            request_id: request_id(&r.request_id)?,
        })
    }
}

/// Sign in.
#[derive(Debug)]
pub struct Login {
    /// Email.
    pub email: String,
    /// Password as typed (not strength-checked: it is only compared).
    pub password: String,
    /// Host name without port, if given.
    pub host: Option<String>,
}

impl TryFrom<pb::LoginRequest> for Login {
    type Error = TenancyError;
    fn try_from(r: pb::LoginRequest) -> Result<Self> {
        if r.password.is_empty() {
            return Err(TenancyError::invalid("password", "must not be empty"));
        }
        let host = if r.host.trim().is_empty() { None } else { Some(validate::domain("host", &r.host)?) };
        Ok(Self { email: validate::email("email", &r.email)?, password: r.password, host })
    }
}

#[cfg(test)]
mod properties {
    //! Whatever a client sends, the boundary answers `Ok` or an error naming a field: never a
    //! panic, never an error without a field.

    use proptest::prelude::*;

    use super::*;

    fn names_a_field<T: std::fmt::Debug>(result: Result<T>) -> std::result::Result<(), TestCaseError> {
        match result {
            Ok(_) => Ok(()),
            Err(TenancyError::Invalid { field, .. }) if !field.is_empty() => Ok(()),
            Err(other) => Err(TestCaseError::fail(format!("not a field error: {other:?}"))),
        }
    }

    fn id_or_junk() -> impl Strategy<Value = String> {
        prop_oneof![Just(Uuid::new_v4().to_string()), ".{0,40}"]
    }

    fn brand() -> impl Strategy<Value = pb::Brand> {
        (
            id_or_junk(),
            ".{0,220}",
            prop_oneof![Just("app.example.com".to_owned()), ".{0,60}"],
            prop_oneof![Just("https://cdn.example.com/logo.svg".to_owned()), ".{0,60}"],
            prop_oneof![Just("#1f6feb".to_owned()), ".{0,9}"],
            ".{0,60}",
            ".{0,12}",
            ".{0,5}",
            ".{0,40}",
            proptest::collection::vec(".{0,40}", 0..3),
            ".{0,20}",
        )
            .prop_map(
                |(
                    id,
                    name,
                    domain,
                    logo_url,
                    primary_color,
                    support_email,
                    invoice_prefix,
                    default_currency,
                    time_zone,
                    email_aliases,
                    etag,
                )| {
                    pb::Brand {
                        id,
                        display_name: name.clone(),
                        name,
                        domain,
                        logo_url,
                        primary_color,
                        support_email,
                        invoice_prefix,
                        default_currency,
                        time_zone,
                        email_aliases,
                        etag,
                        ..Default::default()
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn sign_up_and_login(name in ".{0,220}", email in ".{0,80}", password in ".{0,140}", host in ".{0,80}", request_id in ".{0,80}") {
            names_a_field(SignUp::try_from(pb::SignUpRequest {
                organization_name: name.clone(),
                owner_email: email.clone(),
                owner_display_name: name.clone(),
                password: password.clone(),
                request_id,
            }))?;
            names_a_field(Login::try_from(pb::LoginRequest { email, password, host }))?;
        }

        #[test]
        fn brands(brand in proptest::option::of(brand()), paths in proptest::collection::vec(".{0,16}", 0..4)) {
            names_a_field(CreateBrand::try_from(pb::CreateBrandRequest { brand: brand.clone(), request_id: String::new() }))?;
            let update_mask = Some(prost_types::FieldMask { paths });
            names_a_field(UpdateBrand::try_from(pb::UpdateBrandRequest { brand, update_mask }))?;
        }

        #[test]
        fn users_and_access(email in ".{0,80}", name in ".{0,220}", role in any::<i32>(), password in ".{0,140}", id in id_or_junk()) {
            names_a_field(NewUser::try_from(pb::InviteUserRequest {
                email: email.clone(), display_name: name.clone(), org_role: role, request_id: String::new(),
            }))?;
            names_a_field(NewUser::try_from(pb::CreateUserRequest {
                email: email.clone(), display_name: name.clone(), org_role: role, password: password.clone(), request_id: String::new(),
            }))?;
            names_a_field(GrantAccess::try_from(pb::GrantBrandAccessRequest { brand_id: id.clone(), user_id: id.clone(), role }))?;
            names_a_field(NewPortalUser::try_from(pb::CreatePortalUserRequest {
                brand_id: id.clone(), client_id: id, email, display_name: name, password, request_id: String::new(),
            }))?;
        }

        #[test]
        fn organization_and_pages(id in id_or_junk(), name in ".{0,220}", etag in ".{0,20}", size in any::<i32>(), token in ".{0,80}") {
            names_a_field(UpdateOrganization::try_from(pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization { id, name, etag, ..Default::default() }),
                update_mask: Some(prost_types::FieldMask { paths: vec!["name".into()] }),
            }))?;
            names_a_field(Page::new(size, &token))?;
        }
    }
}
