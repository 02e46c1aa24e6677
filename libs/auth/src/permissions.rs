//! The permission matrix: every permission, who holds it, and where it is checked.
//!
//! Permission names are `<context>.<resource>.<action>`, the same strings the RPC contracts
//! declare in their `sentra.auth.v1.rule` option. [`MATRIX`] is the single source of truth; the
//! crate documentation shows it as a table ([`matrix_markdown`] renders it, and a test keeps the
//! two equal).

use std::fmt::Write as _;

use crate::{BrandRole, OrgRole};

/// Read the organization's own record.
pub const ORGANIZATION_READ: &str = "tenancy.organization.read";
/// Change the organization's record and settings.
pub const ORGANIZATION_WRITE: &str = "tenancy.organization.write";
/// Create a brand in the organization.
pub const BRAND_CREATE: &str = "tenancy.brand.create";
/// Read a brand.
pub const BRAND_READ: &str = "tenancy.brand.read";
/// Change a brand (name, domains, theme).
pub const BRAND_WRITE: &str = "tenancy.brand.write";
/// List the organization's staff users.
pub const USER_READ: &str = "tenancy.user.read";
/// Invite, change and deactivate staff users.
pub const USER_WRITE: &str = "tenancy.user.write";
/// See who holds which role on a brand.
pub const BRAND_ACCESS_READ: &str = "tenancy.brand_access.read";
/// Grant and revoke brand roles.
pub const BRAND_ACCESS_WRITE: &str = "tenancy.brand_access.write";
/// Create and manage a brand's portal users.
pub const PORTAL_USER_WRITE: &str = "tenancy.portal_user.write";
/// Read leads.
pub const LEAD_READ: &str = "sales.lead.read";
/// Create and change leads.
pub const LEAD_WRITE: &str = "sales.lead.write";
/// Assign leads to agents.
pub const LEAD_ASSIGN: &str = "sales.lead.assign";
/// Read clients.
pub const CLIENT_READ: &str = "sales.client.read";
/// Create and change clients.
pub const CLIENT_WRITE: &str = "sales.client.write";
/// Read orders.
pub const ORDER_READ: &str = "sales.order.read";
/// Create and change orders.
pub const ORDER_WRITE: &str = "sales.order.write";
/// Read the pipeline dashboard.
pub const PIPELINE_READ: &str = "sales.pipeline.read";
/// Read invoices.
pub const INVOICE_READ: &str = "finance.invoice.read";
/// Issue and change invoices.
pub const INVOICE_WRITE: &str = "finance.invoice.write";
/// Record payments.
pub const PAYMENT_WRITE: &str = "finance.payment.write";
/// Read receivables.
pub const RECEIVABLES_READ: &str = "finance.receivables.read";

/// See one's own connected mailboxes and their sync status.
pub const MAILBOX_READ: &str = "comm.mailbox.read";
/// Connect one's own mailbox and ask it to sync.
pub const MAILBOX_WRITE: &str = "comm.mailbox.write";
/// Read, mark and watch one's own notifications and set their preferences.
pub const NOTIFICATION_READ: &str = "comm.notification.read";
/// See a brand's sender aliases.
pub const ALIAS_READ: &str = "comm.alias.read";
/// Add and verify a brand's sender aliases.
pub const ALIAS_WRITE: &str = "comm.alias.write";
/// Read the email threads linked to a brand's leads and clients.
pub const THREAD_READ: &str = "comm.thread.read";
/// Send email from a brand's aliases.
pub const EMAIL_SEND: &str = "comm.email.send";
/// See a brand's email templates, automation rules, automated emails and suppression list.
pub const AUTOMATION_READ: &str = "comm.automation.read";
/// Change a brand's email templates, automation rules and suppression list.
pub const AUTOMATION_WRITE: &str = "comm.automation.write";
/// See the organization's webhook endpoints and their delivery log.
pub const WEBHOOK_READ: &str = "comm.webhook.read";
/// Add, change, rotate and replay the organization's webhook endpoints.
pub const WEBHOOK_WRITE: &str = "comm.webhook.write";

/// Replay the organization's recorded events (`ReadEvents`, `sentra-ctl events export`).
pub const ANALYTICS_EVENTS_READ: &str = "analytics.events.read";

/// Where a permission is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Held org-wide: checked without a brand (organization, users, creating brands).
    Organization,
    /// Checked on one brand: held through the brand role on that brand (or an org-wide
    /// owner/admin role).
    Brand,
}

impl Scope {
    /// `organization` or `brand`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Organization => "organization",
            Scope::Brand => "brand",
        }
    }
}

/// One row of the permission matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The permission, e.g. `sales.lead.write`.
    pub permission: &'static str,
    /// Organization roles holding it (on every brand, for brand-scoped permissions).
    pub org_roles: &'static [OrgRole],
    /// Brand roles holding it on the brand they are granted on (empty for org-scoped ones).
    pub brand_roles: &'static [BrandRole],
    /// Whether portal clients hold it on their own brand.
    pub portal: bool,
    /// Where it is checked.
    pub scope: Scope,
}

const OWNER_ADMIN: &[OrgRole] = &[OrgRole::Owner, OrgRole::Admin];
const ANY_ORG_ROLE: &[OrgRole] = &[OrgRole::Owner, OrgRole::Admin, OrgRole::Member, OrgRole::Analyst];
const ANALYSTS: &[OrgRole] = &[OrgRole::Owner, OrgRole::Admin, OrgRole::Analyst];

const fn org(permission: &'static str, org_roles: &'static [OrgRole]) -> Grant {
    Grant { permission, org_roles, brand_roles: &[], portal: false, scope: Scope::Organization }
}

const fn brand(permission: &'static str, brand_roles: &'static [BrandRole], portal: bool) -> Grant {
    Grant { permission, org_roles: OWNER_ADMIN, brand_roles, portal, scope: Scope::Brand }
}

use BrandRole::{Agent, Finance, Manager, Viewer};

/// The documented permission matrix, one row per permission.
pub const MATRIX: &[Grant] = &[
    org(ORGANIZATION_READ, ANY_ORG_ROLE),
    org(ORGANIZATION_WRITE, OWNER_ADMIN),
    org(BRAND_CREATE, OWNER_ADMIN),
    org(USER_READ, ANY_ORG_ROLE),
    org(USER_WRITE, OWNER_ADMIN),
    org(ANALYTICS_EVENTS_READ, ANALYSTS),
    org(MAILBOX_READ, ANY_ORG_ROLE),
    org(MAILBOX_WRITE, ANY_ORG_ROLE),
    org(NOTIFICATION_READ, ANY_ORG_ROLE),
    org(WEBHOOK_READ, OWNER_ADMIN),
    org(WEBHOOK_WRITE, OWNER_ADMIN),
    brand(BRAND_READ, &[Manager, Agent, Finance, Viewer], true),
    brand(BRAND_WRITE, &[Manager], false),
    brand(BRAND_ACCESS_READ, &[Manager, Agent, Finance, Viewer], false),
    brand(BRAND_ACCESS_WRITE, &[Manager], false),
    brand(PORTAL_USER_WRITE, &[Manager, Agent], false),
    brand(LEAD_READ, &[Manager, Agent, Viewer], false),
    brand(LEAD_WRITE, &[Manager, Agent], false),
    brand(LEAD_ASSIGN, &[Manager], false),
    brand(CLIENT_READ, &[Manager, Agent, Finance, Viewer], false),
    brand(CLIENT_WRITE, &[Manager, Agent], false),
    brand(ORDER_READ, &[Manager, Agent, Finance, Viewer], true),
    brand(ORDER_WRITE, &[Manager, Agent], false),
    brand(PIPELINE_READ, &[Manager, Agent, Viewer], false),
    brand(INVOICE_READ, &[Manager, Agent, Finance, Viewer], true),
    brand(INVOICE_WRITE, &[Manager, Finance], false),
    brand(PAYMENT_WRITE, &[Manager, Finance], false),
    brand(RECEIVABLES_READ, &[Manager, Finance, Viewer], false),
    brand(ALIAS_READ, &[Manager, Agent, Finance, Viewer], false),
    brand(ALIAS_WRITE, &[Manager], false),
    brand(THREAD_READ, &[Manager, Agent, Finance, Viewer], false),
    brand(EMAIL_SEND, &[Manager, Agent, Finance], false),
    brand(AUTOMATION_READ, &[Manager, Agent, Finance, Viewer], false),
    brand(AUTOMATION_WRITE, &[Manager], false),
];

/// The matrix row of `permission`, or `None` for a name that is not a permission.
pub fn grant(permission: &str) -> Option<&'static Grant> {
    MATRIX.iter().find(|g| g.permission == permission)
}

/// Renders the matrix as a markdown table (for docs and a test that keeps docs in sync).
///
/// Columns: permission, scope, one per org role, one per brand role, portal client.
pub fn matrix_markdown() -> String {
    let mut out = String::from("| Permission | Scope |");
    for role in OrgRole::ALL {
        let _ = write!(out, " {role} |");
    }
    for role in BrandRole::ALL {
        let _ = write!(out, " {role} |");
    }
    out.push_str(" portal client |\n| --- | --- |");
    for _ in 0..OrgRole::ALL.len() + BrandRole::ALL.len() + 1 {
        out.push_str(" :-: |");
    }
    out.push('\n');
    let mark = |held: bool| if held { " ✓ |" } else { "   |" };
    for grant in MATRIX {
        let _ = write!(out, "| `{}` | {} |", grant.permission, grant.scope.as_str());
        for role in OrgRole::ALL {
            out.push_str(mark(grant.org_roles.contains(role)));
        }
        for role in BrandRole::ALL {
            out.push_str(mark(grant.brand_roles.contains(role)));
        }
        out.push_str(mark(grant.portal));
        out.push('\n');
    }
    out
}

/// Renders the matrix as pretty JSON, one object per permission: what the web apps read to offer
/// only the actions a role may take (`web/shared/src/permissions.json`; a test keeps it equal).
pub fn matrix_json() -> String {
    // A struct, not a `json!` map: its field order is the output's whatever serde_json features
    // the build unifies (`preserve_order` changes how maps are ordered).
    #[derive(serde::Serialize)]
    struct Row {
        permission: &'static str,
        scope: &'static str,
        org_roles: Vec<&'static str>,
        brand_roles: Vec<&'static str>,
        portal: bool,
    }
    let rows: Vec<Row> = MATRIX
        .iter()
        .map(|grant| Row {
            permission: grant.permission,
            scope: grant.scope.as_str(),
            org_roles: grant.org_roles.iter().map(OrgRole::as_str).collect(),
            brand_roles: grant.brand_roles.iter().map(BrandRole::as_str).collect(),
            portal: grant.portal,
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&rows).unwrap_or_default();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn held_by(role: BrandRole) -> BTreeSet<&'static str> {
        MATRIX.iter().filter(|g| g.brand_roles.contains(&role)).map(|g| g.permission).collect()
    }

    fn set(items: &[&'static str]) -> BTreeSet<&'static str> {
        items.iter().copied().collect()
    }

    #[test]
    fn permissions_are_unique_and_well_formed() {
        let names: BTreeSet<_> = MATRIX.iter().map(|g| g.permission).collect();
        assert_eq!(names.len(), MATRIX.len(), "a permission is listed twice");
        assert_eq!(MATRIX.len(), 34);
        for name in names {
            let parts: Vec<_> = name.split('.').collect();
            assert_eq!(parts.len(), 3, "{name}");
            assert!(["tenancy", "sales", "finance", "comm", "analytics"].contains(&parts[0]), "{name}");
            assert!(parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
            assert_eq!(grant(name).map(|g| g.permission), Some(name));
        }
        assert!(grant("sales.lead.delete").is_none());
    }

    #[test]
    fn org_scope_rows_are_the_organization_users_analytics_own_mailboxes_and_webhooks() {
        let org_scoped: BTreeSet<_> =
            MATRIX.iter().filter(|g| g.scope == Scope::Organization).map(|g| g.permission).collect();
        assert_eq!(
            org_scoped,
            set(&[
                ORGANIZATION_READ,
                ORGANIZATION_WRITE,
                BRAND_CREATE,
                USER_READ,
                USER_WRITE,
                ANALYTICS_EVENTS_READ,
                MAILBOX_READ,
                MAILBOX_WRITE,
                NOTIFICATION_READ,
                WEBHOOK_READ,
                WEBHOOK_WRITE
            ])
        );
        for g in MATRIX.iter().filter(|g| g.scope == Scope::Organization) {
            assert!(g.brand_roles.is_empty() && !g.portal, "{}", g.permission);
        }
    }

    #[test]
    fn owner_and_admin_hold_everything_member_reads_org_and_users_and_owns_a_mailbox() {
        for g in MATRIX {
            assert!(g.org_roles.contains(&OrgRole::Owner) && g.org_roles.contains(&OrgRole::Admin), "{}", g.permission);
        }
        let member: BTreeSet<_> =
            MATRIX.iter().filter(|g| g.org_roles.contains(&OrgRole::Member)).map(|g| g.permission).collect();
        assert_eq!(member, set(&[ORGANIZATION_READ, USER_READ, MAILBOX_READ, MAILBOX_WRITE, NOTIFICATION_READ]));
        let analyst: BTreeSet<_> =
            MATRIX.iter().filter(|g| g.org_roles.contains(&OrgRole::Analyst)).map(|g| g.permission).collect();
        assert_eq!(
            analyst,
            set(&[ORGANIZATION_READ, USER_READ, ANALYTICS_EVENTS_READ, MAILBOX_READ, MAILBOX_WRITE, NOTIFICATION_READ])
        );
    }

    #[test]
    fn brand_roles_hold_exactly_what_the_spec_lists() {
        let brand_scoped: BTreeSet<_> =
            MATRIX.iter().filter(|g| g.scope == Scope::Brand).map(|g| g.permission).collect();
        assert_eq!(held_by(Manager), brand_scoped);
        assert_eq!(
            held_by(Agent),
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
                AUTOMATION_READ
            ])
        );
        assert_eq!(
            held_by(Finance),
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
        let reads: BTreeSet<_> = brand_scoped.iter().copied().filter(|p| p.ends_with(".read")).collect();
        assert_eq!(held_by(Viewer), reads);
        assert_eq!(reads.len(), 11);
        let portal: BTreeSet<_> = MATRIX.iter().filter(|g| g.portal).map(|g| g.permission).collect();
        assert_eq!(portal, set(&[BRAND_READ, ORDER_READ, INVOICE_READ]));
    }

    #[test]
    fn markdown_has_a_row_per_permission() {
        let table = matrix_markdown();
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(lines.len(), MATRIX.len() + 2);
        assert_eq!(
            lines[0],
            "| Permission | Scope | owner | admin | member | analyst | manager | agent | finance | viewer | portal client |"
        );
        let lead_assign = lines.iter().find(|l| l.contains("`sales.lead.assign`")).unwrap();
        assert_eq!(*lead_assign, "| `sales.lead.assign` | brand | ✓ | ✓ |   |   | ✓ |   |   |   |   |");
        for line in &lines {
            assert_eq!(line.matches('|').count(), 12, "{line}");
        }
    }
}
