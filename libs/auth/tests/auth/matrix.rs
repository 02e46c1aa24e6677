//! `Principal::can`, `require` and `brands_with` against the documented matrix.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use sentra_auth::permissions::{self, MATRIX, Scope};
use sentra_auth::{AuthError, BrandRole, OrgRole, PortalScope, Principal, PrincipalKind};
use tonic::Code;
use uuid::Uuid;

fn staff(org_role: OrgRole, brands: &[(Uuid, BrandRole)]) -> Principal {
    Principal {
        user_id: Uuid::new_v4(),
        organization_id: Uuid::new_v4(),
        kind: PrincipalKind::Staff,
        org_role: Some(org_role),
        brand_roles: brands.iter().copied().collect(),
        portal: None,
        token_id: "jti".into(),
        expires_at: Utc::now(),
        session_version: 0,
    }
}

fn client(brand_id: Uuid) -> Principal {
    Principal {
        kind: PrincipalKind::Client,
        org_role: None,
        brand_roles: BTreeMap::new(),
        portal: Some(PortalScope { brand_id, client_id: Uuid::new_v4() }),
        ..staff(OrgRole::Member, &[])
    }
}

/// The permissions `p` holds where it is asked: on `brand` for brand-scoped ones, org-wide otherwise.
fn held(p: &Principal, brand: Uuid) -> BTreeSet<&'static str> {
    MATRIX
        .iter()
        .filter(|g| match g.scope {
            Scope::Organization => p.can(g.permission, None),
            Scope::Brand => p.can(g.permission, Some(brand)),
        })
        .map(|g| g.permission)
        .collect()
}

fn all() -> BTreeSet<&'static str> {
    MATRIX.iter().map(|g| g.permission).collect()
}

fn set(items: &[&'static str]) -> BTreeSet<&'static str> {
    items.iter().copied().collect()
}

#[test]
fn owner_and_admin_can_everything_on_any_brand() {
    for role in [OrgRole::Owner, OrgRole::Admin] {
        let p = staff(role, &[]);
        assert!(p.is_org_admin());
        for _ in 0..3 {
            assert_eq!(held(&p, Uuid::new_v4()), all(), "{role}");
        }
        for g in MATRIX {
            assert_eq!(p.brands_with(g.permission), None, "{role} {}", g.permission);
            assert!(p.require(g.permission, Some(Uuid::new_v4())).is_ok());
        }
    }
}

#[test]
fn brand_scoped_permission_without_a_brand_is_never_held() {
    let brand = Uuid::new_v4();
    for p in [staff(OrgRole::Owner, &[]), staff(OrgRole::Member, &[(brand, BrandRole::Manager)]), client(brand)] {
        for g in MATRIX.iter().filter(|g| g.scope == Scope::Brand) {
            assert!(!p.can(g.permission, None), "{:?} {}", p.kind, g.permission);
        }
    }
    // Org-scoped permissions do not depend on the brand argument.
    let owner = staff(OrgRole::Owner, &[]);
    assert!(owner.can(permissions::BRAND_CREATE, None));
    assert!(owner.can(permissions::BRAND_CREATE, Some(brand)));
}

#[test]
fn member_without_a_brand_role_holds_nothing_brand_scoped() {
    let p = staff(OrgRole::Member, &[]);
    assert!(!p.is_org_admin());
    // Org-wide, a member reads the organization and its users, owns their own mailbox and reads
    // their own notifications.
    assert_eq!(
        held(&p, Uuid::new_v4()),
        set(&[
            permissions::ORGANIZATION_READ,
            permissions::USER_READ,
            permissions::MAILBOX_READ,
            permissions::MAILBOX_WRITE,
            permissions::NOTIFICATION_READ
        ])
    );
    assert!(!p.can(permissions::BRAND_CREATE, None));
    assert!(!p.can(permissions::USER_WRITE, None));
    assert_eq!(p.brands_with(permissions::LEAD_READ), Some(vec![]));
    assert_eq!(p.brands_with(permissions::USER_READ), None);
    assert_eq!(p.brands_with(permissions::ORGANIZATION_WRITE), Some(vec![]));
}

#[test]
fn each_brand_role_holds_its_documented_set_on_its_brand() {
    use permissions::*;
    let brand = Uuid::new_v4();
    let org_member = set(&[ORGANIZATION_READ, USER_READ, MAILBOX_READ, MAILBOX_WRITE, NOTIFICATION_READ]);
    let with = |role| &held(&staff(OrgRole::Member, &[(brand, role)]), brand) - &org_member;

    let brand_scoped: BTreeSet<_> = MATRIX.iter().filter(|g| g.scope == Scope::Brand).map(|g| g.permission).collect();
    assert_eq!(with(BrandRole::Manager), brand_scoped);
    assert_eq!(
        with(BrandRole::Agent),
        set(&[
            BRAND_READ,
            BRAND_ACCESS_READ,
            PORTAL_USER_WRITE,
            LEAD_READ,
            LEAD_WRITE,
            CLIENT_READ,
            CLIENT_WRITE,
            ORDER_READ,
            ORDER_WRITE,
            PIPELINE_READ,
            INVOICE_READ,
            ALIAS_READ,
            THREAD_READ,
            EMAIL_SEND,
            AUTOMATION_READ,
        ])
    );
    assert_eq!(
        with(BrandRole::Finance),
        set(&[
            BRAND_READ,
            BRAND_ACCESS_READ,
            CLIENT_READ,
            ORDER_READ,
            INVOICE_READ,
            INVOICE_WRITE,
            PAYMENT_WRITE,
            RECEIVABLES_READ,
            ALIAS_READ,
            THREAD_READ,
            EMAIL_SEND,
            AUTOMATION_READ
        ])
    );
    assert_eq!(
        with(BrandRole::Viewer),
        set(&[
            BRAND_READ,
            BRAND_ACCESS_READ,
            LEAD_READ,
            CLIENT_READ,
            ORDER_READ,
            PIPELINE_READ,
            INVOICE_READ,
            RECEIVABLES_READ,
            ALIAS_READ,
            THREAD_READ,
            AUTOMATION_READ
        ])
    );
}

#[test]
fn viewer_cannot_write() {
    let brand = Uuid::new_v4();
    let p = staff(OrgRole::Member, &[(brand, BrandRole::Viewer)]);
    // Brand-scoped writes; a viewer, like every member, still connects their own mailbox.
    for g in MATRIX.iter().filter(|g| !g.permission.ends_with(".read") && g.scope == Scope::Brand) {
        assert!(!p.can(g.permission, Some(brand)), "{}", g.permission);
        assert!(!p.can(g.permission, None), "{}", g.permission);
    }
    assert!(p.can(permissions::RECEIVABLES_READ, Some(brand)));
}

#[test]
fn agent_cannot_assign_leads_or_write_invoices() {
    let brand = Uuid::new_v4();
    let p = staff(OrgRole::Member, &[(brand, BrandRole::Agent)]);
    assert!(p.can(permissions::LEAD_WRITE, Some(brand)));
    assert!(!p.can(permissions::LEAD_ASSIGN, Some(brand)));
    assert!(!p.can(permissions::INVOICE_WRITE, Some(brand)));
    let manager = staff(OrgRole::Member, &[(brand, BrandRole::Manager)]);
    assert!(manager.can(permissions::LEAD_ASSIGN, Some(brand)));
}

#[test]
fn finance_cannot_write_leads() {
    let brand = Uuid::new_v4();
    let p = staff(OrgRole::Member, &[(brand, BrandRole::Finance)]);
    assert!(!p.can(permissions::LEAD_WRITE, Some(brand)));
    assert!(!p.can(permissions::LEAD_READ, Some(brand)));
    assert!(p.can(permissions::PAYMENT_WRITE, Some(brand)));
}

#[test]
fn a_role_on_one_brand_grants_nothing_on_another() {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for role in BrandRole::ALL {
        let p = staff(OrgRole::Member, &[(a, *role)]);
        for g in MATRIX.iter().filter(|g| g.scope == Scope::Brand) {
            assert!(!p.can(g.permission, Some(b)), "{role} on A gave {} on B", g.permission);
        }
        assert!(p.can(permissions::BRAND_READ, Some(a)));
    }
}

#[test]
fn portal_client_holds_three_permissions_on_its_own_brand_only() {
    let (own, other) = (Uuid::new_v4(), Uuid::new_v4());
    let p = client(own);
    assert!(!p.is_org_admin());
    assert_eq!(held(&p, own), set(&[permissions::BRAND_READ, permissions::ORDER_READ, permissions::INVOICE_READ]));
    assert!(held(&p, other).is_empty());
    assert_eq!(p.brands_with(permissions::ORDER_READ), Some(vec![own]));
    assert_eq!(p.brands_with(permissions::LEAD_READ), Some(vec![]));
    assert_eq!(p.brands_with(permissions::ORGANIZATION_READ), Some(vec![]));

    // A client principal never gains staff powers, even if one were built with roles.
    let confused = Principal {
        org_role: Some(OrgRole::Owner),
        brand_roles: BTreeMap::from([(other, BrandRole::Manager)]),
        ..client(own)
    };
    assert!(!confused.is_org_admin());
    assert_eq!(held(&confused, own), held(&p, own));
    assert!(held(&confused, other).is_empty());
}

#[test]
fn brands_with_lists_the_brands_whose_role_grants_it() {
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let p = staff(OrgRole::Member, &[(a, BrandRole::Manager), (b, BrandRole::Viewer), (c, BrandRole::Agent)]);
    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };
    let brands = |perm| p.brands_with(perm).map(sorted);
    assert_eq!(brands(permissions::LEAD_WRITE), Some(sorted(vec![a, c])));
    assert_eq!(brands(permissions::RECEIVABLES_READ), Some(sorted(vec![a, b])));
    assert_eq!(brands(permissions::BRAND_READ), Some(sorted(vec![a, b, c])));
    assert_eq!(brands(permissions::LEAD_ASSIGN), Some(vec![a]));
    assert_eq!(brands(permissions::PAYMENT_WRITE), Some(vec![a]));
    assert_eq!(brands("sales.lead.delete"), Some(vec![]));
}

#[test]
fn unknown_permissions_are_never_held_and_require_names_the_permission() {
    let owner = staff(OrgRole::Owner, &[]);
    assert!(!owner.can("sales.lead.delete", Some(Uuid::new_v4())));
    assert!(!owner.can("", None));

    let viewer_brand = Uuid::new_v4();
    let viewer = staff(OrgRole::Member, &[(viewer_brand, BrandRole::Viewer)]);
    let error = viewer.require(permissions::LEAD_WRITE, Some(viewer_brand)).unwrap_err();
    assert!(matches!(&error, AuthError::PermissionDenied { permission } if permission == permissions::LEAD_WRITE));
    let status = tonic::Status::from(error);
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("sales.lead.write"));
    assert!(viewer.require(permissions::LEAD_READ, Some(viewer_brand)).is_ok());
}
